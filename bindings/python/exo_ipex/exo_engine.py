"""EXO's engine over exo-ipex: `IpexBuilder` and `IpexEngine`, EXO's own Builder / Engine.

EXO's runner (src/exo/worker/runner/runner.py at b5375f8) drives them: `builder.connect(bound)`
on ConnectToGroup, `for p in builder.load(bound): p.layers_loaded / p.total` on LoadModel,
`engine = builder.build()`, `engine.warmup()`, then for every TextGeneration `engine.submit(task)`
and `engine.step()` until its tasks end, matching `case CancelledResponse()` / `case
FinishedResponse()` and sending anything else as `ChunkGenerated(command_id, chunk)`; on
Shutdown `engine.close()` (the builder is gone by then: the engine owns and frees everything).
The classes come from exo_ipex.exo_types: EXO's when EXO is importable, stand-ins otherwise.

What the engine does the way EXO's MLX BatchGenerator does (worker/runner/llm_inference/
batch_generator.py): the prompt is the model's chat template over the task's messages
(exo_ipex.chat_template); requests past `EXO_MAX_CONCURRENT_REQUESTS` wait in a queue and start
as slots free; cancels arrive on the `cancel_receiver` (drained each step; `CANCEL_ALL_TASKS`
ends every request and is cleared, and `submit` clears it too); prefill progress goes to the
`event_sender` as `PrefillProgressChunk`; the last chunk of a request carries the real EOS id,
`GenerationStats` (peak memory as `Memory`) and `Usage`; logprobs are `TopLogprobItem`s.

Pipelines: every rank gets the same tasks; rank 0 tokenizes, streams text and decides when a
request ends; the last rank samples (exo_ipex.transport carries hidden states around a ring).
The C API has one session per sequence, so each request has its own session, and each step()
runs every ready request's next forward in one batched call (continuous batching: requests join
and leave between steps). On one process a prompt is prefilled in chunks: a step carries at most
`prefill_chunk` prompt tokens (EXO_IPEX_PREFILL_CHUNK, 128) beside the running requests' decode
tokens, so a long prompt never stalls the others' streams for longer than one chunk. A prompt
whose beginning some session holds already starts from a copy of those KV positions
(exo_ipex.prefix_cache; EXO_IPEX_PREFIX_CACHE_BYTES bounds the finished sessions kept)."""
import collections
import dataclasses
import logging
import os
import queue
import resource
import threading
import time

import jinja2
import numpy as np

from . import model as _model
from .chat_template import ChatTemplate, render_task
from .prefix_cache import PrefixCache
from .errors import ExoError, error_for
from .exo_types import (CANCEL_ALL_TASKS, Builder, CancelledResponse, ChunkGenerated, CompletionTokensDetails,
                        Engine, ErrorChunk, FinishedResponse, GenerationStats, Memory, ModelLoadingResponse,
                        PrefillProgressChunk, PromptTokensDetails, TokenChunk, TopLogprobItem, Usage)
from .runtime import Runtime
from .sampler import Sampler, SamplingParams

ENGINE_ID = "ipex"
ENGINE_NAME = "Intel IPEX"
DEFAULT_MODELS_DIR = os.path.expanduser("~/.local/share/exo/models")  # EXO_DEFAULT_MODELS_DIR
# Prompt tokens one step carries at most (docs/exo-integration.md, "Continuous batching"): the
# running requests' next token waits for at most one such chunk.
DEFAULT_PREFILL_CHUNK = 128
# Finished requests' sessions kept for prefix reuse: at most this many bytes of KV cache, and at
# most max_concurrent entries (each is a whole session's cache: Session.kv_bytes).
DEFAULT_PREFIX_CACHE_BYTES = 1 << 30
# A shorter common prefix is recomputed: too little work to save.
PREFIX_MIN_TOKENS = 8
log = logging.getLogger("exo_ipex.engine")


# ------------------------------------------------------------------ a request, as the engine runs it

@dataclasses.dataclass
class TextGenerationTask:
    """One request in the engine's terms: EXO's TextGeneration after its chat template (see
    request_from_exo), or built directly from a prompt or token ids (tools, tests)."""
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
    add_bos: int = -1  # for a text prompt: -1 as the tokenizer says, 1 BOS, 0 none
    command_id: str = None  # EXO's: where prefill progress goes
    prefix_cache: bool = True  # may reuse and leave cached KV (EXO: not in bench mode unless asked)

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


