/* gpu_moe.c — expert tables and the MoE launches (see gpu_moe.h). Argument lists follow the
 * kernels' parameter lists in kernels/moe.cl one for one. */
#include "gpu_moe.h"

#include "gpu_target.h"
#include "graph_ir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MOE_ABSENT 0xffffffffu /* EXO_MOE_ABSENT */

/* Expert e's (memory, element offset) for its weight, scales and biases: offsets in words for
 * MLX_AFFINE codes, in elements of their dtype otherwise ("Mixture of experts" in the ABI). */
typedef struct expert_at {
    gpu_mem *mem[3];
    uint64_t off[3];
} expert_at;

static expert_at locate(const exo_tensor *tensors, gpu_mem *const *mem, const uint64_t *offset, uint32_t w0, uint32_t e) {
    const exo_tensor *w = &tensors[w0];
    expert_at at;
    bool stacked = w->n_dims == 3;
    uint32_t t = stacked ? w0 : w0 + e;
    uint64_t per = stacked ? (uint64_t)w->ne[0] * (uint64_t)w->ne[1] : 0; /* elements per expert */
    if (w->dtype == EXO_DTYPE_MLX_AFFINE) {
        const exo_tensor *wt = &tensors[t];
        uint32_t sid[2] = {wt->q_scales, wt->q_biases};
        at.mem[0] = mem[t];
        at.off[0] = offset[t] / 4 + (uint64_t)e * (stacked ? per * w->q_bits / 32 : 0);
        for (int i = 0; i < 2; i++) {
            at.mem[1 + i] = mem[sid[i]];
            at.off[1 + i] = offset[sid[i]] / exo_dtype_size(tensors[sid[i]].dtype) + (uint64_t)e * (stacked ? per / w->q_group : 0);
        }
    } else {
        at.mem[0] = at.mem[1] = at.mem[2] = mem[t];
        at.off[0] = offset[t] / exo_dtype_size(w->dtype) + (uint64_t)e * per;
        at.off[1] = at.off[2] = 0;
    }
    return at;
}

void gpu_moe_plan_free(const gpu_backend *be, gpu_moe_plan *plan) {
    if (plan->tables) be->mem_free(be->ctx, plan->tables);
    if (plan->work) be->mem_free(be->ctx, plan->work);
    free(plan->first);
    free(plan->count);
    free(plan->groups);
    memset(plan, 0, sizeof *plan);
}

/* Rows a prefill MOE_MATMUL of `total` (token, slot) rows over `experts` sorts into: at most
 * one partial tile per active expert on top of the full ones. */
static uint64_t max_tiles(uint64_t total, uint64_t experts) {
    return (total + 63) / 64 + (experts < total ? experts : total);
}

