/* Normalizers, applied to each stretch of text between added tokens (so Llama-2's Prepend
 * puts a "\u2581" after every special token too, as the tokenizers library does). */
#include "tokenizer/tokenizer_internal.h"

#include <string.h>

#include "base/error.h"

static exo_status replace_literal(const exo_norm_step *s, const char *text, size_t len,
                                  exo_tok_buf *out) {
    size_t i = 0, from = 0;
    exo_status st = EXO_OK;
    while (i + s->pattern_len <= len && !st) {
        if (memcmp(text + i, s->pattern, s->pattern_len) == 0) {
            st = exo_tok_buf_append(out, text + from, i - from);
            if (!st) st = exo_tok_buf_append(out, s->text, s->text_len);
            i += s->pattern_len;
            from = i;
        } else {
            i++;
        }
    }
    return st ? st : exo_tok_buf_append(out, text + from, len - from);
}

static exo_status replace_regex(const exo_norm_step *s, const char *text, size_t len,
                                exo_regex_budget *budget, exo_tok_buf *out) {
    size_t *spans = NULL, n = 0;
    exo_status st = exo_regex_find_all(&s->regex, text, len, budget, &spans, &n);
    size_t from = 0;
    for (size_t k = 0; k < n && !st; k++) {
        st = exo_tok_buf_append(out, text + from, spans[2 * k] - from);
        if (!st) st = exo_tok_buf_append(out, s->text, s->text_len);
        from = spans[2 * k + 1];
    }
    free(spans);
    return st ? st : exo_tok_buf_append(out, text + from, len - from);
}

exo_status exo_tok_normalize(const exo_tokenizer *tok, const char *text, size_t len,
                             exo_regex_budget *budget, exo_tok_buf *out) {
    if (tok->n_norm == 0) return exo_tok_buf_append(out, text, len);
    exo_tok_buf a = {0}, b = {0};
    bool normalized_before = budget->normalized;
    exo_status st = exo_tok_buf_append(&a, text, len);
    for (size_t i = 0; i < tok->n_norm && !st; i++) {
        const exo_norm_step *s = &tok->norm[i];
        b.len = 0;
        switch (s->kind) {
        case EXO_NORM_PREPEND:
            if (a.len) st = exo_tok_buf_append(&b, s->text, s->text_len);
            if (!st) st = exo_tok_buf_append(&b, a.data, a.len);
            break;
        case EXO_NORM_REPLACE:
            st = s->regex.code ? replace_regex(s, a.data, a.len, budget, &b)
                               : replace_literal(s, a.data, a.len, &b);
            break;
        }
        exo_tok_buf t = a;
        a = b;
        b = t;
        /* Later steps see text this one changed: their offsets are not the input's. */
        budget->normalized = true;
    }
    budget->normalized = normalized_before;
    if (!st) st = exo_tok_buf_append(out, a.data, a.len);
    exo_tok_buf_free(&a);
    exo_tok_buf_free(&b);
    return st;
}
