/* exo_session: one sequence on a shard — its KV cache on the shard's device, its position,
 * and the forward step (token ids or hidden states in; logits or hidden states out). Input,
 * position and last-row output buffers, and the host-side positions and graph bindings, are
 * allocated once, so a decode step allocates nothing and keeps a small stack frame;
 * the every-row output (vocab floats a row) exists only once a caller asks for every row, and
 * holds the most rows a step has asked for, not the shard's max_tokens. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "run/shard_memory.h"

static exo_status alloc_buffer(exo_session *s, uint64_t size, exo_buffer_usage usage, exo_buffer **out) {
    exo_shard *sh = s->shard;
    const exo_device_rec *d = exo_runtime_device(sh->model->rt, sh->device);
    exo_error_clear();
    exo_status st = sh->plugin->api.buffer_alloc(sh->plugin->ctx, d->index, size, usage, out);
    if (st != EXO_OK)
        return exo_error_wrap(st, "%s:%u: allocating %llu bytes failed", sh->plugin->name, d->index,
                              (unsigned long long)size);
    return EXO_OK;
}

/* Memory for n more bytes on the shard's device, checked before a host-memory device allocates
 * them: an allocation past what the machine has would succeed and be killed when touched. */
static exo_status check_room(exo_session *s, uint64_t n, const char *what) {
    exo_shard *sh = s->shard;
    bool host = false;
    const char *source = "";
    uint64_t avail = exo_device_memory_available(exo_runtime_device(sh->model->rt, sh->device), &host, &source);
    if (host && n > avail)
        return exo_errorf(EXO_ERR_NO_MEMORY, "%s: %s needs %llu bytes, more than %s: %llu bytes", sh->model->dir, what,
                          (unsigned long long)n, source, (unsigned long long)avail);
    return EXO_OK;
}

exo_status exo_session_create(exo_shard *sh, uint32_t max_ctx, exo_session **out) {
    exo_error_clear();
    if (!sh || !out) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_session_create: NULL argument");
    *out = NULL;
    if (max_ctx > sh->plan.max_ctx)
        return exo_error_keep(&sh->error, exo_errorf(EXO_ERR_INVALID_ARG,
            "session max_ctx %u exceeds the shard's %u (set exo_shard_options.max_ctx)", max_ctx, sh->plan.max_ctx));
    if (sh->n_parts) return exo_error_keep(&sh->error, exo_pipeline_session_create(sh, max_ctx, out));
    exo_session *s = calloc(1, sizeof *s);
    if (!s) return exo_error_keep(&sh->error, exo_errorf(EXO_ERR_NO_MEMORY, "out of memory creating a session"));
    s->shard = sh;
    s->max_ctx = max_ctx ? max_ctx : sh->plan.max_ctx;
    /* One KV tensor at the shard's max_ctx and KV dtype (config.json's limits keep it below 2^54). */
    uint64_t kv_bytes = exo_graph_plan_kv_slot_bytes(&sh->plan);
    uint32_t T = sh->plan.max_tokens;
    /* Every session takes its own cache (the shard's load made room for one): its own buffers,
     * or a slot of the shard's pool (session_pool.c checks the room it grows into). */
    exo_status st = check_room(s, exo_add_sat(sh->pooled ? 0 : exo_mul_sat(kv_bytes, sh->plan.n_kv),
                                              exo_mul_sat((uint64_t)T * 4, (uint64_t)sh->input_width + 2)),
                               "a session's KV cache and inputs");
    s->kv = calloc(sh->plan.n_kv ? sh->plan.n_kv : 1, sizeof *s->kv);
    exo_step_inputs_layout inputs_at = exo_step_inputs_layout_for(sh, T, true);
    s->inputs_host = malloc(inputs_at.end);
    /* A step binds input, positions, output, the greedy tokens, the last-row index, the slots
     * and every KV tensor. */
    s->n_bindings_cap = 6 + (sh->plan.n_kv > sh->plan_last.n_kv ? sh->plan.n_kv : sh->plan_last.n_kv);
    s->bindings = malloc(s->n_bindings_cap * sizeof *s->bindings);
    s->slot = UINT32_MAX;
    if (st == EXO_OK && (!s->kv || !s->inputs_host || !s->bindings))
        st = exo_errorf(EXO_ERR_NO_MEMORY, "out of memory creating a session");
    exo_runtime_device_lock(sh->model->rt, sh->device);
    if (sh->pooled) {
        uint32_t slot = 0;
        if (st == EXO_OK) st = exo_kv_pool_take(sh, &slot);
        if (st == EXO_OK) s->slot = slot;
        if (st == EXO_OK) st = alloc_buffer(s, (uint64_t)T * 4, EXO_BUFFER_SCRATCH, &s->slots);
        /* Every token of this session's steps is in its slot: written once. */
        int32_t *slots = (int32_t *)s->inputs_host; /* max_tokens x input_width ints at least */
        for (uint32_t i = 0; st == EXO_OK && i < T; i++) slots[i] = (int32_t)slot;
        if (st == EXO_OK) st = sh->plugin->api.buffer_write(s->slots, 0, slots, (uint64_t)T * 4);
    }
    for (uint32_t i = 0; st == EXO_OK && !sh->pooled && i < sh->plan.n_kv; i++)
        st = alloc_buffer(s, kv_bytes, EXO_BUFFER_KV, &s->kv[i]);
    if (st == EXO_OK) st = alloc_buffer(s, inputs_at.end, EXO_BUFFER_SCRATCH, &s->input);
    if (st == EXO_OK && sh->plan.has_head)
        st = alloc_buffer(s, (uint64_t)sh->output_width * 4, EXO_BUFFER_SCRATCH, &s->output_last);
    if (st == EXO_OK && sh->plan.has_head) st = alloc_buffer(s, (uint64_t)T * 4, EXO_BUFFER_SCRATCH, &s->next_tokens);
    exo_runtime_device_unlock(sh->model->rt, sh->device);
    if (st != EXO_OK) {
        exo_session_destroy(s);
        return exo_error_keep(&sh->error, st);
    }
    *out = s;
    return EXO_OK;
}

