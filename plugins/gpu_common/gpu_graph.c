/* gpu_graph.c — compile and execute (see gpu_graph.h). */
#include "gpu_graph.h"

#include "gpu_fusions.h"
#include "gpu_kernels.h"
#include "gpu_moe.h"
#include "gpu_target.h"
#include "graph_bindings.h"
#include "graph_ir.h"
#include "graph_validate.h"
#include "scratch_plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A node that indexes with an INPUT tensor (token ids, positions, KV slots): the values must lie
 * in [0, limit), where the limit (table rows, cache rows, pool slots) is resolved at the
 * execution's token count (a GET_ROWS may pick rows of this execution's hidden states). */
typedef struct index_check {
    uint32_t node;
    uint32_t tensor; /* the index input */
    uint32_t bound;  /* the tensor whose extent is the limit */
    int32_t dim;     /* which extent of bound (INDEX_TABLE_ROWS: its rows, count / ne[0]) */
    uint32_t slot;   /* which read-back of index_host holds the tensor's values */
    const char *what;
    int64_t limit;   /* > 0: a fixed limit (a MoE node's expert count) instead of bound's extent */
} index_check;

/* What compile found at a node: the run each fusion may compute as one launch from here on, and
 * the fusions whose run at the next node this RMS_NORM folds into. Runs may nest (q/k/v + RoPE +
 * KV holds q/k/v and RoPE + KV): execution only looks at a node's runs when it reaches the node,
 * i.e. when no run before it covered it. */
typedef struct node_runs {
    uint8_t len[GPU_FUSION_COUNT]; /* per gpu_fusions entry: nodes in its run from here (0: none) */
    uint8_t norm_into;             /* bit f: fold into gpu_fusions[f]'s run at node + 1 */
} node_runs;

struct gpu_compiled {
    const gpu_backend *be;
    uint32_t n_tensors, n_nodes, max_tokens;
    exo_tensor *tensors;
    exo_node *nodes;
    gpu_mem **mem;     /* per tensor: weights and intermediates fixed at compile, bound ones per run */
    uint64_t *offset;  /* per tensor, bytes */
    uint8_t *bound;    /* per tensor: seen in the current execution's bindings */
    gpu_mem *scratch;
    uint64_t scratch_size;
    gpu_mem *attn_partials; /* split decode attention's per-split states (gpu_kernels.h) */
    gpu_moe_plan moe;       /* MOE_MATMUL expert tables and prefill work area */
    node_runs *runs;        /* per node */
    index_check *checks;
    uint32_t n_checks, n_slots;
    uint32_t *slot_tensor; /* per slot: the index input read back into it */
    int64_t *slot_count;   /* per slot: its element count in the current execution */
    int32_t *index_host;   /* n_slots x slot_cap values: index inputs read back to be checked */
    int64_t slot_cap;      /* values per slot: the largest index input at max_tokens (MoE ids: tokens x k) */
};

/* The graph against the IR contract and the kernels' limits (plugins/graph_common), then the
 * device against the kernels' work-group size. */
static exo_status check_graph(const gpu_backend *be, const exo_graph *g, uint32_t *bad_node) {
    graph_target target = gpu_graph_target(be);
    exo_status st = graph_validate(&target, g, bad_node);
    for (uint32_t i = 0; st == EXO_OK && i < g->n_nodes; i++) {
        const exo_node *nd = exo_graph_node(g, i);
        int64_t experts = nd->op == EXO_OP_MOE_MATMUL                                 ? nd->i[EXO_MOE_MATMUL_I_N_EXPERTS]
                          : nd->op == EXO_OP_MOE_TOPK || nd->op == EXO_OP_MOE_WEIGHTS ? exo_graph_tensor(g, nd->src[0])->ne[0]
                                                                                      : 0;
        if (experts > GPU_MOE_MAX_EXPERTS) {
            *bad_node = i;
            st = gpu_fail(be, EXO_ERR_UNSUPPORTED, "graph: node %u (%s) has %lld experts; the kernels take at most %d", i,
                          graph_op_name(nd->op), (long long)experts, GPU_MOE_MAX_EXPERTS);
        }
    }
    if (st == EXO_OK && be->features.max_work_group < GPU_MIN_WORK_GROUP)
        st = gpu_fail(be, EXO_ERR_UNSUPPORTED, "graph: the device's work-groups hold %u items; the kernels need %u",
                      be->features.max_work_group, GPU_MIN_WORK_GROUP);
    return st;
}

