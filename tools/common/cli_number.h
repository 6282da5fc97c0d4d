/* Strict numbers for the tools' command lines. strtoul and atof take "3.7" as 3, "-1" as a huge
 * value, "1e3" as 1 and "12abc" as 12 without a word; these refuse anything but the plain form
 * and print one line naming the tool, the option, the accepted range and the text given. */
#ifndef EXO_TOOLS_CLI_NUMBER_H
#define EXO_TOOLS_CLI_NUMBER_H

#include <stdint.h>

/* A whole decimal number in [lo, hi]: digits only, with a leading '-' only when lo < 0 (no '+',
 * spaces, fraction, exponent, hex or overflow). Returns 1 and sets *out, else prints
 * "TOOL: OPTION expects a whole number in [lo, hi], got 'TEXT'" to stderr and returns 0. */
int cli_parse_int(const char *tool, const char *option, const char *text, int64_t lo, int64_t hi, int64_t *out);

/* As cli_parse_int for a uint32_t. */
int cli_parse_u32(const char *tool, const char *option, const char *text, uint32_t lo, uint32_t hi, uint32_t *out);

/* A finite decimal number in [lo, hi] ("0.7", "1e-3", "-2"; no spaces, hex, inf or nan). */
int cli_parse_real(const char *tool, const char *option, const char *text, double lo, double hi, double *out);

/* A quantization spec "mlx-q<BITS>-g<GROUP>" (MLX affine: BITS 2, 3, 4, 5, 6 or 8; GROUP 32, 64 or
 * 128), e.g. "mlx-q4-g64" (mlx-lm's default) or "mlx-q8-g32"; nothing else (no spaces, signs,
 * leading zeros or suffixes). Returns 1 and sets *bits and *group, else prints
 * "TOOL: OPTION expects mlx-q<bits>-g<group> ..., got 'TEXT'" to stderr and returns 0. */
int cli_parse_quant(const char *tool, const char *option, const char *text, uint32_t *bits, uint32_t *group);

/* A KV cache dtype for exo_shard_options.kv_dtype: "f32", "bf16" or "f16" (EXO_KV_DTYPE_F32, _BF16,
 * _F16; the values of exo.h's exo_kv_dtype). Returns 1 and sets *out, else prints
 * "TOOL: OPTION expects f32, bf16 or f16, got 'TEXT'" to stderr and returns 0. */
int cli_parse_kv_dtype(const char *tool, const char *option, const char *text, uint32_t *out);

/* "f32", "bf16" or "f16" for an exo_kv_dtype value; "default" for EXO_KV_DTYPE_DEFAULT. */
const char *cli_kv_dtype_name(uint32_t kv_dtype);

#endif
