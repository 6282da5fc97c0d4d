"""An independent float64 numpy re-implementation of transformers' forward pass (eager attention)
for the held-out models: modeling_{llama,mistral,qwen2,qwen3,phi3,gemma}.py and the mixtures of
experts modeling_{qwen3_moe,mixtral,gpt_oss,glm4_moe}.py. It follows transformers, not our C
runtime.

Where transformers leaves float64 on purpose, so does this reference ("float32 islands"), because
its float64 references carry those roundings:
  - RMSNorm normalises in float32 (`hidden_states.to(torch.float32)`), then multiplies the weight
    in the model dtype (Gemma multiplies `1 + w` in float32 too, then casts back);
  - rotary cos / sin are computed in float32 from float32 inverse frequencies (autocast disabled,
    `.float()`), then cast to the model dtype;
  - eager attention's softmax runs in float32 (`softmax(..., dtype=torch.float32)`), except
    gpt_oss's, which softmaxes the scores and the sink in the model dtype;
  - the qwen3_moe / mixtral router softmax runs in float32 (`dtype=torch.float`), the top-k
    probabilities are cast back to the model dtype;
  - glm4_moe's router computes its logits, sigmoid, correction bias, top-k weights and scaling in
    float32 (`F.linear(hidden.type(torch.float32), weight.type(torch.float32))`).

Weights: a dict name -> float64 array under the Hugging Face checkpoint names (per-expert tensors
`mlp.experts.{e}.*` / `block_sparse_moe.experts.{e}.w{1,2,3}`, gpt_oss's fused 3-D experts)."""

import math

import numpy as np

F32 = np.float32
F64 = np.float64

DENSE = ("llama", "mistral", "qwen2", "qwen3", "phi3", "gemma")
MOE = ("qwen3_moe", "mixtral", "gpt_oss", "glm4_moe")


