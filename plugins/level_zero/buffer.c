/* buffer.c — USM device memory (zeMemAllocDevice). Weights, KV caches and activations are
 * device allocations; reads and writes are blocking copies on the device's synchronous
 * immediate list. One weight tensor is one allocation, so tensors larger than the device's
 * maxMemAllocSize (just under 4 GiB on Intel GPUs) go through the relaxed-allocation-limits
 * extension — the kernels address them with 32-bit element offsets, and the module is then
 * built with -ze-opt-greater-than-4GB-buffer-required; a driver without the extension gets a
 * clear EXO_ERR_UNSUPPORTED naming the sizes, and the core places the shard elsewhere. */
#include "l0_internal.h"

#include <string.h>

#define L0_ALIGNMENT 64

exo_status l0_mem_alloc(exo_plugin_ctx *ctx, l0_device *dev, uint64_t size, const char *what, l0_mem *out) {
    const l0_loader *ze = ctx->ze;
    l0_exec *x = &dev->exec;
    memset(out, 0, sizeof *out);
    exo_status st = l0_check_not_lost(ctx, dev);
    if (st != EXO_OK) return st;
    if (size == 0) size = 1;
    ze_relaxed_allocation_limits_exp_desc_t relaxed = {.stype = ZE_STRUCTURE_TYPE_RELAXED_ALLOCATION_LIMITS_EXP_DESC,
                                                       .flags = ZE_RELAXED_ALLOCATION_LIMITS_EXP_FLAG_MAX_SIZE};
    ze_device_mem_alloc_desc_t desc = {.stype = ZE_STRUCTURE_TYPE_DEVICE_MEM_ALLOC_DESC};
    bool large = size > dev->props.maxMemAllocSize;
    if (large) {
        if (!x->relaxed_alloc)
            return l0_error(ctx, dev, EXO_ERR_UNSUPPORTED,
                            "%s needs %llu bytes in one allocation; the device's largest is %llu bytes and the driver "
                            "does not offer %s", what, (unsigned long long)size,
                            (unsigned long long)dev->props.maxMemAllocSize, ZE_RELAXED_ALLOCATION_LIMITS_EXP_NAME);
        if (x->module && !x->large_buffers)
            return l0_error(ctx, dev, EXO_ERR_UNSUPPORTED,
                            "%s needs %llu bytes in one allocation (above the device's %llu), but the kernels were "
                            "already built for allocations below it; load shards with large tensors first",
                            what, (unsigned long long)size, (unsigned long long)dev->props.maxMemAllocSize);
        desc.pNext = &relaxed;
    }
    ze_result_t r = ze->zeMemAllocDevice(x->context, &desc, size, L0_ALIGNMENT, dev->handle, &out->ptr);
    if (r != ZE_RESULT_SUCCESS) {
        out->ptr = NULL;
        return l0_fail(ctx, dev, r, "zeMemAllocDevice", "allocating %llu bytes for %s (%llu held by this process)",
                       (unsigned long long)size, what, (unsigned long long)x->live_bytes);
    }
    out->size = size;
    if (large) x->large_buffers = true;
    pthread_mutex_lock(&x->lock);
    x->live_bytes += size;
    pthread_mutex_unlock(&x->lock);
    return EXO_OK;
}

void l0_mem_free(exo_plugin_ctx *ctx, l0_device *dev, l0_mem *mem) {
    if (!mem->ptr) return;
    ze_result_t r = ctx->ze->zeMemFree(dev->exec.context, mem->ptr);
    if (r != ZE_RESULT_SUCCESS)
        l0_log(ctx->host, EXO_LOG_WARN, "level_zero:%u: zeMemFree: %s (0x%08x)", dev->index, ze_result_name(r),
               (unsigned)r);
    pthread_mutex_lock(&dev->exec.lock);
    dev->exec.live_bytes -= mem->size;
    pthread_mutex_unlock(&dev->exec.lock);
    mem->ptr = NULL;
    mem->size = 0;
}

