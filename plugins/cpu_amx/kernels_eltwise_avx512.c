/* AVX-512 element-wise kernels: ADD, MUL, the gated MLP activation (GLU) and RoPE. They are
 * small next to the matmuls, but a decode step runs a few hundred of them and a prefill applies
 * GLU's exponential to every one of tokens x intermediate values, so the scalar double-precision
 * reference versions would cost a visible share of the step. Everything stays float32 with
 * errors of a few ulps; the shapes and dtypes they do not accelerate go to the reference kernel. */
#include "kernels_fast.h"

#include "kernels_math_avx512.h"
#include "kernels_ref.h"

#include <math.h>

#define AVX512 CPU_AVX512
#define INLINE CPU_INLINE

#define ROPE_MAX_HALF 256 /* rotated pairs per head handled on the stack */

/* dst = a (op) b over [begin, end), where b repeats every b_count elements. Vectorised over
 * runs that do not cross a repetition boundary. */
INLINE AVX512 void binary_f32(const cpu_binary_args *a, int64_t begin, int64_t end, int mul) {
    const float *b = a->b;
    for (int64_t i = begin; i < end;) {
        int64_t bi = i % a->b_count;
        int64_t run = a->b_count - bi < end - i ? a->b_count - bi : end - i;
        for (int64_t j = 0; j < run; j += 16) {
            __mmask16 m = cpu_tail_mask(run - j);
            __m512 x = _mm512_maskz_loadu_ps(m, a->a + i + j), y = _mm512_maskz_loadu_ps(m, b + bi + j);
            _mm512_mask_storeu_ps(a->dst + i + j, m, mul ? _mm512_mul_ps(x, y) : _mm512_add_ps(x, y));
        }
        i += run;
    }
}

AVX512 void cpu_avx512_add(void *args, int64_t begin, int64_t end, uint32_t thread) {
    const cpu_binary_args *a = args;
    if (a->b_type != EXO_DTYPE_F32) {
        cpu_ref_add(args, begin, end, thread);
        return;
    }
    binary_f32(a, begin, end, 0);
}

AVX512 void cpu_avx512_mul(void *args, int64_t begin, int64_t end, uint32_t thread) {
    const cpu_binary_args *a = args;
    if (a->b_type != EXO_DTYPE_F32) {
        cpu_ref_mul(args, begin, end, thread);
        return;
    }
    binary_f32(a, begin, end, 1);
}

/* SiLU(g) = g * sigmoid(g); GELU-tanh(g) = 0.5 g (1 + tanh(y)) = g * sigmoid(2y) with
 * y = sqrt(2/pi) (g + 0.044715 g^3), which avoids tanh's cancellation near 0. */
AVX512 void cpu_avx512_glu(void *args, int64_t begin, int64_t end, uint32_t thread) {
    (void)thread;
    const cpu_glu_args *a = args;
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 lim = _mm512_set1_ps(a->limit), nlim = _mm512_set1_ps(-a->limit), alpha = _mm512_set1_ps(a->alpha);
    for (int64_t i = begin; i < end; i += 16) {
        __mmask16 m = cpu_tail_mask(end - i);
        __m512 g = _mm512_maskz_loadu_ps(m, a->gate + i), u = _mm512_maskz_loadu_ps(m, a->up + i);
        __m512 z = g;
        if (a->act == EXO_ACT_SWIGLU_CLAMP) { /* (clamp(u) + 1) * g * sigmoid(alpha * g), g = min(gate, limit) */
            g = _mm512_min_ps(g, lim);
            u = _mm512_add_ps(_mm512_max_ps(_mm512_min_ps(u, lim), nlim), one);
            z = _mm512_mul_ps(alpha, g);
        }
        if (a->act == EXO_ACT_GELU_TANH) {
            __m512 g3 = _mm512_mul_ps(_mm512_mul_ps(g, g), g);
            __m512 inner = _mm512_fmadd_ps(_mm512_set1_ps(0.044715f), g3, g);
            z = _mm512_mul_ps(_mm512_set1_ps(2.0f * 0.79788456080286535588f), inner);
        }
        __m512 sig = _mm512_div_ps(one, _mm512_add_ps(one, cpu_exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), z))));
        _mm512_mask_storeu_ps(a->dst + i, m, _mm512_mul_ps(_mm512_mul_ps(g, sig), u));
    }
}

/* Per token: the angles' cos/sin exactly as the reference computes them (double, rounded to
 * float, times the attention factor), then every head is rotated with float32 FMAs. The NEOX
 * layout rotates two contiguous halves, so it vectorises directly; the interleaved layout goes
 * to the reference kernel. */
AVX512 void cpu_avx512_rope(void *args, int64_t begin, int64_t end, uint32_t thread) {
    const cpu_rope_args *a = args;
    int64_t half = a->n_rot / 2;
    if (a->mode != EXO_ROPE_NEOX || half > ROPE_MAX_HALF) {
        cpu_ref_rope(args, begin, end, thread);
        return;
    }
    float cs[ROPE_MAX_HALF], sn[ROPE_MAX_HALF];
    int64_t row = a->n_heads * a->head_dim;
    for (int64_t t = begin; t < end; t++) {
        float p = (float)a->pos[t];
        for (int64_t i = 0; i < half; i++) {
            float angle = p * a->inv_freq[i];
            cs[i] = (float)cos((double)angle) * a->attn_factor;
            sn[i] = (float)sin((double)angle) * a->attn_factor;
        }
        const float *x = a->x + t * row;
        float *out = a->dst + t * row;
        for (int64_t h = 0; h < a->n_heads; h++) {
            const float *xh = x + h * a->head_dim;
            float *oh = out + h * a->head_dim;
            for (int64_t i = 0; i < half; i += 16) {
                __mmask16 m = cpu_tail_mask(half - i);
                __m512 c = _mm512_maskz_loadu_ps(m, cs + i), s = _mm512_maskz_loadu_ps(m, sn + i);
                __m512 x0 = _mm512_maskz_loadu_ps(m, xh + i), x1 = _mm512_maskz_loadu_ps(m, xh + half + i);
                __m512 o0 = _mm512_fmsub_ps(x0, c, _mm512_mul_ps(x1, s));
                __m512 o1 = _mm512_fmadd_ps(x1, c, _mm512_mul_ps(x0, s));
                _mm512_mask_storeu_ps(oh + i, m, o0);
                _mm512_mask_storeu_ps(oh + half + i, m, o1);
            }
            /* Dimensions past n_rot pass through unchanged. */
            for (int64_t j = 2 * half; j < a->head_dim; j += 16) {
                __mmask16 m = cpu_tail_mask(a->head_dim - j);
                _mm512_mask_storeu_ps(oh + j, m, _mm512_maskz_loadu_ps(m, xh + j));
            }
        }
    }
}
