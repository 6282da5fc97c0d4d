/* probe.c — walks drivers and devices and records what the report needs: properties,
 * compute/module/memory properties, and (through Sysman) the PCI address and free memory.
 * Creates no contexts. A device whose basic properties cannot be read is skipped with a warning;
 * every other missing answer just leaves that field to a fallback. */
#include "l0_internal.h"

#include <stdio.h>
#include <string.h>

static void driver_versions(exo_plugin_ctx *ctx, ze_driver_handle_t driver, char *version, size_t version_size,
                            char *api, size_t api_size) {
    const l0_loader *ze = ctx->ze;
    ze_driver_properties_t props = {.stype = ZE_STRUCTURE_TYPE_DRIVER_PROPERTIES};
    ze_result_t r = ze->zeDriverGetProperties(driver, &props);
    if (r == ZE_RESULT_SUCCESS) {
        /* Intel's runtime packs major.minor.build into 8.8.16 bits ("1.3.26241"). */
        uint32_t v = props.driverVersion;
        snprintf(version, version_size, "%u.%u.%u", v >> 24, (v >> 16) & 0xffu, v & 0xffffu);
    } else {
        snprintf(version, version_size, "unknown");
        l0_log(ctx->host, EXO_LOG_WARN, "zeDriverGetProperties failed: %s (0x%08x)", ze_result_name(r), (unsigned)r);
    }
    ze_api_version_t api_version = 0;
    r = ze->zeDriverGetApiVersion(driver, &api_version);
    if (r == ZE_RESULT_SUCCESS)
        snprintf(api, api_size, "%u.%u", ZE_MAJOR_VERSION(api_version), ZE_MINOR_VERSION(api_version));
    else {
        snprintf(api, api_size, "unknown");
        l0_log(ctx->host, EXO_LOG_WARN, "zeDriverGetApiVersion failed: %s (0x%08x)", ze_result_name(r), (unsigned)r);
    }
}

static void query_memory(exo_plugin_ctx *ctx, l0_device *dev) {
    const l0_loader *ze = ctx->ze;
    uint32_t n = 0;
    ze_result_t r = ze->zeDeviceGetMemoryProperties(dev->handle, &n, NULL);
    if (r == ZE_RESULT_SUCCESS && n > 0) {
        if (n > L0_MAX_SENSORS) n = L0_MAX_SENSORS;
        ze_device_memory_properties_t mem[L0_MAX_SENSORS];
        for (uint32_t i = 0; i < n; i++) mem[i] = (ze_device_memory_properties_t){.stype = ZE_STRUCTURE_TYPE_DEVICE_MEMORY_PROPERTIES};
        r = ze->zeDeviceGetMemoryProperties(dev->handle, &n, mem);
        for (uint32_t i = 0; r == ZE_RESULT_SUCCESS && i < n; i++) dev->memory_total += mem[i].totalSize;
    }
    if (r != ZE_RESULT_SUCCESS)
        l0_log(ctx->host, EXO_LOG_WARN, "%s: zeDeviceGetMemoryProperties failed: %s (0x%08x)", dev->props.name,
               ze_result_name(r), (unsigned)r);
}

/* Sysman answers are optional: UNINITIALIZED (ZES_ENABLE_SYSMAN was not set before zeInit),
 * UNSUPPORTED_FEATURE and INSUFFICIENT_PERMISSIONS only mean "not available here". */
static void sysman_note(exo_plugin_ctx *ctx, const l0_device *dev, const char *call, ze_result_t r) {
    l0_log(ctx->host, l0_result_is_unavailable(r) ? EXO_LOG_DEBUG : EXO_LOG_WARN, "%s: %s: %s (0x%08x)",
           dev->props.name, call, ze_result_name(r), (unsigned)r);
}

