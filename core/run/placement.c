/* Placement of a layer range across devices (placement.h): which devices, and how many layers
 * each holds, in proportion to its speed and within its memory. */
#include "run/placement.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "run/shard_memory.h"

/* Memory a device keeps back from layers: intermediates, the plugin's own allocations, and the
 * slack of estimating a layer from config.json (the part's load fits itself exactly). */
#define RESERVE_PERCENT 10

static bool is_gpu(const exo_device_rec *d) {
    return d->report->type == EXO_DEVICE_DISCRETE_GPU || d->report->type == EXO_DEVICE_INTEGRATED_GPU;
}

static exo_status add_device(const exo_runtime *rt, uint32_t dev, const char *name, uint32_t *out, uint32_t max,
                             uint32_t *n) {
    const exo_device_rec *d = exo_runtime_device(rt, dev);
    if (!d->usable)
        return exo_errorf(EXO_ERR_INVALID_ARG, "devices: '%s' is not usable (%s)", name, d->report->reason);
    for (uint32_t i = 0; i < *n; i++)
        if (out[i] == dev) return exo_errorf(EXO_ERR_INVALID_ARG, "devices: '%s' is listed twice", name);
    if (*n == max) return exo_errorf(EXO_ERR_INVALID_ARG, "devices: a pipeline spans at most %u devices", max);
    out[(*n)++] = dev;
    return EXO_OK;
}

exo_status exo_placement_devices(const exo_runtime *rt, const char *devices, const char *pinned, uint32_t *out,
                                 uint32_t max, uint32_t *n) {
    *n = 0;
    if (!devices || !*devices) return EXO_OK;
    if (strcmp(devices, "auto") == 0) {
        if ((pinned && *pinned) || rt->device_spec[0]) return EXO_OK; /* a pinned device wins */
        uint32_t found = 0, gpus[EXO_PLACEMENT_MAX_DEVICES];
        for (uint32_t i = 0; i < rt->n_ranked && found < EXO_PLACEMENT_MAX_DEVICES; i++) {
            const exo_device_rec *d = exo_runtime_device(rt, i);
            /* Primary views only: the same GPU through a second plugin is not a second GPU. */
            if (d->usable && d->primary < 0 && is_gpu(d)) gpus[found++] = i;
        }
        if (found < 2) return EXO_OK;
        for (uint32_t i = 0; i < found && i < max; i++) out[(*n)++] = gpus[i];
        return EXO_OK;
    }
    char spec[128];
    for (const char *p = devices; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0 || len >= sizeof spec)
            return exo_errorf(EXO_ERR_INVALID_ARG, "devices '%s': expected a comma-separated list of plugin[:index] "
                              "or 'auto'", devices);
        memcpy(spec, p, len);
        spec[len] = '\0';
        uint32_t dev = 0;
        exo_status st = exo_device_find(rt, spec, &dev);
        if (st == EXO_OK) st = add_device(rt, dev, spec, out, max, n);
        if (st != EXO_OK) return st;
        p += len + (comma ? 1 : 0);
        if (comma && !*p)
            return exo_errorf(EXO_ERR_INVALID_ARG, "devices '%s': the list ends with a comma", devices);
    }
    return EXO_OK;
}

exo_status exo_placement_split(uint32_t n_layers, const double *speed, const uint32_t *cap, uint32_t n,
                               uint32_t *counts) {
    if (n == 0) return exo_errorf(EXO_ERR_INVALID_ARG, "placement: no devices");
    uint64_t room = 0;
    for (uint32_t i = 0; i < n; i++) room += cap[i];
    if (room < n_layers)
        return exo_errorf(EXO_ERR_NO_MEMORY, "placement: the %u devices hold %llu of the %u layers", n,
                          (unsigned long long)room, n_layers);
    bool fixed[EXO_PLACEMENT_MAX_DEVICES] = {false};
    double share[EXO_PLACEMENT_MAX_DEVICES];
    uint32_t left = n_layers;
    /* Water-filling: proportional shares; a device whose share exceeds its cap takes the cap and
     * the rest is shared again among the others. */
    for (bool again = true; again;) {
        again = false;
        double total = 0;
        for (uint32_t i = 0; i < n; i++)
            if (!fixed[i]) total += speed[i] > 0 ? speed[i] : 1.0;
        for (uint32_t i = 0; i < n; i++) {
            if (fixed[i]) continue;
            share[i] = left * (speed[i] > 0 ? speed[i] : 1.0) / total;
            if (share[i] > cap[i]) {
                counts[i] = cap[i];
                fixed[i] = true;
                left -= cap[i];
                again = true;
                break;
            }
        }
    }
    /* Largest remainders among the rest (ties: the earlier, better-ranked device). */
    uint32_t given = 0;
    for (uint32_t i = 0; i < n; i++)
        if (!fixed[i]) {
            counts[i] = (uint32_t)floor(share[i]);
            given += counts[i];
        }
    while (given < left) {
        int best = -1;
        for (uint32_t i = 0; i < n; i++)
            if (!fixed[i] && counts[i] < cap[i] &&
                (best < 0 || share[i] - counts[i] > share[best] - counts[best]))
                best = (int)i;
        if (best < 0) break; /* cannot happen: room >= n_layers */
        counts[best]++;
        given++;
    }
    /* Every listed device does some work when it can: one layer from the largest count. */
    if (n_layers >= n)
        for (uint32_t i = 0; i < n; i++) {
            if (counts[i] || cap[i] == 0) continue;
            uint32_t big = 0;
            for (uint32_t j = 1; j < n; j++)
                if (counts[j] > counts[big]) big = j;
            if (counts[big] <= 1) break;
            counts[big]--;
            counts[i]++;
        }
    return EXO_OK;
}

