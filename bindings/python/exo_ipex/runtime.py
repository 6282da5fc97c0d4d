"""The runtime: plugin discovery, devices with their probe reports, telemetry, and the log
callback forwarded to Python's logging (logger "exo_ipex.<component>", e.g.
"exo_ipex.plugin:opencl")."""
import ctypes as C
import dataclasses
import logging
import os
import threading

from . import _capi
from ._handle import _Handle
from .errors import check

_LEVEL_TO_PY = {_capi.LOG_ERROR: logging.ERROR, _capi.LOG_WARN: logging.WARNING, _capi.LOG_INFO: logging.INFO,
                _capi.LOG_DEBUG: logging.DEBUG, _capi.LOG_TRACE: 5}
_PY_TO_LEVEL = [(5, _capi.LOG_TRACE), (logging.DEBUG, _capi.LOG_DEBUG), (logging.INFO, _capi.LOG_INFO),
                (logging.WARNING, _capi.LOG_WARN)]


@dataclasses.dataclass(frozen=True)
class PluginInfo:
    name: str
    path: str
    version: str
    build_info: str
    state: str          # "loaded" | "skipped" | "failed"
    status: str         # why it failed ("EXO_OK" otherwise)
    reason: str
    class_rank: int
    abi_version: int
    n_devices: int


@dataclasses.dataclass(frozen=True)
class DeviceReport:
    score: int
    type: str
    reason: str
    fingerprint: str
    name: str
    vendor: str
    vendor_id: int
    device_id: int
    driver_version: str
    api_version: str
    memory_total: int
    memory_free: int
    max_alloc: int
    compute_units: int
    clock_mhz: int
    caps: tuple
    tflops_fp32: float
    tflops_fp16: float
    tflops_int8: float
    memory_bandwidth_gbs: float
    isa: str


@dataclasses.dataclass(frozen=True)
class Device:
    index: int          # position in the ranking, 0 = best: the public device index exo_device_* take
    plugin: str
    plugin_index: int   # index within the plugin (EXO_DEVICE=plugin:N)
    class_rank: int     # the plugin class's rank (EXO_PLUGIN_RANK)
    usable: bool
    selected: bool
    alternates: str
    alternate_of: int   # index of the primary view of this physical device, or -1
    rank_reason: str
    report: DeviceReport

    @property
    def spec(self):
        """"plugin:index", as EXO_DEVICE and shard options take it."""
        return f"{self.plugin}:{self.plugin_index}"


@dataclasses.dataclass(frozen=True)
class Telemetry:
    """Sensor readings; a field is None when the device cannot tell."""
    memory_used: int = None
    memory_free: int = None
    utilization: float = None   # 0..1
    temperature_c: float = None
    power_w: float = None
    frequency_mhz: float = None
    driver_version: str = None


def _report(r):
    caps = tuple(name for bit, name in _capi.CAPS.items() if r.caps & (1 << bit))
    return DeviceReport(
        score=r.score, type=_capi.DEVICE_TYPES.get(r.type, "unknown"), reason=_capi.text(r.reason),
        fingerprint=_capi.text(r.fingerprint), name=_capi.text(r.name), vendor=_capi.text(r.vendor),
        vendor_id=r.vendor_id, device_id=r.device_id, driver_version=_capi.text(r.driver_version),
        api_version=_capi.text(r.api_version), memory_total=r.memory_total, memory_free=r.memory_free,
        max_alloc=r.max_alloc, compute_units=r.compute_units, clock_mhz=r.clock_mhz, caps=caps,
        tflops_fp32=r.tflops_fp32, tflops_fp16=r.tflops_fp16, tflops_int8=r.tflops_int8,
        memory_bandwidth_gbs=r.memory_bandwidth_gbs, isa=_capi.text(r.isa))


def _encode(s):
    return _capi.cstr(s, "runtime option")


