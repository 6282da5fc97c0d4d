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
    add_bos: int = -1  # for a text prompt: -1 (or None) as the tokenizer says, 1 / True BOS, 0 / False none

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
    def __init__(self, task, session, prompt_ids, sampler, detokenizer):
        self.task = task
        self.session = session
        self.prompt_ids = prompt_ids
        self.n_generated = 0
        self.sampler = sampler           # world_size 1 only; the last rank samples otherwise
        self.detokenizer = detokenizer
        self.next_input = None           # token to feed back; None before prefill
        self.waiting = False             # a step is travelling through the pipeline
        self.started = False
        self.held = ""                   # decoded text not streamed yet (it may begin a stop string)
        self.t0 = time.perf_counter()
        self.t_prefill = self.t_first = None
        self.stops = [s for s in (task.stop or []) if s]
        self.max_stop = max((len(s) for s in self.stops), default=0)

    def close(self):
        for obj in (self.session, self.sampler, self.detokenizer):
            if obj is not None:
                obj.close()


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
        self._eos = set(self.model.info.eos_token_ids)  # the library gathers every source of EOS ids

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
            ids = self.model.tokenize(task.prompt or "", add_bos=task.add_bos)
        if not ids:
            raise error_for(-1, f"task {task.task_id}: the prompt holds no tokens", "submit")
        sampler = detokenizer = session = None
        try:
            if self.world == 1:
                sampler = Sampler(task.sampling(), self.info.output_width)
                for t in ids:
                    sampler.accept(t)
            detokenizer = self.model.detokenizer()
            session = self.shard.session()
        except BaseException:
            for obj in (sampler, detokenizer, session):
                if obj is not None:
                    obj.close()
            raise
        self._requests[task.task_id] = _Request(task, session, ids, sampler, detokenizer)

    def step(self, timeout=0.05):
        """One round: every ready request advances by one forward, all of them in one batched
        call. Returns a list of (task_id, TokenChunk | FinishedResponse | CancelledResponse |
        ErrorChunk)."""
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
            ready = [r for r in reqs[k:] + reqs[:k] if not r.waiting]
            if ready:
                self._advance(ready, out)
        if not out and any(r.waiting for r in self._requests.values()):
            self._drain_tokens(out, int(timeout * 1000))
        return out

    def close(self):
        for req in list(self._requests.values()):
            self._end_downstream(req.task.task_id)
            req.close()
        self._requests.clear()
        for s, sampler in self._sessions.values():
            s.close()
            if sampler is not None:
                sampler.close()
        self._sessions.clear()

    # -- rank 0
    def _advance(self, reqs, out):
        """One batched forward of the ready requests: the prompt of a new one, the last sampled
        token of the others."""
        steps = [(r.session, np.asarray(r.prompt_ids if not r.started else [r.next_input], dtype=np.int32),
                  r.started or self.world == 1) for r in reqs]
        results = _model.forward_batch(steps)
        now = time.perf_counter()
        for req, x in zip(reqs, results):
            first = not req.started
            req.started = True
            if isinstance(x, ExoError):
                out.append((req.task.task_id, ErrorChunk(self.b.model_id, str(x))))
                out.extend(self._finish(req, None, error=True))
                continue
            if first:
                req.t_prefill = now
            if self.world == 1:
                try:
                    tok, lp, top = req.sampler.sample(x[-1])
                except ExoError as e:
                    out.append((req.task.task_id, ErrorChunk(self.b.model_id, str(e))))
                    out.extend(self._finish(req, None, error=True))
                    continue
                out.extend(self._on_token(req, tok, lp, top))
            else:
                meta = {"start": True, "sampling": req.task.sampling().to_dict(), "history": req.prompt_ids} \
                    if first else {}
                self.link.send("fwd", req.task.task_id, x, **meta)
                req.waiting = True

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
        if tok in self._eos:
            return self._finish(req, "stop")
        if req.sampler is not None:
            req.sampler.accept(tok)
        req.n_generated += 1
        req.next_input = tok
        try:
            req.held += req.detokenizer.push(tok)
        except ExoError as e:  # an id outside the vocabulary (a broken peer)
            return [(task.task_id, ErrorChunk(self.b.model_id, str(e)))] + self._finish(req, None, error=True)
        # Only the held text can hold a stop string: what was streamed ended max_stop - 1
        # characters before the text then known, so any stop starting there was seen already.
        hit = min((i for i in (req.held.find(s) for s in req.stops) if i >= 0), default=-1)
        finish = None
        if hit >= 0:
            piece, req.held, finish = req.held[:hit], "", "stop"
        else:
            if (task.max_output_tokens and req.n_generated >= task.max_output_tokens) or \
                    req.session.position >= self.info.max_ctx:
                finish = "length"
                piece, req.held = req.held + req.detokenizer.flush(), ""
            else:  # hold back a tail that could begin a stop string
                end = max(0, len(req.held) - (req.max_stop - 1)) if req.max_stop > 1 else len(req.held)
                piece, req.held = req.held[:end], req.held[end:]
        chunk = TokenChunk(self.b.model_id, piece, int(tok), logprob=logprob if task.logprobs else None,
                           top_logprobs=[{"token_id": t, "logprob": lp} for t, lp in top] if task.logprobs else None)
        if finish:
            chunk.finish_reason = finish
            chunk.stats = self._stats(req)
            return [(task.task_id, chunk)] + self._finish(req, finish, chunk_sent=True)
        return [(task.task_id, chunk)]

    def _stats(self, req):
        now = time.perf_counter()
        n = req.n_generated
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
            rest = req.held + req.detokenizer.flush()
            out.append((tid, TokenChunk(self.b.model_id, rest, -1, finish_reason=reason, stats=self._stats(req))))
        out.append((tid, CancelledResponse() if cancelled else FinishedResponse()))
        self._requests.pop(tid, None)
        self._cancelled_tasks.discard(tid)
        req.close()
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
        batch = []  # the "fwd" steps that arrived together run as one batched forward
        msg = self.link.recv(int(timeout * 1000))
        while msg is not None:
            header, x = msg
            rid = header["request_id"]
            if header["kind"] == "fwd":
                if any(r == rid for r, _, _ in batch):  # one step per request per batch
                    self._forward_downstream(batch)
                    batch = []
                batch.append((rid, header, x))
            else:
                self._forward_downstream(batch)  # keep each request's messages in order
                batch = []
                if header["kind"] == "end":
                    self._end_session(rid)
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
        self._forward_downstream(batch)
        return out

    def _end_session(self, rid):
        entry = self._sessions.pop(rid, None)
        if entry:
            entry[0].close()
            if entry[1] is not None:
                entry[1].close()

    def _forward_downstream(self, batch):
        steps, ready = [], []
        for rid, header, x in batch:
            try:
                if header.get("start") or rid not in self._sessions:
                    self._end_session(rid)
                    sampler = None
                    if self.is_last:
                        sampler = Sampler(SamplingParams.from_dict(header.get("sampling", {})), self.info.output_width)
                        for t in header.get("history", []):
                            sampler.accept(t)
                    try:
                        self._sessions[rid] = (self.shard.session(), sampler)
                    except BaseException:
                        if sampler is not None:
                            sampler.close()
                        raise
            except (ExoError, ValueError, TypeError) as e:
                self._send_error(rid, e)
                continue
            steps.append((self._sessions[rid][0], x, self.is_last))
            ready.append((rid, header))
        for (rid, header), y in zip(ready, _model.forward_batch(steps)):
            try:
                if isinstance(y, ExoError):
                    raise y
                if self.is_last:
                    sampler = self._sessions[rid][1]
                    tok, lp, top = sampler.sample(y[-1])
                    sampler.accept(tok)
                    self.link.send("token", rid, token=tok, logprob=lp, top=top)
                else:
                    self.link.send("fwd", rid, y, **{k: v for k, v in header.items()
                                                      if k in ("start", "sampling", "history")})
            except (ExoError, ValueError) as e:
                self._send_error(rid, e)

    def _send_error(self, rid, e):
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
