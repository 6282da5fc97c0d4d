#!/usr/bin/python3
"""Held-out golden models: tiny Hugging Face model directories that are not in the repository,
with reference outputs from an independent float64 numpy re-implementation of the transformers
forward pass (eager attention; hf_reference.py).

    make_heldout.py OUT_DIR           write every held-out model into OUT_DIR/<name>/
    make_heldout.py --validate DATA   check the reference against the transformers-made fixtures
                                      (DATA/{hf-tiny,moe-tiny,mlx-tiny}/<name>/golden.safetensors,
                                      mlx-tiny read through our own dequantizer) and our MLX
                                      quantizer against the mlx-tiny checkpoints (bit for bit)

The reference follows transformers' modeling files, not our C runtime, so that it is an
independent check of the runtime on shapes the dev fixtures do not have:
  - dense (MODELS): other head counts and GQA ratios, head_dim != hidden / heads, vocabularies,
    long prompts past the attention tiles, sliding windows shorter than the prompt, llama3 RoPE
    scaling in both config dialects, bf16 / f16 checkpoints;
  - MLX affine quantized (QUANT_MODELS, mlx_quant.py): 2/3/4/5/6/8 bits with groups 32/64/128,
    modules left float by width or by a `false` override, per-module overrides of bits and group,
    tied quantized embeddings, fused phi3 projections, MoE experts in mlx-lm's switch_mlp layout
    with an 8-bit router, gpt_oss's split experts with float biases and 8-bit routers, glm4_moe
    with a float router and shared experts; checkpoints quantized from bf16 weights exactly as
    MLX does, goldens from exactly the dequantized weights (so quantization cannot move a router
    choice away from the reference: the reseeding below measures the margins on those weights);
  - mixtures of experts (moe_models.py): qwen3_moe, mixtral, gpt_oss, glm4_moe with other expert
    counts, top-k, renormalisation, dense layers among sparse ones, sliding windows; weights are
    redrawn until every router's k-th and (k+1)-th scores are >= 1e-3 apart along the prompts and
    greedy paths (golden.json min_router_topk_margin), so float32 routing picks the same experts.
Output format: tests/data/hf-tiny/README.md (golden.safetensors, golden.json).

Only the standard library and numpy; deterministic (fixed seeds)."""

import json
import math
import os
import shutil
import struct
import sys

import numpy as np

# GPT-2's byte-level table, from the tests' one Python copy of the tokenizers library's rules.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tokenizer_fuzz"))
from hf_bpe_reference import bytes_to_unicode  # noqa: E402

from hf_reference import Arch, as_f64, forward, greedy  # noqa: E402
from mlx_quant import mlx_layout, read_checkpoint, stack_experts, write_checkpoint  # noqa: E402
from moe_models import DIALECT_TWINS, MOE_MODELS, YARN, moe_config, moe_weights  # noqa: E402
from st_io import bf16, bf16_round, bf16_to_f32, read_header, read_safetensors, store, write_safetensors  # noqa: E402

F32 = np.float32
F64 = np.float64


# --------------------------------------------------------------------------------------------
# validation against the transformers-made fixtures


def rel_err_rows(out, ref):
    num = np.sqrt(((out.astype(F64) - ref.astype(F64)) ** 2).sum(-1))
    den = np.sqrt((ref.astype(F64) ** 2).sum(-1))
    return float((num / np.where(den == 0, 1, den)).max())


def load_weights(d):
    """A model directory's weights as the reference reads them: float checkpoints as stored,
    MLX affine ones dequantized by mlx_quant's own reader."""
    with open(os.path.join(d, "config.json")) as f:
        config = json.load(f)
    if config.get("quantization") or config.get("quantization_config"):
        return config, read_checkpoint(d)
    return config, as_f64(read_safetensors(os.path.join(d, "model.safetensors")))


