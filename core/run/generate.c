/* Streaming text generation on a whole-model session: prefill the prompt, then sample, stream
 * and feed back one token at a time until EOS, a stop string, max_tokens, a full context or
 * cancellation. Reports EXO's per-request stats. */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "base/clock.h"
#include "base/struct_io.h"
#include "model_internal.h"
#include "run/sampler.h"

static uint64_t peak_rss_bytes(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (uint64_t)ru.ru_maxrss * 1024u;
}

/* Generated text not yet handed to the caller, held while it could still begin a stop string. */
typedef struct text_stream {
    char *buf;
    size_t len, cap, emitted;
    size_t max_stop;
} text_stream;

static exo_status stream_append(text_stream *t, const char *piece, size_t n) {
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 1024;
        while (cap < t->len + n + 1) cap *= 2;
        char *grown = realloc(t->buf, cap);
        if (!grown) return exo_errorf(EXO_ERR_NO_MEMORY, "out of memory holding generated text");
        t->buf = grown;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, piece, n);
    t->len += n;
    t->buf[t->len] = '\0';
    return EXO_OK;
}

/* Position of the earliest stop string in the text not yet emitted (or SIZE_MAX). */
static size_t find_stop(const text_stream *t, const exo_generate_options *o) {
    size_t best = SIZE_MAX;
    size_t from = t->emitted;
    for (uint32_t i = 0; i < o->n_stop; i++) {
        const char *stop = o->stop[i];
        if (!stop || !*stop) continue;
        const char *hit = memmem(t->buf + from, t->len - from, stop, strlen(stop));
        if (hit && (size_t)(hit - t->buf) < best) best = (size_t)(hit - t->buf);
    }
    return best;
}

/* How far text may be emitted: everything but a tail that could start a stop string, and never
 * inside a UTF-8 character. */
static size_t safe_end(const text_stream *t, bool final) {
    if (final || t->max_stop <= 1) return t->len;
    size_t keep = t->max_stop - 1;
    size_t end = t->len > keep ? t->len - keep : 0;
    while (end > t->emitted && end < t->len && ((unsigned char)t->buf[end] & 0xC0) == 0x80) end--;
    return end < t->emitted ? t->emitted : end;
}

typedef struct generation {
    exo_session *session;
    exo_model *model;
    exo_generate_options opts;
    exo_token_sampler *sampler;
    exo_text_stream *detok;
    text_stream text;
    float *logits;
    int32_t top_tokens[EXO_SAMPLER_MAX_LOGPROBS];
    float top_logprobs[EXO_SAMPLER_MAX_LOGPROBS];
} generation;

static bool emit(generation *g, uint32_t index, int32_t token, const exo_sample_result *r, size_t end) {
    exo_token_event ev;
    memset(&ev, 0, sizeof ev);
    EXO_STRUCT_INIT(&ev);
    ev.index = index;
    ev.token = token;
    ev.text = g->text.buf ? g->text.buf + g->text.emitted : "";
    ev.text_len = end - g->text.emitted;
    if (r) {
        ev.logprob = r->logprob;
        ev.n_top = r->n_top;
        for (uint32_t i = 0; i < r->n_top; i++) {
            g->top_tokens[i] = r->top[i].token;
            g->top_logprobs[i] = r->top[i].logprob;
        }
        ev.top_tokens = g->top_tokens;
        ev.top_logprobs = g->top_logprobs;
    }
    int stop = g->opts.on_token ? g->opts.on_token(g->opts.user, &ev) : 0;
    g->text.emitted = end;
    return stop != 0;
}

static exo_status run(generation *g, const int32_t *prompt, uint32_t n_prompt, exo_generate_stats *stats) {
    exo_session *s = g->session;
    exo_model *m = g->model;
    uint32_t V = m->cfg.vocab_size;
    uint64_t t0 = exo_now_ns();
    exo_status st = exo_session_forward_tokens(s, prompt, n_prompt, EXO_FORWARD_LAST_ONLY, g->logits, V);
    if (st != EXO_OK) return st;
    uint64_t t_prefill = exo_now_ns();
    stats->prompt_tokens = n_prompt;
    stats->prompt_tps = n_prompt / ((double)(t_prefill - t0) / 1e9 + 1e-9);
    for (uint32_t i = 0; i < n_prompt; i++) exo_token_sampler_accept(g->sampler, prompt[i]);

    exo_finish_reason finish = EXO_FINISH_NONE;
    uint32_t produced = 0;
    uint64_t t_first = t_prefill;
    while (finish == EXO_FINISH_NONE) {
        exo_sample_result r;
        st = exo_token_sampler_sample(g->sampler, g->logits, &r);
        if (st != EXO_OK) return st;
        if (produced == 0) {
            t_first = exo_now_ns();
            stats->ttft_ms = (double)(t_first - t0) / 1e6;
        }
        if (!g->opts.ignore_eos && exo_model_is_eos(m, r.token)) {
            finish = EXO_FINISH_EOS;
            break;
        }
        exo_token_sampler_accept(g->sampler, r.token);
        const char *piece = NULL;
        size_t piece_len = 0;
        st = exo_text_stream_push(g->detok, r.token, &piece, &piece_len);
        if (st == EXO_OK) st = stream_append(&g->text, piece, piece_len);
        if (st != EXO_OK) return st;
        produced++;
        size_t stop_at = find_stop(&g->text, &g->opts);
        if (stop_at != SIZE_MAX) {
            g->text.len = stop_at; /* the stop string and what follows are dropped */
            finish = EXO_FINISH_STOP;
        }
        if (emit(g, produced - 1, r.token, &r, stop_at != SIZE_MAX ? stop_at : safe_end(&g->text, false)) &&
            finish == EXO_FINISH_NONE)
            finish = EXO_FINISH_CANCELLED;
        if (finish != EXO_FINISH_NONE) break;
        if (g->opts.cancel && *g->opts.cancel) {
            finish = EXO_FINISH_CANCELLED;
            break;
        }
        if ((g->opts.max_tokens && produced >= g->opts.max_tokens) || exo_session_position(s) >= s->max_ctx) {
            finish = EXO_FINISH_LENGTH;
            break;
        }
        st = exo_session_forward_tokens(s, &r.token, 1, EXO_FORWARD_LAST_ONLY, g->logits, V);
        if (st != EXO_OK) return st;
    }
    /* Text the detokenizer or the stop-string window still holds. */
    if (finish != EXO_FINISH_STOP) {
        const char *piece = NULL;
        size_t piece_len = 0;
        if (exo_text_stream_flush(g->detok, &piece, &piece_len) == EXO_OK && piece_len)
            st = stream_append(&g->text, piece, piece_len);
        if (st != EXO_OK) return st;
    }
    if (g->text.len > g->text.emitted) emit(g, produced, -1, NULL, g->text.len);
    uint64_t t_end = exo_now_ns();
    stats->generation_tokens = produced;
    stats->generation_tps = produced > 1 ? (produced - 1) / ((double)(t_end - t_first) / 1e9 + 1e-9) : 0.0;
    stats->total_ms = (double)(t_end - t0) / 1e6;
    stats->finish_reason = finish;
    stats->peak_memory_bytes = peak_rss_bytes();
    return EXO_OK;
}

