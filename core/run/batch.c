/* exo_session_forward_batch: one step of several sequences of a shard.
 *
 * On a pooled shard (its plugin runs pooled KV caches, ABI 1.6; abi/exo_plugin.h, "Pooled KV
 * caches") the entries' tokens are concatenated, each entry's run contiguous, and go through
 * the shard's graph in one execution: every matmul reads its weights once for the whole batch,
 * while KV_WRITE and ATTENTION use each token's slot (its session's cache) and position. Decode
 * steps of one token and prefill chunks mix freely; more tokens than max_tokens take several
 * executions, an entry's tokens split across them in order. Every entry is checked first
 * (exo_session_check_step): a failing entry carries its own status and the others still run.
 * A shard that is not pooled steps the good entries one after another, as a session alone.
 *
 * The full graph computes logits for every row. An execution whose rows need few of them (each
 * entry's last token when it asks for that only: a prompt chunk prefilled beside decode steps)
 * and has more rows than EXO_BATCH_SELECTED_ROWS runs the shard's selected-rows graph instead,
 * which takes the hidden states of those rows alone (GET_ROWS, padded by repeating the last)
 * through the final norm and the lm_head: a 128-token chunk beside 7 decodes then pays the
 * lm_head for 8 rows, not 135. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"

/* The part of one entry's tokens that one execution carries. */
typedef struct segment {
    uint32_t entry;
    uint32_t offset;            /* first token of the entry in this execution */
    uint32_t count;
    uint32_t row;               /* its first row in the execution */
} segment;

#define ENTRY(i) ((exo_batch_entry *)((char *)entries + (size_t)(i)*stride))

void exo_batch_buffers_free(exo_shard *sh) {
    exo_batch_buffers *b = &sh->batch;
    exo_shard_buffer_release(sh, b->inputs);
    exo_shard_buffer_release(sh, b->output);
    exo_shard_buffer_release(sh, b->next_tokens);
    free(b->host);
    free(b->ids);
    memset(b, 0, sizeof *b);
}

static uint64_t align_up(uint64_t n) { return (n + EXO_STEP_INPUTS_ALIGN - 1) / EXO_STEP_INPUTS_ALIGN * EXO_STEP_INPUTS_ALIGN; }

exo_step_inputs_layout exo_step_inputs_layout_for(const exo_shard *sh, uint32_t rows, bool selected) {
    exo_step_inputs_layout l;
    l.positions = align_up((uint64_t)rows * sh->input_width * 4);
    l.slots = l.positions + align_up((uint64_t)rows * 4);
    l.rows = l.slots + align_up((uint64_t)rows * 4);
    l.end = selected ? l.rows + EXO_BATCH_SELECTED_ROWS * 4 : l.slots + (uint64_t)rows * 4;
    return l;
}

/* The shard's batch buffers: inputs of max_tokens rows, made once; the output grown to `rows`. */
static exo_status batch_buffers(exo_shard *sh, uint32_t rows) {
    exo_batch_buffers *b = &sh->batch;
    const exo_plugin_api *api = &sh->plugin->api;
    uint32_t dev = exo_runtime_device(sh->model->rt, sh->device)->index;
    exo_status st = EXO_OK;
    exo_error_clear();
    if (!b->host) {
        uint64_t size = exo_step_inputs_layout_for(sh, sh->plan.max_tokens, true).end;
        b->host = malloc(size);
        b->ids = malloc((size_t)sh->plan.max_tokens * sizeof *b->ids);
        if (!b->host || !b->ids) {
            exo_batch_buffers_free(sh);
            return exo_errorf(EXO_ERR_NO_MEMORY, "out of memory for a batched step's inputs");
        }
        st = api->buffer_alloc(sh->plugin->ctx, dev, size, EXO_BUFFER_SCRATCH, &b->inputs);
        if (st == EXO_OK && sh->plan.has_head)
            st = api->buffer_alloc(sh->plugin->ctx, dev, (uint64_t)sh->plan.max_tokens * 4, EXO_BUFFER_SCRATCH,
                                   &b->next_tokens);
    }
    if (st == EXO_OK && rows > b->output_rows) {
        exo_shard_buffer_release(sh, b->output);
        b->output = NULL;
        b->output_rows = 0;
        st = api->buffer_alloc(sh->plugin->ctx, dev, (uint64_t)rows * sh->output_width * 4, EXO_BUFFER_SCRATCH,
                               &b->output);
        if (st == EXO_OK) b->output_rows = rows;
    }
    if (st != EXO_OK) {
        exo_error_wrap(st, "allocating a batched step's buffers failed");
        exo_batch_buffers_free(sh);
        return st;
    }
    return EXO_OK;
}

