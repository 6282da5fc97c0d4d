/* host.c — the plugin's side of the host table: printf-style lines handed to host->log under
 * the plugin's component name, and the context's build_info text (ctx->build_info, which
 * probe_build_info returns), written by the first probe only (see l0_internal.h). */
#include "l0_internal.h"

#include <stdarg.h>
#include <stdio.h>

void l0_log(const exo_host_api *host, exo_log_level level, const char *fmt, ...) {
    if (!host || !host->log) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    host->log(host->host_ctx, level, L0_COMPONENT, line);
}

void l0_build_info_set(exo_plugin_ctx *ctx, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->build_info, sizeof ctx->build_info, fmt, ap);
    va_end(ap);
}
