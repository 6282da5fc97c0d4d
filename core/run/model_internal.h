/* Internal state of models, shards and sessions (core/run/model.c, shard.c, session.c). */
#ifndef EXO_RUN_MODEL_INTERNAL_H
#define EXO_RUN_MODEL_INTERNAL_H

#include "graph/builder.h"
#include "graph/kv_pool.h"
#include "registry/runtime.h"
#include "run/placement.h"
#include "run/rank_workers.h"
#include "tokenizer/tokenizer.h"

/* Layers one shard may hold (bounds the per-step binding table). */
#define EXO_MAX_SHARD_LAYERS 1024
/* KV cache positions of a shard whose max_ctx is defaulted, at most (before fitting to memory). */
#define EXO_DEFAULT_MAX_CTX 4096

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

/* The KV caches of a shard whose plugin runs pooled caches (ABI 1.6): per KV tensor of the plan
 * one buffer of `slots` sessions' caches; a session takes a slot for its life (session_pool.c). */
typedef struct exo_kv_pool {
    uint32_t slots;             /* slots the buffers hold (0: none yet) */
    exo_buffer **kv;            /* plan.n_kv buffers, [slots][max_ctx][n_kv_heads][head_dim] F32 */
    uint8_t *used;              /* per slot: taken by a live session */
} exo_kv_pool;

/* Rows of logits the selected-rows graph computes (EXO's default number of concurrent requests):
 * a batched step whose rows need at most this many logits, and which has more rows, runs it. */
#define EXO_BATCH_SELECTED_ROWS 8

/* A batched step's buffers (batch.c), made at the first batched step and kept by the shard:
 * steps of one device run one at a time (the device lock), so one set serves every session. */
typedef struct exo_batch_buffers {
    /* One buffer for all of a step's inputs, so they go over in one write: the tokens (or hidden
     * states), positions, slots and the selected-rows graph's rows, each at an offset batch.c
     * lays out from the step's rows; `host` is the same layout gathered on the host. */
    exo_buffer *inputs, *output;
    exo_buffer *next_tokens;    /* head shards: I32 max_tokens, each row's greedy token */
    int32_t *ids;               /* max_tokens: next_tokens read back */
    uint32_t output_rows;       /* rows the output holds */
    void *host;
} exo_batch_buffers;

struct exo_shard {
    exo_model *model;
    exo_error_slot error;
    uint32_t device;            /* ranked device index */
    exo_plugin_rec *plugin;
    exo_graph_plan plan;        /* every row out */
    exo_graph_plan plan_last;   /* head shards: logits of one row (shares plan's buffers) */
    /* head shards: logits of EXO_BATCH_SELECTED_ROWS selected rows, for batched steps whose
     * rows mostly need none (a prompt chunk beside decodes; batch.c, compiled on first use) */
    exo_graph_plan plan_rows;
    exo_quant_cache qcache;     /* weights quantized on load, shared by both plans */
    exo_buffer **buffers;       /* one per plan buffer */
    exo_compiled *compiled;
    exo_compiled *compiled_last;
    exo_compiled *compiled_rows;  /* plan_rows, or NULL until a batched step needs it */
    uint64_t weight_bytes;
    uint32_t input_width, output_width;
    bool pooled;                /* plans pooled (plan.kv_slots sessions), sessions in `pool` */
    exo_kv_pool pool;
    exo_batch_buffers batch;
    /* Pipeline placement (pipeline.c): a shard across devices is a shell over `parts`, each an
     * ordinary shard of consecutive layers on one device, in order. The shell's plan holds no
     * graph, only what callers read of a shard (layer range, ends, max_tokens, max_ctx, KV
     * dtype); device and plugin are its first part's. n_parts 0: an ordinary shard. */
    exo_shard **parts;
    uint32_t n_parts;
    /* A pipeline's hand-over: peer_in[k] is true when part k's input rows come from part k-1 by a
     * device-to-device copy (peer_copy.h: the plugin offers one for the pair), false when they
     * go through host memory; peer_in[0] is false. */
    bool peer_in[EXO_PLACEMENT_MAX_DEVICES];
    uint32_t tensor_parallel;   /* a shell of tensor_parallel.c: ranks per layer (0: a pipeline) */
    /* tensor_parallel.c: host threads of ranks 1..N-1 (rank_workers.h), started with the shell and
     * joined when it is freed; NULL: the ranks run one after another on the caller
     * (EXO_TENSOR_PARALLEL_SEQUENTIAL=1) */
    exo_rank_workers *workers;
};

