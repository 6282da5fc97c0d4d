"""MLX affine quantization for the held-out models, written from MLX's own source
(mlx/backend/cpu/quantized.cpp `quantize`, the CPU path of mlx.core.quantize; mlx/ops.cpp
`affine_quantize` is the same arithmetic as array ops), and mlx-lm's checkpoint layout as
mlx-community publishes it:

  - per group of `group` consecutive inputs of a row, in float32 from the bf16 weights:
      scale = max((w_max - w_min) / (2^bits - 1), 1e-7), negated unless |w_min| > |w_max|;
      edge  = w_min if |w_min| > |w_max| else w_max;  q0 = rint(edge / scale);
      if q0 != 0: scale = edge / q0, bias = edge  else bias = 0   (so 0 or the edge is exact);
      q = clip(rint((w - bias) / scale), 0, 2^bits - 1)   with the float32 scale and bias;
    scales and biases are then stored in the weight dtype (bf16 here), and w = scales * q + biases;
  - `<module>.weight` U32 [out, in * bits / 32]: element j of a row occupies bits
    [j * bits, (j + 1) * bits) of the row's little-endian bit stream (3/5/6-bit codes cross
    words); `<module>.scales` / `.biases` [out, in / group];
  - mlx-lm quantizes every Linear / Embedding (and SwitchLinear: stacked experts) whose input
    width is a multiple of the group; config.json `quantization` (and `quantization_config`) =
    {group_size, bits, per-module overrides: {group_size, bits} or false}; a module is quantized
    iff `<module>.scales` exists; a tied lm_head is the quantized embed_tokens itself;
  - mixtures of experts: mlx-lm stacks each layer's experts as `mlp.switch_mlp.{gate,up,down}_proj`
    (qwen3_moe, glm4_moe) / `block_sparse_moe.switch_mlp.{gate,up,down}_proj` (mixtral, from
    w1/w3/w2); gpt_oss's sanitize splits the fused experts into `mlp.experts.{gate,up,down}_proj`
    [E, out, in] (gate the even, up the odd rows of the interleaved gate_up_proj) with their
    biases `mlp.experts.{gate,up,down}_proj.bias` [E, out] (models/gpt_oss.py);
  - what mlx-lm leaves float: modules that are not Linear / Embedding / SwitchLinear (glm4_moe's
    router `mlp.gate.weight` is a bare MoEGate parameter), those whose input width is not a
    multiple of the model's group (quantize_model's wrapped predicate, before any override), and
    glm4_moe's `e_score_correction_bias`, kept float32 (its cast_predicate); gpt_oss's quant
    predicate puts every `mlp.router` at 8 bits, group 64.

The reader (read_checkpoint) is separate from the writer: it unpacks whatever checkpoint it is
given bit by bit, so --validate can check it on the transformers-made mlx-tiny fixtures."""

import json
import os

import numpy as np

from st_io import F32, F64, bf16, bf16_round, bf16_to_f32, read_safetensors

BITS = (2, 3, 4, 5, 6, 8)
GROUPS = (32, 64, 128)


