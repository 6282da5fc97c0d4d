/* Plain-C reference kernels (see kernels_ref.h). Sums and transcendental functions run in double
 * and round once to float, so these kernels stay within a few float ulps of float64 math. */
#include "kernels_ref.h"

#include "cpu_half.h"

#include <math.h>
#include <string.h>

float cpu_ref_load(const void *data, exo_dtype type, int64_t index) {
    switch (type) {
    case EXO_DTYPE_F16: return cpu_f16_to_f32(cpu_load_u16((const uint16_t *)data + index));
    case EXO_DTYPE_BF16: return cpu_bf16_to_f32(cpu_load_u16((const uint16_t *)data + index));
    default: return ((const float *)data)[index];
    }
}

void cpu_ref_load_row(const void *data, exo_dtype type, int64_t k, int64_t row, float *out) {
    if (type == EXO_DTYPE_Q8_0) {
        const uint8_t *blocks = (const uint8_t *)data + row * (k / CPU_Q8_0_BLOCK) * CPU_Q8_0_BYTES;
        for (int64_t b = 0; b < k / CPU_Q8_0_BLOCK; b++) {
            const uint8_t *blk = blocks + b * CPU_Q8_0_BYTES;
            float d = cpu_f16_to_f32(cpu_load_u16(blk));
            const int8_t *q = (const int8_t *)(blk + 2);
            for (int j = 0; j < CPU_Q8_0_BLOCK; j++) out[b * CPU_Q8_0_BLOCK + j] = d * (float)q[j];
        }
        return;
    }
    for (int64_t j = 0; j < k; j++) out[j] = cpu_ref_load(data, type, row * k + j);
}

void cpu_ref_mlx_row(const void *w, const cpu_quant *q, int64_t k, int64_t row, float *out) {
    const uint32_t *words = (const uint32_t *)w + row * (k * q->bits / 32);
    int64_t groups = k / q->group;
    for (int64_t g = 0; g < groups; g++) {
        float scale = cpu_ref_load(q->scales, q->type, row * groups + g);
        float bias = cpu_ref_load(q->biases, q->type, row * groups + g);
        for (int64_t j = g * q->group; j < (g + 1) * q->group; j++)
            out[j] = scale * (float)cpu_mlx_code(words, j, q->bits) + bias;
    }
}

void cpu_ref_get_rows(void *args, int64_t begin, int64_t end, uint32_t thread) {
    const cpu_get_rows_args *a = args;
    for (int64_t t = begin; t < end; t++) {
        float *out = a->dst + t * a->width;
        if (a->table_type == EXO_DTYPE_MLX_AFFINE)
            cpu_ref_mlx_row(a->table, &a->q, a->width, a->ids[t], out);
        else
            cpu_ref_load_row(a->table, a->table_type, a->width, a->ids[t], out);
        if (a->scale != 1.0f)
            for (int64_t j = 0; j < a->width; j++) out[j] = (float)((double)out[j] * a->scale);
    }
}

void cpu_ref_rms_norm(void *args, int64_t begin, int64_t end, uint32_t thread) {
    const cpu_rms_norm_args *a = args;
    for (int64_t r = begin; r < end; r++) {
        const float *x = a->x + r * a->width;
        double sum = 0.0;
        for (int64_t j = 0; j < a->width; j++) sum += (double)x[j] * x[j];
        double inv = 1.0 / sqrt(sum / (double)a->width + (double)a->eps);
        float *out = a->dst + r * a->width;
        for (int64_t j = 0; j < a->width; j++) {
            double w = cpu_ref_load(a->w, a->w_type, j);
            if (a->one_plus) w += 1.0;
            out[j] = (float)((double)x[j] * inv * w);
        }
    }
}

