/* The fake Level Zero driver itself, through Debian's real loader (linked here: this test is a
 * Level Zero application): contexts, USM memory, command lists and queues, fences, modules
 * built from real SPIR-V (driver_test_kernels.cl, compiled at build time) and executed on
 * PoCL, and each injectable failure. Each case runs in its own process (check's fork mode). */
#include <check.h>
#include <level_zero/ze_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"

#define ZE_OK(call)                                                                            \
    do {                                                                                       \
        ze_result_t r_ = (call);                                                               \
        ck_assert_msg(r_ == ZE_RESULT_SUCCESS, "%s = 0x%08x", #call, (unsigned)r_);            \
    } while (0)

static ze_driver_handle_t driver;
static ze_device_handle_t devices[8];
static uint32_t n_devices;
static ze_context_handle_t context;

static void start(void) {
    setenv("ZE_ENABLE_ALT_DRIVERS", EXO_ZE_TEST_DRIVER, 0);
    ZE_OK(zeInit(0));
    uint32_t n = 1;
    ZE_OK(zeDriverGet(&n, &driver));
    n_devices = 8;
    ZE_OK(zeDeviceGet(driver, &n_devices, devices));
    ze_context_desc_t cd = {.stype = ZE_STRUCTURE_TYPE_CONTEXT_DESC};
    ZE_OK(zeContextCreate(driver, &cd, &context));
}

static void *device_alloc(size_t size, uint32_t device, ze_result_t *result) {
    ze_device_mem_alloc_desc_t d = {.stype = ZE_STRUCTURE_TYPE_DEVICE_MEM_ALLOC_DESC};
    void *p = NULL;
    *result = zeMemAllocDevice(context, &d, size, 64, devices[device], &p);
    return p;
}

static ze_command_list_handle_t immediate_list(uint32_t device) {
    ze_command_queue_desc_t qd = {.stype = ZE_STRUCTURE_TYPE_COMMAND_QUEUE_DESC,
                                  .mode = ZE_COMMAND_QUEUE_MODE_SYNCHRONOUS};
    ze_command_list_handle_t list = NULL;
    ZE_OK(zeCommandListCreateImmediate(context, devices[device], &qd, &list));
    return list;
}

static unsigned char *read_spirv(size_t *size) {
    FILE *f = fopen(EXO_DRIVER_TEST_SPV, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", EXO_DRIVER_TEST_SPV);
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *data = malloc(*size);
    ck_assert_uint_eq(fread(data, 1, *size, f), *size);
    fclose(f);
    return data;
}

static ze_result_t build(uint32_t device, const void *il, size_t size, ze_module_handle_t *module, char *log,
                         size_t log_size) {
    ze_module_desc_t md = {.stype = ZE_STRUCTURE_TYPE_MODULE_DESC, .format = ZE_MODULE_FORMAT_IL_SPIRV,
                           .inputSize = size, .pInputModule = il, .pBuildFlags = ""};
    ze_module_build_log_handle_t bl = NULL;
    ze_result_t r = zeModuleCreate(context, devices[device], &md, module, &bl);
    ck_assert_ptr_nonnull(bl);
    ZE_OK(zeModuleBuildLogGetString(bl, &log_size, log));
    ZE_OK(zeModuleBuildLogDestroy(bl));
    return r;
}

static ze_module_handle_t build_test_module(uint32_t device) {
    size_t size;
    unsigned char *spv = read_spirv(&size);
    ze_module_handle_t module = NULL;
    char log[4096];
    ze_result_t r = build(device, spv, size, &module, log, sizeof log);
    free(spv);
    ck_assert_msg(r == ZE_RESULT_SUCCESS, "zeModuleCreate = 0x%08x: %s", (unsigned)r, log);
    return module;
}

static ze_kernel_handle_t kernel(ze_module_handle_t module, const char *name) {
    ze_kernel_desc_t kd = {.stype = ZE_STRUCTURE_TYPE_KERNEL_DESC, .pKernelName = name};
    ze_kernel_handle_t k = NULL;
    ZE_OK(zeKernelCreate(module, &kd, &k));
    return k;
}

/* y[off..] += a * x over n elements, launched on `list`. */
static void append_axpy(ze_command_list_handle_t list, ze_kernel_handle_t k, float *y, uint32_t y_off, float *x,
                        float a, uint32_t n) {
    uint32_t zero = 0;
    ZE_OK(zeKernelSetArgumentValue(k, 0, sizeof y, &y));
    ZE_OK(zeKernelSetArgumentValue(k, 1, sizeof y_off, &y_off));
    ZE_OK(zeKernelSetArgumentValue(k, 2, sizeof x, &x));
    ZE_OK(zeKernelSetArgumentValue(k, 3, sizeof zero, &zero));
    ZE_OK(zeKernelSetArgumentValue(k, 4, sizeof a, &a));
    ZE_OK(zeKernelSetArgumentValue(k, 5, sizeof n, &n));
    ZE_OK(zeKernelSetGroupSize(k, 32, 1, 1));
    ze_group_count_t groups = {(n + 31) / 32, 1, 1};
    ZE_OK(zeCommandListAppendLaunchKernel(list, k, &groups, NULL, 0, NULL));
}

START_TEST(kernels_run_on_an_immediate_list) {
    start();
    ck_assert_uint_eq(n_devices, 2);
    ze_module_handle_t module = build_test_module(0);
    ze_kernel_handle_t k = kernel(module, "td_axpy");
    ze_result_t r;
    enum { N = 1000 };
    float *x = device_alloc(N * sizeof(float), 0, &r);
    ZE_OK(r);
    float *y = device_alloc((N + 8) * sizeof(float), 0, &r);
    ZE_OK(r);
    float hx[N], hy[N + 8], out[N + 8];
    for (int i = 0; i < N; i++) hx[i] = (float)i;
    for (int i = 0; i < N + 8; i++) hy[i] = 1.0f;
    ze_command_list_handle_t list = immediate_list(0);
    ZE_OK(zeCommandListAppendMemoryCopy(list, x, hx, sizeof hx, NULL, 0, NULL));
    ZE_OK(zeCommandListAppendMemoryCopy(list, y, hy, sizeof hy, NULL, 0, NULL));
    append_axpy(list, k, y, 8, x, 0.5f, N);
    ZE_OK(zeCommandListAppendMemoryCopy(list, out, y, sizeof out, NULL, 0, NULL));
    for (int i = 0; i < 8; i++) ck_assert_float_eq(out[i], 1.0f);
    for (int i = 0; i < N; i++) ck_assert_float_eq(out[8 + i], 1.0f + 0.5f * (float)i);
    ZE_OK(zeCommandListDestroy(list));
    ZE_OK(zeKernelDestroy(k));
    ZE_OK(zeModuleDestroy(module));
    ZE_OK(zeMemFree(context, x));
    ZE_OK(zeMemFree(context, y));
    ZE_OK(zeContextDestroy(context));
}
END_TEST

START_TEST(regular_lists_replay_with_captured_arguments) {
    start();
    ze_module_handle_t module = build_test_module(1);
    ze_kernel_handle_t k = kernel(module, "td_axpy");
    ze_result_t r;
    float *x = device_alloc(64 * sizeof(float), 1, &r);
    ZE_OK(r);
    float *y = device_alloc(64 * sizeof(float), 1, &r);
    ZE_OK(r);
    float zero = 0, one = 1;
    ze_command_list_handle_t imm = immediate_list(1);
    ZE_OK(zeCommandListAppendMemoryFill(imm, y, &zero, sizeof zero, 64 * sizeof(float), NULL, 0, NULL));
    ZE_OK(zeCommandListAppendMemoryFill(imm, x, &one, sizeof one, 64 * sizeof(float), NULL, 0, NULL));

    ze_command_queue_desc_t qd = {.stype = ZE_STRUCTURE_TYPE_COMMAND_QUEUE_DESC};
    ze_command_queue_handle_t queue;
    ZE_OK(zeCommandQueueCreate(context, devices[1], &qd, &queue));
    ze_command_list_desc_t ld = {.stype = ZE_STRUCTURE_TYPE_COMMAND_LIST_DESC};
    ze_command_list_handle_t list;
    ZE_OK(zeCommandListCreate(context, devices[1], &ld, &list));
    append_axpy(list, k, y, 0, x, 2.0f, 64);
    /* Changing the kernel's arguments after the append must not change the recorded launch. */
    float other = 100.0f;
    ZE_OK(zeKernelSetArgumentValue(k, 4, sizeof other, &other));
    ZE_OK(zeCommandListClose(list));
    ze_fence_desc_t fd = {.stype = ZE_STRUCTURE_TYPE_FENCE_DESC};
    ze_fence_handle_t fence;
    ZE_OK(zeFenceCreate(queue, &fd, &fence));
    ck_assert_int_eq(zeFenceQueryStatus(fence), ZE_RESULT_NOT_READY);
    for (int step = 0; step < 3; step++) {
        ZE_OK(zeCommandQueueExecuteCommandLists(queue, 1, &list, fence));
        ZE_OK(zeFenceHostSynchronize(fence, UINT64_MAX));
        ZE_OK(zeFenceReset(fence));
    }
    float out[64];
    ZE_OK(zeCommandListAppendMemoryCopy(imm, out, y, sizeof out, NULL, 0, NULL));
    for (int i = 0; i < 64; i++) ck_assert_float_eq(out[i], 6.0f);
    ZE_OK(zeFenceDestroy(fence));
    ZE_OK(zeCommandListDestroy(list));
    ZE_OK(zeCommandListDestroy(imm));
    ZE_OK(zeCommandQueueDestroy(queue));
    ZE_OK(zeKernelDestroy(k));
    ZE_OK(zeModuleDestroy(module));
    ZE_OK(zeMemFree(context, x));
    ZE_OK(zeMemFree(context, y));
    /* Everything released: the context may go. */
    ZE_OK(zeContextDestroy(context));
}
END_TEST

START_TEST(local_memory_and_barriers_work) {
    start();
    ze_module_handle_t module = build_test_module(0);
    ze_kernel_handle_t k = kernel(module, "td_group_sum");
    ze_result_t r;
    float *x = device_alloc(256 * sizeof(float), 0, &r);
    float *sums = device_alloc(4 * sizeof(float), 0, &r);
    float hx[256], out[4];
    for (int i = 0; i < 256; i++) hx[i] = (float)(i / 64 + 1);
    ze_command_list_handle_t list = immediate_list(0);
    ZE_OK(zeCommandListAppendMemoryCopy(list, x, hx, sizeof hx, NULL, 0, NULL));
    ZE_OK(zeKernelSetArgumentValue(k, 0, sizeof x, &x));
    ZE_OK(zeKernelSetArgumentValue(k, 1, sizeof sums, &sums));
    ZE_OK(zeKernelSetArgumentValue(k, 2, 64 * sizeof(float), NULL));
    ZE_OK(zeKernelSetGroupSize(k, 64, 1, 1));
    ze_group_count_t groups = {4, 1, 1};
    ZE_OK(zeCommandListAppendLaunchKernel(list, k, &groups, NULL, 0, NULL));
    ZE_OK(zeCommandListAppendMemoryCopy(list, out, sums, sizeof out, NULL, 0, NULL));
    for (int g = 0; g < 4; g++) ck_assert_float_eq(out[g], 64.0f * (float)(g + 1));
    ZE_OK(zeCommandListDestroy(list));
    ZE_OK(zeKernelDestroy(k));
    ZE_OK(zeModuleDestroy(module));
    ZE_OK(zeMemFree(context, x));
    ZE_OK(zeMemFree(context, sums));
    ZE_OK(zeContextDestroy(context));
}
END_TEST

START_TEST(a_pointer_outside_usm_is_refused) {
    start();
    ze_module_handle_t module = build_test_module(0);
    ze_kernel_handle_t k = kernel(module, "td_axpy");
    float host[4];
    float *p = host;
    ck_assert_int_eq(zeKernelSetArgumentValue(k, 0, sizeof p, &p), ZE_RESULT_ERROR_INVALID_ARGUMENT);
    ck_assert_int_eq(zeKernelSetArgumentValue(k, 9, sizeof p, &p), ZE_RESULT_ERROR_INVALID_KERNEL_ARGUMENT_INDEX);
    ze_kernel_desc_t kd = {.stype = ZE_STRUCTURE_TYPE_KERNEL_DESC, .pKernelName = "no_such_kernel"};
    ze_kernel_handle_t missing = NULL;
    ck_assert_int_eq(zeKernelCreate(module, &kd, &missing), ZE_RESULT_ERROR_INVALID_KERNEL_NAME);
    /* A context still owning objects cannot be destroyed. */
    ck_assert_int_eq(zeContextDestroy(context), ZE_RESULT_ERROR_HANDLE_OBJECT_IN_USE);
    ZE_OK(zeKernelDestroy(k));
    ZE_OK(zeModuleDestroy(module));
    ZE_OK(zeContextDestroy(context));
}
END_TEST

START_TEST(injected_module_build_failure_has_a_log) {
    setenv("EXO_ZE_TEST_FAIL", "module_build", 1);
    start();
    size_t size;
    unsigned char *spv = read_spirv(&size);
    ze_module_handle_t module = NULL;
    char log[4096];
    ck_assert_int_eq(build(0, spv, size, &module, log, sizeof log), ZE_RESULT_ERROR_MODULE_BUILD_FAILURE);
    ck_assert_ptr_null(module);
    ck_assert_ptr_nonnull(strstr(log, "injected failure"));
    free(spv);
    ZE_OK(zeContextDestroy(context));
}
END_TEST

START_TEST(malformed_spirv_fails_with_the_translator_log) {
    start();
    uint32_t words[16] = {0x07230203u, 0x00010400u, 0, 99, 0, 0xdeadbeefu};
    ze_module_handle_t module = NULL;
    char log[4096];
    ck_assert_int_eq(build(0, words, sizeof words, &module, log, sizeof log), ZE_RESULT_ERROR_MODULE_BUILD_FAILURE);
    ck_assert_msg(strstr(log, "rejected the SPIR-V") != NULL, "log: %s", log);
    uint32_t junk[8] = {1, 2, 3};
    ck_assert_int_eq(build(0, junk, sizeof junk, &module, log, sizeof log), ZE_RESULT_ERROR_INVALID_ARGUMENT);
    ZE_OK(zeContextDestroy(context));
}
END_TEST

START_TEST(allocations_fail_after_the_byte_budget) {
    setenv("EXO_ZE_TEST_ALLOC_FAIL_AFTER_BYTES", "1000", 1);
    start();
    ze_result_t r;
    void *a = device_alloc(600, 0, &r);
    ZE_OK(r);
    ck_assert_ptr_null(device_alloc(600, 0, &r));
    ck_assert_int_eq(r, ZE_RESULT_ERROR_OUT_OF_DEVICE_MEMORY);
    void *b = device_alloc(600, 1, &r); /* the budget is per device */
    ZE_OK(r);
    ZE_OK(zeMemFree(context, a));
    a = device_alloc(600, 0, &r); /* freed bytes come back */
    ZE_OK(r);
    ZE_OK(zeMemFree(context, a));
    ZE_OK(zeMemFree(context, b));
    ZE_OK(zeContextDestroy(context));
}
END_TEST

START_TEST(the_nth_allocation_fails) {
    setenv("EXO_ZE_TEST_ALLOC_FAIL_AT", "2", 1);
    start();
    ze_result_t r;
    void *a = device_alloc(16, 0, &r);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_null(device_alloc(16, 0, &r));
    ck_assert_int_eq(r, ZE_RESULT_ERROR_OUT_OF_DEVICE_MEMORY);
    void *b = device_alloc(16, 0, &r);
    ck_assert_ptr_nonnull(b);
    ZE_OK(zeMemFree(context, a));
    ZE_OK(zeMemFree(context, b));
    ZE_OK(zeContextDestroy(context));
}
END_TEST

START_TEST(sizes_above_max_alloc_need_relaxed_limits) {
    setenv("EXO_ZE_TEST_MAX_ALLOC", "4096", 1);
    start();
    ze_device_properties_t props = {.stype = ZE_STRUCTURE_TYPE_DEVICE_PROPERTIES};
    ZE_OK(zeDeviceGetProperties(devices[0], &props));
    ck_assert_uint_eq(props.maxMemAllocSize, 4096);
    ze_result_t r;
    ck_assert_ptr_null(device_alloc(8192, 0, &r));
    ck_assert_int_eq(r, ZE_RESULT_ERROR_UNSUPPORTED_SIZE);
    uint32_t n = 0;
    ZE_OK(zeDriverGetExtensionProperties(driver, &n, NULL));
    ck_assert_uint_eq(n, 1);
    ze_driver_extension_properties_t ext;
    ZE_OK(zeDriverGetExtensionProperties(driver, &n, &ext));
    ck_assert_str_eq(ext.name, ZE_RELAXED_ALLOCATION_LIMITS_EXP_NAME);
    ze_relaxed_allocation_limits_exp_desc_t relaxed = {.stype = ZE_STRUCTURE_TYPE_RELAXED_ALLOCATION_LIMITS_EXP_DESC,
                                                       .flags = ZE_RELAXED_ALLOCATION_LIMITS_EXP_FLAG_MAX_SIZE};
    ze_device_mem_alloc_desc_t d = {.stype = ZE_STRUCTURE_TYPE_DEVICE_MEM_ALLOC_DESC, .pNext = &relaxed};
    void *p = NULL;
    ZE_OK(zeMemAllocDevice(context, &d, 8192, 64, devices[0], &p));
    ZE_OK(zeMemFree(context, p));
    ZE_OK(zeContextDestroy(context));
}
END_TEST

START_TEST(device_lost_at_the_nth_submit_sticks) {
    setenv("EXO_ZE_TEST_DEVICE_LOST_AT_SUBMIT", "2", 1);
    start();
    ze_result_t r;
    float *y = device_alloc(64, 0, &r);
    float zero = 0;
    ze_command_list_handle_t list = immediate_list(0);
    ZE_OK(zeCommandListAppendMemoryFill(list, y, &zero, 4, 64, NULL, 0, NULL));
    ck_assert_int_eq(zeCommandListAppendMemoryFill(list, y, &zero, 4, 64, NULL, 0, NULL), ZE_RESULT_ERROR_DEVICE_LOST);
    ck_assert_int_eq(zeCommandListAppendMemoryFill(list, y, &zero, 4, 64, NULL, 0, NULL), ZE_RESULT_ERROR_DEVICE_LOST);
    ck_assert_int_eq(zeContextGetStatus(context), ZE_RESULT_ERROR_DEVICE_LOST);
    ck_assert_ptr_null(device_alloc(64, 0, &r));
    ck_assert_int_eq(r, ZE_RESULT_ERROR_DEVICE_LOST);
    /* The other device still works. */
    void *other = device_alloc(64, 1, &r);
    ck_assert_ptr_nonnull(other);
    ZE_OK(zeCommandListDestroy(list));
    ZE_OK(zeMemFree(context, other));
    ZE_OK(zeMemFree(context, y));
    ZE_OK(zeContextDestroy(context));
}
END_TEST

int main(void) {
    Suite *s = suite_create("ze_test_driver");
    TCase *tc = tcase_create("driver");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, kernels_run_on_an_immediate_list);
    tcase_add_test(tc, regular_lists_replay_with_captured_arguments);
    tcase_add_test(tc, local_memory_and_barriers_work);
    tcase_add_test(tc, a_pointer_outside_usm_is_refused);
    tcase_add_test(tc, injected_module_build_failure_has_a_log);
    tcase_add_test(tc, malformed_spirv_fails_with_the_translator_log);
    tcase_add_test(tc, allocations_fail_after_the_byte_budget);
    tcase_add_test(tc, the_nth_allocation_fails);
    tcase_add_test(tc, sizes_above_max_alloc_need_relaxed_limits);
    tcase_add_test(tc, device_lost_at_the_nth_submit_sticks);
    suite_add_tcase(s, tc);
    return exo_check_run(s, CK_FORK); /* the loader and zeInit are per process */
}
