/* The weights of a synthetic llama or qwen3_moe: which tensors, in which safetensors file,
 * written streaming.
 *
 * A model whose weights exceed the shard limit is split the way transformers' save_pretrained
 * splits it (model-0000K-of-0000N.safetensors + model.safetensors.index.json), whole tensors per
 * file. Data goes out through one reusable chunk buffer, so memory stays a few MB whatever the
 * model size.
 *
 * Quantized (MLX affine): each 2-D weight becomes <module>.weight (U32 packed codes), .scales and
 * .biases. The U32 tensors are planned first, so in every file they start at 4-byte aligned
 * offsets (each file's data starts 8-aligned, and U32 sizes are multiples of 4); the 2-byte
 * tensors follow. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synth.h"

#define CHUNK_BYTES (8u << 20)
#define NAME_CAP 96

typedef enum tensor_kind { TK_FLOAT, TK_PACKED, TK_SCALES, TK_BIASES } tensor_kind;

typedef struct planned_tensor {
    char name[NAME_CAP];
    tensor_kind kind;
    uint32_t n_dims;
    uint64_t shape[3];
    uint64_t nbytes;
    bool is_norm;     /* RMSNorm weights: near 1, not near 0 */
    uint32_t bits;    /* TK_SCALES/TK_BIASES: of the codes they scale (sets their typical values) */
    uint32_t shard;
    uint64_t offset;  /* within its file's data section */
} planned_tensor;

typedef struct weight_plan {
    planned_tensor *t;
    uint32_t n, cap;
    uint32_t n_shards;
    uint64_t total_bytes;
    synth_quant q;
    bool packed_pass; /* planning the U32 tensors (first) or the others */
} weight_plan;