void exo_session_destroy(exo_session *s) {
    if (!s) return;
    free(s->pick_row);
    if (s->parts) {
        exo_pipeline_session_destroy(s);
        return;
    }
    exo_shard *sh = s->shard;
    exo_runtime_device_lock(sh->model->rt, sh->device);
    if (s->kv)
        for (uint32_t i = 0; i < sh->plan.n_kv; i++) exo_shard_buffer_release(sh, s->kv[i]);
    if (s->slot != UINT32_MAX) exo_kv_pool_release(sh, s->slot);
    exo_shard_buffer_release(sh, s->slots);
    exo_shard_buffer_release(sh, s->input);
    exo_shard_buffer_release(sh, s->output);
    exo_shard_buffer_release(sh, s->output_last);
    exo_shard_buffer_release(sh, s->next_tokens);
    exo_runtime_device_unlock(sh->model->rt, sh->device);
    free(s->kv);
    free(s->inputs_host);
    free(s->bindings);
    free(s);
}

exo_status exo_session_reset(exo_session *s) {
    if (!s) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_session_reset: session is NULL");
    s->position = 0; /* cache rows past the position are never read: attention stops at pos[t] */
    if (s->parts) exo_pipeline_session_truncate(s, 0);
    return EXO_OK;
}

uint32_t exo_session_position(const exo_session *s) { return s ? s->position : 0; }

uint64_t exo_session_kv_bytes(const exo_session *s) {
    if (s && s->parts) return exo_pipeline_session_kv_bytes(s);
    return s ? exo_mul_sat(exo_graph_plan_kv_slot_bytes(&s->shard->plan), s->shard->plan.n_kv) : 0;
}

exo_status exo_session_truncate(exo_session *s, uint32_t n) {
    if (!s) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_session_truncate: session is NULL");
    if (n > s->position)
        return exo_error_keep(&s->error, exo_errorf(EXO_ERR_INVALID_ARG,
                                                    "cannot truncate to %u: the session holds %u positions", n, s->position));
    s->position = n;
    if (s->parts) exo_pipeline_session_truncate(s, n);
    return EXO_OK;
}

const char *exo_session_last_error(const exo_session *s) { return s ? s->error.message : ""; }

