/* Encoding: text -> ids, in the tokenizers library's order:
 *   added tokens are cut out of the raw text;
 *   each stretch between them is normalized (and split again at "normalized" added tokens);
 *   pre-tokenized into words; byte-level models map each byte of a word to its printable
 *   code point; BPE turns each word into ids. */
#include "tokenizer/tokenizer_internal.h"

#include <string.h>

#include "base/error.h"

typedef struct encoder {
    const exo_tokenizer *tok;
    exo_regex_budget budget; /* regex work left to this call, and the match scratch */
    exo_tok_buf normalized, mapped;
    exo_tok_segments segments, subsegments;
    exo_tok_pieces pieces;
    exo_tok_ids ids;
} encoder;

static exo_status encode_words(encoder *e, const char *text, size_t len, bool at_text_start) {
    const exo_tokenizer *tok = e->tok;
    exo_status st = exo_tok_pretokenize(tok, text, len, at_text_start, &e->budget, &e->pieces);
    const exo_bytelevel_char *table = tok->byte_level ? exo_bytelevel_table() : NULL;
    for (size_t k = 0; k < e->pieces.n && !st; k++) {
        const char *w = e->pieces.text.data + e->pieces.starts[k];
        size_t n = e->pieces.starts[k + 1] - e->pieces.starts[k];
        if (table) {
            e->mapped.len = 0;
            if ((st = exo_tok_buf_reserve(&e->mapped, 2 * n))) break;
            for (size_t i = 0; i < n; i++) {
                const exo_bytelevel_char *c = &table[(uint8_t)w[i]];
                memcpy(e->mapped.data + e->mapped.len, c->utf8, c->len);
                e->mapped.len += c->len;
            }
            w = e->mapped.data;
            n = e->mapped.len;
        }
        st = exo_tok_bpe_word(tok, w, n, &e->ids);
    }
    return st;
}

/* One stretch of raw text between added tokens, starting at byte origin of the input. */
static exo_status encode_segment(encoder *e, const char *text, size_t len, size_t origin,
                                 bool at_text_start) {
    const exo_tokenizer *tok = e->tok;
    e->normalized.len = 0;
    e->budget.origin = origin;
    e->budget.normalized = false;
    exo_status st = exo_tok_normalize(tok, text, len, &e->budget, &e->normalized);
    if (st) return st;
    /* Positions in messages from here on count bytes of the normalized text. */
    e->budget.normalized = tok->n_norm > 0;
    const char *norm = e->normalized.data ? e->normalized.data : "";
    if (!tok->any_normalized_added)
        return encode_words(e, norm, e->normalized.len, at_text_start);
    /* Added tokens marked "normalized" are matched in the normalized text. The normalized
     * text is copied out because encode_words reuses the buffers. */
    char *copy = malloc(e->normalized.len + 1);
    if (!copy) return exo_errorf(EXO_ERR_NO_MEMORY, "tokenizer: out of memory");
    memcpy(copy, norm, e->normalized.len);
    size_t n = e->normalized.len;
    st = exo_tok_split_added(tok, copy, n, true, &e->budget, &e->subsegments);
    for (size_t i = 0; i < e->subsegments.len && !st; i++) {
        exo_tok_segment *s = &e->subsegments.data[i];
        e->budget.origin = origin + s->start;
        if (s->added_id >= 0) st = exo_tok_ids_push(&e->ids, s->added_id);
        else st = encode_words(e, copy + s->start, s->len, at_text_start && s->start == 0);
    }
    free(copy);
    return st;
}

exo_status exo_tokenizer_encode(const exo_tokenizer *tok, const char *text, size_t len,
                                bool add_bos, int32_t **ids, size_t *n_ids) {
    if (!tok || !ids || !n_ids || (!text && len))
        return exo_errorf(EXO_ERR_INVALID_ARG, "tokenizer encode: NULL argument");
    *ids = NULL;
    *n_ids = 0;
    size_t bad = exo_utf8_check((const uint8_t *)text, len);
    if (bad < len)
        return exo_errorf(EXO_ERR_INVALID_ARG,
                          "tokenizer encode: text is not valid UTF-8 (byte 0x%02X at offset %zu)",
                          (uint8_t)text[bad], bad);
    encoder e = {.tok = tok};
    exo_status st = exo_regex_budget_init(&e.budget);
    if (!st && add_bos && tok->bos >= 0) st = exo_tok_ids_push(&e.ids, tok->bos);
    /* Two passes, as the tokenizers library: tokens with normalized=false on the raw text,
     * the others on each normalized stretch (encode_segment). */
    if (!st) st = exo_tok_split_added(tok, text ? text : "", len, false, &e.budget, &e.segments);
    for (size_t i = 0; i < e.segments.len && !st; i++) {
        exo_tok_segment *s = &e.segments.data[i];
        if (s->added_id >= 0) st = exo_tok_ids_push(&e.ids, s->added_id);
        else st = encode_segment(&e, text + s->start, s->len, s->start, s->start == 0);
    }
    exo_regex_budget_free(&e.budget);
    exo_tok_buf_free(&e.normalized);
    exo_tok_buf_free(&e.mapped);
    free(e.segments.data);
    free(e.subsegments.data);
    exo_tok_pieces_free(&e.pieces);
    if (st) {
        free(e.ids.data);
        return st;
    }
    *ids = e.ids.data;
    *n_ids = e.ids.len;
    return EXO_OK;
}
