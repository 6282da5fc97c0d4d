/* Deterministic random weights, fast enough to write 2.5 GB in seconds.
 *
 * Element i of a stream is splitmix64(seed + i * golden): counter-based, so every element is
 * independent of the others (chunks and threads cannot change the result) and the loop has no
 * carried state, which lets the compiler vectorise it. The four 16-bit quarters of one 64-bit
 * draw are summed (Irwin-Hall, n = 4): bell-shaped, mean 0 and variance 1 after scaling, bounded
 * by +-3.46, which is what a weight initialiser wants (no outliers that would overflow f16). */
#include <math.h>
#include <string.h>

#include "synth.h"

#define GOLDEN 0x9e3779b97f4a7c15ull

static inline uint64_t splitmix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint64_t synth_tensor_seed(uint64_t seed, const char *name) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a of the name */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) h = (h ^ *p) * 0x100000001b3ull;
    return splitmix64(splitmix64(seed + GOLDEN) ^ h);
}

/* Sum of four uniform 16-bit numbers: mean 4 * 32767.5, standard deviation 65536 / sqrt(3)
 * (to within 1e-9 relative). */
#define IH_MEAN 131070.0f
#define IH_SCALE (1.7320508075688772f / 65536.0f)

static inline float normalish(uint64_t seed, uint64_t i) {
    uint64_t r = splitmix64(seed + i * GOLDEN);
    uint32_t s = (uint32_t)(r & 0xffff) + (uint32_t)((r >> 16) & 0xffff) + (uint32_t)((r >> 32) & 0xffff) +
                 (uint32_t)(r >> 48);
    return ((float)s - IH_MEAN) * IH_SCALE;
}

static inline uint32_t float_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* Round to nearest even; the values here are finite, so NaN needs no case. */
static inline uint16_t float_to_bf16(float f) {
    uint32_t u = float_bits(f);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* IEEE half, round to nearest even, subnormals included (weights of std 0.02 reach them). */
static uint16_t float_to_f16(float f) {
    uint32_t u = float_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    float a = fabsf(f);
    if (a >= 65520.0f) return sign | 0x7c00u; /* overflow: infinity */
    if (a < 6.103515625e-05f) {               /* below the smallest normal: a multiple of 2^-24 */
        return sign | (uint16_t)lrintf(a * 16777216.0f);
    }
    uint32_t au = u & 0x7fffffffu;
    uint32_t mant = au & 0x7fffffu;
    int32_t exp = (int32_t)(au >> 23) - 127 + 15;
    uint32_t h = ((uint32_t)exp << 10) | (mant >> 13);
    uint32_t rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++; /* a carry into the exponent is right */
    return sign | (uint16_t)h;
}

void synth_fill(synth_dtype dtype, uint64_t seed, uint64_t first, size_t count, float mean, float std,
                void *out) {
    switch (dtype) {
    case SYNTH_BF16: {
        uint16_t *o = out;
        for (size_t k = 0; k < count; k++) o[k] = float_to_bf16(mean + std * normalish(seed, first + k));
        break;
    }
    case SYNTH_F16: {
        uint16_t *o = out;
        for (size_t k = 0; k < count; k++) o[k] = float_to_f16(mean + std * normalish(seed, first + k));
        break;
    }
    case SYNTH_F32: {
        float *o = out;
        for (size_t k = 0; k < count; k++) o[k] = mean + std * normalish(seed, first + k);
        break;
    }
    }
}

bool synth_dtype_parse(const char *text, synth_dtype *out) {
    if (strcmp(text, "bf16") == 0) *out = SYNTH_BF16;
    else if (strcmp(text, "f16") == 0) *out = SYNTH_F16;
    else if (strcmp(text, "f32") == 0) *out = SYNTH_F32;
    else return false;
    return true;
}

uint32_t synth_dtype_size(synth_dtype dtype) { return dtype == SYNTH_F32 ? 4 : 2; }

const char *synth_dtype_safetensors_name(synth_dtype dtype) {
    return dtype == SYNTH_BF16 ? "BF16" : dtype == SYNTH_F16 ? "F16" : "F32";
}

const char *synth_dtype_torch_name(synth_dtype dtype) {
    return dtype == SYNTH_BF16 ? "bfloat16" : dtype == SYNTH_F16 ? "float16" : "float32";
}

void synth_fill_words(uint64_t seed, uint64_t first, size_t count, uint32_t *out) {
    for (size_t k = 0; k < count; k++) out[k] = (uint32_t)(splitmix64(seed + (first + k) * GOLDEN) >> 32);
}