exo_status exo_session_copy_prefix(exo_session *dst, const exo_session *src, uint32_t n) {
    exo_error_clear();
    if (!dst || !src) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_session_copy_prefix: NULL session");
    if (dst == src) return exo_error_keep(&dst->error, exo_errorf(EXO_ERR_INVALID_ARG,
                                          "exo_session_copy_prefix: source and destination are the same session"));
    exo_shard *sh = dst->shard;
    if (src->shard != sh)
        return exo_error_keep(&dst->error, exo_errorf(EXO_ERR_INVALID_ARG,
                              "exo_session_copy_prefix: the sessions belong to different shards"));
    if (n > src->position)
        return exo_error_keep(&dst->error, exo_errorf(EXO_ERR_INVALID_ARG,
                              "cannot copy %u positions: the source session holds %u", n, src->position));
    if (n > dst->max_ctx)
        return exo_error_keep(&dst->error, exo_errorf(EXO_ERR_INVALID_ARG,
                              "cannot copy %u positions into a session of max_ctx %u", n, dst->max_ctx));
    if (sh->n_parts) return exo_error_keep(&dst->error, exo_pipeline_copy_prefix(dst, src, n));
    /* Forgotten first: should the copy fail half-way, no half-written row is ever read. */
    dst->position = 0;
    const exo_graph_plan *p = &sh->plan;
    /* Every KV tensor is [ctx][n_kv_heads][head_dim] per session (a slot of the pool, outermost,
     * or a buffer of its own): position r's row starts at r x row bytes of the session's part. */
    uint64_t slot_bytes = exo_graph_plan_kv_slot_bytes(p);
    uint64_t row_bytes = p->n_kv ? slot_bytes / p->tensors[p->kv[0]].ne[2] : 0;
    exo_status st = EXO_OK;
    exo_runtime_device_lock(sh->model->rt, sh->device);
    for (uint32_t i = 0; st == EXO_OK && i < p->n_kv; i++) {
        exo_buffer *from = sh->pooled ? sh->pool.kv[i] : src->kv[i], *to = sh->pooled ? sh->pool.kv[i] : dst->kv[i];
        uint64_t from_off = sh->pooled ? (uint64_t)src->slot * slot_bytes : 0;
        uint64_t to_off = sh->pooled ? (uint64_t)dst->slot * slot_bytes : 0;
        st = exo_shard_buffer_copy(sh, from, from_off, to, to_off, (uint64_t)n * row_bytes);
        if (st != EXO_OK) exo_error_wrap(st, "copying %u positions of KV tensor %u between sessions failed", n, i);
    }
    exo_runtime_device_unlock(sh->model->rt, sh->device);
    if (st == EXO_OK) dst->position = n;
    return exo_error_keep(&dst->error, st);
}

