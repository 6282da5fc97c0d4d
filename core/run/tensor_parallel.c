/* Tensor parallelism across a node's devices: every layer of a range split over N devices
 * (exo_shard_options.tensor_parallel). The shell (model_internal.h) holds ordinary shards as
 * parts, in step order: the embedding on the first device (a range starting at 0), then per
 * layer its attention half on each of the N devices and its MLP half on each (a mixture of
 * experts: whole, on the first), then the head on the first device (a range ending at the
 * model's end). A half is one rank's slice of the layer's weights (core/graph/tensor_slice.c)
 * giving its partial o_proj or down_proj output; the all-reduce is here, on the host: the parts'
 * outputs are read back, summed with the residual in float32, and the sum is the next halves'
 * input on every device. Each part's KV cache, fitting, errors and DEVICE_LOST are its own
 * (shard.c, session.c); sessions, truncation and prefix copies are the shell's (pipeline.c).
 * The ranks of a half run at once, each on a host thread of its own (rank_workers.c: rank 0 on
 * the caller, the others on workers started with the shell), and the all-reduce waits for all;
 * EXO_TENSOR_PARALLEL_SEQUENTIAL=1 runs them one after another on the caller instead. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "run/placement.h"

/* Parts one layer contributes: N attention halves and N MLP halves, or 1 for a sparse MLP. */
static uint32_t mlp_ranks(const exo_model *m, uint32_t l, uint32_t n) { return exo_layer_is_moe(&m->cfg, l) ? 1 : n; }

static exo_status add_part(exo_shard *sh, exo_model *m, const exo_shard_options *opts, uint32_t start, uint32_t end,
                           const char *spec, const exo_graph_slice *slice) {
    exo_shard_options po = *opts;
    po.start_layer = start;
    po.end_layer = end;
    po.device = spec;
    po.devices = NULL;
    po.tensor_parallel = 0;
    po.progress = NULL;
    exo_shard *part = NULL;
    exo_status st = slice ? exo_shard_load_slice(m, &po, slice, &part) : exo_shard_load(m, &po, &part);
    if (st != EXO_OK) {
        if (slice)
            return exo_error_wrap(st, "layer %u's %s for rank %u of %u on %s", start,
                                  slice->half == EXO_GRAPH_HALF_ATTENTION ? "attention" : "MLP", slice->rank,
                                  slice->n_ranks, spec);
        return exo_error_wrap(st, "the %s on %s", start == 0 && end == 0 ? "embedding" : "head", spec);
    }
    sh->parts[sh->n_parts++] = part;
    return EXO_OK;
}

/* EXO_TENSOR_PARALLEL_SEQUENTIAL=1: the ranks one after another on the calling thread, as before
 * they had threads (to compare against; docs/placement.md). 0 or unset: concurrent. */