static int plan_one(weight_plan *w, const char *name, tensor_kind kind, uint32_t n_dims, const uint64_t *shape,
                    bool is_norm, uint32_t bits, uint32_t elem_size) {
    if ((kind == TK_PACKED) != w->packed_pass) return 0;
    if (w->n == w->cap) {
        uint32_t cap = w->cap ? w->cap * 2 : 64;
        planned_tensor *grown = realloc(w->t, cap * sizeof *grown);
        if (!grown) {
            fprintf(stderr, "exo-synth: out of memory planning %u tensors\n", cap);
            return -1;
        }
        w->t = grown;
        w->cap = cap;
    }
    planned_tensor *t = &w->t[w->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->kind = kind;
    t->n_dims = n_dims;
    t->nbytes = elem_size;
    for (uint32_t d = 0; d < n_dims; d++) {
        t->shape[d] = shape[d];
        t->nbytes *= shape[d];
    }
    t->is_norm = is_norm;
    t->bits = bits;
    w->total_bytes += t->nbytes;
    return 0;
}

static int plan_norm(weight_plan *w, const char *name, uint64_t width, uint32_t es) {
    return plan_one(w, name, TK_FLOAT, 1, &width, true, 0, es);
}

/* One matrix [rows, cols] (or a stack [experts, rows, cols] when experts > 0): float, or with
 * q.bits > 0 the three tensors of an MLX module, the last dimension packed / grouped. */
static int plan_matrix(weight_plan *w, const char *name, uint64_t experts, uint64_t rows, uint64_t cols,
                       synth_quant q, uint32_t es) {
    uint64_t shape[3];
    uint32_t n = 0;
    if (experts) shape[n++] = experts;
    shape[n++] = rows;
    shape[n++] = cols;
    if (!q.bits) return plan_one(w, name, TK_FLOAT, n, shape, false, 0, es);
    char module[NAME_CAP], part[NAME_CAP + 8];
    snprintf(module, sizeof module, "%.*s", (int)(strlen(name) - strlen(".weight")), name);
    shape[n - 1] = cols * q.bits / 32;
    if (plan_one(w, name, TK_PACKED, n, shape, false, q.bits, 4)) return -1;
    shape[n - 1] = cols / q.group;
    snprintf(part, sizeof part, "%s.scales", module);
    if (plan_one(w, part, TK_SCALES, n, shape, false, q.bits, es)) return -1;
    snprintf(part, sizeof part, "%s.biases", module);
    return plan_one(w, part, TK_BIASES, n, shape, false, q.bits, es);
}

/* The sparse MLP of layer l (prefix "model.layers.L."): transformers' Qwen3MoeSparseMoeBlock
 * names (router mlp.gate, per-expert mlp.experts.E.*) when float; mlx-lm's stacked
 * mlp.switch_mlp.* when quantized, with the router at its 8-bit override. */
static int plan_experts(weight_plan *w, const synth_preset *p, const char *prefix, uint32_t es) {
    static const char *const projs[3] = {"gate_proj", "up_proj", "down_proj"};
    uint64_t h = p->hidden_size, f = p->moe_intermediate_size;
    char name[NAME_CAP];
    snprintf(name, sizeof name, "%smlp.gate.weight", prefix);
    if (plan_matrix(w, name, 0, p->n_experts, h, w->q.bits ? SYNTH_ROUTER_QUANT : w->q, es)) return -1;
    for (int k = 0; k < 3; k++) {
        uint64_t rows = k < 2 ? f : h, cols = k < 2 ? h : f;
        if (w->q.bits) {
            snprintf(name, sizeof name, "%smlp.switch_mlp.%s.weight", prefix, projs[k]);
            if (plan_matrix(w, name, p->n_experts, rows, cols, w->q, es)) return -1;
            continue;
        }
        for (uint32_t e = 0; e < p->n_experts; e++) {
            snprintf(name, sizeof name, "%smlp.experts.%u.%s.weight", prefix, e, projs[k]);
            if (plan_matrix(w, name, 0, rows, cols, w->q, es)) return -1;
        }
    }
    return 0;
}

/* The tensor names and shapes of transformers' LlamaForCausalLM / Qwen3MoeForCausalLM
 * ([out_features, in_features]). */
static int plan_tensors(weight_plan *w, const synth_preset *p, uint32_t es) {
    uint64_t h = p->hidden_size, q = (uint64_t)p->n_heads * p->head_dim, kv = (uint64_t)p->n_kv_heads * p->head_dim;
    uint64_t f = p->intermediate_size, v = p->vocab_size;
    bool qk_norm = p->arch == SYNTH_QWEN3_MOE;
    char prefix[NAME_CAP], name[NAME_CAP + 48];
    if (plan_matrix(w, "model.embed_tokens.weight", 0, v, h, w->q, es)) return -1;
    for (uint32_t l = 0; l < p->n_layers; l++) {
        static const struct { const char *suffix; int kind; } parts[] = {
            {"input_layernorm.weight", 0},  {"self_attn.q_proj.weight", 1}, {"self_attn.k_proj.weight", 2},
            {"self_attn.v_proj.weight", 2}, {"self_attn.o_proj.weight", 3}, {"self_attn.q_norm.weight", 6},
            {"self_attn.k_norm.weight", 6}, {"post_attention_layernorm.weight", 0},
            {"mlp.gate_proj.weight", 4},    {"mlp.up_proj.weight", 4},      {"mlp.down_proj.weight", 5},
        };
        bool moe = synth_layer_is_moe(p, l);
        snprintf(prefix, sizeof prefix, "model.layers.%u.", l);
        for (size_t k = 0; k < sizeof parts / sizeof parts[0]; k++) {
            if ((parts[k].kind == 6 && !qk_norm) || (parts[k].kind >= 4 && parts[k].kind <= 5 && moe)) continue;
            snprintf(name, sizeof name, "%s%s", prefix, parts[k].suffix);
            int rc;
            switch (parts[k].kind) {
            case 0: rc = plan_norm(w, name, h, es); break;
            case 1: rc = plan_matrix(w, name, 0, q, h, w->q, es); break;
            case 2: rc = plan_matrix(w, name, 0, kv, h, w->q, es); break;
            case 3: rc = plan_matrix(w, name, 0, h, q, w->q, es); break;
            case 4: rc = plan_matrix(w, name, 0, f, h, w->q, es); break;
            case 5: rc = plan_matrix(w, name, 0, h, f, w->q, es); break;
            default: rc = plan_norm(w, name, p->head_dim, es); break;
            }
            if (rc) return -1;
        }
        if (moe && plan_experts(w, p, prefix, es)) return -1;
    }
    if (plan_norm(w, "model.norm.weight", h, es)) return -1;
    if (!p->tie_word_embeddings && plan_matrix(w, "lm_head.weight", 0, v, h, w->q, es)) return -1;
    return 0;
}

/* Whole tensors per file, a new file when the next tensor would pass the limit. */
static void plan_shards(weight_plan *w, uint64_t limit) {
    uint32_t shard = 0;
    uint64_t used = 0;
    for (uint32_t i = 0; i < w->n; i++) {
        planned_tensor *t = &w->t[i];
        if (w->total_bytes > limit && used > 0 && used + t->nbytes > limit) {
            shard++;
            used = 0;
        }
        t->shard = shard;
        t->offset = used;
        used += t->nbytes;
    }
    w->n_shards = shard + 1;
}

static void shard_file_name(const weight_plan *w, uint32_t shard, char *out, size_t cap) {
    if (w->n_shards == 1) snprintf(out, cap, "model.safetensors");
    else snprintf(out, cap, "model-%05u-of-%05u.safetensors", shard + 1, w->n_shards);
}

/* The safetensors header of one file: JSON padded with spaces to a multiple of 8 bytes, so the
 * data section (and every tensor, all sizes being even) stays aligned. */
static char *shard_header(const weight_plan *w, uint32_t shard, synth_dtype dtype, uint64_t *len) {
    const char *float_name = synth_dtype_safetensors_name(dtype);
    cJSON *root = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "pt");
    for (uint32_t i = 0; i < w->n; i++) {
        const planned_tensor *t = &w->t[i];
        if (t->shard != shard) continue;
        cJSON *e = cJSON_AddObjectToObject(root, t->name);
        cJSON_AddStringToObject(e, "dtype", t->kind == TK_PACKED ? "U32" : float_name);
        cJSON *shape = cJSON_AddArrayToObject(e, "shape");
        for (uint32_t d = 0; d < t->n_dims; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        cJSON *offs = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)t->offset));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(t->offset + t->nbytes)));
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!json) return NULL;
    size_t n = strlen(json), padded = (n + 7) & ~(size_t)7;
    char *out = realloc(json, padded + 1);
    if (!out) {
        free(json);
        return NULL;
    }
    memset(out + n, ' ', padded - n);
    out[padded] = '\0';
    *len = padded;
    return out;
}

