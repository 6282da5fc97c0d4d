/* ocl_plugin.h — the OpenCL plugin's state and the helpers its files share.
 *
 * Life cycle (abi/exo_plugin.h): init (no driver calls) -> probe (dlopen the ICD loader,
 * enumerate platforms and devices, fill one report per device) -> device_report / telemetry.
 * device_open creates an ocl_runtime for the device: cl_context, in-order queue, and the
 * gpu_backend table through which the shared graph executor (plugins/gpu_common) allocates
 * scratch and launches kernels. Buffers are cl_mem objects of that context. The kernels of
 * kernels/ are built once per opened device, at its first graph_compile, through a program-binary
 * cache keyed by source, options, device, driver and platform (cache.c). */
#ifndef EXO_OPENCL_OCL_PLUGIN_H
#define EXO_OPENCL_OCL_PLUGIN_H

#include "exo_plugin.h"
#include "gpu_backend.h"
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

/* Device memory as the graph executor sees it. */
struct gpu_mem {
    cl_mem mem;
    uint64_t size;
};

/* A buffer handed out through the ABI: device memory of one opened device. */
struct exo_buffer {
    gpu_mem m;
    struct ocl_runtime *rt;
    exo_buffer_usage usage;
};

#define OCL_MAX_KERNELS 64

/* An opened device. Allocated apart from the device list so its address is stable. */
typedef struct ocl_profile ocl_profile;
typedef struct ocl_sites ocl_sites;

typedef struct ocl_runtime {
    exo_plugin_ctx *ctx;
    uint32_t index;           /* device index */
    cl_device_id device;
    cl_context context;
    cl_command_queue queue;   /* in order */
    cl_program program;       /* NULL until the first graph_compile */
    char build_options[256];
    struct {
        char name[48];
        cl_kernel kernel;
    } kernels[OCL_MAX_KERNELS]; /* created on first launch, by name */
    uint32_t n_kernels;
    ocl_sites *sites;         /* a kernel object per launch site (kernel_objects.c); NULL until the first launch */
    int shared_kernels_only;  /* unless EXO_OPENCL_LAUNCH_SITES=1: one kernel object per name, every argument set */
    gpu_backend backend;
    ocl_profile *profile;     /* NULL unless EXO_OPENCL_PROFILE=1, =shapes or =host (profile.c) */
    /* Launches enqueued since the queue was last flushed or finished, and how many may wait
     * (EXO_OPENCL_FLUSH_EVERY; 0: never flush before finish). backend.c says why. */
    uint32_t unflushed, flush_every;
} ocl_runtime;

