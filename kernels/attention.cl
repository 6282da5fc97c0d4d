/* attention.cl — fused causal attention over the KV cache: three kernels by query count
 * (plugins/gpu_common/gpu_kernels.c picks): exo_attention_split + _combine for a few tokens
 * (decode), exo_attention_flash<DMAX> for a prompt (below), and exo_attention, which prompts
 * with head_dim above 128 or not a multiple of 4 keep.
 *
 * exo_attention, memory-efficient: each work-group owns one (query token, head) and walks its
 * visible cache rows [first, last] in tiles of EXO_ATT_TILE rows with an online softmax (running
 * max m and denominator l rescale the output accumulator), so no score row longer than one tile
 * ever exists.
 *
 * The work-group is split into parts of EXO_ATT_TILE items (the executor launches 4); part p
 * takes tiles p, p + parts, ... of the row range, so a decode step (one query token) still keeps
 * several tiles in flight per head. Each part keeps its own m, l and accumulator; at the end
 * they are merged through local memory (rescaled to the common max).
 *
 * Per tile: a part's items compute the tile's scores (one row each: q . k * scale, optional
 * softcap) into local memory; then every item of the part updates m and l from the whole tile
 * (cheap reads of local memory, so all agree without a reduction) and accumulates p * v for the
 * head dims it owns (dims plid, plid + EXO_ATT_TILE, ...: coalesced reads of v). GQA: head h
 * reads kv head h / group. A sink (src[4], gpt_oss) joins the merge as one more logit that
 * adds to the denominator only. Pooled caches (n_slots > 0, ABI 1.6): token t reads the rows of
 * its slot slots[t] only (exo_slot_row0), so the tokens of several sequences share a launch.
 * F32, BF16 and F16 caches (ABI 1.7): each kernel here that reads a cache is one body with a
 * __kernel per dtype (exo_attention, exo_attention_bf16, exo_attention_f16; EXO_KV_VARIANTS in
 * common.cl) that declares the local memory and passes the dtype as a constant; cached values
 * are widened exactly (exo_kv_load) and everything is computed in f32 as with an F32 cache. */
#define EXO_ATT_TILE 64 /* items per part: each scores one row per tile */
#define EXO_ATT_MAX_PARTS 4
#define EXO_ATT_MAX_DIM 512
#define EXO_ATT_MAX_PER_ITEM (EXO_ATT_MAX_DIM / EXO_ATT_TILE)

