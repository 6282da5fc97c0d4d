/* Plain-C reference kernels: the numerical oracle for every other backend. They favour clarity
 * and accuracy (double accumulation) over speed, and run on any x86-64 CPU. */
#ifndef EXO_CPU_KERNELS_REF_H
#define EXO_CPU_KERNELS_REF_H

#include "kernels.h"

/* One element of a float-like tensor (F32, F16, BF16) as float. */
float cpu_ref_load(const void *data, exo_dtype type, int64_t index);
/* Row `row` of a [rows][k] weight in any supported dtype (incl. Q8_0), converted to float. */
void cpu_ref_load_row(const void *data, exo_dtype type, int64_t k, int64_t row, float *out);

/* Code j (0 <= j < k) of an MLX_AFFINE row: bits [j * bits, (j + 1) * bits) of the row's
 * little-endian bit stream, which may straddle two words. */
static inline uint32_t cpu_mlx_code(const uint32_t *row, int64_t j, uint32_t bits) {
    uint64_t bit = (uint64_t)j * bits;
    uint64_t word = row[bit / 32];
    if (bit % 32 + bits > 32) word |= (uint64_t)row[bit / 32 + 1] << 32;
    return (uint32_t)(word >> (bit % 32)) & ((1u << bits) - 1u);
}
/* Row `row` of a [rows][k] MLX_AFFINE weight, dequantized to float (scale * q + bias in float). */
void cpu_ref_mlx_row(const void *w, const cpu_quant *q, int64_t k, int64_t row, float *out);

void cpu_ref_get_rows(void *args, int64_t begin, int64_t end, uint32_t thread);
void cpu_ref_rms_norm(void *args, int64_t begin, int64_t end, uint32_t thread);
void cpu_ref_matmul(void *args, int64_t begin, int64_t end, uint32_t thread);
void cpu_ref_add(void *args, int64_t begin, int64_t end, uint32_t thread);
void cpu_ref_mul(void *args, int64_t begin, int64_t end, uint32_t thread);
void cpu_ref_glu(void *args, int64_t begin, int64_t end, uint32_t thread);
void cpu_ref_rope(void *args, int64_t begin, int64_t end, uint32_t thread);
void cpu_ref_kv_write(void *args, int64_t begin, int64_t end, uint32_t thread);
void cpu_ref_attention(void *args, int64_t begin, int64_t end, uint32_t thread);
void cpu_ref_softcap(void *args, int64_t begin, int64_t end, uint32_t thread);
void cpu_ref_copy(void *args, int64_t begin, int64_t end, uint32_t thread);
void cpu_ref_argmax(void *args, int64_t begin, int64_t end, uint32_t thread);
void cpu_ref_moe_topk(void *args, int64_t begin, int64_t end, uint32_t thread);
void cpu_ref_moe_weights(void *args, int64_t begin, int64_t end, uint32_t thread);
void cpu_ref_moe_combine(void *args, int64_t begin, int64_t end, uint32_t thread);

#endif
