/* Logging: one line per message, with a level and a component ("core", "registry",
 * "plugin:opencl"), delivered to the runtime's callback or to stderr. The threshold comes from
 * the options, else EXO_LOG_LEVEL (error|warn|info|debug|trace or 0..4), else warn. */
#ifndef EXO_BASE_LOG_H
#define EXO_BASE_LOG_H

#include "exo.h"

typedef struct exo_logger {
    exo_log_fn fn; /* NULL: stderr */
    void *user;
    exo_log_level threshold;
} exo_logger;

/* Fills a logger from a callback and an explicit level (< 0: from EXO_LOG_LEVEL). */
void exo_logger_init(exo_logger *logger, exo_log_fn fn, void *user, int32_t level);

void exo_logf(const exo_logger *logger, exo_log_level level, const char *component,
              const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Parses "error".."trace" or "0".."4"; returns -1 when unrecognised. */
int32_t exo_log_level_parse(const char *text);

#endif