def request_from_exo(task, template, eos_ids):
    """EXO's TextGeneration (task_id, command_id, task_params) as a TextGenerationTask: the
    prompt rendered by the model's chat template from input / instructions /
    chat_template_messages / tools / the thinking switch; bench mode bans EOS as MLX does."""
    p = task.task_params
    prompt, templated = render_task(template, p)
    stop = p.stop
    if isinstance(stop, str):
        stop = [stop]
    return TextGenerationTask(
        task_id=task.task_id, command_id=getattr(task, "command_id", None), prompt=prompt,
        add_bos=0 if templated else -1, max_output_tokens=p.max_output_tokens, temperature=p.temperature,
        top_p=p.top_p, top_k=p.top_k, min_p=p.min_p, seed=p.seed, stop=list(stop or []),
        repetition_penalty=p.repetition_penalty, repetition_context_size=p.repetition_context_size,
        presence_penalty=p.presence_penalty, frequency_penalty=p.frequency_penalty, logprobs=bool(p.logprobs),
        top_logprobs=p.top_logprobs, banned_tokens=sorted(eos_ids) if p.bench else None,
        prefix_cache=not p.bench or bool(getattr(p, "use_prefix_cache", False)))


def _peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def pipeline_addresses(bound_instance):
    """ZeroMQ endpoints of an instance's ring, as this node sees them: EXO's ring instances carry
    `hosts_by_node[node]`, one Host per rank (this rank's own entry is the address to bind,
    the next rank's the address to reach it by)."""
    hosts = bound_instance.instance.hosts_by_node[bound_instance.bound_node_id]
    return [f"tcp://{h.ip}:{h.port}" for h in hosts]


# ------------------------------------------------------------------ the builder

