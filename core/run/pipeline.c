/* A shard placed across several devices: a pipeline of ordinary shards ("parts"), each holding
 * consecutive layers on one device, under a shell the caller holds as one exo_shard
 * (model_internal.h). Loading asks placement.c for the ranges and loads every part with
 * exo_shard_load; a session is one session per part, and a step runs the parts one after another
 * through exo_session_forward_part, each part's hidden states handed to the next part's device
 * inside the one call (no caller in the loop): by a device-to-device copy where the plugin offers
 * one for the pair (peer_copy.h), else read back to host memory and written from there. Fitting to
 * memory, KV caches, pooling, error detail and DEVICE_LOST are the parts' own: nothing of
 * shard.c or session.c is repeated here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "run/peer_copy.h"
#include "run/placement.h"

/* A part's load progress, counted in the whole range's layers. */
typedef struct part_progress {
    exo_progress_fn fn;
    void *user;
    uint32_t before, total;
} part_progress;

static int on_part_progress(void *user, uint32_t loaded, uint32_t part_total) {
    (void)part_total;
    const part_progress *p = user;
    return p->fn(p->user, p->before + loaded, p->total);
}

void exo_pipeline_device_spec(const exo_runtime *rt, uint32_t device, char *spec, size_t cap) {
    const exo_device_rec *d = exo_runtime_device(rt, device);
    snprintf(spec, cap, "%s:%u", rt->plugins[d->plugin].name, d->index);
}

void exo_pipeline_fill_shell(exo_shard *sh) {
    const exo_shard *first = sh->parts[0], *last = sh->parts[sh->n_parts - 1];
    sh->device = first->device;
    sh->plugin = first->plugin;
    sh->plan.start = first->plan.start;
    sh->plan.end = last->plan.end;
    sh->plan.embeds = first->plan.embeds;
    sh->plan.has_head = last->plan.has_head;
    sh->plan.kv_dtype = first->plan.kv_dtype;
    sh->plan.max_tokens = first->plan.max_tokens;
    sh->plan.max_ctx = first->plan.max_ctx;
    sh->input_width = first->input_width;
    sh->output_width = last->output_width;
    for (uint32_t i = 0; i < sh->n_parts; i++) {
        const exo_shard *p = sh->parts[i];
        sh->weight_bytes += p->weight_bytes;
        if (p->plan.max_tokens < sh->plan.max_tokens) sh->plan.max_tokens = p->plan.max_tokens;
        if (p->plan.max_ctx < sh->plan.max_ctx) sh->plan.max_ctx = p->plan.max_ctx;
    }
}

/* How each part's input arrives: by a peer copy from the previous part's device where the plugin
 * offers one for the pair, else through host memory (logged either way, with the reason). */
static void choose_handover(exo_shard *sh) {
    exo_runtime *rt = sh->model->rt;
    for (uint32_t k = 1; k < sh->n_parts; k++) {
        char why[EXO_ERROR_MAX], a[96], b[96];
        uint32_t from = sh->parts[k - 1]->device, to = sh->parts[k]->device;
        sh->peer_in[k] = exo_peer_copy_offered(rt, from, to, why, sizeof why);
        exo_pipeline_device_spec(rt, from, a, sizeof a);
        exo_pipeline_device_spec(rt, to, b, sizeof b);
        exo_logf(&rt->logger, EXO_LOG_INFO, "pipeline", "hand-over part %u -> %u (%s -> %s): %s%s", k - 1, k, a, b,
                 sh->peer_in[k] ? "peer copies" : "through host memory: ", sh->peer_in[k] ? "" : why);
    }
}

