/* gpu_bandwidth.c — the device's read bandwidth (see gpu_bandwidth.h). */
#include "gpu_bandwidth.h"

#include "gpu_launch.h"
#include "gpu_target.h"

#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Work-items of a sweep: enough to keep every memory channel of a large GPU busy (~1M), each
 * reading many float4s. */
#define BW_ITEMS ((uint64_t)1 << 20)
#define BW_GROUP 256

static exo_status launch(const gpu_backend *be, const char *kernel, gpu_mem *buf, uint32_t n4, gpu_mem *out) {
    gpu_exec_view view = {0};
    view.be = be;
    gpu_builder b;
    gpu_build_start(&b, &view, kernel);
    gpu_build_mem(&b, buf, 0);
    gpu_build_u32(&b, n4);
    if (out) {
        gpu_build_mem(&b, out, 0);
        gpu_build_f32(&b, -1.0f); /* the fill makes every sum positive */
    }
    uint64_t items = (uint64_t)n4 < BW_ITEMS ? (uint64_t)n4 : BW_ITEMS;
    return gpu_build_go(&b, 1, (uint64_t[3]){items, 1, 1}, (size_t[3]){BW_GROUP, 1, 1});
}

exo_status gpu_read_bandwidth(const gpu_backend *be, uint64_t bytes, uint32_t passes, double *best_gbps) {
    if (!best_gbps || passes == 0) return gpu_fail(be, EXO_ERR_INVALID_ARG, "read bandwidth: no passes or no result");
    *best_gbps = 0;
    if (be->features.max_alloc && bytes > be->features.max_alloc) bytes = be->features.max_alloc;
    uint64_t n4 = bytes / 16;
    if (n4 > UINT32_MAX) n4 = UINT32_MAX; /* the kernels index in 32 bits */
    if (n4 < BW_GROUP) return gpu_fail(be, EXO_ERR_INVALID_ARG, "read bandwidth: %llu bytes is too small", (unsigned long long)bytes);
    bytes = n4 * 16;
    gpu_mem *buf = NULL, *out = NULL;
    exo_status st = be->mem_alloc(be->ctx, bytes, &buf);
    if (st == EXO_OK) st = be->mem_alloc(be->ctx, BW_ITEMS * sizeof(float), &out);
    if (st == EXO_OK) st = launch(be, "exo_bw_fill", buf, (uint32_t)n4, NULL);
    if (st == EXO_OK) st = launch(be, "exo_bw_read", buf, (uint32_t)n4, out); /* untimed: clocks up, code loaded */
    if (st == EXO_OK) st = be->finish(be->ctx);
    double best = 0;
    for (uint32_t p = 0; st == EXO_OK && p < passes; p++) {
        double t0 = now_s();
        for (int s = 0; st == EXO_OK && s < GPU_BW_SWEEPS; s++) st = launch(be, "exo_bw_read", buf, (uint32_t)n4, out);
        if (st == EXO_OK) st = be->finish(be->ctx);
        double dt = now_s() - t0;
        if (st == EXO_OK && dt > 0 && (double)bytes * GPU_BW_SWEEPS / dt > best) best = (double)bytes * GPU_BW_SWEEPS / dt;
    }
    /* After a failed launch, still drain what went out: the backend counts launches between
     * finishes (the OpenCL plugin's launch sites), and the buffers are freed next. */
    if (st != EXO_OK && buf) (void)be->finish(be->ctx);
    if (out) be->mem_free(be->ctx, out);
    if (buf) be->mem_free(be->ctx, buf);
    if (st == EXO_OK) *best_gbps = best / 1e9;
    return st;
}