def validate_models(root):
    """The reference against every transformers-made golden under root (hf-tiny, moe-tiny,
    mlx-tiny): KV-cache path and whole-sequence forward, hidden states, logits, greedy tokens."""
    worst, ok = 0.0, True
    for name in sorted(os.listdir(root)):
        d = os.path.join(root, name)
        if not os.path.exists(os.path.join(d, "golden.safetensors")):
            continue
        config, w = load_weights(d)
        arch = Arch(config)
        g = read_safetensors(os.path.join(d, "golden.safetensors"))
        err, greedy_ok = 0.0, True
        p = 0
        while f"p{p}.ids" in g:
            ids = g[f"p{p}.ids"].tolist()
            ref_greedy = g[f"p{p}.greedy"].tolist()
            # The KV-cache path (prompt forward, then greedy decode) must reproduce the
            # references' hidden states, logits and greedy tokens ...
            hidden, logits, cont, _ = greedy(arch, w, ids, len(ref_greedy))
            err = max(err, rel_err_rows(logits, g[f"p{p}.logits"]))
            for li, hs in enumerate(hidden):
                if f"p{p}.hidden.{li}" in g:
                    err = max(err, rel_err_rows(hs, g[f"p{p}.hidden.{li}"]))
            greedy_ok &= cont == ref_greedy
            # ... and so must one whole-sequence forward, teacher-forced on the golden tokens.
            _, full = forward(arch, w, ids + ref_greedy)
            err = max(err, rel_err_rows(full[:len(ids)], g[f"p{p}.logits"]))
            for s, tok in enumerate(ref_greedy):
                row = full[len(ids) - 1 + s]
                if int(np.argmax(row)) != tok and row.max() - row[tok] > 1e-5:
                    greedy_ok = False
            p += 1
        good = err <= 2e-6 and greedy_ok and p > 0
        ok &= good
        worst = max(worst, err)
        print(f"validate {os.path.basename(root)}/{name:20s} max_rel_err={err:.3e} "
              f"greedy={'ok' if greedy_ok else 'MISMATCH'} {'PASS' if good else 'FAIL'}")
    return ok, worst


# The float checkpoints the mlx-tiny fixtures were quantized from (fixtures README).
MLX_FIXTURE_SOURCES = {"llama-q4-g64": "hf-tiny/llama", "llama-q2-g32": "hf-tiny/llama",
                       "llama-mixed-q4-g32": "hf-tiny/llama", "llama3-q8-g32": "hf-tiny/llama3",
                       "qwen3-q6-g32": "hf-tiny/qwen3", "mistral-q3-g32": "hf-tiny/mistral",
                       "qwen2-q5-g32": "hf-tiny/qwen2", "qwen3_moe-q4-g32": "moe-tiny/qwen3_moe"}


def validate_quantizer(data):
    """Our MLX quantizer and packer on the fixtures' float sources, rounded to bf16, must give
    the mlx-tiny checkpoints bit for bit: the same quantized modules, U32 words, bf16 scales and
    biases."""
    ok = True
    for name, src in sorted(MLX_FIXTURE_SOURCES.items()):
        d = os.path.join(data, "mlx-tiny", name)
        if not os.path.isdir(d):
            continue
        with open(os.path.join(d, "config.json")) as f:
            config = json.load(f)
        fixture = read_safetensors(os.path.join(d, "model.safetensors"))
        w = {k: bf16(v) for k, v in read_safetensors(os.path.join(data, src, "model.safetensors")).items()}
        if config.get("tie_word_embeddings"):
            w.pop("lm_head.weight", None)
        experts = config.get("num_experts") or config.get("num_local_experts")
        if experts:
            w = stack_experts(w, config["model_type"], config["num_hidden_layers"], experts)
        ours = write_checkpoint(w, config, config["quantization"])
        bad = sorted(set(ours) ^ set(fixture))
        for k in sorted(set(ours) & set(fixture)):
            dtype, a = ours[k]
            mine = a if dtype == "U32" else bf16_to_f32(a)
            if mine.shape != fixture[k].shape or not np.array_equal(mine, fixture[k]):
                bad.append(k)
        n_quant = sum(1 for k in ours if k.endswith(".scales"))
        print(f"validate quantizer {name:20s} {n_quant} quantized modules, {len(ours)} tensors: "
              f"{'identical' if not bad else 'DIFFER: ' + ', '.join(bad[:5])}")
        ok &= not bad
    return ok


def validate(data):
    ok, worst = True, 0.0
    for family in ("hf-tiny", "moe-tiny", "mlx-tiny"):
        if os.path.isdir(os.path.join(data, family)):
            good, err = validate_models(os.path.join(data, family))
            ok, worst = ok and good, max(worst, err)
    ok &= validate_quantizer(data)
    print(f"validate: {'PASS' if ok else 'FAIL'} worst={worst:.3e}")
    return ok


# --------------------------------------------------------------------------------------------
# the held-out models