exo_status gpu_graph_supports(const gpu_backend *be, const exo_graph *g, uint32_t *first_unsupported) {
    uint32_t bad = UINT32_MAX;
    exo_status st = check_graph(be, g, &bad);
    if (first_unsupported) *first_unsupported = bad;
    return st;
}

void gpu_graph_free(gpu_compiled *c) {
    if (!c) return;
    if (c->scratch) c->be->mem_free(c->be->ctx, c->scratch);
    if (c->attn_partials) c->be->mem_free(c->be->ctx, c->attn_partials);
    gpu_moe_plan_free(c->be, &c->moe);
    free(c->tensors);
    free(c->nodes);
    free(c->mem);
    free(c->offset);
    free(c->bound);
    free(c->checks);
    free(c->runs);
    free(c->slot_tensor);
    free(c->slot_count);
    free(c->index_host);
    free(c);
}

#define INDEX_TABLE_ROWS (-1)
/* A pooled KV_WRITE or ATTENTION checks its positions and its slots. */
#define MAX_CHECKS_PER_NODE 2

/* Extent `dim` of t at n_tokens; INDEX_TABLE_ROWS: a GET_ROWS table's rows ([rows][width]). */
static int64_t extent_of(const exo_tensor *t, uint32_t n_tokens, int32_t dim) {
    int64_t ne[EXO_MAX_DIMS];
    int64_t count = graph_resolve_shape(t, n_tokens, ne);
    return dim == INDEX_TABLE_ROWS ? count / ne[0] : ne[dim];
}

/* The extent of a cache that positions index: ctx, outermost in [ctx][n_kv_heads][head_dim], the
 * one inside the slots in a pool (ABI 1.6, [n_slots][ctx][n_kv_heads][head_dim]). */
static int32_t ctx_dim(const exo_tensor *cache) { return cache->n_dims == 4 ? 2 : (int32_t)cache->n_dims - 1; }

static void add_check(gpu_compiled *c, uint32_t node, uint32_t tensor, uint32_t bound, int32_t dim, const char *what,
                      int64_t limit) {
    if (!(c->tensors[tensor].flags & EXO_TENSOR_INPUT)) return; /* computed indices: kernels guard */
    uint32_t slot = 0;
    while (slot < c->n_slots && c->slot_tensor[slot] != tensor) slot++;
    if (slot == c->n_slots) c->slot_tensor[c->n_slots++] = tensor;
    c->checks[c->n_checks++] = (index_check){node, tensor, bound, dim, slot, what, limit};
    int64_t ne[EXO_MAX_DIMS], count = graph_resolve_shape(&c->tensors[tensor], c->max_tokens, ne);
    if (count > c->slot_cap) c->slot_cap = count;
}

static void plan_index_checks(gpu_compiled *c) {
    for (uint32_t i = 0; i < c->n_nodes; i++) {
        const exo_node *nd = &c->nodes[i];
        /* A pooled cache (4-D) also has its slots, the node's last source, in [0, n_slots). */
        uint32_t cache = nd->op == EXO_OP_KV_WRITE ? nd->dst : nd->src[1];
        switch (nd->op) {
        case EXO_OP_GET_ROWS: add_check(c, i, nd->src[1], nd->src[0], INDEX_TABLE_ROWS, "token id", 0); break;
        case EXO_OP_KV_WRITE:
        case EXO_OP_ATTENTION:
            add_check(c, i, nd->src[nd->op == EXO_OP_KV_WRITE ? 1 : 3], cache, ctx_dim(&c->tensors[cache]), "position", 0);
            if (c->tensors[cache].n_dims == 4) add_check(c, i, nd->src[nd->n_src - 1], cache, 3, "slot", 0);
            break;
        /* Ids from MOE_TOPK are in range by construction; ids given as inputs are checked here
         * (the kernels would only write NaN rows for them). */
        case EXO_OP_MOE_WEIGHTS:
            add_check(c, i, nd->src[1], nd->src[0], 0, "expert id", c->tensors[nd->src[0]].ne[0]);
            break;
        case EXO_OP_MOE_MATMUL:
            add_check(c, i, nd->src[1], nd->src[2], 0, "expert id", nd->i[EXO_MOE_MATMUL_I_N_EXPERTS]);
            break;
        default: break;
        }
    }
}