struct exo_session {
    exo_shard *shard;
    exo_error_slot error;
    uint32_t max_ctx;
    uint32_t position;
    exo_buffer **kv;            /* plan.n_kv */
    /* A step's inputs in one buffer (exo_step_inputs_layout at max_tokens rows): tokens (I32) or
     * hidden states (F32) at offset 0 (where the pipeline copies hidden states in), positions,
     * and the row the last-row graph keeps; inputs_host stages the small ones for one write. */
    exo_buffer *input;
    char *inputs_host;
    exo_buffer *output;         /* F32 output_rows x output_width: every row's output, allocated
                                 * when a step asks for every row, grown to the largest step */
    uint32_t output_rows;
    exo_buffer *output_last;    /* F32 output_width: the last-row graph's logits */
    exo_buffer *next_tokens;    /* head shards: I32 max_tokens, the graphs' greedy tokens (out_argmax) */
    float *pick_row;            /* output_width floats: a greedy step's logits row where the host picks
                                 * (plugins below ABI 1.10, shards across devices); made when first needed */
    exo_binding *bindings;      /* a step's graph bindings, n_bindings_cap (6 + the plan's KV tensors) */
    uint32_t n_bindings_cap;
    uint32_t slot;              /* pooled shard: this session's slot in shard->pool */
    exo_buffer *slots;          /* pooled shard: I32 max_tokens, every entry `slot` */
    /* A pipeline shard's session (pipeline.c): one session per part, all at `position`, and
     * the host buffers that hand hidden states from one part to the next (2 x max_tokens rows;
     * tensor parallelism: 2 + N, the input, the sum and each rank's partial output). */
    exo_session **parts;
    float *relay;
};

/* Whether the shard's graphs pick greedy tokens on its device (EXO_OP_ARGMAX, a plugin of ABI
 * 1.10 or later); else an EXO_FORWARD_ARGMAX step reads the logits row and picks on the host. */
bool exo_shard_argmax_on_device(const exo_shard *s);
/* An EXO_FORWARD_ARGMAX step's answer, out[0]: row `row`'s greedy token, 4 bytes from `tokens`
 * (the graph's out_argmax buffer) where the device picked it, else that row of `logits` read
 * into the session's pick_row and picked on the host by the same rule (exo_argmax_row). */
exo_status exo_session_read_greedy(exo_session *s, exo_buffer *logits, exo_buffer *tokens, uint32_t row, float *out);
/* The session's pick_row (output_width floats), made on first use. */
exo_status exo_session_pick_row(exo_session *s);
/* Greedy steps ask for one row, like LAST_ONLY: EXO_FORWARD_ARGMAX implies it. */
static inline bool exo_forward_last_only(uint32_t flags) {
    return (flags & (EXO_FORWARD_LAST_ONLY | EXO_FORWARD_ARGMAX)) != 0;
}

/* Checks one step's arguments as exo_session_forward_* does (NULL, no tokens, output too small,
 * context full, token ids outside the vocabulary, tokens vs hidden states), recording the error
 * on the session. */
exo_status exo_session_check_step(exo_session *s, const void *input, uint32_t n, uint32_t flags, const float *out,
                                  uint64_t out_count, bool tokens);

/* Compiles the shard's plans (the full one, and the last-row one for a head) as they stand on its
 * device; on failure nothing is returned and the error says which. Device lock held. */
exo_status exo_shard_compile(exo_shard *s, exo_compiled **full, exo_compiled **last);

/* A slot of the shard's KV pool for a new session, growing the pool (and recompiling the plans
 * for the new slot count) when every slot is taken. Device lock held. */