exo_status exo_pipeline_load(exo_model *m, const exo_shard_options *opts, const uint32_t *devices, uint32_t n,
                             exo_shard **out) {
    exo_runtime *rt = m->rt;
    uint32_t start = opts->start_layer, end = opts->end_layer;
    uint32_t ctx = opts->max_ctx ? opts->max_ctx : m->cfg.max_position_embeddings;
    if (!opts->max_ctx && ctx > EXO_DEFAULT_MAX_CTX) ctx = EXO_DEFAULT_MAX_CTX;
    uint32_t bounds[EXO_PLACEMENT_MAX_DEVICES + 1];
    exo_status st = exo_placement_ranges(rt, &m->cfg, devices, n, start, end, ctx, opts->quantize_bits,
                                         opts->quantize_group, bounds);
    if (st != EXO_OK) return st;
    exo_shard *sh = calloc(1, sizeof *sh);
    if (sh) sh->parts = calloc(n, sizeof *sh->parts);
    if (!sh || !sh->parts) {
        free(sh);
        return exo_errorf(EXO_ERR_NO_MEMORY, "out of memory loading a pipeline");
    }
    sh->model = m;
    part_progress progress = {opts->progress, opts->progress_user, 0, end - start};
    for (uint32_t i = 0; i < n && st == EXO_OK; i++) {
        if (bounds[i] == bounds[i + 1]) continue; /* a device given no layers holds no part */
        char spec[96];
        exo_pipeline_device_spec(rt, devices[i], spec, sizeof spec);
        exo_shard_options po = *opts;
        po.start_layer = bounds[i];
        po.end_layer = bounds[i + 1];
        po.device = spec;
        po.devices = NULL;
        if (opts->progress) {
            progress.before = bounds[i] - start;
            po.progress = on_part_progress;
            po.progress_user = &progress;
        }
        exo_shard *part = NULL;
        st = exo_shard_load(m, &po, &part);
        if (st == EXO_OK) sh->parts[sh->n_parts++] = part;
        else if (st != EXO_ERR_ABORTED)
            exo_error_wrap(st, "part %u of the pipeline (layers [%u, %u) on %s)", i, bounds[i], bounds[i + 1], spec);
    }
    if (st != EXO_OK) {
        exo_pipeline_destroy(sh);
        free(sh);
        return st;
    }
    exo_pipeline_fill_shell(sh);
    exo_logf(&rt->logger, EXO_LOG_INFO, "pipeline", "layers [%u, %u) of %s across %u devices (%llu weight bytes)",
             start, end, m->dir, sh->n_parts, (unsigned long long)sh->weight_bytes);
    choose_handover(sh);
    *out = sh;
    return EXO_OK;
}

void exo_pipeline_destroy(exo_shard *sh) {
    exo_rank_workers_stop(sh->workers); /* no step runs while a shard is freed */
    sh->workers = NULL;
    for (uint32_t i = 0; i < sh->n_parts; i++) exo_shard_destroy(sh->parts[i]);
    free(sh->parts);
    sh->parts = NULL;
    sh->n_parts = 0;
}

exo_status exo_shard_get_part_info(const exo_shard *sh, uint32_t part, exo_shard_info *out) {
    exo_error_clear();
    if (!sh) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_shard_get_part_info: shard is NULL");
    uint32_t parts = sh->n_parts ? sh->n_parts : 1;
    if (part >= parts)
        return exo_error_keep((exo_error_slot *)&sh->error,
                              exo_errorf(EXO_ERR_INVALID_ARG, "exo_shard_get_part_info: part %u of a shard of %u", part,
                                         parts));
    exo_status st = exo_shard_get_info(sh->n_parts ? sh->parts[part] : sh, out);
    if (st == EXO_OK && part > 0 && !sh->tensor_parallel && EXO_STRUCT_HAS(out, exo_shard_info, input_path))
        out->input_path = sh->peer_in[part] ? EXO_DEVICE_LINK_PEER : EXO_DEVICE_LINK_HOST;
    return exo_error_keep((exo_error_slot *)&sh->error, st);
}

/* ---------------------------------------------------------------- sessions */

