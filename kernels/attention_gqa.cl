/* attention_gqa.cl — the split decode attention (exo_attention_split, attention.cl) for grouped
 * queries: work-group (s, kvh, t) takes split s of KV head kvh's rows for all G = n_heads /
 * n_kv_heads query heads that read it, instead of one work-group per query head.
 *
 * Why: exo_attention_split gives each query head its own work-group, so each of a group's G
 * heads loads the same K and V rows, runs the same chain of dependent loads and pays its own
 * reductions' barriers. A batched step of 8 sequences at 576 cached rows spent 59.6 us a layer
 * there (Llama 3.2 1B, G = 4, an H100: 0.95 of a 2.89 ms step; docs/performance.md 7.10), far
 * above the 9.4 MB of cache it reads. Here a K row and a V column are loaded once per item and
 * feed G dot products and G accumulators; the G heads' tile maxima and sums share the barriers.
 *
 * Everything else is exo_attention_split_body's, in the same order per head (the scores' sums,
 * the softmax, the V accumulation), and each head's partial state goes where that kernel writes
 * it, so exo_attention_combine and the o_proj launches that merge splits take it unchanged.
 * Variants per largest group GM (2, 4, 8: the host takes the smallest GM >= G; heads g >= G of a
 * variant are computed on zero queries and never written) and per cache dtype
 * (exo_attention_split_g<GM>[_bf16|_f16]). head_dim <= EXO_ATT_GQA_MAX_DIM (the host checks;
 * wider heads, G = 1 and groups past the backend's largest variant keep exo_attention_split). */
#define EXO_ATT_GQA_MAX_DIM 128
#define EXO_ATT_GQA_PER_ITEM (EXO_ATT_GQA_MAX_DIM / EXO_ATT_TILE)
#define EXO_ATT_GQA_MAX 8

/* v[g] for g < gm becomes the largest (is_max) or the sum of v[g] over the work-group's
 * EXO_ATT_TILE items (exo_att_tile_reduce for gm values at once: one barrier for all of them on
 * NVIDIA, one per tree level elsewhere). red holds gm x EXO_ATT_TILE floats; it is free again after
 * the caller's next barrier. */
