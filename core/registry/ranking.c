/* Ranking devices (GStreamer ranks + OpenVINO AUTO priorities), de-duplication of physical
 * devices seen through several plugins, selection, and the fallback order.
 *
 * Key, best first: (1) plugin class rank (level_zero 256 > opencl 128 > cpu_amx 64, or
 * EXO_PLUGIN_RANK), (2) device score, (3) type: discrete GPU > integrated GPU > accelerator >
 * CPU, (4) free memory, (5) plugin name, (6) device index. Unusable devices go last.
 * Devices with equal fingerprints are one physical device: the view with the best score (then
 * class rank) is the primary, so PoCL's view of the CPU yields to cpu_amx's while the same GPU
 * through Level Zero beats its OpenCL view. */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "device_spec.h"
#include "runtime.h"

bool exo_registry_glob_list_match(const char *list, const char *name) {
    if (!list || !*list) return false;
    char copy[512];
    snprintf(copy, sizeof copy, "%s", list);
    char *save = NULL;
    for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save))
        if (fnmatch(tok, name, 0) == 0) return true;
    return false;
}

uint32_t exo_registry_class_rank(const exo_runtime *rt, const char *name, uint32_t declared) {
    /* "opencl:300,level_zero:0" */
    char copy[512];
    snprintf(copy, sizeof copy, "%s", rt->rank_override);
    char *save = NULL;
    for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        char *colon = strchr(tok, ':');
        if (!colon) continue;
        *colon = '\0';
        const char *digits = colon + 1;
        if (!*digits || strspn(digits, "0123456789") != strlen(digits) || strlen(digits) > 5) continue;
        unsigned long v = strtoul(digits, NULL, 10);
        if (v > 65535) continue;
        if (strcmp(tok, name) == 0) return (uint32_t)v;
    }
    return declared;
}

/* EXO_PLUGIN_RANK entries that exo_registry_class_rank skips (no ':', a rank that is not 0..65535,
 * a name no plugin has) are typos: warn once per runtime so they are not silently ignored. */
static void check_rank_override(const exo_runtime *rt) {
    char copy[512];
    snprintf(copy, sizeof copy, "%s", rt->rank_override);
    char *save = NULL;
    for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        char *colon = strchr(tok, ':');
        const char *digits = colon ? colon + 1 : "";
        bool plain = *digits != '\0' && strspn(digits, "0123456789") == strlen(digits);
        if (!colon || !plain || strlen(digits) > 5 || strtoul(digits, NULL, 10) > 65535) {
            exo_logf(&rt->logger, EXO_LOG_WARN, "registry",
                     "EXO_PLUGIN_RANK entry '%s' ignored: expected plugin:rank with rank 0..65535 "
                     "(e.g. opencl:300,level_zero:0)", tok);
            continue;
        }
        *colon = '\0';
        bool known = false;
        for (uint32_t i = 0; i < rt->n_plugins && !known; i++) known = strcmp(rt->plugins[i].name, tok) == 0;
        if (!known) {
            char names[256] = "";
            for (uint32_t i = 0; i < rt->n_plugins; i++) {
                size_t used = strlen(names);
                snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "", rt->plugins[i].name);
            }
            exo_logf(&rt->logger, EXO_LOG_WARN, "registry",
                     "EXO_PLUGIN_RANK entry '%s:%s' ignored: no plugin named '%s' was found (plugins: %s)", tok,
                     colon + 1, tok, names[0] ? names : "none");
        }
    }
}

static int type_order(exo_device_type t) {
    switch (t) {
    case EXO_DEVICE_DISCRETE_GPU: return 0;
    case EXO_DEVICE_INTEGRATED_GPU: return 1;
    case EXO_DEVICE_ACCELERATOR: return 2;
    case EXO_DEVICE_CPU: return 3;
    default: return 4;
    }
}

/* qsort has no context argument; thread-local so runtimes created on several threads at once
 * do not see each other's tables. */
static _Thread_local const exo_runtime *sort_rt;

