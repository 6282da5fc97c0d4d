/* AVX-512 matmul on MLX affine weights (EXO_DTYPE_MLX_AFFINE; abi/exo_plugin.h, "Quantized
 * weights"): each weight row is dequantized in the kernel, group by group, into the calling
 * thread's workspace (k floats, never the whole weight), as scale * q + bias in float exactly as
 * the reference kernel computes it, then multiplied with every row of x by float32 FMAs. 4- and
 * 8-bit codes are unpacked 16 at a time in registers; 2-, 3-, 5- and 6-bit codes one at a time
 * from the row's bit stream. */
#include "kernels_fast.h"

#include "kernels_ref.h"

#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))
#define INLINE static inline __attribute__((always_inline))

/* 16 codes from element j (a multiple of 16) of a 4- or 8-bit row, as floats. */
INLINE AVX512 __m512 codes16(const uint32_t *row, int64_t j, uint32_t bits) {
    if (bits == 8) return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)((const uint8_t *)row + j))));
    /* 4 bits: byte i holds element 2i in its low nibble and 2i + 1 in its high nibble. */
    __m128i b = _mm_loadl_epi64((const __m128i *)((const uint8_t *)row + j / 2));
    __m128i nib = _mm_set1_epi8(0x0f);
    __m128i lo = _mm_and_si128(b, nib), hi = _mm_and_si128(_mm_srli_epi16(b, 4), nib);
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_unpacklo_epi8(lo, hi)));
}

/* Row n of the weight, dequantized into out[k]. */
INLINE AVX512 void dequant_row(const cpu_matmul_args *a, int64_t n, float *out) {
    const cpu_quant *q = &a->q;
    const uint32_t *row = (const uint32_t *)a->w + n * (a->k * q->bits / 32);
    int64_t groups = a->k / q->group;
    for (int64_t g = 0; g < groups; g++) {
        float scale = cpu_ref_load(q->scales, q->type, n * groups + g);
        float bias = cpu_ref_load(q->biases, q->type, n * groups + g);
        int64_t j0 = g * q->group, j1 = j0 + q->group;
        if (q->bits == 4 || q->bits == 8) {
            __m512 s = _mm512_set1_ps(scale), b = _mm512_set1_ps(bias);
            for (int64_t j = j0; j < j1; j += 16) {
                /* Rounded as the reference's scale * q + bias (a product, then a sum), not fused. */
                __m512 w = _mm512_add_ps(_mm512_mul_ps(s, codes16(row, j, q->bits)), b);
                _mm512_storeu_ps(out + j, w);
            }
        } else {
            for (int64_t j = j0; j < j1; j++) out[j] = scale * (float)cpu_mlx_code(row, j, q->bits) + bias;
        }
    }
}

AVX512 void cpu_mlx_matmul(void *args, int64_t begin, int64_t end, uint32_t thread) {
    const cpu_matmul_args *a = args;
    float *w = (float *)(a->workspace + (size_t)thread * a->workspace_stride);
    for (int64_t n = begin; n < end; n++) {
        dequant_row(a, n, w);
        float bias = a->bias ? a->bias[n] : 0.0f;
        for (int64_t m = 0; m < a->m; m++) {
            const float *x = a->x + m * a->k;
            __m512 acc = _mm512_setzero_ps();
            int64_t j = 0;
            for (; j + 16 <= a->k; j += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(x + j), _mm512_loadu_ps(w + j), acc);
            float sum = _mm512_reduce_add_ps(acc);
            for (; j < a->k; j++) sum += x[j] * w[j];
            a->dst[m * a->n + n] = sum + bias;
        }
    }
}
