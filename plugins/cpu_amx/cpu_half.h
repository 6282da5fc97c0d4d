/* Exact conversions of the 16-bit float formats to float32 (every f16 and bf16 value is exactly
 * representable in float32), and the Q8_0 block layout shared with ggml. */
#ifndef EXO_CPU_HALF_H
#define EXO_CPU_HALF_H

#include <stdint.h>
#include <string.h>

static inline float cpu_bits_to_f32(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* bf16 is the upper half of a float32. */
static inline float cpu_bf16_to_f32(uint16_t h) { return cpu_bits_to_f32((uint32_t)h << 16); }

/* IEEE binary16 -> binary32, including subnormals, infinities and NaN payloads. */
static inline float cpu_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) return cpu_bits_to_f32(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) {
        if (mant == 0) return cpu_bits_to_f32(sign);
        /* Subnormal: value = mant * 2^-24, exact in float32. */
        float v = (float)mant * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return cpu_bits_to_f32(sign | ((exp + 112u) << 23) | (mant << 13));
}

/* float32 -> bf16, rounding to nearest even; a NaN stays a (quiet) NaN. */
static inline uint16_t cpu_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* float32 -> IEEE binary16, rounding to nearest even: what vcvtps2ph does with
 * _MM_FROUND_TO_NEAREST_INT (overflow to infinity, subnormals kept), NaN made quiet. */
static inline uint16_t cpu_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds to >= 65520: infinity */
    if (a < 0x38800000u) {                                   /* below 2^-14: subnormal or zero */
        /* Units of 2^-24: adding 2^-1 * 2^23 lines the binary point up with float32's mantissa,
         * whose own rounding (to nearest even) does the work. */
        float v;
        memcpy(&v, &a, sizeof v);
        float r = v + 0.5f;
        uint32_t bits;
        memcpy(&bits, &r, sizeof bits);
        return (uint16_t)(sign | (uint16_t)(bits - 0x3f000000u));
    }
    uint32_t r = a - 0x38000000u; /* rebias the exponent by 112 */
    r = (r + 0xfffu + ((r >> 13) & 1u)) >> 13;
    return (uint16_t)(sign | (uint16_t)r);
}

static inline uint16_t cpu_load_u16(const void *p) {
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* ggml's block_q8_0: an f16 scale followed by 32 signed bytes; value = scale * q. */
#define CPU_Q8_0_BLOCK 32
#define CPU_Q8_0_BYTES 34

#endif
