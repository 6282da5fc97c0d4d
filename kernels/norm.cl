/* norm.cl — RMS_NORM: one work-group per row; a local-memory tree sums the squares. The local
 * size is a power of two no larger than EXO_NORM_WG (the executor picks it). */
#define EXO_NORM_WG 256

__kernel void exo_rms_norm(__global const float *x, uint x_off, __global const uchar *w, uint w_off, int w_type,
                           __global float *dst, uint dst_off, uint width, float eps, int one_plus) {
    __local float partial[EXO_NORM_WG];
    uint row = get_group_id(0), lid = get_local_id(0), ls = get_local_size(0);
    __global const float *xr = x + x_off + (size_t)row * width;
    float sum = 0.0f;
    for (uint j = lid; j < width; j += ls) sum += xr[j] * xr[j];
    partial[lid] = sum;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = ls / 2; s > 0; s >>= 1) {
        if (lid < s) partial[lid] += partial[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float inv = rsqrt(partial[0] / (float)width + eps);
    __global const uchar *wb = w + (size_t)w_off * (w_type == EXO_F32 ? 4u : 2u);
    __global float *out = dst + dst_off + (size_t)row * width;
    for (uint j = lid; j < width; j += ls) {
        float wj = exo_load(wb, j, w_type);
        if (one_plus) wj += 1.0f;
        out[j] = xr[j] * inv * wj;
    }
}
