"""Quantize on load (exo_shard_options.quantize_bits/_group, issue 13 item 3): a bf16 checkpoint
loaded with quantize must equal the same checkpoint quantized offline into MLX's layout by an
independent numpy implementation of mlx.core.quantize's affine arithmetic."""
import json
import os
import shutil
import struct
import subprocess

import numpy as np
import pytest

import exo_ipex
from conftest import LICENSES, REPO, subprocess_env

BF16 = os.path.join(REPO, "tests", "data", "hf-tiny", "llama-bf16")
TOKENS = [0, 17, 99, 311, 5, 42, 7, 256]


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in header.items()}


def write_safetensors(path, tensors):
    # U32 first, then the 2-byte dtypes: every tensor aligned to its element size
    order = sorted(tensors, key=lambda k: (tensors[k][0] != "U32", k))
    header, off = {}, 0
    for k in order:
        dt, shape, raw = tensors[k]
        header[k] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for k in order:
            f.write(tensors[k][2])


def bf16_to_f32(raw, shape):
    return (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(shape)


def f32_to_bf16(x):
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def mlx_quantize(w, bits, group):
    """mlx.core.quantize (affine), in float32: per group, the scale spans [min, max] in 2^bits - 1
    steps, signed so the edge of larger magnitude is a whole code; that edge is the bias unless it
    rounds to code 0 (then bias 0)."""
    rows, k = w.shape
    f = np.float32
    g = w.reshape(rows, k // group, group).astype(f)
    n_bins = f(2 ** bits - 1)
    lo, hi = g.min(-1), g.max(-1)
    mask = np.abs(lo) > np.abs(hi)
    scale = np.maximum((hi - lo) / n_bins, f(1e-7)).astype(f)
    scale = np.where(mask, scale, -scale).astype(f)
    edge = np.where(mask, lo, hi).astype(f)
    q0 = np.rint(edge / scale).astype(f)
    nz = q0 != 0
    scale = np.where(nz, edge / np.where(nz, q0, f(1)), scale).astype(f)
    bias = np.where(nz, edge, f(0)).astype(f)
    q = np.clip(np.rint((g - bias[..., None]) / scale[..., None]), 0, n_bins).astype(np.uint64).reshape(rows, k)
    bitplanes = ((q[..., None] >> np.arange(bits, dtype=np.uint64)) & 1).reshape(rows, k * bits // 32, 32)
    words = (bitplanes << np.arange(32, dtype=np.uint64)).sum(-1).astype(np.uint32)
    return words, scale, bias


def quantize_offline(src, dst, bits, group):
    os.makedirs(dst)
    for name in os.listdir(src):
        if name not in ("model.safetensors", "config.json", "golden.safetensors", "golden.json"):
            shutil.copy(os.path.join(src, name), dst)
    cfg = json.load(open(os.path.join(src, "config.json")))
    cfg["quantization"] = {"group_size": group, "bits": bits}
    json.dump(cfg, open(os.path.join(dst, "config.json"), "w"))
    out = {}
    for name, (dt, shape, raw) in read_safetensors(os.path.join(src, "model.safetensors")).items():
        assert dt == "BF16"
        if len(shape) == 2 and name.endswith(".weight") and shape[1] % group == 0:
            words, scale, bias = mlx_quantize(bf16_to_f32(raw, shape), bits, group)
            stem = name[:-len(".weight")]
            out[name] = ("U32", list(words.shape), words.tobytes())
            out[stem + ".scales"] = ("BF16", list(scale.shape), f32_to_bf16(scale).tobytes())
            out[stem + ".biases"] = ("BF16", list(bias.shape), f32_to_bf16(bias).tobytes())
        else:
            out[name] = (dt, shape, raw)
    write_safetensors(os.path.join(dst, "model.safetensors"), out)


def logits(rt, path, device, **kw):
    m = rt.open_model(path)
    try:
        sh = m.load_shard(device=device, max_ctx=64, **kw)
    except (exo_ipex.errors.NoDevice, exo_ipex.errors.NotFound) as e:
        pytest.skip(f"{device}: {e}")
    return np.array(sh.session().forward_tokens(TOKENS)), sh.info.weight_bytes


@pytest.mark.parametrize("device", ["cpu_amx", "opencl"])
@pytest.mark.parametrize("bits,group", [(4, 64), (8, 32)])
def test_quantize_on_load_matches_offline_mlx_checkpoint(tmp_path, device, bits, group):
    offline = str(tmp_path / f"q{bits}g{group}")
    quantize_offline(BF16, offline, bits, group)
    rt = exo_ipex.Runtime()
    try:
        want, want_bytes = logits(rt, offline, device)
        got, got_bytes = logits(rt, BF16, device, quantize=f"mlx-q{bits}-g{group}")
        _, float_bytes = logits(rt, BF16, device)
    finally:
        rt.close()
    err = np.max(np.abs(got - want)) / np.max(np.abs(want))
    print(f"{device} q{bits} g{group}: max rel err {err:.3g}; weight bytes {got_bytes} (float {float_bytes})")
    assert err <= 1e-5
    assert got_bytes == want_bytes < float_bytes


def test_quantize_on_load_refusals(tmp_path):
    rt = exo_ipex.Runtime()
    try:
        m = rt.open_model(BF16)
        for spec in [(7, 64), (4, 48), (1, 64), (0, 64)]:
            with pytest.raises(exo_ipex.errors.InvalidArgument):
                m.load_shard(device="cpu_amx", quantize=spec)
        with pytest.raises(ValueError):
            m.load_shard(device="cpu_amx", quantize="q4")
        offline = str(tmp_path / "q")
        quantize_offline(BF16, offline, 4, 64)
        with pytest.raises(exo_ipex.errors.InvalidArgument, match="already quantized"):
            rt.open_model(offline).load_shard(device="cpu_amx", quantize="mlx-q4-g64")
    finally:
        rt.close()


def test_exo_run_quantize(exo_run):
    out = subprocess.run([exo_run, "--quantize", "mlx-q4-g64", "-n", "8", "--temperature", "0"],
                         capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()
    bad = subprocess.run([exo_run, "--quantize", "mlx-q7-g64"], capture_output=True, text=True,
                         env=subprocess_env(), timeout=60)
    assert bad.returncode != 0 and "mlx-q<bits>-g<group>" in bad.stderr
