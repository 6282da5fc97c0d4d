/* kv.cl — KV_WRITE: cache[pos[t], :] = src[t, :], or for a pooled cache (n_slots > 0)
 * cache[slots[t], pos[t], :]. Work-items over (element of a row, token). Positions and slots are
 * range-checked by the executor; one outside the cache is skipped here. */
__kernel void exo_kv_write(__global const float *src, uint src_off, __global const int *pos, uint pos_off,
                           __global const int *slots, uint slots_off, uint n_slots, __global float *cache,
                           uint cache_off, uint row_size, uint cache_rows) {
    uint j = get_global_id(0), t = get_global_id(1);
    if (j >= row_size) return;
    int p = pos[pos_off + t];
    long row0 = exo_slot_row0(slots, slots_off, n_slots, t, cache_rows);
    if (p < 0 || (uint)p >= cache_rows || row0 < 0) return;
    cache[cache_off + (size_t)(row0 + p) * row_size + j] = src[src_off + (size_t)t * row_size + j];
}
