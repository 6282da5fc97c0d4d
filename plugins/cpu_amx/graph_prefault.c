/* Weight prefaulting at compile time. Weights wrapped from the core's mmap of the safetensors
 * files (buffer_wrap_host) are not in this process's page tables until first touched, so the
 * first executions would stall on hundreds of thousands of page faults (a 2.5 GB model has
 * 600k 4 KiB pages), each a trip through the kernel, and a cold page cache turns each into a
 * disk read. Compile asks the kernel to read the ranges ahead (MADV_WILLNEED) and then touches
 * one byte per page of every weight tensor, on all pool threads, so execution starts warm.
 * Only the tensors the graph uses are touched: a shard maps whole files but reads its layers. */
#include "graph_prefault.h"

#include "graph_ir.h"
#include "threadpool.h"

#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct prefault_args {
    const exo_graph *g;
    const uint32_t *tensors; /* indices of the WEIGHT tensors in wrapped buffers */
    uintptr_t page;
} prefault_args;

static void prefault_range(void *args, int64_t begin, int64_t end, uint32_t thread) {
    (void)thread;
    prefault_args *a = args;
    for (int64_t i = begin; i < end; i++) {
        const exo_tensor *t = exo_graph_tensor(a->g, a->tensors[i]);
        const uint8_t *data = a->g->buffers[t->buffer]->data + t->offset;
        uint64_t bytes = graph_tensor_bytes(t, a->g->max_tokens);
        if (bytes == 0) continue;
        uintptr_t first = (uintptr_t)data & ~(a->page - 1);
        uintptr_t last = ((uintptr_t)data + bytes - 1) & ~(a->page - 1);
        /* Advice only; an error (e.g. memory that is not a file mapping) changes nothing. */
        (void)madvise((void *)first, last + a->page - first, MADV_WILLNEED);
        /* One volatile load per page: the compiler must keep each, and each maps its page. */
        for (uintptr_t p = (uintptr_t)data, stop = p + bytes; p < stop; p = (p & ~(a->page - 1)) + a->page)
            (void)*(const volatile uint8_t *)p;
    }
}

void cpu_prefault_weights(exo_plugin_ctx *ctx, const exo_graph *g, uint32_t *scratch) {
    uint32_t n = 0;
    uint64_t bytes = 0, total = 0, available = 0;
    for (uint32_t t = 0; t < g->n_tensors; t++) {
        const exo_tensor *ten = exo_graph_tensor(g, t);
        if ((ten->flags & EXO_TENSOR_WEIGHT) && !g->buffers[ten->buffer]->owned) {
            scratch[n++] = t;
            bytes += graph_tensor_bytes(ten, g->max_tokens);
        }
    }
    if (n == 0) return;
    /* Weights that do not fit in free memory would only evict each other (and everything
     * else) during the touch; then the pages come in as execution reads them. */
    if (cpu_read_meminfo(&total, &available) && bytes > available) {
        cpu_log(ctx, EXO_LOG_DEBUG, "not prefaulting %llu bytes of weights: only %llu bytes of memory are available",
                (unsigned long long)bytes, (unsigned long long)available);
        return;
    }
    long page = sysconf(_SC_PAGESIZE);
    prefault_args a = {g, scratch, page > 0 ? (uintptr_t)page : 4096u};
    cpu_threadpool_run(ctx->pool, n, 1, prefault_range, &a);
}
