/* Vector math shared by the AVX-512 kernel files. Include only from files whose functions
 * carry the AVX-512 target attribute (these helpers are always inlined into them). */
#ifndef EXO_CPU_KERNELS_MATH_AVX512_H
#define EXO_CPU_KERNELS_MATH_AVX512_H

#include <immintrin.h>
#include <stdint.h>

#define CPU_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))
#define CPU_INLINE static inline __attribute__((always_inline))

/* The first `left` lanes (all 16 when left >= 16). */
CPU_INLINE CPU_AVX512 __mmask16 cpu_tail_mask(int64_t left) {
    return left >= 16 ? 0xffff : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
}

/* exp(x) for float32 (Cephes expf: range reduction by ln 2 in two parts, degree-6 polynomial,
 * then scaling by 2^n with vscalefps, which cannot overflow in between). About 1 ulp; -inf
 * gives 0 (the input is clamped, then the result scaled to underflow). */
CPU_INLINE CPU_AVX512 __m512 cpu_exp_ps(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(88.7f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

#endif