static int compare_rank(const void *pa, const void *pb) {
    const exo_device_rec *a = &sort_rt->devices[*(const uint32_t *)pa];
    const exo_device_rec *b = &sort_rt->devices[*(const uint32_t *)pb];
    if (a->usable != b->usable) return a->usable ? -1 : 1;
    if (a->class_rank != b->class_rank) return a->class_rank > b->class_rank ? -1 : 1;
    if (a->report->score != b->report->score) return a->report->score > b->report->score ? -1 : 1;
    int ta = type_order(a->report->type), tb = type_order(b->report->type);
    if (ta != tb) return ta < tb ? -1 : 1;
    if (a->report->memory_free != b->report->memory_free)
        return a->report->memory_free > b->report->memory_free ? -1 : 1;
    int c = strcmp(sort_rt->plugins[a->plugin].name, sort_rt->plugins[b->plugin].name);
    if (c) return c;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* Which view of one physical device serves it best. */
static bool better_view(const exo_runtime *rt, const exo_device_rec *a, const exo_device_rec *b) {
    if (a->usable != b->usable) return a->usable;
    if (a->report->score != b->report->score) return a->report->score > b->report->score;
    if (a->class_rank != b->class_rank) return a->class_rank > b->class_rank;
    return strcmp(rt->plugins[a->plugin].name, rt->plugins[b->plugin].name) < 0;
}

static const char *type_name(exo_device_type t) {
    switch (t) {
    case EXO_DEVICE_DISCRETE_GPU: return "discrete GPU";
    case EXO_DEVICE_INTEGRATED_GPU: return "integrated GPU";
    case EXO_DEVICE_ACCELERATOR: return "accelerator";
    case EXO_DEVICE_CPU: return "CPU";
    default: return "unknown type";
    }
}

static exo_status build_devices(exo_runtime *rt) {
    uint32_t total = 0;
    for (uint32_t i = 0; i < rt->n_plugins; i++)
        if (rt->plugins[i].state == EXO_PLUGIN_LOADED) total += rt->plugins[i].n_devices;
    rt->devices = calloc(total ? total : 1, sizeof *rt->devices);
    rt->ranked = calloc(total ? total : 1, sizeof *rt->ranked);
    if (!rt->devices || !rt->ranked) return exo_errorf(EXO_ERR_NO_MEMORY, "out of memory ranking devices");
    for (uint32_t i = 0; i < rt->n_plugins; i++) {
        exo_plugin_rec *p = &rt->plugins[i];
        if (p->state != EXO_PLUGIN_LOADED) continue;
        for (uint32_t k = 0; k < p->n_devices; k++) {
            exo_device_rec *d = &rt->devices[rt->n_devices++];
            d->plugin = i;
            d->index = k;
            d->report = &p->reports[k];
            d->class_rank = p->class_rank;
            d->usable = d->report->score > 0;
            d->primary = -1;
            pthread_mutex_init(&d->exec_lock, NULL);
        }
    }
    return EXO_OK;
}

static void deduplicate(exo_runtime *rt) {
    for (uint32_t i = 0; i < rt->n_devices; i++) {
        exo_device_rec *d = &rt->devices[i];
        for (uint32_t k = 0; k < i; k++) {
            exo_device_rec *e = &rt->devices[k];
            if (e->primary != -1 || strcmp(d->report->fingerprint, e->report->fingerprint) != 0) continue;
            /* Same physical device: keep the better view as primary. */
            if (better_view(rt, d, e)) {
                e->primary = (int32_t)i;
                for (uint32_t m = 0; m < rt->n_devices; m++)
                    if (rt->devices[m].primary == (int32_t)k) rt->devices[m].primary = (int32_t)i;
            } else {
                d->primary = (int32_t)k;
            }
            break;
        }
    }
    for (uint32_t i = 0; i < rt->n_devices; i++) {
        exo_device_rec *d = &rt->devices[i];
        if (d->primary < 0) continue;
        exo_device_rec *p = &rt->devices[d->primary];
        size_t used = strlen(p->alternates);
        snprintf(p->alternates + used, sizeof p->alternates - used, "%s%s:%u", used ? "," : "",
                 rt->plugins[d->plugin].name, d->index);
        exo_logf(&rt->logger, EXO_LOG_INFO, "registry", "%s:%u is the same device as %s:%u (%s); kept as its alternate",
                 rt->plugins[d->plugin].name, d->index, rt->plugins[p->plugin].name, p->index,
                 d->report->fingerprint);
    }
}

/* Orders primaries by the ranking key, each followed by its alternates (best view first). */
static void order(exo_runtime *rt) {
    uint32_t n_primary = 0;
    uint32_t *primaries = rt->ranked;
    for (uint32_t i = 0; i < rt->n_devices; i++)
        if (rt->devices[i].primary < 0) primaries[n_primary++] = i;
    sort_rt = rt;
    qsort(primaries, n_primary, sizeof *primaries, compare_rank);
    uint32_t *out = malloc((rt->n_devices ? rt->n_devices : 1) * sizeof *out);
    if (!out) { /* keep primaries only; alternates stay reachable through the device table */
        rt->n_ranked = n_primary;
        return;
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < n_primary; i++) {
        out[n++] = primaries[i];
        uint32_t first_alt = n;
        for (uint32_t k = 0; k < rt->n_devices; k++)
            if (rt->devices[k].primary == (int32_t)primaries[i]) out[n++] = k;
        qsort(out + first_alt, n - first_alt, sizeof *out, compare_rank);
    }
    memcpy(rt->ranked, out, n * sizeof *out);
    rt->n_ranked = n;
    free(out);
    for (uint32_t i = 0; i < rt->n_ranked; i++) {
        exo_device_rec *d = &rt->devices[rt->ranked[i]];
        snprintf(d->rank_reason, sizeof d->rank_reason,
                 "class rank %u, score %u, %s, %llu MiB free%s%s", d->class_rank, d->report->score,
                 type_name(d->report->type), (unsigned long long)(d->report->memory_free >> 20),
                 d->usable ? "" : ", unusable: ", d->usable ? "" : d->report->reason);
        exo_logf(&rt->logger, EXO_LOG_INFO, "registry", "position %u: %s:%u '%s' (%s)%s", i,
                 rt->plugins[d->plugin].name, d->index, d->report->name, d->rank_reason,
                 d->primary >= 0 ? " [alternate]" : "");
    }
}

static void select_device(exo_runtime *rt) {
    rt->selected = -1;
    if (rt->device_spec[0]) {
        exo_device_spec spec;
        if (exo_device_spec_parse(rt->device_spec, &spec) != EXO_OK) {
            rt->selected_status = EXO_ERR_INVALID_ARG;
            snprintf(rt->selected_reason, sizeof rt->selected_reason, "EXO_DEVICE: %s", exo_error_message());
            return;
        }
        for (uint32_t i = 0; i < rt->n_ranked; i++) {
            const exo_device_rec *d = &rt->devices[rt->ranked[i]];
            if (strcmp(rt->plugins[d->plugin].name, spec.plugin) != 0 || d->index != spec.index) continue;
            if (!d->usable) {
                rt->selected_status = EXO_ERR_NO_DEVICE;
                snprintf(rt->selected_reason, sizeof rt->selected_reason,
                         "EXO_DEVICE=%s names a device that cannot serve: %s", rt->device_spec, d->report->reason);
                return;
            }
            rt->selected = (int32_t)i;
            rt->selected_status = EXO_OK;
            snprintf(rt->selected_reason, sizeof rt->selected_reason, "requested by EXO_DEVICE=%s", rt->device_spec);
            return;
        }
        rt->selected_status = EXO_ERR_NOT_FOUND;
        snprintf(rt->selected_reason, sizeof rt->selected_reason, "EXO_DEVICE=%s: no such device (see exo-probe)",
                 rt->device_spec);
        return;
    }
    for (uint32_t i = 0; i < rt->n_ranked; i++) {
        const exo_device_rec *d = &rt->devices[rt->ranked[i]];
        if (!d->usable || d->class_rank == 0) continue;
        if (!rt->plugins[d->plugin].runs_graphs) {
            exo_logf(&rt->logger, EXO_LOG_INFO, "registry", "not selecting %s:%u: plugin %s cannot run graphs yet",
                     rt->plugins[d->plugin].name, d->index, rt->plugins[d->plugin].name);
            continue;
        }
        rt->selected = (int32_t)i;
        rt->selected_status = EXO_OK;
        snprintf(rt->selected_reason, sizeof rt->selected_reason, "best ranked usable device (%s)", d->rank_reason);
        return;
    }
    rt->selected_status = EXO_ERR_NO_DEVICE;
    snprintf(rt->selected_reason, sizeof rt->selected_reason, "no usable device among %u found", rt->n_devices);
}

exo_status exo_registry_rank(exo_runtime *rt) {
    check_rank_override(rt);
    exo_status st = build_devices(rt);
    if (st != EXO_OK) return st;
    deduplicate(rt);
    order(rt);
    select_device(rt);
    if (rt->selected >= 0) {
        const exo_device_rec *d = &rt->devices[rt->ranked[rt->selected]];
        exo_logf(&rt->logger, EXO_LOG_INFO, "registry", "selected %s:%u '%s': %s", rt->plugins[d->plugin].name,
                 d->index, d->report->name, rt->selected_reason);
    } else {
        exo_logf(&rt->logger, EXO_LOG_WARN, "registry", "no device selected: %s", rt->selected_reason);
    }
    return EXO_OK;
}

uint32_t exo_registry_fallback_order(const exo_runtime *rt, uint32_t first, uint32_t *out, uint32_t max) {
    uint32_t n = 0;
    if (first < rt->n_ranked && n < max) out[n++] = first;
    for (uint32_t i = 0; i < rt->n_ranked && n < max; i++) {
        if (i == first) continue;
        const exo_device_rec *d = &rt->devices[rt->ranked[i]];
        if (!d->usable || !rt->plugins[d->plugin].runs_graphs) continue;
        out[n++] = i;
    }
    /* Alternates of `first` come right after it in the ranked list, so rank order already puts
     * the same GPU through OpenCL before the next physical device, and the CPU last. */
    return n;
}