/* Dot product of x (float) with row n of W, accumulated in double. */
static double dot_weight_row(const float *x, const void *w, exo_dtype type, const cpu_quant *q, int64_t k,
                             int64_t n) {
    double acc = 0.0;
    switch (type) {
    case EXO_DTYPE_MLX_AFFINE: {
        /* Each weight dequantized in float, exactly as cpu_ref_mlx_row gives it. */
        const uint32_t *words = (const uint32_t *)w + n * (k * q->bits / 32);
        int64_t groups = k / q->group;
        for (int64_t g = 0; g < groups; g++) {
            float scale = cpu_ref_load(q->scales, q->type, n * groups + g);
            float bias = cpu_ref_load(q->biases, q->type, n * groups + g);
            for (int64_t j = g * q->group; j < (g + 1) * q->group; j++)
                acc += (double)x[j] * (scale * (float)cpu_mlx_code(words, j, q->bits) + bias);
        }
        break;
    }
    case EXO_DTYPE_F32: {
        const float *row = (const float *)w + n * k;
        for (int64_t j = 0; j < k; j++) acc += (double)x[j] * row[j];
        break;
    }
    case EXO_DTYPE_F16: {
        const uint16_t *row = (const uint16_t *)w + n * k;
        for (int64_t j = 0; j < k; j++) acc += (double)x[j] * cpu_f16_to_f32(cpu_load_u16(row + j));
        break;
    }
    case EXO_DTYPE_BF16: {
        const uint16_t *row = (const uint16_t *)w + n * k;
        for (int64_t j = 0; j < k; j++) acc += (double)x[j] * cpu_bf16_to_f32(cpu_load_u16(row + j));
        break;
    }
    case EXO_DTYPE_Q8_0: {
        const uint8_t *blocks = (const uint8_t *)w + n * (k / CPU_Q8_0_BLOCK) * CPU_Q8_0_BYTES;
        for (int64_t b = 0; b < k / CPU_Q8_0_BLOCK; b++) {
            const uint8_t *blk = blocks + b * CPU_Q8_0_BYTES;
            const int8_t *q = (const int8_t *)(blk + 2);
            double part = 0.0;
            for (int j = 0; j < CPU_Q8_0_BLOCK; j++) part += (double)x[b * CPU_Q8_0_BLOCK + j] * q[j];
            acc += part * cpu_f16_to_f32(cpu_load_u16(blk));
        }
        break;
    }
    default: break;
    }
    return acc;
}

void cpu_ref_matmul(void *args, int64_t begin, int64_t end, uint32_t thread) {
    const cpu_matmul_args *a = args;
    for (int64_t n = begin; n < end; n++) {
        double bias = a->bias ? a->bias[n] : 0.0;
        for (int64_t m = 0; m < a->m; m++)
            a->dst[m * a->n + n] = (float)(dot_weight_row(a->x + m * a->k, a->w, a->w_type, &a->q, a->k, n) + bias);
    }
}

void cpu_ref_add(void *args, int64_t begin, int64_t end, uint32_t thread) {
    const cpu_binary_args *a = args;
    for (int64_t i = begin; i < end; i++)
        a->dst[i] = a->a[i] + cpu_ref_load(a->b, a->b_type, i % a->b_count);
}

void cpu_ref_mul(void *args, int64_t begin, int64_t end, uint32_t thread) {
    const cpu_binary_args *a = args;
    for (int64_t i = begin; i < end; i++)
        a->dst[i] = a->a[i] * cpu_ref_load(a->b, a->b_type, i % a->b_count);
}

void cpu_ref_glu(void *args, int64_t begin, int64_t end, uint32_t thread) {
    const cpu_glu_args *a = args;
    for (int64_t i = begin; i < end; i++) {
        double g = a->gate[i], act;
        if (a->act == EXO_ACT_SWIGLU_CLAMP) { /* GptOssExperts: clamp, then (up + 1) * glu */
            double lim = a->limit, u = a->up[i];
            g = g < lim ? g : lim;
            u = u < -lim ? -lim : u > lim ? lim : u;
            a->dst[i] = (float)((u + 1.0) * g / (1.0 + exp(-(double)a->alpha * g)));
            continue;
        }
        if (a->act == EXO_ACT_GELU_TANH) {
            const double sqrt_2_over_pi = 0.79788456080286535587989211986876;
            act = 0.5 * g * (1.0 + tanh(sqrt_2_over_pi * (g + 0.044715 * g * g * g)));
        } else {
            act = g / (1.0 + exp(-g));
        }
        a->dst[i] = (float)(act * a->up[i]);
    }
}

