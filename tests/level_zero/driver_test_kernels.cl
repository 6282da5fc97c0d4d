/* Kernels for test_ze_test_driver: small enough to check by hand, covering what the plugin's
 * kernels use — global pointers with offsets, scalar arguments, local memory and barriers. */
__kernel void td_axpy(__global float *y, uint y_off, __global const float *x, uint x_off, float a, uint n) {
    uint i = get_global_id(0);
    if (i < n) y[y_off + i] += a * x[x_off + i];
}

/* Sum of each group's elements through local memory; one result per group. */
__kernel void td_group_sum(__global const float *x, __global float *out, __local float *scratch) {
    uint l = get_local_id(0), n = get_local_size(0);
    scratch[l] = x[get_global_id(0)];
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = n / 2; s > 0; s /= 2) {
        if (l < s) scratch[l] += scratch[l + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (l == 0) out[get_group_id(0)] = scratch[0];
}