def base_config(arch_type, spec):
    """config.json as transformers 5.x writes it for this architecture (field sets copied from
    the fixtures' configs), with the spec's dimensions."""
    hidden, heads, kv = spec["hidden"], spec["heads"], spec["kv"]
    c = {
        "architectures": [{"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM",
                           "qwen3": "Qwen3ForCausalLM", "phi3": "Phi3ForCausalLM", "gemma": "GemmaForCausalLM"}[arch_type]],
        "attention_dropout": 0.0,
        "bos_token_id": 0,
        "dtype": spec.get("dtype", "float32"),
        "eos_token_id": 1,
        "hidden_act": "silu",
        "hidden_size": hidden,
        "initializer_range": 0.08,
        "intermediate_size": spec["inter"],
        "max_position_embeddings": 1024,
        "model_type": arch_type,
        "num_attention_heads": heads,
        "num_hidden_layers": spec["layers"],
        "num_key_value_heads": kv,
        "pad_token_id": 2,
        "rms_norm_eps": spec.get("eps", 1e-5),
        "tie_word_embeddings": spec.get("tied", False),
        "transformers_version": "5.17.0",
        "use_cache": True,
        "vocab_size": spec["vocab"],
    }
    if arch_type in ("llama", "qwen3", "gemma", "mistral"):
        c["head_dim"] = spec.get("head_dim", hidden // heads)
    if arch_type in ("llama", "qwen3", "gemma"):
        c["attention_bias"] = False
    if arch_type == "llama":
        c["mlp_bias"] = False
        c["pretraining_tp"] = 1
    if arch_type in ("qwen2", "qwen3"):
        c["layer_types"] = ["full_attention"] * spec["layers"]
        c["max_window_layers"] = 28
        c["use_sliding_window"] = False
    if arch_type in ("qwen2", "qwen3", "mistral", "phi3"):
        c["sliding_window"] = spec.get("sliding_window")
    if arch_type == "phi3":
        c["embd_pdrop"] = 0.0
        c["resid_pdrop"] = 0.0
        c["original_max_position_embeddings"] = 4096
    if arch_type == "gemma":
        c["hidden_act"] = "gelu_pytorch_tanh"
        c["hidden_activation"] = "gelu_pytorch_tanh"
        c["use_bidirectional_attention"] = None
    rope = dict(spec.get("rope", {"rope_type": "default"}))
    rope.setdefault("rope_theta", spec.get("rope_theta", 10000.0))
    if arch_type == "phi3":
        rope["partial_rotary_factor"] = 1.0
    if spec.get("classic_dialect"):
        # transformers 4.x: rope_theta at the top, rope_scaling null or the scaling dict.
        c["rope_theta"] = rope.pop("rope_theta")
        c["rope_scaling"] = None if rope.get("rope_type") == "default" else rope
        c["transformers_version"] = "4.46.3"
        c["torch_dtype"] = c.pop("dtype")
    else:
        c["rope_parameters"] = dict(sorted(rope.items()))
    return dict(sorted(c.items()))


def random_weights(arch, seed):
    """Seeded like the fixtures: N(0, 0.08) matrices, norms 1 + N(0, 0.1) (Gemma stores w of
    `1 + w`, so N(0, 0.1)), biases N(0, 0.05)."""
    rng = np.random.default_rng(seed)
    H, D, Hq, Hk, I, V = arch.hidden, arch.head_dim, arch.n_heads, arch.n_kv, arch.cfg["intermediate_size"], arch.vocab
    norm_center = 0.0 if arch.type == "gemma" else 1.0

    def mat(rows, cols):
        return rng.normal(0.0, 0.08, (rows, cols)).astype(F32)

    def norm(n):
        return (norm_center + rng.normal(0.0, 0.1, n)).astype(F32)

    w = {"model.embed_tokens.weight": mat(V, H)}
    for layer in range(arch.n_layers):
        p = f"model.layers.{layer}."
        w[p + "input_layernorm.weight"] = norm(H)
        w[p + "post_attention_layernorm.weight"] = norm(H)
        if arch.type == "phi3":
            w[p + "self_attn.qkv_proj.weight"] = mat(Hq * D + 2 * Hk * D, H)
            w[p + "mlp.gate_up_proj.weight"] = mat(2 * I, H)
        else:
            w[p + "self_attn.q_proj.weight"] = mat(Hq * D, H)
            w[p + "self_attn.k_proj.weight"] = mat(Hk * D, H)
            w[p + "self_attn.v_proj.weight"] = mat(Hk * D, H)
            w[p + "mlp.gate_proj.weight"] = mat(I, H)
            w[p + "mlp.up_proj.weight"] = mat(I, H)
            if arch.qkv_bias:
                for n, size in (("q", Hq * D), ("k", Hk * D), ("v", Hk * D)):
                    w[p + f"self_attn.{n}_proj.bias"] = rng.normal(0.0, 0.05, size).astype(F32)
        if arch.type == "qwen3":
            w[p + "self_attn.q_norm.weight"] = norm(D)
            w[p + "self_attn.k_norm.weight"] = norm(D)
        w[p + "self_attn.o_proj.weight"] = mat(H, Hq * D)
        w[p + "mlp.down_proj.weight"] = mat(H, I)
    w["model.norm.weight"] = norm(H)
    if not arch.tied:
        w["lm_head.weight"] = mat(V, H)
    return w


# name, architecture, dimensions, prompt lengths (BOS included). Every model has a short prompt
# (1-5 tokens) and a long one past the 64- and 128-token attention tiles.
MODELS = [
    ("llama-gqa3", "llama", dict(hidden=96, heads=6, kv=2, head_dim=16, inter=200, vocab=600, layers=3,
                                  classic_dialect=True), [4, 37, 203]),
    ("llama-mqa-bf16", "llama", dict(hidden=80, heads=5, kv=1, head_dim=16, inter=136, vocab=517, layers=2,
                                      dtype="bfloat16", rope_theta=50000.0), [2, 150, 19]),
    ("llama3-tied-mha-f16", "llama", dict(hidden=64, heads=4, kv=4, head_dim=16, inter=128, vocab=520, layers=3,
                                          tied=True, dtype="float16",
                                          rope=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                                                    high_freq_factor=4.0, original_max_position_embeddings=64,
                                                    rope_theta=500000.0)), [5, 260, 70]),
    ("llama3-classic-5l", "llama", dict(hidden=48, heads=4, kv=2, head_dim=12, inter=104, vocab=530, layers=5,
                                        classic_dialect=True,
                                        rope=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                                                  high_freq_factor=4.0, original_max_position_embeddings=64,
                                                  rope_theta=10000.0)), [1, 180, 45]),
    ("mistral-swa40", "mistral", dict(hidden=96, heads=8, kv=2, head_dim=12, inter=160, vocab=640, layers=3,
                                      sliding_window=40, rope_theta=1000000.0), [3, 200, 41]),
    ("qwen2-tied-bias", "qwen2", dict(hidden=48, heads=6, kv=2, head_dim=8, inter=112, vocab=1000, layers=3,
                                      tied=True, eps=1e-6, rope_theta=1000000.0), [4, 157, 29]),
    ("qwen3-hd32", "qwen3", dict(hidden=64, heads=4, kv=2, head_dim=32, inter=144, vocab=560, layers=3,
                                 eps=1e-6, rope_theta=1000000.0), [2, 64, 222]),
    ("phi3-kv3", "phi3", dict(hidden=96, heads=6, kv=3, inter=176, vocab=610, layers=3), [5, 129, 300]),
    ("gemma-hd40-mqa", "gemma", dict(hidden=80, heads=4, kv=1, head_dim=40, inter=120, vocab=700, layers=2,
                                     tied=True), [3, 190, 33]),
    # A bf16 Gemma: transformers' float64 reference scales the embeddings by sqrt(72) in float64
    # (normalizer in the model dtype, float64 there); bf16 would round it by 0.2 %.
    ("gemma-bf16", "gemma", dict(hidden=72, heads=3, kv=1, head_dim=24, inter=96, vocab=530, layers=2,
                                 tied=True, dtype="bfloat16"), [4, 170, 12]),
    # head_dim 128, as in most real checkpoints (vector paths specialised on it).
    ("llama-hd128", "llama", dict(hidden=128, heads=2, kv=1, head_dim=128, inter=192, vocab=512, layers=2,
                                  rope_theta=500000.0), [2, 140, 23]),
]