/* One chunk of at most max_tokens rows. */
static exo_status step(exo_session *s, const void *input, uint32_t n, uint32_t flags, float *out) {
    exo_shard *sh = s->shard;
    const exo_plugin_api *api = &sh->plugin->api;
    const exo_graph_plan *p = &sh->plan;
    /* Logits of the last row only: the last-row graph, which skips the lm_head for the rest. */
    bool last_graph = exo_forward_last_only(flags) && sh->compiled_last;
    /* Positions (and the last row's index) staged after the tokens, all in one write; hidden
     * states, large and already in the caller's memory, go in a write of their own. */
    exo_step_inputs_layout at = exo_step_inputs_layout_for(sh, n, false);
    char *host = s->inputs_host;
    int32_t *pos = (int32_t *)(host + at.positions);
    for (uint32_t i = 0; i < n; i++) pos[i] = (int32_t)(s->position + i);
    uint64_t end = at.positions + (uint64_t)n * 4;
    if (last_graph) {
        *(int32_t *)(host + at.rows) = (int32_t)(n - 1);
        end = at.rows + 4;
    }
    bool tokens = input && p->embeds;
    if (tokens) memcpy(host, input, (size_t)n * 4);
    exo_error_clear();
    exo_status st = input && !tokens ? api->buffer_write(s->input, 0, input, (uint64_t)n * sh->input_width * 4) : EXO_OK;
    uint64_t from = tokens ? 0 : at.positions;
    if (st == EXO_OK) st = api->buffer_write(s->input, from, host + from, end - from);
    if (st != EXO_OK) return exo_error_wrap(st, "writing the step's inputs failed");

    if (last_graph) {
        p = &sh->plan_last;
    } else if (n > s->output_rows) {
        /* Grown to this step's rows: a prompt of 20 tokens never pays for max_tokens rows of logits. */
        uint64_t bytes = exo_mul_sat((uint64_t)n * 4, sh->output_width);
        exo_shard_buffer_release(sh, s->output);
        s->output = NULL;
        s->output_rows = 0;
        st = check_room(s, bytes, sh->plan.has_head ? "every row's logits" : "every row's hidden states");
        if (st == EXO_OK) st = alloc_buffer(s, bytes, EXO_BUFFER_SCRATCH, &s->output);
        if (st != EXO_OK) return st;
        s->output_rows = n;
    }
    exo_buffer *output = last_graph ? s->output_last : s->output;
    exo_binding *bindings = s->bindings; /* sized at create: this step's count is at most n_bindings_cap */
    uint32_t nb = 0;
    bindings[nb++] = (exo_binding){.tensor = p->embeds ? p->in_tokens : p->in_hidden, .buffer = s->input};
    bindings[nb++] = (exo_binding){.tensor = p->in_positions, .buffer = s->input, .offset = at.positions};
    bindings[nb++] = (exo_binding){.tensor = p->output, .buffer = output};
    if (p->out_argmax != UINT32_MAX) bindings[nb++] = (exo_binding){.tensor = p->out_argmax, .buffer = s->next_tokens};
    if (last_graph) bindings[nb++] = (exo_binding){.tensor = p->in_output_row, .buffer = s->input, .offset = at.rows};
    /* A pooled shard's caches are its pool's buffers (they change when the pool grows). */
    exo_buffer **kv = sh->pooled ? sh->pool.kv : s->kv;
    for (uint32_t i = 0; i < p->n_kv; i++) bindings[nb++] = (exo_binding){.tensor = p->kv[i], .buffer = kv[i]};
    if (sh->pooled) bindings[nb++] = (exo_binding){.tensor = p->in_slots, .buffer = s->slots};
    exo_exec_args args;
    memset(&args, 0, sizeof args);
    EXO_ABI_STRUCT_INIT(&args);
    args.n_tokens = n;
    args.n_bindings = nb;
    args.bindings = bindings;
    /* The 1.0 size too (an ABI 1.0/1.1 plugin indexes with it): see "IR arrays" in exo_plugin.h. */
    _Static_assert(sizeof *bindings == EXO_BINDING_SIZE_1_0, "exo_binding grew: repack for ABI 1.0/1.1 plugins");
    args.binding_stride = (uint32_t)sizeof *bindings;
    exo_error_clear();
    st = api->graph_execute(last_graph ? sh->compiled_last : sh->compiled, &args);
    if (st != EXO_OK) return exo_error_wrap(st, "executing the graph failed");
    uint32_t W = sh->output_width;
    if (!out)
        st = EXO_OK; /* the rows stay in s->output: the next part copies them device to device */
    else if (flags & EXO_FORWARD_ARGMAX)
        st = exo_session_read_greedy(s, output, s->next_tokens, last_graph ? 0 : n - 1, out);
    else if (last_graph)
        st = api->buffer_read(output, 0, out, (uint64_t)W * 4);
    else if (flags & EXO_FORWARD_LAST_ONLY)
        st = api->buffer_read(output, (uint64_t)(n - 1) * W * 4, out, (uint64_t)W * 4);
    else
        st = api->buffer_read(output, 0, out, (uint64_t)n * W * 4);
    if (st != EXO_OK) return exo_error_wrap(st, "reading the step's output failed");
    s->position += n;
    return EXO_OK;
}

exo_status exo_session_pick_row(exo_session *s) {
    if (!s->pick_row && !(s->pick_row = malloc((size_t)s->shard->output_width * sizeof *s->pick_row)))
        return exo_errorf(EXO_ERR_NO_MEMORY, "out of memory for a greedy step's logits row");
    return EXO_OK;
}

