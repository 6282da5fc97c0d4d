/* kv.cl — KV_WRITE: cache[pos[t], :] = src[t, :]. Work-items over (element of a row, token).
 * Positions are range-checked by the executor; one outside the cache is skipped here. */
__kernel void exo_kv_write(__global const float *src, uint src_off, __global const int *pos, uint pos_off,
                           __global float *cache, uint cache_off, uint row_size, uint cache_rows) {
    uint j = get_global_id(0), t = get_global_id(1);
    if (j >= row_size) return;
    int p = pos[pos_off + t];
    if (p < 0 || (uint)p >= cache_rows) return;
    cache[cache_off + (size_t)p * row_size + j] = src[src_off + (size_t)t * row_size + j];
}