static bool sequential_requested(exo_runtime *rt) {
    const char *v = secure_getenv("EXO_TENSOR_PARALLEL_SEQUENTIAL");
    if (v && *v && strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
        exo_logf(&rt->logger, EXO_LOG_WARN, "tensor_parallel", "EXO_TENSOR_PARALLEL_SEQUENTIAL=%s is not 0 or 1: "
                 "concurrent ranks (the default) are kept", v);
    return v && strcmp(v, "1") == 0;
}

exo_status exo_tensor_parallel_load(exo_model *m, const exo_shard_options *opts, const uint32_t *devices, uint32_t n,
                                    exo_shard **out) {
    uint32_t N = opts->tensor_parallel, start = opts->start_layer, end = opts->end_layer, L = m->cfg.n_layers;
    if (N > EXO_PLACEMENT_MAX_DEVICES)
        return exo_errorf(EXO_ERR_INVALID_ARG, "tensor_parallel %u: at most %u devices", N, EXO_PLACEMENT_MAX_DEVICES);
    if (n < N)
        return exo_errorf(EXO_ERR_INVALID_ARG, "tensor_parallel %u needs %u devices; %s gives %u (list them in "
                          "exo_shard_options.devices)", N, N, opts->devices ? opts->devices : "the node", n);
    if (start >= end) { /* the embedding or the head alone: nothing to split, the first device runs it */
        char first[96];
        exo_pipeline_device_spec(m->rt, devices[0], first, sizeof first);
        exo_shard_options po = *opts;
        po.device = first;
        po.devices = NULL;
        po.tensor_parallel = 0;
        return exo_shard_load(m, &po, out);
    }
    for (uint32_t l = start; l < end; l++) {
        exo_status checked = exo_graph_slice_check(&m->cfg, l, N);
        if (checked != EXO_OK) return exo_error_wrap(checked, "%s", m->dir);
    }
    exo_shard *sh = calloc(1, sizeof *sh);
    uint32_t cap = 2 + 2 * N * (end - start);
    if (sh) sh->parts = calloc(cap, sizeof *sh->parts);
    if (!sh || !sh->parts) {
        free(sh);
        return exo_errorf(EXO_ERR_NO_MEMORY, "out of memory loading a tensor-parallel shard");
    }
    sh->model = m;
    char spec[EXO_PLACEMENT_MAX_DEVICES][96];
    for (uint32_t r = 0; r < N; r++) exo_pipeline_device_spec(m->rt, devices[r], spec[r], sizeof spec[r]);
    exo_status st = start == 0 ? add_part(sh, m, opts, 0, 0, spec[0], NULL) : EXO_OK;
    for (uint32_t l = start; l < end && st == EXO_OK; l++) {
        for (uint32_t r = 0; r < N && st == EXO_OK; r++)
            st = add_part(sh, m, opts, l, l + 1, spec[r], &(exo_graph_slice){r, N, EXO_GRAPH_HALF_ATTENTION});
        uint32_t ranks = mlp_ranks(m, l, N);
        for (uint32_t r = 0; r < ranks && st == EXO_OK; r++)
            st = add_part(sh, m, opts, l, l + 1, spec[r], &(exo_graph_slice){r, ranks, EXO_GRAPH_HALF_MLP});
        if (st == EXO_OK && opts->progress && opts->progress(opts->progress_user, l + 1 - start, end - start))
            st = exo_errorf(EXO_ERR_ABORTED, "loading cancelled by the progress callback");
    }
    if (st == EXO_OK && end == L) st = add_part(sh, m, opts, L, L, spec[0], NULL);
    if (st != EXO_OK) {
        exo_pipeline_destroy(sh);
        free(sh);
        return st;
    }
    bool sequential = sequential_requested(m->rt);
    if (st == EXO_OK && !sequential) st = exo_rank_workers_start(N, &sh->workers);
    if (st != EXO_OK) {
        exo_pipeline_destroy(sh);
        free(sh);
        return st;
    }
    exo_pipeline_fill_shell(sh);
    sh->tensor_parallel = N;
    exo_logf(&m->rt->logger, EXO_LOG_INFO, "tensor_parallel", "layers [%u, %u) of %s split over %u devices (%u parts, "
             "%llu weight bytes; ranks %s)", start, end, m->dir, N, sh->n_parts, (unsigned long long)sh->weight_bytes,
             sequential ? "one after another (EXO_TENSOR_PARALLEL_SEQUENTIAL)" : "concurrent, a host thread each");
    *out = sh;
    return EXO_OK;
}

/* acc += part, element by element (the all-reduce's sum, in float32). */
static void accumulate(float *acc, const float *part, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) acc[i] += part[i];
}

/* One half layer of every rank, run at once (exo_rank_workers_run): rank r steps part first + r
 * from `in` into its own rows of `out`. */
typedef struct half_step {
    exo_session *s;
    uint32_t first, chunk;
    const float *in;
    float *out;                 /* rank r: out + r * rows */
    uint64_t rows;
    exo_status status[EXO_PLACEMENT_MAX_DEVICES];
} half_step;

