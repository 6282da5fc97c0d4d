/* state.c — the driver object, its devices (what a real driver learns from the kernel), the
 * init state every entry point checks, and the test-only counters. */
#include "ze_test_driver.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

td_state td_global = {.lock = PTHREAD_MUTEX_INITIALIZER};

static atomic_uint_fast64_t calls_after_failed_init;
static atomic_uint_fast64_t init_calls;

uint64_t exo_ze_test_driver_calls_after_failed_init(void) { return atomic_load(&calls_after_failed_init); }
uint64_t exo_ze_test_driver_init_calls(void) { return atomic_load(&init_calls); }

void td_count_init_call(void) { atomic_fetch_add(&init_calls, 1); }

ze_result_t td_enter(void) {
    if (td_global.initialized) return ZE_RESULT_SUCCESS;
    if (td_global.init_attempted) atomic_fetch_add(&calls_after_failed_init, 1);
    return ZE_RESULT_ERROR_UNINITIALIZED;
}

ze_result_t td_enter_sysman(void) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (td_global.config.no_sysman) return ZE_RESULT_ERROR_UNSUPPORTED_FEATURE;
    /* Intel's driver: Sysman on a ze device handle needs ZES_ENABLE_SYSMAN=1 before zeInit. */
    if (!td_global.sysman_enabled) return ZE_RESULT_ERROR_UNINITIALIZED;
    return ZE_RESULT_SUCCESS;
}

bool td_device_valid(ze_device_handle_t device) {
    if (!device || device->magic != TD_DEVICE_MAGIC) return false;
    return device >= td_global.driver.devices && device < td_global.driver.devices + td_global.driver.n_devices;
}

uint64_t td_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

ze_result_t td_enumerate(uint32_t available, uint32_t *count, void **out, void *const *items) {
    if (!count) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    if (*count == 0 || !out) {
        *count = available;
        return ZE_RESULT_SUCCESS;
    }
    uint32_t n = *count < available ? *count : available;
    for (uint32_t i = 0; i < n; i++) out[i] = items[i];
    *count = n;
    return ZE_RESULT_SUCCESS;
}

#define GIB (1024ull * 1024ull * 1024ull)

/* A discrete Arc A770 16 GB as Intel's driver describes it (DG2-512, Xe-HPG). */
static void describe_arc_a770(struct _ze_device_handle_t *d, uint32_t i) {
    ze_device_properties_t *p = &d->props;
    p->type = ZE_DEVICE_TYPE_GPU;
    p->vendorId = 0x8086;
    p->deviceId = 0x56a0;
    p->flags = 0;
    p->coreClockRate = 2400;
    p->maxMemAllocSize = 4 * GIB - 8192; /* Intel caps single allocations just under 4 GiB */
    p->maxHardwareContexts = 65536;
    p->numThreadsPerEU = 8;
    p->physicalEUSimdWidth = 8;
    p->numSlices = 8;
    p->numSubslicesPerSlice = 4;
    p->numEUsPerSubslice = 16; /* 8 x 4 x 16 = 512 EUs */
    p->timerResolution = 83;
    p->timestampValidBits = 64;
    p->kernelTimestampValidBits = 32;
    snprintf(p->name, sizeof p->name, "Intel(R) Arc(TM) A770 Graphics");
    d->memory.totalSize = 16 * GIB;
    d->memory.maxClockRate = 2187;
    d->memory.maxBusWidth = 256;
    snprintf(d->memory.name, sizeof d->memory.name, "DDR");
    d->memory_used = GIB + (uint64_t)i * 256 * 1024 * 1024;
    d->max_bandwidth = 560000000000ull; /* 17.5 Gbps GDDR6 x 256 bit */
    d->pci = (zes_pci_address_t){.domain = 0, .bus = 3 + i, .device = 0, .function = 0};
}

/* An integrated Iris Xe (Tiger Lake GT2, 96 EUs) sharing host memory. */
static void describe_iris_xe(struct _ze_device_handle_t *d, uint32_t i) {
    ze_device_properties_t *p = &d->props;
    p->type = ZE_DEVICE_TYPE_GPU;
    p->vendorId = 0x8086;
    p->deviceId = 0x9a49;
    p->flags = ZE_DEVICE_PROPERTY_FLAG_INTEGRATED;
    p->coreClockRate = 1300;
    p->maxMemAllocSize = 4 * GIB - 8192;
    p->maxHardwareContexts = 65536;
    p->numThreadsPerEU = 7;
    p->physicalEUSimdWidth = 8;
    p->numSlices = 1;
    p->numSubslicesPerSlice = 6;
    p->numEUsPerSubslice = 16;
    p->timerResolution = 52;
    p->timestampValidBits = 36;
    p->kernelTimestampValidBits = 32;
    snprintf(p->name, sizeof p->name, "Intel(R) Iris(R) Xe Graphics");
    d->memory.totalSize = 12 * GIB;
    d->memory.maxClockRate = 3200;
    d->memory.maxBusWidth = 128;
    snprintf(d->memory.name, sizeof d->memory.name, "DDR");
    d->memory_used = GIB / 2;
    d->max_bandwidth = 51200000000ull;
    d->pci = (zes_pci_address_t){.domain = 0, .bus = 0, .device = 2 + i, .function = 0};
}