/* One OpenCL device as found by probe. */
typedef struct ocl_device {
    cl_platform_id platform;
    cl_device_id id;
    uint32_t platform_index; /* position in clGetPlatformIDs' list */
    uint32_t device_index;   /* position in clGetDeviceIDs' list for that platform */
    int has_amd_free_memory; /* CL_DEVICE_GLOBAL_FREE_MEMORY_AMD answers (telemetry re-reads it) */
    exo_device_report report;
    ocl_runtime *rt;         /* non-NULL while open */
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

/* Records a failed OpenCL call: "opencl: <what> failed: CL_NAME (code)", with the cl_int as the
 * vendor code. The status is EXO_ERR_DEVICE_OOM for allocation failures, EXO_ERR_NO_MEMORY for
 * CL_OUT_OF_HOST_MEMORY, EXO_ERR_BACKEND otherwise. */
exo_status ocl_fail(exo_plugin_ctx *ctx, cl_int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* profile.c: per-kernel device time and the host side of each execution under
 * EXO_OPENCL_PROFILE=1, =shapes or =host. create returns NULL when off; add_launch takes a
 * launch's event (=shapes keys the table by its global size too; =host has none); collect ends an execution after its
 * clFinish; report_and_free logs it all at INFO (device_close). */
ocl_profile *ocl_profile_create(exo_plugin_ctx *ctx);
/* Whether launches take events (a profiling queue): not under EXO_OPENCL_PROFILE=host. */
int ocl_profile_events(const ocl_profile *p);
void ocl_profile_add_launch(ocl_runtime *rt, const gpu_launch *l, cl_event event, uint32_t args_set, uint32_t args);
void ocl_profile_collect(ocl_runtime *rt);
void ocl_profile_report_and_free(ocl_runtime *rt);
/* The blocking host calls buffers.c times when rt->profile is set: now() before the call, then
 * host_call with its kind and bytes (weight uploads are not passed: they are the load's). */
typedef enum ocl_host_call {
    OCL_CALL_BUFFER_WRITE, /* the core's inputs (exo_plugin_api.buffer_write) */
    OCL_CALL_BUFFER_READ,  /* the core's outputs (buffer_read) */
    OCL_CALL_MEM_READ,     /* the executor's read-back of index inputs (gpu_backend.mem_read) */
    OCL_CALL_KINDS
} ocl_host_call;
uint64_t ocl_profile_now(const ocl_runtime *rt);
void ocl_profile_host_call(ocl_runtime *rt, ocl_host_call call, uint64_t bytes, uint64_t start_ns);

/* device.c: device_open / device_close (context, queue, backend table). */
exo_status ocl_device_open(exo_plugin_ctx *ctx, uint32_t index);
void ocl_device_close(exo_plugin_ctx *ctx, uint32_t index);
/* The opened device `index`, or an error naming why there is none. */
exo_status ocl_runtime_get(exo_plugin_ctx *ctx, uint32_t index, const char *what, ocl_runtime **out);

/* buffers.c */
exo_status ocl_mem_create(ocl_runtime *rt, uint64_t size, gpu_mem *out);
/* ocl_mem_read is the executor's (gpu_backend.mem_read: index read-back), profiled as such. */
exo_status ocl_mem_read(ocl_runtime *rt, const gpu_mem *m, uint64_t offset, void *dst, uint64_t size);
exo_status ocl_buffer_alloc(exo_plugin_ctx *ctx, uint32_t device, uint64_t size, exo_buffer_usage usage,
                            exo_buffer **out);
exo_status ocl_buffer_write(exo_buffer *buf, uint64_t offset, const void *data, uint64_t size);
exo_status ocl_buffer_read(exo_buffer *buf, uint64_t offset, void *data, uint64_t size);
void ocl_buffer_free(exo_buffer *buf);

/* backend.c: fills rt->backend (the gpu_common vtable over this runtime). */
void ocl_backend_init(ocl_runtime *rt, const ocl_device *dev);
/* NVIDIA's tensor-core GEMM (mma.c): adds -DEXO_NV_MMA to the build options of a device that can
 * run it (sm_80 or newer, not EXO_GPU_MMA=0 nor EXO_OPENCL_KERNELS=portable) and sets
 * features.mma_parts; ocl_mma_drop takes it out again (a build that failed with it), returning
 * whether it was there. */
void ocl_mma_choose(ocl_runtime *rt, const ocl_device *dev);
int ocl_mma_drop(ocl_runtime *rt);

/* kernel_objects.c: the cl_kernel launch l is enqueued with, its arguments set (a kernel object
 * per launch site of an execution, which keeps them between steps: only changed ones are set).
 * *args: the launch's clSetKernelArg arguments; *args_set: how many of them this call set.
 * ocl_sites_next_execution at each finish; ocl_sites_forget whenever device memory is released;
 * ocl_release_kernels at device close. */
exo_status ocl_kernel_for_launch(ocl_runtime *rt, const gpu_launch *l, cl_kernel *out, uint32_t *args_set, uint32_t *args);
void ocl_sites_next_execution(ocl_runtime *rt);
void ocl_sites_forget(ocl_runtime *rt);
void ocl_release_kernels(ocl_runtime *rt);

/* program.c: builds rt->program (once) from the embedded kernels, through the binary cache. */
exo_status ocl_program_ensure(ocl_runtime *rt);

/* graph.c: the ABI's graph entries over plugins/gpu_common. */
exo_status ocl_supports_graph(exo_plugin_ctx *ctx, uint32_t device, const exo_graph *graph, uint32_t *first_unsupported);
exo_status ocl_graph_compile(exo_plugin_ctx *ctx, uint32_t device, const exo_graph *graph, exo_compiled **out);
/* ABI 1.8: the device's read bandwidth through gpu_common's sweep (gpu_bandwidth.h). */
exo_status ocl_device_read_bandwidth(exo_plugin_ctx *ctx, uint32_t device, uint64_t bytes, uint32_t passes,
                                     double *best_gbps);
exo_status ocl_graph_execute(exo_compiled *compiled, const exo_exec_args *args);
void ocl_compiled_free(exo_compiled *compiled);

/* True when the space-separated extension list `extensions` names `name` exactly. */
int ocl_has_extension(const char *extensions, const char *name);

#endif
