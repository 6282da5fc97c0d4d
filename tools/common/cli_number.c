#include "cli_number.h"

#include "exo.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_parse_int(const char *tool, const char *option, const char *text, int64_t lo, int64_t hi, int64_t *out) {
    const char *digits = text[0] == '-' && lo < 0 ? text + 1 : text;
    bool plain = *digits && strspn(digits, "0123456789") == strlen(digits);
    errno = 0;
    char *end = NULL;
    long long v = plain ? strtoll(text, &end, 10) : 0;
    if (!plain || errno == ERANGE || v < lo || v > hi) {
        fprintf(stderr, "%s: %s expects a whole number in [%" PRId64 ", %" PRId64 "], got '%s'\n", tool, option, lo, hi,
                text);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_parse_u32(const char *tool, const char *option, const char *text, uint32_t lo, uint32_t hi, uint32_t *out) {
    int64_t v = 0;
    if (!cli_parse_int(tool, option, text, lo, hi, &v)) return 0;
    *out = (uint32_t)v;
    return 1;
}

int cli_parse_real(const char *tool, const char *option, const char *text, double lo, double hi, double *out) {
    /* strtod also reads leading spaces, hex floats, "inf" and "nan": only plain decimals pass. */
    bool plain = *text && strspn(text, "0123456789.eE+-") == strlen(text);
    errno = 0;
    char *end = NULL;
    double v = plain ? strtod(text, &end) : 0;
    if (!plain || end == text || *end || errno == ERANGE || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "%s: %s expects a number in [%g, %g], got '%s'\n", tool, option, lo, hi, text);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_parse_quant(const char *tool, const char *option, const char *text, uint32_t *bits, uint32_t *group) {
    static const char *const bit_names[] = {"2", "3", "4", "5", "6", "8"};
    static const char *const group_names[] = {"32", "64", "128"};
    if (text && strncmp(text, "mlx-q", 5) == 0) {
        const char *p = text + 5;
        for (size_t i = 0; i < sizeof bit_names / sizeof bit_names[0]; i++) {
            size_t n = strlen(bit_names[i]);
            if (strncmp(p, bit_names[i], n) != 0 || strncmp(p + n, "-g", 2) != 0) continue;
            for (size_t j = 0; j < sizeof group_names / sizeof group_names[0]; j++)
                if (strcmp(p + n + 2, group_names[j]) == 0) {
                    *bits = (uint32_t)atoi(bit_names[i]);
                    *group = (uint32_t)atoi(group_names[j]);
                    return 1;
                }
        }
    }
    fprintf(stderr,
            "%s: %s expects mlx-q<bits>-g<group> (bits 2, 3, 4, 5, 6 or 8; group 32, 64 or 128; e.g. mlx-q4-g64), "
            "got '%s'\n", tool, option, text ? text : "");
    return 0;
}

/* Indexed by exo_kv_dtype (exo.h): DEFAULT, F32, BF16, F16. */
static const char *const kv_dtype_names[] = {"default", "f32", "bf16", "f16"};

int cli_parse_kv_dtype(const char *tool, const char *option, const char *text, uint32_t *out) {
    for (uint32_t i = EXO_KV_DTYPE_F32; i < sizeof kv_dtype_names / sizeof kv_dtype_names[0]; i++)
        if (text && strcmp(text, kv_dtype_names[i]) == 0) {
            *out = i;
            return 1;
        }
    fprintf(stderr, "%s: %s expects f32, bf16 or f16, got '%s'\n", tool, option, text ? text : "");
    return 0;
}

const char *cli_kv_dtype_name(uint32_t kv_dtype) {
    return kv_dtype < sizeof kv_dtype_names / sizeof kv_dtype_names[0] ? kv_dtype_names[kv_dtype] : "unknown";
}