static void query_sysman(exo_plugin_ctx *ctx, l0_device *dev) {
    const l0_loader *ze = ctx->ze;
    if (!ze->has_sysman_symbols) return;
    zes_device_handle_t sdev = (zes_device_handle_t)dev->handle; /* same handle with ZES_ENABLE_SYSMAN */
    zes_pci_properties_t pci = {.stype = ZES_STRUCTURE_TYPE_PCI_PROPERTIES};
    ze_result_t r = ze->zesDevicePciGetProperties(sdev, &pci);
    if (r == ZE_RESULT_SUCCESS) {
        dev->have_pci = true;
        dev->pci = pci.address;
    } else {
        sysman_note(ctx, dev, "zesDevicePciGetProperties", r);
        return; /* Sysman is off for this device: the other zes calls would fail the same way */
    }
    uint32_t n = 0;
    r = ze->zesDeviceEnumMemoryModules(sdev, &n, NULL);
    zes_mem_handle_t mem[L0_MAX_SENSORS];
    if (r == ZE_RESULT_SUCCESS && n > 0) {
        if (n > L0_MAX_SENSORS) n = L0_MAX_SENSORS;
        r = ze->zesDeviceEnumMemoryModules(sdev, &n, mem);
    }
    if (r != ZE_RESULT_SUCCESS) {
        sysman_note(ctx, dev, "zesDeviceEnumMemoryModules", r);
        return;
    }
    uint64_t free_total = 0;
    bool all_read = n > 0;
    for (uint32_t i = 0; i < n; i++) {
        zes_mem_state_t state = {.stype = ZES_STRUCTURE_TYPE_MEM_STATE};
        r = ze->zesMemoryGetState(mem[i], &state);
        if (r != ZE_RESULT_SUCCESS) {
            sysman_note(ctx, dev, "zesMemoryGetState", r);
            all_read = false;
            break;
        }
        free_total += state.free;
        if (ze->zesMemoryGetBandwidth) {
            zes_mem_bandwidth_t bw;
            memset(&bw, 0, sizeof bw);
            r = ze->zesMemoryGetBandwidth(mem[i], &bw);
            if (r == ZE_RESULT_SUCCESS)
                dev->sysman_bandwidth += bw.maxBandwidth;
            else
                sysman_note(ctx, dev, "zesMemoryGetBandwidth", r);
        }
    }
    if (all_read) {
        dev->have_memory_free = true;
        dev->memory_free = free_total;
    }
}

/* Fills one device; false (with a warning) when even its properties cannot be read. */
static bool query_device(exo_plugin_ctx *ctx, l0_device *dev) {
    const l0_loader *ze = ctx->ze;
    dev->props = (ze_device_properties_t){.stype = ZE_STRUCTURE_TYPE_DEVICE_PROPERTIES};
    ze_result_t r = ze->zeDeviceGetProperties(dev->handle, &dev->props);
    if (r != ZE_RESULT_SUCCESS) {
        l0_log(ctx->host, EXO_LOG_WARN, "zeDeviceGetProperties failed: %s (0x%08x); device skipped",
               ze_result_name(r), (unsigned)r);
        return false;
    }
    dev->props.name[sizeof dev->props.name - 1] = '\0';
    dev->compute = (ze_device_compute_properties_t){.stype = ZE_STRUCTURE_TYPE_DEVICE_COMPUTE_PROPERTIES};
    r = ze->zeDeviceGetComputeProperties(dev->handle, &dev->compute);
    dev->have_compute = r == ZE_RESULT_SUCCESS;
    if (!dev->have_compute)
        l0_log(ctx->host, EXO_LOG_WARN, "%s: zeDeviceGetComputeProperties failed: %s (0x%08x)", dev->props.name,
               ze_result_name(r), (unsigned)r);
    dev->module = (ze_device_module_properties_t){.stype = ZE_STRUCTURE_TYPE_DEVICE_MODULE_PROPERTIES};
    r = ze->zeDeviceGetModuleProperties(dev->handle, &dev->module);
    dev->have_module = r == ZE_RESULT_SUCCESS;
    if (!dev->have_module)
        l0_log(ctx->host, EXO_LOG_WARN, "%s: zeDeviceGetModuleProperties failed: %s (0x%08x)", dev->props.name,
               ze_result_name(r), (unsigned)r);
    query_memory(ctx, dev);
    query_sysman(ctx, dev);
    return true;
}

static exo_status no_devices(exo_plugin_ctx *ctx, exo_status why, ze_result_t r, const char *fmt_call) {
    ctx->failure = why;
    ctx->failure_vendor = r;
    snprintf(ctx->reason, sizeof ctx->reason, "%s failed: %s (0x%08x)", fmt_call, ze_result_name(r), (unsigned)r);
    return EXO_OK;
}

