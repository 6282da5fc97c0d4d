/* config.c — the fake driver's knobs, read from EXO_ZE_TEST_* at zeInit (see ze_test_driver.h). */
#include "ze_test_driver.h"

#include <stdlib.h>
#include <string.h>

static bool env_flag(const char *name) {
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

static double env_double(const char *name, double fallback, double lo, double hi) {
    const char *v = getenv(name);
    if (!v || !*v) return fallback;
    char *end = NULL;
    double d = strtod(v, &end);
    if (end == v || *end != '\0' || !(d >= lo && d <= hi)) return fallback;
    return d;
}

static uint64_t env_u64(const char *name, uint64_t fallback) {
    const char *v = getenv(name);
    if (!v || !*v) return fallback;
    char *end = NULL;
    unsigned long long n = strtoull(v, &end, 0);
    if (end == v || *end != '\0') return fallback;
    return (uint64_t)n;
}

/* EXO_ZE_TEST_FAIL holds comma-separated failure names. */
static bool fail_requested(const char *list, const char *what) {
    if (!list) return false;
    size_t n = strlen(what);
    for (const char *p = list; (p = strstr(p, what)) != NULL; p += n) {
        bool starts = p == list || p[-1] == ',';
        bool ends = p[n] == '\0' || p[n] == ',';
        if (starts && ends) return true;
    }
    return false;
}

void td_config_read(td_config *out) {
    memset(out, 0, sizeof *out);
    out->n_devices = (uint32_t)env_double("EXO_ZE_TEST_DEVICES", 2, 0, TD_MAX_DEVICES);
    const char *fail = getenv("EXO_ZE_TEST_FAIL");
    out->fail_init = fail_requested(fail, "init");
    out->fail_module_build = fail_requested(fail, "module_build");
    out->alloc_fail_after_bytes = env_u64("EXO_ZE_TEST_ALLOC_FAIL_AFTER_BYTES", 0);
    out->alloc_fail_at = env_u64("EXO_ZE_TEST_ALLOC_FAIL_AT", 0);
    out->device_lost_at_submit = env_u64("EXO_ZE_TEST_DEVICE_LOST_AT_SUBMIT", 0);
    out->max_alloc = env_u64("EXO_ZE_TEST_MAX_ALLOC", 0);
    out->no_relaxed_alloc = env_flag("EXO_ZE_TEST_NO_RELAXED_ALLOC");
    const char *peer = getenv("EXO_ZE_TEST_PEER");
    out->peer = peer && strcmp(peer, "none") == 0 ? TD_PEER_NONE : peer && strcmp(peer, "fail") == 0 ? TD_PEER_FAIL
                                                                                                   : TD_PEER_ON;
    out->no_sysman = env_flag("EXO_ZE_TEST_NO_SYSMAN");
    out->integrated = env_flag("EXO_ZE_TEST_INTEGRATED");
    out->utilization = env_double("EXO_ZE_TEST_UTILIZATION", 0.375, 0.0, 1.0);
    out->power_w = env_double("EXO_ZE_TEST_POWER_W", 120.0, 0.0, 10000.0);
}