exo_status exo_kv_pool_take(exo_shard *s, uint32_t *slot);
void exo_kv_pool_release(exo_shard *s, uint32_t slot);
/* Frees the pool's buffers. Device lock held. */
void exo_kv_pool_free(exo_shard *s);
/* Frees the batched step's buffers (batch.c). Device lock held. */
void exo_batch_buffers_free(exo_shard *s);
/* Where a step of `rows` rows puts its inputs in one device buffer, so that a step writes them
 * with one buffer_write (each blocking write is a round trip to a GPU, whatever its size): the
 * tokens or hidden states at offset 0, then positions, slots and the selected rows (`selected`:
 * EXO_BATCH_SELECTED_ROWS of them; a session's last-row index otherwise), each at a multiple of
 * EXO_STEP_INPUTS_ALIGN (more than the 4 bytes graph_check_bindings asks of I32 tensors: a cache
 * line apart, whatever a kernel loads them with). end: the bytes a batched step writes (batch.c). */
#define EXO_STEP_INPUTS_ALIGN 64
typedef struct exo_step_inputs_layout {
    uint64_t positions, slots, rows, end;
} exo_step_inputs_layout;
exo_step_inputs_layout exo_step_inputs_layout_for(const exo_shard *sh, uint32_t rows, bool selected);
/* Copies `bytes` from one device buffer of the shard's plugin to another (through a host bounce
 * buffer, in pieces). Device lock held. */
exo_status exo_shard_buffer_copy(exo_shard *s, exo_buffer *from, uint64_t from_off, exo_buffer *to, uint64_t to_off,
                                 uint64_t bytes);
/* Bytes the pool would need for `slots` sessions (every KV tensor). */
uint64_t exo_kv_pool_bytes(const exo_shard *s, uint32_t slots);

/* One step of one ordinary shard's session, as exo_session_forward_tokens/_hidden (session.c);
 * pipeline.c runs each part through it. */
exo_status exo_session_forward_part(exo_session *s, const void *input, uint32_t n, uint32_t flags, float *out,
                                    uint64_t out_count, bool tokens);

/* One chunk (n <= max_tokens rows) of a pipeline part whose rows stay on its device on either
 * side: input NULL takes the rows a peer copy already put in the session's input buffer (hidden
 * states, not tokens); out NULL leaves the rows in its output buffer (s->output, every row) for
 * the next part's peer copy, and reads nothing back (not with LAST_ONLY). With both given it is
 * exo_session_forward_part. The caller checked the step as a whole (exo_session_check_step). */
exo_status exo_session_forward_resident(exo_session *s, const void *input, uint32_t n, uint32_t flags, float *out,
                                        uint64_t out_count, bool tokens);

/* One rank's half of one layer ([opts->start_layer, +1)) as a shard (shard.c), for tensor_parallel.c. */
exo_status exo_shard_load_slice(exo_model *m, const exo_shard_options *opts, const exo_graph_slice *slice,
                                exo_shard **out);

/* ---- tensor_parallel.c: every layer of a range split over devices (a shell over half-layer
 * parts, stepped with the all-reduce on the host). */
exo_status exo_tensor_parallel_load(exo_model *m, const exo_shard_options *opts, const uint32_t *devices, uint32_t n,
                                    exo_shard **out);
exo_status exo_tensor_parallel_forward(exo_session *s, const void *input, uint32_t n, uint32_t flags, float *out,
                                       uint64_t out_count, bool tokens);

/* ---- pipeline.c: a shard placed across devices (the shell and its parts). */
/* Loads [opts->start_layer, opts->end_layer) across devices[0..n) (placement.c sizes the parts).
 * opts is complete (exo_shard_load's defaults applied). */
exo_status exo_pipeline_load(exo_model *m, const exo_shard_options *opts, const uint32_t *devices, uint32_t n,
                             exo_shard **out);
