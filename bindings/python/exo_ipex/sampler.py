"""A numpy token sampler for pipeline shards, where exo_generate cannot run (it needs a
whole-model shard) and the C sampler is not public. It follows core/run/sampler.h step for step:
sanitize, penalties over the last `penalty_window` tokens (repetition HF-style, then presence /
frequency OpenAI-style), bans, temperature (0 = argmax, ties to the lowest id), top_k, top_p,
min_p, one draw. Log-probabilities are the log-softmax after penalties and bans. Greedy results
equal the C sampler's; seeded random draws use numpy's PCG64 stream, not the C xoshiro stream."""
import collections
import dataclasses

import numpy as np


@dataclasses.dataclass
class SamplingParams:
    temperature: float = 0.7
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.05
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    penalty_window: int = 20
    seed: int = 42
    n_logprobs: int = 0
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


class Sampler:
    def __init__(self, params, vocab_size):
        if params.temperature < 0 or not (0.0 <= params.top_p <= 1.0) or not (0.0 <= params.min_p <= 1.0) \
                or params.top_k < 0 or params.repetition_penalty <= 0 or params.n_logprobs > 20:
            raise ValueError(f"invalid sampling parameters: {params}")
        self.p = params
        self.vocab = vocab_size
        self.history = collections.deque(maxlen=max(0, params.penalty_window))
        self.rng = np.random.default_rng(params.seed if params.seed >= 0 else None)

    def accept(self, token):
        if 0 <= token < self.vocab and self.history.maxlen:
            self.history.append(int(token))

    def sample(self, logits):
        """(token, logprob, top [(token, logprob)]) from one row of logits."""
        p = self.p
        x = np.array(logits, dtype=np.float64).reshape(-1)[: self.vocab]
        x[np.isnan(x)] = -np.inf
        x[np.isposinf(x)] = np.finfo(np.float32).max
        if self.history:
            ids, counts = np.unique(np.fromiter(self.history, dtype=np.int64), return_counts=True)
            if p.repetition_penalty != 1.0:
                v = x[ids]
                x[ids] = np.where(v > 0, v / p.repetition_penalty, v * p.repetition_penalty)
            if p.presence_penalty or p.frequency_penalty:
                x[ids] -= p.presence_penalty + p.frequency_penalty * counts
        if p.banned:
            x[np.asarray(p.banned, dtype=np.int64)] = -np.inf
        finite = np.isfinite(x)
        if not finite.any():
            raise ValueError("every logit is -inf, NaN or banned: nothing to sample")
        m = x[finite].max()
        logprobs = x - (m + np.log(np.exp(x[finite] - m).sum()))
        if p.temperature == 0:
            token = int(np.argmax(x))
        else:
            order = np.lexsort((np.arange(x.size), -x))  # most probable first, ties to the lowest id
            order = order[finite[order]]
            probs = np.exp((x[order] - m) / p.temperature)
            if p.top_k:
                order, probs = order[: p.top_k], probs[: p.top_k]
            probs = probs / probs.sum()
            if p.top_p < 1.0:
                above = np.cumsum(probs) - probs
                keep = max(1, int((above < p.top_p).sum())) if p.top_p > 0 else 1
                order, probs = order[:keep], probs[:keep] / probs[:keep].sum()
            if p.min_p > 0:
                keep = probs >= p.min_p * probs[0]
                order, probs = order[keep], probs[keep] / probs[keep].sum()
            token = int(order[self.rng.choice(order.size, p=probs)])
        top = []
        if p.n_logprobs:
            k = min(p.n_logprobs, int(finite.sum()))
            idx = np.lexsort((np.arange(x.size), -logprobs))[:k]
            top = [(int(i), float(logprobs[i])) for i in idx]
        return token, float(logprobs[token]), top