exo_status exo_pipeline_session_create(exo_shard *sh, uint32_t max_ctx, exo_session **out) {
    exo_session *s = calloc(1, sizeof *s);
    exo_status st = EXO_OK;
    if (s) {
        s->shard = sh;
        s->slot = UINT32_MAX;
        s->max_ctx = max_ctx ? max_ctx : sh->plan.max_ctx;
        s->parts = calloc(sh->n_parts, sizeof *s->parts);
        /* Rows of hidden states between parts: two buffers for a pipeline; for tensor parallelism
         * the input, the sum and each rank's partial output (the ranks run at once). */
        size_t buffers = sh->tensor_parallel ? 2 + sh->tensor_parallel : 2;
        s->relay = malloc(buffers * sh->plan.max_tokens * sh->model->cfg.hidden_size * sizeof *s->relay);
    }
    if (!s || !s->parts || !s->relay) st = exo_errorf(EXO_ERR_NO_MEMORY, "out of memory creating a session");
    for (uint32_t i = 0; st == EXO_OK && i < sh->n_parts; i++) {
        st = exo_session_create(sh->parts[i], s->max_ctx, &s->parts[i]);
        if (st != EXO_OK) exo_error_wrap(st, "a session on part %u of the pipeline", i);
    }
    if (st != EXO_OK) {
        if (s) exo_pipeline_session_destroy(s);
        return st;
    }
    *out = s;
    return EXO_OK;
}

void exo_pipeline_session_destroy(exo_session *s) {
    for (uint32_t i = 0; s->parts && i < s->shard->n_parts; i++) exo_session_destroy(s->parts[i]);
    free(s->parts);
    free(s->relay);
    free(s);
}

void exo_pipeline_session_truncate(exo_session *s, uint32_t n) {
    s->position = n;
    for (uint32_t i = 0; i < s->shard->n_parts; i++) s->parts[i]->position = n;
}

uint64_t exo_pipeline_session_kv_bytes(const exo_session *s) {
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < s->shard->n_parts; i++) bytes += exo_session_kv_bytes(s->parts[i]);
    return bytes;
}

exo_status exo_pipeline_copy_prefix(exo_session *dst, const exo_session *src, uint32_t n) {
    exo_status st = EXO_OK;
    for (uint32_t i = 0; st == EXO_OK && i < dst->shard->n_parts; i++) {
        st = exo_session_copy_prefix(dst->parts[i], src->parts[i], n);
        if (st != EXO_OK) exo_error_wrap(st, "part %u of the pipeline", i);
    }
    exo_pipeline_session_truncate(dst, st == EXO_OK ? n : 0);
    return st;
}

/* One step: chunks of the pipeline's max_tokens rows, each through every part in order. A part
 * hands the next every row of hidden states; only the last part honours LAST_ONLY. */
exo_status exo_pipeline_forward(exo_session *s, const void *input, uint32_t n, uint32_t flags, float *out,
                                uint64_t out_count, bool tokens) {
    if (s->shard->tensor_parallel) return exo_tensor_parallel_forward(s, input, n, flags, out, out_count, tokens);
    exo_error_clear();
    exo_status st = exo_session_check_step(s, input, n, flags, out, out_count, tokens);
    if (st != EXO_OK) return st;
    exo_shard *sh = s->shard;
    uint32_t T = sh->plan.max_tokens, H = sh->model->cfg.hidden_size, W = sh->output_width, in_w = sh->input_width;
    uint32_t np = sh->n_parts, position0 = s->position, failed = 0;
    for (uint32_t done = 0; done < n && st == EXO_OK;) {
        uint32_t chunk = n - done < T ? n - done : T;
        const void *in = (const char *)input + (uint64_t)done * in_w * 4;
        for (uint32_t k = 0; k < np && st == EXO_OK; k++) {
            bool tail = k + 1 == np;
            /* Rows handed over by a peer copy never visit the host: the previous part left them
             * in its output buffer, and they land in this part's input buffer. */
            float *dst = !tail && sh->peer_in[k + 1] ? NULL : s->relay + (size_t)(k % 2) * T * H;
            uint64_t cap = (uint64_t)chunk * H;
            uint32_t f = 0;
            if (tail) {
                f = flags & EXO_FORWARD_LAST_ONLY;
                dst = f ? out : out + (uint64_t)done * W;
                cap = f ? W : (uint64_t)chunk * W;
            }
            failed = k;
            if (sh->peer_in[k]) {
                exo_session *prev = s->parts[k - 1], *next = s->parts[k];
                st = exo_peer_copy(sh->model->rt, prev->shard->device, prev->output, 0, next->shard->device,
                                   next->input, 0, (uint64_t)chunk * H * 4);
                if (st != EXO_OK) {
                    exo_error_wrap(st, "handing the hidden states of part %u to part %u", k - 1, k);
                    break;
                }
                in = NULL;
            }
            st = exo_session_forward_resident(s->parts[k], in, chunk, f, dst, cap, k == 0 && tokens);
            in = dst;
        }
        done += chunk;
    }
    if (st == EXO_OK) {
        s->position += n;
        return EXO_OK;
    }
    /* Every part back where the call found it (rows past a position are never read). */
    exo_pipeline_session_truncate(s, position0);
    const exo_shard *part = sh->parts[failed];
    const exo_device_rec *d = exo_runtime_device(sh->model->rt, part->device);
    exo_error_wrap(st, "part %u of the pipeline (layers [%u, %u) on %s:%u)", failed, part->plan.start, part->plan.end,
                   part->plugin->name, d->index);
    return exo_error_keep(&s->error, st);
}

