/* The sparse MLP of a mixture-of-experts layer: router, routing (MOE_TOPK + MOE_WEIGHTS with the
 * architecture's rule), the selected experts' GLU MLPs (MOE_MATMUL) summed with their weights
 * (MOE_COMBINE), and glm4_moe's shared experts. The experts' weights come as the checkpoint
 * stores them: per-expert tensors (an expert table), stacked 3-D tensors (mlx-lm's SwitchGLU,
 * float or MLX-quantized), or gpt_oss's fused x @ W tensors, re-laid out once at load. */
#include "builder_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

/* The stacked `<block>.<stack>.<switch_proj>.weight` [E, rows, cols] of layer l (mlx-lm's
 * SwitchGLU, float or MLX-quantized: `switch_mlp` for qwen3_moe, mixtral and glm4_moe, `experts`
 * for gpt_oss), or NONE without an error when the checkpoint has none. */
static uint32_t stacked_weight(builder *b, uint32_t l, const char *block, const char *stack, const char *switch_proj,
                               int64_t rows, int64_t cols) {
    char name[160], suffix[96];
    snprintf(suffix, sizeof suffix, "%s.%s.%s.weight", block, stack, switch_proj);
    gb_lname(name, sizeof name, l, suffix);
    if (!exo_weights_has(b->weights, name)) return NONE;
    int64_t shape[3] = {b->cfg->n_experts, rows, cols};
    return gb_weight(b, name, (int32_t)l, 3, shape);
}

/* Layer l's per-expert projections proj[p] for each p with table[p] as expert tables
 * (abi/exo_plugin.h, "Mixture of experts": E weight tensors of consecutive ids per projection,
 * each where the checkpoint has it), sets w[p] to expert 0's id. The layer's tensors share
 * buffers over their byte ranges in the files (gb_expert_spans, the cap in b->max_buffer): with
 * a file's experts side by side, as safetensors writers lay them out, the whole layer is one
 * buffer, which a GPU runs as one launch per table instead of one per expert. */
static void expert_tables(builder *b, uint32_t l, const char *block, const char *const proj[3], const bool table[3],
                          const int64_t shape[3][2], uint32_t w[3]) {
    uint32_t E = b->cfg->n_experts, n = 0, n_spans = 0;
    if (gb_failed(b) || !(table[0] || table[1] || table[2])) return;
    const exo_st_tensor **ts = calloc(3 * (size_t)E, sizeof *ts);
    gb_span_item *items = calloc(3 * (size_t)E, sizeof *items);
    gb_span *spans = calloc(3 * (size_t)E, sizeof *spans);
    int32_t *bufs = malloc(3 * (size_t)E * sizeof *bufs);
    char name[160], suffix[96], module[160];
    exo_status st = ts && items && spans && bufs ? EXO_OK : exo_errorf(EXO_ERR_NO_MEMORY, "out of memory building the "
                                                                                      "expert tables");
    for (int p = 0; p < 3 && st == EXO_OK; p++)
        for (uint32_t e = 0; e < E && table[p] && st == EXO_OK; e++, n++) {
            snprintf(suffix, sizeof suffix, "%s.experts.%u.%s.weight", block, e, proj[p]);
            gb_lname(name, sizeof name, l, suffix);
            if (gb_quantized_module(b, name, 2, module, sizeof module))
                st = exo_errorf(EXO_ERR_UNSUPPORTED, "%s: tensor '%s' is quantized; quantized per-expert weights are "
                                "not supported yet (float experts are)", b->dir, name);
            else
                st = gb_checkpoint(b, name, 2, shape[p], &ts[n]);
            if (st == EXO_OK)
                items[n] = (gb_span_item){.file = ts[n]->file, .data = ts[n]->data, .nbytes = ts[n]->nbytes,
                                          .align = (uint32_t)exo_dtype_size(ts[n]->dtype)};
        }
    if (st == EXO_OK) st = gb_expert_spans(items, n, b->max_buffer, spans, &n_spans);
    if (st != EXO_OK) gb_fail(b, st);
    /* Buffers in the order their first tensor comes: with no tensors side by side, the order
     * and the buffers one tensor each have always had. */
    for (uint32_t s = 0; s < n_spans && !gb_failed(b); s++) bufs[s] = -1;
    for (uint32_t i = 0; i < n && !gb_failed(b); i++) {
        const gb_span *sp = &spans[items[i].span];
        if (bufs[items[i].span] >= 0) continue;
        if (sp->n_items == 1) {
            snprintf(name, sizeof name, "%s", ts[i]->name);
        } else {
            snprintf(suffix, sizeof suffix, "%s.experts (%u tensors)", block, sp->n_items);
            gb_lname(name, sizeof name, l, suffix);
        }
        bufs[items[i].span] = gb_add_buffer(b, sp->data, sp->size, NULL, (int32_t)l, name);
    }
    n = 0;
    for (int p = 0; p < 3 && !gb_failed(b); p++)
        for (uint32_t e = 0; e < E && table[p]; e++, n++) {
            uint32_t id = gb_tensor(b, ts[n]->dtype, EXO_TENSOR_WEIGHT, ts[n]->name, 2, shape[p]);
            exo_tensor *t = gb_tensor_at(b, id);
            t->buffer = bufs[items[n].span];
            t->offset = items[n].offset;
            if (e == 0) w[p] = id;
        }
    free(ts);
    free(items);
    free(spans);
    free(bufs);
}