/* The selected-rows graph at the shard's KV dtype, sizes and pool, compiled when first needed
 * (and again after the pool grew: session_pool.c drops it); NULL when the shard has none or it
 * failed to compile (logged: the full graph serves). */
static exo_compiled *rows_graph(exo_shard *sh) {
    if (sh->compiled_rows || !sh->plan_rows.n_nodes || !sh->batch.inputs) return sh->compiled_rows;
    exo_graph_plan *p = &sh->plan_rows;
    exo_graph_plan_pool_kv(p, 0); /* sized and typed unpooled, as shard.c does the others */
    exo_graph_plan_set_kv_dtype(p, sh->plan.kv_dtype);
    exo_graph_plan_resize(p, sh->plan.max_tokens, sh->plan.max_ctx);
    exo_graph graph;
    exo_status st = exo_graph_plan_pool_kv(p, sh->plan.kv_slots);
    if (st == EXO_OK) st = exo_graph_plan_view(p, sh->buffers, sh->plugin->abi_version, &graph);
    if (st == EXO_OK) {
        exo_error_clear();
        st = sh->plugin->api.graph_compile(sh->plugin->ctx, exo_runtime_device(sh->model->rt, sh->device)->index, &graph,
                                           &sh->compiled_rows);
    }
    if (st == EXO_OK)
        exo_logf(&sh->model->rt->logger, EXO_LOG_INFO, "batch", "selected-rows graph compiled on %s (%u rows of logits)",
                 sh->plugin->name, EXO_BATCH_SELECTED_ROWS);
    if (st != EXO_OK) {
        sh->compiled_rows = NULL;
        exo_logf(&sh->model->rt->logger, EXO_LOG_WARN, "batch",
                 "compiling the selected-rows graph on %s failed (%s): batched steps compute every row's logits",
                 sh->plugin->name, exo_error_message());
        exo_graph_plan_free(p); /* not tried again */
        exo_error_clear();
    }
    return sh->compiled_rows;
}

/* The output row of each segment's logits when the execution can run the selected-rows graph
 * (every entry wants its last row only, at most EXO_BATCH_SELECTED_ROWS of them, and more rows
 * than that); false to run the full graph. pick[] gets the padded row list, out_row[k] the row
 * of segment k's logits in the output (UINT32_MAX: none). */
static bool select_rows(const exo_batch_entry *entries, size_t stride, const segment *seg, uint32_t n_seg,
                        uint32_t rows, int32_t *pick, uint32_t *out_row) {
    if (rows <= EXO_BATCH_SELECTED_ROWS) return false;
    uint32_t n = 0;
    for (uint32_t k = 0; k < n_seg; k++) {
        const exo_batch_entry *e = (const exo_batch_entry *)((const char *)entries + (size_t)seg[k].entry * stride);
        out_row[k] = UINT32_MAX;
        if (!exo_forward_last_only(e->flags)) return false;
        if (seg[k].offset + seg[k].count != e->n) continue;
        if (n == EXO_BATCH_SELECTED_ROWS) return false;
        out_row[k] = n;
        pick[n++] = (int32_t)(seg[k].row + seg[k].count - 1);
    }
    for (uint32_t i = n; i < EXO_BATCH_SELECTED_ROWS; i++) pick[i] = n ? pick[n - 1] : 0;
    return true;
}

/* One execution over `rows` tokens made of the segments (the full graph, or the selected-rows
 * graph where select_rows says so); copies each segment's outputs to its entry. */
