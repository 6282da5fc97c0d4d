/* host.c — the plugin's side of the host table: formatted log lines, struct copies that
 * respect the core's struct size, and the build_info text. */
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

void l0_copy_struct(void *dst, const void *src, size_t src_size) {
    exo_struct_header *out = dst;
    size_t n = out->size < src_size ? out->size : src_size;
    if (n > sizeof(exo_struct_header))
        memcpy((char *)dst + sizeof(exo_struct_header), (const char *)src + sizeof(exo_struct_header),
               n - sizeof(exo_struct_header));
    /* out->size stays: it tells the core which layout it allocated. */
}

/* Process-wide like the loader: the same text whichever context probed last. The core keeps
 * the pointer it read from the api table at load time, so the buffer never moves; updates are
 * rare (a probe) and each writes a complete NUL-terminated line at once. */
static pthread_mutex_t build_info_lock = PTHREAD_MUTEX_INITIALIZER;
static char build_info_text[512] = "Level Zero headers 1.4; loader dlopened at probe";

const char *l0_build_info(void) { return build_info_text; }

void l0_build_info_set(const char *fmt, ...) {
    char line[sizeof build_info_text];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&build_info_lock);
    memcpy(build_info_text, line, sizeof line);
    pthread_mutex_unlock(&build_info_lock);
}
