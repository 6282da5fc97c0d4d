/* The two lookups BPE lives on: token text -> id (vocab, added tokens) and
 * (left id, right id) -> (rank, merged id). Open addressing with linear probing, sized to a
 * load factor <= 1/2 up front, so real vocabularies (128k tokens, 280k merges) load without
 * rehashing and look up in a probe or two. */
#include "tokenizer/tokenizer_internal.h"

#include <string.h>

#include "base/error.h"

static size_t table_size(size_t expected) {
    size_t n = 16;
    while (n < expected * 2 + 2) n *= 2;
    return n;
}

/* FNV-1a, finished with a multiply-xorshift so short keys spread over the whole table. */
static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 1099511628211ull;
    }
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    return h;
}

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

exo_status exo_strmap_init(exo_strmap *m, size_t expected) {
    size_t n = table_size(expected);
    m->slots = calloc(n, sizeof *m->slots);
    if (!m->slots) return exo_errorf(EXO_ERR_NO_MEMORY, "tokenizer: out of memory (map of %zu)", n);
    m->mask = n - 1;
    m->count = 0;
    return EXO_OK;
}

static exo_status strmap_grow(exo_strmap *m) {
    exo_strmap bigger;
    exo_status st = exo_strmap_init(&bigger, (m->mask + 1));
    if (st) return st;
    for (size_t i = 0; i <= m->mask; i++) {
        exo_strmap_entry *e = &m->slots[i];
        if (e->key) exo_strmap_put(&bigger, e->key, e->len, e->value);
    }
    free(m->slots);
    *m = bigger;
    return EXO_OK;
}

exo_status exo_strmap_put(exo_strmap *m, const char *key, size_t len, int32_t value) {
    if ((m->count + 1) * 2 > m->mask + 1) {
        exo_status st = strmap_grow(m);
        if (st) return st;
    }
    size_t i = (size_t)hash_bytes(key, len) & m->mask;
    for (;; i = (i + 1) & m->mask) {
        exo_strmap_entry *e = &m->slots[i];
        if (!e->key) {
            e->key = key;
            e->len = (uint32_t)len;
            e->value = value;
            m->count++;
            return EXO_OK;
        }
        if (e->len == len && memcmp(e->key, key, len) == 0) {
            e->value = value;
            return EXO_OK;
        }
    }
}

int32_t exo_strmap_get(const exo_strmap *m, const char *key, size_t len) {
    if (!m->slots) return -1;
    size_t i = (size_t)hash_bytes(key, len) & m->mask;
    for (;; i = (i + 1) & m->mask) {
        const exo_strmap_entry *e = &m->slots[i];
        if (!e->key) return -1;
        if (e->len == len && memcmp(e->key, key, len) == 0) return e->value;
    }
}

void exo_strmap_free(exo_strmap *m) {
    free(m->slots);
    m->slots = NULL;
    m->mask = m->count = 0;
}

exo_status exo_pairmap_init(exo_pairmap *m, size_t expected) {
    size_t n = table_size(expected);
    m->slots = calloc(n, sizeof *m->slots);
    if (!m->slots) return exo_errorf(EXO_ERR_NO_MEMORY, "tokenizer: out of memory (map of %zu)", n);
    m->mask = n - 1;
    m->count = 0;
    return EXO_OK;
}

static uint64_t pair_key(int32_t left, int32_t right) {
    return (((uint64_t)(uint32_t)left << 32) | (uint32_t)right) + 1;
}

static exo_status pairmap_grow(exo_pairmap *m) {
    exo_pairmap bigger;
    exo_status st = exo_pairmap_init(&bigger, m->mask + 1);
    if (st) return st;
    for (size_t i = 0; i <= m->mask; i++) {
        exo_pairmap_entry *e = &m->slots[i];
        if (!e->key) continue;
        size_t j = (size_t)hash_u64(e->key) & bigger.mask;
        while (bigger.slots[j].key) j = (j + 1) & bigger.mask;
        bigger.slots[j] = *e;
        bigger.count++;
    }
    free(m->slots);
    *m = bigger;
    return EXO_OK;
}

exo_status exo_pairmap_put(exo_pairmap *m, int32_t left, int32_t right, exo_merge merge) {
    if ((m->count + 1) * 2 > m->mask + 1) {
        exo_status st = pairmap_grow(m);
        if (st) return st;
    }
    uint64_t key = pair_key(left, right);
    size_t i = (size_t)hash_u64(key) & m->mask;
    for (;; i = (i + 1) & m->mask) {
        exo_pairmap_entry *e = &m->slots[i];
        if (!e->key) {
            e->key = key;
            e->merge = merge;
            m->count++;
            return EXO_OK;
        }
        if (e->key == key) {
            e->merge = merge;
            return EXO_OK;
        }
    }
}

const exo_merge *exo_pairmap_get(const exo_pairmap *m, int32_t left, int32_t right) {
    if (!m->slots) return NULL;
    uint64_t key = pair_key(left, right);
    size_t i = (size_t)hash_u64(key) & m->mask;
    for (;; i = (i + 1) & m->mask) {
        const exo_pairmap_entry *e = &m->slots[i];
        if (!e->key) return NULL;
        if (e->key == key) return &e->merge;
    }
}

void exo_pairmap_free(exo_pairmap *m) {
    free(m->slots);
    m->slots = NULL;
    m->mask = m->count = 0;
}