static exo_status execute(exo_shard *sh, exo_batch_entry *entries, size_t stride, const segment *seg, uint32_t n_seg,
                          uint32_t rows, exo_binding *bindings, uint32_t *out_row) {
    const exo_plugin_api *api = &sh->plugin->api;
    exo_batch_buffers *b = &sh->batch;
    int32_t pick[EXO_BATCH_SELECTED_ROWS];
    bool selected = sh->plan.has_head && select_rows(entries, stride, seg, n_seg, rows, pick, out_row) && rows_graph(sh);
    const exo_graph_plan *p = selected ? &sh->plan_rows : &sh->plan;
    uint32_t in_w = sh->input_width, W = sh->output_width;
    exo_step_inputs_layout at = exo_step_inputs_layout_for(sh, rows, selected);
    char *in = b->host;
    int32_t *pos = (int32_t *)(in + at.positions), *slots = (int32_t *)(in + at.slots);
    if (selected) memcpy(in + at.rows, pick, sizeof pick);
    for (uint32_t k = 0; k < n_seg; k++) {
        const exo_batch_entry *e = ENTRY(seg[k].entry);
        const void *src = p->embeds ? (const void *)e->tokens : (const void *)e->hidden;
        memcpy(in + (size_t)seg[k].row * in_w * 4, (const char *)src + (size_t)seg[k].offset * in_w * 4,
               (size_t)seg[k].count * in_w * 4);
        for (uint32_t j = 0; j < seg[k].count; j++) {
            pos[seg[k].row + j] = (int32_t)(e->session->position + seg[k].offset + j);
            slots[seg[k].row + j] = (int32_t)e->session->slot;
        }
    }
    /* One write: a blocking write costs a round trip whatever its size (8 rows: ~100 bytes). */
    exo_error_clear();
    exo_status st = api->buffer_write(b->inputs, 0, in, at.end);
    if (st != EXO_OK) return exo_error_wrap(st, "writing a batched step's inputs failed");
    uint32_t nb = 0;
    bindings[nb++] = (exo_binding){.tensor = p->embeds ? p->in_tokens : p->in_hidden, .buffer = b->inputs};
    bindings[nb++] = (exo_binding){.tensor = p->in_positions, .buffer = b->inputs, .offset = at.positions};
    bindings[nb++] = (exo_binding){.tensor = p->in_slots, .buffer = b->inputs, .offset = at.slots};
    bindings[nb++] = (exo_binding){.tensor = p->output, .buffer = b->output};
    if (p->out_argmax != UINT32_MAX) bindings[nb++] = (exo_binding){.tensor = p->out_argmax, .buffer = b->next_tokens};
    if (selected) bindings[nb++] = (exo_binding){.tensor = p->in_output_row, .buffer = b->inputs, .offset = at.rows};
    for (uint32_t i = 0; i < p->n_kv; i++) bindings[nb++] = (exo_binding){.tensor = p->kv[i], .buffer = sh->pool.kv[i]};
    exo_exec_args args;
    memset(&args, 0, sizeof args);
    EXO_ABI_STRUCT_INIT(&args);
    args.n_tokens = rows;
    args.n_bindings = nb;
    args.bindings = bindings;
    args.binding_stride = (uint32_t)sizeof *bindings;
    exo_error_clear();
    st = api->graph_execute(selected ? sh->compiled_rows : sh->compiled, &args);
    if (st != EXO_OK) return exo_error_wrap(st, "executing the batched graph failed");
    /* The greedy tokens the device picked: every row's in one read (a read is a round trip). */
    bool greedy_ids = false;
    for (uint32_t k = 0; k < n_seg; k++) greedy_ids = greedy_ids || (ENTRY(seg[k].entry)->flags & EXO_FORWARD_ARGMAX);
    greedy_ids = greedy_ids && exo_shard_argmax_on_device(sh);
    if (greedy_ids)
        st = api->buffer_read(b->next_tokens, 0, b->ids, (uint64_t)(selected ? EXO_BATCH_SELECTED_ROWS : rows) * 4);
    for (uint32_t k = 0; k < n_seg && st == EXO_OK; k++) {
        exo_batch_entry *e = ENTRY(seg[k].entry);
        bool ends = seg[k].offset + seg[k].count == e->n; /* the segment holds the entry's last token */
        uint32_t last = selected ? out_row[k] : seg[k].row + seg[k].count - 1;
        if (!exo_forward_last_only(e->flags))
            st = api->buffer_read(b->output, (uint64_t)seg[k].row * W * 4, e->out + (uint64_t)seg[k].offset * W,
                                  (uint64_t)seg[k].count * W * 4);
        else if (!ends)
            continue;
        else if (greedy_ids && (e->flags & EXO_FORWARD_ARGMAX))
            e->out[0] = (float)b->ids[last];
        else if (e->flags & EXO_FORWARD_ARGMAX)
            st = exo_session_read_greedy(e->session, b->output, b->next_tokens, last, e->out);
        else
            st = api->buffer_read(b->output, (uint64_t)last * W * 4, e->out, (uint64_t)W * 4);
    }
    if (st != EXO_OK) return exo_error_wrap(st, "reading a batched step's output failed");
    return EXO_OK;
}

