/* Pre-tokenizers: cut a normalized segment into the words BPE runs on. The regex Split is
 * the heart of byte-level models (Llama-3 / Qwen2 / GPT-2 patterns, compiled by PCRE2 with
 * UTF + UCP for \p{L}, \p{N} and lookahead); Metaspace is SentencePiece's space handling.
 * Each step maps a list of pieces to a new list; empty pieces are dropped, as in the
 * tokenizers library. */
#include "tokenizer/tokenizer_internal.h"

#include <string.h>

#include "base/error.h"

void exo_tok_pieces_free(exo_tok_pieces *p) {
    exo_tok_buf_free(&p->text);
    free(p->starts);
    free(p->origins);
    p->starts = p->origins = NULL;
    p->n = p->cap = 0;
}

static exo_status pieces_reset(exo_tok_pieces *p) {
    p->text.len = 0;
    p->n = 0;
    p->open_origin = 0;
    if (!p->starts || !p->origins) {
        free(p->starts);
        free(p->origins);
        p->cap = 16;
        p->starts = malloc((p->cap + 1) * sizeof *p->starts);
        p->origins = malloc(p->cap * sizeof *p->origins);
        if (!p->starts || !p->origins) return exo_errorf(EXO_ERR_NO_MEMORY, "tokenizer: out of memory");
    }
    p->starts[0] = 0;
    return EXO_OK;
}

/* Ends the piece whose bytes were appended to p->text since the last close (drops it when
 * empty); the next piece begins at next_origin of the pre-tokenizer's text. */
static exo_status pieces_close(exo_tok_pieces *p, size_t next_origin) {
    size_t origin = p->open_origin;
    p->open_origin = next_origin;
    if (p->text.len == p->starts[p->n]) return EXO_OK;
    if (p->n == p->cap) {
        size_t *s = realloc(p->starts, (p->cap * 2 + 1) * sizeof *s);
        if (!s) return exo_errorf(EXO_ERR_NO_MEMORY, "tokenizer: out of memory");
        p->starts = s;
        size_t *o = realloc(p->origins, p->cap * 2 * sizeof *o);
        if (!o) return exo_errorf(EXO_ERR_NO_MEMORY, "tokenizer: out of memory");
        p->origins = o;
        p->cap *= 2;
    }
    p->origins[p->n] = origin;
    p->starts[++p->n] = p->text.len;
    return EXO_OK;
}

static exo_status pieces_add(exo_tok_pieces *p, const char *data, size_t len, size_t origin) {
    p->open_origin = origin;
    exo_status st = exo_tok_buf_append(&p->text, data, len);
    return st ? st : pieces_close(p, origin + len);
}

typedef struct range {
    size_t start, end;
    bool match;
} range;

/* Splits one piece (which began at origin) by a regex step, appending the resulting pieces to
 * out. Returns in *first_at_zero whether the first produced piece starts at the piece's
 * start. */
static exo_status split_piece(const exo_pretok_step *s, const char *text, size_t len,
                              size_t origin, exo_regex_budget *b, exo_tok_pieces *out,
                              bool *first_at_zero) {
    size_t *spans = NULL, n = 0;
    exo_status st = exo_regex_find_all(&s->regex, text, len, b, &spans, &n);
    if (st) return st;
    range *r = malloc((2 * n + 1) * sizeof *r);
    if (!r) {
        free(spans);
        return exo_errorf(EXO_ERR_NO_MEMORY, "tokenizer: out of memory");
    }
    /* Matches and the gaps between them, in order. */
    size_t nr = 0, prev = 0;
    for (size_t k = 0; k < n; k++) {
        if (spans[2 * k] > prev) r[nr++] = (range){prev, spans[2 * k], s->invert};
        r[nr++] = (range){spans[2 * k], spans[2 * k + 1], !s->invert};
        prev = spans[2 * k + 1];
    }
    if (prev < len) r[nr++] = (range){prev, len, s->invert};
    free(spans);

    /* Apply the behavior in place: merged ranges grow, the list shrinks. `keep` false marks a
     * removed delimiter. */
    size_t m = 0;
    bool previous_match = false;
    switch (s->behavior) {
    case EXO_SPLIT_ISOLATED:
        m = nr;
        for (size_t k = 0; k < nr; k++) r[k].match = false;
        break;
    case EXO_SPLIT_REMOVED:
        m = nr; /* the matches are dropped when emitting */
        break;
    case EXO_SPLIT_MERGED_WITH_PREVIOUS:
        for (size_t k = 0; k < nr; k++) {
            bool is_match = r[k].match;
            if (is_match && !previous_match && m > 0) r[m - 1].end = r[k].end;
            else r[m++] = (range){r[k].start, r[k].end, false};
            previous_match = is_match;
        }
        break;
    case EXO_SPLIT_MERGED_WITH_NEXT:
        /* Walk backwards so a delimiter joins the piece after it; the result is built from
         * the end of the array down, so it never overwrites ranges not yet read. */
        for (size_t k = nr; k-- > 0;) {
            bool is_match = r[k].match;
            if (is_match && !previous_match && m > 0) r[nr - m].start = r[k].start;
            else r[nr - ++m] = (range){r[k].start, r[k].end, false};
            previous_match = is_match;
        }
        memmove(r, r + nr - m, m * sizeof *r);
        break;
    case EXO_SPLIT_CONTIGUOUS:
        for (size_t k = 0; k < nr; k++) {
            bool is_match = r[k].match;
            if (is_match == previous_match && m > 0) r[m - 1].end = r[k].end;
            else r[m++] = (range){r[k].start, r[k].end, false};
            previous_match = is_match;
        }
        break;
    }
    bool first = true;
    for (size_t k = 0; k < m && !st; k++) {
        if (s->behavior == EXO_SPLIT_REMOVED && r[k].match) continue;
        if (first) *first_at_zero = r[k].start == 0;
        first = false;
        st = pieces_add(out, text + r[k].start, r[k].end - r[k].start, origin + r[k].start);
    }
    free(r);
    return st;
}

