/* Pooled KV caches in a built plan (see kv_pool.h). */
#include "graph/kv_pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

/* The nodes that read or write a cache take the slots as their last source. */
static bool takes_slots(const exo_node *n) { return n->op == EXO_OP_KV_WRITE || n->op == EXO_OP_ATTENTION; }

static exo_status pool(exo_graph_plan *p, uint32_t slots) {
    if (p->n_tensors + 1 > p->cap_tensors) {
        exo_tensor *t = realloc(p->tensors, (size_t)(p->n_tensors + 1) * sizeof *t);
        if (!t) return exo_errorf(EXO_ERR_NO_MEMORY, "out of memory pooling the KV caches");
        p->tensors = t;
        p->cap_tensors = p->n_tensors + 1;
    }
    for (uint32_t i = 0; i < p->n_nodes; i++)
        if (takes_slots(&p->nodes[i]) && p->nodes[i].n_src >= EXO_MAX_SRC)
            return exo_errorf(EXO_ERR_INTERNAL, "node %u has no room for a slots source", i);
    exo_tensor *t = &p->tensors[p->n_tensors];
    memset(t, 0, sizeof *t);
    t->id = p->n_tensors;
    t->dtype = EXO_DTYPE_I32;
    t->flags = EXO_TENSOR_INPUT;
    t->n_dims = 1;
    t->ne[0] = EXO_DIM_TOKENS;
    for (uint32_t d = 1; d < EXO_MAX_DIMS; d++) t->ne[d] = 1;
    t->buffer = -1;
    snprintf(t->name, sizeof t->name, "kv_slots");
    p->in_slots = p->n_tensors++;
    for (uint32_t i = 0; i < p->n_nodes; i++)
        if (takes_slots(&p->nodes[i])) p->nodes[i].src[p->nodes[i].n_src++] = p->in_slots;
    for (uint32_t i = 0; i < p->n_kv; i++) p->tensors[p->kv[i]].n_dims = 4;
    return EXO_OK;
}

static void unpool(exo_graph_plan *p) {
    for (uint32_t i = 0; i < p->n_nodes; i++)
        if (takes_slots(&p->nodes[i])) p->nodes[i].src[--p->nodes[i].n_src] = 0;
    for (uint32_t i = 0; i < p->n_kv; i++) {
        p->tensors[p->kv[i]].n_dims = 3;
        p->tensors[p->kv[i]].ne[3] = 1;
    }
    /* pool() appended the slots tensor last, and nothing is added to a built plan after it. */
    p->n_tensors--;
    p->in_slots = 0;
}

exo_status exo_graph_plan_pool_kv(exo_graph_plan *p, uint32_t slots) {
    if (!slots) {
        if (p->kv_slots) unpool(p);
        p->kv_slots = 0;
        return EXO_OK;
    }
    if (!p->kv_slots) {
        exo_status st = pool(p, slots);
        if (st != EXO_OK) return st;
    }
    /* ne is innermost first: [slots][ctx][n_kv_heads][head_dim] puts the slot outermost, so a
     * pool of more slots begins with the same bytes as a smaller one. */
    for (uint32_t i = 0; i < p->n_kv; i++) p->tensors[p->kv[i]].ne[3] = slots;
    p->kv_slots = slots;
    return EXO_OK;
}

uint64_t exo_graph_plan_kv_slot_bytes(const exo_graph_plan *p) {
    if (!p->n_kv) return 0;
    const exo_tensor *t = &p->tensors[p->kv[0]];
    return (uint64_t)t->ne[0] * (uint64_t)t->ne[1] * (uint64_t)t->ne[2] * exo_dtype_size(t->dtype);
}

void exo_graph_plan_set_kv_dtype(exo_graph_plan *p, exo_dtype dtype) {
    for (uint32_t i = 0; i < p->n_kv; i++) p->tensors[p->kv[i]].dtype = dtype;
    p->kv_dtype = dtype;
}