/* The good entries (status EXO_OK) as one batch, in executions of at most max_tokens tokens.
 * A failed execution fails every entry not yet finished (their positions stay where they were;
 * an entry that held state gets EXO_ERR_DEVICE_LOST, as a session alone does). */
static void run_batched(exo_shard *sh, exo_batch_entry *entries, size_t stride, uint32_t n_entries) {
    uint32_t T = sh->plan.max_tokens;
    uint32_t *done = calloc(n_entries, sizeof *done);
    segment *seg = malloc((size_t)n_entries * sizeof *seg);
    uint32_t *out_row = malloc((size_t)n_entries * sizeof *out_row);
    exo_binding *bindings = malloc((size_t)(6 + sh->plan.n_kv) * sizeof *bindings);
    exo_status st = done && seg && out_row && bindings ? EXO_OK
                                                       : exo_errorf(EXO_ERR_NO_MEMORY, "out of memory for a batched step");
    exo_runtime_device_lock(sh->model->rt, sh->device);
    if (st == EXO_OK) st = batch_buffers(sh, T);
    for (bool more = true; st == EXO_OK && more;) {
        uint32_t n_seg = 0, rows = 0;
        for (uint32_t i = 0; i < n_entries && rows < T; i++) {
            exo_batch_entry *e = ENTRY(i);
            if (e->status != EXO_OK || done[i] == e->n) continue;
            uint32_t count = e->n - done[i] < T - rows ? e->n - done[i] : T - rows;
            seg[n_seg++] = (segment){i, done[i], count, rows};
            rows += count;
        }
        if (!n_seg) break;
        st = execute(sh, entries, stride, seg, n_seg, rows, bindings, out_row);
        for (uint32_t k = 0; st == EXO_OK && k < n_seg; k++) done[seg[k].entry] += seg[k].count;
    }
    exo_runtime_device_unlock(sh->model->rt, sh->device);
    char detail[EXO_ERROR_MAX];
    snprintf(detail, sizeof detail, "%s", exo_error_message());
    for (uint32_t i = 0; i < n_entries; i++) {
        exo_batch_entry *e = ENTRY(i);
        if (e->status != EXO_OK) continue;
        exo_session *s = e->session;
        if (st == EXO_OK) {
            s->position += e->n;
            continue;
        }
        bool had_state = s->position > 0 || (done && done[i] > 0);
        exo_errorf(st, "%s", detail);
        e->status = st;
        if (had_state && st != EXO_ERR_INVALID_ARG && st != EXO_ERR_NO_MEMORY) {
            /* The cache on the device may be half-written: EXO must re-place the shard. */
            exo_error_wrap(EXO_ERR_DEVICE_LOST, "session state lost on %s", sh->plugin->name);
            e->status = EXO_ERR_DEVICE_LOST;
        }
        exo_error_keep(&s->error, e->status);
    }
    free(done);
    free(seg);
    free(out_row);
    free(bindings);
}

/* A batched step across devices, whose last part hands logits to the host: a greedy entry gets
 * its session's logits row as its output for the step (LAST_ONLY) and the pick on the host
 * after it; the caller's out, out_count and flags are put back. */
