#include "error.h"

#include "exo.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local exo_error_slot thread_error;

exo_status exo_errorf(exo_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(thread_error.message, sizeof thread_error.message, fmt, ap);
    va_end(ap);
    thread_error.status = status;
    thread_error.vendor_code = 0;
    return status;
}

exo_status exo_errorf_vendor(exo_status status, int64_t vendor_code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(thread_error.message, sizeof thread_error.message, fmt, ap);
    va_end(ap);
    thread_error.status = status;
    thread_error.vendor_code = vendor_code;
    return status;
}

int64_t exo_error_vendor_code(void) { return thread_error.vendor_code; }

exo_status exo_error_wrap(exo_status status, const char *fmt, ...) {
    char prefix[EXO_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[EXO_ERROR_MAX];
    memcpy(old, thread_error.message, sizeof old);
    if (old[0])
        snprintf(thread_error.message, sizeof thread_error.message, "%s: %s", prefix, old);
    else
        snprintf(thread_error.message, sizeof thread_error.message, "%s: %s", prefix, exo_status_str(status));
    thread_error.status = status;
    return status;
}

void exo_error_clear(void) {
    thread_error.status = EXO_OK;
    thread_error.vendor_code = 0;
    thread_error.message[0] = '\0';
}

const char *exo_error_message(void) { return thread_error.message; }

exo_status exo_error_keep(exo_error_slot *slot, exo_status status) {
    /* A failure that recorded no detail still replaces the last error (libuv / SQLite: the last
     * error is the last failing call's), with the status's own words rather than nothing. */
    if (status < 0 && !thread_error.message[0]) {
        snprintf(thread_error.message, sizeof thread_error.message, "%s: %s", exo_status_name(status),
                 exo_status_str(status));
        thread_error.status = status;
    }
    if (slot && status < 0) {
        slot->status = status;
        slot->vendor_code = thread_error.vendor_code;
        memcpy(slot->message, thread_error.message, sizeof slot->message);
    }
    return status;
}
