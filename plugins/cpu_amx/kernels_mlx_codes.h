/* Reading MLX affine codes (EXO_DTYPE_MLX_AFFINE; abi/exo_plugin.h, "Quantized weights") into
 * AVX-512 registers, shared by the decode kernel (kernels_mlx_avx512.c) and the prefill GEMM's
 * weight packing (kernels_gemm_avx512.c). A row is a little-endian bit stream of `bits`-wide
 * codes; 8 consecutive codes always fill exactly `bits` whole bytes, which is what the generic
 * unpacker relies on for the widths that cross word boundaries (3, 5, 6). Include only from
 * files compiled with the AVX-512 target attributes below. */
#ifndef EXO_CPU_KERNELS_MLX_CODES_H
#define EXO_CPU_KERNELS_MLX_CODES_H

#include "cpu_half.h"
#include "kernels.h"

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define MLX_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))
#define MLX_INLINE static inline __attribute__((always_inline))

/* Codes j .. j + n - 1 (j and n multiples of 8) of a row of any width as bytes in out[n]: each
 * run of 8 codes is `bits` bytes, read as one little-endian integer and shifted apart. Used for
 * the widths without a register-level unpacker (2, 3, 5, 6). */
MLX_INLINE void mlx_codes_to_bytes(const uint8_t *row, int64_t j, int64_t n, uint32_t bits, uint8_t *out) {
    const uint8_t *src = row + j / 8 * bits;
    const uint64_t mask = (1u << bits) - 1u;
    for (int64_t i = 0; i < n; i += 8, src += bits) {
        uint64_t v = 0;
        memcpy(&v, src, bits); /* x86 is little-endian: byte 0 holds the first code's low bits */
        for (int c = 0; c < 8; c++) out[i + c] = (uint8_t)(v >> (c * bits) & mask);
    }
}

/* 16 codes from element j (a multiple of 16) of a row, in natural order, as floats. */
MLX_INLINE MLX_AVX512 __m512 mlx_codes16(const uint8_t *row, int64_t j, uint32_t bits) {
    if (bits == 8) return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(row + j))));
    __m128i b;
    if (bits == 4) {
        /* Byte i holds element 2i in its low nibble and 2i + 1 in its high nibble. */
        __m128i p = _mm_loadl_epi64((const __m128i *)(row + j / 2));
        __m128i nib = _mm_set1_epi8(0x0f);
        b = _mm_unpacklo_epi8(_mm_and_si128(p, nib), _mm_and_si128(_mm_srli_epi16(p, 4), nib));
    } else {
        uint8_t codes[16];
        mlx_codes_to_bytes(row, j, 16, bits, codes);
        b = _mm_loadu_si128((const __m128i *)codes);
    }
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(b));
}

/* Per-group value i (a scale or a bias) as float. */
MLX_INLINE float mlx_param(const void *p, exo_dtype type, int64_t i) {
    if (type == EXO_DTYPE_BF16) return cpu_bf16_to_f32(cpu_load_u16((const uint16_t *)p + i));
    if (type == EXO_DTYPE_F16) return cpu_f16_to_f32(cpu_load_u16((const uint16_t *)p + i));
    return ((const float *)p)[i];
}

/* 16 consecutive per-group values (scales or biases) from index i as float32; mask: valid lanes. */
MLX_INLINE MLX_AVX512 __m512 mlx_load_params16(const void *p, exo_dtype type, int64_t i, __mmask16 mask) {
    if (type == EXO_DTYPE_BF16) {
        __m256i h = _mm256_maskz_loadu_epi16(mask, (const uint16_t *)p + i);
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    if (type == EXO_DTYPE_F16) return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, (const uint16_t *)p + i));
    return _mm512_maskz_loadu_ps(mask, (const float *)p + i);
}

/* Prefetches the scales and biases of weight rows [row, row + rows) (clamped to the matrix's
 * n_rows) into L1. They are arrays apart from the codes, a line or a few per row, so the
 * hardware prefetcher does not follow them; unprefetched, a tile's demand misses on them were a
 * quarter of 4-bit decode's time (perf, 1B shape, Zen 5). Called for the next tile while this
 * one streams its codes. */
MLX_INLINE void mlx_prefetch_params(const cpu_quant *q, int64_t row, int64_t rows, int64_t groups, int64_t n_rows) {
    if (row + rows > n_rows) rows = n_rows - row;
    if (rows <= 0) return;
    size_t size = exo_dtype_size(q->type);
    const char *s = (const char *)q->scales + (size_t)(row * groups) * size;
    const char *b = (const char *)q->biases + (size_t)(row * groups) * size;
    size_t bytes = (size_t)(rows * groups) * size;
    for (size_t off = 0; off < bytes; off += 64) {
        _mm_prefetch(s + off, _MM_HINT_T0);
        _mm_prefetch(b + off, _MM_HINT_T0);
    }
}

#endif
