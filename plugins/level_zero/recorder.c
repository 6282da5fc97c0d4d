/* recorder.c — the executor's launches become a regular command list that is recorded once and
 * replayed. Level Zero captures kernel arguments at append time, so a closed list can be
 * re-submitted as it is whenever an execution issues exactly the same launches (same kernels,
 * arguments and sizes): the usual case in decode, where every step has one token and the same
 * bound buffers. Memory is compared by its device address as well as its object, so a buffer
 * freed and replaced at the same host address is never replayed stale. launch() only collects; finish() compares the collected sequence with the
 * recorded one, re-records when they differ, submits with a fence and waits for it. */
#include "l0_graph.h"

#include <string.h>

static bool same_arg(const gpu_arg *a, const gpu_arg *b) {
    if (a->kind != b->kind) return false;
    switch (a->kind) {
    case GPU_ARG_MEM: return a->v.mem.mem == b->v.mem.mem && a->v.mem.offset == b->v.mem.offset;
    case GPU_ARG_U32: return a->v.u32 == b->v.u32;
    case GPU_ARG_I32: return a->v.i32 == b->v.i32;
    case GPU_ARG_F32: return memcmp(&a->v.f32, &b->v.f32, sizeof a->v.f32) == 0;
    }
    return false;
}

static bool same_launch(const l0_launch *la, const l0_launch *lb) {
    const gpu_launch *a = &la->l, *b = &lb->l;
    if (memcmp(la->ptr, lb->ptr, sizeof la->ptr) != 0) return false;
    if (strcmp(la->name, lb->name) != 0 || a->n_args != b->n_args || a->dims != b->dims) return false;
    for (uint32_t d = 0; d < a->dims; d++)
        if (a->global[d] != b->global[d] || a->local[d] != b->local[d]) return false;
    for (uint32_t i = 0; i < a->n_args; i++)
        if (!same_arg(&a->args[i], &b->args[i])) return false;
    return true;
}

static bool same_sequence(const l0_compiled *c) {
    if (!c->list_valid || c->n_pending != c->n_recorded) return false;
    for (uint32_t i = 0; i < c->n_pending; i++)
        if (!same_launch(&c->pending[i], &c->recorded[i])) return false;
    return true;
}

static exo_status set_arg(l0_compiled *c, ze_kernel_handle_t k, const char *name, uint32_t index, size_t size,
                          const void *value) {
    ze_result_t r = c->ctx->ze->zeKernelSetArgumentValue(k, index, size, value);
    if (r != ZE_RESULT_SUCCESS)
        return l0_fail(c->ctx, c->dev, r, "zeKernelSetArgumentValue", "kernel %s, parameter %u", name, index);
    return EXO_OK;
}

static exo_status append_launch(l0_compiled *c, const l0_launch *launch) {
    const gpu_launch *l = &launch->l;
    const char *name = launch->name;
    exo_plugin_ctx *ctx = c->ctx;
    l0_device *dev = c->dev;
    ze_kernel_handle_t k;
    exo_status st = l0_module_kernel(ctx, dev, name, &k);
    if (st != EXO_OK) return st;
    uint32_t group[3] = {1, 1, 1};
    ze_group_count_t count = {1, 1, 1};
    uint32_t *counts[3] = {&count.groupCountX, &count.groupCountY, &count.groupCountZ};
    if (l->dims < 1 || l->dims > 3) return l0_error(ctx, dev, EXO_ERR_INTERNAL, "kernel %s: %u dimensions", name, l->dims);
    for (uint32_t d = 0; d < l->dims; d++) {
        if (l->local[d] == 0 || l->local[d] > UINT32_MAX || l->global[d] % l->local[d] != 0 ||
            l->global[d] / l->local[d] > UINT32_MAX)
            return l0_error(ctx, dev, EXO_ERR_INTERNAL, "kernel %s: global size %zu is not a multiple of the group size %zu",
                            name, l->global[d], l->local[d]);
        group[d] = (uint32_t)l->local[d];
        *counts[d] = (uint32_t)(l->global[d] / l->local[d]);
    }
    st = l0_kernel_group_size(ctx, dev, k, name, group);
    uint32_t param = 0;
    for (uint32_t i = 0; st == EXO_OK && i < l->n_args; i++) {
        const gpu_arg *a = &l->args[i];
        switch (a->kind) {
        case GPU_ARG_MEM: {
            void *ptr = launch->ptr[i];
            st = set_arg(c, k, name, param++, sizeof ptr, &ptr);
            if (st == EXO_OK) st = set_arg(c, k, name, param++, sizeof a->v.mem.offset, &a->v.mem.offset);
            break;
        }
        case GPU_ARG_U32: st = set_arg(c, k, name, param++, sizeof a->v.u32, &a->v.u32); break;
        case GPU_ARG_I32: st = set_arg(c, k, name, param++, sizeof a->v.i32, &a->v.i32); break;
        case GPU_ARG_F32: st = set_arg(c, k, name, param++, sizeof a->v.f32, &a->v.f32); break;
        }
    }
    if (st != EXO_OK) return st;
    ze_result_t r = ctx->ze->zeCommandListAppendLaunchKernel(c->list, k, &count, NULL, 0, NULL);
    if (r != ZE_RESULT_SUCCESS)
        return l0_fail(ctx, dev, r, "zeCommandListAppendLaunchKernel", "kernel %s (%ux%ux%u groups of %ux%ux%u)",
                       name, count.groupCountX, count.groupCountY, count.groupCountZ, group[0], group[1], group[2]);
    return EXO_OK;
}

