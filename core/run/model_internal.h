/* Internal state of models, shards and sessions (core/run/model.c, shard.c, session.c). */
#ifndef EXO_RUN_MODEL_INTERNAL_H
#define EXO_RUN_MODEL_INTERNAL_H

#include "graph/builder.h"
#include "registry/runtime.h"
#include "tokenizer/tokenizer.h"

/* Layers one shard may hold (bounds the per-step binding table). */
#define EXO_MAX_SHARD_LAYERS 1024

struct exo_model {
    exo_runtime *rt;
    char dir[EXO_PATH_MAX];
    exo_model_config cfg;
    exo_weights *weights;
    exo_error_slot error;
    exo_tokenizer *tokenizer;      /* NULL when tokenizer.json is missing or unsupported */
    int32_t eos[2 * EXO_MAX_EOS];  /* every EOS id: config files and tokenizer */
    uint32_t n_eos;
    exo_status tokenizer_status;
    char tokenizer_error[EXO_ERROR_MAX];
};

struct exo_shard {
    exo_model *model;
    exo_error_slot error;
    uint32_t device;            /* ranked device index */
    exo_plugin_rec *plugin;
    exo_graph_plan plan;        /* every row out */
    exo_graph_plan plan_last;   /* head shards: logits of one row (shares plan's buffers) */
    exo_quant_cache qcache;     /* weights quantized on load, shared by both plans */
    exo_buffer **buffers;       /* one per plan buffer */
    exo_compiled *compiled;
    exo_compiled *compiled_last;
    uint64_t weight_bytes;
    uint32_t input_width, output_width;
};

struct exo_session {
    exo_shard *shard;
    exo_error_slot error;
    uint32_t max_ctx;
    uint32_t position;
    exo_buffer **kv;            /* plan.n_kv */
    exo_buffer *input;          /* tokens (I32) or hidden states (F32), max_tokens rows */
    exo_buffer *positions;      /* I32 max_tokens */
    exo_buffer *output;         /* F32 output_rows x output_width: every row's output, allocated
                                 * when a step asks for every row, grown to the largest step */
    uint32_t output_rows;
    exo_buffer *output_last;    /* F32 output_width: the last-row graph's logits */
    exo_buffer *output_row;     /* I32 [1]: which row the last-row graph keeps */
    int32_t *position_scratch;  /* host copy of positions, max_tokens */
    exo_binding *bindings;      /* a step's graph bindings, n_bindings_cap (4 + the plan's KV tensors) */
    uint32_t n_bindings_cap;
};

/* Token ids of a text prompt (malloc'd); add_bos as exo_model_tokenize says. */
exo_status exo_model_encode(exo_model *m, const char *text, size_t len, int add_bos, int32_t **ids, size_t *n);

/* True when token ends a sequence for this model. */
bool exo_model_is_eos(const exo_model *m, int32_t token);

/* Frees a plugin buffer if non-NULL. */
void exo_shard_buffer_release(exo_shard *shard, exo_buffer *buf);

#endif
