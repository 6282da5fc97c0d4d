/* ze_check.c — what a failed Level Zero call means for the core, and the message that says
 * which call on which device failed with which result. A lost device is remembered so every
 * later call on it fails fast with EXO_ERR_DEVICE_LOST instead of touching the driver again. */
#include "l0_internal.h"

#include <stdarg.h>
#include <stdio.h>

exo_status l0_status_of(ze_result_t r) {
    switch (r) {
    case ZE_RESULT_SUCCESS: return EXO_OK;
    case ZE_RESULT_ERROR_DEVICE_LOST:
    case ZE_RESULT_ERROR_DEVICE_REQUIRES_RESET: return EXO_ERR_DEVICE_LOST;
    case ZE_RESULT_ERROR_OUT_OF_DEVICE_MEMORY: return EXO_ERR_DEVICE_OOM;
    case ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY: return EXO_ERR_NO_MEMORY;
    case ZE_RESULT_ERROR_UNSUPPORTED_FEATURE:
    case ZE_RESULT_ERROR_UNSUPPORTED_SIZE:
    case ZE_RESULT_ERROR_UNSUPPORTED_VERSION: return EXO_ERR_UNSUPPORTED;
    default: return EXO_ERR_BACKEND;
    }
}

static exo_status report(exo_plugin_ctx *ctx, l0_device *dev, exo_status st, int64_t vendor, const char *detail) {
    if (dev)
        return ctx->host->set_error(ctx->host->host_ctx, st, vendor, "level_zero:%u '%s': %s", dev->index,
                                    dev->props.name, detail);
    return ctx->host->set_error(ctx->host->host_ctx, st, vendor, "level_zero: %s", detail);
}

exo_status l0_fail(exo_plugin_ctx *ctx, l0_device *dev, ze_result_t r, const char *call, const char *fmt, ...) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    exo_status st = l0_status_of(r);
    if (st == EXO_OK) st = EXO_ERR_INTERNAL; /* a caller asked to fail on success: a plugin bug */
    char line[768];
    snprintf(line, sizeof line, "%s: %s failed: %s (0x%08x)%s", what, call, ze_result_name(r), (unsigned)r,
             st == EXO_ERR_DEVICE_LOST ? "; the GPU was lost or hung (see dmesg for an i915/xe reset)" : "");
    if (dev && st == EXO_ERR_DEVICE_LOST) dev->exec.lost = true;
    l0_log(ctx->host, st == EXO_ERR_DEVICE_LOST ? EXO_LOG_ERROR : EXO_LOG_DEBUG, "%s", line);
    return report(ctx, dev, st, r, line);
}

exo_status l0_error(exo_plugin_ctx *ctx, l0_device *dev, exo_status st, const char *fmt, ...) {
    char line[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    return report(ctx, dev, st, 0, line);
}

exo_status l0_check_not_lost(exo_plugin_ctx *ctx, l0_device *dev) {
    if (!dev->exec.lost) return EXO_OK;
    return report(ctx, dev, EXO_ERR_DEVICE_LOST, ZE_RESULT_ERROR_DEVICE_LOST,
                  "the device was lost earlier (ZE_RESULT_ERROR_DEVICE_LOST); reload the shard elsewhere");
}