/* ---------------------------------------------------------------- batched steps */

#define ENTRY(b, i) ((exo_batch_entry *)((char *)(b)->entries + (size_t)(i) * (b)->stride))

exo_status exo_shell_batch_begin(exo_shell_batch *b, exo_batch_entry *entries, size_t stride, uint32_t n,
                                 uint32_t rows_per_token, uint32_t lanes) {
    memset(b, 0, sizeof *b);
    b->entries = entries;
    b->stride = stride;
    b->n = n;
    b->n_lanes = lanes < EXO_PLACEMENT_MAX_DEVICES ? lanes : EXO_PLACEMENT_MAX_DEVICES;
    bool lanes_ok = true;
    for (uint32_t l = 0; l < b->n_lanes; l++) {
        b->lanes[l].step = calloc(n, sizeof *b->lanes[l].step);
        b->lanes[l].index = calloc(n, sizeof *b->lanes[l].index);
        lanes_ok = lanes_ok && b->lanes[l].step && b->lanes[l].index;
    }
    b->position0 = calloc(n, sizeof *b->position0);
    b->offset = calloc(n, sizeof *b->offset);
    uint64_t rows = 0;
    for (uint32_t i = 0; i < n; i++) {
        b->offset[i] = rows;
        if (ENTRY(b, i)->status == EXO_OK) rows += ENTRY(b, i)->n;
    }
    b->host = malloc((size_t)(rows ? rows : 1) * rows_per_token * b->entries[0].session->shard->model->cfg.hidden_size *
                     sizeof *b->host);
    if (!lanes_ok || !b->position0 || !b->offset || !b->host) {
        exo_shell_batch_end(b);
        return exo_errorf(EXO_ERR_NO_MEMORY, "out of memory for a batched step");
    }
    b->rows = rows;
    for (uint32_t i = 0; i < n; i++) b->position0[i] = ENTRY(b, i)->session->position;
    return EXO_OK;
}

float *exo_shell_batch_rows(const exo_shell_batch *b, uint32_t i, uint32_t buffer) {
    uint32_t H = b->entries[0].session->shard->model->cfg.hidden_size;
    return b->host + ((size_t)buffer * b->rows + b->offset[i]) * H;
}

void exo_shell_batch_prepare(exo_shell_batch *b, uint32_t lane, uint32_t part, const void *const *in,
                             float *const *out, const uint64_t *out_count, uint32_t flags_mask) {
    exo_shell_batch_lane *ln = &b->lanes[lane];
    ln->m = 0;
    ln->part = part;
    for (uint32_t i = 0; i < b->n && ln->m < EXO_SHELL_BATCH_MAX; i++) {
        exo_batch_entry *e = ENTRY(b, i);
        if (e->status != EXO_OK) continue;
        exo_batch_entry *p = &ln->step[ln->m];
        memset(p, 0, sizeof *p);
        EXO_STRUCT_INIT(p);
        p->session = e->session->parts[part];
        if (p->session->shard->plan.embeds) p->tokens = in[i];
        else p->hidden = in[i];
        p->n = e->n;
        p->flags = e->flags & flags_mask;
        p->out = out[i];
        p->out_count = out_count[i];
        ln->index[ln->m++] = i;
    }
}