static void run_half(void *arg, uint32_t r) {
    half_step *h = arg;
    h->status[r] = exo_session_forward_part(h->s->parts[h->first + r], h->in, h->chunk, 0, h->out + r * h->rows,
                                            h->rows, false);
}

exo_status exo_tensor_parallel_forward(exo_session *s, const void *input, uint32_t n, uint32_t flags, float *out,
                                       uint64_t out_count, bool tokens) {
    exo_error_clear();
    exo_status st = exo_session_check_step(s, input, n, flags, out, out_count, tokens);
    if (st != EXO_OK) return st;
    exo_shard *sh = s->shard;
    exo_model *m = sh->model;
    uint32_t T = sh->plan.max_tokens, H = m->cfg.hidden_size, W = sh->output_width, in_w = sh->input_width;
    uint32_t N = sh->tensor_parallel, position0 = s->position, k = 0, failed = 0;
    float *x = s->relay, *acc = x + (size_t)T * H, *parts = acc + (size_t)T * H;
    for (uint32_t done = 0; done < n && st == EXO_OK;) {
        uint32_t chunk = n - done < T ? n - done : T;
        uint64_t rows = (uint64_t)chunk * H;
        const char *in = (const char *)input + (uint64_t)done * in_w * 4;
        k = 0;
        if (sh->plan.embeds) {
            failed = k;
            st = exo_session_forward_part(s->parts[k++], in, chunk, 0, x, rows, true);
        } else {
            memcpy(x, in, rows * 4);
        }
        for (uint32_t l = sh->plan.start; l < sh->plan.end && st == EXO_OK; l++)
            for (int half = 0; half < 2 && st == EXO_OK; half++) {
                uint32_t ranks = half ? mlp_ranks(m, l, N) : N;
                half_step h = {.s = s, .first = k, .chunk = chunk, .in = x, .out = parts, .rows = rows};
                exo_rank_workers_run(sh->workers, ranks, run_half, &h);
                for (uint32_t r = 0; r < ranks && st == EXO_OK; r++)
                    if (h.status[r] != EXO_OK) {
                        /* The rank's detail is in its part's session (it may have failed on a worker). */
                        const exo_error_slot *e = &s->parts[k + r]->error;
                        st = exo_errorf_vendor(h.status[r], e->vendor_code, "%s", e->message);
                        failed = k + r;
                    }
                k += ranks;
                if (st != EXO_OK) break;
                /* The all-reduce: the residual plus every rank's part, in rank order. */
                memcpy(acc, x, rows * 4);
                for (uint32_t r = 0; r < ranks; r++) accumulate(acc, parts + r * rows, rows);
                float *t = x;
                x = acc;
                acc = t;
            }
        if (st == EXO_OK && sh->plan.has_head) {
            uint32_t f = flags & EXO_FORWARD_LAST_ONLY;
            failed = k;
            st = exo_session_forward_part(s->parts[k++], x, chunk, f, f ? out : out + (uint64_t)done * W,
                                          f ? W : (uint64_t)chunk * W, false);
        } else if (st == EXO_OK) {
            if (flags & EXO_FORWARD_LAST_ONLY) memcpy(out, x + (size_t)(chunk - 1) * H, (size_t)H * 4);
            else memcpy(out + (uint64_t)done * W, x, rows * 4);
        }
        done += chunk;
    }
    if (st == EXO_OK) {
        s->position += n;
        return EXO_OK;
    }
    exo_pipeline_session_truncate(s, position0);
    const exo_shard *p = sh->parts[failed];
    const exo_device_rec *d = exo_runtime_device(m->rt, p->device);
    exo_error_wrap(st, "part %u of the tensor-parallel step (layer %u on %s:%u)", failed, p->plan.start,
                   p->plugin->name, d->index);
    return exo_error_keep(&s->error, st);
}

/* The ranks of one half of a batched step, at once: lane r steps its prepared part. */
static void run_lane(void *arg, uint32_t r) { exo_shell_batch_run(arg, r); }

