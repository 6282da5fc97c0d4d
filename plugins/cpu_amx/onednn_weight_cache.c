/* Shared reordered matmul weights (see onednn_weight_cache.h). */
#include "onednn_weight_cache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cpu_onednn_weights {
    const void *src; /* the plain weights: the key, with n, k and the layout */
    int64_t n, k;
    dnnl_memory_desc_t md;
    void *data;      /* reordered, md's size */
    uint64_t bytes;
    uint32_t refs;
    cpu_onednn_weights *next;
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static cpu_onednn_weights *cache_head;

const char *cpu_dnnl_status_name(dnnl_status_t st) {
    switch (st) {
    case dnnl_success: return "success";
    case dnnl_out_of_memory: return "out of memory";
    case dnnl_invalid_arguments: return "invalid arguments";
    case dnnl_unimplemented: return "unimplemented (no implementation for these types on this CPU)";
    case dnnl_iterator_ends: return "iterator ends";
    case dnnl_runtime_error: return "runtime error";
    case dnnl_not_required: return "not required";
    default: return "unknown oneDNN status";
    }
}

/* The reorder itself: plain [n][k] bf16 rows (oneDNN dims {k, n}, tag ba) into e->md. */
static exo_status reorder(cpu_onednn_weights *e, dnnl_engine_t engine, dnnl_stream_t stream, const char *what,
                          char *err, size_t err_size) {
    dnnl_memory_desc_t plain;
    dnnl_dims_t dims = {e->k, e->n};
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_memory_t from = NULL, to = NULL;
    const char *step = "describing the plain weights";
    dnnl_status_t st = dnnl_memory_desc_init_by_tag(&plain, 2, dims, dnnl_bf16, dnnl_ba);
    if (st == dnnl_success) step = "creating the reorder", st = dnnl_reorder_primitive_desc_create(&pd, &plain, engine, &e->md, engine, NULL);
    if (st == dnnl_success) st = dnnl_primitive_create(&prim, pd);
    /* oneDNN only reads the source of a reorder; its API has no const memory. */
    if (st == dnnl_success) step = "wrapping the weights", st = dnnl_memory_create(&from, &plain, engine, (void *)e->src);
    if (st == dnnl_success) st = dnnl_memory_create(&to, &e->md, engine, e->data);
    if (st == dnnl_success) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
        step = "running the reorder";
        st = dnnl_primitive_execute(prim, stream, 2, args);
        if (st == dnnl_success) st = dnnl_stream_wait(stream);
    }
    if (to) dnnl_memory_destroy(to);
    if (from) dnnl_memory_destroy(from);
    if (prim) dnnl_primitive_destroy(prim);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (st == dnnl_success) return EXO_OK;
    snprintf(err, err_size, "weight '%s' (%lld x %lld bf16): %s failed: %s", what, (long long)e->n, (long long)e->k, step,
             cpu_dnnl_status_name(st));
    return st == dnnl_out_of_memory ? EXO_ERR_NO_MEMORY : EXO_ERR_UNSUPPORTED;
}

exo_status cpu_onednn_weights_acquire(const void *w, int64_t n, int64_t k, const dnnl_memory_desc_t *md,
                                      dnnl_engine_t engine, dnnl_stream_t stream, const char *what,
                                      cpu_onednn_weights **out, char *err, size_t err_size) {
    *out = NULL;
    pthread_mutex_lock(&cache_lock);
    for (cpu_onednn_weights *e = cache_head; e; e = e->next)
        if (e->src == w && e->n == n && e->k == k && dnnl_memory_desc_equal(&e->md, md)) {
            e->refs++;
            *out = e;
            pthread_mutex_unlock(&cache_lock);
            return EXO_OK;
        }
    exo_status st = EXO_OK;
    cpu_onednn_weights *e = calloc(1, sizeof *e);
    size_t bytes = dnnl_memory_desc_get_size(md);
    if (!e || bytes == 0) {
        snprintf(err, err_size, "weight '%s': out of memory", what);
        st = EXO_ERR_NO_MEMORY;
    } else {
        *e = (cpu_onednn_weights){.src = w, .n = n, .k = k, .md = *md, .bytes = bytes, .refs = 1};
        /* 4 KiB alignment: the blocked panels are streamed by every thread; no split lines. */
        if (posix_memalign(&e->data, 4096, bytes) != 0) {
            e->data = NULL;
            snprintf(err, err_size, "weight '%s': cannot allocate %zu bytes for the reordered copy", what, bytes);
            st = EXO_ERR_NO_MEMORY;
        }
    }
    /* Under the lock: two graphs compiled at once over the same weights reorder them once. */
    if (st == EXO_OK) st = reorder(e, engine, stream, what, err, err_size);
    if (st == EXO_OK) {
        e->next = cache_head;
        cache_head = e;
        *out = e;
    } else if (e) {
        free(e->data);
        free(e);
    }
    pthread_mutex_unlock(&cache_lock);
    return st;
}

void *cpu_onednn_weights_data(const cpu_onednn_weights *e) { return e->data; }
uint64_t cpu_onednn_weights_bytes(const cpu_onednn_weights *e) { return e->bytes; }

void cpu_onednn_weights_release(cpu_onednn_weights *e) {
    if (!e) return;
    pthread_mutex_lock(&cache_lock);
    if (--e->refs == 0) {
        for (cpu_onednn_weights **p = &cache_head; *p; p = &(*p)->next)
            if (*p == e) {
                *p = e->next;
                break;
            }
        free(e->data);
        free(e);
    }
    pthread_mutex_unlock(&cache_lock);
}
