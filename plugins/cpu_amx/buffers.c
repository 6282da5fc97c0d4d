/* Host-memory buffers: 64-byte aligned allocations, or zero-copy wrappers over memory the caller
 * keeps alive (an mmap'd safetensors file). Every access is bounds-checked. */
#include "cpu_plugin.h"

#include <stdlib.h>
#include <string.h>

static const char *usage_name(exo_buffer_usage usage) {
    switch (usage) {
    case EXO_BUFFER_WEIGHTS: return "weights";
    case EXO_BUFFER_KV: return "kv";
    case EXO_BUFFER_SCRATCH: return "scratch";
    default: return "?";
    }
}

static exo_status check_request(exo_plugin_ctx *ctx, const char *what, uint32_t device, uint64_t size,
                                exo_buffer_usage usage, exo_buffer **out) {
    if (!out) return cpu_error(ctx, EXO_ERR_INVALID_ARG, "cpu_amx %s: out is NULL", what);
    *out = NULL;
    if (device != 0) return cpu_error(ctx, EXO_ERR_NOT_FOUND, "cpu_amx %s: no device %u (only 0)", what, device);
    if (!ctx->open) return cpu_error(ctx, EXO_ERR_INVALID_ARG, "cpu_amx %s: device 0 is not open", what);
    if (usage != EXO_BUFFER_WEIGHTS && usage != EXO_BUFFER_KV && usage != EXO_BUFFER_SCRATCH)
        return cpu_error(ctx, EXO_ERR_INVALID_ARG, "cpu_amx %s: unknown buffer usage %d", what, (int)usage);
    if (size == 0) return cpu_error(ctx, EXO_ERR_INVALID_ARG, "cpu_amx %s: size is 0", what);
    return EXO_OK;
}

exo_status cpu_buffer_alloc(exo_plugin_ctx *ctx, uint32_t device, uint64_t size, exo_buffer_usage usage,
                            exo_buffer **out) {
    exo_status st = check_request(ctx, "buffer_alloc", device, size, usage, out);
    if (st != EXO_OK) return st;
    uint64_t total = 0, avail = 0;
    /* Larger than all of RAM can never work; say so instead of letting the OOM killer decide. */
    if (cpu_read_meminfo(&total, &avail) && size > total)
        return cpu_error(ctx, EXO_ERR_NO_MEMORY,
                         "cpu_amx buffer_alloc: %llu bytes (%s) exceed the machine's %llu bytes of memory",
                         (unsigned long long)size, usage_name(usage), (unsigned long long)total);
    if (size > ((uint64_t)1 << 48) || size > SIZE_MAX - CPU_ALIGN)
        return cpu_error(ctx, EXO_ERR_NO_MEMORY, "cpu_amx buffer_alloc: %llu bytes is not a sane size",
                         (unsigned long long)size);
    exo_buffer *buf = calloc(1, sizeof *buf);
    void *data = NULL;
    size_t rounded = (size_t)((size + CPU_ALIGN - 1) / CPU_ALIGN * CPU_ALIGN);
    if (!buf || posix_memalign(&data, CPU_ALIGN, rounded) != 0) {
        free(buf);
        return cpu_error(ctx, EXO_ERR_NO_MEMORY, "cpu_amx buffer_alloc: cannot allocate %llu bytes (%s)",
                         (unsigned long long)size, usage_name(usage));
    }
    /* KV caches and scratch start zeroed so unwritten rows read as zeros, not garbage. Weights are
     * written right after, so they skip the extra pass over memory. */
    if (usage != EXO_BUFFER_WEIGHTS) memset(data, 0, rounded);
    buf->ctx = ctx;
    buf->data = data;
    buf->size = size;
    buf->usage = usage;
    buf->owned = true;
    *out = buf;
    return EXO_OK;
}

exo_status cpu_buffer_wrap_host(exo_plugin_ctx *ctx, uint32_t device, void *ptr, uint64_t size,
                                exo_buffer_usage usage, exo_buffer **out) {
    exo_status st = check_request(ctx, "buffer_wrap_host", device, size, usage, out);
    if (st != EXO_OK) return st;
    if (!ptr) return cpu_error(ctx, EXO_ERR_INVALID_ARG, "cpu_amx buffer_wrap_host: ptr is NULL");
    if ((uintptr_t)ptr + size < (uintptr_t)ptr)
        return cpu_error(ctx, EXO_ERR_INVALID_ARG, "cpu_amx buffer_wrap_host: %llu bytes at %p wrap the address space",
                         (unsigned long long)size, ptr);
    exo_buffer *buf = calloc(1, sizeof *buf);
    if (!buf) return cpu_error(ctx, EXO_ERR_NO_MEMORY, "cpu_amx buffer_wrap_host: out of memory");
    buf->ctx = ctx;
    buf->data = ptr;
    buf->size = size;
    buf->usage = usage;
    buf->owned = false;
    *out = buf;
    return EXO_OK;
}

static exo_status check_range(exo_buffer *buf, const char *what, uint64_t offset, const void *data, uint64_t size) {
    if (!data && size > 0)
        return cpu_error(buf->ctx, EXO_ERR_INVALID_ARG, "cpu_amx %s: data pointer is NULL", what);
    if (offset > buf->size || size > buf->size - offset)
        return cpu_error(buf->ctx, EXO_ERR_INVALID_ARG,
                         "cpu_amx %s: range [%llu, %llu + %llu) is outside the %llu-byte buffer", what,
                         (unsigned long long)offset, (unsigned long long)offset, (unsigned long long)size,
                         (unsigned long long)buf->size);
    return EXO_OK;
}

exo_status cpu_buffer_write(exo_buffer *buf, uint64_t offset, const void *data, uint64_t size) {
    if (!buf) return EXO_ERR_INVALID_ARG;
    exo_status st = check_range(buf, "buffer_write", offset, data, size);
    if (st != EXO_OK) return st;
    if (size) memmove(buf->data + offset, data, (size_t)size);
    return EXO_OK;
}

exo_status cpu_buffer_read(exo_buffer *buf, uint64_t offset, void *data, uint64_t size) {
    if (!buf) return EXO_ERR_INVALID_ARG;
    exo_status st = check_range(buf, "buffer_read", offset, data, size);
    if (st != EXO_OK) return st;
    if (size) memmove(data, buf->data + offset, (size_t)size);
    return EXO_OK;
}

void cpu_buffer_free(exo_buffer *buf) {
    if (!buf) return;
    if (buf->owned) free(buf->data);
    free(buf);
}
