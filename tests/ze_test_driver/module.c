/* module.c — zeModuleCreate from SPIR-V: translate (spirv_translate.c), build on PoCL
 * (ocl_runtime.c), and hand back a build log either way, as Intel's driver does. Native
 * binaries are refused: this device has no ISA of its own. */
#include "ze_test_driver.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_uint_fast64_t module_builds;

uint64_t exo_ze_test_driver_module_builds(void) { return atomic_load(&module_builds); }

ze_module_build_log_handle_t td_build_log_new(char *text) {
    ze_module_build_log_handle_t log = calloc(1, sizeof *log);
    if (!log) {
        free(text);
        return NULL;
    }
    log->magic = TD_LOG_MAGIC;
    log->text = text ? text : strdup("");
    return log;
}

static bool is_spirv(const void *data, size_t size) {
    uint32_t magic = 0;
    if (size < 20 || size % 4) return false;
    memcpy(&magic, data, 4);
    return magic == 0x07230203u;
}

ze_result_t ZE_APICALL td_zeModuleCreate(ze_context_handle_t context, ze_device_handle_t device,
                                         const ze_module_desc_t *desc, ze_module_handle_t *out,
                                         ze_module_build_log_handle_t *log_out) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!td_context_valid(context) || !td_device_valid(device)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    if (!desc || !out || !desc->pInputModule) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    if (desc->stype != ZE_STRUCTURE_TYPE_MODULE_DESC) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    if (log_out) *log_out = NULL;
    *out = NULL;
    if (device->lost) return ZE_RESULT_ERROR_DEVICE_LOST;
    char *log = NULL;
    r = ZE_RESULT_SUCCESS;
    unsigned char *bc = NULL;
    size_t bc_size = 0;
    void *program = NULL;
    if (desc->format != ZE_MODULE_FORMAT_IL_SPIRV) {
        log = strdup("exo-ze-test-driver: only ZE_MODULE_FORMAT_IL_SPIRV modules are supported");
        r = ZE_RESULT_ERROR_INVALID_NATIVE_BINARY;
    } else if (!is_spirv(desc->pInputModule, desc->inputSize)) {
        log = strdup("exo-ze-test-driver: the input is not a SPIR-V module (bad magic or size)");
        r = ZE_RESULT_ERROR_INVALID_ARGUMENT;
    } else if (td_global.config.fail_module_build) {
        log = strdup("exo-ze-test-driver: injected failure (EXO_ZE_TEST_FAIL=module_build): "
                     "error: backend compiler failed to build the module");
        r = ZE_RESULT_ERROR_MODULE_BUILD_FAILURE;
    } else if (!td_spirv_to_bitcode(desc->pInputModule, desc->inputSize, &bc, &bc_size, &log)) {
        r = ZE_RESULT_ERROR_MODULE_BUILD_FAILURE;
    } else {
        free(log);
        log = NULL;
        pthread_mutex_lock(&td_global.lock);
        program = td_ocl_program_from_spir(bc, bc_size, &log);
        pthread_mutex_unlock(&td_global.lock);
        free(bc);
        if (!program) r = ZE_RESULT_ERROR_MODULE_BUILD_FAILURE;
    }
    if (r == ZE_RESULT_SUCCESS) {
        ze_module_handle_t m = calloc(1, sizeof *m);
        if (!m) {
            td_ocl_program_release(program);
            free(log);
            return ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY;
        }
        m->magic = TD_MODULE_MAGIC;
        m->context = context;
        m->device = device;
        m->program = program;
        pthread_mutex_lock(&td_global.lock);
        context->n_live_objects++;
        pthread_mutex_unlock(&td_global.lock);
        atomic_fetch_add(&module_builds, 1);
        *out = m;
    }
    if (log_out)
        *log_out = td_build_log_new(log);
    else
        free(log);
    return r;
}

ze_result_t ZE_APICALL td_zeModuleDestroy(ze_module_handle_t module) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!module || module->magic != TD_MODULE_MAGIC) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    pthread_mutex_lock(&td_global.lock);
    td_ocl_program_release(module->program);
    module->context->n_live_objects--;
    pthread_mutex_unlock(&td_global.lock);
    module->magic = 0;
    free(module);
    return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL td_zeModuleBuildLogGetString(ze_module_build_log_handle_t log, size_t *size, char *text) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!log || log->magic != TD_LOG_MAGIC) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    if (!size) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    size_t need = strlen(log->text) + 1;
    if (*size == 0 || !text) {
        *size = need;
        return ZE_RESULT_SUCCESS;
    }
    size_t n = *size < need ? *size : need;
    memcpy(text, log->text, n);
    text[n - 1] = '\0';
    *size = n;
    return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL td_zeModuleBuildLogDestroy(ze_module_build_log_handle_t log) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!log || log->magic != TD_LOG_MAGIC) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    log->magic = 0;
    free(log->text);
    free(log);
    return ZE_RESULT_SUCCESS;
}