# MLX affine quantized held-out models (mlx-community's layout, see mlx_quant.py): other bit
# widths, groups and shapes than mlx-tiny's, name, architecture, spec, prompt lengths and the
# config.json quantization block (per-module overrides included).
def _q(group, bits, **overrides):
    return dict({"group_size": group, "bits": bits}, **overrides)


QUANT_MODELS = [
    ("llama-q3-g64", "llama", dict(hidden=128, heads=4, kv=2, head_dim=32, inter=192, vocab=600, layers=3),
     [3, 90, 20], _q(64, 3)),
    # down_proj (input 320) is not a multiple of 128: it stays bf16
    ("qwen3-q5-g128", "qwen3", dict(hidden=128, heads=4, kv=1, head_dim=32, inter=320, vocab=700, layers=2,
                                    eps=1e-6, rope_theta=1000000.0), [2, 140, 17], _q(128, 5)),
    ("mistral-q6-g64-swa32", "mistral", dict(hidden=128, heads=8, kv=2, head_dim=16, inter=256, vocab=520,
                                             layers=2, sliding_window=32), [4, 150, 33], _q(64, 6)),
    # phi3's fused qkv_proj and gate_up_proj quantized like any Linear
    ("phi3-q8-g128", "phi3", dict(hidden=128, heads=4, kv=2, inter=256, vocab=530, layers=2), [2, 100, 25],
     _q(128, 8)),
    # tied quantized embeddings: Gemma's scaled one, qwen2's with float q/k/v biases, llama3's
    # with an odd vocabulary
    ("gemma-q4-g32-tied", "gemma", dict(hidden=96, heads=3, kv=1, head_dim=32, inter=160, vocab=777, layers=2,
                                        tied=True), [3, 80, 14], _q(32, 4)),
    ("qwen2-q2-g64-tied", "qwen2", dict(hidden=64, heads=4, kv=2, head_dim=16, inter=192, vocab=1000, layers=2,
                                        tied=True, eps=1e-6, rope_theta=1000000.0), [2, 70, 9], _q(64, 2)),
    ("llama3-q5-g32-tied-v1111", "llama", dict(hidden=64, heads=4, kv=2, head_dim=16, inter=96, vocab=1111,
                                               layers=2, tied=True,
                                               rope=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                                                         high_freq_factor=4.0, original_max_position_embeddings=64,
                                                         rope_theta=500000.0)), [5, 120, 30], _q(32, 5)),
    # per-module overrides: another bits/group, false (float although 128 divides it), the
    # lm_head and the embedding at their own widths
    ("llama-mixed-q4-g64", "llama", dict(hidden=128, heads=4, kv=4, head_dim=32, inter=256, vocab=640, layers=3),
     [2, 110, 26], _q(64, 4, **{"model.layers.0.self_attn.v_proj": {"group_size": 32, "bits": 8},
                                 "model.layers.1.self_attn.o_proj": False,
                                 "model.layers.2.mlp.down_proj": {"group_size": 128, "bits": 3},
                                 "lm_head": {"group_size": 64, "bits": 6},
                                 "model.embed_tokens": {"group_size": 128, "bits": 2}})),
    # MoE in mlx-lm's switch_mlp layout: qwen3_moe with the router at 8 bits g64 (mlx-lm's
    # qwen3_moe predicate), top-3 of 6 unnormalised, layer 1 dense; mixtral's router quantized
    # at the model's 6 bits.
    ("qwen3_moe-q4-g64-switch", "qwen3_moe",
     dict(hidden=128, heads=4, kv=2, head_dim=32, inter=192, moe_inter=64, vocab=600, layers=3, experts=6, k=3,
          norm=False, mlp_only=[1], hub_dialect=True), [2, 60, 14],
     _q(64, 4, **{f"model.layers.{i}.mlp.gate": {"group_size": 64, "bits": 8} for i in (0, 2)})),
    ("mixtral-q6-g32-switch", "mixtral",
     dict(hidden=64, heads=4, kv=2, head_dim=16, inter=96, vocab=520, layers=2, experts=4, k=2), [3, 50, 11],
     _q(32, 6)),
    # gpt_oss and glm4_moe as mlx-lm quantizes them (quantize_model with each model's predicate,
    # "mode": "affine" in the block): gpt_oss's experts split by its sanitize into
    # mlp.experts.{gate,up,down}_proj with float biases, its routers at 8 bits group 64 by the
    # predicate (with float router biases), sinks float; glm4_moe's experts in switch_mlp, shared
    # experts and dense layers quantized, its router (a bare MoEGate parameter) left bf16 and the
    # correction bias float32. 4 and 8 bits, groups 32/64, YaRN / sliding windows, top-k 2-3.
    ("gpt_oss-q4-g64-mlx", "gpt_oss",
     dict(hidden=128, heads=4, kv=2, head_dim=32, inter=64, vocab=540, layers=2, experts=6, k=2,
          sliding_window=12, rope=YARN, max_pos=512), [2, 70, 17],
     _q(64, 4, mode="affine", **{f"model.layers.{i}.mlp.router": {"group_size": 64, "bits": 8} for i in range(2)})),
    ("gpt_oss-q8-g32-mlx", "gpt_oss",
     dict(hidden=64, heads=4, kv=1, head_dim=16, inter=32, vocab=530, layers=3, experts=4, k=3,
          sliding_window=20, rope=YARN, max_pos=512), [3, 60, 22],
     _q(32, 8, mode="affine", **{f"model.layers.{i}.mlp.router": {"group_size": 64, "bits": 8} for i in range(3)})),
    ("glm4_moe-q4-g32-mlx", "glm4_moe",
     dict(hidden=64, heads=4, kv=2, head_dim=16, inter=96, moe_inter=32, vocab=560, layers=3, experts=8, k=2,
          first_dense=1, shared=1, norm=True, scaling=2.5, qk_norm=True, partial_rotary=0.5), [2, 66, 19],
     _q(32, 4, mode="affine")),
    ("glm4_moe-q8-g64-mlx", "glm4_moe",
     dict(hidden=128, heads=2, kv=1, head_dim=64, inter=128, moe_inter=64, vocab=580, layers=3, experts=6, k=3,
          first_dense=1, shared=2, norm=False, scaling=1.5, qk_norm=False, partial_rotary=0.5), [4, 55, 13],
     _q(64, 8, mode="affine")),
]