EXO_KERNEL_BODY exo_attention_body(__global const float *q, uint q_off, __global const uchar *kc, uint k_off,
                                   __global const uchar *vc, uint v_off, __global const int *pos, uint pos_off,
                                   __global const int *slots, uint slots_off, uint n_slots,
                                   __global const float *sinks, uint sinks_off, int has_sinks, __global float *dst,
                                   uint dst_off, int n_heads, int n_kv_heads, int head_dim, int window, float scale,
                                   float softcap, int cache_rows, int kv, __local float *qs,
                                   __local float (*scores)[EXO_ATT_TILE], __local float *part_m,
                                   __local float *part_l, __local float (*part_acc)[EXO_ATT_MAX_DIM]) {
    uint h = get_group_id(0), t = get_group_id(1), lid = get_local_id(0), ls = get_local_size(0);
    uint part = lid / EXO_ATT_TILE, plid = lid % EXO_ATT_TILE, parts = ls / EXO_ATT_TILE;
    uint d = (uint)head_dim, kvh = h / (uint)(n_heads / n_kv_heads), kv_row = (uint)n_kv_heads * d;
    __global const float *qh = q + q_off + ((size_t)t * n_heads + h) * d;
    for (uint j = lid; j < d; j += ls) qs[j] = qh[j];
    barrier(CLK_LOCAL_MEM_FENCE);

    int last = pos[pos_off + t];
    if (last >= cache_rows) last = cache_rows - 1; /* the executor rejects such positions first */
    long row0 = exo_slot_row0(slots, slots_off, n_slots, t, (uint)cache_rows);
    if (row0 < 0) last = -1; /* nor slots outside the pool: no rows */
    int first = window > 0 && last - window + 1 > 0 ? last - window + 1 : 0;
    /* Element indices of the slot's first row in each cache. */
    size_t k_base = k_off + (size_t)max(row0, 0L) * kv_row, v_base = v_off + (size_t)max(row0, 0L) * kv_row;
    float m = -INFINITY, l = 0.0f;
    float acc[EXO_ATT_MAX_PER_ITEM];
    for (uint i = 0; i < EXO_ATT_MAX_PER_ITEM; i++) acc[i] = 0.0f;
    __local float *sc = scores[part];

    /* Every item runs the same number of iterations (barriers); a part past the end idles. */
    for (int r_base = first; r_base <= last; r_base += (int)(parts * EXO_ATT_TILE)) {
        int r0 = r_base + (int)(part * EXO_ATT_TILE);
        int rows = min(EXO_ATT_TILE, last - r0 + 1);
        for (int r = (int)plid; r < rows; r += EXO_ATT_TILE) {
            size_t kr = k_base + (size_t)(r0 + r) * kv_row + kvh * d;
            /* Four independent sums: the loads of a row overlap instead of waiting on one chain. */
            float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
            uint j = 0;
            for (; j + 4u <= d; j += 4u) {
                s0 = fma(qs[j], exo_kv_load(kc, kr + j, kv), s0);
                s1 = fma(qs[j + 1u], exo_kv_load(kc, kr + j + 1u, kv), s1);
                s2 = fma(qs[j + 2u], exo_kv_load(kc, kr + j + 2u, kv), s2);
                s3 = fma(qs[j + 3u], exo_kv_load(kc, kr + j + 3u, kv), s3);
            }
            for (; j < d; j++) s0 = fma(qs[j], exo_kv_load(kc, kr + j, kv), s0);
            float s = ((s0 + s1) + (s2 + s3)) * scale;
            if (softcap > 0.0f) s = softcap * tanh(s / softcap);
            sc[r] = s;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        if (rows > 0) {
            float tile_max = m;
            for (int r = 0; r < rows; r++) tile_max = fmax(tile_max, sc[r]);
            float rescale = exp(m - tile_max); /* exp(-inf) = 0 on the first tile */
            l *= rescale;
            for (uint i = 0; i < EXO_ATT_MAX_PER_ITEM; i++) acc[i] *= rescale;
            for (int r = 0; r < rows; r++) {
                float p = exp(sc[r] - tile_max);
                l += p;
                size_t vr = v_base + (size_t)(r0 + r) * kv_row + kvh * d;
                for (uint i = 0, j = plid; j < d; i++, j += EXO_ATT_TILE)
                    acc[i] = fma(p, exo_kv_load(vc, vr + j, kv), acc[i]);
            }
            m = tile_max;
        }
        barrier(CLK_LOCAL_MEM_FENCE); /* scores are rewritten by the next tile */
    }

    /* Merge the parts: out = sum_p acc_p e^(m_p - M) / sum_p l_p e^(m_p - M), M = max_p m_p. */
    if (plid == 0) {
        part_m[part] = m;
        part_l[part] = l;
    }
    for (uint i = 0, j = plid; j < d; i++, j += EXO_ATT_TILE) part_acc[part][j] = acc[i];
    barrier(CLK_LOCAL_MEM_FENCE);
    float big = has_sinks ? sinks[sinks_off + h] : -INFINITY;
    for (uint p = 0; p < parts; p++) big = fmax(big, part_m[p]);
    float weight[EXO_ATT_MAX_PARTS], denom = has_sinks ? exp(sinks[sinks_off + h] - big) : 0.0f;
    for (uint p = 0; p < parts; p++) {
        weight[p] = part_m[p] == -INFINITY ? 0.0f : exp(part_m[p] - big);
        denom += part_l[p] * weight[p];
    }
    float inv = last >= 0 && denom > 0.0f ? 1.0f / denom : 0.0f;
    __global float *out = dst + dst_off + ((size_t)t * n_heads + h) * d;
    for (uint j = lid; j < d; j += ls) {
        float sum = 0.0f;
        for (uint p = 0; p < parts; p++) sum += part_acc[p][j] * weight[p];
        out[j] = sum * inv;
    }
}

#define EXO_ATTENTION_KERNEL(SFX, KV)                                                                                  \
    __kernel void exo_attention##SFX(__global const float *q, uint q_off, __global const uchar *kc, uint k_off,        \
                                     __global const uchar *vc, uint v_off, __global const int *pos, uint pos_off,      \
                                     __global const int *slots, uint slots_off, uint n_slots,                          \
                                     __global const float *sinks, uint sinks_off, int has_sinks, __global float *dst,  \
                                     uint dst_off, int n_heads, int n_kv_heads, int head_dim, int window, float scale, \
                                     float softcap, int cache_rows) {                                                  \
        __local float qs[EXO_ATT_MAX_DIM];                                                                             \
        __local float scores[EXO_ATT_MAX_PARTS][EXO_ATT_TILE];                                                         \
        __local float part_m[EXO_ATT_MAX_PARTS], part_l[EXO_ATT_MAX_PARTS];                                            \
        __local float part_acc[EXO_ATT_MAX_PARTS][EXO_ATT_MAX_DIM];                                                    \
        exo_attention_body(q, q_off, kc, k_off, vc, v_off, pos, pos_off, slots, slots_off, n_slots, sinks, sinks_off,  \
                           has_sinks, dst, dst_off, n_heads, n_kv_heads, head_dim, window, scale, softcap, cache_rows, \
                           KV, qs, scores, part_m, part_l, part_acc);                                                  \
    }