/* The fusion table's runs at every node (gpu_fusions.h), and the inputs those launches keep
 * reading past their last reader, for the scratch planner (*n_keep entries of keep, which has
 * room for n_nodes * GPU_FUSION_COUNT). */
static void find_runs(gpu_compiled *c, const exo_graph *g, graph_keep_alive *keep, uint32_t *n_keep) {
    *n_keep = 0;
    /* Every node, also those inside another run: when a long run does not fit an execution, the
     * shorter runs inside it (exo_rope_kv inside q/k/v + RoPE + KV) still may. */
    for (uint32_t i = 0; i < g->n_nodes; i++)
        for (uint32_t f = 0; f < GPU_FUSION_COUNT; f++) {
            const gpu_fusion *fu = &gpu_fusions[f];
            uint32_t len = fu->detect(g, i);
            c->runs[i].len[f] = (uint8_t)len;
            if (len && fu->keep_src >= 0)
                keep[(*n_keep)++] = (graph_keep_alive){exo_graph_node(g, i + fu->keep_node)->src[fu->keep_src], i + len - 1};
        }
    for (uint32_t i = 0; i + 1 < g->n_nodes; i++)
        for (uint32_t f = 0; f < GPU_FUSION_COUNT; f++) {
            uint32_t len = c->runs[i + 1].len[f];
            if (len && gpu_fusions[f].folds_norm && gpu_fusion_norm_detect(g, i, len)) c->runs[i].norm_into |= 1u << f;
        }
}

