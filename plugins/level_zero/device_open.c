/* device_open.c — a device ready for work: its driver's context (one per driver, shared by the
 * driver's opened devices, so memory of one device can be copied into another's: peer_copy.c), an
 * asynchronous command queue on the compute queue group, and a synchronous immediate command list
 * for buffer reads and writes.
 * Graphs record their own regular lists and fences on this queue (recorder.c). The SPIR-V
 * module is built by the first graph_compile (module.c), not here, so opening stays cheap. */
#include "l0_internal.h"

#include <stdio.h>
#include <string.h>

exo_status l0_opened_device(exo_plugin_ctx *ctx, uint32_t index, const char *what, l0_device **out) {
    *out = NULL;
    if (!ctx->probed || index >= ctx->n_devices)
        return l0_error(ctx, NULL, EXO_ERR_NOT_FOUND, "%s: device %u does not exist (%u found)", what, index,
                        ctx->n_devices);
    l0_device *dev = &ctx->devices[index];
    if (!dev->exec.open)
        return l0_error(ctx, dev, EXO_ERR_INVALID_ARG, "%s: the device is not open (device_open first)", what);
    *out = dev;
    return EXO_OK;
}

/* The first queue group that computes (Intel: the render/compute engine group, ordinal 0). */
static exo_status find_compute_ordinal(exo_plugin_ctx *ctx, l0_device *dev, uint32_t *ordinal) {
    const l0_loader *ze = ctx->ze;
    uint32_t n = 0;
    ze_result_t r = ze->zeDeviceGetCommandQueueGroupProperties(dev->handle, &n, NULL);
    if (r != ZE_RESULT_SUCCESS) return l0_fail(ctx, dev, r, "zeDeviceGetCommandQueueGroupProperties", "opening");
    ze_command_queue_group_properties_t groups[16];
    if (n > 16) n = 16;
    for (uint32_t i = 0; i < n; i++)
        groups[i] = (ze_command_queue_group_properties_t){.stype = ZE_STRUCTURE_TYPE_COMMAND_QUEUE_GROUP_PROPERTIES};
    r = ze->zeDeviceGetCommandQueueGroupProperties(dev->handle, &n, groups);
    if (r != ZE_RESULT_SUCCESS) return l0_fail(ctx, dev, r, "zeDeviceGetCommandQueueGroupProperties", "opening");
    for (uint32_t i = 0; i < n; i++)
        if (groups[i].flags & ZE_COMMAND_QUEUE_GROUP_PROPERTY_FLAG_COMPUTE) {
            *ordinal = i;
            return EXO_OK;
        }
    return l0_error(ctx, dev, EXO_ERR_UNSUPPORTED, "opening: none of its %u command queue groups can compute", n);
}

/* Whether the driver lets single allocations exceed maxMemAllocSize. */
static bool offers_relaxed_limits(exo_plugin_ctx *ctx, l0_device *dev) {
    const l0_loader *ze = ctx->ze;
    uint32_t n = 0;
    if (ze->zeDriverGetExtensionProperties(dev->driver, &n, NULL) != ZE_RESULT_SUCCESS || n == 0) return false;
    ze_driver_extension_properties_t *ext = ctx->host->alloc(ctx->host->host_ctx, n * sizeof *ext);
    if (!ext) return false;
    bool found = false;
    if (ze->zeDriverGetExtensionProperties(dev->driver, &n, ext) == ZE_RESULT_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++)
            found = strncmp(ext[i].name, ZE_RELAXED_ALLOCATION_LIMITS_EXP_NAME, sizeof ext[i].name) == 0;
    ctx->host->free(ctx->host->host_ctx, ext);
    return found;
}

/* The context of the device's driver, created by its first opened device (ctx->lock held). */
static exo_status context_take(exo_plugin_ctx *ctx, l0_device *dev, ze_context_handle_t *out) {
    l0_driver_context *free_slot = NULL;
    for (uint32_t i = 0; i < L0_MAX_DRIVER_CONTEXTS; i++) {
        l0_driver_context *c = &ctx->contexts[i];
        if (c->users && c->driver == dev->driver) {
            c->users++;
            *out = c->context;
            return EXO_OK;
        }
        if (!c->users && !free_slot) free_slot = c;
    }
    if (!free_slot)
        return l0_error(ctx, dev, EXO_ERR_UNSUPPORTED, "opening: more than %d Level Zero drivers in use",
                        L0_MAX_DRIVER_CONTEXTS);
    ze_context_desc_t cd = {.stype = ZE_STRUCTURE_TYPE_CONTEXT_DESC};
    ze_result_t r = ctx->ze->zeContextCreate(dev->driver, &cd, &free_slot->context);
    if (r != ZE_RESULT_SUCCESS) return l0_fail(ctx, dev, r, "zeContextCreate", "opening");
    free_slot->driver = dev->driver;
    free_slot->users = 1;
    *out = free_slot->context;
    return EXO_OK;
}

