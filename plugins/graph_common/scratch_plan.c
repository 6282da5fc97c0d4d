/* scratch_plan.c — greedy first-fit placement of intermediates by lifetime (see scratch_plan.h):
 * the classic interval-coloring heuristic used by ggml's gallocr and TFLite's arena planner. */
#include "scratch_plan.h"

#include "graph_ir.h"

#include <stdlib.h>

typedef struct lifetime {
    uint32_t tensor;
    uint32_t first, last; /* node indices, inclusive */
    uint64_t size, offset;
} lifetime;

typedef struct span {
    uint64_t begin, end;
} span;

static int compare_spans(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

exo_status graph_plan_scratch(const graph_target *target, const exo_graph *g, const graph_keep_alive *keep,
                              uint32_t n_keep, uint64_t align, uint64_t *offsets, uint64_t *total) {
    *total = 0;
    uint32_t *slot = malloc(sizeof *slot * g->n_tensors);
    lifetime *lives = malloc(sizeof *lives * (g->n_nodes ? g->n_nodes : 1));
    span *busy = malloc(sizeof *busy * (g->n_nodes ? g->n_nodes : 1));
    if (!slot || !lives || !busy) {
        free(slot);
        free(lives);
        free(busy);
        return graph_fail(target, EXO_ERR_NO_MEMORY, "graph: out of memory while planning scratch");
    }
    for (uint32_t t = 0; t < g->n_tensors; t++) {
        offsets[t] = GRAPH_NOT_PLANNED;
        slot[t] = UINT32_MAX;
    }
    /* Each intermediate is written by exactly one node (validated), so nodes define lifetimes. */
    uint32_t n_lives = 0;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const exo_node *nd = exo_graph_node(g, i);
        for (uint32_t s = 0; s < nd->n_src; s++)
            if (slot[nd->src[s]] != UINT32_MAX) lives[slot[nd->src[s]]].last = i;
        const exo_tensor *d = exo_graph_tensor(g, nd->dst);
        if (d->flags == 0) {
            uint64_t size = (graph_tensor_bytes(d, g->max_tokens) + align - 1) / align * align;
            slot[d->id] = n_lives;
            lives[n_lives++] = (lifetime){d->id, i, i, size, 0};
        }
    }
    /* The executor's fused launches: their outputs never land on what they still read. */
    for (uint32_t k = 0; k < n_keep; k++) {
        uint32_t t = keep[k].tensor;
        if (t < g->n_tensors && slot[t] != UINT32_MAX && keep[k].until > lives[slot[t]].last)
            lives[slot[t]].last = keep[k].until;
    }
    for (uint32_t a = 0; a < n_lives; a++) {
        uint32_t n_busy = 0;
        for (uint32_t b = 0; b < a; b++)
            if (lives[b].first <= lives[a].last && lives[a].first <= lives[b].last)
                busy[n_busy++] = (span){lives[b].offset, lives[b].offset + lives[b].size};
        qsort(busy, n_busy, sizeof *busy, compare_spans);
        uint64_t offset = 0;
        for (uint32_t k = 0; k < n_busy; k++) {
            if (busy[k].begin >= offset + lives[a].size) break;
            if (busy[k].end > offset) offset = busy[k].end;
        }
        lives[a].offset = offset;
        offsets[lives[a].tensor] = offset;
        if (offset + lives[a].size > *total) *total = offset + lives[a].size;
    }
    free(slot);
    free(lives);
    free(busy);
    return EXO_OK;
}
