"""The engine is offered only with an Intel device present, decided from the device reports;
hardware is faked with the registry's test plugin (tests/registry/fake_plugin.c), selected by
plugin filters."""
import os

import pytest

import exo_ipex
from exo_ipex import node_info


@pytest.fixture
def fake_runtime(build_dir, monkeypatch):
    plugin_dir = os.path.join(build_dir, "tests", "fake_plugins", "alpha")
    if not os.path.isfile(os.path.join(plugin_dir, "libexo-plugin-alpha.so")):
        pytest.skip("the registry's fake plugins are not built")
    made = []

    def make(devices, **kw):
        monkeypatch.setenv("EXO_FAKE_alpha_DEVICES", devices)
        rt = exo_ipex.Runtime([plugin_dir], only_plugin_paths=True, plugins_select="alpha", **kw)
        made.append(rt)
        return rt
    yield make
    for rt in made:
        rt.close()


def test_intel_discrete_gpu_offers_the_engine_with_its_own_memory(fake_runtime):
    rt = fake_runtime("d:100:pci-03:8192:Intel(R) Arc(TM) A770 Graphics")
    info = node_info.engine_info(rt)
    assert info["available"] and info["engine_id"] == "ipex" and info["name"] == "Intel IPEX"
    prof = node_info.node_profile(rt)
    assert prof["chip_id"] == "Intel(R) Arc(TM) A770 Graphics"
    assert prof["memory"]["ram_total"] == 8192 << 20  # the GPU's memory, not the host's RAM
    assert prof["system"]["gpu_usage"] == 0.0  # the fake plugin has no telemetry


def test_non_intel_gpu_does_not_offer_the_engine(fake_runtime):
    rt = fake_runtime("d:100:pci-03:24576:NVIDIA GeForce RTX 4090")
    info = node_info.engine_info(rt)
    assert not info["available"] and "RTX 4090" in info["reason"]
    assert node_info.node_profile(rt) is None


def test_unusable_intel_device_does_not_count(fake_runtime):
    rt = fake_runtime("d:0:pci-03:8192:Intel(R) Arc(TM) A770 Graphics")
    assert not node_info.engine_info(rt)["available"]


def test_disabled_plugin_leaves_no_engine(fake_runtime):
    rt = fake_runtime("d:100:pci-03:8192:Intel(R) Arc(TM) A770 Graphics", plugins_disable="alpha")
    assert not node_info.engine_info(rt)["available"]
    assert any(p.state == "skipped" for p in rt.plugins())


def test_real_devices_decide_by_their_reports(runtime):
    devices = runtime.devices()
    # One physical device seen through two plugins (PoCL's view of the CPU) counts once, as its
    # primary view, and both views agree on the vendor: PoCL reports PCI id 0x8086 for any x86
    # CPU, which must not make an AMD host look Intel.
    for d in devices:
        if d.alternate_of >= 0:
            assert node_info.is_intel(d) == node_info.is_intel(devices[d.alternate_of]), d
    intel = [d for d in devices if d.usable and d.alternate_of < 0 and node_info.is_intel(d)]
    assert node_info.engine_info(runtime)["available"] == bool(intel)
    cpu = runtime.find_device("cpu_amx")
    is_intel_cpu = cpu.report.vendor_id == 0x8086 or "intel" in (cpu.report.vendor + cpu.report.name).lower()
    assert node_info.is_intel(cpu) == is_intel_cpu


def test_models_directory_lists_runnable_models(tmp_path):
    import json
    import shutil
    from conftest import TINY_LLAMA
    shutil.copytree(TINY_LLAMA, tmp_path / "org--tiny-llama")
    for name, cfg in {"org--gpt2": {"model_type": "gpt2", "torch_dtype": "float32"},
                      "org--quant": {"model_type": "llama", "torch_dtype": "bfloat16",
                                     "quantization": {"group_size": 64, "bits": 4}},
                      "org--mxfp4": {"model_type": "llama", "torch_dtype": "bfloat16",
                                     "quantization": {"group_size": 32, "bits": 4, "mode": "mxfp4"}},
                      "org--hf-fp8": {"model_type": "llama", "torch_dtype": "bfloat16",
                                      "quantization_config": {"quant_method": "fp8"}},
                      "org--q7": {"model_type": "llama", "torch_dtype": "bfloat16",
                                  "quantization": {"group_size": 64, "bits": 7}},
                      "org--fp8": {"model_type": "qwen3", "torch_dtype": "float8_e4m3fn"}}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps(cfg))
        (tmp_path / name / "model.safetensors").write_bytes(b"")
    (tmp_path / "org--broken").mkdir()
    (tmp_path / "org--broken" / "config.json").write_text("{")
    models = node_info.supported_models(tmp_path)
    # MLX affine checkpoints run (issue 13); MXFP4, Hugging Face fp8 and 7-bit do not.
    assert [m["model_id"] for m in models] == ["org/quant", "org/tiny-llama"]
    assert models[0]["quantization"] == "mlx-q4-g64" and models[0]["dtype"] == "bf16"
    assert models[1]["architecture"] == "llama" and models[1]["dtype"] == "f32"
    assert "mxfp4" in node_info.model_support(tmp_path / "org--mxfp4")[1]
    assert "fp8" in node_info.model_support(tmp_path / "org--hf-fp8")[1]
    assert "bits 7" in node_info.model_support(tmp_path / "org--q7")[1]