exo_status gpu_moe_plan_build(const gpu_backend *be, const exo_tensor *tensors, const exo_node *nodes, uint32_t n_nodes,
                              gpu_mem *const *mem, const uint64_t *offset, uint32_t max_tokens, gpu_moe_plan *plan) {
    memset(plan, 0, sizeof *plan);
    uint64_t n_tables = 0, work = 0;
    for (uint32_t i = 0; i < n_nodes; i++)
        if (nodes[i].op == EXO_OP_MOE_MATMUL) {
            uint64_t experts = (uint64_t)nodes[i].i[EXO_MOE_MATMUL_I_N_EXPERTS];
            uint64_t total = (uint64_t)graph_tensor_bytes(&tensors[nodes[i].src[1]], max_tokens) / 4;
            n_tables += experts; /* at most one group per expert */
            uint64_t need = total + 3 * max_tiles(total, experts);
            work = need > work ? need : work;
        }
    if (n_tables == 0) return EXO_OK;
    plan->first = calloc(n_nodes, sizeof *plan->first);
    plan->count = calloc(n_nodes, sizeof *plan->count);
    plan->groups = calloc(n_tables, sizeof *plan->groups);
    uint64_t cap = 3 * n_tables; /* one group per node; grown where experts span buffers */
    uint32_t *host = malloc(sizeof *host * cap);
    if (!plan->first || !plan->count || !plan->groups || !host) {
        free(host);
        gpu_moe_plan_free(be, plan);
        return gpu_fail(be, EXO_ERR_NO_MEMORY, "graph_compile: out of memory for the expert tables");
    }
    uint32_t used = 0; /* uints of host */
    for (uint32_t i = 0; i < n_nodes; i++) {
        const exo_node *nd = &nodes[i];
        if (nd->op != EXO_OP_MOE_MATMUL) continue;
        uint32_t experts = (uint32_t)nd->i[EXO_MOE_MATMUL_I_N_EXPERTS];
        plan->first[i] = plan->n_groups;
        for (uint32_t e = 0; e < experts; e++) {
            expert_at at = locate(tensors, mem, offset, nd->src[2], e);
            uint32_t g = plan->first[i];
            while (g < plan->n_groups && !(plan->groups[g].w == at.mem[0] && plan->groups[g].scales == at.mem[1] &&
                                           plan->groups[g].biases == at.mem[2]))
                g++;
            if (g == plan->n_groups) {
                if (used + 3 * (uint64_t)experts > cap) {
                    uint32_t *grown = realloc(host, sizeof *host * (cap = used + 3 * (uint64_t)experts + cap));
                    if (!grown) {
                        free(host);
                        gpu_moe_plan_free(be, plan);
                        return gpu_fail(be, EXO_ERR_NO_MEMORY, "graph_compile: out of memory for the expert tables");
                    }
                    host = grown;
                }
                plan->groups[g] = (gpu_moe_group){at.mem[0], at.mem[1], at.mem[2], used};
                plan->n_groups++;
                for (uint32_t j = 0; j < 3 * experts; j++) host[used + j] = MOE_ABSENT;
                used += 3 * experts;
            }
            for (int j = 0; j < 3; j++) {
                if (at.off[j] >= MOE_ABSENT) { /* the validator's 32-bit reach makes this unreachable */
                    free(host);
                    gpu_moe_plan_free(be, plan);
                    return gpu_fail(be, EXO_ERR_UNSUPPORTED, "graph_compile: node %u (MOE_MATMUL): expert %u lies past "
                                    "the kernels' 32-bit element offsets", i, e);
                }
                host[plan->groups[g].table + 3 * e + (uint32_t)j] = (uint32_t)at.off[j];
            }
        }
        plan->count[i] = plan->n_groups - plan->first[i];
    }
    if (be->host->log) {
        char line[120];
        snprintf(line, sizeof line, "expert tables: %u launch groups over the MOE_MATMUL nodes, %u bytes", plan->n_groups,
                 used * 4);
        be->host->log(be->host->host_ctx, EXO_LOG_DEBUG, be->name, line);
    }
    exo_status st = be->mem_alloc(be->ctx, (uint64_t)used * 4, &plan->tables);
    if (st == EXO_OK) st = be->mem_write(be->ctx, plan->tables, 0, host, (uint64_t)used * 4);
    free(host);
    plan->work_uints = work;
    if (st == EXO_OK) st = be->mem_alloc(be->ctx, work * 4, &plan->work);
    if (st != EXO_OK) gpu_moe_plan_free(be, plan);
    return st;
}

/* ---------------------------------------------------------------- launches */

static exo_status enqueue_matmul(const gpu_exec_view *v, const exo_node *nd, uint32_t index) {
    const gpu_moe_plan *plan = v->moe;
    const exo_tensor *w0 = &v->tensors[nd->src[2]];
    int64_t k = w0->ne[0], n = w0->ne[1];
    int64_t ine[EXO_MAX_DIMS];
    int64_t total = gpu_view_count(v, nd->src[1], ine), slots = ine[0], tokens = total / slots;
    int per_slot = gpu_view_count(v, nd->src[0], NULL) == total * k;
    uint32_t experts = (uint32_t)nd->i[EXO_MOE_MATMUL_I_N_EXPERTS];
    bool has_bias = nd->n_src >= 4;
    bool mlx = w0->dtype == EXO_DTYPE_MLX_AFFINE;
    int q_type = mlx ? v->tensors[w0->q_scales].dtype : 0;
    bool tiled = tokens > GPU_MATVEC_MAX_TOKENS;
    uint64_t tiles = max_tiles((uint64_t)total, experts);
    uint32_t rows_at = (uint32_t)(3 * tiles); /* the sorted rows follow the tiles in the work area */
    gpu_builder b;
    if (tiled) {
        gpu_build_start(&b, v, "exo_moe_sort");
        gpu_build_tensor(&b, nd->src[1]);
        gpu_build_mem(&b, plan->work, 0);
        gpu_build_mem(&b, plan->work, rows_at);
        gpu_build_tensor(&b, nd->dst);
        gpu_build_u32(&b, (uint64_t)total);
        gpu_build_u32(&b, experts);
        gpu_build_u32(&b, (uint64_t)n);
        gpu_build_u32(&b, tiles);
        exo_status st = gpu_build_go(&b, 1, (uint64_t[3]){256, 1, 1}, (size_t[3]){256, 1, 1});
        if (st != EXO_OK) return st;
    }
    for (uint32_t gi = 0; gi < plan->count[index]; gi++) {
        const gpu_moe_group *g = &plan->groups[plan->first[index] + gi];
        gpu_build_start(&b, v, tiled ? "exo_moe_tiled" : "exo_moe_matvec");
        gpu_build_tensor(&b, nd->src[0]);
        if (tiled) {
            gpu_build_mem(&b, plan->work, 0);
            gpu_build_mem(&b, plan->work, rows_at);
        } else {
            gpu_build_tensor(&b, nd->src[1]);
        }
        gpu_build_mem(&b, plan->tables, g->table);
        gpu_build_mem(&b, g->w, 0);
        gpu_build_mem(&b, g->scales, 0);
        gpu_build_mem(&b, g->biases, 0);
        gpu_build_i32(&b, w0->dtype);
        gpu_build_i32(&b, q_type);
        gpu_build_u32(&b, w0->q_bits);
        gpu_build_u32(&b, w0->q_group);
        gpu_build_tensor(&b, has_bias ? nd->src[3] : nd->dst);
        gpu_build_i32(&b, has_bias);
        gpu_build_tensor(&b, nd->dst);
        gpu_build_u32(&b, (uint64_t)slots);
        gpu_build_i32(&b, per_slot);
        gpu_build_u32(&b, (uint64_t)k);
        gpu_build_u32(&b, (uint64_t)n);
        exo_status st;
        if (tiled) /* 64 x 64 outputs per 16 x 16 work-group, one tile of one expert's rows each */
            st = gpu_build_go(&b, 2, (uint64_t[3]){(uint64_t)(n + 63) / 64 * 16, tiles * 16, 1}, (size_t[3]){16, 16, 1});
        else {
            gpu_build_u32(&b, experts);
            st = gpu_build_go(&b, 2, (uint64_t[3]){(uint64_t)n * 64, (uint64_t)total, 1}, (size_t[3]){64, 1, 1});
        }
        if (st != EXO_OK) return st;
    }
    return EXO_OK;
}

