/* bandwidth.cl — the device's read bandwidth, measured the way decode reads weights: a pure-read
 * sweep over a buffer far larger than the caches (gpu_common/gpu_bandwidth.c times it). */

/* Fills n4 float4s with small distinct values (run once, untimed, so every page is backed and
 * the sweep reads real memory). */
__kernel void exo_bw_fill(__global float4 *buf, uint buf_off, uint n4) {
    for (uint i = get_global_id(0); i < n4; i += get_global_size(0))
        buf[buf_off + i] = (float4)((float)(i & 1023u), 1.0f, 2.0f, 3.0f);
}

/* Item g sums float4s g, g + items, ... (consecutive items read consecutive 16-byte words, so a
 * work-group's loads coalesce), four independent loads in flight. The sum is written only if it
 * equals `never` (the host passes a value the fill makes impossible), so nearly nothing is
 * written, yet no load can be optimised away. */
__kernel void exo_bw_read(__global const float4 *buf, uint buf_off, uint n4, __global float *out, uint out_off,
                          float never) {
    uint items = get_global_size(0), i = get_global_id(0);
    float4 s0 = (float4)(0.0f), s1 = s0, s2 = s0, s3 = s0;
    for (; i + 3u * items < n4; i += 4u * items) {
        s0 += buf[buf_off + i];
        s1 += buf[buf_off + i + items];
        s2 += buf[buf_off + i + 2u * items];
        s3 += buf[buf_off + i + 3u * items];
    }
    for (; i < n4; i += items) s0 += buf[buf_off + i];
    float4 s = (s0 + s1) + (s2 + s3);
    float t = (s.x + s.y) + (s.z + s.w);
    if (t == never) out[out_off + get_global_id(0)] = t;
}