exo_status exo_session_read_greedy(exo_session *s, exo_buffer *logits, exo_buffer *tokens, uint32_t row, float *out) {
    exo_shard *sh = s->shard;
    const exo_plugin_api *api = &sh->plugin->api;
    if (exo_shard_argmax_on_device(sh)) {
        int32_t id = 0;
        exo_status st = api->buffer_read(tokens, (uint64_t)row * 4, &id, 4);
        if (st == EXO_OK) *out = (float)id;
        return st;
    }
    uint32_t W = sh->output_width;
    exo_status st = exo_session_pick_row(s);
    if (st == EXO_OK) st = api->buffer_read(logits, (uint64_t)row * W * 4, s->pick_row, (uint64_t)W * 4);
    if (st == EXO_OK) *out = (float)exo_argmax_row(s->pick_row, W);
    return st;
}

bool exo_shard_argmax_on_device(const exo_shard *sh) { return EXO_VERSION_MINOR(sh->plugin->abi_version) >= 10; }

exo_status exo_session_check_step(exo_session *s, const void *input, uint32_t n, uint32_t flags, const float *out,
                                  uint64_t out_count, bool tokens) {
    if (!s || !input || !out || n == 0)
        return exo_errorf(EXO_ERR_INVALID_ARG, "exo_session_forward: NULL argument or no tokens");
    exo_shard *sh = s->shard;
    if (tokens != sh->plan.embeds)
        return exo_error_keep(&s->error, sh->plan.embeds
            ? exo_errorf(EXO_ERR_INVALID_ARG, "this shard starts at layer 0 and takes token ids, not hidden states")
            : exo_errorf(EXO_ERR_INVALID_ARG, "this shard starts at layer %u and takes hidden states, not tokens",
                         sh->plan.start));
    if ((flags & EXO_FORWARD_ARGMAX) && !sh->plan.has_head)
        return exo_error_keep(&s->error, exo_errorf(EXO_ERR_INVALID_ARG, "EXO_FORWARD_ARGMAX asks for the greedy "
                              "token, but this shard ends at layer %u without the lm_head", sh->plan.end));
    uint32_t W = sh->output_width;
    uint64_t need = (flags & EXO_FORWARD_ARGMAX) ? 1 : (flags & EXO_FORWARD_LAST_ONLY) ? W : (uint64_t)n * W;
    if (out_count < need)
        return exo_error_keep(&s->error, exo_errorf(EXO_ERR_INVALID_ARG,
                              "output holds %llu floats; this step writes %llu", (unsigned long long)out_count,
                              (unsigned long long)need));
    if ((uint64_t)s->position + n > s->max_ctx)
        return exo_error_keep(&s->error, exo_errorf(EXO_ERR_INVALID_ARG,
                              "context full: %u positions held + %u new > max_ctx %u", s->position, n, s->max_ctx));
    if (sh->plan.embeds) {
        const int32_t *ids = input;
        for (uint32_t i = 0; i < n; i++)
            if (ids[i] < 0 || (uint32_t)ids[i] >= sh->model->cfg.vocab_size)
                return exo_error_keep(&s->error, exo_errorf(EXO_ERR_INVALID_ARG,
                                      "token %d at index %u is outside the vocabulary (%u)", ids[i], i,
                                      sh->model->cfg.vocab_size));
    }
    return EXO_OK;
}

/* The chunks of a checked step under the device lock. input NULL: the rows are already in the
 * session's input buffer; out NULL: they stay in its output buffer (one chunk only: see
 * exo_session_forward_resident). */
static exo_status forward_checked(exo_session *s, const void *input, uint32_t n, uint32_t flags, float *out) {
    exo_shard *sh = s->shard;
    uint32_t W = sh->output_width, in_w = sh->input_width;
    bool had_state = s->position > 0;
    uint32_t T = sh->plan.max_tokens, done = 0, position0 = s->position;
    exo_status st = EXO_OK;
    exo_runtime_device_lock(sh->model->rt, sh->device);
    while (done < n && st == EXO_OK) {
        uint32_t chunk = n - done < T ? n - done : T;
        const char *in = input ? (const char *)input + (uint64_t)done * in_w * 4 : NULL;
        float *dst = !out || exo_forward_last_only(flags) ? out : out + (uint64_t)done * W;
        /* An earlier chunk of a one-row step writes its own last row, which the last chunk's replaces. */
        st = step(s, in, chunk, flags, dst);
        done += chunk;
        had_state = had_state || (st == EXO_OK);
    }
    exo_runtime_device_unlock(sh->model->rt, sh->device);
    /* A failed call leaves the session where it was: cache rows past the position are never
     * read, so chunks written before the failure are simply forgotten. */
    if (st != EXO_OK) s->position = position0;
    if (st != EXO_OK && had_state && st != EXO_ERR_INVALID_ARG && st != EXO_ERR_NO_MEMORY) {
        /* The cache on the device may be half-written: EXO must re-place the shard. */
        exo_error_wrap(EXO_ERR_DEVICE_LOST, "session state lost on %s", sh->plugin->name);
        st = EXO_ERR_DEVICE_LOST;
    }
    return exo_error_keep(&s->error, st);
}

