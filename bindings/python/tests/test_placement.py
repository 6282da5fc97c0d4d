"""Placement across a node's devices from Python (docs/placement.md): a shard spread over two
devices (here the CPU through cpu_amx and PoCL's view of it, a GPU + CPU mix as a named list
allows) and tensor-parallel over them, each against the model on one device; the measured
placement facts (Runtime.benchmark, Runtime.link_benchmark) and the node profile's per-device
facts."""
import numpy as np
import pytest

import exo_ipex
from exo_ipex import node_info

from conftest import TINY_LLAMA

PAIR = "cpu_amx:0,opencl:0"


@pytest.fixture(scope="module")
def model():
    rt = exo_ipex.Runtime()
    try:
        rt.find_device("opencl:0")
    except exo_ipex.ExoError:
        rt.close()
        pytest.skip("no OpenCL device (PoCL) for the second part")
    m = rt.open_model(TINY_LLAMA)
    yield m
    rt.close()


def logits(shard, ids):
    with shard.session() as s:
        return np.array(s.forward_tokens(ids), copy=True)


@pytest.mark.parametrize("tensor_parallel", [0, 2])
def test_spread_shard_matches_one_device(model, tensor_parallel):
    ids = [3, 17, 99, 4, 250, 31, 7]
    one = model.load_shard(device="cpu_amx:0")
    two = model.load_shard(devices=PAIR, tensor_parallel=tensor_parallel)
    try:
        assert two.info.n_parts == (2 if not tensor_parallel else 2 + 4 * model.info.n_layers)
        assert {p.plugin for p in two.info.parts} == {"cpu_amx", "opencl"}
        if not tensor_parallel:
            assert two.info.parts[0].end_layer == two.info.parts[1].start_layer
        a, b = logits(one, ids), logits(two, ids)
        assert np.max(np.abs(a - b)) <= 1e-4 * np.max(np.abs(a))
    finally:
        two.close()
        one.close()


def test_devices_as_a_list_and_errors(model):
    two = model.load_shard(devices=["cpu_amx:0", "opencl:0"])
    assert two.info.n_parts == 2
    two.close()
    with pytest.raises(exo_ipex.ExoError, match="listed twice"):
        model.load_shard(devices="cpu_amx:0,cpu_amx:0")
    with pytest.raises(exo_ipex.ExoError, match="tensor_parallel 3 needs 3 devices"):
        model.load_shard(devices=PAIR, tensor_parallel=3)


def test_benchmark_is_measured_then_cached(runtime, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    dev = runtime.find_device("cpu_amx:0")
    assert runtime.benchmark(dev, cached_only=True) is None
    first = runtime.benchmark(dev)
    assert first["read_gbs"] > 0 and first["matmul_gflops"] > 0 and first["memory_free"] > 0
    assert not first["cached"]
    again = runtime.benchmark(dev)
    assert again["cached"] and again["read_gbs"] == pytest.approx(first["read_gbs"], rel=1e-3)
    assert (tmp_path / "exo-ipex" / "device-bench.tsv").read_text().count("cpu_amx:0\t") == 1
    fresh = runtime.benchmark(dev, refresh=True)
    assert not fresh["cached"]
    assert (tmp_path / "exo-ipex" / "device-bench.tsv").read_text().count("cpu_amx:0\t") == 1


def test_device_facts(runtime, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    dev = runtime.find_device("cpu_amx:0")
    assert node_info.device_facts(runtime, dev, bench=False) is None
    facts = node_info.device_facts(runtime, dev)
    assert facts["read_gbs"] > 0 and facts["matmul_gflops"] > 0


def test_link_is_measured_then_cached(runtime, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    try:
        a, b = runtime.find_device("cpu_amx:0"), runtime.find_device("opencl:0")
    except exo_ipex.ExoError:
        pytest.skip("no OpenCL device (PoCL) for the link's other end")
    assert runtime.link_benchmark(a, b, cached_only=True) is None
    first = runtime.link_benchmark(a, b)
    assert first["gbs"] > 0 and first["latency_us"] > 0 and first["path"] == "host"
    assert not first["cached"]
    again = runtime.link_benchmark(a, b)
    assert again["cached"] and again["gbs"] == pytest.approx(first["gbs"], rel=1e-3)
    assert runtime.link_benchmark(b, a, cached_only=True) is None  # each direction is its own link
    assert runtime.benchmark(a, cached_only=True) is None  # a link entry is no device entry
    text = (tmp_path / "exo-ipex" / "device-bench.tsv").read_text()
    assert text.count("link\tcpu_amx:0\t") == 1
    assert not runtime.link_benchmark(a, b, refresh=True)["cached"]
    assert (tmp_path / "exo-ipex" / "device-bench.tsv").read_text().count("link\tcpu_amx:0\t") == 1
    with pytest.raises(exo_ipex.ExoError, match="given twice"):
        runtime.link_benchmark(a, a)
    links = node_info.link_facts(runtime, [a, b], bench=False)
    assert [(x["from"], x["to"]) for x in links] == [("cpu_amx:0", "opencl:0")]