exo_status l0_copy(exo_plugin_ctx *ctx, l0_device *dev, void *dst, const void *src, uint64_t size, const char *what) {
    exo_status st = l0_check_not_lost(ctx, dev);
    if (st != EXO_OK || size == 0) return st;
    pthread_mutex_lock(&dev->exec.lock);
    ze_result_t r = ctx->ze->zeCommandListAppendMemoryCopy(dev->exec.copy_list, dst, src, size, NULL, 0, NULL);
    pthread_mutex_unlock(&dev->exec.lock);
    if (r != ZE_RESULT_SUCCESS)
        return l0_fail(ctx, dev, r, "zeCommandListAppendMemoryCopy", "%s of %llu bytes", what, (unsigned long long)size);
    return EXO_OK;
}

static const char *usage_name(exo_buffer_usage usage) {
    switch (usage) {
    case EXO_BUFFER_WEIGHTS: return "a weight buffer";
    case EXO_BUFFER_KV: return "a KV cache buffer";
    case EXO_BUFFER_SCRATCH: return "a scratch buffer";
    default: return "a buffer";
    }
}

exo_status l0_buffer_alloc(exo_plugin_ctx *ctx, uint32_t device, uint64_t size, exo_buffer_usage usage,
                           exo_buffer **out) {
    if (!ctx || !out) return EXO_ERR_INVALID_ARG;
    *out = NULL;
    l0_device *dev;
    exo_status opened = l0_opened_device(ctx, device, "buffer_alloc", &dev);
    if (opened != EXO_OK) return opened;
    exo_buffer *buf = ctx->host->alloc(ctx->host->host_ctx, sizeof *buf);
    if (!buf) return l0_error(ctx, dev, EXO_ERR_NO_MEMORY, "buffer_alloc: out of host memory");
    memset(buf, 0, sizeof *buf);
    buf->magic = L0_BUFFER_MAGIC;
    buf->ctx = ctx;
    buf->dev = dev;
    buf->usage = usage;
    exo_status st = l0_mem_alloc(ctx, dev, size, usage_name(usage), &buf->mem);
    if (st != EXO_OK) {
        ctx->host->free(ctx->host->host_ctx, buf);
        return st;
    }
    *out = buf;
    return EXO_OK;
}

static exo_status check_range(exo_buffer *buf, uint64_t offset, const void *data, uint64_t size, const char *what) {
    if (!buf || buf->magic != L0_BUFFER_MAGIC) return EXO_ERR_INVALID_ARG;
    if (!data && size) return l0_error(buf->ctx, buf->dev, EXO_ERR_INVALID_ARG, "%s: data is NULL", what);
    if (offset > buf->mem.size || size > buf->mem.size - offset)
        return l0_error(buf->ctx, buf->dev, EXO_ERR_INVALID_ARG, "%s: bytes [%llu, %llu) lie outside the %llu-byte buffer",
                        what, (unsigned long long)offset, (unsigned long long)(offset + size),
                        (unsigned long long)buf->mem.size);
    return EXO_OK;
}

exo_status l0_buffer_write(exo_buffer *buf, uint64_t offset, const void *data, uint64_t size) {
    exo_status st = check_range(buf, offset, data, size, "buffer_write");
    if (st != EXO_OK) return st;
    return l0_copy(buf->ctx, buf->dev, (char *)buf->mem.ptr + offset, data, size, "writing a buffer");
}

exo_status l0_buffer_read(exo_buffer *buf, uint64_t offset, void *data, uint64_t size) {
    exo_status st = check_range(buf, offset, data, size, "buffer_read");
    if (st != EXO_OK) return st;
    return l0_copy(buf->ctx, buf->dev, data, (const char *)buf->mem.ptr + offset, size, "reading a buffer");
}

void l0_buffer_free(exo_buffer *buf) {
    if (!buf || buf->magic != L0_BUFFER_MAGIC) return;
    exo_plugin_ctx *ctx = buf->ctx;
    l0_mem_free(ctx, buf->dev, &buf->mem);
    buf->magic = 0;
    ctx->host->free(ctx->host->host_ctx, buf);
}

l0_mem *l0_buffer_mem(exo_buffer *buf, l0_device *dev) {
    if (!buf || buf->magic != L0_BUFFER_MAGIC || buf->dev != dev) return NULL;
    return &buf->mem;
}