exo_status exo_generate_tokens(exo_session *s, const int32_t *prompt, uint32_t n, const exo_generate_options *o,
                               exo_generate_stats *stats_out) {
    exo_error_clear();
    if (!s || (!prompt && n)) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_generate: NULL argument");
    exo_shard *sh = s->shard;
    exo_model *m = sh->model;
    if (!sh->plan.embeds || !sh->plan.has_head)
        return exo_error_keep(&s->error, exo_errorf(EXO_ERR_INVALID_ARG,
            "exo_generate needs a whole-model shard (this one holds layers [%u, %u) of %u); drive pipeline "
            "shards with exo_session_forward_*", sh->plan.start, sh->plan.end, m->cfg.n_layers));
    if (!m->tokenizer)
        return exo_error_keep(&s->error, exo_errorf(m->tokenizer_status ? m->tokenizer_status : EXO_ERR_UNSUPPORTED,
                                                    "%s", m->tokenizer_error));
    if (n == 0) return exo_error_keep(&s->error, exo_errorf(EXO_ERR_INVALID_ARG, "the prompt holds no tokens"));
    generation g;
    memset(&g, 0, sizeof g);
    g.session = s;
    g.model = m;
    g.opts = (exo_generate_options)EXO_GENERATE_OPTIONS_INIT;
    if (o) {
        if (o->hdr.size < sizeof o->hdr || EXO_VERSION_MAJOR(o->hdr.version) != EXO_API_MAJOR)
            return exo_error_keep(&s->error, exo_errorf(EXO_ERR_INVALID_ARG, "generate options header not initialised"));
        exo_struct_copy_in(&g.opts, sizeof g.opts, o);
    }
    for (uint32_t i = 0; i < g.opts.n_stop; i++) {
        size_t len = g.opts.stop && g.opts.stop[i] ? strlen(g.opts.stop[i]) : 0;
        if (len > g.text.max_stop) g.text.max_stop = len;
    }
    exo_sampler_params params;
    exo_sampling_to_params(g.opts.sampling, &params);
    exo_generate_stats stats;
    memset(&stats, 0, sizeof stats);
    EXO_STRUCT_INIT(&stats);
    exo_status st = exo_token_sampler_create(&params, m->cfg.vocab_size, &g.sampler);
    if (st == EXO_OK) st = exo_text_stream_create(m->tokenizer, &g.detok);
    if (st == EXO_OK) {
        g.logits = malloc((size_t)m->cfg.vocab_size * sizeof *g.logits);
        if (!g.logits) st = exo_errorf(EXO_ERR_NO_MEMORY, "out of memory for logits");
    }
    if (st == EXO_OK) st = run(&g, prompt, n, &stats);
    exo_token_sampler_free(g.sampler);
    exo_text_stream_free(g.detok);
    free(g.logits);
    free(g.text.buf);
    if (stats_out) exo_struct_copy_out(stats_out, &stats, sizeof stats);
    return exo_error_keep(&s->error, st);
}

exo_status exo_generate(exo_session *s, const char *prompt, const exo_generate_options *o, exo_generate_stats *stats) {
    exo_error_clear();
    if (!s || !prompt) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_generate: NULL argument");
    exo_model *m = s->shard->model;
    if (!m->tokenizer)
        return exo_error_keep(&s->error, exo_errorf(m->tokenizer_status ? m->tokenizer_status : EXO_ERR_UNSUPPORTED,
                                                    "%s", m->tokenizer_error));
    int32_t add_bos = o && EXO_STRUCT_HAS(o, exo_generate_options, add_bos) ? o->add_bos : EXO_BOS_DEFAULT;
    /* BOS belongs at the start of a sequence only. */
    if (exo_session_position(s) > 0) add_bos = 0;
    int32_t *ids = NULL;
    size_t n = 0;
    exo_status st = exo_model_encode(m, prompt, strlen(prompt), add_bos, &ids, &n);
    if (st != EXO_OK) return exo_error_keep(&s->error, st);
    if (n > UINT32_MAX) n = UINT32_MAX;
    st = exo_generate_tokens(s, ids, (uint32_t)n, o, stats);
    free(ids);
    return st;
}