/* Hugging Face order of operations: the angle is float32(pos) * inv_freq in float32, cos/sin are
 * rounded to float32 and multiplied by the attention factor in float32; the rotation itself is
 * evaluated in double and rounded once. */
void cpu_ref_rope(void *args, int64_t begin, int64_t end, uint32_t thread) {
    const cpu_rope_args *a = args;
    int64_t half = a->n_rot / 2;
    for (int64_t t = begin; t < end; t++) {
        float p = (float)a->pos[t];
        const float *x = a->x + t * a->n_heads * a->head_dim;
        float *out = a->dst + t * a->n_heads * a->head_dim;
        if (out != x) memcpy(out, x, (size_t)(a->n_heads * a->head_dim) * sizeof(float));
        for (int64_t i = 0; i < half; i++) {
            float angle = p * a->inv_freq[i];
            float c = (float)cos((double)angle) * a->attn_factor;
            float s = (float)sin((double)angle) * a->attn_factor;
            int64_t i0 = a->mode == EXO_ROPE_NEOX ? i : 2 * i;
            int64_t i1 = a->mode == EXO_ROPE_NEOX ? i + half : 2 * i + 1;
            for (int64_t h = 0; h < a->n_heads; h++) {
                const float *xh = x + h * a->head_dim;
                float *oh = out + h * a->head_dim;
                double x0 = xh[i0], x1 = xh[i1];
                oh[i0] = (float)(x0 * c - x1 * s);
                oh[i1] = (float)(x1 * c + x0 * s);
            }
        }
    }
}

void cpu_ref_kv_write(void *args, int64_t begin, int64_t end, uint32_t thread) {
    const cpu_kv_write_args *a = args;
    size_t elem = exo_dtype_size(a->dtype);
    for (int64_t t = begin; t < end; t++) {
        int64_t first = (a->slots ? (int64_t)a->slots[t] * a->slot_elems : 0) + (int64_t)a->pos[t] * a->row_size;
        uint8_t *row = (uint8_t *)a->cache + (size_t)first * elem;
        const float *src = a->src + t * a->row_size;
        if (a->dtype == EXO_DTYPE_F32) {
            memcpy(row, src, (size_t)a->row_size * sizeof(float));
            continue;
        }
        for (int64_t i = 0; i < a->row_size; i++) {
            uint16_t h = a->dtype == EXO_DTYPE_BF16 ? cpu_f32_to_bf16(src[i]) : cpu_f32_to_f16(src[i]);
            memcpy(row + 2 * i, &h, sizeof h);
        }
    }
}

/* One query row against its visible cache rows with an online (streaming) softmax: the running
 * maximum rescales the accumulated weights, so no score row is ever stored. */
