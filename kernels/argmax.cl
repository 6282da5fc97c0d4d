/* argmax.cl — ARGMAX (ABI 1.10): dst I32 [R] gets, for each row of x F32 [R][width], the index
 * that the loop `best = 0; for i: if (x[i] > x[best]) best = i` leaves. That is the first of the
 * largest values (-0 == +0). A NaN is never taken, and the answer is 0 when the row starts with a
 * NaN, because then no value compares greater. It picks a row of logits' greedy token on the
 * device, so that a decode step reads back 4 bytes a sequence.
 *
 * One work-group of EXO_ARGMAX_WG items per row (the lm_head's case: 1 to 8 rows of ~128K
 * logits). Each item scans a strided slice and keeps the best (value, index) pair it saw,
 * starting from (-inf, none). A pair beats another when its value is greater, or equal at a
 * lower index. Over non-NaN values that is a strict total order (indices differ), so the result
 * does not depend on which item saw what or in which order: a tree over the items' pairs in
 * local memory gives the lowest index of the largest non-NaN value. Without a NaN at x[0] that
 * is the loop's answer. A NaN loses every comparison, so it is never taken, and a -inf beats
 * "none". Index arithmetic is 32-bit: the executor admits at most 2^32 elements (gpu_target.c).
 *
 * Loads: the buffers are at least 16-byte aligned (gpu_view_wide_loads_fit), so a row read as
 * aligned float4 chunks starts at its first element whose offset is a multiple of 4. The 0 to 3
 * elements before that (the head) and after the last whole chunk (the tail) are read one at a
 * time. Each step of an item issues EXO_ARGMAX_UNROLL chunk loads before comparing any of them,
 * so that their latency overlaps: a single work-group reads the whole row. */
#define EXO_ARGMAX_WG 256     /* GPU_ARGMAX_WG in plugins/gpu_common/gpu_kernels.h */
/* Chunk loads in flight per item: 8 x 16 B x 256 items = 32 KiB a work-group. On an H100, a row of
 * 128,256 logits: 4 31.8 us, 8 25.7, 16 23.7, 32 22.7, 64 22.4 (docs/performance.md 7.7): one
 * work-group a row is what bounds it, not the loads in flight. EXO_OPENCL_DEFINES=
 * -DEXO_ARGMAX_UNROLL=N compares without rebuilding. */
#ifndef EXO_ARGMAX_UNROLL
#define EXO_ARGMAX_UNROLL 8
#endif
#define EXO_ARGMAX_NONE 0xffffffffu

/* (v, i) replaces the best pair (*bv, *bi) when it beats it. No barrier and no work-item function
 * here: an out-of-line helper is safe in the -O0 SPIR-V module (EXO_KERNEL_BODY, common.cl). */
static inline void exo_argmax_take(float v, uint i, float *bv, uint *bi) {
    if (v > *bv || (v == *bv && i < *bi)) {
        *bv = v;
        *bi = i;
    }
}

/* The four elements of chunk c (its first element has index i0). */
static inline void exo_argmax_take4(float4 v, uint i0, float *bv, uint *bi) {
    exo_argmax_take(v.x, i0, bv, bi);
    exo_argmax_take(v.y, i0 + 1u, bv, bi);
    exo_argmax_take(v.z, i0 + 2u, bv, bi);
    exo_argmax_take(v.w, i0 + 3u, bv, bi);
}

__kernel __attribute__((reqd_work_group_size(EXO_ARGMAX_WG, 1, 1))) void
exo_argmax_rows(__global const float *x, uint x_off, __global int *dst, uint dst_off, uint width) {
    __local float best_v[EXO_ARGMAX_WG];
    __local uint best_i[EXO_ARGMAX_WG];
    uint row = get_group_id(0), lid = get_local_id(0);
    size_t start = (size_t)x_off + (size_t)row * width;
    __global const float *xr = x + start;
    uint head = (4u - (uint)(start & 3u)) & 3u;
    if (head > width) head = width;
    uint n4 = (width - head) / 4u, tail = head + 4u * n4;
    __global const float4 *x4 = (__global const float4 *)(xr + head);

    float bv = -INFINITY;
    uint bi = EXO_ARGMAX_NONE;
    if (lid < head) exo_argmax_take(xr[lid], lid, &bv, &bi);
    if (tail + lid < width) exo_argmax_take(xr[tail + lid], tail + lid, &bv, &bi);
    for (uint c0 = lid; c0 < n4; c0 += EXO_ARGMAX_WG * EXO_ARGMAX_UNROLL) {
        float4 v[EXO_ARGMAX_UNROLL];
#pragma unroll
        for (uint u = 0; u < EXO_ARGMAX_UNROLL; u++) {
            uint c = c0 + u * EXO_ARGMAX_WG;
            v[u] = c < n4 ? x4[c] : (float4)(NAN); /* a NaN is never taken */
        }
#pragma unroll
        for (uint u = 0; u < EXO_ARGMAX_UNROLL; u++)
            exo_argmax_take4(v[u], head + 4u * (c0 + u * EXO_ARGMAX_WG), &bv, &bi);
    }

    best_v[lid] = bv;
    best_i[lid] = bi;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = EXO_ARGMAX_WG / 2u; s > 0u; s >>= 1) {
        if (lid < s) {
            exo_argmax_take(best_v[lid + s], best_i[lid + s], &bv, &bi);
            best_v[lid] = bv;
            best_i[lid] = bi;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0u) dst[dst_off + row] = isnan(xr[0]) ? 0 : (int)bi;
}
