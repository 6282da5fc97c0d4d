/* telemetry.c — live readings through Sysman. Handles are enumerated once per device; each
 * field is flagged valid only when it was read. "Not offered here" answers (Sysman off,
 * unsupported, not permitted) leave a field invalid without failing the call; only a lost
 * device does. Utilization and power need two samples, so the previous ones live in the
 * device's l0_telemetry_state. The probe takes the first sample (l0_telemetry_prime), so even
 * a one-shot reader such as `exo-probe --telemetry` gets utilization and power averaged since
 * the probe; later readings average over the time since the previous reading. */
#include "l0_internal.h"

#include <stdio.h>
#include <string.h>

/* Returns false and logs when a Sysman call failed; DEVICE_LOST is reported to the caller. */
static bool sysman_ok(exo_plugin_ctx *ctx, const l0_device *dev, const char *call, ze_result_t r, bool *lost) {
    if (r == ZE_RESULT_SUCCESS) return true;
    if (r == ZE_RESULT_ERROR_DEVICE_LOST) *lost = true;
    l0_log(ctx->host, l0_result_is_unavailable(r) ? EXO_LOG_TRACE : EXO_LOG_DEBUG, "%s: %s: %s (0x%08x)",
           dev->props.name, call, ze_result_name(r), (unsigned)r);
    return false;
}