exo_status exo_session_forward_part(exo_session *s, const void *input, uint32_t n, uint32_t flags, float *out,
                                    uint64_t out_count, bool tokens) {
    exo_error_clear();
    exo_status checked = exo_session_check_step(s, input, n, flags, out, out_count, tokens);
    if (checked != EXO_OK) return checked;
    return forward_checked(s, input, n, flags, out);
}

exo_status exo_session_forward_resident(exo_session *s, const void *input, uint32_t n, uint32_t flags, float *out,
                                        uint64_t out_count, bool tokens) {
    if (input && out) return exo_session_forward_part(s, input, n, flags, out, out_count, tokens);
    exo_error_clear();
    exo_shard *sh = s->shard;
    /* The caller (a pipeline) checked the step as a whole; what is left is this part's. */
    if (n == 0 || n > sh->plan.max_tokens || (uint64_t)s->position + n > s->max_ctx || (!input && sh->plan.embeds) ||
        (!out && (flags & EXO_FORWARD_LAST_ONLY)))
        return exo_error_keep(&s->error, exo_errorf(EXO_ERR_INVALID_ARG,
                              "a device-resident step of %u rows at position %u (max_tokens %u, max_ctx %u)", n,
                              s->position, sh->plan.max_tokens, s->max_ctx));
    uint64_t need = (flags & EXO_FORWARD_LAST_ONLY) ? sh->output_width : (uint64_t)n * sh->output_width;
    if (out && out_count < need)
        return exo_error_keep(&s->error, exo_errorf(EXO_ERR_INVALID_ARG, "output holds %llu floats; this step writes "
                              "%llu", (unsigned long long)out_count, (unsigned long long)need));
    return forward_checked(s, input, n, flags, out);
}

/* A step of a shard across devices (pipeline.c, tensor_parallel.c), whose last part hands the
 * logits to the host: a greedy step takes the last row there and picks on the host. */
static exo_status forward_parts(exo_session *s, const void *input, uint32_t n, uint32_t flags, float *out,
                                uint64_t out_count, bool tokens) {
    if (!(flags & EXO_FORWARD_ARGMAX)) return exo_pipeline_forward(s, input, n, flags, out, out_count, tokens);
    exo_error_clear();
    exo_status st = exo_session_check_step(s, input, n, flags, out, out_count, tokens);
    uint32_t W = s->shard->output_width;
    if (st == EXO_OK) st = exo_error_keep(&s->error, exo_session_pick_row(s));
    if (st == EXO_OK)
        st = exo_pipeline_forward(s, input, n, (flags & ~EXO_FORWARD_ARGMAX) | EXO_FORWARD_LAST_ONLY, s->pick_row, W,
                                  tokens);
    if (st == EXO_OK) out[0] = (float)exo_argmax_row(s->pick_row, W);
    return st;
}

exo_status exo_session_forward_tokens(exo_session *s, const int32_t *tokens, uint32_t n, uint32_t flags, float *out,
                                      uint64_t out_count) {
    if (s && s->parts) return forward_parts(s, tokens, n, flags, out, out_count, true);
    return exo_session_forward_part(s, tokens, n, flags, out, out_count, true);
}

exo_status exo_session_forward_hidden(exo_session *s, const float *hidden, uint32_t n, uint32_t flags, float *out,
                                      uint64_t out_count) {
    if (s && s->parts) return forward_parts(s, hidden, n, flags, out, out_count, false);
    return exo_session_forward_part(s, hidden, n, flags, out, out_count, false);
}