/* ---------------------------------------------------------------- gpt_oss's fused experts */

/* A buffer of `size` bytes the builder fills: held by the shard's exo_quant_cache under `name`
 * (shared by the shard's plans, filled once: *fresh says whether to fill it), or owned by the
 * plan when the build has no cache. NULL after a failure. */
static void *relaid_buffer(builder *b, const char *name, uint64_t size, int32_t layer, int32_t *buf, bool *fresh) {
    exo_quant_cache *q = b->q;
    *buf = -1;
    *fresh = false;
    if (gb_failed(b)) return NULL;
    if (!q) {
        void *data = malloc(size ? size : 1);
        if (!data) return (void)gb_fail(b, exo_errorf(EXO_ERR_NO_MEMORY, "out of memory re-laying out '%s'", name)), NULL;
        *buf = gb_add_buffer(b, data, size, data, layer, name);
        *fresh = true;
        return *buf >= 0 ? data : NULL;
    }
    exo_quant_entry *e = NULL;
    for (uint32_t i = 0; i < q->n && !e; i++)
        if (strcmp(q->items[i].name, name) == 0) e = &q->items[i];
    if (!e) {
        exo_status st = gb_grow((void **)&q->items, &q->cap, q->n + 1, sizeof *q->items);
        if (st != EXO_OK) return (void)gb_fail(b, st), NULL;
        void *data = malloc(size ? size : 1);
        if (!data) return (void)gb_fail(b, exo_errorf(EXO_ERR_NO_MEMORY, "out of memory re-laying out '%s'", name)), NULL;
        e = &q->items[q->n++];
        memset(e, 0, sizeof *e);
        snprintf(e->name, sizeof e->name, "%s", name);
        e->data = data;
        e->words_bytes = size;
        *fresh = true;
    }
    *buf = gb_add_heap_buffer(b, e->data, size, layer, name);
    return *buf >= 0 ? e->data : NULL;
}

/* A stacked weight [E, rows, cols] of `dtype` over a relaid buffer. */
static uint32_t stacked_tensor(builder *b, const char *name, exo_dtype dtype, int32_t buf, int64_t E, int64_t rows,
                               int64_t cols) {
    int64_t shape[3] = {E, rows, cols};
    uint32_t id = gb_tensor(b, dtype, EXO_TENSOR_WEIGHT, name, 3, shape);
    gb_tensor_at(b, id)->buffer = buf;
    return id;
}

/* gpt_oss's checkpoints (GptOssExperts) store x @ W layouts: gate_up_proj [E, H, 2I] with gate in
 * the even and up in the odd columns, down_proj [E, I, H]. MOE_MATMUL reads [E, N, K] rows, so
 * they are transposed and de-interleaved here once, into stacked gate, up [E, I, H] and down
 * [E, H, I] of the checkpoint's dtype (a copy: no rounding, and the same bytes a decode step
 * reads as the checkpoint's). Returns false when the layer has no fused tensors. */