exo_status gpu_moe_enqueue(const gpu_exec_view *v, const exo_node *nd, uint32_t index) {
    gpu_builder b;
    int64_t ne[EXO_MAX_DIMS];
    switch (nd->op) {
    case EXO_OP_MOE_TOPK: {
        int64_t count = gpu_view_count(v, nd->src[0], ne), tokens = count / ne[0];
        int rule = nd->i[EXO_MOE_TOPK_I_RULE];
        bool bias = rule == EXO_MOE_RULE_SIGMOID_BIAS;
        gpu_build_start(&b, v, "exo_moe_topk");
        gpu_build_tensor(&b, nd->src[0]);
        gpu_build_tensor(&b, bias ? nd->src[1] : nd->src[0]);
        gpu_build_tensor(&b, nd->dst);
        gpu_build_u32(&b, (uint64_t)tokens);
        gpu_build_u32(&b, (uint64_t)ne[0]);
        gpu_build_u32(&b, (uint64_t)nd->i[EXO_MOE_TOPK_I_K]);
        gpu_build_i32(&b, rule);
        return gpu_build_go(&b, 1, (uint64_t[3]){(uint64_t)tokens, 1, 1}, (size_t[3]){64, 1, 1});
    }
    case EXO_OP_MOE_WEIGHTS: {
        int64_t count = gpu_view_count(v, nd->src[0], ne), tokens = count / ne[0];
        int64_t ine[EXO_MAX_DIMS];
        gpu_view_count(v, nd->src[1], ine);
        gpu_build_start(&b, v, "exo_moe_weights");
        gpu_build_tensor(&b, nd->src[0]);
        gpu_build_tensor(&b, nd->src[1]);
        gpu_build_tensor(&b, nd->dst);
        gpu_build_u32(&b, (uint64_t)tokens);
        gpu_build_u32(&b, (uint64_t)ne[0]);
        gpu_build_u32(&b, (uint64_t)ine[0]);
        gpu_build_i32(&b, nd->i[EXO_MOE_WEIGHTS_I_RULE]);
        gpu_build_i32(&b, nd->i[EXO_MOE_WEIGHTS_I_NORMALIZE]);
        gpu_build_f32(&b, nd->f[EXO_MOE_WEIGHTS_F_SCALE]);
        return gpu_build_go(&b, 1, (uint64_t[3]){(uint64_t)tokens, 1, 1}, (size_t[3]){64, 1, 1});
    }
    case EXO_OP_MOE_MATMUL: return enqueue_matmul(v, nd, index);
    case EXO_OP_MOE_COMBINE: {
        int64_t wne[EXO_MAX_DIMS];
        int64_t count = gpu_view_count(v, nd->dst, NULL);
        gpu_view_count(v, nd->src[1], wne);
        gpu_view_count(v, nd->src[0], ne);
        int64_t n = ne[0]; /* y [T, k, N] */
        gpu_build_start(&b, v, "exo_moe_combine");
        gpu_build_tensor(&b, nd->src[0]);
        gpu_build_tensor(&b, nd->src[1]);
        gpu_build_tensor(&b, nd->dst);
        gpu_build_u32(&b, (uint64_t)wne[0]);
        gpu_build_u32(&b, (uint64_t)n);
        gpu_build_u32(&b, (uint64_t)count);
        return gpu_build_go_1d(&b, (uint64_t)count);
    }
    default: break;
    }
    return gpu_fail(v->be, EXO_ERR_INTERNAL, "graph_execute: node %u has op %d, which is not a MoE op", index, (int)nd->op);
}