/* A batched step: every half of every rank steps all live entries together (a pooled part runs
 * them as one graph), the ranks of a half at once, the all-reduce per entry on the host as in a
 * step alone. */
void exo_tensor_parallel_forward_batch(exo_batch_entry *entries, size_t stride, uint32_t n) {
#define E(i) ((exo_batch_entry *)((char *)entries + (size_t)(i) * stride))
    exo_shard *sh = entries[0].session->shard;
    exo_model *m = sh->model;
    uint32_t N = sh->tensor_parallel, H = m->cfg.hidden_size, k = 0;
    exo_shell_batch b;
    /* Host rows per token: the input, the sum, and each rank's partial output. */
    if (exo_shell_batch_begin(&b, entries, stride, n, 2 + N, N) != EXO_OK) {
        for (uint32_t i = 0; i < n; i++)
            if (E(i)->status == EXO_OK) E(i)->status = EXO_ERR_NO_MEMORY;
        return;
    }
    const void *in[EXO_SHELL_BATCH_MAX];
    float *out[EXO_SHELL_BATCH_MAX];
    uint64_t count[EXO_SHELL_BATCH_MAX];
    uint32_t x[EXO_SHELL_BATCH_MAX]; /* which host buffer holds entry i's hidden states: 0 or 1 */
    for (uint32_t i = 0; i < n; i++) {
        x[i] = 0;
        in[i] = E(i)->tokens;
        out[i] = exo_shell_batch_rows(&b, i, 0);
        count[i] = (uint64_t)E(i)->n * H;
        if (!sh->plan.embeds && E(i)->status == EXO_OK) memcpy(out[i], E(i)->hidden, count[i] * 4);
    }
    if (sh->plan.embeds) exo_shell_batch_part(&b, k++, in, out, count, 0);
    for (uint32_t l = sh->plan.start; l < sh->plan.end; l++)
        for (int half = 0; half < 2; half++) {
            uint32_t ranks = half ? mlp_ranks(m, l, N) : N;
            for (uint32_t i = 0; i < n; i++) in[i] = exo_shell_batch_rows(&b, i, x[i]);
            for (uint32_t r = 0; r < ranks; r++) {
                for (uint32_t i = 0; i < n; i++) out[i] = exo_shell_batch_rows(&b, i, 2 + r);
                exo_shell_batch_prepare(&b, r, k + r, in, out, count, 0);
            }
            exo_rank_workers_run(sh->workers, ranks, run_lane, &b);
            for (uint32_t r = 0; r < ranks; r++) exo_shell_batch_merge(&b, r);
            k += ranks;
            for (uint32_t i = 0; i < n; i++) {
                if (E(i)->status != EXO_OK) continue;
                float *acc = exo_shell_batch_rows(&b, i, 1 - x[i]);
                memcpy(acc, in[i], count[i] * 4);
                for (uint32_t r = 0; r < ranks; r++) accumulate(acc, exo_shell_batch_rows(&b, i, 2 + r), count[i]);
            }
            for (uint32_t i = 0; i < n; i++) x[i] = 1 - x[i];
        }
    for (uint32_t i = 0; i < n; i++) {
        exo_batch_entry *e = E(i);
        in[i] = exo_shell_batch_rows(&b, i, x[i]);
        out[i] = e->out;
        count[i] = e->out_count;
        if (sh->plan.has_head || e->status != EXO_OK) continue;
        const float *rows = in[i];
        if (e->flags & EXO_FORWARD_LAST_ONLY) memcpy(e->out, rows + (size_t)(e->n - 1) * H, (size_t)H * 4);
        else memcpy(e->out, rows, (size_t)e->n * H * 4);
    }
    if (sh->plan.has_head) exo_shell_batch_part(&b, k++, in, out, count, EXO_FORWARD_LAST_ONLY);
    exo_shell_batch_end(&b);
#undef E
}
