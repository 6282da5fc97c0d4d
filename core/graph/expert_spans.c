/* Expert spans: which per-expert checkpoint tensors share one weight buffer.
 *
 * A per-expert checkpoint (qwen3_moe, mixtral, glm4_moe from the hub) stores a layer's experts as
 * 3 x E tensors. Given one buffer each, a GPU runs a MOE_MATMUL as one launch per buffer its
 * experts live in (plugins/gpu_common, gpu_moe.c): E launches per matmul, thousands per decode
 * step. safetensors writers sort a file's tensors by name (within a dtype), so a layer's
 * `experts.<e>.<proj>` tensors lie side by side: one buffer over their byte range in the file
 * holds the whole layer, each tensor at its offset in it. The buffer is a view of the mapping
 * (the CPU wraps it in place) or one upload of the range (the GPUs), so every byte is still read
 * once and device memory holds the range, not more. */
#include "builder_internal.h"

#include <stdlib.h>
#include <string.h>

#include "base/error.h"

/* qsort's order: by file, then by address in its mapping. */
static int by_place(const void *a, const void *b) {
    const gb_span_item *x = *(const gb_span_item *const *)a, *y = *(const gb_span_item *const *)b;
    int f = strcmp(x->file, y->file);
    if (f) return f;
    return x->data < y->data ? -1 : x->data > y->data;
}

exo_status gb_expert_spans(gb_span_item *items, uint32_t n, uint64_t max_bytes, gb_span *spans, uint32_t *n_spans) {
    *n_spans = 0;
    if (n == 0) return EXO_OK;
    gb_span_item **order = malloc((size_t)n * sizeof *order);
    if (!order) return exo_errorf(EXO_ERR_NO_MEMORY, "out of memory grouping expert tensors");
    for (uint32_t i = 0; i < n; i++) order[i] = &items[i];
    qsort(order, n, sizeof *order, by_place);
    gb_span *cur = NULL;
    uint64_t useful = 0; /* bytes of the current span's tensors: the rest is what it wastes */
    for (uint32_t i = 0; i < n; i++) {
        gb_span_item *it = order[i];
        bool joins = false;
        if (cur && strcmp(cur->file, it->file) == 0 && it->data >= cur->data) {
            uint64_t at = (uint64_t)(it->data - cur->data);
            uint64_t end = at + it->nbytes > cur->size ? at + it->nbytes : cur->size;
            /* Within the cap (the smallest allocation a candidate device takes, and the kernels'
             * reach), wasting at most a quarter of the tensors' bytes on whatever lies between
             * them, and with the tensor aligned to its elements inside the span as in the file. */
            joins = end <= max_bytes && end * 4 <= (useful + it->nbytes) * 5 && at % it->align == 0;
            if (joins) {
                cur->size = end;
                it->offset = at;
            }
        }
        if (!joins) {
            cur = &spans[(*n_spans)++];
            cur->file = it->file;
            cur->data = it->data;
            cur->size = it->nbytes;
            cur->n_items = 0;
            it->offset = 0;
            useful = 0;
        }
        useful += it->nbytes;
        cur->n_items++;
        it->span = (uint32_t)(cur - spans);
    }
    free(order);
    return EXO_OK;
}