class IpexBuilder(Builder):
    """EXO's Builder for one runner. EXO's bootstrap makes it as it makes MlxBuilder:
    IpexBuilder(model_id=..., event_sender=..., cancel_receiver=...); the shard (layers,
    rank, world size) comes from the bound instance at connect/load. Keywords serve callers
    without a bound instance: model_dir (else models_dir/<org>--<name>), start_layer, end_layer,
    device_rank, world_size, addresses (one ZeroMQ endpoint per rank), device, devices (the
    node's devices the shard's layers spread over, exo_shard_options.devices: "auto" by default,
    i.e. every usable GPU when the node has several and device / EXO_DEVICE pins none; a list
    "plugin:N,plugin:N" names them; docs/placement.md), tensor_parallel (else
    EXO_IPEX_TENSOR_PARALLEL, 0: off; N splits every layer of the shard over the first N of
    `devices`, the ranks stepping at once; not with a pinned device), max_concurrent
    (else EXO_MAX_CONCURRENT_REQUESTS, 8), prefill_chunk (else EXO_IPEX_PREFILL_CHUNK, 128),
    prefix_cache_bytes (else EXO_IPEX_PREFIX_CACHE_BYTES, 1 GiB; 0: no prefix reuse),
    runtime / runtime_options."""

    def __init__(self, model_id=None, event_sender=None, cancel_receiver=None, *, model_dir=None, models_dir=None,
                 start_layer=0, end_layer=None, device_rank=0, world_size=1, addresses=None, device=None,
                 devices="auto", tensor_parallel=None, max_ctx=0, max_tokens=0, max_concurrent=None, prefill_chunk=None,
                 prefix_cache_bytes=None, runtime=None, runtime_options=None):
        if model_id is None and model_dir is None:
            raise ValueError("IpexBuilder needs a model_id or a model_dir")
        self.model_id = str(model_id) if model_id is not None else \
            os.path.basename(os.fspath(model_dir).rstrip("/")).replace("--", "/")
        self.models_dir = models_dir or os.environ.get("EXO_MODELS_DIR") or DEFAULT_MODELS_DIR
        self.model_dir = os.fspath(model_dir) if model_dir is not None else None
        self.event_sender, self.cancel_receiver = event_sender, cancel_receiver
        self.start_layer, self.end_layer = start_layer, end_layer
        self.device_rank, self.world_size = device_rank, world_size
        self.addresses = list(addresses or [])
        self.device = device if device is not None else os.environ.get("EXO_DEVICE")
        self.devices = None if self.device else devices  # a pinned device wins
        self.tensor_parallel = int(tensor_parallel if tensor_parallel is not None else
                                   os.environ.get("EXO_IPEX_TENSOR_PARALLEL", "0"))
        if self.tensor_parallel and self.device:
            raise ValueError(f"tensor_parallel {self.tensor_parallel} splits layers over several devices; "
                             f"device {self.device} pins one (name them in devices)")
        self.max_ctx, self.max_tokens = max_ctx, max_tokens
        self.max_concurrent = max_concurrent or int(os.environ.get("EXO_MAX_CONCURRENT_REQUESTS", "8"))
        self.prefill_chunk = int(prefill_chunk if prefill_chunk is not None else
                                 os.environ.get("EXO_IPEX_PREFILL_CHUNK", DEFAULT_PREFILL_CHUNK))
        if self.prefill_chunk < 1:
            raise ValueError(f"prefill_chunk is {self.prefill_chunk}; a step must carry at least one prompt token")
        self.prefix_cache_bytes = int(prefix_cache_bytes if prefix_cache_bytes is not None else
                                      os.environ.get("EXO_IPEX_PREFIX_CACHE_BYTES", DEFAULT_PREFIX_CACHE_BYTES))
        self._own_runtime = runtime is None
        self.runtime = runtime
        self._runtime_options = runtime_options or {}
        self.model = self.shard = self.link = None
        self._check_ranks()

    def _check_ranks(self):
        if self.world_size > 1 and len(self.addresses) != self.world_size:
            raise ValueError(f"a {self.world_size}-rank pipeline needs {self.world_size} addresses, "
                             f"got {len(self.addresses)}")
        if not 0 <= self.device_rank < self.world_size:
            raise ValueError(f"device_rank {self.device_rank} outside world_size {self.world_size}")

    def _bind(self, bound_instance):
        """The shard of this runner from EXO's BoundInstance (PipelineShardMetadata: half-open
        [start_layer, end_layer) as the C API)."""
        if bound_instance is None:
            return
        shard = bound_instance.bound_shard
        self.model_id = str(shard.model_card.model_id)
        self.start_layer, self.end_layer = shard.start_layer, shard.end_layer
        self.device_rank, self.world_size = shard.device_rank, shard.world_size
        if self.world_size > 1 and not self.addresses:
            self.addresses = pipeline_addresses(bound_instance)
        self._check_ranks()

    def _model_dir(self):
        if self.model_dir is not None:
            return self.model_dir
        try:  # EXO's own path rule where EXO runs
            from exo.shared.models.model_cards import ModelId  # noqa: F401
            from exo.worker.download.download_utils import build_model_path
            return str(build_model_path(self.model_id))
        except ImportError:
            return os.path.join(self.models_dir, self.model_id.replace("/", "--"))

    def connect(self, bound_instance=None):
        """Joins the pipeline: binds this rank's inbox and connects to the next rank."""
        self._bind(bound_instance)
        if self.world_size > 1 and self.link is None:
            from .transport import PipelineLink
            self.link = PipelineLink(self.device_rank, self.addresses)

    def load(self, bound_instance=None):
        """Generator of ModelLoadingResponse(layers_loaded, total) while the shard's weights
        load; raises the load's ExoError at the end when it fails."""
        self._bind(bound_instance)
        if self.world_size > 1 and self.link is None:
            self.connect()
        if self.runtime is None:
            self.runtime = Runtime(**self._runtime_options)
        if self.model is None:
            self.model = _model.Model(self.runtime, self._model_dir())
        n = self.model.info.n_layers
        end = n if self.end_layer is None else self.end_layer
        events = queue.Queue()
        result = {}

        def work():
            try:
                result["shard"] = _model.Shard(self.model, self.start_layer, end, device=self.device,
                                               devices=self.devices, tensor_parallel=self.tensor_parallel,
                                               max_ctx=self.max_ctx, max_tokens=self.max_tokens,
                                               progress=lambda done, total: events.put((done, total)))
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                result["error"] = e
            events.put(None)

        t = threading.Thread(target=work, name="exo_shard_load", daemon=True)
        t.start()
        while (item := events.get()) is not None:
            yield ModelLoadingResponse(layers_loaded=item[0], total=item[1])
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
        """Frees the link, shard, model and runtime (the engine's close() calls this)."""
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
    def __init__(self, task, session, prompt_ids, sampler, detokenizer, cached=0):
        self.task = task
        self.session = session
        self.prompt_ids = prompt_ids
        self.cached = cached             # prompt tokens whose KV came from another session
        self.fed = cached                # prompt tokens in the KV cache
        self.kv_tokens = list(prompt_ids[:cached])  # every token in the KV cache, in order
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

    @property
    def prefilling(self):
        return self.fed < len(self.prompt_ids)

    def close(self):
        for obj in (self.session, self.sampler, self.detokenizer):
            if obj is not None:
                obj.close()
        self.session = None


