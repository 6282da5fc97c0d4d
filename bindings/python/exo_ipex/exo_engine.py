"""EXO's engine shapes over exo-ipex.

Current EXO (src/exo/worker/engines/base.py): a Builder (connect / load / build / close) makes an
Engine (warmup / submit / step / close) inside the runner subprocess. This module gives
IpexBuilder / IpexEngine with those methods, working on a whole model or on one pipeline shard
[start_layer, end_layer) (half-open, as current EXO), with hidden states handed to the next rank
through exo_ipex.transport (ZeroMQ). The old-era interface that EXO forks still use
(infer_tensor / sample / encode / decode / ensure_shard, inclusive end_layer) is
IpexInferenceEngine in exo_ipex.legacy_engine.

Every rank gets the same tasks (EXO submits each TextGeneration to all ranks of an instance);
rank 0 tokenizes, streams text and decides when a request ends; the last rank samples. The C API
has one session per sequence, so the engine keeps one session per request (up to
max_concurrent, EXO_MAX_CONCURRENT_REQUESTS = 8) and steps them round-robin: each step() runs
at most one forward per ready request.

EXO's own types (TokenChunk, FinishedResponse, ...) live in EXO; the dataclasses below have the
same fields so EXO's runner can convert them one to one (see docs/exo-integration.md)."""
import dataclasses
import itertools
import json
import os
import queue
import resource
import threading
import time

import numpy as np

from . import model as _model
from .errors import ExoError, error_for
from .runtime import Runtime
from .sampler import Sampler, SamplingParams

ENGINE_ID = "ipex"
ENGINE_NAME = "Intel IPEX"
CANCEL_ALL_TASKS = "__cancel_all__"


# ------------------------------------------------------------------ EXO-shaped data

@dataclasses.dataclass
class TextGenerationTask:
    """What the engine needs of EXO's TextGeneration task (TextGenerationTaskParams). The prompt
    is raw text after EXO's chat template, or token ids."""
    task_id: str
    prompt: str = None
    prompt_tokens: list = None
    max_output_tokens: int = None
    temperature: float = None
    top_p: float = None
    top_k: int = None
    min_p: float = None
    seed: int = None
    stop: list = None
    repetition_penalty: float = None
    repetition_context_size: int = None
    presence_penalty: float = None
    frequency_penalty: float = None
    logprobs: bool = False
    top_logprobs: int = None
    banned_tokens: list = None
    add_bos: bool = None  # prepend the model's BOS to a text prompt; None: no (see _tokenize)

    def sampling(self):
        p = SamplingParams()
        for src, dst in (("temperature", "temperature"), ("top_p", "top_p"), ("top_k", "top_k"),
                         ("min_p", "min_p"), ("seed", "seed"), ("repetition_penalty", "repetition_penalty"),
                         ("repetition_context_size", "penalty_window"), ("presence_penalty", "presence_penalty"),
                         ("frequency_penalty", "frequency_penalty")):
            v = getattr(self, src)
            if v is not None:
                setattr(p, dst, v)
        if self.logprobs:
            p.n_logprobs = min(20, self.top_logprobs or 1)
        p.banned = tuple(self.banned_tokens or ())
        return p


@dataclasses.dataclass
class GenerationStats:  # EXO api/types/api.py GenerationStats
    prompt_tps: float
    generation_tps: float
    prompt_tokens: int
    generation_tokens: int
    peak_memory_usage: int  # bytes
    prefix_cache_hit: str = "none"


@dataclasses.dataclass
class TokenChunk:  # EXO shared/types/chunks.py TokenChunk
    model: str
    text: str
    token_id: int
    finish_reason: str = None  # "stop" | "length" | None
    stats: GenerationStats = None
    logprob: float = None
    top_logprobs: list = None
    is_thinking: bool = False


@dataclasses.dataclass
class FinishedResponse:
    pass


@dataclasses.dataclass
class CancelledResponse:
    pass


@dataclasses.dataclass
class ErrorChunk:
    model: str
    error_message: str
    diagnostics: str = None