/* Re-records the list from the pending launches (exec lock held). */
static exo_status record(l0_compiled *c) {
    const l0_loader *ze = c->ctx->ze;
    c->list_valid = false;
    ze_result_t r = ze->zeCommandListReset(c->list);
    if (r != ZE_RESULT_SUCCESS) return l0_fail(c->ctx, c->dev, r, "zeCommandListReset", "recording the graph");
    exo_status st = EXO_OK;
    for (uint32_t i = 0; i < c->n_pending && st == EXO_OK; i++) st = append_launch(c, &c->pending[i]);
    if (st != EXO_OK) return st;
    r = ze->zeCommandListClose(c->list);
    if (r != ZE_RESULT_SUCCESS) return l0_fail(c->ctx, c->dev, r, "zeCommandListClose", "recording the graph");
    /* The pending sequence is now the recorded one. */
    l0_launch *t = c->recorded;
    uint32_t cap = c->cap_recorded;
    c->recorded = c->pending;
    c->cap_recorded = c->cap_pending;
    c->n_recorded = c->n_pending;
    c->pending = t;
    c->cap_pending = cap;
    c->list_valid = true;
    c->records++;
    return EXO_OK;
}

exo_status l0_recorder_launch(void *ctxp, const gpu_launch *launch) {
    l0_compiled *c = ctxp;
    if (c->n_pending == c->cap_pending) {
        uint32_t cap = c->cap_pending ? 2 * c->cap_pending : 64;
        l0_launch *grown = c->ctx->host->alloc(c->ctx->host->host_ctx, cap * sizeof *grown);
        if (!grown) return l0_error(c->ctx, c->dev, EXO_ERR_NO_MEMORY, "recording launches: out of host memory");
        if (c->n_pending) memcpy(grown, c->pending, c->n_pending * sizeof *grown);
        c->ctx->host->free(c->ctx->host->host_ctx, c->pending);
        c->pending = grown;
        c->cap_pending = cap;
    }
    l0_launch *p = &c->pending[c->n_pending++];
    memset(p, 0, sizeof *p);
    p->l = *launch;
    p->l.kernel = NULL;
    if (!launch->kernel || strlen(launch->kernel) >= sizeof p->name) {
        c->n_pending--;
        return l0_error(c->ctx, c->dev, EXO_ERR_INTERNAL, "launch without a kernel name, or one that is too long");
    }
    memcpy(p->name, launch->kernel, strlen(launch->kernel) + 1);
    if (p->l.n_args > GPU_MAX_ARGS) p->l.n_args = GPU_MAX_ARGS;
    for (uint32_t i = 0; i < p->l.n_args; i++)
        if (p->l.args[i].kind == GPU_ARG_MEM && p->l.args[i].v.mem.mem)
            p->ptr[i] = ((const l0_mem *)p->l.args[i].v.mem.mem)->ptr;
    return EXO_OK;
}

exo_status l0_recorder_finish(void *ctxp) {
    l0_compiled *c = ctxp;
    if (c->n_pending == 0) return EXO_OK;
    exo_status st = l0_check_not_lost(c->ctx, c->dev);
    pthread_mutex_lock(&c->dev->exec.lock);
    bool replay = st == EXO_OK && same_sequence(c);
    if (st == EXO_OK && !replay) st = record(c);
    if (st == EXO_OK) {
        const l0_loader *ze = c->ctx->ze;
        ze_result_t r = ze->zeCommandQueueExecuteCommandLists(c->dev->exec.queue, 1, &c->list, c->fence);
        if (r != ZE_RESULT_SUCCESS)
            st = l0_fail(c->ctx, c->dev, r, "zeCommandQueueExecuteCommandLists", "running the graph (%u launches)",
                         c->n_recorded);
        if (st == EXO_OK && (r = ze->zeFenceHostSynchronize(c->fence, UINT64_MAX)) != ZE_RESULT_SUCCESS)
            st = l0_fail(c->ctx, c->dev, r, "zeFenceHostSynchronize", "waiting for the graph");
        if (st == EXO_OK && (r = ze->zeFenceReset(c->fence)) != ZE_RESULT_SUCCESS)
            st = l0_fail(c->ctx, c->dev, r, "zeFenceReset", "after the graph");
        if (st == EXO_OK && replay) c->replays++;
    }
    pthread_mutex_unlock(&c->dev->exec.lock);
    c->n_pending = 0;
    return st;
}
