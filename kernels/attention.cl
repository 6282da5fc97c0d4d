/* attention.cl — fused causal attention over the KV cache, memory-efficient: each work-group
 * owns one (query token, head) and walks its visible cache rows [first, last] in tiles of
 * EXO_ATT_TILE rows with an online softmax (running max m and denominator l rescale the output
 * accumulator), so no score row longer than one tile ever exists.
 *
 * Per tile: items compute the tile's scores (one row each: q . k * scale, optional softcap)
 * into local memory; then every item updates m and l from the whole tile (cheap reads of local
 * memory, so all items agree without a reduction) and accumulates p * v for the head dims it
 * owns (dims lid, lid + ls, ...: coalesced reads of v). GQA: head h reads kv head h / group. */
#define EXO_ATT_TILE 32
#define EXO_ATT_MAX_DIM 512
#define EXO_ATT_MAX_PER_ITEM 16 /* head_dim / local size, at most */

__kernel void exo_attention(__global const float *q, uint q_off, __global const float *kc, uint k_off,
                            __global const float *vc, uint v_off, __global const int *pos, uint pos_off,
                            __global float *dst, uint dst_off, int n_heads, int n_kv_heads, int head_dim,
                            int window, float scale, float softcap, int cache_rows) {
    __local float qs[EXO_ATT_MAX_DIM];
    __local float scores[EXO_ATT_TILE];
    uint h = get_group_id(0), t = get_group_id(1), lid = get_local_id(0), ls = get_local_size(0);
    uint d = (uint)head_dim, kvh = h / (uint)(n_heads / n_kv_heads), kv_row = (uint)n_kv_heads * d;
    __global const float *qh = q + q_off + ((size_t)t * n_heads + h) * d;
    for (uint j = lid; j < d; j += ls) qs[j] = qh[j];
    barrier(CLK_LOCAL_MEM_FENCE);

    int last = pos[pos_off + t];
    if (last >= cache_rows) last = cache_rows - 1; /* the executor rejects such positions first */
    int first = window > 0 && last - window + 1 > 0 ? last - window + 1 : 0;
    float m = -INFINITY, l = 0.0f;
    float acc[EXO_ATT_MAX_PER_ITEM];
    for (uint i = 0; i < EXO_ATT_MAX_PER_ITEM; i++) acc[i] = 0.0f;

    for (int r0 = first; r0 <= last; r0 += EXO_ATT_TILE) {
        int rows = min(EXO_ATT_TILE, last - r0 + 1);
        for (int r = (int)lid; r < rows; r += (int)ls) {
            __global const float *kr = kc + k_off + (size_t)(r0 + r) * kv_row + kvh * d;
            float s = 0.0f;
            for (uint j = 0; j < d; j++) s = fma(qs[j], kr[j], s);
            s *= scale;
            if (softcap > 0.0f) s = softcap * tanh(s / softcap);
            scores[r] = s;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        float tile_max = m;
        for (int r = 0; r < rows; r++) tile_max = fmax(tile_max, scores[r]);
        float rescale = exp(m - tile_max); /* exp(-inf) = 0 on the first tile */
        l *= rescale;
        for (uint i = 0; i < EXO_ATT_MAX_PER_ITEM; i++) acc[i] *= rescale;
        for (int r = 0; r < rows; r++) {
            float p = exp(scores[r] - tile_max);
            l += p;
            __global const float *vr = vc + v_off + (size_t)(r0 + r) * kv_row + kvh * d;
            for (uint i = 0, j = lid; j < d; i++, j += ls) acc[i] = fma(p, vr[j], acc[i]);
        }
        m = tile_max;
        barrier(CLK_LOCAL_MEM_FENCE); /* scores are rewritten by the next tile */
    }
    __global float *out = dst + dst_off + ((size_t)t * n_heads + h) * d;
    float inv = last >= 0 ? 1.0f / l : 0.0f;
    for (uint i = 0, j = lid; j < d; i++, j += ls) out[j] = acc[i] * inv;
}
