"""What an EXO node advertises for this engine: whether "ipex" (shown as "Intel IPEX") is
offered, the node's memory / usage / temperature / power / chip for the dashboard and placement,
and which models in a models directory the engine can run.

The engine is offered only when an Intel device is present and usable: a Level Zero GPU, an
Intel OpenCL GPU or an Intel CPU, decided from the devices' probe reports (PCI vendor id 0x8086,
or "Intel" in the vendor or device name — the CPU plugin reports the CPU's brand string)."""
import json
import os

from . import _capi

ENGINE_ID = "ipex"
ENGINE_NAME = "Intel IPEX"
INTEL_VENDOR_ID = 0x8086
ARCHITECTURES = ("llama", "mistral", "qwen2", "qwen3", "phi3", "gemma", "qwen3_moe", "mixtral", "gpt_oss", "glm4_moe")
DTYPES = {"float32": "f32", "float16": "f16", "bfloat16": "bf16", "f32": "f32", "f16": "f16", "bf16": "bf16"}
_GPU_TYPES = ("discrete_gpu", "integrated_gpu")


def is_intel(device):
    r = device.report
    return r.vendor_id == INTEL_VENDOR_ID or "intel" in r.vendor.lower() or "intel" in r.name.lower()


def intel_devices(runtime):
    """Usable Intel devices, best first, primary views only (a GPU seen through Level Zero and
    OpenCL counts once)."""
    return [d for d in runtime.devices() if d.usable and d.alternate_of < 0 and is_intel(d)]


def engine_info(runtime):
    """{"engine_id", "name", "available", "reason", "devices"}: what the node broadcasts."""
    devs = intel_devices(runtime)
    if devs:
        d = devs[0]
        reason = f"{d.spec} '{d.report.name}' ({d.report.type})"
    else:
        seen = [f"{d.spec} '{d.report.name}'" for d in runtime.devices() if d.usable]
        reason = "no Intel device: " + (", ".join(seen) if seen else "no usable device at all")
    return {"engine_id": ENGINE_ID, "name": ENGINE_NAME, "available": bool(devs), "reason": reason,
            "devices": [d.spec for d in devs]}


def _meminfo():
    out = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                k, v = line.split(":", 1)
                out[k] = int(v.split()[0]) * 1024
    except (OSError, ValueError):
        pass
    return out


def device_facts(runtime, device, bench=True):
    """Measured placement facts of one device (Runtime.benchmark: read bandwidth, matmul
    throughput, free memory), cached per device and driver; bench=False reads the cache only.
    None when there are none (a device that cannot run the benchmark)."""
    try:
        return runtime.benchmark(device, cached_only=not bench)
    except Exception:  # noqa: BLE001 - a device that cannot be measured still serves
        return None


def link_facts(runtime, devices, bench=True):
    """The measured link between every two of `devices` (Runtime.link_benchmark: a copy through
    host memory, GB/s and the latency of a hidden row), cached per both devices and drivers;
    bench=False reads the cache only. Pairs without figures are left out."""
    links = []
    for a in devices:
        for b in devices:
            if a.index == b.index:
                continue
            try:
                f = runtime.link_benchmark(a, b, cached_only=not bench)
            except Exception:  # noqa: BLE001 - a pair that cannot be measured still serves
                f = None
            if f:
                links.append({"from": a.spec, "to": b.spec, "path": f["path"], "gbs": f["gbs"],
                              "latency_us": f["latency_us"]})
    return links