def quantize(w, group, bits):
    """w: float32 [rows, in] (bf16 values) -> (q uint32 [rows, in], scales f32, biases f32 [rows,
    in / group]) before the scales/biases are rounded to the storage dtype."""
    assert bits in BITS and group in GROUPS and w.shape[-1] % group == 0
    rows, n = w.shape
    g = w.astype(F32).reshape(rows, n // group, group)
    n_bins = F32((1 << bits) - 1)
    w_max, w_min = g.max(-1), g.min(-1)
    mask = np.abs(w_min) > np.abs(w_max)
    scale = np.maximum((w_max - w_min) / n_bins, F32(1e-7)).astype(F32)
    scale = np.where(mask, scale, -scale).astype(F32)
    edge = np.where(mask, w_min, w_max).astype(F32)
    q0 = np.rint(edge / scale).astype(F32)
    nonzero = q0 != 0
    scale = np.where(nonzero, edge / np.where(nonzero, q0, F32(1)), scale).astype(F32)
    bias = np.where(nonzero, edge, F32(0)).astype(F32)
    q = np.rint((g - bias[..., None]) / scale[..., None]).astype(F32)
    q = np.minimum(np.maximum(q, F32(0)), n_bins).astype(np.uint32)
    return q.reshape(rows, n), scale, bias


def pack(q, bits):
    """[rows, in] codes -> [rows, in * bits / 32] uint32 words (little-endian bit stream)."""
    rows, n = q.shape
    assert (n * bits) % 32 == 0
    out = np.zeros((rows, n * bits // 32 + 1), dtype=np.uint64)  # one spare word for spills
    pos = np.arange(n, dtype=np.uint64) * np.uint64(bits)
    word, shift = (pos // np.uint64(32)).astype(np.int64), pos % np.uint64(32)
    val = q.astype(np.uint64) << shift[None, :]  # up to 39 bits: the low word and a spill
    for j in range(n):  # codes of one row may share words: or them in column by column
        out[:, word[j]] |= val[:, j] & np.uint64(0xFFFFFFFF)
        out[:, word[j] + 1] |= val[:, j] >> np.uint64(32)
    assert not out[:, -1].any()
    return out[:, :-1].astype(np.uint32)


def unpack(words, bits, n):
    """[rows, n * bits / 32] uint32 -> [rows, n] codes, reading the bit stream bit by bit (an
    implementation unlike pack's, so the two check each other)."""
    rows = words.shape[0]
    stream = np.unpackbits(words.astype("<u4").view(np.uint8).reshape(rows, -1), axis=-1, bitorder="little")
    stream = stream[:, :n * bits].reshape(rows, n, bits).astype(np.uint32)
    return (stream << np.arange(bits, dtype=np.uint32)).sum(-1).astype(np.uint32)


def dequantize(words, scales, biases, group, bits):
    """Packed [..., out, in * bits / 32] with scales/biases [..., out, in / group] (float32
    values) -> float64 [..., out, in]: scales * q + biases, exact in float64."""
    lead = words.shape[:-1]
    n = words.shape[-1] * 32 // bits
    q = unpack(words.reshape(-1, words.shape[-1]), bits, n).astype(F64).reshape(*lead, n // group, group)
    w = q * scales.astype(F64)[..., None] + biases.astype(F64)[..., None]
    return w.reshape(*lead, n)


# --------------------------------------------------------------------------------------------
# checkpoints


def stack_experts(weights, arch_type, n_layers, n_experts):
    """mlx-lm's sanitize: per-expert tensors -> one [E, out, in] switch_mlp tensor per projection."""
    w = dict(weights)
    for layer in range(n_layers):
        if arch_type == "mixtral":
            p, names = f"model.layers.{layer}.block_sparse_moe.", (("w1", "gate_proj"), ("w3", "up_proj"),
                                                                    ("w2", "down_proj"))
        else:
            p, names = f"model.layers.{layer}.mlp.", (("gate_proj",) * 2, ("up_proj",) * 2, ("down_proj",) * 2)
        for src, dst in names:
            if f"{p}experts.0.{src}.weight" in w:
                w[f"{p}switch_mlp.{dst}.weight"] = np.stack(
                    [w.pop(f"{p}experts.{e}.{src}.weight") for e in range(n_experts)])
    return w


def unstack_experts(weights, arch_type):
    """The inverse: switch_mlp tensors back to transformers' per-expert names."""
    out = {}
    back = {"gate_proj": "w1", "up_proj": "w3", "down_proj": "w2"}
    for name, t in weights.items():
        if ".switch_mlp." not in name:
            out[name] = t
            continue
        p, rest = name.split("switch_mlp.")
        proj = rest.split(".")[0]
        src = back[proj] if arch_type == "mixtral" else proj
        for e in range(t.shape[0]):
            out[f"{p}experts.{e}.{src}.weight"] = t[e]
    return out


def gpt_oss_split_experts(weights):
    """mlx-lm's gpt_oss sanitize on transformers' fused experts: gate_up_proj [E, H, 2I] (x @ W,
    gate the even and up the odd columns) and down_proj [E, I, H] -> [E, out, in] per projection,
    the biases split the same way."""
    out = {}
    for name, t in weights.items():
        if name.endswith("mlp.experts.gate_up_proj"):
            p = name[:-len("gate_up_proj")]
            out[p + "gate_proj.weight"] = np.ascontiguousarray(t[..., 0::2].swapaxes(-1, -2))
            out[p + "up_proj.weight"] = np.ascontiguousarray(t[..., 1::2].swapaxes(-1, -2))
        elif name.endswith("mlp.experts.gate_up_proj_bias"):
            p = name[:-len("gate_up_proj_bias")]
            out[p + "gate_proj.bias"] = np.ascontiguousarray(t[..., 0::2])
            out[p + "up_proj.bias"] = np.ascontiguousarray(t[..., 1::2])
        elif name.endswith("mlp.experts.down_proj"):
            out[name + ".weight"] = np.ascontiguousarray(t.swapaxes(-1, -2))
        elif name.endswith("mlp.experts.down_proj_bias"):
            out[name[:-len("down_proj_bias")] + "down_proj.bias"] = t
        else:
            out[name] = t
    return out


def gpt_oss_fuse_experts(weights):
    """The inverse of gpt_oss_split_experts (the reference reads transformers' names), written
    with explicit indexing rather than slicing so that the two check each other."""
    out = dict(weights)
    for name in [n for n in weights if n.endswith("mlp.experts.gate_proj.weight")]:
        p = name[:-len("gate_proj.weight")]
        g, u = out.pop(p + "gate_proj.weight"), out.pop(p + "up_proj.weight")  # [E, I, H]
        gb, ub = out.pop(p + "gate_proj.bias"), out.pop(p + "up_proj.bias")  # [E, I]
        E, inter, hidden = g.shape
        fused = np.empty((E, hidden, 2 * inter), dtype=g.dtype)
        fused_b = np.empty((E, 2 * inter), dtype=gb.dtype)
        for n in range(inter):
            fused[:, :, 2 * n], fused[:, :, 2 * n + 1] = g[:, n, :], u[:, n, :]
            fused_b[:, 2 * n], fused_b[:, 2 * n + 1] = gb[:, n], ub[:, n]
        out[p + "gate_up_proj"], out[p + "gate_up_proj_bias"] = fused, fused_b
        out[p + "down_proj"] = np.ascontiguousarray(np.transpose(out.pop(p + "down_proj.weight"), (0, 2, 1)))
        out[p + "down_proj_bias"] = out.pop(p + "down_proj.bias")
    return out


def mlx_layout(weights, cfg):
    """transformers' checkpoint names -> the layout mlx-lm's sanitize() gives the architecture."""
    arch = cfg["model_type"]
    if arch == "gpt_oss":
        return gpt_oss_split_experts(weights)
    experts = cfg.get("num_experts") or cfg.get("num_local_experts") or cfg.get("n_routed_experts")
    if experts:
        return stack_experts(weights, arch, cfg["num_hidden_layers"], experts)
    return weights


def mlx_keeps_float(name, cfg):
    """Weights no mlx-lm quantization touches whatever the predicate (see the module docstring)."""
    return cfg.get("model_type") == "glm4_moe" and name.endswith(".mlp.gate.weight")


def module_setting(module, quant):
    """(group, bits) for a module, or None when an override says false."""
    o = quant.get(module)
    if o is False:
        return None
    if isinstance(o, dict):
        return o["group_size"], o["bits"]
    return quant["group_size"], quant["bits"]


def write_checkpoint(weights, cfg, quant):
    """weights: HF names -> float32 (bf16 values), experts already stacked where mlx-lm stacks
    them; quant: config.json's quantization block. Returns safetensors tensors (dtype, array):
    every Linear / Embedding weight (2-D, or 3-D stacked experts) whose input width is a multiple
    of its group becomes U32 + BF16 scales/biases; the rest stays BF16."""
    tensors = {}
    for name, t in weights.items():
        if name.endswith("e_score_correction_bias"):
            tensors[name] = ("F32", t.astype(F32))
            continue
        module = name[:-len(".weight")] if name.endswith(".weight") and not mlx_keeps_float(name, cfg) else None
        setting = module_setting(module, quant) if module and t.ndim >= 2 else None
        # quantize_model tests the width against the model's group before the override's
        if setting is None or t.shape[-1] % quant["group_size"] != 0 or t.shape[-1] % setting[0] != 0:
            tensors[name] = ("BF16", bf16_round(t))
            continue
        group, bits = setting
        flat = t.reshape(-1, t.shape[-1])
        q, s, b = quantize(flat, group, bits)
        lead = t.shape[:-1]
        tensors[name] = ("U32", pack(q, bits).reshape(*lead, -1))
        tensors[module + ".scales"] = ("BF16", bf16_round(s).reshape(*lead, -1))
        tensors[module + ".biases"] = ("BF16", bf16_round(b).reshape(*lead, -1))
    return tensors


def read_checkpoint(model_dir):
    """An MLX affine checkpoint -> float64 weights under transformers' names (dequantized,
    experts unstacked, a tied lm_head left to the embedding)."""
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    quant = cfg.get("quantization") or cfg.get("quantization_config")
    raw = {}
    for fn in sorted(os.listdir(model_dir)):
        if fn.endswith(".safetensors") and fn != "golden.safetensors":
            raw.update(read_safetensors(os.path.join(model_dir, fn)))
    w = {}
    for name, t in raw.items():
        if name.endswith((".scales", ".biases")):
            continue
        module = name[:-len(".weight")]
        if name.endswith(".weight") and module + ".scales" in raw:
            if t.dtype != np.uint32:
                raise ValueError(f"{name}: quantized module with a {t.dtype} weight")
            group, bits = module_setting(module, quant)
            scales, biases = raw[module + ".scales"], raw[module + ".biases"]
            if t.shape[-1] * 32 // bits != scales.shape[-1] * group:
                raise ValueError(f"{name}: packed width {t.shape[-1]} does not match scales {scales.shape}")
            w[name] = dequantize(t, scales, biases, group, bits)
        else:
            if t.dtype == np.uint32:
                raise ValueError(f"{name}: U32 without scales")
            w[name] = t.astype(F64)
    w = unstack_experts(w, cfg["model_type"])
    return gpt_oss_fuse_experts(w) if cfg["model_type"] == "gpt_oss" else w


__all__ = ["quantize", "pack", "unpack", "dequantize", "stack_experts", "unstack_experts", "gpt_oss_split_experts",
           "gpt_oss_fuse_experts", "mlx_layout", "write_checkpoint", "read_checkpoint", "bf16", "bf16_to_f32"]
