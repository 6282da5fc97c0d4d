/* moe.cl — mixture of experts (abi/exo_plugin.h, "Mixture of experts"): the routing pair
 * (MOE_TOPK, MOE_WEIGHTS), the expert-indexed matmul (MOE_MATMUL) and the weighted sum over the
 * k slots (MOE_COMBINE).
 *
 * The experts' weights reach the matmul kernels through a per-node table the executor writes
 * once at compile time (gpu_graph.c): three uints per expert, the element offsets of its weight
 * (in words for MLX_AFFINE), scales and biases inside the launch's weight/scales/biases
 * buffers, or EXO_MOE_ABSENT for an expert whose tensors lie in another buffer (a table whose
 * experts span several buffers takes one launch per buffer; each launch skips the others'
 * experts). A stacked [E, N, K] weight is the same table with evenly spaced offsets. The ids
 * are read on the device: a decode step needs no host round trip and reads only the selected
 * experts' rows. Weights are read by runtime dtype (EXO_F32/F16/BF16 through exo_load, EXO_MLX
 * dequantized as in matmul.cl). Ids outside [0, E) (never produced by exo_moe_topk; INPUT ids
 * are range-checked on the host first) give NaN rows, never a read out of bounds. */
#define EXO_MLX 5 /* EXO_DTYPE_MLX_AFFINE */
#define EXO_MOE_ABSENT 0xffffffffu
#define EXO_MOE_MAX_E 512 /* GPU_MOE_MAX_EXPERTS in gpu_kernels.h */
#define EXO_MOE_RULE_SOFTMAX 0
#define EXO_MOE_RULE_SIGMOID_BIAS 1
#define EXO_MOE_RULE_TOPK_SOFTMAX 2

static inline float exo_sigmoid(float v) { return 1.0f / (1.0f + exp(-v)); }

/* MOE_TOPK: one work-item per token picks the k best experts by the rule's score (SOFTMAX:
 * softmax over the E logits, in float; SIGMOID_BIAS: sigmoid(logit) + bias[e]; TOPK_SOFTMAX:
 * the raw logit). Strict > keeps the lower id on ties; a NaN score is never preferred. */
__kernel void exo_moe_topk(__global const float *scores, uint s_off, __global const float *bias, uint b_off,
                           __global int *ids, uint ids_off, uint tokens, uint experts, uint k, int rule) {
    uint t = get_global_id(0);
    if (t >= tokens) return;
    __global const float *l = scores + s_off + (size_t)t * experts;
    float mx = l[0], sum = 0.0f;
    if (rule == EXO_MOE_RULE_SOFTMAX) {
        for (uint e = 1; e < experts; e++) mx = fmax(mx, l[e]);
        for (uint e = 0; e < experts; e++) sum += exp(l[e] - mx);
    }
    uint taken[EXO_MOE_MAX_E / 32];
    for (uint i = 0; i < EXO_MOE_MAX_E / 32; i++) taken[i] = 0u;
    for (uint j = 0; j < k; j++) {
        int best = -1;
        float best_s = 0.0f;
        for (uint e = 0; e < experts; e++) {
            if (taken[e >> 5] & (1u << (e & 31u))) continue;
            float s = rule == EXO_MOE_RULE_SOFTMAX        ? exp(l[e] - mx) / sum
                      : rule == EXO_MOE_RULE_SIGMOID_BIAS ? exo_sigmoid(l[e]) + bias[b_off + e]
                                                          : l[e];
            if (best < 0 || s > best_s) {
                best = (int)e;
                best_s = s;
            }
        }
        taken[(uint)best >> 5] |= 1u << ((uint)best & 31u);
        ids[ids_off + t * k + j] = best;
    }
}

/* MOE_WEIGHTS: one work-item per token weighs its k experts (SOFTMAX: their probability among
 * all E, optionally renormalised over the k; SIGMOID_BIAS: sigmoid(logit), optionally divided
 * by (sum + 1e-20); TOPK_SOFTMAX: softmax over the k selected logits), then times scale. */