class Arch:
    """config.json, read the way transformers reads it."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.type = cfg["model_type"]
        if self.type not in DENSE + MOE:
            raise ValueError(f"model_type {self.type} not handled")
        self.hidden = cfg["hidden_size"]
        self.n_heads = cfg["num_attention_heads"]
        self.n_kv = cfg.get("num_key_value_heads") or self.n_heads
        self.head_dim = cfg.get("head_dim") or self.hidden // self.n_heads
        self.n_layers = cfg["num_hidden_layers"]
        self.vocab = cfg["vocab_size"]
        self.eps = cfg["rms_norm_eps"]
        default_tie = self.type == "gemma"
        self.tied = cfg.get("tie_word_embeddings", default_tie)
        self.qkv_bias = self.type == "qwen2" or bool(cfg.get("attention_bias", False))
        # gpt_oss's o_proj has the attention bias too; glm4_moe's and qwen3's do not.
        self.o_bias = self.type == "gpt_oss" or (self.type in ("llama", "qwen3_moe", "qwen3")
                                                 and bool(cfg.get("attention_bias", False)))
        self.qk_norm = self.type in ("qwen3", "qwen3_moe") or (self.type == "glm4_moe"
                                                              and cfg.get("use_qk_norm", False))
        act = cfg.get("hidden_activation") if self.type == "gemma" else cfg.get("hidden_act")
        self.act = act or ("gelu_pytorch_tanh" if self.type == "gemma" else "silu")
        # Sliding window: mistral, mixtral and phi3 use config.sliding_window whenever it is set;
        # qwen2 / qwen3 / gpt_oss only for layers that layer_types marks "sliding_attention".
        sw = cfg.get("sliding_window")
        if self.type in ("mistral", "phi3", "mixtral", "qwen3_moe"):
            self.windows = [sw] * self.n_layers
        elif self.type in ("qwen2", "qwen3", "gpt_oss"):
            types = cfg.get("layer_types") or ["full_attention"] * self.n_layers
            self.windows = [sw if t == "sliding_attention" else None for t in types]
        else:
            self.windows = [None] * self.n_layers
        self.rope = self._rope_parameters(cfg)
        self.rotary_dim = int(self.head_dim * self.rope.get("partial_rotary_factor", 1.0))
        self.sparse = [self._is_sparse(layer) for layer in range(self.n_layers)]

    def _is_sparse(self, layer):
        c = self.cfg
        if self.type == "qwen3_moe":
            n_experts = c.get("num_experts", c.get("num_local_experts", 0))  # hub / transformers 5 dialect
            return (layer not in (c.get("mlp_only_layers") or []) and n_experts > 0
                    and (layer + 1) % c.get("decoder_sparse_step", 1) == 0)
        if self.type in ("mixtral", "gpt_oss"):
            return True
        if self.type == "glm4_moe":
            return layer >= c.get("first_k_dense_replace", 1)
        return False

    @staticmethod
    def _rope_parameters(cfg):
        # Newer dialect: rope_parameters; classic: rope_theta plus rope_scaling (or none).
        if cfg.get("rope_parameters"):
            rp = dict(cfg["rope_parameters"])
        else:
            rp = dict(cfg.get("rope_scaling") or {})
            rp["rope_theta"] = cfg.get("rope_theta", 10000.0)
        if "type" in rp and "rope_type" not in rp:
            rp["rope_type"] = rp.pop("type")
        rp.setdefault("rope_type", "default")
        if "partial_rotary_factor" not in rp and "partial_rotary_factor" in cfg:
            rp["partial_rotary_factor"] = cfg["partial_rotary_factor"]
        if rp["rope_type"] not in ("default", "llama3", "yarn"):
            raise ValueError(f"rope_type {rp['rope_type']} not handled")
        if rp.get("partial_rotary_factor", 1.0) != 1.0 and cfg["model_type"] not in ("glm4_moe", "phi3"):
            raise ValueError("partial_rotary_factor != 1 not handled")
        return rp


# --------------------------------------------------------------------------------------------
# rotary embeddings


def inv_freq_f32(arch):
    """modeling_rope_utils: _compute_default_rope_parameters / _compute_llama3_parameters /
    _compute_yarn_parameters, in float32 like transformers (the tensors there are float32).
    Returns (inv_freq, attention_scaling)."""
    rp, dim = arch.rope, arch.rotary_dim
    base = F32(rp["rope_theta"])
    exponent = np.arange(0, dim, 2, dtype=np.int64).astype(F32) / F32(dim)
    pos_freqs = np.power(base, exponent, dtype=F32)
    inv = (F32(1.0) / pos_freqs).astype(F32)
    scaling = 1.0
    if rp["rope_type"] == "llama3":
        factor = rp["factor"]
        low, high = rp["low_freq_factor"], rp["high_freq_factor"]
        old_ctx = rp["original_max_position_embeddings"]
        low_wavelen, high_wavelen = old_ctx / low, old_ctx / high
        wavelen = (F32(2 * math.pi) / inv).astype(F32)
        scaled = np.where(wavelen > low_wavelen, inv / F32(factor), inv).astype(F32)
        smooth = ((F32(old_ctx) / wavelen - F32(low)) / F32(high - low)).astype(F32)
        smoothed = ((F32(1) - smooth) * scaled / F32(factor) + smooth * scaled).astype(F32)
        medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
        inv = np.where(medium, smoothed, scaled).astype(F32)
    elif rp["rope_type"] == "yarn":
        factor = rp["factor"]
        ctx = rp.get("original_max_position_embeddings") or arch.cfg["max_position_embeddings"]
        scaling = rp.get("attention_factor")
        if scaling is None:
            mscale, mscale_all = rp.get("mscale"), rp.get("mscale_all_dim")

            def get_mscale(scale, m=1.0):
                return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0

            scaling = get_mscale(factor, mscale) / get_mscale(factor, mscale_all) if mscale and mscale_all \
                else get_mscale(factor)
        beta_fast, beta_slow = rp.get("beta_fast") or 32, rp.get("beta_slow") or 1

        def correction_dim(rotations):
            return dim * math.log(ctx / (rotations * 2 * math.pi)) / (2 * math.log(rp["rope_theta"]))

        low, high = correction_dim(beta_fast), correction_dim(beta_slow)
        if rp.get("truncate", True):
            low, high = math.floor(low), math.ceil(high)
        low, high = max(low, 0), min(high, dim - 1)
        if low == high:
            high += 0.001
        ramp = np.clip((np.arange(dim // 2, dtype=F32) - F32(low)) / F32(high - low), 0, 1).astype(F32)
        extrapolation = (F32(1) - ramp).astype(F32)
        interp = (F32(1.0) / (F32(factor) * pos_freqs)).astype(F32)
        inv = (interp * (F32(1) - extrapolation) + inv * extrapolation).astype(F32)
    return inv, scaling


def rope_cos_sin(arch, positions):
    inv, scaling = inv_freq_f32(arch)
    freqs = (positions.astype(F32)[:, None] * inv[None, :]).astype(F32)
    emb = np.concatenate([freqs, freqs], axis=-1)
    return ((np.cos(emb) * F32(scaling)).astype(F32).astype(F64),
            (np.sin(emb) * F32(scaling)).astype(F32).astype(F64))


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], axis=-1)


def apply_rope(x, cos, sin):
    """Rotates the first rotary_dim features of each head (all of them unless the rope is
    partial, as in glm4_moe), leaving the rest as they are."""
    r = cos.shape[-1]
    rot = x[..., :r] * cos + rotate_half(x[..., :r]) * sin
    return np.concatenate([rot, x[..., r:]], axis=-1) if r < x.shape[-1] else rot


# --------------------------------------------------------------------------------------------
# building blocks


def rms_norm(x, w, eps, gemma=False):
    x32 = x.astype(F32)
    var = np.mean(x32.astype(F64) ** 2, axis=-1, keepdims=True).astype(F32)
    normed = (x32 * (F32(1) / np.sqrt(var + F32(eps)))).astype(F32)
    if gemma:
        return (normed * (F32(1) + w.astype(F32))).astype(F64)
    return w.astype(F64) * normed.astype(F64)


def softmax_f32(s, visible):
    """Masked softmax over the last axis in float32, like eager attention (masked scores are
    -inf there too: float64's min plus a score rounds to -inf in float32)."""
    s = np.where(visible, s.astype(F32).astype(F64), -np.inf)
    s = s - s.max(axis=-1, keepdims=True)
    e = np.exp(s)
    return (e / e.sum(axis=-1, keepdims=True)).astype(F32).astype(F64)


def softmax_with_sink(s, visible, sink):
    """gpt_oss: the head's sink logit joins the scores as one more column, the softmax runs in
    the model dtype, and the sink's probability is dropped."""
    s = np.where(visible, s, -np.inf)
    m = np.maximum(s.max(axis=-1, keepdims=True), sink)
    e = np.exp(s - m)
    return e / (e.sum(axis=-1, keepdims=True) + np.exp(sink - m))


def activation(name, x):
    if name == "silu":
        return x / (1 + np.exp(-x))
    if name in ("gelu_pytorch_tanh", "gelu_tanh"):
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    raise ValueError(f"activation {name} not handled")


def glu_mlp(act, w, prefix, h, gate="gate_proj", up="up_proj", down="down_proj"):
    g = h @ w[f"{prefix}{gate}.weight"].T
    u = h @ w[f"{prefix}{up}.weight"].T
    return (activation(act, g) * u) @ w[f"{prefix}{down}.weight"].T


def topk_margin(scores, k):
    """The gap between the k-th and (k+1)-th score of every row (smallest over the rows): a
    near tie there would let a float32 runtime pick other experts than this reference."""
    if scores.shape[-1] <= k:
        return math.inf
    s = -np.sort(-scores.astype(F64), axis=-1)
    return float((s[:, k - 1] - s[:, k]).min())


def topk_indices(scores, k):
    """torch.topk's choice for distinct scores: the k largest, largest first."""
    return np.argsort(-scores, axis=-1, kind="stable")[:, :k]


# --------------------------------------------------------------------------------------------
# mixture-of-experts blocks: (arch, weights, layer prefix, normed input [T, H], stats) -> [T, H]


def moe_softmax_topk(arch, w, p, h, stats):
    """qwen3_moe's Qwen3MoeSparseMoeBlock and mixtral's MixtralSparseMoeBlock: softmax over all
    experts in float32, top-k, renormalised (mixtral always, qwen3_moe per norm_topk_prob)."""
    c = arch.cfg
    k = c["num_experts_per_tok"]
    if arch.type == "mixtral":
        router, experts, names, renorm = p + "block_sparse_moe.gate.weight", p + "block_sparse_moe.experts.", \
            ("w1", "w3", "w2"), True
    else:
        router, experts, names, renorm = p + "mlp.gate.weight", p + "mlp.experts.", \
            ("gate_proj", "up_proj", "down_proj"), bool(c.get("norm_topk_prob", False))
    logits = h @ w[router].T
    stats["router_margin"] = min(stats.get("router_margin", math.inf), topk_margin(logits, k))
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs = (probs / probs.sum(-1, keepdims=True)).astype(F32)
    idx = topk_indices(probs, k)
    weights = np.take_along_axis(probs, idx, -1)
    if renorm:
        weights = (weights / weights.sum(-1, keepdims=True)).astype(F32)
    weights = weights.astype(F64)
    out = np.zeros_like(h)
    for t in range(h.shape[0]):
        for slot in range(k):
            e = idx[t, slot]
            y = glu_mlp(arch.act, w, f"{experts}{e}.", h[t:t + 1], *names)
            out[t] += weights[t, slot] * y[0]
    return out


def moe_gpt_oss(arch, w, p, h, stats):
    """GptOssMLP: router with bias, top-k of the logits, softmax over the k chosen; experts with
    the fused interleaved gate_up_proj [E, H, 2I] (x @ W), biases, and the clamped SwiGLU
    (gate <= limit, |up| <= limit, gate * sigmoid(alpha * gate) * (up + 1))."""
    c = arch.cfg
    k = c["num_experts_per_tok"]
    alpha, limit = 1.702, c.get("swiglu_limit", 7.0)
    logits = h @ w[p + "mlp.router.weight"].T + w[p + "mlp.router.bias"]
    stats["router_margin"] = min(stats.get("router_margin", math.inf), topk_margin(logits, k))
    idx = topk_indices(logits, k)
    top = np.take_along_axis(logits, idx, -1)
    weights = np.exp(top - top.max(-1, keepdims=True))
    weights = weights / weights.sum(-1, keepdims=True)
    gu_w, gu_b = w[p + "mlp.experts.gate_up_proj"], w[p + "mlp.experts.gate_up_proj_bias"]
    dn_w, dn_b = w[p + "mlp.experts.down_proj"], w[p + "mlp.experts.down_proj_bias"]
    out = np.zeros_like(h)
    for t in range(h.shape[0]):
        for slot in range(k):
            e = idx[t, slot]
            gu = h[t] @ gu_w[e] + gu_b[e]
            gate, up = np.minimum(gu[0::2], limit), np.clip(gu[1::2], -limit, limit)
            glu = gate / (1 + np.exp(-gate * alpha))
            out[t] += weights[t, slot] * (((up + 1) * glu) @ dn_w[e] + dn_b[e])
    return out


def moe_glm4(arch, w, p, h, stats):
    """Glm4MoeMoE: float32 router logits, sigmoid, e_score_correction_bias added for the choice
    only (group-limited: n_group groups scored by their top-2 sum, topk_group kept), weights are
    the chosen sigmoids (renormalised per norm_topk_prob, + 1e-20) times routed_scaling_factor;
    plus the shared experts (one MLP of moe_intermediate_size * n_shared_experts)."""
    c = arch.cfg
    k, E = c["num_experts_per_tok"], c["n_routed_experts"]
    n_group, topk_group = c.get("n_group", 1), c.get("topk_group", 1)
    logits = (h.astype(F32) @ w[p + "mlp.gate.weight"].astype(F32).T).astype(F32)
    sig = (F32(1) / (F32(1) + np.exp(-logits))).astype(F32)
    choice = (sig + w[p + "mlp.gate.e_score_correction_bias"].astype(F32)).astype(F32)
    groups = choice.reshape(-1, n_group, E // n_group)
    group_scores = -np.sort(-groups, axis=-1)[..., :2].sum(-1)
    keep = np.zeros_like(group_scores, dtype=bool)
    np.put_along_axis(keep, topk_indices(group_scores, topk_group), True, -1)
    masked = np.where(np.repeat(keep, E // n_group, axis=-1), choice, F32(0))
    stats["router_margin"] = min(stats.get("router_margin", math.inf), topk_margin(masked, k))
    idx = topk_indices(masked, k)
    weights = np.take_along_axis(sig, idx, -1)
    if c.get("norm_topk_prob", True):
        weights = (weights / (weights.sum(-1, keepdims=True) + F32(1e-20))).astype(F32)
    weights = (weights * F32(c.get("routed_scaling_factor", 1.0))).astype(F32).astype(F64)
    out = np.zeros_like(h)
    for t in range(h.shape[0]):
        for slot in range(k):
            y = glu_mlp(arch.act, w, f"{p}mlp.experts.{idx[t, slot]}.", h[t:t + 1])
            out[t] += y[0] * weights[t, slot]
    return out + glu_mlp(arch.act, w, p + "mlp.shared_experts.", h)


def mlp(arch, w, layer, h, stats):
    p = f"model.layers.{layer}."
    if arch.sparse[layer]:
        if arch.type in ("qwen3_moe", "mixtral"):
            return moe_softmax_topk(arch, w, p, h, stats)
        if arch.type == "gpt_oss":
            return moe_gpt_oss(arch, w, p, h, stats)
        return moe_glm4(arch, w, p, h, stats)
    if arch.type == "phi3":
        gate, up = np.split(h @ w[p + "mlp.gate_up_proj.weight"].T, 2, axis=-1)
        return (activation(arch.act, gate) * up) @ w[p + "mlp.down_proj.weight"].T
    return glu_mlp(arch.act, w, p + "mlp.", h)


# --------------------------------------------------------------------------------------------
# the forward pass (float64, transformers semantics)


def forward(arch, w, ids, cache=None, stats=None):
    """ids [T] at positions past..past+T-1 -> (hidden states [n_layers + 1] each [T, hidden],
    logits [T, vocab]), float64. w: name -> float64 weights. cache: per layer [keys, values]
    after RoPE of the earlier positions (HF's DynamicCache), extended in place; None for a
    whole-prompt forward. stats: a dict that collects the smallest router top-k margin."""
    stats = {} if stats is None else stats
    T = len(ids)
    past = cache[0][0].shape[0] if cache else 0
    D, Hq, Hk = arch.head_dim, arch.n_heads, arch.n_kv
    gemma = arch.type == "gemma"
    x = w["model.embed_tokens.weight"][np.asarray(ids)]
    if gemma:
        x = x * F64(arch.hidden ** 0.5)
    cos, sin = rope_cos_sin(arch, past + np.arange(T))
    cos, sin = cos[:, None, :], sin[:, None, :]
    i = past + np.arange(T)[:, None]      # query positions
    j = np.arange(past + T)[None, :]      # key positions
    hidden = [x]
    for layer in range(arch.n_layers):
        p = f"model.layers.{layer}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], arch.eps, gemma)
        if arch.type == "phi3":
            qkv = h @ w[p + "self_attn.qkv_proj.weight"].T
            q, k, v = np.split(qkv, [Hq * D, Hq * D + Hk * D], axis=-1)
        else:
            q = h @ w[p + "self_attn.q_proj.weight"].T
            k = h @ w[p + "self_attn.k_proj.weight"].T
            v = h @ w[p + "self_attn.v_proj.weight"].T
            if arch.qkv_bias:
                q = q + w[p + "self_attn.q_proj.bias"]
                k = k + w[p + "self_attn.k_proj.bias"]
                v = v + w[p + "self_attn.v_proj.bias"]
        q, k, v = q.reshape(T, Hq, D), k.reshape(T, Hk, D), v.reshape(T, Hk, D)
        if arch.qk_norm:  # per-head q/k RMSNorm before RoPE
            q = rms_norm(q, w[p + "self_attn.q_norm.weight"], arch.eps)
            k = rms_norm(k, w[p + "self_attn.k_norm.weight"], arch.eps)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            if len(cache) <= layer:
                cache.append([k[:0], v[:0]])
            cache[layer][0] = k = np.concatenate([cache[layer][0], k])
            cache[layer][1] = v = np.concatenate([cache[layer][1], v])
        # masking_utils: causal, and with a sliding window key j is visible from query i only
        # while i - j < sliding_window.
        visible = j <= i
        if arch.windows[layer] is not None:
            visible = visible & (i - j < arch.windows[layer])
        group = Hq // Hk  # repeat_kv: query head h reads KV head h // group
        out = np.empty((T, Hq, D))
        for hh in range(Hq):
            s = (q[:, hh, :] @ k[:, hh // group, :].T) * F64(D ** -0.5)
            if arch.type == "gpt_oss":
                probs = softmax_with_sink(s, visible, w[p + "self_attn.sinks"][hh])
            else:
                probs = softmax_f32(s, visible)
            out[:, hh, :] = probs @ v[:, hh // group, :]
        attn = out.reshape(T, Hq * D) @ w[p + "self_attn.o_proj.weight"].T
        if arch.o_bias:
            attn = attn + w[p + "self_attn.o_proj.bias"]
        x = x + attn
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], arch.eps, gemma)
        x = x + mlp(arch, w, layer, h, stats)
        if layer + 1 < arch.n_layers:
            hidden.append(x)
    x = rms_norm(x, w["model.norm.weight"], arch.eps, gemma)
    hidden.append(x)
    head = w["model.embed_tokens.weight"] if arch.tied else w["lm_head.weight"]
    return hidden, x @ head.T


def greedy(arch, w, ids, n, stats=None):
    """Prompt forward, then n greedy tokens (float64 argmax) through the KV cache, like
    generate(do_sample=False). Returns hidden states, prompt logits, the tokens and the smallest
    top-2 logit gap along the path."""
    cache = []
    hidden, prompt_logits = forward(arch, w, ids, cache, stats)
    last, out, margin = prompt_logits[-1], [], math.inf
    for step in range(n):
        top2 = np.sort(last)[-2:]
        margin = min(margin, float(top2[1] - top2[0]))
        out.append(int(np.argmax(last)))
        if step + 1 < n:
            last = forward(arch, w, [out[-1]], cache, stats)[1][-1]
    return hidden, prompt_logits, out, margin


def as_f64(w):
    return {k: v.astype(F64) for k, v in w.items()}
