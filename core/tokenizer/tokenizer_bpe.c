/* BPE over one word: start from one symbol per character (or per byte for characters missing
 * from the vocab when the model has byte fallback), then repeatedly apply the lowest-ranked
 * merge present, leftmost first on ties. A binary heap of candidate merges makes that
 * O(n log n) in the word length; stale candidates (a side already merged away) are skipped
 * when popped, as in the tokenizers library's Word::merge_all. */
#include "tokenizer/tokenizer_internal.h"

#include <string.h>

#include "base/error.h"

typedef struct symbol {
    int32_t id;
    int32_t prev, next; /* -1 at the ends */
    bool alive;
} symbol;

typedef struct candidate {
    int32_t rank;
    int32_t pos; /* left symbol */
    int32_t merged;
} candidate;

typedef struct word {
    symbol *sym;
    size_t n, cap;
    candidate *heap;
    size_t heap_n, heap_cap;
} word;

static bool before(const candidate *a, const candidate *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static exo_status heap_push(word *w, candidate c) {
    if (w->heap_n == w->heap_cap) {
        size_t cap = w->heap_cap ? w->heap_cap * 2 : 16;
        candidate *p = realloc(w->heap, cap * sizeof *p);
        if (!p) return exo_errorf(EXO_ERR_NO_MEMORY, "tokenizer: out of memory");
        w->heap = p;
        w->heap_cap = cap;
    }
    size_t i = w->heap_n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(&c, &w->heap[parent])) break;
        w->heap[i] = w->heap[parent];
        i = parent;
    }
    w->heap[i] = c;
    return EXO_OK;
}

static candidate heap_pop(word *w) {
    candidate top = w->heap[0];
    candidate last = w->heap[--w->heap_n];
    size_t i = 0, n = w->heap_n;
    for (;;) {
        size_t l = 2 * i + 1, best = i;
        const candidate *bc = &last;
        if (l < n && before(&w->heap[l], bc)) {
            best = l;
            bc = &w->heap[l];
        }
        if (l + 1 < n && before(&w->heap[l + 1], bc)) best = l + 1;
        if (best == i) break;
        w->heap[i] = w->heap[best];
        i = best;
    }
    if (n) w->heap[i] = last;
    return top;
}

static exo_status add_symbol(word *w, int32_t id) {
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 32;
        symbol *p = realloc(w->sym, cap * sizeof *p);
        if (!p) return exo_errorf(EXO_ERR_NO_MEMORY, "tokenizer: out of memory");
        w->sym = p;
        w->cap = cap;
    }
    int32_t i = (int32_t)w->n++;
    w->sym[i] = (symbol){id, i - 1, -1, true};
    if (i > 0) w->sym[i - 1].next = i;
    return EXO_OK;
}

static exo_status consider(const exo_tokenizer *tok, word *w, int32_t pos) {
    int32_t next = w->sym[pos].next;
    if (next < 0) return EXO_OK;
    const exo_merge *m = exo_pairmap_get(&tok->merges, w->sym[pos].id, w->sym[next].id);
    return m ? heap_push(w, (candidate){m->rank, pos, m->merged}) : EXO_OK;
}

/* Initial symbols, with byte fallback and unk handling as the tokenizers library's
 * BPE::merge_word does. */
static exo_status split_chars(const exo_tokenizer *tok, const char *s, size_t len, word *w) {
    int32_t pending_unk = 0; /* an unk not yet added (fuse_unk merges runs of them) */
    exo_status st = EXO_OK;
    for (size_t i = 0; i < len && !st;) {
        uint32_t cp;
        int k = exo_utf8_char((const uint8_t *)s + i, len - i, &cp);
        size_t cl = k > 0 ? (size_t)k : 1;
        int32_t id = exo_strmap_get(&tok->vocab, s + i, cl);
        if (id >= 0) {
            if (pending_unk) st = add_symbol(w, tok->unk_id);
            pending_unk = 0;
            if (!st) st = add_symbol(w, id);
        } else {
            bool fell_back = false;
            if (tok->byte_fallback) {
                fell_back = true;
                for (size_t b = 0; b < cl; b++)
                    if (tok->byte_ids[(uint8_t)s[i + b]] < 0) fell_back = false;
                if (fell_back) {
                    if (pending_unk) st = add_symbol(w, tok->unk_id);
                    pending_unk = 0;
                    for (size_t b = 0; b < cl && !st; b++)
                        st = add_symbol(w, tok->byte_ids[(uint8_t)s[i + b]]);
                }
            }
            if (!fell_back && tok->unk_id >= 0) {
                if (pending_unk && !tok->fuse_unk) st = add_symbol(w, tok->unk_id);
                pending_unk = 1;
            }
            /* Without unk or fallback the character is dropped, like the reference. */
        }
        i += cl;
    }
    if (!st && pending_unk) st = add_symbol(w, tok->unk_id);
    return st;
}

exo_status exo_tok_bpe_word(const exo_tokenizer *tok, const char *s, size_t len, exo_tok_ids *out) {
    if (len == 0) return EXO_OK;
    if (tok->ignore_merges) {
        int32_t id = exo_strmap_get(&tok->vocab, s, len);
        if (id >= 0) return exo_tok_ids_push(out, id);
    }
    word w = {0};
    exo_status st = split_chars(tok, s, len, &w);
    for (size_t i = 0; i + 1 < w.n && !st; i++) st = consider(tok, &w, (int32_t)i);
    while (!st && w.heap_n > 0) {
        candidate c = heap_pop(&w);
        symbol *left = &w.sym[c.pos];
        if (!left->alive || left->next < 0) continue;
        symbol *right = &w.sym[left->next];
        const exo_merge *m = exo_pairmap_get(&tok->merges, left->id, right->id);
        if (!m || m->merged != c.merged || m->rank != c.rank) continue; /* stale */
        left->id = c.merged;
        right->alive = false;
        left->next = right->next;
        if (right->next >= 0) w.sym[right->next].prev = c.pos;
        if (left->prev >= 0) st = consider(tok, &w, left->prev);
        if (!st) st = consider(tok, &w, c.pos);
    }
    for (int32_t i = w.n ? 0 : -1; i >= 0 && !st; i = w.sym[i].next) st = exo_tok_ids_push(out, w.sym[i].id);
    free(w.sym);
    free(w.heap);
    return st;
}
