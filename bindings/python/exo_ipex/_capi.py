"""ctypes mirror of the public C API (core/include/exo.h and the plain types of abi/exo_types.h).

Every struct is laid out exactly as in C (ctypes applies the same natural alignment); the
layout is checked against the C compiler by tests/test_layout.py. Caller-sized structs get
their {size, version} header from `new()`: the public API's version (EXO_API_VERSION), which
is apart from the plugin ABI's.
"""
import ctypes as C

from . import _library

EXO_API_MAJOR = 1  # exo.h's EXO_API_MAJOR / EXO_API_MINOR: the API this binding mirrors
EXO_API_MINOR = 0
EXO_API_VERSION = (EXO_API_MAJOR << 16) | EXO_API_MINOR

# Status codes (exo_types.h).
EXO_OK = 0
STATUS_NAMES = {
    0: "EXO_OK", 1: "EXO_NOT_READY", -1: "EXO_ERR_INVALID_ARG", -2: "EXO_ERR_NO_MEMORY",
    -3: "EXO_ERR_DEVICE_OOM", -4: "EXO_ERR_UNSUPPORTED", -5: "EXO_ERR_ABI_MISMATCH",
    -6: "EXO_ERR_PLUGIN_LOAD", -7: "EXO_ERR_NO_DEVICE", -8: "EXO_ERR_DEVICE_LOST",
    -9: "EXO_ERR_BACKEND", -10: "EXO_ERR_TIMEOUT", -11: "EXO_ERR_ABORTED", -12: "EXO_ERR_INTERNAL",
    -13: "EXO_ERR_IO", -14: "EXO_ERR_FORMAT", -15: "EXO_ERR_NOT_FOUND", -16: "EXO_ERR_BUFFER_TOO_SMALL",
}
EXO_ERR_BUFFER_TOO_SMALL = -16

# Log levels, device types, telemetry bits, dtypes, flags.
LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_TRACE = 0, 1, 2, 3, 4
DEVICE_TYPES = {0: "unknown", 1: "discrete_gpu", 2: "integrated_gpu", 3: "cpu", 4: "accelerator"}
TELEMETRY_MEMORY, TELEMETRY_UTILIZATION, TELEMETRY_TEMPERATURE = 1 << 0, 1 << 1, 1 << 2
TELEMETRY_POWER, TELEMETRY_FREQUENCY, TELEMETRY_DRIVER = 1 << 3, 1 << 4, 1 << 5
DTYPES = {0: "f32", 1: "f16", 2: "bf16", 3: "i32", 4: "q8_0", 5: "mlx_affine"}
PLUGIN_STATES = {0: "loaded", 1: "skipped", 2: "failed"}
FINISH_REASONS = {0: None, 1: "eos", 2: "stop", 3: "length", 4: "cancelled"}
LOG_LEVEL_DEFAULT = -1  # EXO_LOG_LEVEL_DEFAULT: EXO_LOG_LEVEL, else warn
BOS_DEFAULT = -1        # EXO_BOS_DEFAULT: BOS as the tokenizer's files say
LAYERS_END = 0xFFFFFFFF  # EXO_LAYERS_END: a shard up to the model's last layer
RUNTIME_PROBE_ISOLATED = 1 << 0
RUNTIME_NO_DEFAULT_PATHS = 1 << 1
FORWARD_LAST_ONLY = 1 << 0
FORWARD_ARGMAX = 1 << 1
CAPS = {0: "fp16", 1: "bf16", 2: "int8_dot", 3: "matrix", 4: "unified_memory", 5: "subgroups",
        6: "int4_weights", 7: "matrix_present"}

status_t = C.c_int32


class Header(C.Structure):
    _fields_ = [("size", C.c_uint32), ("version", C.c_uint32)]


class _Sized(C.Structure):
    """A caller-sized struct: new() fills hdr with our size and the API version, and the members
    an options struct's EXO_<NAME>_INIT sets (_defaults; checked against the C macros by
    tests/test_layout.py), before the given keywords."""
    _defaults = {}

    @classmethod
    def new(cls, **kw):
        s = cls(**{**cls._defaults, **kw})
        s.hdr.size = C.sizeof(cls)
        s.hdr.version = EXO_API_VERSION
        return s


