/* Added tokens ("added_tokens" of tokenizer.json: BOS/EOS, chat markers, ...) are found in the
 * text before anything else runs, so that "<|eot_id|>" typed in a prompt is one token, as in
 * the tokenizers library: leftmost match wins, the longest among those starting there;
 * lstrip / rstrip swallow the whitespace beside the token; single_word tokens only match
 * between non-word characters (Unicode's, as the regex crate's \w). */
#include "tokenizer/tokenizer_internal.h"

#include <string.h>

#include "base/error.h"

/* Unicode White_Space, as Rust's char::is_whitespace. Returns its UTF-8 length, 0 if the
 * character at s is not whitespace. */
static int whitespace_len(const char *s, size_t n) {
    uint32_t cp;
    int k = exo_utf8_char((const uint8_t *)s, n, &cp);
    if (k <= 0) return 0;
    bool ws = (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 ||
              cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
              cp == 0x202F || cp == 0x205F || cp == 0x3000;
    return ws ? k : 0;
}

/* Length of the whitespace character that ends at s[end] (exclusive), 0 if none. */
static size_t whitespace_before(const char *s, size_t begin, size_t end) {
    for (size_t k = 1; k <= 3 && end >= begin + k; k++) {
        uint8_t b = (uint8_t)s[end - k];
        if ((b & 0xC0) == 0x80) continue; /* continuation byte: look further back */
        int w = whitespace_len(s + end - k, k);
        return w == (int)k ? k : 0;
    }
    return 0;
}

/* Whether the character starting at s[at] (at < len) is a word character (tok->word_char). */
static exo_status is_word_char(const exo_tokenizer *tok, const char *s, size_t at, size_t len,
                               exo_regex_budget *b, bool *word) {
    uint32_t cp;
    int k = exo_utf8_char((const uint8_t *)s + at, len - at, &cp);
    *word = false;
    if (k <= 0 || !tok->word_char.code) return EXO_OK;
    return exo_regex_match_here(&tok->word_char, s + at, (size_t)k, b, word);
}

/* single_word: no word character right before or right after [start, end). */
static exo_status stands_alone(const exo_tokenizer *tok, const char *s, size_t start, size_t end,
                               size_t len, exo_regex_budget *b, bool *alone) {
    bool word = false;
    exo_status st = EXO_OK;
    if (end < len) st = is_word_char(tok, s, end, len, b, &word);
    if (!st && !word && start > 0) {
        size_t prev = start - 1;
        while (prev > 0 && ((uint8_t)s[prev] & 0xC0) == 0x80) prev--; /* back to the lead byte */
        st = is_word_char(tok, s, prev, start, b, &word);
    }
    *alone = !word;
    return st;
}

static exo_status push_segment(exo_tok_segments *out, size_t start, size_t len, int32_t id) {
    if (len == 0 && id < 0) return EXO_OK;
    if (out->len == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 16;
        exo_tok_segment *p = realloc(out->data, cap * sizeof *p);
        if (!p) return exo_errorf(EXO_ERR_NO_MEMORY, "tokenizer: out of memory");
        out->data = p;
        out->cap = cap;
    }
    out->data[out->len++] = (exo_tok_segment){start, len, id};
    return EXO_OK;
}

exo_status exo_tok_split_added(const exo_tokenizer *tok, const char *text, size_t len,
                               bool want_normalized, exo_regex_budget *budget,
                               exo_tok_segments *out) {
    out->len = 0;
    bool first_byte[256] = {false};
    bool any = false;
    for (size_t t = 0; t < tok->n_added; t++) {
        const exo_added_token *a = &tok->added[t];
        if (a->normalized != want_normalized) continue;
        first_byte[(uint8_t)a->content[0]] = true;
        any = true;
    }
    if (!any) return push_segment(out, 0, len, -1);

    size_t gap = 0; /* start of the text not yet assigned to a segment */
    size_t i = 0;
    while (i < len) {
        if (!first_byte[(uint8_t)text[i]]) {
            i++;
            continue;
        }
        const exo_added_token *best = NULL;
        for (size_t t = 0; t < tok->n_added; t++) {
            const exo_added_token *a = &tok->added[t];
            if (a->normalized != want_normalized) continue;
            if (a->len > len - i || (best && a->len <= best->len)) continue;
            if (memcmp(text + i, a->content, a->len) != 0) continue;
            best = a;
        }
        if (!best) {
            i++;
            continue;
        }
        /* As the library's leftmost-longest, non-overlapping matching: a single_word match with
         * a word character beside it is dropped whole, and the search goes on after it. */
        if (best->single_word) {
            bool alone = false;
            size_t origin = budget->origin;
            budget->origin = origin + i;
            exo_status st = stands_alone(tok, text, i, i + best->len, len, budget, &alone);
            budget->origin = origin;
            if (st) return st;
            if (!alone) {
                i += best->len;
                continue;
            }
        }
        size_t start = i, end = i + best->len;
        if (best->lstrip)
            for (size_t w; (w = whitespace_before(text, gap, start)) > 0;) start -= w;
        if (best->rstrip)
            for (int w; end < len && (w = whitespace_len(text + end, len - end)) > 0;) end += (size_t)w;
        exo_status st = push_segment(out, gap, start - gap, -1);
        if (!st) st = push_segment(out, start, end - start, best->id);
        if (st) return st;
        gap = i = end;
    }
    return push_segment(out, gap, len - gap, -1);
}
