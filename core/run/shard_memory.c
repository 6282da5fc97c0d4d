/* A shard's memory, measured and fitted before allocation (see shard_memory.h). */
#include "run/shard_memory.h"

#include <stdlib.h>

#include "base/meminfo.h"

/* Plugins align each intermediate's offset; 256 bytes covers every planner's alignment. */
#define SCRATCH_ALIGN 256u

uint64_t exo_mul_sat(uint64_t a, uint64_t b) {
    uint64_t r;
    return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

uint64_t exo_add_sat(uint64_t a, uint64_t b) {
    uint64_t r;
    return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

/* Bytes of a tensor with EXO_DIM_TOKENS read as rows. */
static uint64_t tensor_bytes(const exo_tensor *t, uint32_t rows) {
    uint64_t n = t->dtype == EXO_DTYPE_F16 || t->dtype == EXO_DTYPE_BF16 ? 2 : 4;
    for (uint32_t d = 0; d < t->n_dims && d < EXO_MAX_DIMS; d++) {
        int64_t e = t->ne[d] == EXO_DIM_TOKENS ? (int64_t)rows : t->ne[d];
        n = exo_mul_sat(n, e > 0 ? (uint64_t)e : 0);
    }
    return n;
}

/* The largest sum of intermediates alive at one node: an intermediate lives from the node that
 * writes it to the last node that reads it. */
static uint64_t scratch_peak(const exo_graph_plan *p, uint32_t rows) {
    if (!p || !p->n_nodes) return 0;
    uint32_t *last = malloc(sizeof *last * (p->n_tensors ? p->n_tensors : 1));
    uint64_t *born = calloc(p->n_nodes + 1, sizeof *born), *dies = calloc(p->n_nodes + 1, sizeof *dies);
    if (!last || !born || !dies) {
        free(last);
        free(born);
        free(dies);
        return UINT64_MAX; /* cannot measure: treat as not fitting rather than guess */
    }
    for (uint32_t t = 0; t < p->n_tensors; t++) last[t] = UINT32_MAX;
    for (uint32_t i = 0; i < p->n_nodes; i++)
        for (uint32_t s = 0; s < p->nodes[i].n_src && s < EXO_MAX_SRC; s++)
            if (p->nodes[i].src[s] < p->n_tensors) last[p->nodes[i].src[s]] = i;
    for (uint32_t i = 0; i < p->n_nodes; i++) {
        uint32_t d = p->nodes[i].dst;
        if (d >= p->n_tensors || p->tensors[d].flags != 0) continue;
        uint64_t size = exo_add_sat(tensor_bytes(&p->tensors[d], rows), SCRATCH_ALIGN);
        uint32_t end = last[d] != UINT32_MAX && last[d] > i ? last[d] : i;
        born[i] = exo_add_sat(born[i], size);
        dies[end + 1] = exo_add_sat(dies[end + 1], size);
    }
    uint64_t live = 0, peak = 0;
    for (uint32_t i = 0; i < p->n_nodes; i++) {
        /* Saturated sums stay saturated: a subtraction from UINT64_MAX would invent room. */
        if (live != UINT64_MAX) live = live >= dies[i] ? live - dies[i] : 0;
        live = exo_add_sat(live, born[i]);
        if (live > peak) peak = live;
    }
    free(last);
    free(born);
    free(dies);
    return peak;
}

void exo_shard_memory_measure(const exo_graph_plan *full, const exo_graph_plan *last, uint32_t input_width,
                              uint32_t output_width, uint32_t max_tokens, uint32_t max_ctx, exo_shard_memory *out) {
    *out = (exo_shard_memory){.max_tokens = max_tokens, .max_ctx = max_ctx};
    for (uint32_t i = 0; i < full->n_buffers; i++) {
        out->weights = exo_add_sat(out->weights, full->buffers[i].size);
        if (full->buffers[i].owned || full->buffers[i].heap) out->weights_owned = exo_add_sat(out->weights_owned, full->buffers[i].size);
    }
    /* K and V of every layer: [max_ctx, n_kv_heads, head_dim] (ne innermost first) of the
     * plan's KV dtype. */
    for (uint32_t i = 0; i < full->n_kv; i++) {
        const exo_tensor *t = &full->tensors[full->kv[i]];
        uint64_t row = exo_dtype_size(t->dtype);
        for (uint32_t d = 0; d + 1 < t->n_dims && d < EXO_MAX_DIMS; d++)
            row = exo_mul_sat(row, t->ne[d] > 0 ? (uint64_t)t->ne[d] : 0);
        out->kv_per_ctx = exo_add_sat(out->kv_per_ctx, row);
    }
    out->kv = exo_mul_sat(out->kv_per_ctx, max_ctx);
    out->scratch = exo_add_sat(scratch_peak(full, max_tokens), scratch_peak(last, max_tokens));
    /* input rows, positions, the last-row logits and its row index (session.c) */
    out->io = exo_add_sat(exo_mul_sat((uint64_t)max_tokens * 4, (uint64_t)input_width + 1),
                          exo_add_sat(exo_mul_sat(output_width, 4), 4));
}

uint64_t exo_shard_memory_need(const exo_shard_memory *m, bool weights_count) {
    uint64_t need = exo_add_sat(exo_add_sat(m->kv, m->scratch), m->io);
    return exo_add_sat(need, weights_count ? m->weights : m->weights_owned);
}

uint64_t exo_device_memory_available(const exo_device_rec *d, bool *host, const char **source) {
    const exo_device_report *r = d->report;
    *host = r->type == EXO_DEVICE_CPU || r->type == EXO_DEVICE_INTEGRATED_GPU || (r->caps & EXO_CAP_UNIFIED_MEMORY);
    if (*host) {
        *source = "the machine's available memory (MemAvailable, within the cgroup limit)";
        return exo_mem_available();
    }
    *source = "the device's free memory";
    return r->memory_total ? r->memory_free : UINT64_MAX;
}

bool exo_shard_memory_fit(const exo_graph_plan *full, const exo_graph_plan *last, uint32_t input_width,
                          uint32_t output_width, uint64_t avail, bool weights_count, uint32_t max_tokens,
                          bool tokens_fixed, uint32_t max_ctx, bool ctx_fixed, uint32_t min_ctx,
                          exo_shard_memory *out) {
#define NEED(T, C) (exo_shard_memory_measure(full, last, input_width, output_width, (T), (C), out), \
                    exo_shard_memory_need(out, weights_count))
    uint32_t T = max_tokens, C = max_ctx;
    if (min_ctx > C) min_ctx = C;
    if (min_ctx == 0) min_ctx = 1;
    /* The prefill chunk first, while the intermediates it sizes are the larger part: a smaller
     * chunk only slows prefill, a shorter context limits what the caller can do. */
    while (!tokens_fixed && T > 1 && NEED(T, C) > avail && out->scratch >= out->kv) T /= 2;
    if (NEED(T, C) <= avail) return true;
    if (!ctx_fixed && out->kv_per_ctx) {
        uint64_t rest = exo_shard_memory_need(out, weights_count) - out->kv; /* need without the cache */
        uint64_t fit = rest < avail ? (avail - rest) / out->kv_per_ctx : 0;
        if (fit >= 256) fit -= fit % 256; /* a round figure in the log; never below min_ctx */
        if (fit >= min_ctx) {
            C = fit < C ? (uint32_t)fit : C;
            return NEED(T, C) <= avail;
        }
        C = min_ctx;
    }
    while (!tokens_fixed && T > 1 && NEED(T, C) > avail) T /= 2;
    return NEED(T, C) <= avail;
#undef NEED
}
