/* init.c — zeInit: reads the configuration, fails when asked to, and builds the devices. */
#include "ze_test_driver.h"

#include <stdlib.h>
#include <string.h>

ze_result_t ZE_APICALL td_zeInit(ze_init_flags_t flags) {
    td_count_init_call();
    if (flags & ~(ze_init_flags_t)(ZE_INIT_FLAG_GPU_ONLY | ZE_INIT_FLAG_VPU_ONLY))
        return ZE_RESULT_ERROR_INVALID_ENUMERATION;
    if (td_global.initialized) return ZE_RESULT_SUCCESS; /* zeInit is idempotent */
    if (td_global.init_attempted) {
        /* A second zeInit after a failure is itself a call the plugin must not make. */
        (void)td_enter();
        return ZE_RESULT_ERROR_UNINITIALIZED;
    }
    td_global.init_attempted = true;
    td_config_read(&td_global.config);
    if (td_global.config.fail_init) return ZE_RESULT_ERROR_UNINITIALIZED;
    if (flags & ZE_INIT_FLAG_VPU_ONLY) return ZE_RESULT_ERROR_UNINITIALIZED; /* GPUs only here */
    const char *sysman = getenv("ZES_ENABLE_SYSMAN");
    td_global.sysman_enabled = sysman && strcmp(sysman, "1") == 0 && !td_global.config.no_sysman;
    td_global.start_us = td_now_us();
    td_state_build();
    td_global.initialized = true;
    return ZE_RESULT_SUCCESS;
}
