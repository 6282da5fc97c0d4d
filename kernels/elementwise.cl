/* elementwise.cl — ADD, MUL, GLU, SOFTCAP and COPY: one work-item per element. */

/* dst[i] = a[i] + b[i % b_count] (b repeats: same shape, or one row). */
__kernel void exo_add(__global const float *a, uint a_off, __global const uchar *b, uint b_off, int b_type,
                      uint b_count, __global float *dst, uint dst_off, uint count) {
    uint i = get_global_id(0);
    if (i >= count) return;
    uint esz = b_type == EXO_F32 ? 4u : 2u;
    dst[dst_off + i] = a[a_off + i] + exo_load(b + (size_t)b_off * esz, i % b_count, b_type);
}

__kernel void exo_mul(__global const float *a, uint a_off, __global const uchar *b, uint b_off, int b_type,
                      uint b_count, __global float *dst, uint dst_off, uint count) {
    uint i = get_global_id(0);
    if (i >= count) return;
    uint esz = b_type == EXO_F32 ? 4u : 2u;
    dst[dst_off + i] = a[a_off + i] * exo_load(b + (size_t)b_off * esz, i % b_count, b_type);
}

/* The GLU's activation of the gate: act 0 = SiLU, 1 = GELU (tanh approximation). */
static inline float exo_glu_act(float g, int act) {
    if (act == 1) {
        const float sqrt_2_over_pi = 0.79788456080286535588f;
        return 0.5f * g * (1.0f + tanh(sqrt_2_over_pi * (g + 0.044715f * g * g * g)));
    }
    return g / (1.0f + exp(-g));
}

#define EXO_ACT_SWIGLU_CLAMP 2

/* dst = act(gate) * up; act 2 (EXO_ACT_SWIGLU_CLAMP, gpt_oss's experts): g = min(gate, limit),
 * u = clamp(up, -limit, limit), dst = (u + 1) * (g * sigmoid(alpha * g)), transformers' order. */
__kernel void exo_glu(__global const float *gate, uint gate_off, __global const float *up, uint up_off,
                      __global float *dst, uint dst_off, uint count, int act, float alpha, float limit) {
    uint i = get_global_id(0);
    if (i >= count) return;
    float g = gate[gate_off + i], u = up[up_off + i];
    if (act == EXO_ACT_SWIGLU_CLAMP) {
        g = fmin(g, limit);
        u = clamp(u, -limit, limit);
        dst[dst_off + i] = (u + 1.0f) * (g * (1.0f / (1.0f + exp(-alpha * g))));
        return;
    }
    dst[dst_off + i] = exo_glu_act(g, act) * u;
}

__kernel void exo_softcap(__global const float *x, uint x_off, __global float *dst, uint dst_off, uint count,
                          float cap) {
    uint i = get_global_id(0);
    if (i >= count) return;
    dst[dst_off + i] = cap * tanh(x[x_off + i] / cap);
}

/* Same-dtype copies move 32-bit or 16-bit words; converting copies widen f16/bf16 to f32. */
__kernel void exo_copy_u32(__global const uint *src, uint src_off, __global uint *dst, uint dst_off, uint count) {
    uint i = get_global_id(0);
    if (i < count) dst[dst_off + i] = src[src_off + i];
}

__kernel void exo_copy_u16(__global const ushort *src, uint src_off, __global ushort *dst, uint dst_off,
                           uint count) {
    uint i = get_global_id(0);
    if (i < count) dst[dst_off + i] = src[src_off + i];
}

__kernel void exo_copy_to_f32(__global const uchar *src, uint src_off, int src_type, __global float *dst,
                              uint dst_off, uint count) {
    uint i = get_global_id(0);
    if (i < count) dst[dst_off + i] = exo_load(src + (size_t)src_off * 2u, i, src_type);
}
