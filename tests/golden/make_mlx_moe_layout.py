#!/usr/bin/python3
"""A moe-tiny checkpoint (tests/data/moe-tiny/{gpt_oss,glm4_moe}) rewritten in the layout mlx-lm's
sanitize() gives it, so that exo-golden checks the builder's mlx-lm paths against the same
transformers goldens:

  gpt_oss   mlp.experts.gate_up_proj [E, H, 2I] (gate even, up odd columns) and down_proj [E, I, H]
            -> mlp.experts.{gate,up}_proj.weight [E, I, H], down_proj.weight [E, H, I], and the
            biases -> mlp.experts.{gate,up,down}_proj.bias (mlx-lm's models/gpt_oss.py);
  glm4_moe  mlp.experts.N.{gate,up,down}_proj.weight -> mlp.switch_mlp.*.weight [E, ...]
            (models/glm4_moe.py).

    make_mlx_moe_layout.py SRC DST

The weights stay float32 and equal, so the goldens hold at 1e-4. (MLX-quantizing them moves the
router logits by more than the fixtures' top-k margins, so a quantized copy cannot be judged by
these goldens.)
"""
import json
import os
import shutil
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "heldout"))
from mlx_quant import stack_experts  # noqa: E402
from st_io import read_safetensors, write_safetensors  # noqa: E402


def sanitize(w, cfg):
    arch, n_layers = cfg["model_type"], cfg["num_hidden_layers"]
    if arch == "glm4_moe":
        return stack_experts(w, "glm4_moe", n_layers, cfg["n_routed_experts"])
    out = {}
    for name, t in w.items():
        if name.endswith("mlp.experts.gate_up_proj"):
            p = name[:-len("gate_up_proj")]
            out[p + "gate_proj.weight"] = np.ascontiguousarray(t[..., ::2].swapaxes(-1, -2))
            out[p + "up_proj.weight"] = np.ascontiguousarray(t[..., 1::2].swapaxes(-1, -2))
        elif name.endswith("mlp.experts.gate_up_proj_bias"):
            p = name[:-len("gate_up_proj_bias")]
            out[p + "gate_proj.bias"] = np.ascontiguousarray(t[..., ::2])
            out[p + "up_proj.bias"] = np.ascontiguousarray(t[..., 1::2])
        elif name.endswith("mlp.experts.down_proj"):
            out[name + ".weight"] = np.ascontiguousarray(t.swapaxes(-1, -2))
        elif name.endswith("mlp.experts.down_proj_bias"):
            out[name[:-len("down_proj_bias")] + "down_proj.bias"] = t
        else:
            out[name] = t
    return out


def main():
    src, dst = sys.argv[1:3]
    os.makedirs(dst, exist_ok=True)
    for f in os.listdir(src):
        if f not in ("model.safetensors", "config.json"):
            shutil.copy(os.path.join(src, f), os.path.join(dst, f))
    cfg = json.load(open(os.path.join(src, "config.json")))
    w = sanitize(read_safetensors(os.path.join(src, "model.safetensors")), cfg)
    tensors = {n: ("F32", t.astype(np.float32)) for n, t in w.items()}
    write_safetensors(os.path.join(dst, "model.safetensors"), tensors, {"format": "mlx"})
    json.dump(cfg, open(os.path.join(dst, "config.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