exo_status gpu_graph_compile(const gpu_backend *be, const exo_graph *g, gpu_compiled **out) {
    if (!out) return gpu_fail(be, EXO_ERR_INVALID_ARG, "graph_compile: out is NULL");
    *out = NULL;
    uint32_t bad;
    exo_status st = check_graph(be, g, &bad);
    if (st != EXO_OK) return st;

    gpu_compiled *c = calloc(1, sizeof *c);
    if (!c) return gpu_fail(be, EXO_ERR_NO_MEMORY, "graph_compile: out of memory");
    c->be = be;
    c->n_tensors = g->n_tensors;
    c->n_nodes = g->n_nodes;
    c->max_tokens = g->max_tokens;
    c->tensors = malloc(sizeof *c->tensors * g->n_tensors);
    c->nodes = malloc(sizeof *c->nodes * g->n_nodes);
    c->mem = calloc(g->n_tensors, sizeof *c->mem);
    c->offset = calloc(g->n_tensors, sizeof *c->offset);
    c->bound = calloc(g->n_tensors, 1);
    /* At most MAX_CHECKS_PER_NODE index checks per node, each with at most one new input. */
    c->checks = calloc((size_t)g->n_nodes * MAX_CHECKS_PER_NODE + 1, sizeof *c->checks);
    c->slot_tensor = calloc((size_t)g->n_nodes * MAX_CHECKS_PER_NODE + 1, sizeof *c->slot_tensor);
    c->slot_count = calloc((size_t)g->n_nodes * MAX_CHECKS_PER_NODE + 1, sizeof *c->slot_count);
    c->runs = calloc(g->n_nodes ? g->n_nodes : 1, sizeof *c->runs);
    uint64_t *offsets = malloc(sizeof *offsets * g->n_tensors);
    graph_keep_alive *keep = malloc(sizeof *keep * GPU_FUSION_COUNT * (g->n_nodes ? g->n_nodes : 1));
    if (!c->tensors || !c->nodes || !c->mem || !c->offset || !c->bound || !c->checks || !c->slot_tensor ||
        !c->slot_count || !c->runs || !offsets || !keep) {
        free(offsets);
        free(keep);
        gpu_graph_free(c);
        return gpu_fail(be, EXO_ERR_NO_MEMORY, "graph_compile: out of memory");
    }
    graph_copy_tables(g, c->tensors, c->nodes);
    plan_index_checks(c);
    uint32_t n_keep;
    find_runs(c, g, keep, &n_keep);
    c->index_host = malloc(sizeof *c->index_host * (size_t)(c->slot_cap ? c->slot_cap : 1) * (c->n_slots ? c->n_slots : 1));
    if (!c->index_host) {
        free(offsets);
        free(keep);
        gpu_graph_free(c);
        return gpu_fail(be, EXO_ERR_NO_MEMORY, "graph_compile: out of memory");
    }

    graph_target target = gpu_graph_target(be);
    st = graph_plan_scratch(&target, g, keep, n_keep, GPU_ALIGN, offsets, &c->scratch_size);
    free(keep);
    if (st == EXO_OK && be->features.max_alloc && c->scratch_size > be->features.max_alloc)
        st = gpu_fail(be, EXO_ERR_DEVICE_OOM,
                      "graph_compile: intermediates need %llu bytes at max_tokens %u; the device's largest allocation "
                      "is %llu bytes",
                      (unsigned long long)c->scratch_size, g->max_tokens, (unsigned long long)be->features.max_alloc);
    if (st == EXO_OK && c->scratch_size > 0) st = be->mem_alloc(be->ctx, c->scratch_size, &c->scratch);
    uint64_t partials = 0;
    uint32_t split_tokens = g->max_tokens < GPU_ATT_SPLIT_MAX_TOKENS ? g->max_tokens : GPU_ATT_SPLIT_MAX_TOKENS;
    for (uint32_t i = 0; i < g->n_nodes; i++)
        if (c->nodes[i].op == EXO_OP_ATTENTION) {
            const int32_t *p = c->nodes[i].i;
            uint64_t need =
                GPU_ATT_PARTIAL_FLOATS(p[EXO_ATTENTION_I_N_HEADS], p[EXO_ATTENTION_I_HEAD_DIM], split_tokens) * sizeof(float);
            partials = need > partials ? need : partials;
        }
    /* Without it (too large for one allocation) decode attention takes the one-kernel path. */
    if (st == EXO_OK && partials > 0 && (!be->features.max_alloc || partials <= be->features.max_alloc))
        st = be->mem_alloc(be->ctx, partials, &c->attn_partials);
    if (st != EXO_OK) {
        free(offsets);
        gpu_graph_free(c);
        return st;
    }
    for (uint32_t t = 0; t < g->n_tensors; t++) {
        const exo_tensor *ten = exo_graph_tensor(g, t);
        if (ten->flags & EXO_TENSOR_WEIGHT) {
            uint64_t size;
            c->mem[t] = be->buffer_mem(be->ctx, g->buffers[ten->buffer], &size);
            c->offset[t] = ten->offset;
        } else if (offsets[t] != GRAPH_NOT_PLANNED) {
            c->mem[t] = c->scratch;
            c->offset[t] = offsets[t];
        }
    }
    free(offsets);
    st = gpu_moe_plan_build(be, c->tensors, c->nodes, c->n_nodes, c->mem, c->offset, c->max_tokens, &c->moe);
    if (st != EXO_OK) {
        gpu_graph_free(c);
        return st;
    }
    if (be->host->log) {
        char line[160];
        snprintf(line, sizeof line, "compiled %u nodes, %u tensors: %llu bytes of device scratch for %u tokens",
                 g->n_nodes, g->n_tensors, (unsigned long long)c->scratch_size, g->max_tokens);
        be->host->log(be->host->host_ctx, EXO_LOG_DEBUG, be->name, line);
    }
    *out = c;
    return EXO_OK;
}

/* ---------------------------------------------------------------- execution */

/* Checks the arguments and bindings (plugins/graph_common), then takes each bound tensor's
 * device memory. */
static exo_status bind_tensors(gpu_compiled *c, const exo_exec_args *args) {
    const gpu_backend *be = c->be;
    graph_target target = gpu_graph_target(be);
    exo_status st = graph_check_bindings(&target, c->tensors, c->n_tensors, c->max_tokens, args, c->bound);
    for (uint32_t b = 0; st == EXO_OK && b < args->n_bindings; b++) {
        const exo_binding *bd = exo_exec_binding(args, b);
        uint64_t size;
        c->mem[bd->tensor] = be->buffer_mem(be->ctx, bd->buffer, &size);
        c->offset[bd->tensor] = bd->offset;
    }
    return st;
}

/* Token ids, positions and KV slots arrive with the inputs, so their range is checked per
 * execution, before any kernel indexes with them. */
