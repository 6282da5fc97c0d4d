"""The old-era EXO interface (exo/inference/inference_engine.py), still used by EXO forks:
async encode / sample / decode / infer_tensor / infer_prompt / ensure_shard / load_checkpoint,
numpy in and out, a KV session per request id.

Old EXO's Shard has an INCLUSIVE end_layer (is_last_layer: end_layer == n_layers - 1); the C
API's range is half-open, so [start_layer, end_layer + 1) is what loads. Blocking C calls run on
one worker thread (as the old MLX engine did), keeping the event loop free."""
import asyncio
import collections
import concurrent.futures
import dataclasses
import os

import numpy as np

from . import model as _model
from .errors import error_for
from .runtime import Runtime
from .sampler import Sampler, SamplingParams


@dataclasses.dataclass(frozen=True)
class Shard:
    """exo/inference/shard.py Shard (end_layer inclusive)."""
    model_id: str
    start_layer: int
    end_layer: int
    n_layers: int

    def is_first_layer(self):
        return self.start_layer == 0

    def is_last_layer(self):
        return self.end_layer == self.n_layers - 1

    def get_layer_count(self):
        return self.end_layer - self.start_layer + 1

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        return cls(**d)


def half_open(shard):
    """(start, end) of the C API for an old-era shard."""
    return shard.start_layer, shard.end_layer + 1


class Tokenizer:
    """What old EXO reads of `inference_engine.tokenizer`: node.py compares each sampled token
    with `eos_token_id` on the last shard; encode / decode as a transformers tokenizer's."""

    def __init__(self, model):
        self._model = model
        info = model.info
        self.eos_token_ids = list(info.eos_token_ids)
        self.eos_token_id = self.eos_token_ids[0] if self.eos_token_ids else None
        self.bos_token_id = info.bos_token_id if info.bos_token_id >= 0 else None

    def encode(self, text, add_special_tokens=True):
        return self._model.tokenize(text, add_bos=-1 if add_special_tokens else 0)

    def decode(self, ids, skip_special_tokens=False):
        ids = [int(t) for t in np.asarray(ids).reshape(-1)]
        if skip_special_tokens:
            ids = [t for t in ids if t not in self.eos_token_ids and t != self.bos_token_id]
        return self._model.detokenize(ids)


