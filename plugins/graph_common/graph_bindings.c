/* graph_bindings.c — execution arguments and bindings (see graph_bindings.h). */
#include "graph_bindings.h"

#include "graph_ir.h"

#include <string.h>

#define BOUND_ROLES (EXO_TENSOR_INPUT | EXO_TENSOR_OUTPUT | EXO_TENSOR_KV)

static const char *role_name(uint32_t flags) {
    return flags & EXO_TENSOR_INPUT ? "INPUT" : flags & EXO_TENSOR_OUTPUT ? "OUTPUT" : "KV";
}

static exo_status check_binding(const graph_target *tg, const exo_tensor *tensors, uint32_t n_tensors,
                                uint32_t n_tokens, const exo_binding *bd, uint32_t b, const uint8_t *bound) {
    if (bd->tensor >= n_tensors)
        return graph_fail(tg, EXO_ERR_INVALID_ARG, "graph_execute: binding %u names tensor %u of %u", b, bd->tensor,
                          n_tensors);
    const exo_tensor *t = &tensors[bd->tensor];
    if (!(t->flags & BOUND_ROLES))
        return graph_fail(tg, EXO_ERR_INVALID_ARG,
                          "graph_execute: binding %u: tensor %u '%.*s' is not an INPUT, OUTPUT or KV tensor", b,
                          bd->tensor, GRAPH_NAME_ARG(t));
    if (bound[bd->tensor])
        return graph_fail(tg, EXO_ERR_INVALID_ARG, "graph_execute: tensor %u '%.*s' is bound twice", bd->tensor,
                          GRAPH_NAME_ARG(t));
    uint64_t size = 0;
    uintptr_t base = 0;
    if (!bd->buffer || !tg->buffer_span(tg->user, bd->buffer, &size, &base))
        return graph_fail(tg, EXO_ERR_INVALID_ARG, "graph_execute: binding %u ('%.*s') has no buffer of this plugin", b,
                          GRAPH_NAME_ARG(t));
    uint64_t bytes = graph_tensor_bytes(t, n_tokens);
    if (bd->offset > size || bytes > size - bd->offset)
        return graph_fail(tg, EXO_ERR_INVALID_ARG,
                          "graph_execute: %s tensor '%.*s' needs bytes [%llu, %llu) but its buffer holds %llu",
                          role_name(t->flags), GRAPH_NAME_ARG(t), (unsigned long long)bd->offset,
                          (unsigned long long)(bd->offset + bytes), (unsigned long long)size);
    uint32_t align = graph_dtype_align(t->dtype);
    if ((base + bd->offset) % align != 0)
        return graph_fail(tg, EXO_ERR_INVALID_ARG,
                          "graph_execute: tensor '%.*s' is bound at offset %llu, not aligned to %u bytes",
                          GRAPH_NAME_ARG(t), (unsigned long long)bd->offset, align);
    if (tg->max_elements && (bd->offset + bytes) / align > tg->max_elements)
        return graph_fail(tg, EXO_ERR_INVALID_ARG,
                          "graph_execute: tensor '%.*s' bound at offset %llu ends at element %llu of its buffer; the "
                          "kernels address at most %llu elements",
                          GRAPH_NAME_ARG(t), (unsigned long long)bd->offset,
                          (unsigned long long)((bd->offset + bytes) / align), (unsigned long long)tg->max_elements);
    return EXO_OK;
}

exo_status graph_check_bindings(const graph_target *target, const exo_tensor *tensors, uint32_t n_tensors,
                                uint32_t max_tokens, const exo_exec_args *args, uint8_t *bound) {
    /* Args of an ABI 1.0/1.1 core end before binding_stride: their bindings are 1.0-sized. */
    if (!args || args->hdr.size < offsetof(exo_exec_args, binding_stride) ||
        EXO_VERSION_MAJOR(args->hdr.version) != EXO_ABI_MAJOR)
        return graph_fail(target, EXO_ERR_INVALID_ARG, "graph_execute: args are NULL or have a foreign header");
    uint32_t stride = exo_exec_binding_stride(args);
    if (stride < EXO_BINDING_SIZE_1_0 || stride % _Alignof(exo_binding) != 0)
        return graph_fail(target, EXO_ERR_INVALID_ARG,
                          "graph_execute: binding_stride %u is below %u bytes or not a multiple of %zu", stride,
                          EXO_BINDING_SIZE_1_0, _Alignof(exo_binding));
    if (args->n_tokens < 1 || args->n_tokens > max_tokens)
        return graph_fail(target, EXO_ERR_INVALID_ARG, "graph_execute: n_tokens %u is outside 1..%u (max_tokens)",
                          args->n_tokens, max_tokens);
    memset(bound, 0, n_tensors);
    if (args->n_bindings && !args->bindings)
        return graph_fail(target, EXO_ERR_INVALID_ARG, "graph_execute: %u bindings but the array is NULL",
                          args->n_bindings);
    for (uint32_t b = 0; b < args->n_bindings; b++) {
        const exo_binding *bd = exo_exec_binding(args, b);
        exo_status st = check_binding(target, tensors, n_tensors, args->n_tokens, bd, b, bound);
        if (st != EXO_OK) return st;
        bound[bd->tensor] = 1;
    }
    for (uint32_t t = 0; t < n_tensors; t++)
        if ((tensors[t].flags & BOUND_ROLES) && !bound[t])
            return graph_fail(target, EXO_ERR_INVALID_ARG, "graph_execute: %s tensor %u '%.*s' has no binding",
                              role_name(tensors[t].flags), t, GRAPH_NAME_ARG(&tensors[t]));
    return EXO_OK;
}