void exo_pipeline_destroy(exo_shard *s);
/* The shell describes its parts as one shard: range, ends, widths, sizes (the smallest), weights. */
void exo_pipeline_fill_shell(exo_shard *sh);
/* "plugin:index" of a public device index. */
void exo_pipeline_device_spec(const exo_runtime *rt, uint32_t device, char *spec, size_t cap);
exo_status exo_pipeline_session_create(exo_shard *sh, uint32_t max_ctx, exo_session **out);
void exo_pipeline_session_destroy(exo_session *s);
/* Sets every part's position to n (<= position: checked by the caller). */
void exo_pipeline_session_truncate(exo_session *s, uint32_t n);
uint64_t exo_pipeline_session_kv_bytes(const exo_session *s);
exo_status exo_pipeline_copy_prefix(exo_session *dst, const exo_session *src, uint32_t n);
/* A shell's step: the parts in order (a pipeline), or tensor_parallel.c's for its shells. */
exo_status exo_pipeline_forward(exo_session *s, const void *input, uint32_t n, uint32_t flags, float *out,
                                uint64_t out_count, bool tokens);

/* A batched step of shell sessions (pipeline.c, tensor_parallel.c): every part steps the live
 * entries together through exo_session_forward_batch (a pooled part runs them as one graph), their
 * hidden states kept in host rows per entry. An entry failing at a part carries that status and
 * drops out; at the end every entry's parts are where its step left them (or where it started). */
#define EXO_SHELL_BATCH_MAX 256
/* One part's step for the live entries (a "lane": tensor parallelism steps one per rank at once). */
typedef struct exo_shell_batch_lane {
    exo_batch_entry *step;      /* the part's entries */
    uint32_t *index;            /* which caller entry each is */
    uint32_t m, part;
} exo_shell_batch_lane;
typedef struct exo_shell_batch {
    exo_batch_entry *entries;   /* the caller's, good ones with status EXO_OK */
    size_t stride;
    uint32_t n;
    exo_shell_batch_lane lanes[EXO_PLACEMENT_MAX_DEVICES];
    uint32_t n_lanes;
    uint32_t *position0;        /* each session's position before the step */
    uint64_t *offset, rows;     /* each entry's first row of the host buffers; rows of all */
    float *host;                /* rows_per_token buffers of `rows` x hidden_size */
} exo_shell_batch;
/* lanes: how many parts may step at once (1 for a pipeline, N for tensor parallelism). */
exo_status exo_shell_batch_begin(exo_shell_batch *b, exo_batch_entry *entries, size_t stride, uint32_t n,
                                 uint32_t rows_per_token, uint32_t lanes);
/* Entry i's rows of host buffer `buffer` (< rows_per_token). */
float *exo_shell_batch_rows(const exo_shell_batch *b, uint32_t i, uint32_t buffer);
/* Lane `lane` takes part `part` for every live entry: in[i] to out[i] (out_count[i] floats);
 * flags_mask: which of the entries' flags the part honours (LAST_ONLY for a last part only). The
 * calling thread prepares; run may then go on any thread (lanes on different devices at once);
 * merge, on the calling thread again, marks the entries that failed. */
void exo_shell_batch_prepare(exo_shell_batch *b, uint32_t lane, uint32_t part, const void *const *in,
                             float *const *out, const uint64_t *out_count, uint32_t flags_mask);
void exo_shell_batch_run(exo_shell_batch *b, uint32_t lane);
void exo_shell_batch_merge(exo_shell_batch *b, uint32_t lane);
/* prepare, run and merge on lane 0. */
void exo_shell_batch_part(exo_shell_batch *b, uint32_t part, const void *const *in, float *const *out,
                          const uint64_t *out_count, uint32_t flags_mask);
void exo_shell_batch_end(exo_shell_batch *b);
/* The batched step of shell sessions, entries checked (exo_session_forward_batch, batch.c). */
void exo_pipeline_forward_batch(exo_batch_entry *entries, size_t stride, uint32_t n);
void exo_tensor_parallel_forward_batch(exo_batch_entry *entries, size_t stride, uint32_t n);

/* Token ids of a text prompt (malloc'd); add_bos as exo_model_tokenize says. */
exo_status exo_model_encode(exo_model *m, const char *text, size_t len, int add_bos, int32_t **ids, size_t *n);

/* True when token ends a sequence for this model. */
bool exo_model_is_eos(const exo_model *m, int32_t token);

/* Frees a plugin buffer if non-NULL. */
void exo_shard_buffer_release(exo_shard *shard, exo_buffer *buf);

#endif
