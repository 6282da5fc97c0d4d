/*
 * exo_types.h — the plain types both sides of exo-ipex share: what the public API (exo.h) and the
 * plugin ABI (exo_plugin.h) both speak. Each of those headers includes this one; a program
 * includes exo.h, a plugin exo_plugin.h, and neither sees the other's declarations.
 *
 * What lives here: the struct header and the version arithmetic, status codes, log levels, the
 * element types, and the device report and telemetry a plugin fills and a program reads. No
 * version of its own: the layouts here are frozen under both versions (asserted by
 * tests/abi/test_types_layout.c), and grow only at the end, as every struct with a header does.
 *
 * Versions: each side stamps the structs it allocates with its own version (EXO_STRUCT_INIT:
 * EXO_API_VERSION in a program, EXO_ABI_VERSION in a plugin). The shared structs below carry the
 * stamp of whoever allocated them: a report the core allocates for a plugin carries the plugin
 * ABI's version, a telemetry struct a program passes to exo_device_telemetry_read the public
 * API's. Readers of the shared structs go by hdr.size alone (EXO_STRUCT_HAS).
 */
#ifndef EXO_TYPES_H
#define EXO_TYPES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- versions and headers */

/* version = major << 16 | minor. A major must match exactly; minors only add at the end. */
#define EXO_MAKE_VERSION(major, minor) (((uint32_t)(major) << 16) | ((uint32_t)(minor)&0xffffu))
#define EXO_VERSION_MAJOR(v) ((uint32_t)(v) >> 16)
#define EXO_VERSION_MINOR(v) ((uint32_t)(v)&0xffffu)

typedef struct exo_struct_header {
    uint32_t size;    /* sizeof(struct) as compiled by the side that allocated it */
    uint32_t version; /* EXO_MAKE_VERSION the allocator was built with */
} exo_struct_header;

/* True when a struct whose header says `size` holds `member` entirely. */
#define EXO_STRUCT_HAS(ptr, type, member) \
    ((ptr)->hdr.size >= offsetof(type, member) + sizeof(((type *)0)->member))

/* ---------------------------------------------------------------- status codes */

typedef int32_t exo_status;
enum {
    EXO_OK = 0,
    EXO_NOT_READY = 1, /* positives are non-errors */
    EXO_ERR_INVALID_ARG = -1,
    EXO_ERR_NO_MEMORY = -2,     /* host memory */
    EXO_ERR_DEVICE_OOM = -3,    /* device memory */
    EXO_ERR_UNSUPPORTED = -4,
    EXO_ERR_ABI_MISMATCH = -5,
    EXO_ERR_PLUGIN_LOAD = -6,
    EXO_ERR_NO_DEVICE = -7,
    EXO_ERR_DEVICE_LOST = -8,
    EXO_ERR_BACKEND = -9,       /* a vendor call failed; detail names it */
    EXO_ERR_TIMEOUT = -10,
    EXO_ERR_ABORTED = -11,      /* cancelled by the caller */
    EXO_ERR_INTERNAL = -12,
    EXO_ERR_IO = -13,           /* file missing, unreadable, truncated */
    EXO_ERR_FORMAT = -14,       /* malformed file contents */
    EXO_ERR_NOT_FOUND = -15,    /* a named thing (tensor, device, plugin) does not exist */
    EXO_ERR_BUFFER_TOO_SMALL = -16, /* the caller's output buffer is too small; the count says how big */
    EXO_ERR_STATUS_FORCE_INT32 = 0x7fffffff
};

/* ---------------------------------------------------------------- logging */

typedef int32_t exo_log_level;
enum {
    EXO_LOG_ERROR = 0,
    EXO_LOG_WARN = 1,
    EXO_LOG_INFO = 2,
    EXO_LOG_DEBUG = 3,
    EXO_LOG_TRACE = 4,
    EXO_LOG_LEVEL_FORCE_INT32 = 0x7fffffff
};

/* ---------------------------------------------------------------- element types */

typedef int32_t exo_dtype;
enum {
    EXO_DTYPE_F32 = 0,
    EXO_DTYPE_F16 = 1,
    EXO_DTYPE_BF16 = 2,
    EXO_DTYPE_I32 = 3,
    EXO_DTYPE_Q8_0 = 4, /* blocks of 32: f16 scale + 32 x int8 */
    EXO_DTYPE_MLX_AFFINE = 5, /* plugin ABI 1.3: MLX affine packed weights; exo_tensor's q_* fields
                               * describe them (exo_plugin.h, "Quantized weights") */
    EXO_DTYPE_COUNT = 6,
    EXO_DTYPE_FORCE_INT32 = 0x7fffffff
};

/* The dtype's name as messages show it ("F32", "BF16", "Q8_0"; safetensors' spelling), or
 * "unknown". The one table of names: the core, the plugins and embedders all use it. */
static inline const char *exo_dtype_name(exo_dtype dtype) {
    static const char *const names[EXO_DTYPE_COUNT] = {"F32", "F16", "BF16", "I32", "Q8_0", "MLX_AFFINE"};
    return dtype >= 0 && dtype < EXO_DTYPE_COUNT ? names[dtype] : "unknown";
}