log_fn = C.CFUNCTYPE(None, C.c_void_p, C.c_int32, C.c_char_p, C.c_char_p)
progress_fn = C.CFUNCTYPE(C.c_int, C.c_void_p, C.c_uint32, C.c_uint32)


class DeviceReport(_Sized):
    _fields_ = [
        ("hdr", Header), ("score", C.c_uint32), ("type", C.c_int32), ("reason", C.c_char * 256),
        ("fingerprint", C.c_char * 64), ("name", C.c_char * 128), ("vendor", C.c_char * 64),
        ("vendor_id", C.c_uint32), ("device_id", C.c_uint32), ("driver_version", C.c_char * 64),
        ("api_version", C.c_char * 32), ("memory_total", C.c_uint64), ("memory_free", C.c_uint64),
        ("max_alloc", C.c_uint64), ("compute_units", C.c_uint32), ("clock_mhz", C.c_uint32),
        ("caps", C.c_uint64), ("tflops_fp32", C.c_float), ("tflops_fp16", C.c_float),
        ("tflops_int8", C.c_float), ("memory_bandwidth_gbs", C.c_float), ("isa", C.c_char * 64),
    ]


class DeviceTelemetry(_Sized):
    _fields_ = [
        ("hdr", Header), ("valid", C.c_uint32), ("memory_used", C.c_uint64), ("memory_free", C.c_uint64),
        ("utilization", C.c_float), ("temperature_c", C.c_float), ("power_w", C.c_float),
        ("frequency_mhz", C.c_float), ("driver_version", C.c_char * 64),
    ]


class DeviceBench(_Sized):
    _fields_ = [
        ("hdr", Header), ("read_gbs", C.c_double), ("matmul_gflops", C.c_double), ("memory_free", C.c_uint64),
        ("cached", C.c_uint32), ("reserved", C.c_uint32),
    ]


class DeviceLink(_Sized):
    _fields_ = [
        ("hdr", Header), ("gbs", C.c_double), ("latency_us", C.c_double), ("path", C.c_uint32),
        ("cached", C.c_uint32),
    ]


DEVICE_BENCH_CACHED_ONLY = 1 << 0
DEVICE_BENCH_REFRESH = 1 << 1
DEVICE_LINK_HOST = 1  # exo_device_link.path: through host memory
DEVICE_LINK_PEER = 2  # a device-to-device copy (plugin ABI 1.9)


class RuntimeOptions(_Sized):
    _fields_ = [
        ("hdr", Header), ("plugin_paths", C.POINTER(C.c_char_p)), ("n_plugin_paths", C.c_uint32),
        ("flags", C.c_uint32), ("log", log_fn), ("log_user", C.c_void_p), ("log_level", C.c_int32),
        ("n_threads", C.c_uint32), ("plugins_select", C.c_char_p), ("plugins_disable", C.c_char_p),
        ("plugin_rank", C.c_char_p), ("device", C.c_char_p), ("probe_timeout_ms", C.c_uint32),
        ("reserved", C.c_uint32),
    ]
    _defaults = {"log_level": LOG_LEVEL_DEFAULT}  # EXO_RUNTIME_OPTIONS_INIT


class PluginInfo(_Sized):
    _fields_ = [
        ("hdr", Header), ("name", C.c_char_p), ("path", C.c_char_p), ("version", C.c_char_p),
        ("build_info", C.c_char_p), ("state", C.c_int32), ("status", C.c_int32), ("reason", C.c_char_p),
        ("class_rank", C.c_uint32), ("abi_version", C.c_uint32), ("n_devices", C.c_uint32),
        ("reserved", C.c_uint32),
    ]


class DeviceInfo(_Sized):
    _fields_ = [
        ("hdr", Header), ("plugin", C.c_char_p), ("plugin_index", C.c_uint32), ("position", C.c_uint32),
        ("class_rank", C.c_uint32), ("usable", C.c_uint32), ("report", C.POINTER(DeviceReport)),
        ("alternates", C.c_char_p), ("rank_reason", C.c_char_p), ("alternate_of", C.c_int32),
        ("selected", C.c_uint32),
    ]