static bool gpt_oss_fused_experts(builder *b, uint32_t l, uint32_t w[3]) {
    const exo_model_config *c = b->cfg;
    int64_t E = c->n_experts, H = c->hidden_size, I = c->moe_intermediate_size;
    char gu_name[160], d_name[160], name[160];
    gb_lname(gu_name, sizeof gu_name, l, "mlp.experts.gate_up_proj");
    gb_lname(d_name, sizeof d_name, l, "mlp.experts.down_proj");
    if (!exo_weights_has(b->weights, gu_name)) return false;
    const exo_st_tensor *gu = NULL, *dn = NULL;
    int64_t sgu[3] = {E, H, 2 * I}, sd[3] = {E, I, H};
    exo_status st = gb_checkpoint(b, gu_name, 3, sgu, &gu);
    if (st == EXO_OK) st = gb_checkpoint(b, d_name, 3, sd, &dn);
    if (st != EXO_OK) return gb_fail(b, st), true;
    if (gu->dtype != dn->dtype)
        return gb_fail(b, exo_errorf(EXO_ERR_FORMAT, "%s: tensors '%s' (%s) and '%s' (%s) must have one dtype", gu->file,
                                     gu_name, exo_st_dtype_name(gu->dtype), d_name, exo_st_dtype_name(dn->dtype))),
               true;
    exo_dtype dt = (exo_dtype)gu->dtype;
    size_t es = exo_dtype_size(dt);
    uint64_t bytes = (uint64_t)E * (uint64_t)I * (uint64_t)H * es;
    static const char *const parts[3] = {"gate_proj", "up_proj", "down_proj"};
    uint8_t *data[3];
    int32_t buf[3];
    bool fresh[3];
    for (int p = 0; p < 3; p++) {
        snprintf(name, sizeof name, "model.layers.%u.mlp.experts.%s.weight", l, parts[p]);
        data[p] = relaid_buffer(b, name, bytes, (int32_t)l, &buf[p], &fresh[p]);
        w[p] = stacked_tensor(b, name, dt, buf[p], E, p < 2 ? I : H, p < 2 ? H : I);
    }
    if (gb_failed(b)) return true;
    const uint8_t *src = gu->data, *dsrc = dn->data;
    if (fresh[0] || fresh[1])
        for (int64_t e = 0; e < E; e++)
            for (int64_t k = 0; k < H; k++)
                for (int64_t n = 0; n < I; n++) {
                    const uint8_t *row = src + ((uint64_t)(e * H + k) * (uint64_t)(2 * I)) * es;
                    uint64_t at = ((uint64_t)(e * I + n) * (uint64_t)H + (uint64_t)k) * es;
                    memcpy(data[0] + at, row + (uint64_t)(2 * n) * es, es);
                    memcpy(data[1] + at, row + (uint64_t)(2 * n + 1) * es, es);
                }
    if (fresh[2])
        for (int64_t e = 0; e < E; e++)
            for (int64_t k = 0; k < I; k++)
                for (int64_t n = 0; n < H; n++)
                    memcpy(data[2] + ((uint64_t)(e * H + n) * (uint64_t)I + (uint64_t)k) * es,
                           dsrc + ((uint64_t)(e * I + k) * (uint64_t)H + (uint64_t)n) * es, es);
    if (fresh[0] || fresh[2]) {
        gb_drop_pages(gu);
        gb_drop_pages(dn);
    }
    return true;
}

/* An expert bias [E, n] as an F32 constant (MOE_MATMUL's src[3]): every `stride`-th value of the
 * checkpoint tensor `suffix` from `first` (gpt_oss's fused gate_up_proj_bias interleaves gate and
 * up like its weight). */
static uint32_t expert_bias(builder *b, uint32_t l, const char *suffix, int64_t width, int64_t n, int64_t first,
                            int64_t stride, const char *name) {
    const exo_model_config *c = b->cfg;
    char full[160];
    const exo_st_tensor *t = NULL;
    int64_t E = c->n_experts, shape[2] = {E, width};
    if (gb_failed(b)) return NONE;
    exo_status st = gb_checkpoint(b, gb_lname(full, sizeof full, l, suffix), 2, shape, &t);
    if (st != EXO_OK) return gb_fail(b, st);
    float *v = malloc((size_t)(E * n) * sizeof *v);
    if (!v) return gb_fail(b, exo_errorf(EXO_ERR_NO_MEMORY, "out of memory converting '%s'", full));
    for (int64_t e = 0; e < E; e++)
        for (int64_t i = 0; i < n; i++)
            v[e * n + i] = gb_to_f32(t->data, (exo_dtype)t->dtype, (uint64_t)(e * width + first + i * stride));
    gb_lname(full, sizeof full, l, name);
    uint32_t id = gb_constant_f32(b, v, E * n, (int32_t)l, full);
    exo_tensor *tt = gb_tensor_at(b, id);
    tt->n_dims = 2; /* [E, n]: ne = {n, E} */
    tt->ne[0] = n;
    tt->ne[1] = E;
    return id;
}

/* gpt_oss's experts and their biases: the fused hub tensors, or mlx-lm's split stacked ones
 * (`mlp.experts.{gate,up,down}_proj.{weight,bias}`, float or MLX-quantized). */