/* Bytes of one weight matrix's element: an MLX affine weight's bits plus its scale and bias per
 * group, else the checkpoint's float size. */
static double weight_element_bytes(const exo_model_config *cfg, uint32_t quantize_bits, uint32_t quantize_group) {
    uint32_t fsize = exo_dtype_size(cfg->torch_dtype);
    if (fsize == 0) fsize = 4;
    uint32_t bits = cfg->quant.bits ? cfg->quant.bits : quantize_bits;
    uint32_t group = cfg->quant.bits ? cfg->quant.group : (quantize_group ? quantize_group : 64);
    if (!bits || !group) return fsize;
    return bits / 8.0 + 2.0 * fsize / group;
}

void exo_placement_costs_of(const exo_model_config *cfg, uint32_t start, uint32_t end, uint32_t max_ctx,
                            uint32_t quantize_bits, uint32_t quantize_group, exo_placement_costs *out) {
    double eb = weight_element_bytes(cfg, quantize_bits, quantize_group);
    double h = cfg->hidden_size, hd = cfg->head_dim;
    double attention = h * hd * (2.0 * cfg->n_heads + 2.0 * cfg->n_kv_heads);
    double kv = 2.0 * max_ctx * cfg->n_kv_heads * hd * 4.0;
    double largest = 0;
    for (uint32_t l = start; l < end; l++) {
        double mlp = exo_layer_is_moe(cfg, l)
                         ? (double)cfg->n_experts * 3.0 * h * cfg->moe_intermediate_size + cfg->n_experts * h +
                               (double)cfg->n_shared_experts * 3.0 * h * cfg->moe_intermediate_size
                         : 3.0 * h * cfg->intermediate_size;
        double bytes = (attention + mlp) * eb + kv;
        if (bytes > largest) largest = bytes;
    }
    out->layer_bytes = largest < 1 ? 1 : (uint64_t)largest;
    out->ends_bytes = (uint64_t)((double)cfg->vocab_size * h * eb);
}

double exo_placement_device_speed(const exo_runtime *rt, uint32_t device) {
    double read_gbs = 0, gflops = 0;
    if (exo_device_bench_cached(rt, device, &read_gbs, &gflops)) return read_gbs;
    const exo_device_report *r = exo_runtime_device(rt, device)->report;
    if (r->memory_bandwidth_gbs > 0) return r->memory_bandwidth_gbs;
    if (r->tflops_fp32 > 0) return r->tflops_fp32;
    return 1.0;
}

exo_status exo_placement_ranges(exo_runtime *rt, const exo_model_config *cfg, const uint32_t *devices, uint32_t n,
                                uint32_t start, uint32_t end, uint32_t max_ctx, uint32_t quantize_bits,
                                uint32_t quantize_group, uint32_t *bounds) {
    if (n == 0 || n > EXO_PLACEMENT_MAX_DEVICES)
        return exo_errorf(EXO_ERR_INVALID_ARG, "placement: %u devices (1 to %u)", n, EXO_PLACEMENT_MAX_DEVICES);
    exo_placement_costs costs;
    exo_placement_costs_of(cfg, start, end, max_ctx, quantize_bits, quantize_group, &costs);
    double speed[EXO_PLACEMENT_MAX_DEVICES];
    uint32_t cap[EXO_PLACEMENT_MAX_DEVICES], counts[EXO_PLACEMENT_MAX_DEVICES];
    for (uint32_t i = 0; i < n; i++) {
        const exo_device_rec *d = exo_runtime_device(rt, devices[i]);
        bool host = false;
        const char *source = "";
        uint64_t avail = exo_device_memory_available(d, &host, &source);
        speed[i] = exo_placement_device_speed(rt, devices[i]);
        /* A plugin that maps the checkpoint's pages in place uses no memory of its own for them. */
        if (avail == UINT64_MAX || (host && exo_runtime_device_plugin(rt, devices[i])->api.buffer_wrap_host)) {
            cap[i] = UINT32_MAX;
            continue;
        }
        uint64_t usable = avail - avail / 100 * RESERVE_PERCENT;
        uint64_t ends = (i == 0 && start == 0 ? costs.ends_bytes : 0) +
                        (i + 1 == n && end == cfg->n_layers ? costs.ends_bytes : 0);
        uint64_t layers = usable > ends ? (usable - ends) / costs.layer_bytes : 0;
        cap[i] = layers > UINT32_MAX ? UINT32_MAX : (uint32_t)layers;
    }
    exo_status st = exo_placement_split(end - start, speed, cap, n, counts);
    if (st != EXO_OK)
        return exo_errorf(st, "placement: layers [%u, %u) at ~%llu bytes each (weights and a %u-position float32 KV "
                              "cache) do not fit the memory of the %u devices", start, end,
                          (unsigned long long)costs.layer_bytes, max_ctx, n);
    bounds[0] = start;
    for (uint32_t i = 0; i < n; i++) {
        bounds[i + 1] = bounds[i] + counts[i];
        const exo_device_rec *d = exo_runtime_device(rt, devices[i]);
        char room[48];
        if (cap[i] == UINT32_MAX) snprintf(room, sizeof room, "no memory limit");
        else snprintf(room, sizeof room, "room for %u layers", cap[i]);
        exo_logf(&rt->logger, EXO_LOG_INFO, "placement", "%s:%u '%s': layers [%u, %u) (speed %.1f, %s of ~%llu bytes)",
                 rt->plugins[d->plugin].name, d->index, d->report->name, bounds[i], bounds[i + 1], speed[i], room,
                 (unsigned long long)costs.layer_bytes);
    }
    return EXO_OK;
}