class ModelInfo(_Sized):
    _fields_ = [
        ("hdr", Header), ("architecture", C.c_char_p), ("path", C.c_char_p), ("n_layers", C.c_uint32),
        ("hidden_size", C.c_uint32), ("intermediate_size", C.c_uint32), ("vocab_size", C.c_uint32),
        ("n_heads", C.c_uint32), ("n_kv_heads", C.c_uint32), ("head_dim", C.c_uint32),
        ("max_position_embeddings", C.c_uint32), ("dtype", C.c_int32), ("bos_token_id", C.c_int32),
        ("eos_token_ids", C.POINTER(C.c_int32)), ("n_eos", C.c_uint32), ("tie_word_embeddings", C.c_uint32),
        ("adds_bos", C.c_uint32), ("has_tokenizer", C.c_uint32), ("quant_bits", C.c_uint32),
        ("quant_group", C.c_uint32), ("n_experts", C.c_uint32), ("n_experts_per_tok", C.c_uint32),
        ("moe_intermediate_size", C.c_uint32), ("n_moe_layers", C.c_uint32), ("router_quant_bits", C.c_uint32),
        ("router_quant_group", C.c_uint32),
    ]


class ShardOptions(_Sized):
    _fields_ = [
        ("hdr", Header), ("start_layer", C.c_uint32), ("end_layer", C.c_uint32), ("device", C.c_char_p),
        ("max_tokens", C.c_uint32), ("max_ctx", C.c_uint32), ("progress", progress_fn),
        ("progress_user", C.c_void_p), ("quantize_bits", C.c_uint32), ("quantize_group", C.c_uint32),
        ("kv_dtype", C.c_uint32), ("devices", C.c_char_p), ("tensor_parallel", C.c_uint32),
    ]
    _defaults = {"end_layer": LAYERS_END}  # EXO_SHARD_OPTIONS_INIT


class ShardInfo(_Sized):
    _fields_ = [
        ("hdr", Header), ("start_layer", C.c_uint32), ("end_layer", C.c_uint32), ("embeds", C.c_uint32),
        ("has_head", C.c_uint32), ("input_width", C.c_uint32), ("output_width", C.c_uint32),
        ("device", C.c_uint32), ("plugin", C.c_char_p), ("device_name", C.c_char_p),
        ("weight_bytes", C.c_uint64), ("max_tokens", C.c_uint32), ("max_ctx", C.c_uint32),
        ("kv_dtype", C.c_uint32), ("n_parts", C.c_uint32), ("input_path", C.c_uint32),
    ]

# exo_kv_dtype (exo.h): exo_shard_options.kv_dtype / exo_shard_info.kv_dtype, by name.
KV_DTYPES = {"f32": 1, "bf16": 2, "f16": 3}


class TensorView(C.Structure):  # not caller-sized: no header
    _fields_ = [
        ("dtype", C.c_int32), ("n_dims", C.c_uint32), ("shape", C.c_int64 * 4), ("data", C.c_void_p),
        ("nbytes", C.c_uint64),
    ]


class Sampling(_Sized):
    _fields_ = [
        ("hdr", Header), ("temperature", C.c_float), ("top_k", C.c_int32), ("top_p", C.c_float),
        ("min_p", C.c_float), ("repetition_penalty", C.c_float), ("presence_penalty", C.c_float),
        ("frequency_penalty", C.c_float), ("penalty_window", C.c_int32), ("seed", C.c_int64),
        ("n_logprobs", C.c_uint32), ("n_banned", C.c_uint32), ("banned", C.POINTER(C.c_int32)),
    ]
    _defaults = {"temperature": 0.7, "top_p": 1.0, "min_p": 0.05, "repetition_penalty": 1.0,  # EXO_SAMPLING_INIT
                 "penalty_window": 20, "seed": 42}


SAMPLER_MAX_LOGPROBS = 20


class SampledToken(_Sized):
    _fields_ = [
        ("hdr", Header), ("token", C.c_int32), ("logprob", C.c_float), ("n_top", C.c_uint32),
        ("top_tokens", C.c_int32 * SAMPLER_MAX_LOGPROBS), ("top_logprobs", C.c_float * SAMPLER_MAX_LOGPROBS),
    ]


class BatchEntry(_Sized):  # an element of the array exo_session_forward_batch takes; hdr.size is the stride
    _fields_ = [
        ("hdr", Header), ("session", C.c_void_p), ("tokens", C.POINTER(C.c_int32)), ("hidden", C.POINTER(C.c_float)),
        ("n", C.c_uint32), ("flags", C.c_uint32), ("out", C.POINTER(C.c_float)), ("out_count", C.c_uint64),
        ("status", C.c_int32), ("reserved", C.c_uint32),
    ]


