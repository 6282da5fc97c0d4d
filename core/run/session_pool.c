/* The KV pool of a shard whose plugin runs pooled caches (ABI 1.6; abi/exo_plugin.h, "Pooled KV
 * caches"): per KV tensor of the plan one buffer holding the caches of `slots` sessions, so one
 * graph run can step any of them. A session takes a slot when it is created and gives it back
 * when destroyed. When every slot is taken the pool doubles: new buffers, the old caches copied
 * to their start (the slot is the outermost dimension, so old offsets stay valid), the plans
 * re-pooled and recompiled for the new count; growth stops at the high-water mark of live
 * sessions (EXO runs up to 8 at once), so it happens a few times per shard, never per step. */
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "run/shard_memory.h"

/* Host bounce buffer for copying a pool into its successor, in pieces. */
#define COPY_CHUNK ((uint64_t)16 << 20)

uint64_t exo_kv_pool_bytes(const exo_shard *s, uint32_t slots) {
    return exo_mul_sat(exo_mul_sat(exo_graph_plan_kv_slot_bytes(&s->plan), slots), s->plan.n_kv);
}

static void free_buffers(exo_shard *s, exo_buffer **kv) {
    if (!kv) return;
    for (uint32_t i = 0; i < s->plan.n_kv; i++) exo_shard_buffer_release(s, kv[i]);
    free(kv);
}

exo_status exo_shard_buffer_copy(exo_shard *s, exo_buffer *from, uint64_t from_off, exo_buffer *to, uint64_t to_off,
                                 uint64_t bytes) {
    /* The plugin ABI has no device-to-device copy: the bytes bounce through host memory. */
    const exo_plugin_api *api = &s->plugin->api;
    void *tmp = bytes ? malloc(bytes < COPY_CHUNK ? bytes : COPY_CHUNK) : NULL;
    if (bytes && !tmp) return exo_errorf(EXO_ERR_NO_MEMORY, "out of memory copying a KV cache");
    exo_status st = EXO_OK;
    for (uint64_t off = 0; st == EXO_OK && off < bytes; off += COPY_CHUNK) {
        uint64_t n = bytes - off < COPY_CHUNK ? bytes - off : COPY_CHUNK;
        exo_error_clear();
        st = api->buffer_read(from, from_off + off, tmp, n);
        if (st == EXO_OK) st = api->buffer_write(to, to_off + off, tmp, n);
    }
    free(tmp);
    return st;
}

/* Copies the first `bytes` of each old pool buffer into the new one (none: the first pool). */
static exo_status copy_pool(exo_shard *s, exo_buffer **from, exo_buffer **to, uint64_t bytes) {
    exo_status st = EXO_OK;
    for (uint32_t i = 0; st == EXO_OK && bytes && i < s->plan.n_kv; i++) {
        st = exo_shard_buffer_copy(s, from[i], 0, to[i], 0, bytes);
        if (st != EXO_OK) exo_error_wrap(st, "copying the KV pool into its larger successor failed");
    }
    return st;
}

/* Grows the pool to `slots`: everything new is made first, and the old pool, flags and compiled
 * graphs are replaced only when all of it succeeded. */
static exo_status grow(exo_shard *s, uint32_t slots) {
    exo_kv_pool *p = &s->pool;
    const exo_plugin_api *api = &s->plugin->api;
    const exo_device_rec *d = exo_runtime_device(s->model->rt, s->device);
    uint64_t slot_bytes = exo_graph_plan_kv_slot_bytes(&s->plan), need = exo_kv_pool_bytes(s, slots);
    bool host = false;
    const char *source = "";
    uint64_t avail = exo_device_memory_available(d, &host, &source);
    if (host && need > avail)
        return exo_errorf(EXO_ERR_NO_MEMORY, "%s: a KV pool of %u sessions needs %llu bytes, more than %s: %llu bytes",
                          s->model->dir, slots, (unsigned long long)need, source, (unsigned long long)avail);
    exo_buffer **kv = calloc(s->plan.n_kv ? s->plan.n_kv : 1, sizeof *kv);
    uint8_t *used = calloc(slots, 1);
    if (!kv || !used) {
        free(kv);
        free(used);
        return exo_errorf(EXO_ERR_NO_MEMORY, "out of memory growing the KV pool");
    }
    exo_status st = EXO_OK;
    for (uint32_t i = 0; st == EXO_OK && i < s->plan.n_kv; i++) {
        exo_error_clear();
        st = api->buffer_alloc(s->plugin->ctx, d->index, slot_bytes * slots, EXO_BUFFER_KV, &kv[i]);
        if (st != EXO_OK) {
            kv[i] = NULL;
            exo_error_wrap(st, "%s:%u: allocating a KV pool of %u sessions (%llu bytes) failed", s->plugin->name,
                           d->index, slots, (unsigned long long)(slot_bytes * slots));
        }
    }
    if (st == EXO_OK) st = copy_pool(s, p->kv, kv, slot_bytes * p->slots);
    /* The compiled graphs name the slot count: recompile when it changes. */
    exo_compiled *full = NULL, *last = NULL;
    uint32_t compiled_slots = s->plan.kv_slots;
    if (st == EXO_OK && slots != compiled_slots) {
        st = exo_graph_plan_pool_kv(&s->plan, slots);
        if (st == EXO_OK && s->plan.has_head) st = exo_graph_plan_pool_kv(&s->plan_last, slots);
        if (st == EXO_OK) st = exo_shard_compile(s, &full, &last);
        if (st != EXO_OK) {
            exo_graph_plan_pool_kv(&s->plan, compiled_slots);
            if (s->plan.has_head) exo_graph_plan_pool_kv(&s->plan_last, compiled_slots);
        }
    }
    if (st != EXO_OK) {
        free_buffers(s, kv);
        free(used);
        return st;
    }
    if (full) {
        api->compiled_free(s->compiled);
        if (s->compiled_last) api->compiled_free(s->compiled_last);
        if (s->compiled_rows) api->compiled_free(s->compiled_rows); /* batch.c compiles it again */
        s->compiled = full;
        s->compiled_last = last;
        s->compiled_rows = NULL;
    }
    if (p->slots) memcpy(used, p->used, p->slots);
    free_buffers(s, p->kv);
    free(p->used);
    p->kv = kv;
    p->used = used;
    p->slots = slots;
    return EXO_OK;
}

exo_status exo_kv_pool_take(exo_shard *s, uint32_t *slot) {
    exo_kv_pool *p = &s->pool;
    for (uint32_t i = 0; i < p->slots; i++)
        if (!p->used[i]) {
            p->used[i] = 1;
            *slot = i;
            return EXO_OK;
        }
    if (p->slots > UINT32_MAX / 2) return exo_errorf(EXO_ERR_NO_MEMORY, "the KV pool holds %u sessions", p->slots);
    uint32_t first_free = p->slots;
    exo_status st = grow(s, p->slots ? 2 * p->slots : 1);
    if (st != EXO_OK) return st;
    p->used[first_free] = 1;
    *slot = first_free;
    return EXO_OK;
}

void exo_kv_pool_release(exo_shard *s, uint32_t slot) {
    if (slot < s->pool.slots) s->pool.used[slot] = 0;
}

void exo_kv_pool_free(exo_shard *s) {
    free_buffers(s, s->pool.kv);
    free(s->pool.used);
    memset(&s->pool, 0, sizeof s->pool);
}
