#!/usr/bin/python3
"""Held-out golden models: tiny Hugging Face model directories that are not in the repository,
with reference outputs from an independent float64 numpy re-implementation of the transformers
forward pass (eager attention).

    make_heldout.py OUT_DIR              write every held-out model into OUT_DIR/<name>/
    make_heldout.py --validate HF_TINY   check this reference against the transformers-made
                                         fixtures (tests/data/hf-tiny/<arch>/golden.safetensors)

The reference follows transformers' modeling_{llama,mistral,qwen2,qwen3,phi3,gemma}.py, not our C
runtime, so that it is an independent check of the runtime on shapes the dev fixtures do not have
(other head counts and GQA ratios, head_dim != hidden / heads, vocabularies, long prompts past the
attention tiles, sliding windows shorter than the prompt, llama3 RoPE scaling in both config
dialects, bf16 / f16 checkpoints).

Where transformers leaves float64 on purpose, so does this reference ("float32 islands"), because
its float64 references carry those roundings:
  - RMSNorm normalises in float32 (`hidden_states.to(torch.float32)`), then multiplies the weight
    in the model dtype (Gemma multiplies `1 + w` in float32 too, then casts back);
  - rotary cos / sin are computed in float32 from float32 inverse frequencies (autocast disabled,
    `.float()`), then cast to the model dtype;
  - eager attention's softmax runs in float32 (`softmax(..., dtype=torch.float32)`).
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
from mlx_quant import read_checkpoint, stack_experts, write_checkpoint  # noqa: E402
from moe_models import MOE_MODELS, moe_config, moe_weights  # noqa: E402
from st_io import bf16, bf16_to_f32, read_safetensors, store, write_safetensors  # noqa: E402

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

# A wrong-config twin of one held-out model (same weights and references, config without the
# sliding window): exo-golden must FAIL on it, which shows the references can catch a mistake.
WRONG_CONFIG = ("mistral-swa40", "mistral-swa40-full-attention", {"sliding_window": None})

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


def make_model(out_dir, tokenizer_dir, index, name, arch_type, spec, prompt_lengths, decode):
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    config = base_config(arch_type, spec)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    for fn in TOKENIZER_FILES:
        shutil.copyfile(os.path.join(tokenizer_dir, fn), os.path.join(d, fn))
    arch = Arch(config)
    dtype = spec.get("dtype", "float32")
    stored = {k: store(v, dtype) for k, v in random_weights(arch, 1000 + index).items()}
    write_safetensors(os.path.join(d, "model.safetensors"), stored, {"format": "pt"})
    # The reference runs on the checkpoint as written (bf16 / f16 weights as rounded).
    w = as_f64(read_safetensors(os.path.join(d, "model.safetensors")))
    rng = np.random.default_rng(2000 + index)
    golden, prompts = {}, []
    for p, T in enumerate(prompt_lengths):
        ids = [0] + rng.integers(3, arch.vocab, T - 1).tolist()
        hidden, logits, cont, margin = greedy(arch, w, ids, GREEDY_TOKENS)
        if config["eos_token_id"] in cont:
            # generate() would stop there; the format wants GREEDY_TOKENS tokens: pick other seeds.
            raise SystemExit(f"{name}: prompt {p}: the greedy path reaches EOS; change the seed or prompt")
        golden[f"p{p}.ids"] = ("I32", np.asarray(ids, np.int32))
        golden[f"p{p}.logits"] = ("F32", logits.astype(F32))
        for li, hs in enumerate(hidden):
            golden[f"p{p}.hidden.{li}"] = ("F32", hs.astype(F32))
        golden[f"p{p}.greedy"] = ("I32", np.asarray(cont, np.int32))
        prompts.append({"text": decode(ids), "ids": ids, "greedy": cont, "greedy_text": decode(cont),
                        "min_top2_margin": margin})
    write_safetensors(os.path.join(d, "golden.safetensors"), golden)
    with open(os.path.join(d, "golden.json"), "w", encoding="utf-8") as f:
        json.dump({"prompts": prompts,
                   "reference": "float64 numpy re-implementation of transformers (eager attention), "
                                "tests/heldout/make_heldout.py"}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"{name}: {arch_type} {dtype} hidden={arch.hidden} heads={arch.n_heads}/{arch.n_kv} head_dim={arch.head_dim} "
          f"layers={arch.n_layers} vocab={arch.vocab} prompts={prompt_lengths} "
          f"min_top2_margin={min(p['min_top2_margin'] for p in prompts):.2e}")


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
    source, twin, changes = WRONG_CONFIG
    twin_dir = os.path.join(out_dir, "wrong-config", twin)
    shutil.rmtree(twin_dir, ignore_errors=True)
    shutil.copytree(os.path.join(out_dir, source), twin_dir)
    with open(os.path.join(twin_dir, "config.json")) as f:
        config = json.load(f)
    config.update(changes)
    with open(os.path.join(twin_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    print(f"wrong-config/{twin}: {source} with {changes}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