class TokenEvent(_Sized):
    _fields_ = [
        ("hdr", Header), ("index", C.c_uint32), ("token", C.c_int32), ("text", C.c_void_p),
        ("text_len", C.c_size_t), ("logprob", C.c_float), ("n_top", C.c_uint32),
        ("top_tokens", C.POINTER(C.c_int32)), ("top_logprobs", C.POINTER(C.c_float)),
    ]


token_fn = C.CFUNCTYPE(C.c_int, C.c_void_p, C.POINTER(TokenEvent))


class GenerateOptions(_Sized):
    _fields_ = [
        ("hdr", Header), ("sampling", C.POINTER(Sampling)), ("max_tokens", C.c_uint32), ("n_stop", C.c_uint32),
        ("stop", C.POINTER(C.c_char_p)), ("add_bos", C.c_int32), ("ignore_eos", C.c_uint32),
        ("on_token", token_fn), ("user", C.c_void_p), ("cancel", C.POINTER(C.c_int)),
    ]
    _defaults = {"add_bos": BOS_DEFAULT}  # EXO_GENERATE_OPTIONS_INIT


class GenerateStats(_Sized):
    _fields_ = [
        ("hdr", Header), ("prompt_tokens", C.c_uint32), ("generation_tokens", C.c_uint32),
        ("prompt_tps", C.c_double), ("generation_tps", C.c_double), ("ttft_ms", C.c_double),
        ("total_ms", C.c_double), ("peak_memory_bytes", C.c_uint64), ("finish_reason", C.c_int32),
        ("reserved", C.c_uint32),
    ]


# Every struct the layout test compares with the C compiler: python class -> C type name.
STRUCTS = {
    DeviceReport: "exo_device_report", DeviceTelemetry: "exo_device_telemetry",
    RuntimeOptions: "exo_runtime_options", PluginInfo: "exo_plugin_info", DeviceInfo: "exo_device_info",
    ModelInfo: "exo_model_info", ShardOptions: "exo_shard_options", ShardInfo: "exo_shard_info",
    TensorView: "exo_tensor_view", Sampling: "exo_sampling", SampledToken: "exo_sampled_token",
    BatchEntry: "exo_batch_entry", TokenEvent: "exo_token_event",
    GenerateOptions: "exo_generate_options", GenerateStats: "exo_generate_stats", DeviceBench: "exo_device_bench",
    DeviceLink: "exo_device_link",
}

P = C.c_void_p  # opaque handles
_u32, _i32, _u64, _size, _cs = C.c_uint32, C.c_int32, C.c_uint64, C.c_size_t, C.c_char_p

