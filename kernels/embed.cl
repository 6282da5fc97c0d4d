/* embed.cl — GET_ROWS: dst[t, :] = table[ids[t], :] * scale. Work-items over (column, token).
 * Ids are range-checked by the executor before the launch; an id outside the table still never
 * reads out of bounds here (the row is written as zeros). */
__kernel void exo_get_rows(__global const uchar *table, uint table_off, int table_type, uint rows,
                           __global const int *ids, uint ids_off, __global float *dst, uint dst_off, uint width,
                           float scale) {
    uint j = get_global_id(0), t = get_global_id(1);
    if (j >= width) return;
    int id = ids[ids_off + t];
    float v = 0.0f;
    if (id >= 0 && (uint)id < rows) {
        __global const uchar *base = table + (size_t)table_off * (table_type == EXO_F32 ? 4u : 2u);
        v = exo_load(base, (uint)id * width + j, table_type);
        if (scale != 1.0f) v *= scale;
    }
    dst[dst_off + (size_t)t * width + j] = v;
}