static int write_tensor_data(FILE *f, const char *path, const planned_tensor *t, synth_dtype dtype, uint64_t seed,
                             void *chunk) {
    uint32_t es = t->kind == TK_PACKED ? 4 : synth_dtype_size(dtype);
    uint64_t count = t->nbytes / es, per_chunk = CHUNK_BYTES / es;
    uint64_t tseed = synth_tensor_seed(seed, t->name);
    /* Matrices: std 0.02 (transformers' initializer_range); norms: 1 +- 0.02. Quantized: codes
     * uniform over [0, 2^bits), whose std is sqrt((n^2 - 1) / 12) for n = 2^bits levels, so a
     * scale s = 0.02 / that gives std 0.02; biases centre the codes (-s * (n - 1) / 2). Both get
     * 5% jitter per group. */
    float mean = t->is_norm ? 1.0f : 0.0f, std = 0.02f;
    if (t->kind == TK_SCALES || t->kind == TK_BIASES) {
        double levels = (double)(1u << t->bits), s = 0.02 / sqrt((levels * levels - 1.0) / 12.0);
        mean = (float)(t->kind == TK_SCALES ? s : -s * (levels - 1.0) / 2.0);
        std = fabsf(mean) * 0.05f;
    }
    for (uint64_t first = 0; first < count; first += per_chunk) {
        size_t n = (size_t)(count - first < per_chunk ? count - first : per_chunk);
        if (t->kind == TK_PACKED) synth_fill_words(tseed, first, n, chunk);
        else synth_fill(dtype, tseed, first, n, mean, std, chunk);
        if (fwrite(chunk, es, n, f) != n) {
            fprintf(stderr, "exo-synth: %s: write failed in tensor %s: %s\n", path, t->name, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static int write_shard(const char *dir, const weight_plan *w, uint32_t shard, synth_dtype dtype, uint64_t seed,
                       void *chunk, bool verbose) {
    char name[64], path[4096];
    shard_file_name(w, shard, name, sizeof name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    uint64_t hlen = 0;
    char *header = shard_header(w, shard, dtype, &hlen);
    if (!header) {
        fprintf(stderr, "exo-synth: %s: out of memory building the header\n", path);
        return -1;
    }
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "exo-synth: %s: cannot create: %s\n", path, strerror(errno));
        free(header);
        return -1;
    }
    unsigned char le[8];
    for (int b = 0; b < 8; b++) le[b] = (unsigned char)(hlen >> (8 * b));
    int rc = 0;
    if (fwrite(le, 1, 8, f) != 8 || fwrite(header, 1, hlen, f) != hlen) {
        fprintf(stderr, "exo-synth: %s: write failed: %s\n", path, strerror(errno));
        rc = -1;
    }
    free(header);
    uint64_t bytes = 0;
    for (uint32_t i = 0; rc == 0 && i < w->n; i++)
        if (w->t[i].shard == shard) {
            rc = write_tensor_data(f, path, &w->t[i], dtype, seed, chunk);
            bytes += w->t[i].nbytes;
        }
    if (fclose(f) != 0 && rc == 0) {
        fprintf(stderr, "exo-synth: %s: close failed: %s\n", path, strerror(errno));
        rc = -1;
    }
    if (rc == 0 && verbose) fprintf(stderr, "exo-synth: wrote %s (%.1f MB of weights)\n", path, bytes / 1e6);
    return rc;
}

static int write_index(const char *dir, const weight_plan *w) {
    cJSON *root = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(root, "metadata");
    cJSON_AddNumberToObject(meta, "total_size", (double)w->total_bytes);
    cJSON *map = cJSON_AddObjectToObject(root, "weight_map");
    char name[64];
    for (uint32_t i = 0; i < w->n; i++) {
        shard_file_name(w, w->t[i].shard, name, sizeof name);
        cJSON_AddStringToObject(map, w->t[i].name, name);
    }
    char *json = cJSON_Print(root);
    cJSON_Delete(root);
    if (!json) {
        fprintf(stderr, "exo-synth: %s: out of memory building the index\n", dir);
        return -1;
    }
    int rc = synth_write_text_file(dir, "model.safetensors.index.json", json);
    free(json);
    return rc;
}

int synth_write_weights(const char *dir, const synth_preset *p, synth_dtype dtype, synth_quant q, uint64_t seed,
                        uint64_t shard_limit_bytes, bool verbose, uint64_t *total_bytes) {
    weight_plan w = {0};
    w.q = q;
    void *chunk = malloc(CHUNK_BYTES);
    int rc = chunk ? 0 : -1;
    if (!chunk) fprintf(stderr, "exo-synth: out of memory for the write buffer\n");
    /* The packed U32 tensors first (alignment, see the top), then the rest in model order. */
    w.packed_pass = true;
    if (rc == 0 && q.bits) rc = plan_tensors(&w, p, synth_dtype_size(dtype));
    w.packed_pass = false;
    if (rc == 0) rc = plan_tensors(&w, p, synth_dtype_size(dtype));
    if (total_bytes) *total_bytes = w.total_bytes;
    if (rc == 0) {
        plan_shards(&w, shard_limit_bytes);
        for (uint32_t s = 0; rc == 0 && s < w.n_shards; s++) rc = write_shard(dir, &w, s, dtype, seed, chunk, verbose);
        if (rc == 0 && w.n_shards > 1) rc = write_index(dir, &w);
    }
    free(chunk);
    free(w.t);
    return rc;
}