_PROTOTYPES = {
    "exo_version": (_cs, [C.POINTER(_u32)]),
    "exo_status_name": (_cs, [status_t]),
    "exo_status_str": (_cs, [status_t]),
    "exo_last_error": (_cs, []),
    "exo_runtime_create": (status_t, [C.POINTER(RuntimeOptions), C.POINTER(P)]),
    "exo_runtime_destroy": (None, [P]),
    "exo_runtime_last_error": (_cs, [P]),
    "exo_plugin_count": (_u32, [P]),
    "exo_plugin_get_info": (status_t, [P, _u32, C.POINTER(PluginInfo)]),
    "exo_device_count": (_u32, [P]),
    "exo_device_get_info": (status_t, [P, _u32, C.POINTER(DeviceInfo)]),
    "exo_device_telemetry_read": (status_t, [P, _u32, C.POINTER(DeviceTelemetry)]),
    "exo_device_selected": (status_t, [P, C.POINTER(_u32), C.POINTER(_cs)]),
    "exo_device_find": (status_t, [P, _cs, C.POINTER(_u32)]),
    "exo_device_benchmark": (status_t, [P, _u32, _u32, C.POINTER(DeviceBench)]),
    "exo_device_link_benchmark": (status_t, [P, _u32, _u32, _u32, C.POINTER(DeviceLink)]),
    "exo_model_open": (status_t, [P, _cs, C.POINTER(P)]),
    "exo_model_destroy": (None, [P]),
    "exo_model_get_info": (status_t, [P, C.POINTER(ModelInfo)]),
    "exo_model_last_error": (_cs, [P]),
    "exo_shard_load": (status_t, [P, C.POINTER(ShardOptions), C.POINTER(P)]),
    "exo_shard_destroy": (None, [P]),
    "exo_shard_get_info": (status_t, [P, C.POINTER(ShardInfo)]),
    "exo_shard_get_part_info": (status_t, [P, _u32, C.POINTER(ShardInfo)]),
    "exo_shard_last_error": (_cs, [P]),
    "exo_shard_warmup": (status_t, [P]),
    "exo_session_create": (status_t, [P, _u32, C.POINTER(P)]),
    "exo_session_destroy": (None, [P]),
    "exo_session_reset": (status_t, [P]),
    "exo_session_position": (_u32, [P]),
    "exo_session_truncate": (status_t, [P, _u32]),
    "exo_session_last_error": (_cs, [P]),
    "exo_session_copy_prefix": (status_t, [P, P, _u32]),
    "exo_session_kv_bytes": (_u64, [P]),
    "exo_session_forward_tokens": (status_t, [P, C.POINTER(_i32), _u32, _u32, C.POINTER(C.c_float), _u64]),
    "exo_session_forward_hidden": (status_t, [P, C.POINTER(C.c_float), _u32, _u32, C.POINTER(C.c_float), _u64]),
    "exo_session_forward_batch": (status_t, [C.POINTER(BatchEntry), _u32]),
    "exo_tensor_file_open": (status_t, [_cs, C.POINTER(P)]),
    "exo_tensor_file_destroy": (None, [P]),
    "exo_tensor_file_get": (status_t, [P, _cs, C.POINTER(TensorView)]),
    "exo_model_tokenize": (status_t, [P, C.c_char_p, _size, C.c_int, C.POINTER(_i32), _size, C.POINTER(_size)]),
    "exo_model_detokenize": (status_t, [P, C.POINTER(_i32), _size, C.c_void_p, _size, C.POINTER(_size)]),
    "exo_sampling_default": (None, [C.POINTER(Sampling)]),
    "exo_sampler_create": (status_t, [C.POINTER(Sampling), _u32, C.POINTER(P)]),
    "exo_sampler_destroy": (None, [P]),
    "exo_sampler_accept": (None, [P, _i32]),
    "exo_sampler_reset": (None, [P]),
    "exo_sampler_sample": (status_t, [P, C.POINTER(C.c_float), _u32, C.POINTER(SampledToken)]),
    "exo_detokenizer_create": (status_t, [P, C.POINTER(P)]),
    "exo_detokenizer_destroy": (None, [P]),
    "exo_detokenizer_push": (status_t, [P, _i32, C.POINTER(C.c_void_p), C.POINTER(_size)]),
    "exo_detokenizer_flush": (status_t, [P, C.POINTER(C.c_void_p), C.POINTER(_size)]),
    "exo_generate": (status_t, [P, _cs, C.POINTER(GenerateOptions), C.POINTER(GenerateStats)]),
    "exo_generate_tokens": (status_t, [P, C.POINTER(_i32), _u32, C.POINTER(GenerateOptions),
                                       C.POINTER(GenerateStats)]),
    "exo_default_model_dir": (_cs, []),
}

_lib = None
library_path = None


def lib():
    """The loaded library with every prototype declared (loaded on first use)."""
    global _lib, library_path
    if _lib is None:
        handle, path = _library.load()
        for name, (restype, argtypes) in _PROTOTYPES.items():
            fn = getattr(handle, name)
            fn.restype = restype
            fn.argtypes = argtypes
        _lib, library_path = handle, path
    return _lib


def cstr(value, what):
    """str or bytes as a C string argument (c_char_p; None stays None). C reads it up to the first
    NUL, so text holding one would be cut silently: that raises ValueError naming the argument."""
    if value is None:
        return None
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    at = data.find(b"\0")
    if at >= 0:
        raise ValueError(f"{what} contains a NUL character at offset {at}; the C API reads it as the end "
                         "of the string")
    return data


def text(b):
    """A C string as str ('' for NULL); undecodable bytes are replaced, never raised."""
    if isinstance(b, str):
        return b
    return b.decode("utf-8", "replace") if b else ""