EXO_KV_VARIANTS(EXO_ATTENTION_KERNEL)

/* The largest (is_max) or the sum of v over a split's EXO_ATT_TILE items, returned to every item;
 * red is free again after the caller's next barrier. On NVIDIA by warp shuffles and one barrier
 * (common.cl, EXO_WARP_SHFL), else a tree in local memory (a barrier per level). Inlined even in
 * the -O0 SPIR-V module: it holds barriers (EXO_KERNEL_BODY, common.cl). */
static inline __attribute__((always_inline)) float exo_att_tile_reduce(float v, uint lid, __local float *red, bool is_max) {
#ifdef EXO_WARP_SHFL
    v = is_max ? exo_warp_max(v) : exo_warp_sum(v);
    if ((lid & 31u) == 0u) red[lid >> 5] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    float r = red[0];
    for (uint w = 1; w < EXO_ATT_TILE / 32u; w++) r = is_max ? fmax(r, red[w]) : r + red[w];
    return r;
#else
    red[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint w = EXO_ATT_TILE / 2; w > 0; w >>= 1) {
        if (lid < w) red[lid] = is_max ? fmax(red[lid], red[lid + w]) : red[lid] + red[lid + w];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    return red[0];
#endif
}

/* Split s (of split_rows rows) of token t's visible rows for the split kernels (here and
 * attention_gqa.cl): [*begin, *end), empty past the token's last row, and where the token's slot
 * starts in the K and V caches (elements). */
static inline __attribute__((always_inline)) void exo_att_split_range(
    __global const int *pos, uint pos_off, __global const int *slots, uint slots_off, uint n_slots, uint t,
    int cache_rows, int window, uint s, int split_rows, uint kv_row, uint k_off, uint v_off, size_t *k_base,
    size_t *v_base, int *begin, int *end) {
    int last = min(pos[pos_off + t], cache_rows - 1);
    long row0 = exo_slot_row0(slots, slots_off, n_slots, t, (uint)cache_rows);
    if (row0 < 0) last = -1; /* a slot outside the pool: no rows (the executor refuses it first) */
    int first = window > 0 && last - window + 1 > 0 ? last - window + 1 : 0;
    *k_base = k_off + (size_t)max(row0, 0L) * kv_row;
    *v_base = v_off + (size_t)max(row0, 0L) * kv_row;
    *begin = first + (int)s * split_rows;
    *end = min(*begin + split_rows, last + 1);
}

/* vcol[r] = dim lid of the tile's V row r (from element v0 of its first row; dim d - 1 for the
 * items past the head, never used), 0 past the tile's rows: the split kernels' V-first loads. */
static inline __attribute__((always_inline)) void exo_att_load_vcol(__global const uchar *vc, size_t v0, uint kv_row,
                                                                    uint d, uint lid, int rows, int kv,
                                                                    float vcol[EXO_ATT_TILE]) {
    size_t vj = v0 + min(lid, d - 1u);
    for (int r = 0; r < EXO_ATT_TILE; r++) vcol[r] = r < rows ? exo_kv_load(vc, vj + (size_t)r * kv_row, kv) : 0.0f;
}

/* Decode attention split over the cache ("flash-decoding"): exo_attention above gives a decode
 * step (one query token) only n_heads work-groups, far too few to fill a large GPU, and walks
 * the rows with serial per-item loops. Here work-group (s, h) takes split s of head h's visible
 * rows: consecutive tiles of EXO_ATT_TILE rows, one row per item for the score, the tile's
 * maximum and sum by reductions (exo_att_tile_reduce), a running max / denominator across its
 * tiles, and the weighted V rows accumulated per dim (dims lid, lid + EXO_ATT_TILE, ...). Each
 * split writes (acc[head_dim], m, l) to part[((t * n_heads + h) * n_splits + s) * (head_dim + 2)];
 * exo_attention_combine then merges the splits of each (token, head).
 *
 * Work-group (s, h, t): a few query tokens (a batched decode step, ABI 1.6: each its own
 * sequence, slot and position; or a short chunk of one sequence) share the launch. Every token
 * cuts its own visible rows [first_t, last_t] into splits of split_rows from first_t on, so a
 * token with fewer rows than the launch's longest (n_splits x split_rows, sized by the executor
 * for the longest) leaves its last splits empty (m = -inf), which the combine skips. */
EXO_KERNEL_BODY exo_attention_split_body(__global const float *q, uint q_off, __global const uchar *kc, uint k_off,
                                         __global const uchar *vc, uint v_off, __global const int *pos,
                                         uint pos_off, __global const int *slots, uint slots_off, uint n_slots,
                                         __global float *part, uint part_off, int n_heads, int n_kv_heads,
                                         int head_dim, int window, float scale, float softcap, int cache_rows,
                                         int split_rows, int kv, __local float *qs, __local float *p,
                                         __local float *red) {
    uint s = get_group_id(0), h = get_group_id(1), t = get_group_id(2), lid = get_local_id(0);
    uint n_splits = get_num_groups(0), th = t * (uint)n_heads + h;
    uint d = (uint)head_dim, kvh = h / (uint)(n_heads / n_kv_heads), kv_row = (uint)n_kv_heads * d;
    for (uint j = lid; j < d; j += EXO_ATT_TILE) qs[j] = q[q_off + th * d + j];
    barrier(CLK_LOCAL_MEM_FENCE);

    size_t k_base, v_base;
    int begin, end;
    exo_att_split_range(pos, pos_off, slots, slots_off, n_slots, t, cache_rows, window, s, split_rows, kv_row, k_off,
                        v_off, &k_base, &v_base, &begin, &end);
    float m = -INFINITY, l = 0.0f;
    float acc[EXO_ATT_MAX_PER_ITEM];
    for (uint i = 0; i < EXO_ATT_MAX_PER_ITEM; i++) acc[i] = 0.0f;
    /* A head of at most EXO_ATT_TILE dims (one per item; EXO_ATT_SPLIT_V8 builds without, to
     * compare): the item's V column of the tile is loaded first, before the scores and the
     * softmax's reductions, so its latency hides behind theirs. A decode step's split is one or two
     * tiles, so the chain of dependent loads is the kernel's time: eight rounds of eight V loads
     * after the reductions become one round issued with the K loads. */
#ifdef EXO_ATT_SPLIT_V8
    const bool v_first = false;
#else
    const bool v_first = d <= EXO_ATT_TILE;
#endif
    float vcol[EXO_ATT_TILE];
    /* Every item runs the same iterations (barriers). */
    for (int r0 = begin; r0 < end; r0 += EXO_ATT_TILE) {
        int rows = min(EXO_ATT_TILE, end - r0);
        if (v_first) exo_att_load_vcol(vc, v_base + (size_t)r0 * kv_row + kvh * d, kv_row, d, lid, rows, kv, vcol);
        float sc = -INFINITY;
        if ((int)lid < rows) {
            size_t kr = k_base + (size_t)(r0 + (int)lid) * kv_row + kvh * d;
            /* Sixteen loads issued before their FMAs: a row costs d / 16 memory latencies. */
            float4 s4 = (float4)(0.0f);
            uint j = 0;
            for (; j + 16u <= d; j += 16u) {
                float16 k16 = exo_kv_load16(kc, kr + j, kv);
                s4 = fma(k16.s0123, vload4(0, qs + j), s4);
                s4 = fma(k16.s4567, vload4(0, qs + j + 4u), s4);
                s4 = fma(k16.s89ab, vload4(0, qs + j + 8u), s4);
                s4 = fma(k16.scdef, vload4(0, qs + j + 12u), s4);
            }
            float s0 = (s4.x + s4.y) + (s4.z + s4.w);
            for (; j < d; j++) s0 = fma(qs[j], exo_kv_load(kc, kr + j, kv), s0);
            sc = s0 * scale;
            if (softcap > 0.0f) sc = softcap * tanh(sc / softcap);
        }
        float new_m = fmax(m, exo_att_tile_reduce(sc, lid, red, true));
        float e = (int)lid < rows ? exp(sc - new_m) : 0.0f;
        barrier(CLK_LOCAL_MEM_FENCE); /* red read by all before it is overwritten */
        p[lid] = e; /* visible to all after the reduction's barrier */
        float tile_sum = exo_att_tile_reduce(e, lid, red, false);
        float rescale = exp(m - new_m); /* exp(-inf) = 0 on the first tile */
        l = l * rescale + tile_sum;
        m = new_m;
        if (v_first) {
            /* p is 0 past the tile's rows, and so is vcol. */
            float a0 = acc[0] * rescale, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
            for (int r = 0; r < EXO_ATT_TILE; r += 4) {
                a0 = fma(p[r], vcol[r], a0);
                a1 = fma(p[r + 1], vcol[r + 1], a1);
                a2 = fma(p[r + 2], vcol[r + 2], a2);
                a3 = fma(p[r + 3], vcol[r + 3], a3);
            }
            acc[0] = (a0 + a1) + (a2 + a3);
        }
        /* Eight rows at a time into independent sums: eight V loads in flight per item, not one
         * load-then-FMA chain (a decode step has few work-groups per compute unit to hide
         * memory latency with). */
        for (uint i = 0, j = lid; !v_first && j < d; i++, j += EXO_ATT_TILE) {
            size_t vj = v_base + (size_t)r0 * kv_row + kvh * d + j;
            float a0 = acc[i] * rescale, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
            int r = 0;
            for (; r + 8 <= rows; r += 8) {
                float v0 = exo_kv_load(vc, vj + (size_t)r * kv_row, kv);
                float v1 = exo_kv_load(vc, vj + (size_t)(r + 1) * kv_row, kv);
                float v2 = exo_kv_load(vc, vj + (size_t)(r + 2) * kv_row, kv);
                float v3 = exo_kv_load(vc, vj + (size_t)(r + 3) * kv_row, kv);
                float v4 = exo_kv_load(vc, vj + (size_t)(r + 4) * kv_row, kv);
                float v5 = exo_kv_load(vc, vj + (size_t)(r + 5) * kv_row, kv);
                float v6 = exo_kv_load(vc, vj + (size_t)(r + 6) * kv_row, kv);
                float v7 = exo_kv_load(vc, vj + (size_t)(r + 7) * kv_row, kv);
                a0 = fma(p[r], v0, a0);
                a1 = fma(p[r + 1], v1, a1);
                a2 = fma(p[r + 2], v2, a2);
                a3 = fma(p[r + 3], v3, a3);
                a0 = fma(p[r + 4], v4, a0);
                a1 = fma(p[r + 5], v5, a1);
                a2 = fma(p[r + 6], v6, a2);
                a3 = fma(p[r + 7], v7, a3);
            }
            for (; r < rows; r++) a0 = fma(p[r], exo_kv_load(vc, vj + (size_t)r * kv_row, kv), a0);
            acc[i] = (a0 + a1) + (a2 + a3);
        }
        barrier(CLK_LOCAL_MEM_FENCE); /* p and red are rewritten by the next tile */
    }
    __global float *out = part + part_off + ((size_t)th * n_splits + s) * (d + 2u);
    for (uint i = 0, j = lid; j < d; i++, j += EXO_ATT_TILE) out[j] = acc[i];
    if (lid == 0) {
        out[d] = m; /* -inf for a split with no rows */
        out[d + 1u] = l;
    }
}

/* The split kernels' parameters (the per-head ones here, the grouped-query ones of
 * attention_gqa.cl), and the same names as a body's first arguments. */
#define EXO_ATT_SPLIT_PARAMS                                                                                           \
    __global const float *q, uint q_off, __global const uchar *kc, uint k_off, __global const uchar *vc, uint v_off,  \
        __global const int *pos, uint pos_off, __global const int *slots, uint slots_off, uint n_slots,               \
        __global float *part, uint part_off, int n_heads, int n_kv_heads, int head_dim, int window, float scale,      \
        float softcap, int cache_rows, int split_rows
#define EXO_ATT_SPLIT_ARGS                                                                                             \
    q, q_off, kc, k_off, vc, v_off, pos, pos_off, slots, slots_off, n_slots, part, part_off, n_heads, n_kv_heads,     \
        head_dim, window, scale, softcap, cache_rows, split_rows
#define EXO_ATTENTION_SPLIT_KERNEL(SFX, KV)                                                                            \
    __kernel void exo_attention_split##SFX(EXO_ATT_SPLIT_PARAMS) {                                                     \
        __local float qs[EXO_ATT_MAX_DIM];                                                                             \
        __local float p[EXO_ATT_TILE];                                                                                 \
        __local float red[EXO_ATT_TILE];                                                                               \
        exo_attention_split_body(EXO_ATT_SPLIT_ARGS, KV, qs, p, red);                                                  \
    }