static void gpt_oss_experts(builder *b, uint32_t l, uint32_t w[3], uint32_t bias[3]) {
    const exo_model_config *c = b->cfg;
    int64_t H = c->hidden_size, I = c->moe_intermediate_size;
    if (gpt_oss_fused_experts(b, l, w)) {
        bias[0] = expert_bias(b, l, "mlp.experts.gate_up_proj_bias", 2 * I, I, 0, 2, "mlp.experts.gate_proj.bias");
        bias[1] = expert_bias(b, l, "mlp.experts.gate_up_proj_bias", 2 * I, I, 1, 2, "mlp.experts.up_proj.bias");
        bias[2] = expert_bias(b, l, "mlp.experts.down_proj_bias", H, H, 0, 1, "mlp.experts.down_proj.bias");
        return;
    }
    static const char *const parts[3] = {"gate_proj", "up_proj", "down_proj"};
    char suffix[96];
    for (int p = 0; p < 3; p++) {
        int64_t rows = p < 2 ? I : H, cols = p < 2 ? H : I;
        w[p] = stacked_weight(b, l, "mlp", "experts", parts[p], rows, cols);
        if (w[p] == NONE && !gb_failed(b))
            gb_fail(b, exo_errorf(EXO_ERR_FORMAT, "%s: layer %u has neither 'model.layers.%u.mlp.experts.%s.weight' "
                                  "nor a fused 'mlp.experts.gate_up_proj'", b->dir, l, l, parts[p]));
        snprintf(suffix, sizeof suffix, "mlp.experts.%s.bias", parts[p]);
        bias[p] = expert_bias(b, l, suffix, rows, rows, 0, 1, suffix);
    }
}

/* ---------------------------------------------------------------- the sparse MLP */

/* glm4_moe's shared experts (Glm4MoeMLP of width moe_intermediate_size * n_shared_experts): a
 * dense SwiGLU every token takes, added to the routed output. */
static uint32_t shared_experts(builder *b, uint32_t l, uint32_t h) {
    const exo_model_config *c = b->cfg;
    int64_t H = c->hidden_size, S = (int64_t)c->moe_intermediate_size * c->n_shared_experts;
    char n1[160];
    int64_t sgu[2] = {S, H}, sd[2] = {H, S};
    uint32_t wg = gb_weight(b, gb_lname(n1, sizeof n1, l, "mlp.shared_experts.gate_proj.weight"), (int32_t)l, 2, sgu);
    uint32_t wu = gb_weight(b, gb_lname(n1, sizeof n1, l, "mlp.shared_experts.up_proj.weight"), (int32_t)l, 2, sgu);
    uint32_t wd = gb_weight(b, gb_lname(n1, sizeof n1, l, "mlp.shared_experts.down_proj.weight"), (int32_t)l, 2, sd);
    uint32_t g = gb_projection(b, l, h, wg, NULL, S, 0, "shared_gate");
    uint32_t u = gb_projection(b, l, h, wu, NULL, S, 0, "shared_up");
    uint32_t m = gb_activation(b, "shared_glu", 1, S, 0);
    gb_node(b, EXO_OP_GLU, m, 2, (uint32_t[]){g, u})->i[EXO_GLU_I_ACT] = c->activation;
    return gb_projection(b, l, m, wd, NULL, H, 0, "shared_out");
}

/* An expert projection over the selected experts: MOE_MATMUL, with the experts' bias if any. */
static uint32_t expert_matmul(builder *b, uint32_t x, uint32_t ids, uint32_t w, uint32_t bias, int64_t n,
                              const char *name) {
    int64_t K = b->cfg->n_experts_per_tok;
    uint32_t out = gb_activation(b, name, 2, K, n);
    exo_node *nd = gb_node(b, EXO_OP_MOE_MATMUL, out, bias != NONE ? 4 : 3, (uint32_t[]){x, ids, w, bias});
    nd->i[EXO_MOE_MATMUL_I_N_EXPERTS] = (int32_t)b->cfg->n_experts;
    return out;
}

/* The sparse MLP of a MoE layer over the normed input h (Qwen3MoeSparseMoeBlock,
 * MixtralSparseMoeBlock, GptOssMLP, Glm4MoeMoE): router logits (gpt_oss: with a bias), the
 * architecture's routing rule picks k experts (ties to the lower id) and weighs them (softmax
 * over all E, optionally renormalised; gpt_oss: softmax over the k logits; glm4_moe: sigmoid,
 * selected with e_score_correction_bias, normalised, times routed_scaling_factor), then each
 * selected expert's GLU MLP (gpt_oss: clamped SwiGLU with biases), summed with those weights,
 * plus glm4_moe's shared experts. */
