/* The public text calls of a model: tokenize and detokenize with its tokenizer. */
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"

static exo_status need_tokenizer(exo_model *m) {
    if (m->tokenizer) return EXO_OK;
    return exo_error_keep(&m->error, exo_errorf(m->tokenizer_status ? m->tokenizer_status : EXO_ERR_UNSUPPORTED,
                                                "%s", m->tokenizer_error[0] ? m->tokenizer_error : "no tokenizer"));
}

exo_status exo_model_encode(exo_model *m, const char *text, size_t len, int add_bos, int32_t **ids, size_t *n) {
    bool bos = add_bos < 0 ? exo_tokenizer_adds_bos(m->tokenizer) : add_bos != 0;
    exo_status st = exo_tokenizer_encode(m->tokenizer, text, len, false, ids, n);
    if (st != EXO_OK || !bos) return st;
    int32_t id = exo_tokenizer_bos(m->tokenizer);
    if (id < 0) return EXO_OK;
    if (*n > 0 && (*ids)[0] == id) {
        exo_logf(&m->rt->logger, EXO_LOG_INFO, "model", "the prompt already starts with BOS; not adding another");
        return EXO_OK;
    }
    int32_t *grown = realloc(*ids, (*n + 1) * sizeof *grown);
    if (!grown) {
        free(*ids);
        *ids = NULL;
        return exo_errorf(EXO_ERR_NO_MEMORY, "out of memory tokenizing");
    }
    memmove(grown + 1, grown, *n * sizeof *grown);
    grown[0] = id;
    *ids = grown;
    (*n)++;
    return EXO_OK;
}

exo_status exo_model_tokenize(exo_model *m, const char *text, size_t len, int add_bos, int32_t *ids, size_t cap,
                              size_t *n) {
    exo_error_clear();
    if (!m || (!text && len) || !n) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_model_tokenize: NULL argument");
    exo_status st = need_tokenizer(m);
    if (st != EXO_OK) return st;
    int32_t *out = NULL;
    size_t count = 0;
    st = exo_model_encode(m, text ? text : "", len, add_bos, &out, &count);
    if (st != EXO_OK) return exo_error_keep(&m->error, st);
    *n = count;
    if (count > cap) {
        free(out);
        return exo_error_keep(&m->error, exo_errorf(EXO_ERR_BUFFER_TOO_SMALL, "text needs %zu token ids; room for %zu",
                                                    count, cap));
    }
    if (count) memcpy(ids, out, count * sizeof *ids);
    free(out);
    return EXO_OK;
}

exo_status exo_model_detokenize(exo_model *m, const int32_t *ids, size_t n, char *text, size_t cap, size_t *len) {
    exo_error_clear();
    if (!m || (!ids && n) || !len) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_model_detokenize: NULL argument");
    exo_status st = need_tokenizer(m);
    if (st != EXO_OK) return st;
    char *out = NULL;
    size_t count = 0;
    st = exo_tokenizer_decode(m->tokenizer, ids, n, &out, &count);
    if (st != EXO_OK) return exo_error_keep(&m->error, st);
    *len = count;
    if (text && cap) {
        size_t k = count < cap ? count : cap;
        memcpy(text, out, k);
        if (k < cap) text[k] = '\0';
    }
    free(out);
    return EXO_OK;
}

/* ---- the public streaming detokenizer */

struct exo_detokenizer {
    exo_text_stream *stream;
};

exo_status exo_detokenizer_create(exo_model *m, exo_detokenizer **out) {
    exo_error_clear();
    if (!m || !out) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_detokenizer_create: NULL argument");
    *out = NULL;
    exo_status st = need_tokenizer(m);
    if (st != EXO_OK) return st;
    exo_detokenizer *d = calloc(1, sizeof *d);
    if (!d) return exo_errorf(EXO_ERR_NO_MEMORY, "out of memory creating a detokenizer");
    st = exo_text_stream_create(m->tokenizer, &d->stream);
    if (st != EXO_OK) {
        free(d);
        return exo_error_keep(&m->error, st);
    }
    *out = d;
    return EXO_OK;
}

void exo_detokenizer_destroy(exo_detokenizer *d) {
    if (!d) return;
    exo_text_stream_free(d->stream);
    free(d);
}

exo_status exo_detokenizer_push(exo_detokenizer *d, int32_t token, const char **text, size_t *len) {
    exo_error_clear();
    if (!d || !text || !len) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_detokenizer_push: NULL argument");
    return exo_text_stream_push(d->stream, token, text, len);
}

exo_status exo_detokenizer_flush(exo_detokenizer *d, const char **text, size_t *len) {
    exo_error_clear();
    if (!d || !text || !len) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_detokenizer_flush: NULL argument");
    return exo_text_stream_flush(d->stream, text, len);
}