class IpexEngine(Engine):
    """EXO's Engine: warmup / submit / step / close / serve_prefill, with should_cancel (EXO's)
    and cancel() for callers without a cancel channel."""

    def __init__(self, builder):
        self.b = builder
        self.shard = builder.shard
        self.model = builder.model
        self.link = builder.link
        self.info = self.shard.info
        self.rank, self.world = builder.device_rank, builder.world_size
        self.is_first, self.is_last = self.info.embeds, self.info.has_head
        self.model_id = builder.model_id
        self.event_sender, self.cancel_receiver = builder.event_sender, builder.cancel_receiver
        self.template = ChatTemplate.from_model_dir(self.model.info.path) if self.is_first else None
        self._queue = collections.deque()  # rank 0: submitted, waiting for a slot
        self._failed = []               # rank 0: (task_id, why) of tasks that could not be read
        self._requests = {}             # rank 0: task_id -> _Request (at most max_concurrent)
        self._sessions = {}             # other ranks: request_id -> (Session, Sampler or None)
        self._submitted = set()         # other ranks: task ids EXO submitted here
        self._ended = {}                # other ranks: request id -> cancelled, ended before submit
        self._finished_early = []       # other ranks: submitted after their end message
        self._cancelled_tasks = set()
        self._early_cancels = {}        # task ids cancelled before submit (insertion-ordered, bounded)
        self._cancel_channel_closed = False
        self._eos = set(self.model.info.eos_token_ids)  # the library gathers every source of EOS ids
        # Prefix reuse and chunked prefill need the whole model here: in a pipeline every rank
        # holds its own sessions, and the last rank samples after every forward it gets.
        self._prefix = PrefixCache(self.shard, builder.prefix_cache_bytes if self.world == 1 else 0,
                                   builder.max_concurrent, PREFIX_MIN_TOKENS)
        self._closed = False

    # -- EXO's Engine interface
    def warmup(self):
        self.shard.warmup()

    def cancel(self, task_id=CANCEL_ALL_TASKS):
        """What a task id on EXO's cancel channel does (applied at the next step)."""
        self._cancelled_tasks.add(task_id)

    def submit(self, task):
        """EXO's TextGeneration (or a TextGenerationTask). Never refuses for load: past
        max_concurrent a request waits for a slot. Clears a pending cancel-all, as MLX does;
        what the cancel channel holds is read first, so a cancel-all sent before this task
        arrived does not end it, and a cancel sent for this task before it arrived does."""
        self._collect_cancels()
        if CANCEL_ALL_TASKS in self._cancelled_tasks:  # still ends what was in flight before
            self._cancelled_tasks.discard(CANCEL_ALL_TASKS)
            self._cancelled_tasks.update(self._requests)
            self._cancelled_tasks.update(t.task_id for t in self._queue)
            self._cancelled_tasks.update(self._submitted)
        if task.task_id in self._early_cancels:  # cancelled before the runner handed it over
            self._early_cancels.pop(task.task_id)
            self._cancelled_tasks.add(task.task_id)
        if not isinstance(task, TextGenerationTask):
            if not self.is_first:
                task = TextGenerationTask(task_id=task.task_id)
            else:
                try:
                    task = request_from_exo(task, self.template, self._eos)
                except (ExoError, jinja2.TemplateError, TypeError, ValueError) as e:
                    # the runner must not die for one request: it ends at the next step
                    self._failed.append((task.task_id, f"chat template: {e}"))
                    return
        if not self.is_first:
            if task.task_id in self._ended:  # rank 0 already ended it: report at the next step
                self._finished_early.append((task.task_id, self._ended.pop(task.task_id)))
            else:
                self._submitted.add(task.task_id)
            return
        self._queue.append(task)

    def step(self, timeout=0.05):
        """One round: cancels from the channel applied, waiting requests started while slots
        are free, every ready request advanced by one forward (all in one batched call).
        Returns a list of (task_id, TokenChunk | ErrorChunk | FinishedResponse |
        CancelledResponse)."""
        self._collect_cancels()
        if not self.is_first:
            return self._step_downstream(timeout)
        out = self._apply_cancellations()
        gone = {tid for tid, _ in out}
        for tid, message in self._failed:
            if tid in gone:  # cancelled already: nothing more may follow its CancelledResponse
                continue
            out += [(tid, ErrorChunk(model=self.model_id, error_message=message)), (tid, FinishedResponse())]
        self._failed.clear()
        while self._queue and len(self._requests) < self.b.max_concurrent:
            self._start(self._queue.popleft(), out)
        self._drain_tokens(out, 0)
        # in the order they started: the prompt budget goes to the oldest prefill first
        ready = [r for r in self._requests.values() if not r.waiting]
        if ready:
            self._advance(ready, out)
        if not out and any(r.waiting for r in self._requests.values()):
            self._drain_tokens(out, int(timeout * 1000))
        return out

    def prefix_cache_stats(self):
        """The prefix cache so far: hits, cached_prompt_tokens (not recomputed), entries, bytes
        (held now), budget_bytes, evictions. Each request's Usage says its own cached tokens."""
        return self._prefix.stats()

    def serve_prefill(self, request, wfile):
        """EXO's disaggregated prefill ships an MLX KV cache over its own wire format; this
        engine's KV cache lives in the C library's device buffers in another layout, so it
        cannot serve one. The runner catches this and logs it; the requester prefills itself."""
        raise NotImplementedError("exo-ipex cannot serve MLX KV caches for disaggregated prefill")

    def close(self):
        """EXO calls this once, at Shutdown: frees every request, session, the shard, model,
        runtime and the pipeline sockets (EXO drops the builder after build())."""
        if self._closed:
            return
        self._closed = True
        for req in list(self._requests.values()):
            self._end_downstream(req.task.task_id, cancelled=True)
            req.close()
        self._requests.clear()
        self._queue.clear()
        self._prefix.close()
        for s, sampler in self._sessions.values():
            s.close()
            if sampler is not None:
                sampler.close()
        self._sessions.clear()
        self.b.close()
        self.link = None

    # -- cancellation
    def _collect_cancels(self):
        """Reads EXO's cancel channel (MpReceiver.collect(): everything waiting, no blocking).
        EXO's supervisor, going down, sends CANCEL_ALL_TASKS and closes the channel; the
        receiver's collect() then raises EndOfStream (dropping what it had gathered) and
        ClosedResourceError after that. A closed channel is read as that cancel-all, once,
        and never read again, instead of raising out of step()."""
        rx = self.cancel_receiver
        if rx is None or self._cancel_channel_closed:
            return
        try:
            ids = rx.collect()
        except Exception as e:  # anyio's EndOfStream / ClosedResourceError (anyio is EXO's)
            if type(e).__name__ not in ("EndOfStream", "ClosedResourceError", "BrokenResourceError"):
                raise
            log.info("cancel channel closed (%s): every request is cancelled", type(e).__name__)
            self._cancel_channel_closed = True
            ids = [CANCEL_ALL_TASKS]
        for task_id in ids:
            self._cancelled_tasks.add(task_id)

    def _known(self, tid):
        return tid in self._requests or tid in self._submitted or any(t.task_id == tid for t in self._queue) \
            or any(t == tid for t, _ in self._failed)

    def _remember_early_cancels(self):
        """A task id cancelled before the engine has seen it: EXO's supervisor sends the cancel on
        its own channel while the task may still wait in the runner's work queue. Kept (a
        bounded few) so that the task, once submitted, ends as cancelled."""
        for tid in self._cancelled_tasks:
            if tid != CANCEL_ALL_TASKS and not self._known(tid):
                self._early_cancels[tid] = None
        while len(self._early_cancels) > 4 * self.b.max_concurrent + 16:
            self._early_cancels.pop(next(iter(self._early_cancels)))

    def _apply_cancellations(self):
        """Rank 0: every cancelled request (running or waiting) ends with CancelledResponse; an
        unknown id gets one too (MLX answers every cancelled id). Cancel-all ends what runs now
        and is then cleared: later requests run."""
        if not self._cancelled_tasks:
            return []
        self._remember_early_cancels()
        cancel_all = CANCEL_ALL_TASKS in self._cancelled_tasks
        out = []
        for tid, req in list(self._requests.items()):
            if cancel_all or tid in self._cancelled_tasks:
                out.extend(self._finish(req, None, cancelled=True))
        for task in list(self._queue):
            if cancel_all or task.task_id in self._cancelled_tasks:
                self._queue.remove(task)
                out.append((task.task_id, CancelledResponse()))
        done = {tid for tid, _ in out}
        out.extend((tid, CancelledResponse()) for tid in self._cancelled_tasks
                   if tid != CANCEL_ALL_TASKS and tid not in done)
        self._cancelled_tasks.clear()
        return out

    # -- rank 0
    def _start(self, task, out):
        """Tokenizes and opens the request's session; a failure ends that request only."""
        sampler = detokenizer = session = None
        try:
            if task.prompt_tokens is not None:
                ids = [int(t) for t in task.prompt_tokens]
            else:
                ids = self.model.tokenize(task.prompt or "", add_bos=task.add_bos)
            if not ids:
                raise error_for(-1, f"task {task.task_id}: the prompt holds no tokens", "submit")
            if self.world == 1:
                sampler = Sampler(task.sampling(), self.info.output_width)
                for t in ids:
                    sampler.accept(t)
            detokenizer = self.model.detokenizer()
            cached = 0
            if task.prefix_cache and self._prefix.enabled:
                running = [(r.session, r.kv_tokens) for r in self._requests.values()]
                session, cached = self._prefix.acquire(ids, running)
                if cached:
                    log.info("task %s: %d of %d prompt tokens from the prefix cache", task.task_id, cached, len(ids))
            else:
                session = self._prefix.new_session()
        except (ExoError, ValueError) as e:
            for obj in (sampler, detokenizer, session):
                if obj is not None:
                    obj.close()
            out.append((task.task_id, ErrorChunk(model=self.model_id, error_message=str(e))))
            out.append((task.task_id, FinishedResponse()))
            return
        self._requests[task.task_id] = _Request(task, session, ids, sampler, detokenizer, cached)

    def _progress(self, req, processed):
        if self.event_sender is not None and req.task.command_id is not None:
            self.event_sender.send(ChunkGenerated(command_id=req.task.command_id, chunk=PrefillProgressChunk(
                model=self.model_id, processed_tokens=processed, total_tokens=len(req.prompt_ids))))

    def _advance(self, reqs, out):
        """One batched forward of the ready requests: the last sampled token of those decoding,
        and prompt tokens of those prefilling. On one process the prompt tokens of a step are at
        most prefill_chunk, given to the requests in the order they started (a request past the
        budget waits a step; one that has prefilled its whole prompt samples its first token);
        a pipeline's rank 0 sends a whole prompt at once (the last rank samples every forward)."""
        budget = self.b.prefill_chunk if self.world == 1 else None
        steps, stepped = [], []
        for r in reqs:
            if not r.prefilling:
                ids = [r.next_input]
            else:
                n = len(r.prompt_ids) - r.fed if budget is None else min(budget, len(r.prompt_ids) - r.fed)
                if n == 0:
                    continue
                if budget is not None:
                    budget -= n
                if not r.started:
                    self._progress(r, r.fed)
                    r.started = True
                ids = r.prompt_ids[r.fed:r.fed + n]
            steps.append((r.session, np.asarray(ids, dtype=np.int32), self.world == 1 or not r.prefilling))
            stepped.append((r, ids))
        if not steps:
            return
        results = _model.forward_batch(steps)
        now = time.perf_counter()
        for (req, ids), x in zip(stepped, results):
            if isinstance(x, ExoError):
                out.append((req.task.task_id, ErrorChunk(model=self.model_id, error_message=str(x))))
                out.extend(self._finish(req, None, error=True))
                continue
            req.kv_tokens.extend(ids)
            prompt = req.prefilling  # a pipeline's whole prompt, or one chunk of it
            if prompt:
                req.fed += len(ids)
                self._progress(req, req.fed)
                if req.prefilling:
                    continue  # the next chunk comes at the next step
                req.t_prefill = now
            if self.world == 1:
                try:
                    tok, lp, top = req.sampler.sample(x[-1])
                except ExoError as e:
                    out.append((req.task.task_id, ErrorChunk(model=self.model_id, error_message=str(e))))
                    out.extend(self._finish(req, None, error=True))
                    continue
                out.extend(self._on_token(req, tok, lp, top))
            else:
                meta = {"start": True, "sampling": req.task.sampling().to_dict(), "history": req.prompt_ids} \
                    if prompt else {}
                self.link.send("fwd", req.task.task_id, x, **meta)
                req.waiting = True

    def _drain_tokens(self, out, timeout_ms):
        if self.link is None:
            return
        msg = self.link.recv(timeout_ms)
        while msg is not None:
            header, _ = msg
            req = self._requests.get(header["request_id"])
            if req is None:
                log.info("pipeline %s for request %s, which has ended here: dropped", header["kind"],
                         header["request_id"])
            elif header["kind"] == "token" and isinstance(header.get("token"), int):
                req.waiting = False
                out.extend(self._on_token(req, header["token"], header.get("logprob"), header.get("top", [])))
            elif header["kind"] == "error":
                out.append((req.task.task_id, ErrorChunk(model=self.model_id,
                                                         error_message=str(header.get("message", "")))))
                out.extend(self._finish(req, None, error=True))
            else:
                log.warning("pipeline message %s for request %s is not one rank 0 takes: dropped",
                            header["kind"], header["request_id"])
            msg = self.link.recv(0)

    def _logprobs(self, tok, logprob, top):
        """EXO's TopLogprobItem: the token's text and bytes with its logprob."""
        items = []
        for t, lp in top:
            raw = self.model.detokenize_bytes([int(t)])
            items.append(TopLogprobItem(token=raw.decode("utf-8", "replace"), logprob=float(lp), bytes=list(raw)))
        return (float(logprob) if logprob is not None else None), items

    def _on_token(self, req, tok, logprob, top):
        if req.t_first is None:
            req.t_first = time.perf_counter()
        task = req.task
        req.n_generated += 1  # EXO counts the EOS token as generated, as MLX's stream holds it
        lp, top_items = self._logprobs(tok, logprob, top) if task.logprobs else (None, None)
        if tok in self._eos:  # the last chunk carries the EOS id and the text still held
            piece, req.held = req.held + req.detokenizer.flush(), ""
            return self._last_chunk(req, piece, tok, "stop", lp, top_items)
        if req.sampler is not None:
            req.sampler.accept(tok)
        req.next_input = tok
        try:
            req.held += req.detokenizer.push(tok)
        except ExoError as e:  # an id outside the vocabulary (a broken peer)
            return [(task.task_id, ErrorChunk(model=self.model_id, error_message=str(e)))] + \
                self._finish(req, None, error=True)
        # Only the held text can hold a stop string: what was streamed ended max_stop - 1
        # characters before the text then known, so any stop starting there was seen already.
        hit = min((i for i in (req.held.find(s) for s in req.stops) if i >= 0), default=-1)
        if hit >= 0:
            piece, req.held = req.held[:hit], ""
            return self._last_chunk(req, piece, tok, "stop", lp, top_items)
        if (task.max_output_tokens and req.n_generated >= task.max_output_tokens) or \
                req.session.position >= self.info.max_ctx:
            piece, req.held = req.held + req.detokenizer.flush(), ""
            return self._last_chunk(req, piece, tok, "length", lp, top_items)
        # hold back a tail that could begin a stop string
        end = max(0, len(req.held) - (req.max_stop - 1)) if req.max_stop > 1 else len(req.held)
        piece, req.held = req.held[:end], req.held[end:]
        return [(task.task_id, TokenChunk(model=self.model_id, text=piece, token_id=int(tok), usage=None,
                                          logprob=lp, top_logprobs=top_items))]

    def _last_chunk(self, req, piece, tok, finish, lp, top_items):
        n_prompt = len(req.prompt_ids)
        usage = Usage(prompt_tokens=n_prompt, completion_tokens=req.n_generated,
                      total_tokens=n_prompt + req.n_generated,
                      prompt_tokens_details=PromptTokensDetails(cached_tokens=req.cached),
                      completion_tokens_details=CompletionTokensDetails(reasoning_tokens=0))
        chunk = TokenChunk(model=self.model_id, text=piece, token_id=int(tok), usage=usage, finish_reason=finish,
                           stats=self._stats(req), logprob=lp, top_logprobs=top_items)
        return [(req.task.task_id, chunk)] + self._finish(req, finish)

    def _stats(self, req):
        now = time.perf_counter()
        n = req.n_generated
        prefill = (req.t_prefill or now) - req.t0
        decode = now - (req.t_first or now)
        # As MLX: "exact" when the cache held every prompt token it could (all but the last,
        # which the request feeds for its logits), "partial" when some.
        hit = "none" if not req.cached else "exact" if req.cached == len(req.prompt_ids) - 1 else "partial"
        return GenerationStats(prompt_tps=(len(req.prompt_ids) - req.cached) / max(prefill, 1e-9),
                               generation_tps=(n - 1) / decode if n > 1 and decode > 0 else 0.0,
                               prompt_tokens=len(req.prompt_ids), generation_tokens=n,
                               peak_memory_usage=Memory.from_bytes(_peak_rss_bytes()), prefix_cache_hit=hit)

    def _finish(self, req, reason, cancelled=False, error=False):
        tid = req.task.task_id
        self._requests.pop(tid, None)
        if not error and req.task.prefix_cache and req.session is not None and self._prefix.enabled:
            # its KV is whole (a failed step may have left a device's state unknown: not kept)
            self._prefix.put(req.session, req.kv_tokens)
            req.session = None
        req.close()
        self._end_downstream(tid, cancelled)
        return [(tid, CancelledResponse() if cancelled else FinishedResponse())]

    def _end_downstream(self, tid, cancelled=False):
        """Tells the later ranks the request is over (they free its session and end the task in
        their runner as rank 0 did: cancelled, or finished)."""
        if self.link is not None:
            self.link.send("end", tid, **({"cancelled": True} if cancelled else {}))

    # -- ranks after the first
    def _step_downstream(self, timeout):
        out = [(tid, CancelledResponse() if cancelled else FinishedResponse()) for tid, cancelled in self._finished_early]
        self._finished_early.clear()
        if self._cancelled_tasks:
            self._remember_early_cancels()
        cancel_all = CANCEL_ALL_TASKS in self._cancelled_tasks
        for tid in [t for t in self._submitted if cancel_all or t in self._cancelled_tasks]:
            self._submitted.discard(tid)
            out.append((tid, CancelledResponse()))  # rank 0 cancels too and ends the request
        self._cancelled_tasks.clear()
        batch = []  # the "fwd" steps that arrived together run as one batched forward
        msg = self.link.recv(int(timeout * 1000))
        while msg is not None:
            header, x = msg
            rid = header["request_id"]
            if header["kind"] == "fwd" and x is not None:
                if any(r == rid for r, _, _ in batch):  # one step per request per batch
                    self._forward_downstream(batch)
                    batch = []
                batch.append((rid, header, x))
            else:
                self._forward_downstream(batch)  # keep each request's messages in order
                batch = []
                if header["kind"] == "end":
                    self._end_session(rid)
                    cancelled = header.get("cancelled") is True
                    if not self.is_last:
                        self.link.send("end", rid, **({"cancelled": True} if cancelled else {}))
                    if rid in self._submitted:
                        self._submitted.discard(rid)
                        out.append((rid, CancelledResponse() if cancelled else FinishedResponse()))
                    else:
                        self._ended[rid] = cancelled
                        if len(self._ended) > 4 * self.b.max_concurrent:  # ids EXO never submitted here
                            self._ended.pop(next(iter(self._ended)))
                elif header["kind"] == "error":
                    self.link.send("error", rid, message=str(header.get("message", "")))  # on towards rank 0
                else:
                    log.warning("pipeline message %s for request %s is not one rank %d takes: dropped",
                                header["kind"], rid, self.rank)
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
                if not header.get("start") and rid not in self._sessions:
                    raise ValueError("a step for a request that has no session here (never started, or ended)")
                if header.get("start"):
                    self._end_session(rid)
                    if len(self._sessions) >= self.b.max_concurrent:
                        raise error_for(-1, f"{len(self._sessions)} requests already hold sessions here "
                                            f"(max_concurrent {self.b.max_concurrent})", "pipeline")
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
            except (ExoError, ValueError, TypeError, AttributeError) as e:
                log.warning("pipeline request %s refused on rank %d: %s", rid, self.rank, e)
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
                self._end_session(rid)
                self._send_error(rid, e)

    def _send_error(self, rid, e):
        # Back to rank 0 around the ring, which ends the request with an ErrorChunk.
        # (A middle rank's message has to pass the later ranks: they forward "error" as is.)
        self.link.send("error", rid, message=f"rank {self.rank}: {e}")