# Wrong-config twins of held-out models (same weights and references, one config field changed):
# exo-golden must FAIL on them, which shows the references can catch a mistake.
WRONG_CONFIGS = [
    ("mistral-swa40", "mistral-swa40-full-attention", {"sliding_window": None}),
    # the MoE references must catch a routing mistake too: renormalising the top-3 weights
    ("qwen3_moe-e12-top3-plain", "qwen3_moe-e12-top3-renormalised", {"norm_topk_prob": True}),
]

# Wrong-layout twins of MLX MoE models: the same files with each layer's expert gate_proj and
# up_proj stacks (weight, scales, biases and expert bias) trading names, the kind of slip a
# sanitize-layout reader makes (gpt_oss interleaves gate and up in its fused tensor). exo-golden
# must FAIL on them, which shows the MLX MoE goldens can catch a layout mistake.
WRONG_LAYOUTS = [
    ("gpt_oss-q8-g32-mlx", "gpt_oss-q8-g32-mlx-gate-up-swapped", "mlp.experts."),
    ("glm4_moe-q4-g32-mlx", "glm4_moe-q4-g32-mlx-gate-up-swapped", "mlp.switch_mlp."),
]


def swap_gate_up(src, dst, stack):
    header = read_header(os.path.join(src, "model.safetensors"))
    raw = read_safetensors(os.path.join(src, "model.safetensors"))
    out, swapped = {}, 0
    for name, t in raw.items():
        dtype = header[name]["dtype"]
        if f".{stack}gate_proj." in name:
            name, swapped = name.replace(f".{stack}gate_proj.", f".{stack}up_proj."), swapped + 1
        elif f".{stack}up_proj." in name:
            name = name.replace(f".{stack}up_proj.", f".{stack}gate_proj.")
        out[name] = (dtype, bf16_round(t) if dtype == "BF16" else t)
    if not swapped:
        raise SystemExit(f"{src}: no '{stack}gate_proj' tensors to swap")
    write_safetensors(os.path.join(dst, "model.safetensors"), out, {"format": "mlx"})


