"""The held-out mixture-of-experts models: config.json as transformers 5.x writes it (field sets
from the moe-tiny fixtures' configs), and seeded random weights under the hub checkpoints' names
(per-expert tensors; gpt_oss's fused 3-D experts).

Shapes the moe-tiny fixtures do not have: top-3 without renormalisation, dense layers among
sparse ones (decoder_sparse_step, mlp_only_layers, first_k_dense_replace 2), 4, 5, 10 and 12
experts, top-1, two shared experts, other routed_scaling_factor, a non-zero
e_score_correction_bias (the fixture's is zero), sliding windows shorter than the prompt,
gpt_oss's SwiGLU clamp actually reached, YaRN with its default truncation."""

import numpy as np

F32 = np.float32

ARCHITECTURES = {"qwen3_moe": "Qwen3MoeForCausalLM", "mixtral": "MixtralForCausalLM",
                 "gpt_oss": "GptOssForCausalLM", "glm4_moe": "Glm4MoeForCausalLM"}


def moe_config(arch_type, spec):
    s = spec
    c = {
        "architectures": [ARCHITECTURES[arch_type]],
        "attention_dropout": 0.0,
        "bos_token_id": 0,
        "dtype": s.get("dtype", "float32"),
        "eos_token_id": 1,
        "head_dim": s["head_dim"],
        "hidden_act": "silu",
        "hidden_size": s["hidden"],
        "initializer_range": 0.08,
        "intermediate_size": s["inter"],
        "max_position_embeddings": s.get("max_pos", 1024),
        "model_type": arch_type,
        "num_attention_heads": s["heads"],
        "num_experts_per_tok": s["k"],
        "num_hidden_layers": s["layers"],
        "num_key_value_heads": s["kv"],
        "pad_token_id": 2,
        "rms_norm_eps": s.get("eps", 1e-6),
        "tie_word_embeddings": s.get("tied", False),
        "transformers_version": "5.17.0",
        "use_cache": True,
        "vocab_size": s["vocab"],
    }
    rope = {"rope_theta": s.get("rope_theta", 1000000.0), "rope_type": "default"}
    if arch_type == "qwen3_moe":
        c.update(attention_bias=False, decoder_sparse_step=s.get("sparse_step", 1),
                 mlp_only_layers=s.get("mlp_only", []), moe_intermediate_size=s["moe_inter"],
                 norm_topk_prob=s["norm"], output_router_logits=False, router_aux_loss_coef=0.001,
                 sliding_window=None, use_sliding_window=False)
        if s.get("hub_dialect"):  # Qwen3-30B-A3B's own config.json: num_experts, top-level rope_theta
            c["num_experts"] = s["experts"]
            c["rope_theta"] = rope["rope_theta"]
        else:
            c["num_local_experts"] = s["experts"]
            c["rope_parameters"] = rope
    elif arch_type == "mixtral":
        c.update(num_local_experts=s["experts"], output_router_logits=False, router_aux_loss_coef=0.001,
                 router_jitter_noise=0.0, sliding_window=s.get("sliding_window"), rope_parameters=rope)
    elif arch_type == "gpt_oss":
        c.update(attention_bias=True, num_local_experts=s["experts"], output_router_logits=False,
                 router_aux_loss_coef=0.001, sliding_window=s["sliding_window"],
                 layer_types=["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(s["layers"])],
                 rope_parameters=dict(s["rope"], rope_theta=s.get("rope_theta", 150000.0)))
    elif arch_type == "glm4_moe":
        rope["partial_rotary_factor"] = s["partial_rotary"]
        c.update(attention_bias=True, first_k_dense_replace=s["first_dense"], moe_intermediate_size=s["moe_inter"],
                 n_group=1, n_routed_experts=s["experts"], n_shared_experts=s["shared"], norm_topk_prob=s["norm"],
                 num_nextn_predict_layers=1, partial_rotary_factor=s["partial_rotary"], rope_parameters=rope,
                 routed_scaling_factor=s["scaling"], topk_group=1, use_qk_norm=s["qk_norm"])
    return dict(sorted(c.items()))


def moe_weights(arch, seed, router_std=0.3):
    """Seeded like the fixtures (N(0, 0.08) matrices, norms 1 + N(0, 0.1), biases N(0, 0.05)),
    except the routers: N(0, router_std), spread wider so that the k-th and (k+1)-th router
    scores rarely come within 1e-3 of each other (make_heldout reseeds when they do)."""
    rng = np.random.default_rng(seed)
    c = arch.cfg
    H, D, Hq, Hk, V = arch.hidden, arch.head_dim, arch.n_heads, arch.n_kv, arch.vocab

    def mat(*shape, std=0.08):
        return rng.normal(0.0, std, shape).astype(F32)

    def norm(n):
        return (1.0 + rng.normal(0.0, 0.1, n)).astype(F32)

    def vec(n, std=0.05):
        return rng.normal(0.0, std, n).astype(F32)

    def glu(prefix, inter, names=("gate_proj", "up_proj", "down_proj")):
        return {f"{prefix}{names[0]}.weight": mat(inter, H), f"{prefix}{names[1]}.weight": mat(inter, H),
                f"{prefix}{names[2]}.weight": mat(H, inter)}

    w = {"model.embed_tokens.weight": mat(V, H)}
    E = c.get("num_experts") or c.get("num_local_experts") or c.get("n_routed_experts")
    for layer in range(arch.n_layers):
        p = f"model.layers.{layer}."
        w[p + "input_layernorm.weight"] = norm(H)
        w[p + "post_attention_layernorm.weight"] = norm(H)
        w[p + "self_attn.q_proj.weight"] = mat(Hq * D, H)
        w[p + "self_attn.k_proj.weight"] = mat(Hk * D, H)
        w[p + "self_attn.v_proj.weight"] = mat(Hk * D, H)
        w[p + "self_attn.o_proj.weight"] = mat(H, Hq * D)
        if arch.qkv_bias:
            for n, size in (("q", Hq * D), ("k", Hk * D), ("v", Hk * D)):
                w[p + f"self_attn.{n}_proj.bias"] = vec(size)
        if arch.o_bias:
            w[p + "self_attn.o_proj.bias"] = vec(H)
        if arch.qk_norm:
            w[p + "self_attn.q_norm.weight"] = norm(D)
            w[p + "self_attn.k_norm.weight"] = norm(D)
        if arch.type == "gpt_oss":
            # sinks of either sign and size, so that they move the attention noticeably
            w[p + "self_attn.sinks"] = vec(Hq, 1.0)
        if not arch.sparse[layer]:
            w.update(glu(p + "mlp.", c["intermediate_size"]))
        elif arch.type == "qwen3_moe":
            w[p + "mlp.gate.weight"] = mat(E, H, std=router_std)
            for e in range(E):
                w.update(glu(f"{p}mlp.experts.{e}.", c["moe_intermediate_size"]))
        elif arch.type == "mixtral":
            w[p + "block_sparse_moe.gate.weight"] = mat(E, H, std=router_std)
            for e in range(E):
                w.update(glu(f"{p}block_sparse_moe.experts.{e}.", c["intermediate_size"], ("w1", "w3", "w2")))
        elif arch.type == "gpt_oss":
            inter = c["intermediate_size"]
            w[p + "mlp.router.weight"] = mat(E, H, std=router_std)
            w[p + "mlp.router.bias"] = vec(E, 0.2)
            # gate_up wide enough (std 0.5: pre-activations of a few units) that the SwiGLU clamp
            # at +-7 is reached by some tokens, as in the real model and unlike the fixture.
            w[p + "mlp.experts.gate_up_proj"] = mat(E, H, 2 * inter, std=0.5)
            w[p + "mlp.experts.gate_up_proj_bias"] = vec((E, 2 * inter))
            w[p + "mlp.experts.down_proj"] = mat(E, inter, H)
            w[p + "mlp.experts.down_proj_bias"] = vec((E, H))
        else:  # glm4_moe
            w[p + "mlp.gate.weight"] = mat(E, H, std=router_std)
            # selection-only bias: large enough to change some choices against the plain sigmoid
            w[p + "mlp.gate.e_score_correction_bias"] = vec(E, 0.1)
            for e in range(E):
                w.update(glu(f"{p}mlp.experts.{e}.", c["moe_intermediate_size"]))
            w.update(glu(p + "mlp.shared_experts.", c["moe_intermediate_size"] * c["n_shared_experts"]))
    w["model.norm.weight"] = norm(H)
    if not arch.tied:
        w["lm_head.weight"] = mat(V, H)
    return w


YARN = {"rope_type": "yarn", "factor": 8.0, "beta_fast": 32.0, "beta_slow": 1.0, "original_max_position_embeddings": 64}

# name, architecture, spec, prompt lengths (BOS included): a short prompt and longer ones.
MOE_MODELS = [
    # top-3 of 12 without renormalisation; layers 1 and 3 dense among sparse ones (mlp_only_layers)
    ("qwen3_moe-e12-top3-plain", "qwen3_moe",
     dict(hidden=64, heads=4, kv=1, head_dim=32, inter=96, moe_inter=40, vocab=600, layers=5, experts=12, k=3,
          norm=False, mlp_only=[1, 3], hub_dialect=True), [3, 70, 21]),
    # 5 experts, top-2 renormalised, decoder_sparse_step 2 (layers 1 and 3 sparse), bf16
    ("qwen3_moe-e5-step2-bf16", "qwen3_moe",
     dict(hidden=48, heads=6, kv=2, head_dim=8, inter=80, moe_inter=24, vocab=530, layers=4, experts=5, k=2,
          norm=True, sparse_step=2, dtype="bfloat16", hub_dialect=True), [2, 60, 15]),
]

# qwen3_moe's two config dialects: the hub's (Qwen3-30B-A3B: num_experts, top-level rope_theta)
# and the one transformers 5.x save_pretrained writes (num_local_experts, rope_parameters). The
# twin has the source's weights and goldens under the other dialect's config.
DIALECT_TWINS = [
    ("qwen3_moe-e12-top3-plain", "qwen3_moe-e12-top3-plain-t5config"),
]

MOE_MODELS += [
    # mixtral top-1 of 4, with a sliding window shorter than the long prompt
    ("mixtral-e4-top1-swa24", "mixtral",
     dict(hidden=64, heads=8, kv=2, head_dim=8, inter=72, vocab=520, layers=3, experts=4, k=1,
          sliding_window=24), [4, 90, 30]),
    # mixtral top-3 of 4 (renormalised over three)
    ("mixtral-e4-top3", "mixtral",
     dict(hidden=80, heads=5, kv=1, head_dim=16, inter=64, vocab=610, layers=2, experts=4, k=3), [1, 75, 12]),
    # gpt_oss: 5 experts top-3, window 16 on layers 0 and 2, YaRN with default truncation
    ("gpt_oss-e5-top3-swa16", "gpt_oss",
     dict(hidden=64, heads=8, kv=2, head_dim=16, inter=32, vocab=540, layers=4, experts=5, k=3,
          sliding_window=16, rope=YARN, max_pos=512), [2, 80, 25]),
    # glm4_moe: two dense layers first, two shared experts, top-3 of 10 without renormalisation,
    # routed_scaling_factor 1.8, no q/k norm, a quarter of each head rotated
    ("glm4_moe-dense2-shared2", "glm4_moe",
     dict(hidden=64, heads=4, kv=2, head_dim=32, inter=112, moe_inter=32, vocab=560, layers=4, experts=10, k=3,
          first_dense=2, shared=2, norm=False, scaling=1.8, qk_norm=False, partial_rotary=0.25), [3, 66, 19]),
]