static void build_device(struct _ze_device_handle_t *d, uint32_t i) {
    memset(d, 0, sizeof *d);
    d->magic = TD_DEVICE_MAGIC;
    d->index = i;
    d->props.stype = ZE_STRUCTURE_TYPE_DEVICE_PROPERTIES;
    d->memory.stype = ZE_STRUCTURE_TYPE_DEVICE_MEMORY_PROPERTIES;
    if (td_global.config.integrated)
        describe_iris_xe(d, i);
    else
        describe_arc_a770(d, i);
    /* UUID: vendor, device id, then the PCI location, so every fake GPU has its own. */
    uint8_t *u = d->props.uuid.id;
    u[0] = 0x86; u[1] = 0x80;
    u[2] = (uint8_t)(d->props.deviceId & 0xff); u[3] = (uint8_t)(d->props.deviceId >> 8);
    u[4] = 0x08; u[5] = 0x00; u[6] = 0x00; u[7] = 0x00;
    u[8] = (uint8_t)d->pci.domain; u[9] = (uint8_t)d->pci.bus;
    u[10] = (uint8_t)d->pci.device; u[11] = (uint8_t)d->pci.function;
    u[12] = 0x01; u[13] = 0x00; u[14] = 0x00; u[15] = (uint8_t)(0xe0 + i);

    ze_device_compute_properties_t *c = &d->compute;
    c->stype = ZE_STRUCTURE_TYPE_DEVICE_COMPUTE_PROPERTIES;
    c->maxTotalGroupSize = 1024;
    c->maxGroupSizeX = c->maxGroupSizeY = c->maxGroupSizeZ = 1024;
    c->maxGroupCountX = c->maxGroupCountY = c->maxGroupCountZ = 0xffffffffu;
    c->maxSharedLocalMemory = 65536;
    c->numSubGroupSizes = 3;
    c->subGroupSizes[0] = 8;
    c->subGroupSizes[1] = 16;
    c->subGroupSizes[2] = 32;

    ze_device_module_properties_t *m = &d->module;
    m->stype = ZE_STRUCTURE_TYPE_DEVICE_MODULE_PROPERTIES;
    m->spirvVersionSupported = ZE_MAKE_VERSION(1, 2);
    m->flags = ZE_DEVICE_MODULE_FLAG_FP16 | ZE_DEVICE_MODULE_FLAG_INT64_ATOMICS | ZE_DEVICE_MODULE_FLAG_DP4A;
    m->fp16flags = ZE_DEVICE_FP_FLAG_DENORM | ZE_DEVICE_FP_FLAG_INF_NAN | ZE_DEVICE_FP_FLAG_ROUND_TO_NEAREST |
                   ZE_DEVICE_FP_FLAG_FMA;
    m->fp32flags = m->fp16flags | ZE_DEVICE_FP_FLAG_ROUNDED_DIVIDE_SQRT;
    m->maxArgumentsSize = 2048;
    m->printfBufferSize = 4 * 1024 * 1024;

    d->mem_module.device = d;
    d->engines[TD_ENGINE_ALL] = (struct _zes_engine_handle_t){.device = d, .group = ZES_ENGINE_GROUP_ALL};
    d->engines[TD_ENGINE_COMPUTE] = (struct _zes_engine_handle_t){.device = d, .group = ZES_ENGINE_GROUP_COMPUTE_ALL};
    d->temp_sensor.device = d;
    d->power_domain.device = d;
    d->freq_domain.device = d;
}

void td_state_build(void) {
    struct _ze_driver_handle_t *drv = &td_global.driver;
    bool custom_max_alloc = td_global.config.max_alloc > 0;
    memset(drv, 0, sizeof *drv);
    drv->magic = TD_DRIVER_MAGIC;
    drv->props.stype = ZE_STRUCTURE_TYPE_DRIVER_PROPERTIES;
    /* Intel encodes major.minor.build as major << 24 | minor << 16 | build: "1.3.26241". */
    drv->props.driverVersion = (1u << 24) | (3u << 16) | 26241u;
    memcpy(drv->props.uuid.id, "exo-ze-test-drv", 16);
    drv->n_devices = td_global.config.n_devices;
    for (uint32_t i = 0; i < drv->n_devices; i++) {
        build_device(&drv->devices[i], i);
        if (custom_max_alloc) drv->devices[i].props.maxMemAllocSize = td_global.config.max_alloc;
    }
}