void cpu_ref_attention(void *args, int64_t begin, int64_t end, uint32_t thread) {
    const cpu_attention_args *a = args;
    int64_t d = a->head_dim, group = a->n_heads / a->n_kv_heads;
    int64_t kv_row = a->n_kv_heads * d;
    double *acc = (double *)(a->workspace + (size_t)thread * a->workspace_stride);
    for (int64_t item = begin; item < end; item++) {
        int64_t t = item / a->n_heads, h = item % a->n_heads, kvh = h / group;
        const float *q = a->q + (t * a->n_heads + h) * d;
        int64_t last = a->pos[t], slot = a->slots ? (int64_t)a->slots[t] * a->slot_elems : 0;
        int64_t first = a->window > 0 && last - a->window + 1 > 0 ? last - a->window + 1 : 0;
        double max = -INFINITY, denom = 0.0;
        for (int64_t j = 0; j < d; j++) acc[j] = 0.0;
        for (int64_t r = first; r <= last; r++) {
            int64_t row = slot + r * kv_row + kvh * d;
            double s = 0.0;
            for (int64_t j = 0; j < d; j++) s += (double)q[j] * cpu_ref_load(a->k, a->kv_dtype, row + j);
            s *= a->scale;
            if (a->softcap > 0.0f) s = a->softcap * tanh(s / a->softcap);
            if (s > max) {
                double rescale = exp(max - s); /* exp(-inf) = 0 on the first row */
                denom *= rescale;
                for (int64_t j = 0; j < d; j++) acc[j] *= rescale;
                max = s;
            }
            double p = exp(s - max);
            denom += p;
            for (int64_t j = 0; j < d; j++) acc[j] += p * cpu_ref_load(a->v, a->kv_dtype, row + j);
        }
        /* A sink is one more logit in the denominator only: the final maximum takes it in, and
         * the accumulated rows are rescaled to that maximum. */
        double norm = 1.0 / denom;
        if (a->sinks) {
            double sink = a->sinks[h], m = sink > max ? sink : max, r = exp(max - m);
            norm = r / (denom * r + exp(sink - m));
        }
        float *out = a->dst + (t * a->n_heads + h) * d;
        for (int64_t j = 0; j < d; j++) out[j] = (float)(acc[j] * norm);
    }
}

void cpu_ref_softcap(void *args, int64_t begin, int64_t end, uint32_t thread) {
    const cpu_softcap_args *a = args;
    for (int64_t i = begin; i < end; i++) a->dst[i] = (float)(a->cap * tanh((double)a->x[i] / a->cap));
}

/* The ABI's own rule (exo_argmax_row), which the compiler vectorises: a 128K-float row of
 * logits takes tens of microseconds, so this plain-C kernel is also the fast one. */
void cpu_ref_argmax(void *args, int64_t begin, int64_t end, uint32_t thread) {
    const cpu_argmax_args *a = args;
    for (int64_t r = begin; r < end; r++) a->dst[r] = (int32_t)exo_argmax_row(a->x + r * a->n, (uint32_t)a->n);
}

void cpu_ref_copy(void *args, int64_t begin, int64_t end, uint32_t thread) {
    const cpu_copy_args *a = args;
    if (a->src_type == a->dst_type) {
        memcpy((uint8_t *)a->dst + begin, (const uint8_t *)a->src + begin, (size_t)(end - begin));
        return;
    }
    for (int64_t i = begin; i < end; i++) ((float *)a->dst)[i] = cpu_ref_load(a->src, a->src_type, i);
}

/* The router's softmax over E logits, as float (max subtracted, sums in double). */
static void moe_softmax(const float *logits, int64_t experts, float *probs) {
    float mx = logits[0];
    for (int64_t e = 1; e < experts; e++) mx = logits[e] > mx ? logits[e] : mx;
    double sum = 0.0;
    for (int64_t e = 0; e < experts; e++) sum += exp((double)logits[e] - mx);
    for (int64_t e = 0; e < experts; e++) probs[e] = (float)(exp((double)logits[e] - mx) / sum);
}

/* sigmoid in float, as torch's float32 sigmoid of the router logits. */
static float moe_sigmoid(float x) { return (float)(1.0 / (1.0 + exp(-(double)x))); }