static inline __attribute__((always_inline)) void exo_att_gqa_reduce(float v[EXO_ATT_GQA_MAX], uint gm, uint lid,
                                                                     __local float *red, bool is_max) {
#ifdef EXO_WARP_SHFL
#pragma unroll
    for (uint g = 0; g < EXO_ATT_GQA_MAX; g++) if (g < gm) {
        float w = is_max ? exo_warp_max(v[g]) : exo_warp_sum(v[g]);
        if ((lid & 31u) == 0u) red[g * (EXO_ATT_TILE / 32u) + (lid >> 5)] = w;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
#pragma unroll
    for (uint g = 0; g < EXO_ATT_GQA_MAX; g++) if (g < gm) {
        float r = red[g * (EXO_ATT_TILE / 32u)];
        for (uint w = 1; w < EXO_ATT_TILE / 32u; w++)
            r = is_max ? fmax(r, red[g * (EXO_ATT_TILE / 32u) + w]) : r + red[g * (EXO_ATT_TILE / 32u) + w];
        v[g] = r;
    }
#else
#pragma unroll
    for (uint g = 0; g < EXO_ATT_GQA_MAX; g++) if (g < gm) red[g * EXO_ATT_TILE + lid] = v[g];
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint w = EXO_ATT_TILE / 2; w > 0; w >>= 1) {
        if (lid < w)
#pragma unroll
            for (uint g = 0; g < EXO_ATT_GQA_MAX; g++) if (g < gm) {
                __local float *r = red + g * EXO_ATT_TILE;
                r[lid] = is_max ? fmax(r[lid], r[lid + w]) : r[lid] + r[lid + w];
            }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
#pragma unroll
    for (uint g = 0; g < EXO_ATT_GQA_MAX; g++) if (g < gm) v[g] = red[g * EXO_ATT_TILE];
#endif
}

/* gm is a constant of each kernel below. The loops over heads run to the literal EXO_ATT_GQA_MAX
 * and skip heads past gm, so the compiler unrolls them before inlining and keeps the arrays in
 * registers (clang-15's nvptx output: 2 local-memory stores a kernel, where loops bounded by gm
 * itself left s4, m, l and acc in local memory, ~110 stores), and the skipped heads fold away
 * once gm is known. */
EXO_KERNEL_BODY exo_attention_split_gqa_body(__global const float *q, uint q_off, __global const uchar *kc, uint k_off,
                                             __global const uchar *vc, uint v_off, __global const int *pos,
                                             uint pos_off, __global const int *slots, uint slots_off, uint n_slots,
                                             __global float *part, uint part_off, int n_heads, int n_kv_heads,
                                             int head_dim, int window, float scale, float softcap, int cache_rows,
                                             int split_rows, int kv, const uint gm, __local float *qs,
                                             __local float *p, __local float *red) {
    uint s = get_group_id(0), kvh = get_group_id(1), t = get_group_id(2), lid = get_local_id(0);
    uint n_splits = get_num_groups(0);
    uint d = (uint)head_dim, group = (uint)(n_heads / n_kv_heads), kv_row = (uint)n_kv_heads * d;
    uint h0 = kvh * group, th0 = t * (uint)n_heads + h0; /* the group's first query head */
    /* qs[g * d + j]: query head h0 + g; zeros for the variant's heads past the group. */
    for (uint i = lid; i < gm * d; i += EXO_ATT_TILE) {
        uint g = i / d;
        qs[i] = g < group ? q[q_off + (th0 + g) * d + (i - g * d)] : 0.0f;
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    size_t k_base, v_base;
    int begin, end;
    exo_att_split_range(pos, pos_off, slots, slots_off, n_slots, t, cache_rows, window, s, split_rows, kv_row, k_off,
                        v_off, &k_base, &v_base, &begin, &end);
    float m[EXO_ATT_GQA_MAX], l[EXO_ATT_GQA_MAX], acc[EXO_ATT_GQA_MAX][EXO_ATT_GQA_PER_ITEM];
#pragma unroll
    for (uint g = 0; g < EXO_ATT_GQA_MAX; g++) if (g < gm) {
        m[g] = -INFINITY;
        l[g] = 0.0f;
        for (uint i = 0; i < EXO_ATT_GQA_PER_ITEM; i++) acc[g][i] = 0.0f;
    }
    /* The item's V column of the tile first, as exo_attention_split_body loads it (one dim per
     * item), where the head fits the tile's items. */
    const bool v_first = d <= EXO_ATT_TILE;
    float vcol[EXO_ATT_TILE];
    for (int r0 = begin; r0 < end; r0 += EXO_ATT_TILE) {
        int rows = min(EXO_ATT_TILE, end - r0);
        if (v_first) exo_att_load_vcol(vc, v_base + (size_t)r0 * kv_row + kvh * d, kv_row, d, lid, rows, kv, vcol);
        float sc[EXO_ATT_GQA_MAX];
#pragma unroll
        for (uint g = 0; g < EXO_ATT_GQA_MAX; g++) if (g < gm) sc[g] = -INFINITY;
        if ((int)lid < rows) {
            size_t kr = k_base + (size_t)(r0 + (int)lid) * kv_row + kvh * d;
            float4 s4[EXO_ATT_GQA_MAX];
#pragma unroll
            for (uint g = 0; g < EXO_ATT_GQA_MAX; g++) if (g < gm) s4[g] = (float4)(0.0f);
            uint j = 0;
            for (; j + 16u <= d; j += 16u) {
                float16 k16 = exo_kv_load16(kc, kr + j, kv);
#pragma unroll
                for (uint g = 0; g < EXO_ATT_GQA_MAX; g++) if (g < gm) {
                    __local const float *qg = qs + g * d + j;
                    s4[g] = fma(k16.s0123, vload4(0, qg), s4[g]);
                    s4[g] = fma(k16.s4567, vload4(0, qg + 4u), s4[g]);
                    s4[g] = fma(k16.s89ab, vload4(0, qg + 8u), s4[g]);
                    s4[g] = fma(k16.scdef, vload4(0, qg + 12u), s4[g]);
                }
            }
#pragma unroll
            for (uint g = 0; g < EXO_ATT_GQA_MAX; g++) if (g < gm) sc[g] = (s4[g].x + s4[g].y) + (s4[g].z + s4[g].w);
            for (; j < d; j++) {
                float kj = exo_kv_load(kc, kr + j, kv);
#pragma unroll
                for (uint g = 0; g < EXO_ATT_GQA_MAX; g++) if (g < gm) sc[g] = fma(qs[g * d + j], kj, sc[g]);
            }
#pragma unroll
            for (uint g = 0; g < EXO_ATT_GQA_MAX; g++) if (g < gm) {
                sc[g] *= scale;
                if (softcap > 0.0f) sc[g] = softcap * tanh(sc[g] / softcap);
            }
        }
        float new_m[EXO_ATT_GQA_MAX], e[EXO_ATT_GQA_MAX];
#pragma unroll
        for (uint g = 0; g < EXO_ATT_GQA_MAX; g++) if (g < gm) new_m[g] = sc[g];
        exo_att_gqa_reduce(new_m, gm, lid, red, true);
#pragma unroll
        for (uint g = 0; g < EXO_ATT_GQA_MAX; g++) if (g < gm) {
            new_m[g] = fmax(m[g], new_m[g]);
            e[g] = (int)lid < rows ? exp(sc[g] - new_m[g]) : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE); /* red read by all before it is overwritten */
#pragma unroll
        for (uint g = 0; g < EXO_ATT_GQA_MAX; g++)
            if (g < gm) p[g * EXO_ATT_TILE + lid] = e[g]; /* visible after the sum's barrier */
        exo_att_gqa_reduce(e, gm, lid, red, false);
        float rescale[EXO_ATT_GQA_MAX];
#pragma unroll
        for (uint g = 0; g < EXO_ATT_GQA_MAX; g++) if (g < gm) {
            rescale[g] = exp(m[g] - new_m[g]); /* exp(-inf) = 0 on the first tile */
            l[g] = l[g] * rescale[g] + e[g];
            m[g] = new_m[g];
        }
        if (v_first) {
            /* p is 0 past the tile's rows, and so is vcol. */
#pragma unroll
            for (uint g = 0; g < EXO_ATT_GQA_MAX; g++) if (g < gm) {
                __local const float *pg = p + g * EXO_ATT_TILE;
                float a0 = acc[g][0] * rescale[g], a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
                for (int r = 0; r < EXO_ATT_TILE; r += 4) {
                    a0 = fma(pg[r], vcol[r], a0);
                    a1 = fma(pg[r + 1], vcol[r + 1], a1);
                    a2 = fma(pg[r + 2], vcol[r + 2], a2);
                    a3 = fma(pg[r + 3], vcol[r + 3], a3);
                }
                acc[g][0] = (a0 + a1) + (a2 + a3);
            }
        }
        /* Wider heads: each of the item's dims, eight V rows loaded at a time for all heads (i a
         * constant of each unrolled pass, so acc stays in registers). */
#pragma unroll
        for (uint i = 0; i < EXO_ATT_GQA_PER_ITEM; i++) {
            uint j = lid + i * EXO_ATT_TILE;
            if (v_first || j >= d) continue;
            size_t vj = v_base + (size_t)r0 * kv_row + kvh * d + j;
            float a[EXO_ATT_GQA_MAX][4];
#pragma unroll
            for (uint g = 0; g < EXO_ATT_GQA_MAX; g++) if (g < gm) {
                a[g][0] = acc[g][i] * rescale[g];
                a[g][1] = a[g][2] = a[g][3] = 0.0f;
            }
            int r = 0;
            for (; r + 8 <= rows; r += 8) {
                float vv[8];
#pragma unroll
                for (int u = 0; u < 8; u++) vv[u] = exo_kv_load(vc, vj + (size_t)(r + u) * kv_row, kv);
#pragma unroll
                for (uint g = 0; g < EXO_ATT_GQA_MAX; g++) if (g < gm) {
                    __local const float *pg = p + g * EXO_ATT_TILE + r;
                    a[g][0] = fma(pg[0], vv[0], a[g][0]);
                    a[g][1] = fma(pg[1], vv[1], a[g][1]);
                    a[g][2] = fma(pg[2], vv[2], a[g][2]);
                    a[g][3] = fma(pg[3], vv[3], a[g][3]);
                    a[g][0] = fma(pg[4], vv[4], a[g][0]);
                    a[g][1] = fma(pg[5], vv[5], a[g][1]);
                    a[g][2] = fma(pg[6], vv[6], a[g][2]);
                    a[g][3] = fma(pg[7], vv[7], a[g][3]);
                }
            }
            for (; r < rows; r++) {
                float v1 = exo_kv_load(vc, vj + (size_t)r * kv_row, kv);
#pragma unroll
                for (uint g = 0; g < EXO_ATT_GQA_MAX; g++)
                    if (g < gm) a[g][0] = fma(p[g * EXO_ATT_TILE + r], v1, a[g][0]);
            }
#pragma unroll
            for (uint g = 0; g < EXO_ATT_GQA_MAX; g++)
                if (g < gm) acc[g][i] = (a[g][0] + a[g][1]) + (a[g][2] + a[g][3]);
        }
        barrier(CLK_LOCAL_MEM_FENCE); /* p and red are rewritten by the next tile */
    }
#pragma unroll
    for (uint g = 0; g < EXO_ATT_GQA_MAX; g++) if (g < gm && g < group) {
        __global float *out = part + part_off + ((size_t)(th0 + g) * n_splits + s) * (d + 2u);
#pragma unroll
        for (uint i = 0; i < EXO_ATT_GQA_PER_ITEM; i++)
            if (lid + i * EXO_ATT_TILE < d) out[lid + i * EXO_ATT_TILE] = acc[g][i];
        if (lid == 0) {
            out[d] = m[g]; /* -inf for a split with no rows */
            out[d + 1u] = l[g];
        }
    }
}

#define EXO_ATTENTION_SPLIT_GQA_KERNEL(GM, SFX, KV)                                                                    \
    __kernel void exo_attention_split_g##GM##SFX(EXO_ATT_SPLIT_PARAMS) {                                               \
        __local float qs[GM * EXO_ATT_GQA_MAX_DIM];                                                                    \
        __local float p[GM * EXO_ATT_TILE];                                                                            \
        __local float red[GM * EXO_ATT_TILE];                                                                          \
        exo_attention_split_gqa_body(EXO_ATT_SPLIT_ARGS, KV, GM, qs, p, red);                                          \
    }
#define EXO_ATTENTION_SPLIT_G2(SFX, KV) EXO_ATTENTION_SPLIT_GQA_KERNEL(2, SFX, KV)
#define EXO_ATTENTION_SPLIT_G4(SFX, KV) EXO_ATTENTION_SPLIT_GQA_KERNEL(4, SFX, KV)
#define EXO_ATTENTION_SPLIT_G8(SFX, KV) EXO_ATTENTION_SPLIT_GQA_KERNEL(8, SFX, KV)
EXO_KV_VARIANTS(EXO_ATTENTION_SPLIT_G2)
EXO_KV_VARIANTS(EXO_ATTENTION_SPLIT_G4)
/* The 8 variants are not in the SPIR-V module (EXO_SPIRV), as decode.cl's exo_dmv_k2048_* are
 * not: PoCL, which runs that module in the tests, failed its local-memory assertion at every
 * launch of the module with them in it (its accounting spans the module's kernels; the 2 and 4
 * variants, 18 KB, fit). So the Level Zero plugin takes groups of up to 4 (features.att_gqa_max,
 * plugins/level_zero/graph.c) and larger ones keep exo_attention_split. */
#ifndef EXO_SPIRV
EXO_KV_VARIANTS(EXO_ATTENTION_SPLIT_G8)
#endif
