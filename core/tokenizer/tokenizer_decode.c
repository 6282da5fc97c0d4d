/* Decoding: ids -> bytes through the decoder chain of tokenizer.json, one token at a time, so
 * that the whole-sequence decode and the streaming detokenizer share one code path and agree
 * byte for byte. The chain's per-token steps (ByteLevel, ByteFallback, Replace, Metaspace)
 * need no lookahead; the only cross-token effects are "first token" rules and a Strip after
 * Fuse, which the state carries. Special tokens go through the chain like any token, as in
 * the tokenizers library's decode(skip_special_tokens=False). */
#include "tokenizer/tokenizer_internal.h"

#include <string.h>

#include "base/error.h"

void exo_decode_state_init(const exo_tokenizer *tok, exo_decode_state *st) {
    st->index = 0;
    st->strip_left = 0;
    bool fused = false;
    for (size_t i = 0; i < tok->n_dec; i++) {
        if (tok->dec[i].kind == EXO_DEC_FUSE) fused = true;
        else if (tok->dec[i].kind == EXO_DEC_STRIP && fused) st->strip_left += tok->dec[i].start;
    }
}

void exo_decode_state_free(exo_decode_state *st) {
    exo_tok_buf_free(&st->a);
    exo_tok_buf_free(&st->b);
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static exo_status replace_all(const char *s, size_t n, const char *pat, size_t pl, const char *with,
                              size_t wl, exo_tok_buf *out) {
    size_t from = 0;
    exo_status st = EXO_OK;
    for (size_t i = 0; i + pl <= n && !st;) {
        if (memcmp(s + i, pat, pl) == 0) {
            st = exo_tok_buf_append(out, s + from, i - from);
            if (!st) st = exo_tok_buf_append(out, with, wl);
            i += pl;
            from = i;
        } else {
            i++;
        }
    }
    return st ? st : exo_tok_buf_append(out, s + from, n - from);
}

/* ByteLevel: every character must be one of the 256 mapped ones; otherwise the token's text
 * is kept as it is (special tokens such as "<|im start|>" with a plain space). */
static exo_status bytelevel(const char *s, size_t n, exo_tok_buf *out) {
    exo_status st = exo_tok_buf_reserve(out, n);
    if (st) return st;
    size_t o = out->len;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = exo_utf8_char((const uint8_t *)s + i, n - i, &cp);
        int b = k > 0 ? exo_bytelevel_byte(cp) : -1;
        if (b < 0) return exo_tok_buf_append(out, s, n);
        out->data[o++] = (char)b;
        i += (size_t)k;
    }
    out->len = o;
    out->data[o] = '\0';
    return EXO_OK;
}

/* Strips up to `max` copies of the character c (cl bytes) from the start; returns how many. */
static size_t strip_leading(const char **s, size_t *n, const char *c, size_t cl, size_t max) {
    size_t k = 0;
    while (k < max && *n >= cl && memcmp(*s, c, cl) == 0) {
        *s += cl;
        *n -= cl;
        k++;
    }
    return k;
}

exo_status exo_decode_token(const exo_tokenizer *tok, exo_decode_state *st, int32_t id,
                            exo_tok_buf *out) {
    if (id < 0 || (uint32_t)id >= tok->n_ids || !tok->id_text[id])
        return exo_errorf(EXO_ERR_INVALID_ARG, "tokenizer decode: unknown token id %d (vocab size %u)",
                          id, tok->n_ids);
    const char *s = tok->id_text[id];
    size_t n = tok->id_len[id];
    size_t index = st->index++;
    if (!tok->has_decoder) {
        /* The tokenizers library joins the tokens with spaces when there is no decoder. */
        exo_status r = index ? exo_tok_buf_append(out, " ", 1) : EXO_OK;
        return r ? r : exo_tok_buf_append(out, s, n);
    }
    exo_tok_buf *cur = &st->a, *next = &st->b;
    bool fused = false;
    exo_status r = EXO_OK;
    for (size_t i = 0; i < tok->n_dec && !r; i++) {
        const exo_dec_step *d = &tok->dec[i];
        next->len = 0;
        switch (d->kind) {
        case EXO_DEC_FUSE:
            fused = true;
            continue;
        case EXO_DEC_REPLACE:
            r = replace_all(s, n, d->pattern, d->pattern_len, d->content, d->content_len, next);
            break;
        case EXO_DEC_BYTEFALLBACK:
            if (n == 6 && !memcmp(s, "<0x", 3) && s[5] == '>' && hex_digit(s[3]) >= 0 &&
                hex_digit(s[4]) >= 0) {
                char byte = (char)(hex_digit(s[3]) * 16 + hex_digit(s[4]));
                r = exo_tok_buf_append(next, &byte, 1);
            } else {
                r = exo_tok_buf_append(next, s, n);
            }
            break;
        case EXO_DEC_BYTELEVEL:
            r = bytelevel(s, n, next);
            break;
        case EXO_DEC_METASPACE:
            /* The first token loses its replacement characters (the prefix the pre-tokenizer
             * added); elsewhere they become spaces. */
            r = replace_all(s, n, d->pattern, d->pattern_len, " ",
                            index == 0 && d->prepend != EXO_PREPEND_NEVER ? 0 : 1, next);
            break;
        case EXO_DEC_STRIP:
            if (fused) {
                if (st->strip_left) {
                    st->strip_left -= (uint32_t)strip_leading(&s, &n, d->content, d->content_len,
                                                              st->strip_left);
                    if (n) st->strip_left = 0; /* the text has started */
                }
            } else {
                strip_leading(&s, &n, d->content, d->content_len, d->start);
                for (uint32_t k = 0; k < d->stop && n >= d->content_len &&
                                     !memcmp(s + n - d->content_len, d->content, d->content_len);
                     k++)
                    n -= d->content_len;
            }
            r = exo_tok_buf_append(next, s, n);
            break;
        }
        exo_tok_buf *t = cur;
        cur = next;
        next = t;
        s = cur->data ? cur->data : "";
        n = cur->len;
    }
    return r ? r : exo_tok_buf_append(out, s, n);
}