static exo_status metaspace_piece(const exo_pretok_step *s, const char *text, size_t len,
                                  size_t origin, bool at_text_start, exo_tok_pieces *out) {
    const char *rep = s->replacement;
    size_t rl = s->replacement_len;
    bool starts_with_rep = (len >= rl && memcmp(text, rep, rl) == 0) || (len > 0 && text[0] == ' ');
    bool prepend = !starts_with_rep && (s->prepend == EXO_PREPEND_ALWAYS ||
                                        (s->prepend == EXO_PREPEND_FIRST && at_text_start));
    exo_status st = EXO_OK;
    out->open_origin = origin;
    if (prepend) st = exo_tok_buf_append(&out->text, rep, rl);
    for (size_t i = 0; i < len && !st; i++) {
        bool is_space = text[i] == ' ';
        bool is_rep = !is_space && i + rl <= len && memcmp(text + i, rep, rl) == 0;
        /* With split, every replacement character starts a new piece (MergedWithNext). */
        if ((is_space || is_rep) && s->split) st = pieces_close(out, origin + i);
        if (st) break;
        if (is_space) {
            st = exo_tok_buf_append(&out->text, rep, rl);
        } else if (is_rep) {
            st = exo_tok_buf_append(&out->text, rep, rl);
            i += rl - 1;
        } else {
            st = exo_tok_buf_append(&out->text, text + i, 1);
        }
    }
    return st ? st : pieces_close(out, origin + len);
}

exo_status exo_tok_pretokenize(const exo_tokenizer *tok, const char *text, size_t len,
                               bool at_text_start, exo_regex_budget *budget, exo_tok_pieces *out) {
    exo_status st = pieces_reset(out);
    if (!st) st = pieces_add(out, text, len, 0);
    if (st || tok->n_pretok == 0) return st;
    exo_tok_pieces tmp = {0};
    exo_tok_pieces *cur = out, *next = &tmp;
    bool first_at_start = at_text_start;
    size_t base = budget->origin;
    for (size_t i = 0; i < tok->n_pretok && !st; i++) {
        const exo_pretok_step *s = &tok->pretok[i];
        if ((st = pieces_reset(next))) break;
        for (size_t k = 0; k < cur->n && !st; k++) {
            const char *p = cur->text.data + cur->starts[k];
            size_t n = cur->starts[k + 1] - cur->starts[k];
            size_t origin = cur->origins[k];
            bool piece_at_start = k == 0 && first_at_start;
            switch (s->kind) {
            case EXO_PRETOK_SPLIT: {
                bool at_zero = false;
                size_t before = next->n;
                budget->origin = base + origin;
                st = split_piece(s, p, n, origin, budget, next, &at_zero);
                if (k == 0) first_at_start = first_at_start && next->n > before && at_zero;
                break;
            }
            case EXO_PRETOK_BYTELEVEL:
                if (s->add_prefix_space && p[0] != ' ') st = exo_tok_buf_append(&next->text, " ", 1);
                if (!st) st = pieces_add(next, p, n, origin);
                break;
            case EXO_PRETOK_METASPACE:
                st = metaspace_piece(s, p, n, origin, piece_at_start, next);
                break;
            }
        }
        exo_tok_pieces *t = cur;
        cur = next;
        next = t;
    }
    if (!st && cur != out) {
        exo_tok_pieces t = *out;
        *out = *cur;
        *cur = t;
    }
    exo_tok_pieces_free(&tmp);
    budget->origin = base;
    return st;
}