class IpexInferenceEngine:
    """Old-era InferenceEngine, constructed as old EXO's factory constructs engines:
    IpexInferenceEngine(shard_downloader). The model folder comes from
    `await shard_downloader.ensure_shard(shard, "IpexInferenceEngine")`; without a downloader,
    from model_path(model_id), or <models_dir>/<org>--<name>, or the model id as a folder."""

    def __init__(self, shard_downloader=None, *, models_dir=None, model_path=None, runtime=None,
                 runtime_options=None, max_sessions=8, device=None):
        self.shard_downloader = shard_downloader
        self.models_dir = models_dir
        self._model_path = model_path
        self.runtime = runtime or Runtime(**(runtime_options or {}))
        self._own_runtime = runtime is None
        self.device = device
        self.shard = None
        self.tokenizer = None  # a Tokenizer once a shard is loaded
        self._model = self._c_shard = None
        self.session = collections.OrderedDict()  # request id -> Session, least recent first
        self.max_sessions = max_sessions
        self._samplers = {}  # sampling knobs -> Sampler: a seeded stream advances from call to call
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="exo_ipex")

    def model_path(self, model_id):
        if self._model_path:
            return self._model_path(model_id)
        if os.path.isdir(model_id):
            return model_id
        if self.models_dir:
            return os.path.join(self.models_dir, model_id.replace("/", "--"))
        raise error_for(-15, f"no directory for model '{model_id}' (give a shard_downloader, models_dir or "
                             f"model_path)", "ensure_shard")

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # -- shards
    def _load(self, shard, path):
        if shard == self.shard:
            return
        self._unload()
        m = _model.Model(self.runtime, path)
        try:
            if shard.n_layers != m.info.n_layers:
                raise error_for(-1, f"shard says {shard.n_layers} layers, {path} has {m.info.n_layers}", "ensure_shard")
            start, end = half_open(shard)
            self._c_shard = _model.Shard(m, start, end, device=self.device)
        except BaseException:
            m.close()
            raise
        self._model, self.shard = m, shard
        self.tokenizer = Tokenizer(m)

    def _unload(self):
        self.session.clear()
        if self._model is not None:
            self._model.close()  # closes the shard and its sessions first
        self._model = self._c_shard = self.shard = self.tokenizer = None

    async def ensure_shard(self, shard):
        if shard == self.shard:
            return
        if self.shard_downloader is not None:
            path = os.fspath(await self.shard_downloader.ensure_shard(shard, type(self).__name__))
        else:
            path = self.model_path(shard.model_id)
        await self._run(self._load, shard, path)

    async def load_checkpoint(self, shard, path):
        await self.ensure_shard(shard)

    async def save_checkpoint(self, shard, path):
        pass

    async def clear_session(self):
        await self._run(self.session.clear)

    # -- text
    async def encode(self, shard, prompt, add_bos=-1):
        """Token ids of a prompt; BOS as the tokenizer's files say unless add_bos is 0 or 1."""
        await self.ensure_shard(shard)
        return np.asarray(await self._run(self._model.tokenize, prompt, add_bos), dtype=np.int64)

    async def decode(self, shard, tokens):
        await self.ensure_shard(shard)
        return await self._run(self._model.detokenize, [int(t) for t in np.asarray(tokens).reshape(-1)])

    async def sample(self, x, temp=0.0, top_p=1.0, top_k=0, seed=42):
        """Samples from the last position of logits x [..., n, vocab]: an int array of shape (1,).
        One sampler per set of knobs lives across calls, so a seeded stream goes on drawing
        (a fresh sampler per call would redraw the seed's first number every time)."""
        logits = np.asarray(x, dtype=np.float32)
        row = logits.reshape(-1, logits.shape[-1])[-1]
        key = (float(temp), float(top_p), int(top_k), seed, row.size)
        s = self._samplers.get(key)
        if s is None:
            s = self._samplers[key] = Sampler(SamplingParams(temperature=temp, top_p=top_p, top_k=top_k, min_p=0.0,
                                                             seed=seed), row.size)
        return np.array([s.sample(row)[0]], dtype=np.int64)

    # -- tensors
    def _session(self, request_id):
        s = self.session.pop(request_id, None)
        if s is None or s.closed:
            s = self._c_shard.session()
            while len(self.session) >= self.max_sessions:
                self.session.popitem(last=False)[1].close()
        self.session[request_id] = s
        return s

    def _infer(self, request_id, input_data):
        s = self._session(request_id)
        x = np.asarray(input_data)
        if self._c_shard.info.embeds:
            if x.dtype.kind not in "iu":
                raise error_for(-1, f"the first shard takes token ids, got {x.dtype}", "infer_tensor")
            y = s.forward_tokens(x.reshape(-1).astype(np.int32))
        else:
            width = self._c_shard.info.input_width
            if x.shape[-1] != width:
                raise error_for(-1, f"hidden states of width {x.shape[-1]}, the shard takes {width}", "infer_tensor")
            y = s.forward_hidden(x.reshape(-1, width).astype(np.float32))
        return y.reshape(1, y.shape[0], y.shape[1])

    async def infer_tensor(self, request_id, shard, input_data, inference_state=None):
        """(1, n) token ids or (1, n, hidden) float states in; (1, n, hidden) states or
        (1, n, vocab) logits out. Keeps a KV session per request id."""
        await self.ensure_shard(shard)
        out = await self._run(self._infer, request_id, input_data)
        return out, inference_state

    async def infer_prompt(self, request_id, shard, prompt, inference_state=None):
        tokens = await self.encode(shard, prompt)
        return await self.infer_tensor(request_id, shard, tokens.reshape(1, -1), inference_state)

    def cleanup(self):
        self._unload()
        for s in self._samplers.values():
            s.close()
        self._samplers.clear()
        self._executor.shutdown(wait=True)
        if self._own_runtime:
            self.runtime.close()