exo_status exo_tokenizer_decode(const exo_tokenizer *tok, const int32_t *ids, size_t n, char **text,
                                size_t *len) {
    if (!tok || (!ids && n) || !text || !len)
        return exo_errorf(EXO_ERR_INVALID_ARG, "tokenizer decode: NULL argument");
    *text = NULL;
    *len = 0;
    exo_decode_state st = {0};
    exo_decode_state_init(tok, &st);
    exo_tok_buf out = {0};
    exo_status r = exo_tok_buf_reserve(&out, 16);
    for (size_t i = 0; i < n && !r; i++) r = exo_decode_token(tok, &st, ids[i], &out);
    exo_decode_state_free(&st);
    if (r) {
        exo_tok_buf_free(&out);
        return r;
    }
    out.data[out.len] = '\0';
    *text = out.data;
    *len = out.len;
    return EXO_OK;
}

/* ---------------------------------------------------------------- streaming */

struct exo_text_stream {
    const exo_tokenizer *tok;
    exo_decode_state state;
    exo_tok_buf raw;     /* bytes of the current token */
    uint8_t pending[4];  /* an unfinished UTF-8 character held back */
    size_t n_pending;
    exo_tok_buf out;     /* the piece handed out */
};

static const char replacement_char[] = "\xEF\xBF\xBD"; /* U+FFFD */

exo_status exo_text_stream_create(const exo_tokenizer *tok, exo_text_stream **out) {
    if (!tok || !out) return exo_errorf(EXO_ERR_INVALID_ARG, "detokenizer: NULL argument");
    exo_text_stream *d = calloc(1, sizeof *d);
    if (!d) return exo_errorf(EXO_ERR_NO_MEMORY, "detokenizer: out of memory");
    d->tok = tok;
    exo_decode_state_init(tok, &d->state);
    exo_status st = exo_tok_buf_reserve(&d->out, 64);
    if (st) {
        exo_text_stream_free(d);
        return st;
    }
    d->out.data[0] = '\0';
    *out = d;
    return EXO_OK;
}

/* Moves the complete characters of bytes into d->out; holds back an unfinished tail; replaces
 * what can never be valid with U+FFFD. */
static exo_status emit_valid(exo_text_stream *d, const char *bytes, size_t n) {
    exo_status st = EXO_OK;
    size_t i = 0;
    while (i < n && !st) {
        uint32_t cp;
        int k = exo_utf8_char((const uint8_t *)bytes + i, n - i, &cp);
        if (k > 0) {
            st = exo_tok_buf_append(&d->out, bytes + i, (size_t)k);
            i += (size_t)k;
        } else if (k < 0) {
            memcpy(d->pending, bytes + i, n - i); /* a valid prefix: at most 3 bytes */
            d->n_pending = n - i;
            i = n;
        } else {
            st = exo_tok_buf_append(&d->out, replacement_char, 3);
            i += exo_utf8_invalid_len((const uint8_t *)bytes + i, n - i);
        }
    }
    return st;
}

exo_status exo_text_stream_push(exo_text_stream *d, int32_t id, const char **piece, size_t *len) {
    if (!d || !piece || !len) return exo_errorf(EXO_ERR_INVALID_ARG, "detokenizer: NULL argument");
    d->out.len = 0;
    d->out.data[0] = '\0';
    *piece = d->out.data;
    *len = 0;
    /* The held-back bytes go first, then this token's. */
    d->raw.len = 0;
    exo_status st = exo_tok_buf_append(&d->raw, d->pending, d->n_pending);
    if (!st) st = exo_decode_token(d->tok, &d->state, id, &d->raw);
    if (st) return st; /* an unknown id leaves the stream as it was */
    d->n_pending = 0;
    st = emit_valid(d, d->raw.data, d->raw.len);
    if (st) return st;
    *piece = d->out.data;
    *len = d->out.len;
    return EXO_OK;
}

exo_status exo_text_stream_flush(exo_text_stream *d, const char **piece, size_t *len) {
    if (!d || !piece || !len) return exo_errorf(EXO_ERR_INVALID_ARG, "detokenizer: NULL argument");
    d->out.len = 0;
    d->out.data[0] = '\0';
    exo_status st = EXO_OK;
    /* An unfinished character is one ill-formed subpart: one U+FFFD. */
    if (d->n_pending) st = exo_tok_buf_append(&d->out, replacement_char, 3);
    d->n_pending = 0;
    exo_decode_state_init(d->tok, &d->state);
    *piece = d->out.data;
    *len = d->out.len;
    return st;
}

void exo_text_stream_free(exo_text_stream *d) {
    if (!d) return;
    exo_decode_state_free(&d->state);
    exo_tok_buf_free(&d->raw);
    exo_tok_buf_free(&d->out);
    free(d);
}
