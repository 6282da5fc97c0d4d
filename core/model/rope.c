/* RoPE inverse frequencies, as transformers' ROPE_INIT_FUNCTIONS (modeling_rope_utils.py)
 * compute them at model init: default, linear, dynamic, llama3 and yarn.
 *
 * transformers works in float32 tensors with Python-float (double) scalars; here everything is
 * double and only the result is rounded to float, so values agree with the reference to float
 * rounding and are closer to the exact formula. */
#include <math.h>

#include "model/config.h"

uint32_t exo_rope_n_rot(const exo_model_config *cfg) {
    /* int(head_dim * partial_rotary_factor); the slack absorbs the factor being stored as a
     * float (0.4f * 80 = 31.9999... must still give 32). Rounded down to even: RoPE rotates pairs. */
    double exact = cfg->head_dim * (double)cfg->partial_rotary_factor;
    uint32_t n = (uint32_t)floor(exact + 1e-3);
    if (n > cfg->head_dim) n = cfg->head_dim;
    return n & ~1u;
}

/* base^(-2i/dim): the unscaled frequency of rotary pair i. */
static double rope_default(double base, uint32_t i, uint32_t dim) {
    return 1.0 / pow(base, (double)(2 * i) / (double)dim);
}

/* Llama 3.1: keep high frequencies, divide low ones by factor, blend in between by wavelength. */
static double rope_llama3(const exo_model_config *cfg, double inv) {
    const double factor = cfg->rope_factor;
    const double low = cfg->rope_low_freq_factor, high = cfg->rope_high_freq_factor;
    const double old_context = (double)cfg->rope_original_max_position;
    const double low_freq_wavelen = old_context / low;
    const double high_freq_wavelen = old_context / high;
    const double wavelen = 2.0 * M_PI / inv;
    if (wavelen < high_freq_wavelen) return inv;
    if (wavelen > low_freq_wavelen) return inv / factor;
    const double smooth = (old_context / wavelen - low) / (high - low);
    return (1.0 - smooth) * inv / factor + smooth * inv;
}

/* YaRN: the dimension at which a frequency completes `rotations` turns over the original
 * context (inverse of the wavelength formula). */
static double yarn_correction_dim(double rotations, uint32_t dim, double base, double max_pos) {
    return (dim * log(max_pos / (rotations * 2.0 * M_PI))) / (2.0 * log(base));
}

static void rope_yarn(const exo_model_config *cfg, float *out, uint32_t dim, float *attention) {
    const double base = cfg->rope_theta, factor = cfg->rope_factor;
    const double max_pos = (double)cfg->rope_original_max_position;
    double low = yarn_correction_dim(cfg->yarn_beta_fast, dim, base, max_pos);
    double high = yarn_correction_dim(cfg->yarn_beta_slow, dim, base, max_pos);
    if (cfg->yarn_truncate) {
        low = floor(low);
        high = ceil(high);
    }
    if (low < 0) low = 0;
    if (high > dim - 1) high = dim - 1;
    if (low == high) high += 0.001; /* transformers' guard against a zero-width ramp */
    for (uint32_t i = 0; i < dim / 2; i++) {
        double ramp = ((double)i - low) / (high - low);
        ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
        const double extrapolation_weight = 1.0 - ramp;
        const double extrapolated = rope_default(base, i, dim);
        const double interpolated = extrapolated / factor;
        out[i] = (float)(interpolated * (1.0 - extrapolation_weight) +
                         extrapolated * extrapolation_weight);
    }
    double mscale = cfg->yarn_attention_factor;
    if (mscale <= 0) mscale = factor <= 1 ? 1.0 : 0.1 * log(factor) + 1.0;
    if (attention) *attention = (float)mscale;
}

void exo_rope_inv_freq(const exo_model_config *cfg, float *out, uint32_t n_rot, float *attention_factor) {
    if (attention_factor) *attention_factor = 1.0f;
    if (!cfg || !out || n_rot < 2) return;
    const double base = cfg->rope_theta;
    switch (cfg->rope_scaling) {
    case EXO_ROPE_SCALING_YARN:
        rope_yarn(cfg, out, n_rot, attention_factor);
        return;
    case EXO_ROPE_SCALING_LINEAR:
        for (uint32_t i = 0; i < n_rot / 2; i++)
            out[i] = (float)(rope_default(base, i, n_rot) / cfg->rope_factor);
        return;
    case EXO_ROPE_SCALING_LLAMA3:
        for (uint32_t i = 0; i < n_rot / 2; i++)
            out[i] = (float)rope_llama3(cfg, rope_default(base, i, n_rot));
        return;
    case EXO_ROPE_SCALING_DYNAMIC: /* at init (seq_len = max_position_embeddings) = default */
    case EXO_ROPE_SCALING_NONE:
    default:
        for (uint32_t i = 0; i < n_rot / 2; i++) out[i] = (float)rope_default(base, i, n_rot);
        return;
    }
}
