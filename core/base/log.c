#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};

int32_t exo_log_level_parse(const char *text) {
    if (!text || !*text) return -1;
    for (int32_t i = 0; i < 5; i++)
        if (strcasecmp(text, level_names[i]) == 0) return i;
    if (strcasecmp(text, "warning") == 0) return EXO_LOG_WARN;
    if (text[0] >= '0' && text[0] <= '4' && text[1] == '\0') return text[0] - '0';
    return -1;
}

void exo_logger_init(exo_logger *logger, exo_log_fn fn, void *user, int32_t level) {
    logger->fn = fn;
    logger->user = user;
    const char *env = NULL;
    if (level < 0) {
        env = secure_getenv("EXO_LOG_LEVEL");
        level = exo_log_level_parse(env);
    }
    if (level < 0) level = EXO_LOG_WARN;
    if (level > EXO_LOG_TRACE) level = EXO_LOG_TRACE;
    logger->threshold = level;
    /* A typo must not silently mean "warn": say so (at warn, which the default shows). */
    if (env && *env && exo_log_level_parse(env) < 0)
        exo_logf(logger, EXO_LOG_WARN, "core",
                 "EXO_LOG_LEVEL='%s' is not a log level (accepted: error, warn, info, debug, trace or 0..4); using warn",
                 env);
}

void exo_logf(const exo_logger *logger, exo_log_level level, const char *component,
              const char *fmt, ...) {
    if (!logger || level > logger->threshold) return;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n') line[--n] = '\0';
    if (logger->fn) {
        logger->fn(logger->user, level, component, line);
    } else {
        const char *name = (level >= 0 && level <= EXO_LOG_TRACE) ? level_names[level] : "log";
        fprintf(stderr, "exo %s [%s] %s\n", name, component ? component : "core", line);
    }
}
