"""Token sampling through the C library's sampler (exo_sampler_*), for callers that step
sequences themselves: the engine's requests and the last rank of a pipeline, where exo_generate
cannot run. It is the sampler exo_generate and exo-run use, so a seeded draw gives the same
tokens here as there.

SamplingParams is the plain-data form that travels between pipeline ranks (to_dict / from_dict);
a field left None takes EXO's default from exo_sampling_default."""
import ctypes as C
import dataclasses

from . import _capi
from .errors import check, error_for
from .model import _Handle

try:
    import numpy as _np
except ImportError:  # pragma: no cover - Debian's python3 has numpy
    _np = None

SAMPLING_FIELDS = ("temperature", "top_k", "top_p", "min_p", "repetition_penalty", "presence_penalty",
                   "frequency_penalty", "penalty_window", "seed", "n_logprobs")


def make_sampling(banned=(), **kw):
    """An exo_sampling from EXO's defaults (exo_sampling_default) with the given overrides (None
    keeps the default). Returns (struct, keep-alive): the banned array must outlive every call
    the struct is passed to."""
    s = _capi.Sampling.new()
    _capi.lib().exo_sampling_default(C.byref(s))
    for k, v in kw.items():
        if v is None:
            continue
        if k not in SAMPLING_FIELDS:
            raise error_for(-1, f"unknown sampling parameter '{k}'", "sampling")
        setattr(s, k, v)
    banned = [int(b) for b in banned]
    arr = (C.c_int32 * max(1, len(banned)))(*banned)
    s.n_banned = len(banned)
    s.banned = C.cast(arr, C.POINTER(C.c_int32)) if banned else None
    return s, arr


@dataclasses.dataclass
class SamplingParams:
    temperature: float = None
    top_k: int = None
    top_p: float = None
    min_p: float = None
    repetition_penalty: float = None
    presence_penalty: float = None
    frequency_penalty: float = None
    penalty_window: int = None
    seed: int = None
    n_logprobs: int = None
    banned: tuple = ()

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["banned"] = list(self.banned)
        return d

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        d["banned"] = tuple(d.get("banned", ()))
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


class Sampler(_Handle):
    """exo_sampler: one sequence's sampler. accept() every token the sequence keeps (the prompt
    too), then sample() one row of logits at a time."""
    _free_name = "exo_sampler_destroy"

    def __init__(self, params, vocab_size):
        super().__init__(None)
        fields = {k: v for k, v in dataclasses.asdict(params).items() if k != "banned"}
        self._sampling, self._banned = make_sampling(banned=params.banned, **fields)
        self.vocab_size = int(vocab_size)
        h = C.c_void_p()
        check(self._lib.exo_sampler_create(C.byref(self._sampling), self.vocab_size, C.byref(h)), None,
              "exo_sampler_create")
        self._handle = h
        self._result = _capi.SampledToken.new()

    def accept(self, token):
        self._lib.exo_sampler_accept(self.handle, int(token))

    def reset(self):
        """Forgets the history and restarts the random stream (the same one for a fixed seed)."""
        self._lib.exo_sampler_reset(self.handle)

    def sample(self, logits):
        """(token, logprob, top [(token, logprob)]) from one row of vocab_size logits."""
        if _np is not None:
            row = _np.ascontiguousarray(_np.asarray(logits, dtype=_np.float32).reshape(-1))
            size, ptr = row.size, row.ctypes.data_as(C.POINTER(C.c_float))
        else:
            row = (C.c_float * len(logits))(*logits)
            size, ptr = len(logits), row
        r = self._result
        check(self._lib.exo_sampler_sample(self.handle, ptr, size, C.byref(r)), None, "exo_sampler_sample")
        top = [(r.top_tokens[i], r.top_logprobs[i]) for i in range(r.n_top)]
        return r.token, r.logprob, top