uint32_t gb_moe_mlp(builder *b, uint32_t l, uint32_t h) {
    const exo_model_config *c = b->cfg;
    int64_t H = c->hidden_size, I = c->moe_intermediate_size, E = c->n_experts, K = c->n_experts_per_tok;
    bool mixtral = c->arch == EXO_ARCH_MIXTRAL, gpt_oss = c->arch == EXO_ARCH_GPT_OSS;
    const char *block = mixtral ? "block_sparse_moe" : "mlp";
    char n1[160], n2[160], suffix[96];
    snprintf(suffix, sizeof suffix, "%s.%s.weight", block, gpt_oss ? "router" : "gate");
    int64_t sr[2] = {E, H};
    uint32_t router = gb_weight(b, gb_lname(n1, sizeof n1, l, suffix), (int32_t)l, 2, sr);
    const char *router_bias = gpt_oss ? gb_lname(n2, sizeof n2, l, "mlp.router.bias") : NULL;
    uint32_t logits = gb_projection(b, l, h, router, router_bias, E, 0, "router_logits");
    int64_t slots[2] = {EXO_DIM_TOKENS, K};
    uint32_t ids = gb_tensor(b, EXO_DTYPE_I32, 0, "moe_ids", 2, slots);
    bool sigmoid = c->moe_rule == EXO_MOE_RULE_SIGMOID_BIAS;
    uint32_t selection_bias =
        sigmoid ? gb_vector_f32(b, gb_lname(n1, sizeof n1, l, "mlp.gate.e_score_correction_bias"), (int32_t)l, E)
                : NONE;
    exo_node *n = gb_node(b, EXO_OP_MOE_TOPK, ids, sigmoid ? 2 : 1, (uint32_t[]){logits, selection_bias});
    n->i[EXO_MOE_TOPK_I_K] = (int32_t)K;
    n->i[EXO_MOE_TOPK_I_RULE] = c->moe_rule;
    uint32_t w = gb_tensor(b, EXO_DTYPE_F32, 0, "moe_weights", 2, slots);
    n = gb_node(b, EXO_OP_MOE_WEIGHTS, w, 2, (uint32_t[]){logits, ids});
    n->i[EXO_MOE_WEIGHTS_I_RULE] = c->moe_rule;
    n->i[EXO_MOE_WEIGHTS_I_NORMALIZE] = c->norm_topk_prob ? 1 : 0;
    n->f[EXO_MOE_WEIGHTS_F_SCALE] = c->routed_scaling_factor;

    uint32_t we[3], bias[3] = {NONE, NONE, NONE};
    if (gpt_oss) {
        gpt_oss_experts(b, l, we, bias);
    } else {
        /* mlx-lm's stacked switch_mlp where the checkpoint has it, else the hub's per-expert tables. */
        static const char *const parts[3] = {"gate_proj", "up_proj", "down_proj"};
        static const char *const mixtral_parts[3] = {"w1", "w3", "w2"};
        const int64_t shape[3][2] = {{I, H}, {I, H}, {H, I}};
        bool table[3];
        for (int p = 0; p < 3; p++) {
            we[p] = stacked_weight(b, l, block, "switch_mlp", parts[p], shape[p][0], shape[p][1]);
            table[p] = we[p] == NONE;
        }
        expert_tables(b, l, block, mixtral ? mixtral_parts : parts, table, shape, we);
    }
    uint32_t g = expert_matmul(b, h, ids, we[0], bias[0], I, "moe_gate");
    uint32_t u = expert_matmul(b, h, ids, we[1], bias[1], I, "moe_up");
    uint32_t m = gb_activation(b, "moe_glu", 2, K, I);
    n = gb_node(b, EXO_OP_GLU, m, 2, (uint32_t[]){g, u});
    n->i[EXO_GLU_I_ACT] = c->expert_activation;
    if (c->expert_activation == EXO_ACT_SWIGLU_CLAMP) {
        n->f[EXO_GLU_F_ALPHA] = c->swiglu_alpha;
        n->f[EXO_GLU_F_LIMIT] = c->swiglu_limit;
    }
    uint32_t d = expert_matmul(b, m, ids, we[2], bias[2], H, "moe_down");
    uint32_t out = gb_activation(b, c->n_shared_experts ? "moe_routed" : "mlp_out", 1, H, 0);
    gb_node(b, EXO_OP_MOE_COMBINE, out, 2, (uint32_t[]){d, w});
    if (c->n_shared_experts == 0) return out;
    return gb_add(b, out, shared_experts(b, l, h), H, "mlp_out");
}