/* Enumerates up to `cap` handles of one kind; returns how many were found (0 on failure). */
#define ENUM_HANDLES(fn, handles, cap, n_out)                                                  \
    do {                                                                                       \
        uint32_t n_ = 0;                                                                       \
        ze_result_t r_ = ze->fn(sdev, &n_, NULL);                                              \
        if (sysman_ok(ctx, dev, #fn, r_, &lost) && n_ > 0) {                                   \
            if (n_ > (cap)) n_ = (cap);                                                        \
            r_ = ze->fn(sdev, &n_, handles);                                                   \
            if (!sysman_ok(ctx, dev, #fn, r_, &lost)) n_ = 0;                                  \
        }                                                                                      \
        n_out = n_;                                                                            \
    } while (0)

/* Engine group preference: the combined "everything" group, then all compute, then all render. */
static int engine_rank(zes_engine_group_t type) {
    switch (type) {
    case ZES_ENGINE_GROUP_ALL: return 4;
    case ZES_ENGINE_GROUP_COMPUTE_ALL: return 3;
    case ZES_ENGINE_GROUP_3D_RENDER_COMPUTE_ALL: return 2;
    case ZES_ENGINE_GROUP_RENDER_ALL: return 1;
    default: return 0;
    }
}

static bool enumerate(exo_plugin_ctx *ctx, l0_device *dev) {
    const l0_loader *ze = ctx->ze;
    l0_telemetry_state *t = &dev->telemetry;
    zes_device_handle_t sdev = (zes_device_handle_t)dev->handle;
    bool lost = false;
    t->enumerated = true;
    if (!ze->has_sysman_symbols) return true;

    ENUM_HANDLES(zesDeviceEnumMemoryModules, t->mem, L0_MAX_SENSORS, t->n_mem);

    if (ze->zesDeviceEnumEngineGroups && ze->zesEngineGetProperties && ze->zesEngineGetActivity) {
        zes_engine_handle_t engines[32];
        uint32_t n;
        ENUM_HANDLES(zesDeviceEnumEngineGroups, engines, 32, n);
        int best = -1;
        for (uint32_t i = 0; i < n; i++) {
            zes_engine_properties_t props = {.stype = ZES_STRUCTURE_TYPE_ENGINE_PROPERTIES};
            if (!sysman_ok(ctx, dev, "zesEngineGetProperties", ze->zesEngineGetProperties(engines[i], &props), &lost))
                continue;
            if (props.onSubdevice) continue; /* the card as a whole */
            int rank = engine_rank(props.type);
            if (rank > 0 && rank > best) {
                best = rank;
                t->engine = engines[i];
            }
        }
    }
    if (ze->zesDeviceEnumTemperatureSensors && ze->zesTemperatureGetProperties && ze->zesTemperatureGetState) {
        zes_temp_handle_t temps[L0_MAX_SENSORS];
        uint32_t n;
        ENUM_HANDLES(zesDeviceEnumTemperatureSensors, temps, L0_MAX_SENSORS, n);
        int best = -1;
        for (uint32_t i = 0; i < n; i++) {
            zes_temp_properties_t props = {.stype = ZES_STRUCTURE_TYPE_TEMP_PROPERTIES};
            if (!sysman_ok(ctx, dev, "zesTemperatureGetProperties", ze->zesTemperatureGetProperties(temps[i], &props), &lost))
                continue;
            int rank = props.type == ZES_TEMP_SENSORS_GPU ? 2 : props.type == ZES_TEMP_SENSORS_GLOBAL ? 1 : 0;
            if (rank > best && rank > 0) {
                best = rank;
                t->temp = temps[i];
            }
        }
    }
    if (ze->zesDeviceEnumPowerDomains && ze->zesPowerGetProperties && ze->zesPowerGetEnergyCounter) {
        zes_pwr_handle_t domains[L0_MAX_SENSORS];
        uint32_t n;
        ENUM_HANDLES(zesDeviceEnumPowerDomains, domains, L0_MAX_SENSORS, n);
        for (uint32_t i = 0; i < n && !t->power; i++) {
            zes_power_properties_t props = {.stype = ZES_STRUCTURE_TYPE_POWER_PROPERTIES};
            if (sysman_ok(ctx, dev, "zesPowerGetProperties", ze->zesPowerGetProperties(domains[i], &props), &lost) &&
                !props.onSubdevice)
                t->power = domains[i];
        }
    }
    if (ze->zesDeviceEnumFrequencyDomains && ze->zesFrequencyGetProperties && ze->zesFrequencyGetState) {
        zes_freq_handle_t domains[L0_MAX_SENSORS];
        uint32_t n;
        ENUM_HANDLES(zesDeviceEnumFrequencyDomains, domains, L0_MAX_SENSORS, n);
        for (uint32_t i = 0; i < n && !t->freq; i++) {
            zes_freq_properties_t props = {.stype = ZES_STRUCTURE_TYPE_FREQ_PROPERTIES};
            if (sysman_ok(ctx, dev, "zesFrequencyGetProperties", ze->zesFrequencyGetProperties(domains[i], &props), &lost) &&
                props.type == ZES_FREQ_DOMAIN_GPU && !props.onSubdevice)
                t->freq = domains[i];
        }
    }
    return !lost;
}

/* Reads the engine-activity and energy counters into the device's previous-sample slots. */
static void take_samples(exo_plugin_ctx *ctx, l0_device *dev, bool *lost) {
    const l0_loader *ze = ctx->ze;
    l0_telemetry_state *t = &dev->telemetry;
    if (t->engine) {
        zes_engine_stats_t now;
        memset(&now, 0, sizeof now);
        if (sysman_ok(ctx, dev, "zesEngineGetActivity", ze->zesEngineGetActivity(t->engine, &now), lost)) {
            t->engine_sample = now;
            t->have_engine_sample = true;
        }
    }
    if (t->power) {
        zes_power_energy_counter_t now;
        memset(&now, 0, sizeof now);
        if (sysman_ok(ctx, dev, "zesPowerGetEnergyCounter", ze->zesPowerGetEnergyCounter(t->power, &now), lost)) {
            t->energy_sample = now;
            t->have_energy_sample = true;
        }
    }
}

void l0_telemetry_prime(exo_plugin_ctx *ctx, l0_device *dev) {
    if (!dev->have_pci) return; /* Sysman did not answer during the probe: stay quiet until asked */
    bool lost = false;
    if (enumerate(ctx, dev)) take_samples(ctx, dev, &lost);
}

exo_status l0_telemetry_read(exo_plugin_ctx *ctx, l0_device *dev, exo_device_telemetry *out) {
    const l0_loader *ze = ctx->ze;
    l0_telemetry_state *t = &dev->telemetry;
    bool lost = false;
    exo_device_telemetry tel;
    memset(&tel, 0, sizeof tel);
    EXO_STRUCT_INIT(&tel);

    snprintf(tel.driver_version, sizeof tel.driver_version, "%s", dev->driver_version);
    tel.valid |= EXO_TELEMETRY_DRIVER;

    if (!t->enumerated && !enumerate(ctx, dev)) lost = true;

    uint64_t size = 0, free_bytes = 0;
    uint32_t read = 0;
    for (uint32_t i = 0; i < t->n_mem; i++) {
        zes_mem_state_t state = {.stype = ZES_STRUCTURE_TYPE_MEM_STATE};
        if (!sysman_ok(ctx, dev, "zesMemoryGetState", ze->zesMemoryGetState(t->mem[i], &state), &lost)) break;
        size += state.size;
        free_bytes += state.free;
        read++;
    }
    if (read > 0 && read == t->n_mem && free_bytes <= size) {
        tel.memory_free = free_bytes;
        tel.memory_used = size - free_bytes;
        tel.valid |= EXO_TELEMETRY_MEMORY;
    }

    if (t->engine) {
        zes_engine_stats_t now;
        memset(&now, 0, sizeof now);
        if (sysman_ok(ctx, dev, "zesEngineGetActivity", ze->zesEngineGetActivity(t->engine, &now), &lost)) {
            if (t->have_engine_sample && now.timestamp > t->engine_sample.timestamp &&
                now.activeTime >= t->engine_sample.activeTime) {
                double busy = (double)(now.activeTime - t->engine_sample.activeTime) /
                              (double)(now.timestamp - t->engine_sample.timestamp);
                tel.utilization = (float)(busy < 0 ? 0 : busy > 1 ? 1 : busy);
                tel.valid |= EXO_TELEMETRY_UTILIZATION;
            }
            t->engine_sample = now;
            t->have_engine_sample = true;
        }
    }

    if (t->temp) {
        double celsius = 0;
        if (sysman_ok(ctx, dev, "zesTemperatureGetState", ze->zesTemperatureGetState(t->temp, &celsius), &lost)) {
            tel.temperature_c = (float)celsius;
            tel.valid |= EXO_TELEMETRY_TEMPERATURE;
        }
    }

    if (t->power) {
        zes_power_energy_counter_t now;
        memset(&now, 0, sizeof now);
        if (sysman_ok(ctx, dev, "zesPowerGetEnergyCounter", ze->zesPowerGetEnergyCounter(t->power, &now), &lost)) {
            /* microjoules per microsecond = watts; a counter that went backwards wrapped or reset */
            if (t->have_energy_sample && now.timestamp > t->energy_sample.timestamp &&
                now.energy >= t->energy_sample.energy) {
                tel.power_w = (float)((double)(now.energy - t->energy_sample.energy) /
                                      (double)(now.timestamp - t->energy_sample.timestamp));
                tel.valid |= EXO_TELEMETRY_POWER;
            }
            t->energy_sample = now;
            t->have_energy_sample = true;
        }
    }

    if (t->freq) {
        zes_freq_state_t state = {.stype = ZES_STRUCTURE_TYPE_FREQ_STATE};
        if (sysman_ok(ctx, dev, "zesFrequencyGetState", ze->zesFrequencyGetState(t->freq, &state), &lost) &&
            state.actual >= 0) {
            tel.frequency_mhz = (float)state.actual;
            tel.valid |= EXO_TELEMETRY_FREQUENCY;
        }
    }

    exo_struct_copy_out(out, &tel, sizeof tel);
    if (lost)
        return ctx->host->set_error(ctx->host->host_ctx, EXO_ERR_DEVICE_LOST, ZE_RESULT_ERROR_DEVICE_LOST,
                                    "level_zero: %s (%s) was lost while reading telemetry", dev->props.name,
                                    dev->report.fingerprint);
    return EXO_OK;
}
