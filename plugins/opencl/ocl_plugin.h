/* ocl_plugin.h — the OpenCL plugin's state and the helpers its files share.
 *
 * Life cycle (abi/exo_plugin.h): init (no driver calls) -> probe (dlopen the ICD loader,
 * enumerate platforms and devices, fill one report per device) -> device_report / telemetry.
 * Later stages hang off ocl_device: device_open creates the cl_context and queue, buffers are
 * cl_mem objects of that context, and graph_compile builds programs through a binary cache
 * keyed by source, options, device and driver. Those entries are NULL in the table until then. */
#ifndef EXO_OPENCL_OCL_PLUGIN_H
#define EXO_OPENCL_OCL_PLUGIN_H

#include "exo_plugin.h"
#include "ocl_api.h"

#include <stddef.h>
#include <stdint.h>

#define OCL_COMPONENT "plugin:opencl"
#define OCL_DEFAULT_LIBRARY "libOpenCL.so.1"
#define OCL_LIBRARY_ENV "EXO_OPENCL_LIBRARY"

typedef enum ocl_vendor {
    OCL_VENDOR_OTHER = 0,
    OCL_VENDOR_INTEL = 1,
    OCL_VENDOR_NVIDIA = 2,
    OCL_VENDOR_AMD = 3,
} ocl_vendor;

/* What the describe step learns about a device beyond the report itself; the fingerprint and the
 * estimates are derived from it. */
typedef struct ocl_device_facts {
    cl_device_type cl_type;
    ocl_vendor vendor;
    const char *extensions;      /* CL_DEVICE_EXTENSIONS ("" when the query failed) */
    cl_uint native_float_width;  /* CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT (SIMD lanes of a CPU core) */
    cl_uint nv_cc_major;         /* NVIDIA compute capability; 0 when not NVIDIA */
    cl_uint nv_cc_minor;
    int intel_dpas;              /* Intel: DPAS (XMX) reported by CL_DEVICE_FEATURE_CAPABILITIES_INTEL */
} ocl_device_facts;

/* One OpenCL device as found by probe. */
typedef struct ocl_device {
    cl_platform_id platform;
    cl_device_id id;
    uint32_t platform_index; /* position in clGetPlatformIDs' list */
    uint32_t device_index;   /* position in clGetDeviceIDs' list for that platform */
    int has_amd_free_memory; /* CL_DEVICE_GLOBAL_FREE_MEMORY_AMD answers (telemetry re-reads it) */
    exo_device_report report;
} ocl_device;

struct exo_plugin_ctx {
    const exo_host_api *host;
    ocl_api api; /* api.library is NULL until the first probe loads it */
    ocl_device *devices;
    uint32_t n_devices;
    /* Why probe found no device ("" when it found some): what the core shows for this plugin. */
    char no_device_reason[EXO_REASON_MAX];
};

/* Formats one log line and hands it to the host. */
void ocl_log(exo_plugin_ctx *ctx, exo_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fills ctx->devices (replacing an earlier list). Returns EXO_OK with at least one device, or
 * EXO_ERR_NO_DEVICE with ctx->no_device_reason set (and recorded through host->set_error), or
 * EXO_ERR_NO_MEMORY. */
exo_status ocl_probe(exo_plugin_ctx *ctx);

/* Frees the device list (probe and shutdown). */
void ocl_release_devices(exo_plugin_ctx *ctx);

/* Queries one device and fills dev->report (every field; score 0 with a reason when the device
 * cannot serve). Never fails: a query a device does not answer leaves that field at its
 * "unknown" value. `platform_name` is the CL_PLATFORM_NAME of the device's platform. */
void ocl_describe_device(exo_plugin_ctx *ctx, ocl_device *dev, const char *platform_name);

/* report->fingerprint: "cpu:0" for CPU devices (the registry merges them with the cpu_amx view of
 * the same CPU), else the PCI address "dddd:bb:dd.f" when the driver tells it (so Level Zero's
 * view of the same GPU merges too), else "uuid:<hex>", else "opencl:<platform>.<device>". */
void ocl_fingerprint(exo_plugin_ctx *ctx, const ocl_device *dev, const ocl_device_facts *facts,
                     char *out, size_t out_size);

/* Fills report->tflops_* and memory_bandwidth_gbs from compute units x clock x per-vendor
 * rates. Estimates for placement, not measurements; 0 when the clock or unit count is unknown. */
void ocl_estimate_performance(exo_device_report *report, const ocl_device_facts *facts);

/* Reads a string info query into host memory (NUL-terminated; free with host->free). Returns
 * CL_SUCCESS or the OpenCL error; *out is NULL on error. */
cl_int ocl_device_string(exo_plugin_ctx *ctx, cl_device_id dev, cl_device_info param, char **out);
cl_int ocl_platform_string(exo_plugin_ctx *ctx, cl_platform_id platform, cl_platform_info param,
                           char **out);

/* AMD's CL_DEVICE_GLOBAL_FREE_MEMORY_AMD in bytes (the only free-memory query OpenCL has). */
cl_int ocl_amd_free_memory(exo_plugin_ctx *ctx, cl_device_id dev, uint64_t *free_bytes);

/* True when the space-separated extension list `extensions` names `name` exactly. */
int ocl_has_extension(const char *extensions, const char *name);

#endif
