/* The graph of the device self-benchmark (core/run/device_bench.c): one matmul, x [T, K] (f32
 * input) times a [N, K] f32 weight the plan owns, giving y [T, N] (f32 output). With T = 1 it
 * streams the weight once, as a decode step streams a model's weights (read bandwidth); with T
 * in the hundreds it is compute-bound (matmul throughput). */
#include "builder_internal.h"

#include <stdlib.h>
#include <string.h>

#include "base/error.h"

exo_status exo_graph_plan_build_matmul(uint32_t k, uint32_t n, uint32_t max_tokens, exo_graph_plan *out) {
    memset(out, 0, sizeof *out);
    if (!k || !n || !max_tokens) return exo_errorf(EXO_ERR_INVALID_ARG, "benchmark matmul: empty shape");
    builder b = {.plan = out, .st = EXO_OK};
    out->max_tokens = max_tokens;
    out->max_ctx = 1;
    out->in_tokens = out->in_positions = out->in_output_row = out->in_slots = out->out_argmax = NONE;
    out->kv = calloc(1, sizeof *out->kv);
    float *w = malloc((size_t)k * n * sizeof *w);
    if (!out->kv || !w) {
        free(w);
        free(out->kv);
        out->kv = NULL;
        return exo_errorf(EXO_ERR_NO_MEMORY, "out of memory for the benchmark's weight");
    }
    /* Small values of both signs (nothing the kernels could skip). */
    for (size_t i = 0; i < (size_t)k * n; i++) w[i] = (float)((int)(i * 2654435761u % 17) - 8) / 64.0f;
    int64_t wshape[2] = {n, k}, xshape[2] = {EXO_DIM_TOKENS, k}, yshape[2] = {EXO_DIM_TOKENS, n};
    int32_t buf = gb_add_buffer(&b, w, (uint64_t)k * n * sizeof *w, w, -1, "bench.weight");
    uint32_t wt = gb_tensor(&b, EXO_DTYPE_F32, EXO_TENSOR_WEIGHT, "bench.weight", 2, wshape);
    gb_tensor_at(&b, wt)->buffer = buf;
    out->in_hidden = gb_tensor(&b, EXO_DTYPE_F32, EXO_TENSOR_INPUT, "x", 2, xshape);
    out->output = gb_tensor(&b, EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, "y", 2, yshape);
    gb_node(&b, EXO_OP_MATMUL, out->output, 2, (uint32_t[]){out->in_hidden, wt});
    if (gb_failed(&b)) exo_graph_plan_free(out);
    return b.st;
}