__kernel void exo_moe_weights(__global const float *scores, uint s_off, __global const int *ids, uint ids_off,
                              __global float *w, uint w_off, uint tokens, uint experts, uint k, int rule,
                              int normalize, float scale) {
    uint t = get_global_id(0);
    if (t >= tokens) return;
    __global const float *l = scores + s_off + (size_t)t * experts;
    __global const int *id = ids + ids_off + t * k;
    __global float *out = w + w_off + t * k;
    for (uint j = 0; j < k; j++)
        if (id[j] < 0 || (uint)id[j] >= experts) {
            for (uint i = 0; i < k; i++) out[i] = NAN;
            return;
        }
    float mx = -INFINITY, sum = 0.0f, picked = 0.0f;
    if (rule == EXO_MOE_RULE_SOFTMAX) {
        for (uint e = 0; e < experts; e++) mx = fmax(mx, l[e]);
        for (uint e = 0; e < experts; e++) sum += exp(l[e] - mx);
    } else if (rule == EXO_MOE_RULE_TOPK_SOFTMAX) {
        for (uint j = 0; j < k; j++) mx = fmax(mx, l[id[j]]);
        for (uint j = 0; j < k; j++) sum += exp(l[id[j]] - mx);
    }
    for (uint j = 0; j < k; j++) {
        float v = l[id[j]];
        float p = rule == EXO_MOE_RULE_SIGMOID_BIAS ? exo_sigmoid(v) : exp(v - mx) / sum;
        out[j] = p;
        picked += p;
    }
    float div = !normalize ? 1.0f : rule == EXO_MOE_RULE_SIGMOID_BIAS ? picked + 1e-20f : picked;
    for (uint j = 0; j < k; j++) out[j] = out[j] / div * scale;
}

/* MOE_COMBINE: dst[t, i] = sum over j of w[t, j] * y[t, j, i], the slots in order. */
__kernel void exo_moe_combine(__global const float *y, uint y_off, __global const float *w, uint w_off,
                              __global float *dst, uint dst_off, uint k, uint n, uint count) {
    uint i = get_global_id(0);
    if (i >= count) return;
    uint t = i / n, c = i % n;
    float acc = 0.0f;
    for (uint j = 0; j < k; j++) acc = fma(w[w_off + t * k + j], y[y_off + ((size_t)t * k + j) * n + c], acc);
    dst[dst_off + i] = acc;
}

/* The expert operand every MOE_MATMUL kernel takes: the table, the weight/scales/biases buffers
 * (their own offsets unused: the table's are absolute) and how to read them. */
#define EXO_MOE_W_PARAMS                                                                            \
    __global const uint *tab, uint tab_off, __global const uchar *w, uint w_off0, __global const uchar *sc, \
        uint sc_off0, __global const uchar *bi, uint bi_off0, int w_type, int q_type, uint bits, uint group

/* Weight (gn, gk) of the expert whose table entry starts at te. */
static inline float exo_moe_w(__global const uint *tab, uint te, __global const uchar *w, __global const uchar *sc,
                              __global const uchar *bi, int w_type, int q_type, uint bits, uint group, uint k,
                              uint gn, uint gk) {
    if (w_type == EXO_MLX)
        return exo_mlx_load((__global const uint *)w, tab[te], sc, tab[te + 1u], bi, tab[te + 2u], q_type, bits, group,
                            k, gn, gk);
    return exo_load(w, tab[te] + gn * k + gk, w_type);
}

/* Decode: work-group (row, s) computes dst[s, row] for (token, slot) pair s = t * slots + j,
 * EXO_MV_WG items striding over K, a local tree summing them. x row: s (per_slot) or t. */
__kernel void exo_moe_matvec(__global const float *x, uint x_off, __global const int *ids, uint ids_off,
                             EXO_MOE_W_PARAMS, __global const float *bias, uint bias_off, int has_bias,
                             __global float *dst, uint dst_off, uint slots, int per_slot, uint k, uint n,
                             uint experts) {
    __local float partial[EXO_MV_WG];
    uint row = get_group_id(0), s = get_group_id(1), lid = get_local_id(0);
    int id = ids[ids_off + s];
    if (id < 0 || (uint)id >= experts) { /* the whole group leaves together (no barrier reached) */
        if (lid == 0 && row < n) dst[dst_off + (size_t)s * n + row] = NAN;
        return;
    }
    uint te = tab_off + 3u * (uint)id;
    if (tab[te] == EXO_MOE_ABSENT) return; /* this expert is another launch's */
    __global const float *xr = x + x_off + (size_t)(per_slot ? s : s / slots) * k;
    float acc[1] = {0.0f};
    if (row < n) {
        if (w_type == EXO_MLX)
            acc[0] = exo_mlx_row_dot((__global const uint *)w, tab[te], sc, tab[te + 1u], bi, tab[te + 2u], q_type, bits,
                                     group, k, row, xr, lid, EXO_MV_WG);
        else
            for (uint j = lid; j < k; j += EXO_MV_WG) acc[0] = fma(exo_load(w, tab[te] + row * k + j, w_type), xr[j], acc[0]);
    }
    partial[lid] = acc[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint h = EXO_MV_WG / 2; h > 0; h >>= 1) {
        if (lid < h) partial[lid] += partial[lid + h];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0 && row < n)
        dst[dst_off + (size_t)s * n + row] = partial[0] + (has_bias ? bias[bias_off + (uint)id * n + row] : 0.0f);
}

