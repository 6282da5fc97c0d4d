/* host.c — the plugin's side of the host table: formatted log lines and the per-context
 * build_info text. (Struct copies use exo_struct_copy_out from exo_plugin.h.) */
#include "l0_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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
