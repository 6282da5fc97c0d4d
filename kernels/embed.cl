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

/* GET_ROWS of an MLX affine table (a quantized embed_tokens, often the tied lm_head too): the
 * selected rows dequantized (common.cl). Table words from element offset table_off (in words),
 * scales/biases at their own element offsets, of type q_type. */
__kernel void exo_get_rows_mlx(__global const uint *table, uint table_off, __global const uchar *sc, uint sc_off,
                               __global const uchar *bi, uint bi_off, int q_type, uint bits, uint group, uint rows,
                               __global const int *ids, uint ids_off, __global float *dst, uint dst_off, uint width,
                               float scale) {
    uint j = get_global_id(0), t = get_global_id(1);
    if (j >= width) return;
    int id = ids[ids_off + t];
    float v = 0.0f;
    if (id >= 0 && (uint)id < rows) {
        v = exo_mlx_load(table, table_off, sc, sc_off, bi, bi_off, q_type, bits, group, width, (uint)id, j);
        if (scale != 1.0f) v *= scale;
    }
    dst[dst_off + (size_t)t * width + j] = v;
}
