/* In-register transpose of a 16x16 block of 32-bit values, shared by the GEMMs' panel packing:
 * kernels_gemm_avx512.c (float weights, activations) and kernels_mlx_gemm_int8.c (dwords of four
 * int8 codes, cast to float vectors: the shuffles move bits, they do no arithmetic). Include
 * only from files compiled with AVX-512 target attributes (F at least). */
#ifndef EXO_CPU_KERNELS_TRANSPOSE_AVX512_H
#define EXO_CPU_KERNELS_TRANSPOSE_AVX512_H

#include <immintrin.h>

/* r[i] = row i on entry, column i on exit. */
static inline __attribute__((always_inline, target("avx512f"))) void cpu_transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int h = 0; h < 16; h += 8)
        for (int i = 0; i < 4; i++) {
            t[h + i] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0x88);
            t[h + i + 4] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0xdd);
        }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    }
}

#endif