void cpu_ref_moe_topk(void *args, int64_t begin, int64_t end, uint32_t thread) {
    const cpu_moe_route_args *a = args;
    float probs[CPU_MOE_MAX_EXPERTS];
    uint8_t taken[CPU_MOE_MAX_EXPERTS];
    for (int64_t t = begin; t < end; t++) {
        const float *logits = a->scores + t * a->experts;
        if (a->rule == EXO_MOE_RULE_SIGMOID_BIAS) /* glm4_moe: the bias only ranks */
            for (int64_t e = 0; e < a->experts; e++) probs[e] = moe_sigmoid(logits[e]) + a->bias[e];
        else if (a->rule == EXO_MOE_RULE_TOPK_SOFTMAX) /* gpt_oss: the raw logits rank */
            memcpy(probs, logits, (size_t)a->experts * sizeof *probs);
        else
            moe_softmax(logits, a->experts, probs);
        memset(taken, 0, (size_t)a->experts);
        for (int64_t j = 0; j < a->k; j++) {
            int64_t best = -1;
            for (int64_t e = 0; e < a->experts; e++) /* strict >: a tie keeps the lower id */
                if (!taken[e] && (best < 0 || probs[e] > probs[best])) best = e;
            taken[best] = 1;
            a->ids[t * a->k + j] = (int32_t)best;
        }
    }
}

/* gpt_oss: softmax over the k selected logits (GptOssTopKRouter), in double. */
static void moe_weights_topk_softmax(const cpu_moe_route_args *a, int64_t t) {
    const float *logits = a->scores + t * a->experts;
    const int32_t *ids = a->ids + t * a->k;
    double mx = logits[ids[0]], sum = 0.0;
    for (int64_t j = 1; j < a->k; j++) mx = logits[ids[j]] > mx ? logits[ids[j]] : mx;
    for (int64_t j = 0; j < a->k; j++) sum += exp((double)logits[ids[j]] - mx);
    for (int64_t j = 0; j < a->k; j++)
        a->weights[t * a->k + j] = (float)(exp((double)logits[ids[j]] - mx) / sum * a->scale);
}

/* glm4_moe: the selected experts' sigmoid scores (without the bias), normalised by their sum +
 * 1e-20 (Glm4MoeMoE.route_tokens_to_experts), times routed_scaling_factor. */
static void moe_weights_sigmoid(const cpu_moe_route_args *a, int64_t t) {
    const float *logits = a->scores + t * a->experts;
    const int32_t *ids = a->ids + t * a->k;
    double sum = 0.0;
    for (int64_t j = 0; j < a->k; j++) sum += moe_sigmoid(logits[ids[j]]);
    for (int64_t j = 0; j < a->k; j++) {
        double w = moe_sigmoid(logits[ids[j]]);
        if (a->normalize) w /= sum + 1e-20;
        a->weights[t * a->k + j] = (float)(w * a->scale);
    }
}

void cpu_ref_moe_weights(void *args, int64_t begin, int64_t end, uint32_t thread) {
    const cpu_moe_route_args *a = args;
    float probs[CPU_MOE_MAX_EXPERTS];
    for (int64_t t = begin; t < end; t++) {
        if (a->rule == EXO_MOE_RULE_TOPK_SOFTMAX) {
            moe_weights_topk_softmax(a, t);
            continue;
        }
        if (a->rule == EXO_MOE_RULE_SIGMOID_BIAS) {
            moe_weights_sigmoid(a, t);
            continue;
        }
        moe_softmax(a->scores + t * a->experts, a->experts, probs);
        const int32_t *ids = a->ids + t * a->k;
        double sum = 0.0;
        for (int64_t j = 0; j < a->k; j++) sum += probs[ids[j]];
        for (int64_t j = 0; j < a->k; j++) {
            double w = probs[ids[j]];
            if (a->normalize) w /= sum;
            a->weights[t * a->k + j] = (float)(w * a->scale);
        }
    }
}

void cpu_ref_moe_combine(void *args, int64_t begin, int64_t end, uint32_t thread) {
    const cpu_moe_combine_args *a = args;
    for (int64_t t = begin; t < end; t++)
        for (int64_t i = 0; i < a->n; i++) {
            double acc = 0.0;
            for (int64_t j = 0; j < a->k; j++) acc += (double)a->w[t * a->k + j] * a->y[(t * a->k + j) * a->n + i];
            a->dst[t * a->n + i] = (float)acc;
        }
}