/* Prefill, step 1 (one work-group): the (token, slot) rows grouped by expert. rows[] gets the
 * row indices expert by expert; tiles[3 * i ..] = (expert, first position in rows[], count <=
 * EXO_GEMM_BM) for every tile of an expert's rows, EXO_MOE_ABSENT past the last, up to
 * max_tiles. Rows with an id outside [0, experts) are written as NaN here and left out. The
 * order of rows within an expert does not matter: each output row is computed the same way
 * whichever tile holds it. */
__kernel void exo_moe_sort(__global const int *ids, uint ids_off, __global uint *tiles, uint tiles_off,
                           __global uint *rows, uint rows_off, __global float *dst, uint dst_off, uint total,
                           uint experts, uint n, uint max_tiles) {
    __local uint count[EXO_MOE_MAX_E], cursor[EXO_MOE_MAX_E];
    uint lid = get_local_id(0), ls = get_local_size(0);
    for (uint e = lid; e < experts; e += ls) count[e] = 0u;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint r = lid; r < total; r += ls) {
        int id = ids[ids_off + r];
        if (id >= 0 && (uint)id < experts)
            atomic_inc(&count[id]);
        else
            for (uint c = 0; c < n; c++) dst[dst_off + (size_t)r * n + c] = NAN;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid == 0) {
        uint pos = 0, nt = 0;
        for (uint e = 0; e < experts; e++) {
            cursor[e] = pos;
            for (uint s = 0; s < count[e] && nt < max_tiles; s += EXO_GEMM_BM, nt++) {
                tiles[tiles_off + 3u * nt] = e;
                tiles[tiles_off + 3u * nt + 1u] = pos + s;
                tiles[tiles_off + 3u * nt + 2u] = min((uint)EXO_GEMM_BM, count[e] - s);
            }
            pos += count[e];
        }
        for (; nt < max_tiles; nt++) tiles[tiles_off + 3u * nt] = EXO_MOE_ABSENT;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint r = lid; r < total; r += ls) {
        int id = ids[ids_off + r];
        if (id >= 0 && (uint)id < experts) rows[rows_off + atomic_inc(&cursor[id])] = r;
    }
}

/* Prefill, step 2: work-group (column block, tile) computes one tile's rows (all of one expert)
 * against that expert's weights, 64x64 outputs per 16x16 items as exo_matmul_tiled_* does, and
 * scatters them to their (token, slot) rows of dst. Tiles past the last, or of an expert in
 * another launch's buffer, leave at once. */
__kernel void exo_moe_tiled(__global const float *x, uint x_off, __global const uint *tiles, uint tiles_off,
                            __global const uint *rows, uint rows_off, EXO_MOE_W_PARAMS, __global const float *bias,
                            uint bias_off, int has_bias, __global float *dst, uint dst_off, uint slots, int per_slot,
                            uint k, uint n) {
    __local uint rl[EXO_GEMM_BM];
    uint tile = get_group_id(1), lt = get_local_id(1) * EXO_GEMM_TS + get_local_id(0);
    uint e = tiles[tiles_off + 3u * tile];
    if (e == EXO_MOE_ABSENT) return;
    uint te = tab_off + 3u * e;
    if (tab[te] == EXO_MOE_ABSENT) return;
    uint first = tiles[tiles_off + 3u * tile + 1u], m = tiles[tiles_off + 3u * tile + 2u];
    if (lt < EXO_GEMM_BM) {
        uint r = lt < m ? rows[rows_off + first + lt] : 0u;
        rl[lt] = r;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
#define EXO_MOE_X(gm, gk) x[x_off + (size_t)(per_slot ? rl[gm] : rl[gm] / slots) * k + (gk)]
#define EXO_MOE_W(gn, gk) exo_moe_w(tab, te, w, sc, bi, w_type, q_type, bits, group, k, (gn), (gk))
#define EXO_MOE_STORE(gm, gn, v) \
    dst[dst_off + (size_t)rl[gm] * n + (gn)] = (v) + (has_bias ? bias[bias_off + e * n + (gn)] : 0.0f)
    EXO_GEMM_BLOCK(m, n, k, 0u, get_group_id(0) * EXO_GEMM_BM, EXO_MOE_X, EXO_MOE_W, EXO_MOE_STORE)
#undef EXO_MOE_X
#undef EXO_MOE_W
#undef EXO_MOE_STORE
}
