/* Bounded regex matching: every pcre2_match of the tokenizer (normalizer Replace, pre-tokenizer
 * splits, the single_word check of added tokens) goes through exo_regex_search, which limits
 * the work a pattern may do. A pattern from tokenizer.json can backtrack exponentially
 * ("(a|aa)+c" takes seconds on 20k characters), so an encode call gets a work budget linear in
 * the bytes its regexes scan, and gives up with an error naming the pattern and the position
 * instead of running for minutes.
 *
 * The budget is counted in PCRE2's match-limit units (backtracking points; the JIT counts
 * fewer per step than the interpreter, so the same number is generous for it). PCRE2 cannot
 * say how many units a match used, so each search starts with a small limit and doubles it
 * while the limit is hit, charging every limit it tried: what is charged is at least the work
 * done and at most about four times it, and the sum over an encode stays under the budget.
 * Measured (PCRE2 10.42, 1 MB of runs of spaces, digits, CJK, emoji, marks, punctuation), the
 * GPT-2, Llama-3 and Qwen2 patterns, Digits, Whitespace and Metaspace-style literals charge at
 * most SEARCH_FIRST_LIMIT per byte (one search per one-byte piece), a quarter of BUDGET_PER_BYTE.
 *
 * The interpreter (used when the JIT is unavailable or runs out of its stack) also gets depth
 * and heap limits, linear in the bytes left to scan; the JIT ignores both and is bounded by its
 * own stack. */
#include "tokenizer/tokenizer_internal.h"

#include <string.h>

#include "base/error.h"

/* Units granted per byte of every subject searched, and once per encode call. */
#define BUDGET_PER_BYTE 256u
#define BUDGET_BASE (1u << 20)
/* The first limit of a search; most searches of real patterns need fewer than 20 units. */
#define SEARCH_FIRST_LIMIT 16u
/* The first window of a search, in bytes; a unit is charged per byte of it. */
#define SEARCH_FIRST_WINDOW 32u

static void grant(exo_regex_budget *b, size_t bytes) {
    uint64_t add = ((uint64_t)bytes + 1) * BUDGET_PER_BYTE;
    b->left = b->left > UINT64_MAX - add ? UINT64_MAX : b->left + add;
}

exo_status exo_regex_budget_init(exo_regex_budget *b) {
    memset(b, 0, sizeof *b);
    b->ctx = pcre2_match_context_create(NULL);
    b->md = pcre2_match_data_create(1, NULL);
    if (!b->ctx || !b->md) {
        exo_regex_budget_free(b);
        return exo_errorf(EXO_ERR_NO_MEMORY, "tokenizer: out of memory");
    }
    b->left = BUDGET_BASE;
    return EXO_OK;
}

void exo_regex_budget_free(exo_regex_budget *b) {
    pcre2_match_context_free(b->ctx);
    pcre2_match_data_free(b->md);
    b->ctx = NULL;
    b->md = NULL;
}

static exo_status gave_up(const exo_regex *re, const exo_regex_budget *b, size_t at, int rc) {
    PCRE2_UCHAR msg[128];
    pcre2_get_error_message(rc, msg, sizeof msg);
    return exo_errorf(EXO_ERR_UNSUPPORTED,
                      "%s gave up searching from byte %zu of the %sinput: %s (the tokenizer "
                      "bounds regex work by the input's length)",
                      re->label ? re->label : "tokenizer: a regex", b->origin + at,
                      b->normalized ? "normalized " : "", (const char *)msg);
}

/* The end of a window of about `window` bytes from at, on a character boundary. */
static size_t window_end(const char *text, size_t len, size_t at, size_t window) {
    if (len - at <= window) return len;
    size_t end = at + window;
    while (end > at && ((uint8_t)text[end] & 0xC0) == 0x80) end--;
    return end > at ? end : len;
}