def _peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# ------------------------------------------------------------------ the builder

class IpexBuilder:
    """Builder for one runner: the whole model (world_size 1) or pipeline rank `device_rank` of
    `world_size` with layers [start_layer, end_layer). addresses: one ZeroMQ endpoint per rank
    (only for world_size > 1). runtime_options: keywords for exo_ipex.Runtime."""

    def __init__(self, model_dir, *, model_id=None, start_layer=0, end_layer=None, device_rank=0, world_size=1,
                 addresses=None, device=None, max_ctx=0, max_tokens=0, max_concurrent=None,
                 runtime=None, runtime_options=None):
        self.model_dir = os.fspath(model_dir)
        self.model_id = model_id or os.path.basename(self.model_dir.rstrip("/")).replace("--", "/")
        self.start_layer, self.end_layer = start_layer, end_layer
        self.device_rank, self.world_size = device_rank, world_size
        self.addresses = list(addresses or [])
        self.device, self.max_ctx, self.max_tokens = device, max_ctx, max_tokens
        self.max_concurrent = max_concurrent or int(os.environ.get("EXO_MAX_CONCURRENT_REQUESTS", "8"))
        self._own_runtime = runtime is None
        self.runtime = runtime
        self._runtime_options = runtime_options or {}
        self.model = self.shard = self.link = None
        if world_size > 1 and len(self.addresses) != world_size:
            raise ValueError(f"a {world_size}-rank pipeline needs {world_size} addresses, got {len(self.addresses)}")
        if not 0 <= device_rank < world_size:
            raise ValueError(f"device_rank {device_rank} outside world_size {world_size}")

    def connect(self, bound_instance=None):
        """Joins the pipeline: binds this rank's inbox and connects to the next rank."""
        if self.world_size > 1 and self.link is None:
            from .transport import PipelineLink
            self.link = PipelineLink(self.device_rank, self.addresses)

    def load(self, bound_instance=None):
        """Generator of (layers_loaded, total) while the shard's weights load (EXO's
        ModelLoadingResponse). Raises the load's ExoError at the end when it fails."""
        if self.runtime is None:
            self.runtime = Runtime(**self._runtime_options)
        if self.model is None:
            self.model = _model.Model(self.runtime, self.model_dir)
        n = self.model.info.n_layers
        end = n if self.end_layer is None else self.end_layer
        events = queue.Queue()
        result = {}

        def work():
            try:
                result["shard"] = _model.Shard(self.model, self.start_layer, end, device=self.device,
                                               max_ctx=self.max_ctx, max_tokens=self.max_tokens,
                                               progress=lambda done, total: events.put((done, total)))
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                result["error"] = e
            events.put(None)

        t = threading.Thread(target=work, name="exo_shard_load", daemon=True)
        t.start()
        while (item := events.get()) is not None:
            yield item
        t.join()
        if "error" in result:
            raise result["error"]
        self.shard = result["shard"]

    def build(self):
        if self.shard is None:
            for _ in self.load():
                pass
        return IpexEngine(self)

    def close(self):
        if self.link is not None:
            self.link.close()
            self.link = None
        for obj in (self.shard, self.model):
            if obj is not None:
                obj.close()
        self.shard = self.model = None
        if self._own_runtime and self.runtime is not None:
            self.runtime.close()
            self.runtime = None


# ------------------------------------------------------------------ per-request state on rank 0

class _Request:
    def __init__(self, task, session, prompt_ids, eos, sampler):
        self.task = task
        self.session = session
        self.prompt_ids = prompt_ids
        self.generated = []
        self.eos = eos
        self.sampler = sampler
        self.next_input = None       # token to feed back; None before prefill
        self.waiting = False         # a step is travelling through the pipeline
        self.started = False
        self.text = b""              # decoded generated text
        self.emitted = 0             # bytes of text already streamed
        self.t0 = time.perf_counter()
        self.t_prefill = self.t_first = None
        stops = [s.encode() for s in (task.stop or []) if s]
        self.stops = stops
        self.max_stop = max((len(s) for s in stops), default=0)


