/* The growable buffers the tokenizer builds its output in. (UTF-8 validation, which the model
 * files' parsers need too, is core/base/utf8.c.) */
#include "tokenizer/tokenizer_internal.h"

#include <string.h>

#include "base/error.h"

exo_status exo_tok_buf_reserve(exo_tok_buf *b, size_t extra) {
    if (b->cap - b->len > extra) return EXO_OK; /* keeps room for a terminating NUL */
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len <= extra) {
        if (cap > SIZE_MAX / 2) return exo_errorf(EXO_ERR_NO_MEMORY, "tokenizer: buffer too large");
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) return exo_errorf(EXO_ERR_NO_MEMORY, "tokenizer: out of memory (%zu bytes)", cap);
    b->data = p;
    b->cap = cap;
    return EXO_OK;
}

exo_status exo_tok_buf_append(exo_tok_buf *b, const void *data, size_t n) {
    exo_status st = exo_tok_buf_reserve(b, n);
    if (st) return st;
    if (n) memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return EXO_OK;
}

exo_status exo_tok_ids_push(exo_tok_ids *v, int32_t id) {
    if (v->len == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        int32_t *p = realloc(v->data, cap * sizeof *p);
        if (!p) return exo_errorf(EXO_ERR_NO_MEMORY, "tokenizer: out of memory (%zu ids)", cap);
        v->data = p;
        v->cap = cap;
    }
    v->data[v->len++] = id;
    return EXO_OK;
}