exo_status exo_regex_search(const exo_regex *re, const char *text, size_t len, size_t at,
                            uint32_t options, exo_regex_budget *b, bool *found, size_t *start,
                            size_t *end) {
    *found = false;
    uint32_t opts = options | PCRE2_NO_UTF_CHECK;
    size_t rest = len - at;
    /* Depth: nested backtracking points; a repeated group takes one per repetition, so a few
     * per byte left. Heap (KiB): the interpreter's frames (about 150 bytes each, more with
     * many capture groups), 1 KiB per byte left over a 4 MiB floor. */
    uint64_t depth = 64 + 4 * (uint64_t)rest, heap_kib = 4096 + (uint64_t)rest;
    pcre2_set_depth_limit(b->ctx, (uint32_t)(depth > UINT32_MAX ? UINT32_MAX : depth));
    pcre2_set_heap_limit(b->ctx, (uint32_t)(heap_kib > UINT32_MAX ? UINT32_MAX : heap_kib));
    uint64_t limit = SEARCH_FIRST_LIMIT;
    size_t window = SEARCH_FIRST_WINDOW;
    size_t from = at; /* no match starts in [at, from) */
    for (;;) {
        /* The match limit does not count a scan without backtracking ("a*b" from every start
         * of a run of a's is quadratic and free), so the search sees a window of the text and
         * is charged its bytes. PARTIAL_HARD reports when the text past the window could
         * change the result (an attempt reached the window's end, a lookahead included); the
         * window then doubles. A complete match within it is the match on the whole text; no
         * match means none starts before the window's end, and the search goes on from there. */
        size_t stop = window_end(text, len, from, window);
        uint64_t cost = (uint64_t)(stop - from);
        if (limit > b->left) limit = b->left;
        if (limit > UINT32_MAX) limit = UINT32_MAX;
        if (limit == 0 || cost >= b->left - limit) {
            b->left = 0;
            return gave_up(re, b, from, PCRE2_ERROR_MATCHLIMIT);
        }
        pcre2_set_match_limit(b->ctx, (uint32_t)limit);
        int rc = pcre2_match(re->code, (PCRE2_SPTR)text, stop, from,
                             opts | (stop < len ? PCRE2_PARTIAL_HARD : 0), b->md, b->ctx);
        b->left -= limit + cost;
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !(opts & PCRE2_NO_JIT)) {
            /* Very long runs exhaust the JIT's small stack; the interpreter keeps its state on
             * the heap, under the depth and heap limits. */
            opts |= PCRE2_NO_JIT;
            continue;
        }
        if (rc == PCRE2_ERROR_PARTIAL) {
            window *= 2;
            continue;
        }
        if (rc == PCRE2_ERROR_MATCHLIMIT) {
            if (b->left == 0) return gave_up(re, b, from, rc);
            limit *= 2;
            continue;
        }
        if (rc == PCRE2_ERROR_NOMATCH) {
            if (stop == len || (options & PCRE2_ANCHORED)) return EXO_OK;
            from = stop;
            continue;
        }
        if (rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT) return gave_up(re, b, from, rc);
        if (rc < 0) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return exo_errorf(EXO_ERR_INTERNAL, "%s failed searching from byte %zu of the %sinput: %s",
                              re->label ? re->label : "tokenizer: a regex", b->origin + at,
                              b->normalized ? "normalized " : "", (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(b->md);
        *found = true;
        *start = ov[0];
        *end = ov[1];
        return EXO_OK;
    }
}

exo_status exo_regex_find_all(const exo_regex *re, const char *text, size_t len,
                              exo_regex_budget *b, size_t **spans, size_t *n_spans) {
    *spans = NULL;
    *n_spans = 0;
    grant(b, len);
    size_t cap = 0, n = 0;
    size_t *out = NULL;
    size_t at = 0;
    while (at <= len) {
        bool found;
        size_t s, e;
        exo_status st = exo_regex_search(re, text, len, at, 0, b, &found, &s, &e);
        if (st) {
            free(out);
            return st;
        }
        if (!found) break;
        if (e <= s) {
            /* Empty match: step over one character (never splits inside one). */
            if (s >= len) break;
            uint32_t cp;
            int k = exo_utf8_char((const uint8_t *)text + s, len - s, &cp);
            at = s + (size_t)(k > 0 ? k : 1);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            size_t *p = realloc(out, cap * 2 * sizeof *p);
            if (!p) {
                free(out);
                return exo_errorf(EXO_ERR_NO_MEMORY, "tokenizer: out of memory");
            }
            out = p;
        }
        out[2 * n] = s;
        out[2 * n + 1] = e;
        n++;
        at = e;
    }
    *spans = out;
    *n_spans = n;
    return EXO_OK;
}

exo_status exo_regex_match_here(const exo_regex *re, const char *text, size_t len,
                                exo_regex_budget *b, bool *matched) {
    grant(b, len);
    size_t s, e;
    return exo_regex_search(re, text, len, 0, PCRE2_ANCHORED, b, matched, &s, &e);
}
