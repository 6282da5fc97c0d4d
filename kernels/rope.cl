/* rope.cl — ROPE over x [T][n_heads][head_dim]: one work-item per output element. The first
 * n_rot dims of each head rotate in pairs (NEOX: i and i + n_rot/2; NORMAL: 2i and 2i + 1); the
 * rest are copied. Angle = float(pos) * inv_freq[i] in f32, as Hugging Face computes it. */
__kernel void exo_rope(__global const float *x, uint x_off, __global const int *pos, uint pos_off,
                       __global const float *inv_freq, uint freq_off, __global float *dst, uint dst_off,
                       uint head_dim, uint n_heads, int n_rot, int mode, float attn_factor) {
    uint j = get_global_id(0), h = get_global_id(1), t = get_global_id(2);
    if (j >= head_dim) return;
    size_t base = ((size_t)t * n_heads + h) * head_dim;
    __global const float *xh = x + x_off + base;
    float out;
    if ((int)j >= n_rot) {
        out = xh[j];
    } else {
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
        float angle = (float)pos[pos_off + t] * inv_freq[freq_off + i];
        float c = cos(angle) * attn_factor, s = sin(angle) * attn_factor;
        float x0 = xh[i0], x1 = xh[i1];
        out = j == i0 ? x0 * c - x1 * s : x1 * c + x0 * s;
    }
    dst[dst_off + base + j] = out;
}