/* Bytes per element; 0 for block and packed formats (Q8_0: a block's bytes cover 32 elements;
 * MLX_AFFINE: bits per element) and unknown values, which have no per-element size. */
static inline uint32_t exo_dtype_size(exo_dtype dtype) {
    switch (dtype) {
    case EXO_DTYPE_F32:
    case EXO_DTYPE_I32: return 4;
    case EXO_DTYPE_F16:
    case EXO_DTYPE_BF16: return 2;
    default: return 0;
    }
}

/* ---------------------------------------------------------------- devices */

typedef int32_t exo_device_type;
enum {
    EXO_DEVICE_UNKNOWN = 0,
    EXO_DEVICE_DISCRETE_GPU = 1,
    EXO_DEVICE_INTEGRATED_GPU = 2,
    EXO_DEVICE_CPU = 3,
    EXO_DEVICE_ACCELERATOR = 4,
    EXO_DEVICE_TYPE_FORCE_INT32 = 0x7fffffff
};

/* Capability bits (exo_device_report.caps). */
#define EXO_CAP_FP16 (1ull << 0)           /* fp16 arithmetic */
#define EXO_CAP_BF16 (1ull << 1)           /* bf16 arithmetic / dot products */
#define EXO_CAP_INT8_DOT (1ull << 2)       /* DP4A / VNNI */
#define EXO_CAP_MATRIX (1ull << 3)         /* XMX / DPAS / AMX usable */
#define EXO_CAP_UNIFIED_MEMORY (1ull << 4) /* device shares host memory */
#define EXO_CAP_SUBGROUPS (1ull << 5)
#define EXO_CAP_INT4_WEIGHTS (1ull << 6)
#define EXO_CAP_MATRIX_PRESENT (1ull << 7) /* matrix engine exists but is not usable (e.g. AMX not permitted) */

/* Score tiers (exo_device_report.score). 0 means the device cannot serve; `reason` says why. */
#define EXO_SCORE_UNUSABLE 0
#define EXO_SCORE_SERVABLE 1
#define EXO_SCORE_CAPABLE 50
#define EXO_SCORE_PREFERRED 100

#define EXO_NAME_MAX 128
#define EXO_REASON_MAX 256

/* One device as the probe sees it. Filled by the plugin, allocated and kept by the core (its
 * header carries the plugin ABI's version); programs read it through exo_device_info.report. */
typedef struct exo_device_report {
    exo_struct_header hdr;
    uint32_t score;                  /* 0 = cannot serve */
    exo_device_type type;
    char reason[EXO_REASON_MAX];     /* why this score (always set) */
    char fingerprint[64];            /* PCI BDF "dddd:bb:dd.f", "uuid:<hex>", or "cpu:0" */
    char name[EXO_NAME_MAX];         /* marketing name, e.g. "Intel(R) Arc(TM) A770 Graphics" */
    char vendor[64];
    uint32_t vendor_id;              /* PCI vendor id, 0x8086 for Intel; 0 when unknown */
    uint32_t device_id;
    char driver_version[64];
    char api_version[32];            /* "1.4", "OpenCL 3.0" */
    uint64_t memory_total;           /* bytes */
    uint64_t memory_free;            /* bytes; equals memory_total when the driver cannot tell */
    uint64_t max_alloc;              /* largest single allocation in bytes */
    uint32_t compute_units;          /* EUs / compute units / CPU cores */
    uint32_t clock_mhz;
    uint64_t caps;                   /* EXO_CAP_* */
    float tflops_fp32;               /* estimates for EXO's placement */
    float tflops_fp16;
    float tflops_int8;
    float memory_bandwidth_gbs;      /* estimated peak, GB/s */
    char isa[64];                    /* CPU: effective ISA (e.g. "avx512_core_bf16"); GPU: IP version */
} exo_device_report;

/* Sensor readings; every field has a validity bit. Filled by the plugin into the core's own
 * struct (ABI version), then copied by size into the caller's (exo_device_telemetry_read). */
#define EXO_TELEMETRY_MEMORY (1u << 0)
#define EXO_TELEMETRY_UTILIZATION (1u << 1)
#define EXO_TELEMETRY_TEMPERATURE (1u << 2)
#define EXO_TELEMETRY_POWER (1u << 3)
#define EXO_TELEMETRY_FREQUENCY (1u << 4)
#define EXO_TELEMETRY_DRIVER (1u << 5)

typedef struct exo_device_telemetry {
    exo_struct_header hdr;
    uint32_t valid;            /* EXO_TELEMETRY_* bits of the fields below that hold readings */
    uint64_t memory_used;
    uint64_t memory_free;
    float utilization;         /* 0..1 */
    float temperature_c;
    float power_w;
    float frequency_mhz;
    char driver_version[64];
} exo_device_telemetry;

#ifdef __cplusplus
}
#endif
#endif /* EXO_TYPES_H */