EXO_KV_VARIANTS(EXO_ATTENTION_SPLIT_KERNEL)

/* out = sum_s acc_s e^(m_s - M) / (sum_s l_s e^(m_s - M) [+ e^(sink - M)]), M = max(max_s m_s
 * [, sink]); one work-group per (head, token), the splits in order (deterministic). A sink
 * (ATTENTION's src[4], gpt_oss) is one more logit with no value row: it only adds to the
 * denominator. */
__kernel void exo_attention_combine(__global const float *part, uint part_off, __global const float *sinks,
                                    uint sinks_off, int has_sinks, __global float *dst, uint dst_off, int head_dim,
                                    int n_splits) {
    uint h = get_group_id(0), lid = get_local_id(0), ls = get_local_size(0), d = (uint)head_dim;
    uint th = get_group_id(1) * get_num_groups(0) + h; /* (token, head): heads are dim 0 */
    __global const float *ph = part + part_off + (size_t)th * (uint)n_splits * (d + 2u);
    float big = has_sinks ? sinks[sinks_off + h] : -INFINITY;
    for (int s = 0; s < n_splits; s++) big = fmax(big, ph[(size_t)s * (d + 2u) + d]);
    float denom = has_sinks ? exp(sinks[sinks_off + h] - big) : 0.0f;
    for (int s = 0; s < n_splits; s++) {
        float ms = ph[(size_t)s * (d + 2u) + d];
        denom += ms == -INFINITY ? 0.0f : ph[(size_t)s * (d + 2u) + d + 1u] * exp(ms - big);
    }
    float inv = denom > 0.0f ? 1.0f / denom : 0.0f;
    for (uint j = lid; j < d; j += ls) {
        float sum = 0.0f;
        for (int s = 0; s < n_splits; s++) {
            float ms = ph[(size_t)s * (d + 2u) + d];
            if (ms != -INFINITY) sum = fma(ph[(size_t)s * (d + 2u) + j], exp(ms - big), sum);
        }
        dst[dst_off + th * d + j] = sum * inv;
    }
}