exo_status l0_probe_devices(exo_plugin_ctx *ctx) {
    const l0_loader *ze = ctx->ze;
    uint32_t n_drivers = 0;
    ze_result_t r = ze->zeDriverGet(&n_drivers, NULL);
    if (r != ZE_RESULT_SUCCESS) return no_devices(ctx, EXO_ERR_BACKEND, r, "zeDriverGet");
    if (n_drivers == 0) {
        ctx->failure = EXO_ERR_NO_DEVICE;
        snprintf(ctx->reason, sizeof ctx->reason, "zeDriverGet found no Level Zero driver");
        return EXO_OK;
    }
    ze_driver_handle_t *drivers = ctx->host->alloc(ctx->host->host_ctx, n_drivers * sizeof *drivers);
    if (!drivers)
        return ctx->host->set_error(ctx->host->host_ctx, EXO_ERR_NO_MEMORY, 0,
                                    "level_zero probe: out of host memory for %u driver handles", n_drivers);
    r = ze->zeDriverGet(&n_drivers, drivers);
    if (r != ZE_RESULT_SUCCESS) {
        ctx->host->free(ctx->host->host_ctx, drivers);
        return no_devices(ctx, EXO_ERR_BACKEND, r, "zeDriverGet");
    }
    exo_status st = EXO_OK;
    for (uint32_t d = 0; d < n_drivers && st == EXO_OK; d++) {
        uint32_t n = 0;
        r = ze->zeDeviceGet(drivers[d], &n, NULL);
        if (r != ZE_RESULT_SUCCESS || n == 0) {
            if (r != ZE_RESULT_SUCCESS)
                l0_log(ctx->host, EXO_LOG_WARN, "zeDeviceGet on driver %u failed: %s (0x%08x)", d, ze_result_name(r),
                       (unsigned)r);
            continue;
        }
        ze_device_handle_t *handles = ctx->host->alloc(ctx->host->host_ctx, n * sizeof *handles);
        l0_device *grown = ctx->host->alloc(ctx->host->host_ctx, (ctx->n_devices + n) * sizeof *grown);
        if (!handles || !grown) {
            ctx->host->free(ctx->host->host_ctx, handles);
            ctx->host->free(ctx->host->host_ctx, grown);
            st = ctx->host->set_error(ctx->host->host_ctx, EXO_ERR_NO_MEMORY, 0,
                                      "level_zero probe: out of host memory for %u devices", ctx->n_devices + n);
            break;
        }
        r = ze->zeDeviceGet(drivers[d], &n, handles);
        if (r != ZE_RESULT_SUCCESS) {
            l0_log(ctx->host, EXO_LOG_WARN, "zeDeviceGet on driver %u failed: %s (0x%08x)", d, ze_result_name(r),
                   (unsigned)r);
            n = 0;
        }
        if (ctx->n_devices) memcpy(grown, ctx->devices, ctx->n_devices * sizeof *grown);
        ctx->host->free(ctx->host->host_ctx, ctx->devices);
        ctx->devices = grown;
        char version[64], api[32];
        if (n) driver_versions(ctx, drivers[d], version, sizeof version, api, sizeof api);
        for (uint32_t i = 0; i < n; i++) {
            l0_device *dev = &ctx->devices[ctx->n_devices];
            memset(dev, 0, sizeof *dev);
            dev->driver = drivers[d];
            dev->handle = handles[i];
            dev->index = ctx->n_devices;
            snprintf(dev->driver_version, sizeof dev->driver_version, "%s", version);
            snprintf(dev->api_version, sizeof dev->api_version, "%s", api);
            if (!query_device(ctx, dev)) continue;
            l0_report_build(dev);
            l0_telemetry_prime(ctx, dev);
            ctx->n_devices++;
        }
        ctx->host->free(ctx->host->host_ctx, handles);
    }
    ctx->host->free(ctx->host->host_ctx, drivers);
    if (st == EXO_OK && ctx->n_devices == 0 && ctx->reason[0] == '\0') {
        ctx->failure = EXO_ERR_NO_DEVICE;
        snprintf(ctx->reason, sizeof ctx->reason, "the Level Zero drivers report no usable device");
    }
    return st;
}