void exo_shell_batch_run(exo_shell_batch *b, uint32_t lane) {
    exo_shell_batch_lane *ln = &b->lanes[lane];
    if (ln->m) exo_session_forward_batch(ln->step, ln->m);
}

void exo_shell_batch_merge(exo_shell_batch *b, uint32_t lane) {
    const exo_shell_batch_lane *ln = &b->lanes[lane];
    for (uint32_t j = 0; j < ln->m; j++) {
        exo_batch_entry *e = ENTRY(b, ln->index[j]);
        if (ln->step[j].status == EXO_OK || e->status != EXO_OK) continue; /* the first failure names it */
        e->status = ln->step[j].status;
        exo_errorf(e->status, "part %u: %s", ln->part, exo_session_last_error(ln->step[j].session));
        exo_error_keep(&e->session->error, e->status);
    }
}

void exo_shell_batch_part(exo_shell_batch *b, uint32_t part, const void *const *in, float *const *out,
                          const uint64_t *out_count, uint32_t flags_mask) {
    exo_shell_batch_prepare(b, 0, part, in, out, out_count, flags_mask);
    exo_shell_batch_run(b, 0);
    exo_shell_batch_merge(b, 0);
}

void exo_shell_batch_end(exo_shell_batch *b) {
    for (uint32_t i = 0; b->position0 && i < b->n; i++) {
        exo_batch_entry *e = ENTRY(b, i);
        if (e->status == EXO_OK) exo_pipeline_session_truncate(e->session, b->position0[i] + e->n);
        else if (e->session->parts) exo_pipeline_session_truncate(e->session, b->position0[i]);
    }
    for (uint32_t l = 0; l < b->n_lanes; l++) {
        free(b->lanes[l].step);
        free(b->lanes[l].index);
    }
    free(b->position0);
    free(b->offset);
    free(b->host);
    memset(b, 0, sizeof *b);
}

/* The pipeline: each part once for every live entry, the hidden states in host rows per entry. */
void exo_pipeline_forward_batch(exo_batch_entry *entries, size_t stride, uint32_t n) {
    exo_shard *sh = entries[0].session->shard;
    if (sh->tensor_parallel) {
        exo_tensor_parallel_forward_batch(entries, stride, n);
        return;
    }
    exo_shell_batch b;
    if (exo_shell_batch_begin(&b, entries, stride, n, 2, 1) != EXO_OK) {
        for (uint32_t i = 0; i < n; i++)
            if (ENTRY(&b, i)->status == EXO_OK) ENTRY(&b, i)->status = EXO_ERR_NO_MEMORY;
        return;
    }
    uint32_t H = sh->model->cfg.hidden_size;
    const void *in[EXO_SHELL_BATCH_MAX];
    float *out[EXO_SHELL_BATCH_MAX];
    uint64_t count[EXO_SHELL_BATCH_MAX];
    for (uint32_t i = 0; i < n && i < EXO_SHELL_BATCH_MAX; i++)
        in[i] = sh->plan.embeds ? (const void *)ENTRY(&b, i)->tokens : (const void *)ENTRY(&b, i)->hidden;
    for (uint32_t k = 0; k < sh->n_parts; k++) {
        bool tail = k + 1 == sh->n_parts;
        for (uint32_t i = 0; i < n && i < EXO_SHELL_BATCH_MAX; i++) {
            exo_batch_entry *e = ENTRY(&b, i);
            out[i] = tail ? e->out : exo_shell_batch_rows(&b, i, k % 2);
            count[i] = tail ? e->out_count : (uint64_t)e->n * H;
        }
        exo_shell_batch_part(&b, k, in, out, count, tail ? EXO_FORWARD_LAST_ONLY : 0);
        for (uint32_t i = 0; i < n && i < EXO_SHELL_BATCH_MAX; i++) in[i] = out[i];
    }
    exo_shell_batch_end(&b);
}