/* ---- Prompt attention, flash style (exo_attention_flash<DMAX>[_bf16|_f16]) ----
 * exo_attention above gives every (query token, head) its own work-group, so a prompt of T tokens
 * reads each cached K and V row about T / 2 times from memory, one token at a time (Llama 3.2 1B
 * on the lent H100: 27 of the 76 ms of a 512-token prefill). Here work-group (h, tile) takes
 * EXO_FA_BQ query tokens of head h at once: K and V tiles of BK rows pass through local memory
 * once for all of them, and the scores are a small matrix product (a 4x4-ish register block per
 * item, float4 reads of local memory).
 *
 * Geometry: EXO_FA_ITEMS items, 4 per query row (row = lid / 4, quarter qq = lid % 4). Per K tile
 * an item scores columns qq, qq + 4, ... (BK / 4 of them) of its row; the row's tile maximum and
 * sum combine the 4 quarters through local memory; an item then accumulates p * V for the float4s
 * of the head it owns (qq, qq + 4, ... : dims 4 * (qq + 4 i) .. + 3). Online softmax per row as in
 * exo_attention: a running max m and denominator l rescale the accumulator when the max grows.
 *
 * Which rows a query sees: its own [first, last] (causal: last = its position; first from the
 * window), so any chunk of a prompt works, the first or one after cached rows. The work-group
 * walks the union of its rows' ranges in tiles and masks per element: tiles outside every row's
 * range are never visited (a causal prompt skips the upper triangle whole). GQA: head h reads kv
 * head h / (n_heads / n_kv_heads). Pooled caches (ABI 1.6): the tile's tokens may belong to
 * several slots; the work-group makes one pass over the rows of each distinct slot (in increasing
 * order), each token taking part only in its own slot's pass - one pass when the tile is one
 * sequence's. Sinks (gpt_oss) and softcap as in exo_attention. Everything f32; 16-bit caches
 * widen exactly (exo_kv_load). Host: head_dim a multiple of 4, at most DMAX (gpu_kernels.c). */
