/* Fast kernels: AVX-512 code compiled with function-level target attributes, chosen at run time
 * only when CPUID and the OS allow AVX-512 (F, BW, VL). Each handles every case its reference
 * kernel handles (falling back to it internally for dtypes it does not accelerate), so the
 * executor can swap kernels per op without extra conditions. */
#ifndef EXO_CPU_KERNELS_FAST_H
#define EXO_CPU_KERNELS_FAST_H

#include "kernels.h"

#include <stdbool.h>

/* Weight rows per work item block of the matmul kernels; the executor uses it as the grain. */
#define CPU_MATMUL_BLOCK 16

/* Output columns per packed panel of the prefill GEMM; the executor uses it as the grain. */
#define CPU_GEMM_PANEL 32
/* Grain of the GEMM's column chunks: each chunk repacks its activation tiles, so not too small. */
#define CPU_GEMM_GRAIN (2 * CPU_GEMM_PANEL)
/* Token counts above this use the blocked GEMM (cpu_avx512_gemm); up to it, the streaming
 * matrix-vector kernel (cpu_avx512_matmul), which reads each weight once from memory. */
#define CPU_GEMV_MAX_TOKENS 4

void cpu_avx512_matmul(void *args, int64_t begin, int64_t end, uint32_t thread);
/* kernels_mlx_avx512.c: decode on an MLX_AFFINE weight, dequantization fused into the dot
 * product (cpu_avx512_matmul hands such weights to it; any token count, in tiles of 4). Needs
 * cpu_avx512_matmul_workspace(k) per thread. cpu_avx512_gemm takes MLX_AFFINE weights itself,
 * dequantizing them while it packs its weight panels. */
void cpu_mlx_matmul(void *args, int64_t begin, int64_t end, uint32_t thread);
/* The same with the activations quantized to int8 per group (an opt-in mode of reduced
 * precision, kernels_mlx_avx512.c says how much): 4- and 8-bit weights whose k is a multiple of
 * 128 / 64 on a CPU with AVX512_VNNI (cpu_mlx_int8_takes); other MLX weights go to cpu_mlx_matmul,
 * other dtypes to cpu_avx512_matmul, so the executor can use it in its place. */
void cpu_mlx_matmul_int8(void *args, int64_t begin, int64_t end, uint32_t thread);
bool cpu_mlx_int8_takes(const cpu_matmul_args *a);
void cpu_avx512_gemm(void *args, int64_t begin, int64_t end, uint32_t thread);
/* Re-lays x out for cpu_avx512_gemm once per matmul (or group of matmuls sharing x) into
 * args->x_packed, instead of once per chunk of columns in every thread. Items:
 * cpu_avx512_gemm_pack_items(m, k). x_packed needs cpu_avx512_gemm_packed_floats(m, k). */
void cpu_avx512_gemm_pack_x(void *args, int64_t begin, int64_t end, uint32_t thread);
int64_t cpu_avx512_gemm_pack_items(int64_t m, int64_t k);
size_t cpu_avx512_gemm_packed_floats(int64_t m, int64_t k);
/* kernels_mlx_gemm_int8.c: the prefill GEMM of the int8 mode (EXO_CPU_MLX_INT8=on) on MLX
 * weights of 2-8 bits, group 32/64/128 (cpu_mlx_gemm_int8_takes), activations quantized to int8
 * per group of the weight. x_int8 holds x as cpu_mlx_gemm_int8_pack_x lays it out for that group
 * (cpu_mlx_gemm_int8_packed_bytes, items cpu_mlx_gemm_int8_pack_items(m)); a call without x_int8
 * runs cpu_avx512_gemm (x_packed) instead. Workspace: cpu_mlx_gemm_int8_workspace() per thread. */
void cpu_mlx_gemm_int8(void *args, int64_t begin, int64_t end, uint32_t thread);
bool cpu_mlx_gemm_int8_takes(const cpu_matmul_args *a);
void cpu_mlx_gemm_int8_pack_x(void *args, int64_t begin, int64_t end, uint32_t thread);
int64_t cpu_mlx_gemm_int8_pack_items(int64_t m);
size_t cpu_mlx_gemm_int8_packed_bytes(int64_t m, int64_t k, uint32_t group);
size_t cpu_mlx_gemm_int8_workspace(void);
void cpu_avx512_attention(void *args, int64_t begin, int64_t end, uint32_t thread);
void cpu_avx512_rms_norm(void *args, int64_t begin, int64_t end, uint32_t thread);
/* kernels_eltwise_avx512.c */
void cpu_avx512_add(void *args, int64_t begin, int64_t end, uint32_t thread);
void cpu_avx512_mul(void *args, int64_t begin, int64_t end, uint32_t thread);
void cpu_avx512_glu(void *args, int64_t begin, int64_t end, uint32_t thread);
void cpu_avx512_rope(void *args, int64_t begin, int64_t end, uint32_t thread);

/* Workspace bytes per thread the fast kernels need for a matmul with inner size k. */
size_t cpu_avx512_matmul_workspace(int64_t k);
size_t cpu_avx512_attention_workspace(int64_t head_dim);
size_t cpu_avx512_gemm_workspace(void);

/* kernels_attention_avx512.c: the tiled prefill attention. Its items are
 * n_kv_heads x ceil(n_tokens / cpu_attention_block_tokens(group)); it serves GQA groups up to
 * the size cpu_attention_tiled_fits accepts (the per-row kernel above takes any). */
void cpu_avx512_attention_tiled(void *args, int64_t begin, int64_t end, uint32_t thread);
int64_t cpu_attention_block_tokens(int64_t group);
bool cpu_attention_tiled_fits(int64_t group);
size_t cpu_avx512_attention_tiled_workspace(int64_t head_dim);
/* KV_WRITE into an F32, BF16 or F16 cache (ABI 1.7): rows rounded to nearest even with
 * AVX-512F's conversions (vcvtps2ph; bf16 by integer rounding, as no AVX512_BF16 is assumed).
 * Items: tokens, as cpu_ref_kv_write. */
void cpu_avx512_kv_write(void *args, int64_t begin, int64_t end, uint32_t thread);

#endif
