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

void td_config_read(td_config *out) {
    memset(out, 0, sizeof *out);
    out->n_devices = (uint32_t)env_double("EXO_ZE_TEST_DEVICES", 2, 0, TD_MAX_DEVICES);
    const char *fail = getenv("EXO_ZE_TEST_FAIL");
    out->fail_init = fail && strcmp(fail, "init") == 0;
    out->no_sysman = env_flag("EXO_ZE_TEST_NO_SYSMAN");
    out->integrated = env_flag("EXO_ZE_TEST_INTEGRATED");
    out->utilization = env_double("EXO_ZE_TEST_UTILIZATION", 0.375, 0.0, 1.0);
    out->power_w = env_double("EXO_ZE_TEST_POWER_W", 120.0, 0.0, 10000.0);
}
