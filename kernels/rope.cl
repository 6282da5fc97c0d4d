/* rope.cl — ROPE over x [T][n_heads][head_dim]: one work-item per output element. The first
 * n_rot dims of each head rotate in pairs (NEOX: i and i + n_rot/2; NORMAL: 2i and 2i + 1); the
 * rest are copied. Angle = float(pos) * inv_freq[i] in f32, as Hugging Face computes it. */

/* Output element j of one head xh at position p. */
static inline float exo_rope_value(__global const float *xh, uint j, int p, __global const float *inv_freq,
                                   uint freq_off, int n_rot, int mode, float attn_factor) {
    if ((int)j >= n_rot) return xh[j];
    uint half_rot = (uint)n_rot / 2, i, i0, i1;
    if (mode == 1) { /* NEOX: halves */
        i = j < half_rot ? j : j - half_rot;
        i0 = i;
        i1 = i + half_rot;
    } else { /* NORMAL: interleaved pairs */
        i = j / 2;
        i0 = 2 * i;
        i1 = 2 * i + 1;
    }
    float angle = (float)p * inv_freq[freq_off + i];
    float c = cos(angle) * attn_factor, s = sin(angle) * attn_factor;
    float x0 = xh[i0], x1 = xh[i1];
    return j == i0 ? x0 * c - x1 * s : x1 * c + x0 * s;
}

__kernel void exo_rope(__global const float *x, uint x_off, __global const int *pos, uint pos_off,
                       __global const float *inv_freq, uint freq_off, __global float *dst, uint dst_off,
                       uint head_dim, uint n_heads, int n_rot, int mode, float attn_factor) {
    uint j = get_global_id(0), h = get_global_id(1), t = get_global_id(2);
    if (j >= head_dim) return;
    size_t base = ((size_t)t * n_heads + h) * head_dim;
    dst[dst_off + base + j] =
        exo_rope_value(x + x_off + base, j, pos[pos_off + t], inv_freq, freq_off, n_rot, mode, attn_factor);
}

/* A layer's ROPE of q and of k and its KV_WRITEs of k and v, in one launch (the executor fuses
 * them when the roped k feeds only its KV_WRITE): work-items (j, head, token) over
 * n_heads + 2 n_kv_heads heads — q heads rotate into q_out, k heads rotate straight into their
 * cache row at pos[t] (of slot slots[t] in a pooled cache, n_slots > 0), v heads are copied into
 * theirs, both rounded to the caches' dtype (exo_rope_kv, _bf16, _f16: EXO_KV_VARIANTS in
 * common.cl; the two caches share it). A position or slot outside the cache is skipped (the
 * executor range-checks them first). */
EXO_KERNEL_BODY exo_rope_kv_body(__global const float *q, uint q_off, __global const float *k, uint k_off,
                                 __global const float *v, uint v_off, __global const int *pos, uint pos_off,
                                 __global const int *slots, uint slots_off, uint n_slots,
                                 __global const float *inv_freq, uint freq_off, __global float *q_out,
                                 uint q_out_off, __global uchar *kc, uint kc_off, __global uchar *vc, uint vc_off,
                                 uint head_dim, uint n_heads, uint n_kv_heads, int n_rot, int mode,
                                 float attn_factor, uint cache_rows, int kv) {
    uint j = get_global_id(0), hh = get_global_id(1), t = get_global_id(2);
    if (j >= head_dim) return;
    int p = pos[pos_off + t];
    if (hh < n_heads) {
        size_t base = ((size_t)t * n_heads + hh) * head_dim;
        q_out[q_out_off + base + j] = exo_rope_value(q + q_off + base, j, p, inv_freq, freq_off, n_rot, mode, attn_factor);
        return;
    }
    long row0 = exo_slot_row0(slots, slots_off, n_slots, t, cache_rows);
    if (p < 0 || (uint)p >= cache_rows || row0 < 0) return;
    uint h = hh - n_heads, is_v = h >= n_kv_heads;
    if (is_v) h -= n_kv_heads;
    size_t src = ((size_t)t * n_kv_heads + h) * head_dim, row = ((size_t)(row0 + p) * n_kv_heads + h) * head_dim;
    if (is_v)
        exo_kv_store(vc, vc_off + row + j, v[v_off + src + j], kv);
    else
        exo_kv_store(kc, kc_off + row + j,
                     exo_rope_value(k + k_off + src, j, p, inv_freq, freq_off, n_rot, mode, attn_factor), kv);
}

#define EXO_ROPE_KV_KERNEL(SFX, KV)                                                                                    \
    __kernel void exo_rope_kv##SFX(__global const float *q, uint q_off, __global const float *k, uint k_off,           \
                                   __global const float *v, uint v_off, __global const int *pos, uint pos_off,         \
                                   __global const int *slots, uint slots_off, uint n_slots,                            \
                                   __global const float *inv_freq, uint freq_off, __global float *q_out,               \
                                   uint q_out_off, __global uchar *kc, uint kc_off, __global uchar *vc, uint vc_off,   \
                                   uint head_dim, uint n_heads, uint n_kv_heads, int n_rot, int mode,                  \
                                   float attn_factor, uint cache_rows) {                                               \
        exo_rope_kv_body(q, q_off, k, k_off, v, v_off, pos, pos_off, slots, slots_off, n_slots, inv_freq, freq_off,    \
                         q_out, q_out_off, kc, kc_off, vc, vc_off, head_dim, n_heads, n_kv_heads, n_rot, mode,         \
                         attn_factor, cache_rows, KV);                                                                 \
    }
EXO_KV_VARIANTS(EXO_ROPE_KV_KERNEL)
