/* Error detail. Internal code records the detail of a failure in a thread-local slot with
 * exo_errorf(); each public API entry point then copies it into the slot of the object the
 * caller holds (runtime, model, session), so detail is per thread and per object, never one
 * process-global string. */
#ifndef EXO_BASE_ERROR_H
#define EXO_BASE_ERROR_H

#include "exo_plugin.h"

#define EXO_ERROR_MAX 1024

typedef struct exo_error_slot {
    exo_status status;
    int64_t vendor_code; /* the ze_result_t / cl_int / dnnl_status_t behind it; 0 when none */
    char message[EXO_ERROR_MAX];
} exo_error_slot;

/* Records `status` and a printf-style message as this thread's last error; returns status. */
exo_status exo_errorf(exo_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* As exo_errorf, keeping the vendor code a plugin gave host->set_error. */
exo_status exo_errorf_vendor(exo_status status, int64_t vendor_code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The vendor code of this thread's last error (0 when none); exo_error_wrap keeps it. */
int64_t exo_error_vendor_code(void);

/* Prefixes this thread's last error message with "prefix: " (adds context on the way up); with
 * no message recorded, the status's own text follows the prefix. Plugins' host->set_error lands
 * in the same thread-local slot, so "clear, call the plugin, wrap on failure" gives the caller
 * the plugin's detail without sharing a buffer between threads. */
exo_status exo_error_wrap(exo_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clears this thread's last error. */
void exo_error_clear(void);

/* This thread's last error message ("" when none). */
const char *exo_error_message(void);

/* Copies this thread's last error into an object's slot (when status is an error) and returns
 * status unchanged: `return exo_error_keep(&obj->error, st);`. A failure with no message recorded
 * since the entry point's exo_error_clear gets "EXO_ERR_X: <status text>", so the slot never
 * keeps an earlier call's detail. Every public entry point that can fail on an object ends its
 * failing paths here (objects passed const included: the slot is their one mutable part). */
exo_status exo_error_keep(exo_error_slot *slot, exo_status status);

#endif
