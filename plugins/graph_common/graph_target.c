/* graph_target.c — error reporting for the shared graph code (see graph_target.h). */
#include "graph_target.h"

#include <stdio.h>

exo_status graph_failv(const graph_target *target, exo_status status, const char *fmt, va_list ap) {
    char msg[768];
    vsnprintf(msg, sizeof msg, fmt, ap);
    return target->host->set_error(target->host->host_ctx, status, 0, "%s %s", target->name, msg);
}

exo_status graph_fail(const graph_target *target, exo_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    exo_status st = graph_failv(target, status, fmt, ap);
    va_end(ap);
    return st;
}