/* Drops the device's use of its driver's context; the last user destroys it (ctx->lock held). */
static void context_drop(exo_plugin_ctx *ctx, l0_device *dev, ze_context_handle_t context) {
    for (uint32_t i = 0; i < L0_MAX_DRIVER_CONTEXTS; i++) {
        l0_driver_context *c = &ctx->contexts[i];
        if (!c->users || c->context != context || --c->users) continue;
        ze_result_t r = ctx->ze->zeContextDestroy(context);
        if (r != ZE_RESULT_SUCCESS)
            l0_log(ctx->host, EXO_LOG_WARN, "level_zero:%u: zeContextDestroy: %s (0x%08x): buffers or graphs were "
                   "still alive when the driver's last device closed", dev->index, ze_result_name(r), (unsigned)r);
        c->context = NULL;
        c->driver = NULL;
    }
}

static void release(exo_plugin_ctx *ctx, l0_device *dev) {
    const l0_loader *ze = ctx->ze;
    l0_exec *x = &dev->exec;
    l0_module_destroy(ctx, dev);
    if (x->copy_list) ze->zeCommandListDestroy(x->copy_list);
    if (x->queue) ze->zeCommandQueueDestroy(x->queue);
    if (x->context) context_drop(ctx, dev, x->context);
    x->copy_list = NULL;
    x->queue = NULL;
    x->context = NULL;
}

exo_status l0_device_open(exo_plugin_ctx *ctx, uint32_t index) {
    if (!ctx) return EXO_ERR_INVALID_ARG;
    pthread_mutex_lock(&ctx->lock);
    exo_status st = EXO_OK;
    l0_device *dev = NULL;
    if (!ctx->probed || index >= ctx->n_devices)
        st = l0_error(ctx, NULL, ctx->n_devices ? EXO_ERR_NOT_FOUND : EXO_ERR_NO_DEVICE,
                      "device_open: device %u does not exist (%u found)%s%s", index, ctx->n_devices,
                      ctx->reason[0] ? ": " : "", ctx->reason);
    else if (!ctx->ze->has_exec_symbols)
        st = l0_error(ctx, NULL, EXO_ERR_PLUGIN_LOAD, "device_open: the Level Zero loader %s lacks %s (too old?)",
                      ctx->ze->name, ctx->ze->missing_exec_symbol);
    else if ((dev = &ctx->devices[index])->exec.open)
        st = EXO_OK; /* the core opens each device once; a second open is harmless */
    else if (dev->report.score == EXO_SCORE_UNUSABLE)
        st = l0_error(ctx, dev, EXO_ERR_UNSUPPORTED, "device_open: %s", dev->report.reason);
    if (st != EXO_OK || dev->exec.open) {
        pthread_mutex_unlock(&ctx->lock);
        return st;
    }
    const l0_loader *ze = ctx->ze;
    l0_exec *x = &dev->exec;
    memset(x, 0, sizeof *x);
    ze_result_t r;
    st = context_take(ctx, dev, &x->context);
    if (st == EXO_OK) st = find_compute_ordinal(ctx, dev, &x->queue_ordinal);
    if (st == EXO_OK) {
        ze_command_queue_desc_t qd = {.stype = ZE_STRUCTURE_TYPE_COMMAND_QUEUE_DESC, .ordinal = x->queue_ordinal,
                                      .mode = ZE_COMMAND_QUEUE_MODE_ASYNCHRONOUS,
                                      .priority = ZE_COMMAND_QUEUE_PRIORITY_NORMAL};
        r = ze->zeCommandQueueCreate(x->context, dev->handle, &qd, &x->queue);
        if (r != ZE_RESULT_SUCCESS) st = l0_fail(ctx, dev, r, "zeCommandQueueCreate", "opening");
    }
    if (st == EXO_OK) {
        ze_command_queue_desc_t qd = {.stype = ZE_STRUCTURE_TYPE_COMMAND_QUEUE_DESC, .ordinal = x->queue_ordinal,
                                      .mode = ZE_COMMAND_QUEUE_MODE_SYNCHRONOUS,
                                      .priority = ZE_COMMAND_QUEUE_PRIORITY_NORMAL};
        r = ze->zeCommandListCreateImmediate(x->context, dev->handle, &qd, &x->copy_list);
        if (r != ZE_RESULT_SUCCESS) st = l0_fail(ctx, dev, r, "zeCommandListCreateImmediate", "opening");
    }
    if (st == EXO_OK && pthread_mutex_init(&x->lock, NULL) != 0)
        st = l0_error(ctx, dev, EXO_ERR_INTERNAL, "opening: pthread_mutex_init failed");
    if (st != EXO_OK) {
        release(ctx, dev);
    } else {
        x->relaxed_alloc = offers_relaxed_limits(ctx, dev);
        x->open = true;
        l0_log(ctx->host, EXO_LOG_INFO, "level_zero:%u '%s' open: queue group %u, max allocation %llu bytes%s", index,
               dev->props.name, x->queue_ordinal, (unsigned long long)dev->props.maxMemAllocSize,
               x->relaxed_alloc ? " (larger ones through relaxed allocation limits)" : "");
    }
    pthread_mutex_unlock(&ctx->lock);
    return st;
}

void l0_device_close(exo_plugin_ctx *ctx, uint32_t index) {
    if (!ctx) return;
    pthread_mutex_lock(&ctx->lock);
    if (ctx->probed && index < ctx->n_devices && ctx->devices[index].exec.open) {
        l0_device *dev = &ctx->devices[index];
        release(ctx, dev);
        pthread_mutex_destroy(&dev->exec.lock);
        dev->exec.open = false;
    }
    pthread_mutex_unlock(&ctx->lock);
}
