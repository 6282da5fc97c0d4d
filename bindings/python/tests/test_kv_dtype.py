"""The KV cache's element type (exo_shard_options.kv_dtype, ABI 1.7; issue 15 item 3): bf16 by
default where the device takes it, f32 and f16 on request; a 16-bit cache takes half the bytes
and moves the logits by no more than the documented golden tolerance (docs/model-files.md)."""
import os

import numpy as np
import pytest

import exo_ipex
from conftest import REPO

LLAMA = os.path.join(REPO, "tests", "data", "hf-tiny", "llama")
TOKENS = [0, 17, 99, 311, 5, 42, 7, 256]


def run(rt, **kw):
    sh = rt.open_model(LLAMA).load_shard(device="cpu_amx", max_ctx=64, **kw)
    s = sh.session()
    prompt = np.array(s.forward_tokens(TOKENS[:6]))
    step = np.array(s.forward_tokens(TOKENS[6:]))
    return sh.info.kv_dtype, s.kv_bytes, np.concatenate([prompt, step])


def test_kv_dtype_default_and_choices(runtime, monkeypatch):
    monkeypatch.delenv("EXO_KV_DTYPE", raising=False)
    f32_name, f32_bytes, f32 = run(runtime, kv_dtype="f32")
    assert f32_name == "f32"
    default_name, default_bytes, default = run(runtime)
    assert default_name == "bf16"
    for name in ("bf16", "f16"):
        got_name, got_bytes, got = run(runtime, kv_dtype=name)
        assert got_name == name
        assert got_bytes * 2 == f32_bytes
        rel = np.linalg.norm(got - f32, axis=-1) / np.linalg.norm(f32, axis=-1)
        print(f"{name}: max relative error of the logits rows vs f32 KV {rel.max():.3g}")
        assert rel.max() <= 2e-2
        assert (got.argmax(-1) == f32.argmax(-1)).all()
        if name == "bf16":
            assert default_bytes == got_bytes and np.array_equal(default, got)


def test_kv_dtype_rejects_unknown_names(runtime):
    m = runtime.open_model(LLAMA)
    with pytest.raises(exo_ipex.errors.ExoError):
        m.load_shard(device="cpu_amx", kv_dtype="fp8")