def node_profile(runtime, bench=True):
    """EXO's node fields for the best Intel device (None when the engine is not offered):
    identity (chip), MemoryUsage (ram_total / ram_available count a GPU's own memory: placement
    reads ram_available), SystemPerformanceProfile (gpu_usage 0..1, temp, sys_power) and flops.
    When the node has several usable Intel GPUs and no device is pinned (EXO_DEVICE), a shard
    spreads over all of them (exo_shard_options.devices "auto", docs/placement.md), so the memory
    is theirs together. "devices" lists every one with its measured facts (device_facts: read
    bandwidth and matmul throughput from the self-benchmark, cached per driver; bench=False reads
    the cache only); "links" the copy bandwidth between every two of them (link_facts)."""
    devs = intel_devices(runtime)
    if not devs:
        return None
    d = devs[0]
    r = d.report
    mem = _meminfo()
    ram_total, ram_avail = mem.get("MemTotal", 0), mem.get("MemAvailable", 0)
    try:
        t = runtime.telemetry(d)
    except Exception:  # telemetry is optional per plugin
        t = None
    discrete = [g for g in devs if g.report.type in _GPU_TYPES and "unified_memory" not in g.report.caps]
    spread = discrete if len(discrete) > 1 and not os.environ.get("EXO_DEVICE") else discrete[:1]
    if r.type in _GPU_TYPES and "unified_memory" not in r.caps:
        # Discrete GPUs: the model lives in their own memory, which is what placement must see.
        total, avail = 0, 0
        for g in spread:
            try:
                gt = t if g is d else runtime.telemetry(g)
            except Exception:  # telemetry is optional per plugin
                gt = None
            total += g.report.memory_total
            avail += gt.memory_free if gt and gt.memory_free is not None else g.report.memory_free
    else:
        total, avail = ram_total, ram_avail
    facts = []
    for g in devs:
        f = device_facts(runtime, g, bench)
        facts.append({"device": g.spec, "name": g.report.name, "type": g.report.type,
                      "memory_total": g.report.memory_total,
                      "memory_free": f["memory_free"] if f else g.report.memory_free,
                      "read_gbs": f["read_gbs"] if f else None, "matmul_gflops": f["matmul_gflops"] if f else None,
                      "measured": f is not None})
    return {
        "engine_id": ENGINE_ID, "engine_name": ENGINE_NAME,
        "chip_id": r.name, "device": d.spec, "device_type": r.type,
        "memory": {"ram_total": total, "ram_available": avail,
                   "swap_total": mem.get("SwapTotal", 0), "swap_available": mem.get("SwapFree", 0)},
        "system": {"gpu_usage": float(t.utilization) if t and t.utilization is not None else 0.0,
                   "temp": float(t.temperature_c) if t and t.temperature_c is not None else None,
                   "sys_power": float(t.power_w) if t and t.power_w is not None else None},
        "flops": {"fp32": r.tflops_fp32, "fp16": r.tflops_fp16, "int8": r.tflops_int8},
        "memory_bandwidth_gbs": r.memory_bandwidth_gbs,
        "devices": facts,
        "links": link_facts(runtime, devs, bench) if len(devs) > 1 else [],
        "spread_over": [g.spec for g in spread] if len(spread) > 1 else [],
    }


MLX_BITS = (2, 3, 4, 5, 6, 8)
MLX_GROUPS = (32, 64, 128)


def quant_support(quant):
    """(ok, why) for a config.json `quantization` / `quantization_config` block: MLX affine
    (mlx-lm's {"group_size", "bits"[, "mode": "affine"]}, per-module overrides allowed) is what the
    engine runs; other formats (mxfp4/nvfp4/mxfp8 modes, Hugging Face quant_method fp8/gptq/awq/
    bitsandbytes...) are refused with their name."""
    if not isinstance(quant, dict):
        return False, f"quantization block {quant!r} is not an object"
    method = quant.get("quant_method")
    if method is not None:
        return False, f"quantization format '{method}' is not supported (MLX affine only)"
    mode = quant.get("mode", "affine")
    if mode != "affine":
        return False, f"quantization format '{mode}' is not supported (MLX affine only)"
    bits, group = quant.get("bits"), quant.get("group_size")
    if bits not in MLX_BITS or group not in MLX_GROUPS:
        return False, f"MLX affine bits {bits} / group {group} not supported (bits 2-6 or 8, group 32/64/128)"
    return True, ""


def model_support(model_dir):
    """(ok, why, info) for one Hugging Face model directory, from its config.json."""
    cfg_path = os.path.join(model_dir, "config.json")
    try:
        with open(cfg_path) as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        return False, f"{cfg_path}: {e}", None
    arch = cfg.get("model_type", "")
    dtype = cfg.get("torch_dtype") or cfg.get("dtype") or "float32"
    info = {"architecture": arch, "dtype": DTYPES.get(dtype, dtype), "n_layers": cfg.get("num_hidden_layers"),
            "hidden_size": cfg.get("hidden_size")}
    if arch not in ARCHITECTURES:
        return False, f"architecture '{arch}' is not one of {', '.join(ARCHITECTURES)}", info
    if dtype not in DTYPES:
        return False, f"dtype '{dtype}' is not f32/f16/bf16", info
    quant = cfg.get("quantization", cfg.get("quantization_config"))
    if quant is not None:
        ok, why = quant_support(quant)
        if not ok:
            return False, why, info
        info["quantization"] = f"mlx-q{quant['bits']}-g{quant['group_size']}"
    if not any(n.endswith(".safetensors") or n.endswith(".safetensors.index.json") for n in os.listdir(model_dir)):
        return False, "no safetensors weights", info
    return True, "", info


def supported_models(models_dir):
    """Models under models_dir (EXO's layout: <org>--<name>/) this engine can run, as dicts
    {"model_id", "path", "architecture", "dtype", "n_layers", "hidden_size"} (and "quantization",
    "mlx-q4-g64" style, for MLX affine checkpoints)."""
    out = []
    try:
        names = sorted(os.listdir(models_dir))
    except OSError:
        return out
    for name in names:
        path = os.path.join(models_dir, name)
        if not os.path.isdir(path):
            continue
        ok, _, info = model_support(path)
        if ok:
            out.append({"model_id": name.replace("--", "/"), "path": path, **info})
    return out


def library_info():
    return {"library": _capi.library_path}
