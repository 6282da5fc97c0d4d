/* The core's one clock for durations and deadlines: CLOCK_MONOTONIC, which wall-clock changes
 * (NTP steps, settimeofday) never move, so a measured interval is never negative and a deadline
 * never jumps. Plugins read the same clock through host->now_ns (core/registry/plugin_load.c). */
#ifndef EXO_BASE_CLOCK_H
#define EXO_BASE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Nanoseconds since an unspecified start (boot, on Linux): only differences mean anything. */
static inline uint64_t exo_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The same clock in whole milliseconds, the unit poll() timeouts take. */
static inline uint64_t exo_now_ms(void) { return exo_now_ns() / 1000000u; }

#endif