def _utf8_safe_end(data, start, end):
    """Moves end back so data[start:end] does not end inside a UTF-8 character."""
    i = end
    while i > start and (data[i - 1] & 0xC0) == 0x80:
        i -= 1
    if i > start:
        lead = data[i - 1]
        need = 1 if lead < 0x80 else 2 if lead >> 5 == 0b110 else 3 if lead >> 4 == 0b1110 else 4 if lead >> 3 == 0b11110 else 1
        if end - (i - 1) < need:
            return i - 1
    return end


class IpexEngine:
    """EXO Engine: warmup / submit / step / close, with cancel() / should_cancel()."""

    def __init__(self, builder):
        self.b = builder
        self.shard = builder.shard
        self.model = builder.model
        self.link = builder.link
        self.info = self.shard.info
        self.rank, self.world = builder.device_rank, builder.world_size
        self.is_first, self.is_last = self.info.embeds, self.info.has_head
        self._requests = {}             # rank 0: task_id -> _Request
        self._sessions = {}             # other ranks: request_id -> (Session, Sampler or None)
        self._submitted = set()         # other ranks: task ids EXO submitted here
        self._ended = set()             # other ranks: request ids that ended before submit
        self._finished_early = []       # other ranks: submitted after their end message
        self._cancelled_tasks = set()
        self._rr = itertools.count()
        self._eos = set(self.model.info.eos_token_ids) | self._generation_config_eos()

    def _generation_config_eos(self):
        try:
            with open(os.path.join(self.model.info.path, "generation_config.json")) as f:
                eos = json.load(f).get("eos_token_id")
        except (OSError, ValueError):
            return set()
        return set(eos if isinstance(eos, list) else [eos] if isinstance(eos, int) else [])

    # -- EXO's Engine interface
    def warmup(self):
        self.shard.warmup()

    def cancel(self, task_id=CANCEL_ALL_TASKS):
        self._cancelled_tasks.add(task_id)

    def should_cancel(self, task_id):
        return task_id in self._cancelled_tasks or CANCEL_ALL_TASKS in self._cancelled_tasks

    def submit(self, task):
        if not isinstance(task, TextGenerationTask):
            task = task_from_exo(task)
        if not self.is_first:
            if task.task_id in self._ended:  # rank 0 already finished it: report at the next step
                self._ended.discard(task.task_id)
                self._finished_early.append(task.task_id)
            else:
                self._submitted.add(task.task_id)
            return
        if len(self._requests) >= self.b.max_concurrent:
            raise error_for(-1, f"{len(self._requests)} requests already run (max_concurrent "
                               f"{self.b.max_concurrent})", "submit")
        if task.prompt_tokens is not None:
            ids = [int(t) for t in task.prompt_tokens]
        else:
            # The C API cannot say whether the tokenizer itself adds BOS (exo_generate's
            # add_bos = -1 can); EXO's chat templates write BOS into the text, so the default
            # is none.
            ids = self.model.tokenize(task.prompt or "", add_bos=bool(task.add_bos))
        if not ids:
            raise error_for(-1, f"task {task.task_id}: the prompt holds no tokens", "submit")
        params = task.sampling()
        sampler = None
        if self.world == 1:
            sampler = Sampler(params, self.info.output_width)
            for t in ids:
                sampler.accept(t)
        session = self.shard.session()
        self._requests[task.task_id] = _Request(task, session, ids, self._eos, sampler)

    def step(self, timeout=0.05):
        """One round: every ready request advances by one forward. Returns a list of
        (task_id, TokenChunk | FinishedResponse | CancelledResponse | ErrorChunk)."""
        if not self.is_first:
            return self._step_downstream(timeout)
        out = []
        for tid, req in list(self._requests.items()):
            if self.should_cancel(tid):
                out.extend(self._finish(req, None, cancelled=True))
        self._drain_tokens(out, 0)
        reqs = list(self._requests.values())
        if reqs:
            k = next(self._rr) % len(reqs)
            for req in reqs[k:] + reqs[:k]:
                if not req.waiting and req.task.task_id in self._requests:
                    try:
                        self._advance(req, out)
                    except ExoError as e:
                        out.append((req.task.task_id, ErrorChunk(self.b.model_id, str(e))))
                        out.extend(self._finish(req, None, error=True))
        if not out and any(r.waiting for r in self._requests.values()):
            self._drain_tokens(out, int(timeout * 1000))
        return out

    def close(self):
        for req in list(self._requests.values()):
            self._end_downstream(req.task.task_id)
            req.session.close()
        self._requests.clear()
        for s, _ in self._sessions.values():
            s.close()
        self._sessions.clear()

    # -- rank 0
    def _advance(self, req, out):
        first = not req.started
        if first:
            req.started = True
            x = self._forward_tokens(req.session, req.prompt_ids, last_only=self.world == 1)
            req.t_prefill = time.perf_counter()
        else:
            x = self._forward_tokens(req.session, [req.next_input], last_only=True)
        if self.world == 1:
            tok, lp, top = req.sampler.sample(x[-1])
            out.extend(self._on_token(req, tok, lp, top))
        else:
            meta = {"start": True, "sampling": req.task.sampling().to_dict(), "history": req.prompt_ids} if first else {}
            self.link.send("fwd", req.task.task_id, x, **meta)
            req.waiting = True

    def _forward_tokens(self, session, ids, last_only):
        return session.forward_tokens(np.asarray(ids, dtype=np.int32), last_only=last_only)

    def _drain_tokens(self, out, timeout_ms):
        if self.link is None:
            return
        msg = self.link.recv(timeout_ms)
        while msg is not None:
            header, _ = msg
            req = self._requests.get(header["request_id"])
            if header["kind"] == "token" and req is not None:
                req.waiting = False
                out.extend(self._on_token(req, header["token"], header["logprob"], header.get("top", [])))
            elif header["kind"] == "error" and req is not None:
                out.append((req.task.task_id, ErrorChunk(self.b.model_id, header.get("message", ""))))
                out.extend(self._finish(req, None, error=True))
            msg = self.link.recv(0)

    def _on_token(self, req, tok, logprob, top):
        if req.t_first is None:
            req.t_first = time.perf_counter()
        task = req.task
        if tok in req.eos:
            return self._finish(req, "stop")
        if req.sampler is not None:
            req.sampler.accept(tok)
        req.generated.append(tok)
        req.next_input = tok
        req.text = self.model.detokenize_bytes(req.generated)
        finish = None
        end = len(req.text)
        hit = min((i for i in (req.text.find(s, max(0, req.emitted - req.max_stop)) for s in req.stops) if i >= 0),
                  default=-1)
        if hit >= 0:
            req.text = req.text[:max(hit, req.emitted)]
            end = len(req.text)
            finish = "stop"
        else:
            if req.max_stop > 1:
                end = max(req.emitted, end - (req.max_stop - 1))
            end = _utf8_safe_end(req.text, req.emitted, end)
            if task.max_output_tokens and len(req.generated) >= task.max_output_tokens:
                finish = "length"
            elif req.session.position + 1 >= self.info.max_ctx:
                finish = "length"
        if finish:
            end = len(req.text)
        piece = req.text[req.emitted:end].decode("utf-8", "replace")
        req.emitted = end
        chunk = TokenChunk(self.b.model_id, piece, int(tok), logprob=logprob if task.logprobs else None,
                           top_logprobs=[{"token_id": t, "logprob": lp} for t, lp in top] if task.logprobs else None)
        if finish:
            chunk.finish_reason = finish
            chunk.stats = self._stats(req)
            return [(task.task_id, chunk)] + self._finish(req, finish, chunk_sent=True)
        return [(task.task_id, chunk)]

    def _stats(self, req):
        now = time.perf_counter()
        n = len(req.generated)
        prefill = (req.t_prefill or now) - req.t0
        decode = now - (req.t_first or now)
        return GenerationStats(prompt_tps=len(req.prompt_ids) / max(prefill, 1e-9),
                               generation_tps=(n - 1) / decode if n > 1 and decode > 0 else 0.0,
                               prompt_tokens=len(req.prompt_ids), generation_tokens=n,
                               peak_memory_usage=_peak_rss_bytes())

    def _finish(self, req, reason, cancelled=False, error=False, chunk_sent=False):
        tid = req.task.task_id
        out = []
        if not cancelled and not error and not chunk_sent:
            rest = req.text[req.emitted:].decode("utf-8", "replace")
            out.append((tid, TokenChunk(self.b.model_id, rest, -1, finish_reason=reason, stats=self._stats(req))))
        out.append((tid, CancelledResponse() if cancelled else FinishedResponse()))
        self._requests.pop(tid, None)
        self._cancelled_tasks.discard(tid)
        req.session.close()
        self._end_downstream(tid)
        return out

    def _end_downstream(self, tid):
        if self.link is not None:
            self.link.send("end", tid)

    # -- ranks after the first
    def _step_downstream(self, timeout):
        out = [(tid, FinishedResponse()) for tid in self._finished_early]
        self._finished_early.clear()
        for tid in [t for t in self._submitted if self.should_cancel(t)]:
            self._submitted.discard(tid)
            self._cancelled_tasks.discard(tid)
            out.append((tid, CancelledResponse()))  # rank 0 cancels too and ends the request
        msg = self.link.recv(int(timeout * 1000))
        while msg is not None:
            header, x = msg
            rid = header["request_id"]
            if header["kind"] == "fwd":
                self._forward_downstream(rid, header, x)
            elif header["kind"] == "end":
                entry = self._sessions.pop(rid, None)
                if entry:
                    entry[0].close()
                if not self.is_last:
                    self.link.send("end", rid)
                if rid in self._submitted:
                    self._submitted.discard(rid)
                    out.append((rid, FinishedResponse()))
                else:
                    self._ended.add(rid)
            elif header["kind"] == "error":
                self.link.send("error", rid, message=header.get("message", ""))  # on towards rank 0
            msg = self.link.recv(0)
        return out

    def _forward_downstream(self, rid, header, x):
        try:
            if header.get("start") or rid not in self._sessions:
                old = self._sessions.pop(rid, None)
                if old:
                    old[0].close()
                sampler = None
                if self.is_last:
                    sampler = Sampler(SamplingParams.from_dict(header.get("sampling", {})), self.info.output_width)
                    for t in header.get("history", []):
                        sampler.accept(t)
                self._sessions[rid] = (self.shard.session(), sampler)
            session, sampler = self._sessions[rid]
            y = session.forward_hidden(x, last_only=self.is_last)
            if self.is_last:
                tok, lp, top = sampler.sample(y[-1])
                sampler.accept(tok)
                self.link.send("token", rid, token=tok, logprob=lp, top=top)
            else:
                self.link.send("fwd", rid, y, **{k: v for k, v in header.items()
                                                  if k in ("start", "sampling", "history")})
        except (ExoError, ValueError) as e:
            # Back to rank 0 around the ring, which ends the request with an ErrorChunk.
            # (A middle rank's message has to pass the later ranks: they forward "error" as is.)
            self.link.send("error", rid, message=f"rank {self.rank}: {e}")


def task_from_exo(task):
    """Reads EXO's TextGeneration task (task.task_id, task.task_params: TextGenerationTaskParams)
    into a TextGenerationTask. The chat template is EXO's: pass the rendered prompt as
    task_params.prompt (or prompt_tokens)."""
    params = getattr(task, "task_params", task)
    fields = {f.name for f in dataclasses.fields(TextGenerationTask)}
    kw = {k: getattr(params, k) for k in fields if hasattr(params, k)}
    kw["task_id"] = str(getattr(task, "task_id", kw.get("task_id")))
    if "stop" in kw and isinstance(kw["stop"], str):
        kw["stop"] = [kw["stop"]]
    return TextGenerationTask(**kw)
