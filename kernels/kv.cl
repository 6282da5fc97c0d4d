/* kv.cl — KV_WRITE: cache[pos[t], :] = src[t, :], or for a pooled cache (n_slots > 0)
 * cache[slots[t], pos[t], :], rounded to the cache's dtype (exo_kv_write, _bf16, _f16:
 * EXO_KV_VARIANTS in common.cl). Work-items over (element of a row, token). Positions and slots
 * are range-checked by the executor; one outside the cache is skipped here. */
EXO_KERNEL_BODY exo_kv_write_body(__global const float *src, uint src_off, __global const int *pos, uint pos_off,
                                  __global const int *slots, uint slots_off, uint n_slots, __global uchar *cache,
                                  uint cache_off, uint row_size, uint cache_rows, int kv) {
    uint j = get_global_id(0), t = get_global_id(1);
    if (j >= row_size) return;
    int p = pos[pos_off + t];
    long row0 = exo_slot_row0(slots, slots_off, n_slots, t, cache_rows);
    if (p < 0 || (uint)p >= cache_rows || row0 < 0) return;
    exo_kv_store(cache, cache_off + (size_t)(row0 + p) * row_size + j, src[src_off + (size_t)t * row_size + j], kv);
}

#define EXO_KV_WRITE_KERNEL(SFX, KV)                                                                                   \
    __kernel void exo_kv_write##SFX(__global const float *src, uint src_off, __global const int *pos, uint pos_off,    \
                                    __global const int *slots, uint slots_off, uint n_slots, __global uchar *cache,    \
                                    uint cache_off, uint row_size, uint cache_rows) {                                  \
        exo_kv_write_body(src, src_off, pos, pos_off, slots, slots_off, n_slots, cache, cache_off, row_size,           \
                          cache_rows, KV);                                                                             \
    }
EXO_KV_VARIANTS(EXO_KV_WRITE_KERNEL)
