/* Internal declarations shared by the cpu_amx plugin's files: the plugin context, buffers,
 * the probe's findings and the thread pool. Nothing here crosses the plugin ABI. */
#ifndef EXO_CPU_PLUGIN_H
#define EXO_CPU_PLUGIN_H

#include "exo_plugin.h"

#include <stdbool.h>
#include <stdint.h>

#define CPU_PLUGIN_COMPONENT "plugin:cpu_amx"
#define CPU_ALIGN 64

typedef struct cpu_threadpool cpu_threadpool;

/* What CPUID, the kernel and oneDNN say about this CPU (probe.c). */
typedef struct cpu_features {
    bool avx2, fma, f16c;
    bool avx512f, avx512bw, avx512vl, avx512_vnni, avx512_bf16, avx512_fp16;
    bool os_avx512;           /* XCR0 enables opmask/ZMM state */
    bool amx_tile, amx_bf16, amx_int8;
    bool amx_permitted;       /* arch_prctl granted XTILEDATA */
    char amx_status[160];     /* plain words: why AMX is or is not usable */
    char brand[64];
    uint32_t cores;           /* sched_getaffinity count */
    uint32_t clock_mhz;
    char onednn_isa[32];
} cpu_features;

struct exo_plugin_ctx {
    const exo_host_api *host;
    bool probed;
    bool open;
    cpu_features features;
    exo_device_report report;
    cpu_threadpool *pool;     /* created by device_open */
    /* Telemetry's previous samples (utilization and power are deltas). */
    bool have_stat_sample;
    uint64_t stat_busy, stat_total;
    bool have_energy_sample;
    uint64_t energy_uj, energy_ns;
};

struct exo_buffer {
    exo_plugin_ctx *ctx;
    uint8_t *data;
    uint64_t size;
    exo_buffer_usage usage;
    bool owned;               /* false: wraps caller memory */
};

/* Error helpers that go through the host table. */
#define cpu_error(ctx, status, ...) ((ctx)->host->set_error((ctx)->host->host_ctx, (status), 0, __VA_ARGS__))
void cpu_log(const exo_plugin_ctx *ctx, exo_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* probe.c */
void cpu_detect_features(cpu_features *f);
exo_status cpu_probe(exo_plugin_ctx *ctx, uint32_t *count);
exo_status cpu_device_report(exo_plugin_ctx *ctx, uint32_t index, exo_device_report *out);
uint32_t cpu_affinity_cores(void);
bool cpu_read_meminfo(uint64_t *total, uint64_t *available);

/* telemetry.c */
exo_status cpu_device_telemetry(exo_plugin_ctx *ctx, uint32_t index, exo_device_telemetry *out);

/* buffers.c */
exo_status cpu_buffer_alloc(exo_plugin_ctx *ctx, uint32_t device, uint64_t size,
                            exo_buffer_usage usage, exo_buffer **out);
exo_status cpu_buffer_wrap_host(exo_plugin_ctx *ctx, uint32_t device, void *ptr, uint64_t size,
                                exo_buffer_usage usage, exo_buffer **out);
exo_status cpu_buffer_write(exo_buffer *buf, uint64_t offset, const void *data, uint64_t size);
exo_status cpu_buffer_read(exo_buffer *buf, uint64_t offset, void *data, uint64_t size);
void cpu_buffer_free(exo_buffer *buf);

/* graph.c */
exo_status cpu_supports_graph(exo_plugin_ctx *ctx, uint32_t device, const exo_graph *graph,
                              uint32_t *first_unsupported);
exo_status cpu_graph_compile(exo_plugin_ctx *ctx, uint32_t device, const exo_graph *graph,
                             exo_compiled **out);
exo_status cpu_graph_execute(exo_compiled *compiled, const exo_exec_args *args);
void cpu_compiled_free(exo_compiled *compiled);

#endif