class Runtime(_Handle):
    """exo_runtime: discovers, probes and ranks plugins. Use as a context manager or call close().

    Options mirror exo_runtime_options; a filter left None falls back to its environment
    variable (EXO_PLUGINS_SELECT, EXO_PLUGINS_DISABLE, EXO_PLUGIN_RANK, EXO_DEVICE).
    log_level None follows the Python logger "exo_ipex" (EXO_LOG_LEVEL when that is set)."""
    _free_name = "exo_runtime_destroy"

    def __init__(self, plugin_paths=(), *, only_plugin_paths=False, probe_isolated=False, n_threads=0,
                 plugins_select=None, plugins_disable=None, plugin_rank=None, device=None,
                 log_level=None, probe_timeout_ms=0, logger=None):
        lib = _capi.lib()
        super().__init__(None)  # models are its children, closed before it
        self._lib = lib
        self.logger = logger or logging.getLogger("exo_ipex")
        # Everything the C side keeps pointers to lives as long as this object.
        self._log_cb = _capi.log_fn(self._on_log)
        self._paths = [_encode(os.fspath(p)) for p in plugin_paths]
        self._path_array = (C.c_char_p * max(1, len(self._paths)))(*self._paths)
        opts = _capi.RuntimeOptions.new()
        opts.plugin_paths = C.cast(self._path_array, C.POINTER(C.c_char_p)) if self._paths else None
        opts.n_plugin_paths = len(self._paths)
        opts.flags = (_capi.RUNTIME_NO_DEFAULT_PATHS if only_plugin_paths else 0) | \
                     (_capi.RUNTIME_PROBE_ISOLATED if probe_isolated else 0)
        opts.log = self._log_cb
        if log_level is None:
            log_level = _capi.LOG_LEVEL_DEFAULT if os.environ.get("EXO_LOG_LEVEL") else self._level_from_logger()
        opts.log_level = log_level
        opts.n_threads = n_threads
        self._strings = [_encode(s) for s in (plugins_select, plugins_disable, plugin_rank, device)]
        opts.plugins_select, opts.plugins_disable, opts.plugin_rank, opts.device = self._strings
        opts.probe_timeout_ms = probe_timeout_ms
        handle = C.c_void_p()
        check(lib.exo_runtime_create(C.byref(opts), C.byref(handle)), None, "exo_runtime_create")
        self._handle = handle
        self._lock = threading.Lock()

    def _level_from_logger(self):
        eff = self.logger.getEffectiveLevel()
        for py, lvl in _PY_TO_LEVEL:
            if eff <= py:
                return lvl
        return _capi.LOG_ERROR

    def _on_log(self, _user, level, component, message):
        # Called from C (any thread); never let an exception cross back into C.
        try:
            name = "exo_ipex." + _capi.text(component) if component else "exo_ipex"
            logging.getLogger(name).log(_LEVEL_TO_PY.get(level, logging.INFO), "%s", _capi.text(message))
        except Exception:  # pragma: no cover - logging must not break inference
            pass

    def last_error(self):
        return _capi.text(self._lib.exo_runtime_last_error(self.handle))

    # -- plugins and devices
    def plugins(self):
        out = []
        for i in range(self._lib.exo_plugin_count(self.handle)):
            p = _capi.PluginInfo.new()
            check(self._lib.exo_plugin_get_info(self.handle, i, C.byref(p)), None, "exo_plugin_get_info")
            out.append(PluginInfo(
                name=_capi.text(p.name), path=_capi.text(p.path), version=_capi.text(p.version),
                build_info=_capi.text(p.build_info), state=_capi.PLUGIN_STATES.get(p.state, str(p.state)),
                status=_capi.STATUS_NAMES.get(p.status, str(p.status)), reason=_capi.text(p.reason),
                class_rank=p.class_rank, abi_version=p.abi_version, n_devices=p.n_devices))
        return out

    def devices(self):
        """Every device of every plugin, best first (exo_device_get_info)."""
        out = []
        for i in range(self._lib.exo_device_count(self.handle)):
            d = _capi.DeviceInfo.new()
            check(self._lib.exo_device_get_info(self.handle, i, C.byref(d)), None, "exo_device_get_info")
            out.append(Device(
                index=i, plugin=_capi.text(d.plugin), plugin_index=d.plugin_index,
                class_rank=d.class_rank, usable=bool(d.usable), selected=bool(d.selected),
                alternates=_capi.text(d.alternates), alternate_of=d.alternate_of,
                rank_reason=_capi.text(d.rank_reason), report=_report(d.report.contents)))
        return out

    def selected_device(self):
        """(Device, reason) for the device work goes to by default; NoDevice when none."""
        idx = C.c_uint32()
        why = C.c_char_p()
        check(self._lib.exo_device_selected(self.handle, C.byref(idx), C.byref(why)),
              self.last_error, "exo_device_selected")
        return self.devices()[idx.value], _capi.text(why.value)

    def find_device(self, spec):
        idx = C.c_uint32()
        check(self._lib.exo_device_find(self.handle, _capi.cstr(spec, "device"), C.byref(idx)), self.last_error,
              f"exo_device_find({spec!r})")
        return self.devices()[idx.value]

    def benchmark(self, device, cached_only=False, refresh=False):
        """Measured placement facts of a device (a Device or its index; exo_device_benchmark):
        {"read_gbs", "matmul_gflops", "memory_free", "cached"}. Runs the short self-benchmark
        unless the figures are cached for this device and driver (cached_only: never run, None
        when nothing is cached; refresh: run and replace the cached entry)."""
        index = device.index if isinstance(device, Device) else int(device)
        b = _capi.DeviceBench.new()
        flags = (_capi.DEVICE_BENCH_CACHED_ONLY if cached_only else 0) | (_capi.DEVICE_BENCH_REFRESH if refresh else 0)
        st = self._lib.exo_device_benchmark(self.handle, index, flags, C.byref(b))
        if cached_only and st != 0:
            return None
        check(st, self.last_error, "exo_device_benchmark")
        return {"read_gbs": b.read_gbs, "matmul_gflops": b.matmul_gflops, "memory_free": b.memory_free,
                "cached": bool(b.cached)}

    def link_benchmark(self, source, dest, cached_only=False, refresh=False):
        """The link from one device to another (Devices or indices; exo_device_link_benchmark):
        {"gbs", "latency_us", "path", "cached"}: a 16 MiB and a 16 KiB copy as a pipeline across
        the two hands hidden states over, path "peer" (device to device, where the plugin offers it
        for the pair) or "host" (through host memory). Cached like benchmark() (per both devices
        and drivers, with the path measured); cached_only: None when nothing is cached."""
        a = source.index if isinstance(source, Device) else int(source)
        b = dest.index if isinstance(dest, Device) else int(dest)
        link = _capi.DeviceLink.new()
        flags = (_capi.DEVICE_BENCH_CACHED_ONLY if cached_only else 0) | (_capi.DEVICE_BENCH_REFRESH if refresh else 0)
        st = self._lib.exo_device_link_benchmark(self.handle, a, b, flags, C.byref(link))
        if cached_only and st != 0:
            return None
        check(st, self.last_error, "exo_device_link_benchmark")
        return {"gbs": link.gbs, "latency_us": link.latency_us, "path": "peer" if link.path == _capi.DEVICE_LINK_PEER else "host",
                "cached": bool(link.cached)}

    def telemetry(self, device):
        """Telemetry of a device (a Device or its index)."""
        index = device.index if isinstance(device, Device) else int(device)
        t = _capi.DeviceTelemetry.new()
        check(self._lib.exo_device_telemetry_read(self.handle, index, C.byref(t)), self.last_error,
              "exo_device_telemetry_read")
        v = t.valid
        has = lambda bit: bool(v & bit)  # noqa: E731
        return Telemetry(
            memory_used=t.memory_used if has(_capi.TELEMETRY_MEMORY) else None,
            memory_free=t.memory_free if has(_capi.TELEMETRY_MEMORY) else None,
            utilization=t.utilization if has(_capi.TELEMETRY_UTILIZATION) else None,
            temperature_c=t.temperature_c if has(_capi.TELEMETRY_TEMPERATURE) else None,
            power_w=t.power_w if has(_capi.TELEMETRY_POWER) else None,
            frequency_mhz=t.frequency_mhz if has(_capi.TELEMETRY_FREQUENCY) else None,
            driver_version=_capi.text(t.driver_version) if has(_capi.TELEMETRY_DRIVER) else None)

    def open_model(self, path):
        from .model import Model
        return Model(self, path)


def default_model_dir():
    """The embedded default model's directory (tiny-llama-licenses), or None."""
    d = _capi.lib().exo_default_model_dir()
    return _capi.text(d) or None