#define EXO_FA_BQ 32
#define EXO_FA_ITEMS (EXO_FA_BQ * 4)
#define EXO_FA_MAX_SCORES 8 /* BK / 4 for the largest BK */
#define EXO_FA_MAX_F4 8     /* float4s of a row an item owns for the largest DMAX (128 / 16) */

/* A token's slot base row (-1: no rows), first and last visible rows. */
static inline void exo_fa_rows(__global const int *pos, uint pos_off, __global const int *slots, uint slots_off,
                               uint n_slots, uint t, uint n_tokens, int window, int cache_rows, long *row0,
                               int *first, int *last) {
    *row0 = -1;
    *first = 0;
    *last = -1;
    if (t >= n_tokens) return;
    long r0 = exo_slot_row0(slots, slots_off, n_slots, t, (uint)cache_rows);
    if (r0 < 0) return;
    int l = min(pos[pos_off + t], cache_rows - 1);
    *row0 = r0;
    *last = l;
    *first = window > 0 && l - window + 1 > 0 ? l - window + 1 : 0;
}

EXO_KERNEL_BODY exo_attention_flash_body(__global const float *q, uint q_off, __global const uchar *kc, uint k_off,
                                         __global const uchar *vc, uint v_off, __global const int *pos, uint pos_off,
                                         __global const int *slots, uint slots_off, uint n_slots,
                                         __global const float *sinks, uint sinks_off, int has_sinks,
                                         __global float *dst, uint dst_off, int n_heads, int n_kv_heads, int head_dim,
                                         int window, float scale, float softcap, int cache_rows, uint n_tokens, int kv,
                                         uint dmax, uint bk, __local float *qs, __local float *kvs, __local float *ps,
                                         __local float *red_max, __local float *red_sum) {
    uint h = get_group_id(0), q0 = get_group_id(1) * EXO_FA_BQ, lid = get_local_id(0);
    uint row = lid >> 2, qq = lid & 3u, ld = dmax + 4u, lp = bk + 1u;
    uint d = (uint)head_dim, d4 = d >> 2, kvh = h / (uint)(n_heads / n_kv_heads), kv_row = (uint)n_kv_heads * d;
    uint t = q0 + row;

    /* The tile's queries into local memory (rows past the prompt as zeros). */
    for (uint e = lid; e < EXO_FA_BQ * d; e += EXO_FA_ITEMS) {
        uint r = e / d, j = e - r * d;
        qs[r * ld + j] = q0 + r < n_tokens ? q[q_off + ((size_t)(q0 + r) * n_heads + h) * d + j] : 0.0f;
    }
    long my_row0;
    int my_first, my_last;
    exo_fa_rows(pos, pos_off, slots, slots_off, n_slots, t, n_tokens, window, cache_rows, &my_row0, &my_first, &my_last);

    float m = -INFINITY, l = 0.0f;
    float4 acc[EXO_FA_MAX_F4];
    for (uint i = 0; i < EXO_FA_MAX_F4; i++) acc[i] = (float4)(0.0f);
    float s[EXO_FA_MAX_SCORES];

    /* One pass per distinct slot among the tile's tokens (all items compute the same passes from
     * the same global data, so barriers stay uniform). */
    long prev = -1;
    for (;;) {
        long cur = -1;
        int lo = cache_rows, hi = -1;
        for (uint i = 0; i < EXO_FA_BQ; i++) {
            long r0;
            int f, la;
            exo_fa_rows(pos, pos_off, slots, slots_off, n_slots, q0 + i, n_tokens, window, cache_rows, &r0, &f, &la);
            if (r0 > prev && (cur < 0 || r0 < cur)) cur = r0;
        }
        if (cur < 0) break;
        for (uint i = 0; i < EXO_FA_BQ; i++) {
            long r0;
            int f, la;
            exo_fa_rows(pos, pos_off, slots, slots_off, n_slots, q0 + i, n_tokens, window, cache_rows, &r0, &f, &la);
            if (r0 == cur && la >= f) {
                lo = min(lo, f);
                hi = max(hi, la);
            }
        }
        prev = cur;
        bool mine = my_row0 == cur;
        size_t k_base = k_off + (size_t)cur * kv_row + kvh * d, v_base = v_off + (size_t)cur * kv_row + kvh * d;
        for (int r0 = lo; r0 <= hi; r0 += (int)bk) {
            for (uint e = lid; e < bk * d; e += EXO_FA_ITEMS) {
                uint c = e / d, j = e - c * d;
                kvs[c * ld + j] = r0 + (int)c <= hi ? exo_kv_load(kc, k_base + (size_t)(r0 + (int)c) * kv_row + j, kv) : 0.0f;
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            float part_max = -INFINITY;
            for (uint jj = 0; jj < EXO_FA_MAX_SCORES; jj++) {
                if (jj >= bk / 4u) break;
                uint c = qq + 4u * jj;
                float4 s4 = (float4)(0.0f);
                for (uint j = 0; j < d; j += 4u) s4 = fma(vload4(0, qs + row * ld + j), vload4(0, kvs + c * ld + j), s4);
                float sc = ((s4.x + s4.y) + (s4.z + s4.w)) * scale;
                if (softcap > 0.0f) sc = softcap * tanh(sc / softcap);
                int r = r0 + (int)c;
                if (!mine || r < my_first || r > my_last) sc = -INFINITY;
                s[jj] = sc;
                part_max = fmax(part_max, sc);
            }
            red_max[lid] = part_max;
            barrier(CLK_LOCAL_MEM_FENCE); /* the K tile is read, the quarters' maxima written */
            for (uint e = lid; e < bk * d; e += EXO_FA_ITEMS) {
                uint c = e / d, j = e - c * d;
                kvs[c * ld + j] = r0 + (int)c <= hi ? exo_kv_load(vc, v_base + (size_t)(r0 + (int)c) * kv_row + j, kv) : 0.0f;
            }
            float new_m = fmax(fmax(m, fmax(red_max[row * 4u], red_max[row * 4u + 1u])),
                               fmax(red_max[row * 4u + 2u], red_max[row * 4u + 3u]));
            float part_sum = 0.0f;
            for (uint jj = 0; jj < EXO_FA_MAX_SCORES; jj++) {
                if (jj >= bk / 4u) break;
                float p = s[jj] == -INFINITY ? 0.0f : exp(s[jj] - new_m);
                ps[row * lp + qq + 4u * jj] = p;
                part_sum += p;
            }
            red_sum[lid] = part_sum;
            /* exp(-inf) = 0 rescales nothing-yet to nothing; a row with no rows so far keeps 0s. */
            float rescale = m == -INFINITY ? 0.0f : exp(m - new_m);
            barrier(CLK_LOCAL_MEM_FENCE); /* V tile, p and the sums written */
            l = l * rescale + ((red_sum[row * 4u] + red_sum[row * 4u + 1u]) + (red_sum[row * 4u + 2u] + red_sum[row * 4u + 3u]));
            m = new_m;
            for (uint i = 0; i < EXO_FA_MAX_F4; i++) acc[i] *= rescale;
            for (uint c = 0; c < bk; c++) {
                float p = ps[row * lp + c];
                for (uint i = 0; i < EXO_FA_MAX_F4; i++) {
                    uint f = qq + 4u * i;
                    if (i < dmax / 16u && f < d4) acc[i] = fma((float4)(p), vload4(0, kvs + c * ld + 4u * f), acc[i]);
                }
            }
            barrier(CLK_LOCAL_MEM_FENCE); /* kvs, ps and the sums are rewritten by the next tile */
        }
    }

    if (t >= n_tokens) return;
    float w = 1.0f, denom = l;
    if (has_sinks) { /* one more logit in the denominator only */
        float sink = sinks[sinks_off + h], big = fmax(m, sink);
        w = m == -INFINITY ? 0.0f : exp(m - big);
        denom = l * w + exp(sink - big);
    }
    float inv = my_last >= 0 && my_row0 >= 0 && denom > 0.0f ? w / denom : 0.0f;
    __global float *out = dst + dst_off + ((size_t)t * n_heads + h) * d;
    for (uint i = 0; i < EXO_FA_MAX_F4; i++) {
        uint f = qq + 4u * i;
        if (i < dmax / 16u && f < d4) vstore4(acc[i] * inv, f, out);
    }
}

/* Two sizes, so each keeps its local memory under 32 KiB (OpenCL 1.2's minimum): head_dim <= 64
 * with K/V tiles of 32 rows, head_dim <= 128 with tiles of 16. */
#define EXO_ATTENTION_FLASH_KERNEL_SIZE(SFX, KV, DMAX, BK)                                                             \
    __kernel __attribute__((reqd_work_group_size(EXO_FA_ITEMS, 1, 1))) void exo_attention_flash##DMAX##SFX(          \
        __global const float *q, uint q_off, __global const uchar *kc, uint k_off, __global const uchar *vc,          \
        uint v_off, __global const int *pos, uint pos_off, __global const int *slots, uint slots_off, uint n_slots,    \
        __global const float *sinks, uint sinks_off, int has_sinks, __global float *dst, uint dst_off, int n_heads,    \
        int n_kv_heads, int head_dim, int window, float scale, float softcap, int cache_rows, uint n_tokens) {          \
        __local float qs[EXO_FA_BQ * ((DMAX) + 4)];                                                                    \
        __local float kvs[(BK) * ((DMAX) + 4)];                                                                        \
        __local float ps[EXO_FA_BQ * ((BK) + 1)];                                                                      \
        __local float red_max[EXO_FA_ITEMS], red_sum[EXO_FA_ITEMS];                                                    \
        exo_attention_flash_body(q, q_off, kc, k_off, vc, v_off, pos, pos_off, slots, slots_off, n_slots, sinks,       \
                                 sinks_off, has_sinks, dst, dst_off, n_heads, n_kv_heads, head_dim, window, scale,     \
                                 softcap, cache_rows, n_tokens, KV, DMAX, BK, qs, kvs, ps, red_max, red_sum);          \
    }
#define EXO_ATTENTION_FLASH64_KERNEL(SFX, KV) EXO_ATTENTION_FLASH_KERNEL_SIZE(SFX, KV, 64, 32)
#define EXO_ATTENTION_FLASH128_KERNEL(SFX, KV) EXO_ATTENTION_FLASH_KERNEL_SIZE(SFX, KV, 128, 16)
EXO_KV_VARIANTS(EXO_ATTENTION_FLASH64_KERNEL)
EXO_KV_VARIANTS(EXO_ATTENTION_FLASH128_KERNEL)
