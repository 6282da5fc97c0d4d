"""Streaming generation: exo_generate on a worker thread, its token callback feeding a queue
that the caller iterates. Cancellation sets exo_generate's cancel flag and makes the callback
return nonzero, so the C loop stops after the current step (finish reason "cancelled").

Why a thread rather than a Python loop over exo_sampler / exo_detokenizer: exo_generate runs the
whole loop (sampler, EOS set, streaming detokenizer, stop-string hold-back) in C without a
round trip through Python per token, and its output is exo-run's by construction. Callers that
step sequences themselves (the engine, pipeline ranks) use those pieces directly."""
import collections
import ctypes as C
import dataclasses
import queue
import threading

from . import _capi
from .errors import check
from .model import bos_flag
from .sampler import make_sampling


class Piece(collections.namedtuple("Piece", "text token")):
    """One streamed event: (text, token id). token is -1 for the final flush of held-back
    text. logprob and top (tuple of (token, logprob)) are extra attributes."""
    logprob = None
    top = ()


@dataclasses.dataclass(frozen=True)
class GenerationStats:
    prompt_tokens: int
    generation_tokens: int
    prompt_tps: float
    generation_tps: float
    ttft_ms: float
    total_ms: float
    peak_memory_bytes: int
    finish_reason: str   # "eos" | "stop" | "length" | "cancelled"


_DONE = object()


class Generation:
    """Iterate for Piece(text, token) events; .stats holds GenerationStats once iteration ends.

    prompt: text (tokenized by the model, BOS per add_bos: -1 as the tokenizer says, 0, 1) or a
    list of token ids (used as given). Sampling keywords: temperature, top_k, top_p, min_p,
    repetition_penalty, presence_penalty, frequency_penalty, penalty_window, seed, n_logprobs,
    banned (EXO's defaults otherwise)."""

    def __init__(self, session, prompt, *, max_tokens=0, stop=(), add_bos=-1, ignore_eos=False,
                 banned=(), **sampling):
        self.session = session
        self.stats = None
        self._queue = queue.Queue()
        self._cancel_flag = C.c_int(0)
        self._cancelled = False
        self._sampling, self._banned = make_sampling(banned=banned, **sampling)
        self._stops = [_capi.cstr(s, "stop string") for s in stop]
        self._stop_arr = (C.c_char_p * max(1, len(self._stops)))(*self._stops)
        self._cb = _capi.token_fn(self._on_token)
        o = _capi.GenerateOptions.new()
        o.sampling = C.pointer(self._sampling)
        o.max_tokens = int(max_tokens)
        o.n_stop = len(self._stops)
        o.stop = C.cast(self._stop_arr, C.POINTER(C.c_char_p)) if self._stops else None
        o.add_bos = bos_flag(add_bos)
        o.ignore_eos = int(bool(ignore_eos))
        o.on_token = self._cb
        o.cancel = C.pointer(self._cancel_flag)
        self._opts = o
        if isinstance(prompt, str):
            self._prompt, self._ids = _capi.cstr(prompt, "prompt"), None
        else:
            ids = [int(t) for t in prompt]
            self._prompt, self._ids = None, (C.c_int32 * max(1, len(ids)))(*ids)
            self._n_ids = len(ids)
        session._children.add(self)  # the session closes us (cancel + join) before freeing itself
        self._thread = threading.Thread(target=self._run, name="exo_generate", daemon=True)
        self._thread.start()

    def _on_token(self, _user, ev_ptr):
        try:
            ev = ev_ptr.contents
            data = C.string_at(ev.text, ev.text_len) if ev.text and ev.text_len else b""
            piece = Piece(data.decode("utf-8", "replace"), ev.token)
            if ev.token >= 0:
                piece.logprob = ev.logprob
                piece.top = tuple((ev.top_tokens[i], ev.top_logprobs[i]) for i in range(ev.n_top))
            self._queue.put(piece)
        except BaseException as e:  # noqa: BLE001 - never unwind into C; stop and report
            self._queue.put(e)
            return 1
        return 1 if self._cancelled else 0

    def _run(self):
        lib = _capi.lib()
        stats = _capi.GenerateStats.new()
        s = self.session
        try:
            if self._ids is None:
                st = lib.exo_generate(s.handle, self._prompt, C.byref(self._opts), C.byref(stats))
            else:
                st = lib.exo_generate_tokens(s.handle, self._ids, self._n_ids, C.byref(self._opts), C.byref(stats))
            check(st, s.last_error, "exo_generate")
            self._queue.put(GenerationStats(
                prompt_tokens=stats.prompt_tokens, generation_tokens=stats.generation_tokens,
                prompt_tps=stats.prompt_tps, generation_tps=stats.generation_tps, ttft_ms=stats.ttft_ms,
                total_ms=stats.total_ms, peak_memory_bytes=stats.peak_memory_bytes,
                finish_reason=_capi.FINISH_REASONS.get(stats.finish_reason, "none")))
        except BaseException as e:  # noqa: BLE001 - handed to the iterating thread
            self._queue.put(e)
        self._queue.put(_DONE)

    def __iter__(self):
        return self

    def __next__(self):
        while True:
            item = self._queue.get()
            if item is _DONE:
                self._queue.put(_DONE)  # stay exhausted
                raise StopIteration
            if isinstance(item, GenerationStats):
                self.stats = item
                continue
            if isinstance(item, BaseException):
                self._queue.put(_DONE)
                raise item
            return item

    def cancel(self):
        """Stops after the current step; iteration then ends with finish_reason 'cancelled'."""
        self._cancelled = True
        self._cancel_flag.value = 1

    def text(self):
        """Drains the stream and returns the whole generated text."""
        return "".join(p.text for p in self)

    def close(self):
        """Cancels and waits for the worker (the session stays usable)."""
        if self._thread.is_alive():
            self.cancel()
            self._thread.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def closed(self):
        return not self._thread.is_alive()