GREEDY_TOKENS = 24
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "generation_config.json")


def make_decoder(tokenizer_path):
    with open(tokenizer_path, encoding="utf-8") as f:
        tok = json.load(f)
    vocab = {i: s for s, i in tok["model"]["vocab"].items()}
    special = {t["id"] for t in tok.get("added_tokens", []) if t.get("special")}
    bd = {c: b for b, c in bytes_to_unicode().items()}  # the ByteLevel decoder's table

    def decode(ids):
        # skip_special_tokens; ids past the tokenizer (config vocab is padded) decode to nothing.
        data = bytearray()
        for i in ids:
            if i in special or i not in vocab:
                continue
            data.extend(bd[ch] for ch in vocab[i] if ch in bd)
        return data.decode("utf-8", errors="replace")

    return decode


class Reseed(Exception):
    pass


MIN_ROUTER_MARGIN = 1e-3


def write_config(d, config):
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")


def write_goldens(d, name, config, w, prompt_lengths, prompt_seed, decode, retry):
    """Prompts, the reference's outputs on weights w, golden.safetensors and golden.json. With
    retry, a greedy path reaching EOS or a router top-k margin below MIN_ROUTER_MARGIN raises
    Reseed (the caller draws other weights); without, EOS is an error."""
    arch = Arch(config)
    rng = np.random.default_rng(prompt_seed)
    golden, prompts, stats = {}, [], {}
    for p, T in enumerate(prompt_lengths):
        ids = [0] + rng.integers(3, arch.vocab, T - 1).tolist()
        hidden, logits, cont, margin = greedy(arch, w, ids, GREEDY_TOKENS, stats)
        if config["eos_token_id"] in cont:
            # generate() would stop there; the format wants GREEDY_TOKENS tokens: pick other seeds.
            if retry:
                raise Reseed(f"prompt {p} reaches EOS")
            raise SystemExit(f"{name}: prompt {p}: the greedy path reaches EOS; change the seed or prompt")
        golden[f"p{p}.ids"] = ("I32", np.asarray(ids, np.int32))
        golden[f"p{p}.logits"] = ("F32", logits.astype(F32))
        for li, hs in enumerate(hidden):
            golden[f"p{p}.hidden.{li}"] = ("F32", hs.astype(F32))
        golden[f"p{p}.greedy"] = ("I32", np.asarray(cont, np.int32))
        prompts.append({"text": decode(ids), "ids": ids, "greedy": cont, "greedy_text": decode(cont),
                        "min_top2_margin": margin})
    meta = {"prompts": prompts,
            "reference": "float64 numpy re-implementation of transformers (eager attention), "
                         "tests/heldout/make_heldout.py"}
    if "router_margin" in stats:
        # The smallest gap between the k-th and (k+1)-th router score over every token and layer
        # of the prompts and greedy paths (the fixtures' field).
        meta["min_router_topk_margin"] = stats["router_margin"]
        if retry and stats["router_margin"] < MIN_ROUTER_MARGIN:
            raise Reseed(f"router margin {stats['router_margin']:.1e}")
    write_safetensors(os.path.join(d, "golden.safetensors"), golden)
    with open(os.path.join(d, "golden.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1, ensure_ascii=False)
        f.write("\n")
    return meta


def summary(name, arch, dtype, prompt_lengths, meta, extra=""):
    router = f" min_router_topk_margin={meta['min_router_topk_margin']:.2e}" if "min_router_topk_margin" in meta else ""
    print(f"{name}: {arch.type} {dtype}{extra} hidden={arch.hidden} heads={arch.n_heads}/{arch.n_kv} "
          f"head_dim={arch.head_dim} layers={arch.n_layers} vocab={arch.vocab} prompts={prompt_lengths} "
          f"min_top2_margin={min(p['min_top2_margin'] for p in meta['prompts']):.2e}{router}")


def new_dir(out_dir, tokenizer_dir, name):
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    for fn in TOKENIZER_FILES:
        shutil.copyfile(os.path.join(tokenizer_dir, fn), os.path.join(d, fn))
    return d


def make_model(out_dir, tokenizer_dir, index, name, arch_type, spec, prompt_lengths, decode):
    d = new_dir(out_dir, tokenizer_dir, name)
    config = base_config(arch_type, spec)
    write_config(d, config)
    arch = Arch(config)
    dtype = spec.get("dtype", "float32")
    stored = {k: store(v, dtype) for k, v in random_weights(arch, 1000 + index).items()}
    write_safetensors(os.path.join(d, "model.safetensors"), stored, {"format": "pt"})
    # The reference runs on the checkpoint as written (bf16 / f16 weights as rounded).
    _, w = load_weights(d)
    meta = write_goldens(d, name, config, w, prompt_lengths, 2000 + index, decode, retry=False)
    summary(name, arch, dtype, prompt_lengths, meta)


MAX_SEEDS = 40


def make_seeded(out_dir, tokenizer_dir, base_seed, name, config, weights_fn, prompt_lengths, decode, quant=None):
    """A model whose weights are redrawn (seed base_seed, base_seed + 1, ...) until the routers'
    choices have clear margins and no greedy path reaches EOS. quant: write the checkpoint in
    MLX affine layout (config.json's quantization block) from the bf16-rounded weights, and
    compute the goldens from exactly its dequantized weights, read back by mlx_quant's reader."""
    d = new_dir(out_dir, tokenizer_dir, name)
    arch = Arch(config)
    dtype = config["dtype"]
    for seed in range(base_seed, base_seed + MAX_SEEDS):
        weights = weights_fn(arch, seed)
        if quant is None:
            stored = {k: store(v, dtype) for k, v in weights.items()}
            metadata = {"format": "pt"}
        else:
            weights = {k: bf16(v) for k, v in weights.items()}  # the bf16 model mlx-community starts from
            stored = write_checkpoint(mlx_layout(weights, config), config, quant)
            metadata = {"format": "mlx"}
        write_config(d, config)
        write_safetensors(os.path.join(d, "model.safetensors"), stored, metadata)
        _, w = load_weights(d)
        try:
            meta = write_goldens(d, name, config, w, prompt_lengths, base_seed + 7919, decode, retry=True)
        except Reseed as why:
            print(f"{name}: seed {seed}: {why}; reseeding")
            continue
        extra = ""
        if quant is not None:
            n_q = sum(1 for k in stored if k.endswith(".scales"))
            extra = f" mlx-q{quant['bits']}-g{quant['group_size']} ({n_q} quantized modules)"
        summary(name, arch, dtype, prompt_lengths, meta, extra + f" seed={seed}")
        return
    raise SystemExit(f"{name}: no seed in {MAX_SEEDS} gives router margins >= {MIN_ROUTER_MARGIN}")


def quant_config(config, quant):
    c = dict(config, quantization=quant, quantization_config=quant, dtype="bfloat16")
    c["torch_dtype"] = "bfloat16"
    return dict(sorted(c.items()))


def dense_weights(arch, seed):
    return random_weights(arch, seed)


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    hf_tiny = os.path.join(here, "..", "data", "hf-tiny")
    if len(argv) == 3 and argv[1] == "--validate":
        return 0 if validate(argv[2]) else 1
    if len(argv) != 2 or argv[1].startswith("-"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    out_dir = argv[1]
    os.makedirs(out_dir, exist_ok=True)
    tokenizer_dir = os.path.join(hf_tiny, "llama")
    decode = make_decoder(os.path.join(tokenizer_dir, "tokenizer.json"))
    for index, (name, arch_type, spec, lengths) in enumerate(MODELS):
        make_model(out_dir, tokenizer_dir, index, name, arch_type, spec, lengths, decode)
    for index, (name, arch_type, spec, lengths) in enumerate(MOE_MODELS):
        make_seeded(out_dir, tokenizer_dir, 5000 + 100 * index, name, moe_config(arch_type, spec), moe_weights,
                    lengths, decode)
    for index, (name, arch_type, spec, lengths, quant) in enumerate(QUANT_MODELS):
        moe = arch_type in ("qwen3_moe", "mixtral", "gpt_oss", "glm4_moe")
        config = quant_config(moe_config(arch_type, spec) if moe else base_config(arch_type, spec), quant)
        make_seeded(out_dir, tokenizer_dir, 7000 + 100 * index, name, config,
                    moe_weights if moe else dense_weights, lengths, decode, quant)
    for source, twin in DIALECT_TWINS:
        twin_dir = os.path.join(out_dir, twin)
        shutil.rmtree(twin_dir, ignore_errors=True)
        shutil.copytree(os.path.join(out_dir, source), twin_dir)
        with open(os.path.join(twin_dir, "config.json")) as f:
            config = json.load(f)
        config["num_local_experts"] = config.pop("num_experts")
        config["rope_parameters"] = {"rope_theta": config.pop("rope_theta"), "rope_type": "default"}
        write_config(twin_dir, dict(sorted(config.items())))
        print(f"{twin}: {source} with the transformers 5.x config dialect (num_local_experts, rope_parameters)")
    for source, twin, stack in WRONG_LAYOUTS:
        twin_dir = os.path.join(out_dir, "wrong-config", twin)
        shutil.rmtree(twin_dir, ignore_errors=True)
        shutil.copytree(os.path.join(out_dir, source), twin_dir)
        swap_gate_up(os.path.join(out_dir, source), twin_dir, stack)
        print(f"wrong-config/{twin}: {source} with {stack}gate_proj and up_proj swapped")
    for source, twin, changes in WRONG_CONFIGS:
        twin_dir = os.path.join(out_dir, "wrong-config", twin)
        shutil.rmtree(twin_dir, ignore_errors=True)
        shutil.copytree(os.path.join(out_dir, source), twin_dir)
        with open(os.path.join(twin_dir, "config.json")) as f:
            config = json.load(f)
        config.update(changes)
        write_config(twin_dir, config)
        print(f"wrong-config/{twin}: {source} with {changes}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