static void forward_parts_batch(exo_shard *sh, exo_batch_entry *entries, size_t stride, uint32_t n_entries) {
    typedef struct caller_fields {
        float *out;
        uint64_t out_count;
        uint32_t flags;
    } caller_fields;
    caller_fields *kept = calloc(n_entries, sizeof *kept);
    for (uint32_t i = 0; i < n_entries; i++) {
        exo_batch_entry *e = ENTRY(i);
        if (e->status != EXO_OK || !(e->flags & EXO_FORWARD_ARGMAX)) continue;
        exo_status st = kept ? exo_session_pick_row(e->session)
                             : exo_errorf(EXO_ERR_NO_MEMORY, "out of memory for a batched greedy step");
        if (st != EXO_OK) {
            e->status = exo_error_keep(&e->session->error, st);
            continue;
        }
        kept[i] = (caller_fields){e->out, e->out_count, e->flags};
        e->out = e->session->pick_row;
        e->out_count = sh->output_width;
        e->flags = (e->flags & ~EXO_FORWARD_ARGMAX) | EXO_FORWARD_LAST_ONLY;
    }
    exo_pipeline_forward_batch(entries, stride, n_entries);
    for (uint32_t i = 0; kept && i < n_entries; i++) {
        exo_batch_entry *e = ENTRY(i);
        if (!kept[i].out) continue;
        e->out = kept[i].out;
        e->out_count = kept[i].out_count;
        e->flags = kept[i].flags;
        if (e->status == EXO_OK) e->out[0] = (float)exo_argmax_row(e->session->pick_row, sh->output_width);
    }
    free(kept);
}

exo_status exo_session_forward_batch(exo_batch_entry *entries, uint32_t n_entries) {
    exo_error_clear();
    if (!n_entries) return EXO_OK;
    if (!entries || entries[0].hdr.size < sizeof(exo_struct_header) ||
        EXO_VERSION_MAJOR(entries[0].hdr.version) != EXO_API_MAJOR)
        return exo_errorf(EXO_ERR_INVALID_ARG, "exo_session_forward_batch: entries NULL or header not initialised");
    /* The caller's struct size is the stride: an older, smaller exo_batch_entry still works. */
    size_t stride = entries[0].hdr.size;
    if (stride < offsetof(exo_batch_entry, status) + sizeof(exo_status) || stride % _Alignof(exo_batch_entry))
        return exo_errorf(EXO_ERR_INVALID_ARG, "exo_batch_entry of %zu bytes is too small or misaligned", stride);
    exo_shard *shard = NULL;
    for (uint32_t i = 0; i < n_entries; i++) {
        const exo_session *s = ENTRY(i)->session;
        if (!s) return exo_errorf(EXO_ERR_INVALID_ARG, "batch entry %u has no session", i);
        if (shard && s->shard != shard)
            return exo_errorf(EXO_ERR_INVALID_ARG, "batch entry %u belongs to another shard than entry 0", i);
        shard = s->shard;
    }
    /* Each entry checked on its own first: a bad one fails alone. */
    uint32_t good = 0;
    for (uint32_t i = 0; i < n_entries; i++) {
        exo_batch_entry *e = ENTRY(i);
        exo_error_clear();
        e->status = EXO_OK;
        for (uint32_t j = 0; j < i; j++)
            if (ENTRY(j)->session == e->session)
                e->status = exo_error_keep(&e->session->error, exo_errorf(EXO_ERR_INVALID_ARG,
                                           "batch entry %u steps the session of entry %u again", i, j));
        if (e->status == EXO_OK)
            e->status = exo_session_check_step(e->session, shard->plan.embeds ? (const void *)e->tokens
                                                                               : (const void *)e->hidden,
                                               e->n, e->flags, e->out, e->out_count, shard->plan.embeds);
        good += e->status == EXO_OK;
    }
    if (shard->pooled && good > 1) {
        run_batched(shard, entries, stride, n_entries);
    } else if (shard->n_parts && good > 1 && n_entries <= EXO_SHELL_BATCH_MAX) {
        /* Across devices (pipeline.c, tensor_parallel.c): every part steps the batch together. */
        forward_parts_batch(shard, entries, stride, n_entries);
    } else {
        /* Not pooled (the plugin runs no pooled caches), or one sequence: steps of one session. */
        for (uint32_t i = 0; i < n_entries; i++) {
            exo_batch_entry *e = ENTRY(i);
            if (e->status != EXO_OK) continue;
            if (shard->plan.embeds)
                e->status = exo_session_forward_tokens(e->session, e->tokens, e->n, e->flags, e->out, e->out_count);
            else
                e->status = exo_session_forward_hidden(e->session, e->hidden, e->n, e->flags, e->out, e->out_count);
        }
    }
    for (uint32_t i = 0; i < n_entries; i++)
        if (ENTRY(i)->status != EXO_OK) {
            exo_batch_entry *e = ENTRY(i);
            return exo_errorf(e->status, "batch entry %u: %s", i, exo_session_last_error(e->session));
        }
    return EXO_OK;
}