static exo_status check_indices(gpu_compiled *c, uint32_t n_tokens) {
    const gpu_backend *be = c->be;
    int64_t *counts = c->slot_count;
    for (uint32_t k = 0; k < c->n_slots; k++) {
        const exo_tensor *t = &c->tensors[c->slot_tensor[k]];
        int64_t ne[EXO_MAX_DIMS];
        int64_t count = graph_resolve_shape(t, n_tokens, ne);
        counts[k] = count;
        if (count > c->slot_cap) continue; /* cannot happen: the cap is the count at max_tokens */
        exo_status st = be->mem_read(be->ctx, c->mem[c->slot_tensor[k]], c->offset[c->slot_tensor[k]],
                                     c->index_host + (size_t)k * (size_t)c->slot_cap, (uint64_t)count * sizeof(int32_t));
        if (st != EXO_OK) return st;
    }
    for (uint32_t k = 0; k < c->n_checks; k++) {
        const index_check *ck = &c->checks[k];
        if (counts[ck->slot] > c->slot_cap) continue;
        const exo_tensor *t = &c->tensors[ck->tensor];
        const int32_t *v = c->index_host + (size_t)ck->slot * (size_t)c->slot_cap;
        int64_t limit = ck->limit > 0 ? ck->limit : extent_of(&c->tensors[ck->bound], n_tokens, ck->dim);
        for (int64_t i = 0; i < counts[ck->slot]; i++)
            if (v[i] < 0 || v[i] >= limit)
                return gpu_fail(be, EXO_ERR_INVALID_ARG,
                                "graph_execute: node %u (%s): %s '%.*s'[%lld] = %d is outside [0, %lld)", ck->node,
                                graph_op_name(c->nodes[ck->node].op), ck->what, GRAPH_NAME_ARG(t), (long long)i, v[i],
                                (long long)limit);
    }
    return EXO_OK;
}

/* The largest position among attention node `node`'s tokens, as check_indices read them back,
 * or -1 (not read back: computed positions). */
static int64_t largest_position(const gpu_compiled *c, uint32_t node) {
    const exo_node *nd = &c->nodes[node];
    for (uint32_t k = 0; k < c->n_checks; k++) {
        const index_check *ck = &c->checks[k];
        if (ck->node != node || ck->tensor != nd->src[3] || c->slot_count[ck->slot] > c->slot_cap) continue;
        const int32_t *p = c->index_host + (size_t)ck->slot * (size_t)c->slot_cap;
        int64_t largest = -1;
        for (int64_t t = 0; t < c->slot_count[ck->slot]; t++) largest = p[t] > largest ? p[t] : largest;
        return largest;
    }
    return -1;
}

/* Enqueues what starts at node i: the first fusion (table order) whose run compile found here and
 * that fits this execution — after the RMS_NORM at i folded in, where it may be — else node i
 * alone. Returns how many nodes that covered. */
static uint32_t enqueue_at(gpu_compiled *c, gpu_exec_view *view, uint32_t i, exo_status *st) {
    const node_runs *r = &c->runs[i];
    /* The split decode attention sizes its splits by it, fused (attention + o_proj) or not. */
    if (c->nodes[i].op == EXO_OP_ATTENTION) view->attn_position = largest_position(c, i);
    for (uint32_t f = 0; f < GPU_FUSION_COUNT; f++) {
        const gpu_fusion *fu = &gpu_fusions[f];
        uint32_t len = r->norm_into & (1u << f) ? c->runs[i + 1].len[f] : 0;
        if (len && fu->fits(view, &c->nodes[i + 1], len, &c->nodes[i])) {
            *st = fu->enqueue(view, &c->nodes[i + 1], len, &c->nodes[i]);
            return 1 + len;
        }
    }
    for (uint32_t f = 0; f < GPU_FUSION_COUNT; f++) {
        const gpu_fusion *fu = &gpu_fusions[f];
        uint32_t len = r->len[f];
        if (len && fu->fits(view, &c->nodes[i], len, NULL)) {
            *st = fu->enqueue(view, &c->nodes[i], len, NULL);
            return len;
        }
    }
    *st = gpu_enqueue_node(view, &c->nodes[i], i);
    return 1;
}

exo_status gpu_graph_execute(gpu_compiled *c, const exo_exec_args *args) {
    if (!c) return EXO_ERR_INVALID_ARG;
    const gpu_backend *be = c->be;
    exo_status st = bind_tensors(c, args);
    if (st != EXO_OK) return st;
    st = check_indices(c, args->n_tokens);
    gpu_exec_view view = {be, c->tensors, c->mem, c->offset, args->n_tokens, c->attn_partials, -1, &c->moe};
    for (uint32_t i = 0; st == EXO_OK && i < c->n_nodes;) i += enqueue_at(c, &view, i, &st);
    exo_status fin = be->finish(be->ctx);
    return st != EXO_OK ? st : fin;
}
