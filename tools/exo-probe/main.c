/* exo-probe: what hardware exo-ipex sees, how it ranks it, and which device it would use.
 *
 *   exo-probe [--json] [--isolate] [--telemetry] [--bench] [--verbose]
 *
 * --bench measures every usable device (exo_device_benchmark: read bandwidth and matmul
 * throughput through the device's own graph path, cached per device and driver version) and the
 * link between every two of them (exo_device_link_benchmark: the copy a pipeline across them hands
 * hidden states over with, a device-to-device "peer" copy where the plugin offers one for the
 * pair, else through host memory); without it the figures cached earlier are shown where there
 * are some.
 *
 * Exit status 0 when a usable device exists, 1 when none, 2 on usage errors. */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exo.h"
#include "link_path.h"

static const char *type_name(exo_device_type t) {
    switch (t) {
    case EXO_DEVICE_DISCRETE_GPU: return "discrete-gpu";
    case EXO_DEVICE_INTEGRATED_GPU: return "integrated-gpu";
    case EXO_DEVICE_CPU: return "cpu";
    case EXO_DEVICE_ACCELERATOR: return "accelerator";
    default: return "unknown";
    }
}

static const char *state_name(exo_plugin_state s) {
    switch (s) {
    case EXO_PLUGIN_LOADED: return "loaded";
    case EXO_PLUGIN_SKIPPED: return "skipped";
    default: return "failed";
    }
}

static void caps_string(uint64_t caps, char *out, size_t size) {
    static const struct { uint64_t bit; const char *name; } names[] = {
        {EXO_CAP_FP16, "fp16"}, {EXO_CAP_BF16, "bf16"}, {EXO_CAP_INT8_DOT, "int8-dot"},
        {EXO_CAP_MATRIX, "matrix"}, {EXO_CAP_MATRIX_PRESENT, "matrix-present-not-usable"},
        {EXO_CAP_UNIFIED_MEMORY, "unified-memory"}, {EXO_CAP_SUBGROUPS, "subgroups"},
        {EXO_CAP_INT4_WEIGHTS, "int4-weights"}};
    out[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(caps & names[i].bit)) continue;
        size_t used = strlen(out);
        snprintf(out + used, size - used, "%s%s", used ? "," : "", names[i].name);
    }
}

/* The device's measured placement facts: run (bench) or cached; false when there are none. */
static bool measured(exo_runtime *rt, uint32_t i, int bench, exo_device_bench *b) {
    exo_device_info d;
    EXO_STRUCT_INIT(&d);
    if (exo_device_get_info(rt, i, &d) != EXO_OK || !d.usable) return false;
    EXO_STRUCT_INIT(b);
    exo_status st = exo_device_benchmark(rt, i, bench ? 0 : EXO_DEVICE_BENCH_CACHED_ONLY, b);
    if (st != EXO_OK && bench)
        fprintf(stderr, "exo-probe: benchmarking %s:%u: %s: %s\n", d.plugin, d.plugin_index, exo_status_name(st),
                exo_runtime_last_error(rt));
    return st == EXO_OK;
}

/* A device a link may join: usable, and the primary view of its hardware (an alternate view of
 * the same GPU through another plugin is no second device). */
static bool linkable(exo_runtime *rt, uint32_t i, exo_device_info *d) {
    EXO_STRUCT_INIT(d);
    return exo_device_get_info(rt, i, d) == EXO_OK && d->usable && d->alternate_of < 0;
}

/* The link from device a to device b: measured (bench) or cached; false when there is none. */
static bool link_measured(exo_runtime *rt, uint32_t a, uint32_t b, int bench, exo_device_link *l) {
    EXO_STRUCT_INIT(l);
    exo_status st = exo_device_link_benchmark(rt, a, b, bench ? 0 : EXO_DEVICE_BENCH_CACHED_ONLY, l);
    if (st != EXO_OK && bench)
        fprintf(stderr, "exo-probe: %s: %s\n", exo_status_name(st), exo_runtime_last_error(rt));
    return st == EXO_OK;
}

static cJSON *telemetry_json(const exo_device_telemetry *t) {
    cJSON *o = cJSON_CreateObject();
    if (t->valid & EXO_TELEMETRY_MEMORY) {
        cJSON_AddNumberToObject(o, "memory_used_bytes", (double)t->memory_used);
        cJSON_AddNumberToObject(o, "memory_free_bytes", (double)t->memory_free);
    }
    if (t->valid & EXO_TELEMETRY_UTILIZATION) cJSON_AddNumberToObject(o, "utilization", t->utilization);
    if (t->valid & EXO_TELEMETRY_TEMPERATURE) cJSON_AddNumberToObject(o, "temperature_c", t->temperature_c);
    if (t->valid & EXO_TELEMETRY_POWER) cJSON_AddNumberToObject(o, "power_w", t->power_w);
    if (t->valid & EXO_TELEMETRY_FREQUENCY) cJSON_AddNumberToObject(o, "frequency_mhz", t->frequency_mhz);
    if (t->valid & EXO_TELEMETRY_DRIVER) cJSON_AddStringToObject(o, "driver_version", t->driver_version);
    return o;
}

static void print_json(exo_runtime *rt, int telemetry, int bench) {
    cJSON *root = cJSON_CreateObject();
    cJSON *plugins = cJSON_AddArrayToObject(root, "plugins");
    for (uint32_t i = 0; i < exo_plugin_count(rt); i++) {
        exo_plugin_info p;
        EXO_STRUCT_INIT(&p);
        if (exo_plugin_get_info(rt, i, &p) != EXO_OK) continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", p.name);
        cJSON_AddStringToObject(o, "path", p.path);
        cJSON_AddStringToObject(o, "state", state_name(p.state));
        cJSON_AddStringToObject(o, "status", exo_status_name(p.status));
        cJSON_AddStringToObject(o, "reason", p.reason);
        cJSON_AddStringToObject(o, "version", p.version);
        cJSON_AddStringToObject(o, "build_info", p.build_info);
        cJSON_AddNumberToObject(o, "class_rank", p.class_rank);
        char abi[32];
        snprintf(abi, sizeof abi, "%u.%u", EXO_VERSION_MAJOR(p.abi_version), EXO_VERSION_MINOR(p.abi_version));
        cJSON_AddStringToObject(o, "abi", abi);
        cJSON_AddNumberToObject(o, "devices", p.n_devices);
        cJSON_AddItemToArray(plugins, o);
    }
    cJSON *devices = cJSON_AddArrayToObject(root, "devices");
    for (uint32_t i = 0; i < exo_device_count(rt); i++) {
        exo_device_info d;
        EXO_STRUCT_INIT(&d);
        if (exo_device_get_info(rt, i, &d) != EXO_OK) continue;
        const exo_device_report *r = d.report;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "position", d.position);
        cJSON_AddStringToObject(o, "plugin", d.plugin);
        cJSON_AddNumberToObject(o, "index", d.plugin_index);
        cJSON_AddStringToObject(o, "name", r->name);
        cJSON_AddStringToObject(o, "vendor", r->vendor);
        cJSON_AddNumberToObject(o, "vendor_id", r->vendor_id);
        cJSON_AddNumberToObject(o, "device_id", r->device_id);
        cJSON_AddStringToObject(o, "type", type_name(r->type));
        cJSON_AddStringToObject(o, "fingerprint", r->fingerprint);
        cJSON_AddNumberToObject(o, "score", r->score);
        cJSON_AddStringToObject(o, "reason", r->reason);
        cJSON_AddBoolToObject(o, "usable", d.usable);
        cJSON_AddBoolToObject(o, "selected", d.selected);
        cJSON_AddNumberToObject(o, "class_rank", d.class_rank);
        cJSON_AddStringToObject(o, "rank_reason", d.rank_reason);
        if (d.alternate_of >= 0) cJSON_AddNumberToObject(o, "alternate_of", d.alternate_of);
        cJSON_AddStringToObject(o, "alternates", d.alternates);
        cJSON_AddStringToObject(o, "driver_version", r->driver_version);
        cJSON_AddStringToObject(o, "api_version", r->api_version);
        cJSON_AddNumberToObject(o, "memory_total_bytes", (double)r->memory_total);
        cJSON_AddNumberToObject(o, "memory_free_bytes", (double)r->memory_free);
        cJSON_AddNumberToObject(o, "max_alloc_bytes", (double)r->max_alloc);
        cJSON_AddNumberToObject(o, "compute_units", r->compute_units);
        cJSON_AddNumberToObject(o, "clock_mhz", r->clock_mhz);
        char caps[256];
        caps_string(r->caps, caps, sizeof caps);
        cJSON_AddStringToObject(o, "capabilities", caps);
        cJSON_AddStringToObject(o, "isa", r->isa);
        cJSON_AddNumberToObject(o, "tflops_fp32", r->tflops_fp32);
        cJSON_AddNumberToObject(o, "tflops_fp16", r->tflops_fp16);
        cJSON_AddNumberToObject(o, "tflops_int8", r->tflops_int8);
        cJSON_AddNumberToObject(o, "memory_bandwidth_gbs", r->memory_bandwidth_gbs);
        exo_device_bench b;
        if (measured(rt, i, bench, &b)) {
            cJSON *m = cJSON_AddObjectToObject(o, "measured");
            cJSON_AddNumberToObject(m, "read_gbs", b.read_gbs);
            cJSON_AddNumberToObject(m, "matmul_gflops", b.matmul_gflops);
            cJSON_AddNumberToObject(m, "memory_free_bytes", (double)b.memory_free);
            cJSON_AddBoolToObject(m, "cached", b.cached);
        }
        if (telemetry) {
            exo_device_telemetry t;
            EXO_STRUCT_INIT(&t);
            if (exo_device_telemetry_read(rt, i, &t) == EXO_OK)
                cJSON_AddItemToObject(o, "telemetry", telemetry_json(&t));
        }
        cJSON_AddItemToArray(devices, o);
    }
    /* Every ordered pair of devices a shard may spread over: the hand-over's copy and its path. */
    cJSON *links = cJSON_AddArrayToObject(root, "links");
    for (uint32_t a = 0; a < exo_device_count(rt); a++)
        for (uint32_t b = 0; b < exo_device_count(rt); b++) {
            exo_device_info da, db;
            exo_device_link l;
            if (a == b || !linkable(rt, a, &da) || !linkable(rt, b, &db) || !link_measured(rt, a, b, bench, &l))
                continue;
            char from[64], to[64];
            snprintf(from, sizeof from, "%s:%u", da.plugin, da.plugin_index);
            snprintf(to, sizeof to, "%s:%u", db.plugin, db.plugin_index);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "from", from);
            cJSON_AddStringToObject(o, "to", to);
            cJSON_AddStringToObject(o, "path", exo_link_path_name(l.path));
            cJSON_AddNumberToObject(o, "gbs", l.gbs);
            cJSON_AddNumberToObject(o, "latency_us", l.latency_us);
            cJSON_AddBoolToObject(o, "cached", l.cached);
            cJSON_AddItemToArray(links, o);
        }
    uint32_t sel = 0;
    const char *why = "";
    if (exo_device_selected(rt, &sel, &why) == EXO_OK) {
        exo_device_info d;
        EXO_STRUCT_INIT(&d);
        exo_device_get_info(rt, sel, &d);
        cJSON *o = cJSON_AddObjectToObject(root, "selected");
        cJSON_AddStringToObject(o, "plugin", d.plugin);
        cJSON_AddNumberToObject(o, "index", d.plugin_index);
        cJSON_AddNumberToObject(o, "position", sel);
        cJSON_AddStringToObject(o, "reason", why);
    } else {
        cJSON_AddNullToObject(root, "selected");
        cJSON_AddStringToObject(root, "selected_reason", why);
    }
    char *text = cJSON_Print(root);
    if (text) puts(text);
    free(text);
    cJSON_Delete(root);
}

static void print_table(exo_runtime *rt, int telemetry, int bench) {
    printf("Plugins\n");
    for (uint32_t i = 0; i < exo_plugin_count(rt); i++) {
        exo_plugin_info p;
        EXO_STRUCT_INIT(&p);
        if (exo_plugin_get_info(rt, i, &p) != EXO_OK) continue;
        printf("  %-12s %-8s class rank %-4u devices %-2u %s%s%s\n", p.name, state_name(p.state), p.class_rank,
               p.n_devices, p.build_info, p.reason[0] ? (p.build_info[0] ? " - " : "") : "", p.reason);
        printf("  %-12s %s\n", "", p.path);
    }
    printf("\nDevices (best first)\n");
    printf("  %-4s %-16s %-15s %-10s %-6s %s\n", "pos", "device", "type", "memory", "score", "name");
    for (uint32_t i = 0; i < exo_device_count(rt); i++) {
        exo_device_info d;
        EXO_STRUCT_INIT(&d);
        if (exo_device_get_info(rt, i, &d) != EXO_OK) continue;
        const exo_device_report *r = d.report;
        char id[64], mem[32], caps[256];
        snprintf(id, sizeof id, "%s:%u", d.plugin, d.plugin_index);
        snprintf(mem, sizeof mem, "%.1f GiB", (double)r->memory_total / (1024.0 * 1024.0 * 1024.0));
        caps_string(r->caps, caps, sizeof caps);
        printf("%c %-4u %-16s %-15s %-10s %-6u %s\n", d.selected ? '*' : ' ', d.position, id, type_name(r->type), mem,
               r->score, r->name);
        printf("         %s%s\n", d.usable ? "" : "UNUSABLE: ", r->reason);
        printf("         %s; driver %s, API %s; %u compute units; caps %s; ~%.1f TFLOPS fp32, ~%.0f GB/s%s%s\n",
               r->fingerprint, r->driver_version, r->api_version, r->compute_units, caps[0] ? caps : "-",
               r->tflops_fp32, r->memory_bandwidth_gbs, r->isa[0] ? "; ISA " : "", r->isa);
        if (d.alternate_of >= 0) printf("         same physical device as position %d (alternate)\n", d.alternate_of);
        exo_device_bench b;
        if (measured(rt, i, bench, &b))
            printf("         measured: read %.1f GB/s, matmul %.1f GFLOP/s fp32, %.1f GiB free%s\n", b.read_gbs,
                   b.matmul_gflops, (double)b.memory_free / (1024.0 * 1024.0 * 1024.0), b.cached ? " (cached)" : "");
        if (telemetry) {
            exo_device_telemetry t;
            EXO_STRUCT_INIT(&t);
            if (exo_device_telemetry_read(rt, i, &t) == EXO_OK) {
                cJSON *o = telemetry_json(&t);
                char *text = cJSON_PrintUnformatted(o);
                printf("         telemetry %s\n", text ? text : "{}");
                free(text);
                cJSON_Delete(o);
            }
        }
    }
    bool header = false;
    for (uint32_t a = 0; a < exo_device_count(rt); a++)
        for (uint32_t b = 0; b < exo_device_count(rt); b++) {
            exo_device_info da, db;
            exo_device_link l;
            if (a == b || !linkable(rt, a, &da) || !linkable(rt, b, &db) || !link_measured(rt, a, b, bench, &l))
                continue;
            if (!header) printf("\nLinks between devices (the hand-over's copy: peer = device to device, host = through host memory)\n");
            header = true;
            char from[64], to[64];
            snprintf(from, sizeof from, "%s:%u", da.plugin, da.plugin_index);
            snprintf(to, sizeof to, "%s:%u", db.plugin, db.plugin_index);
            printf("  %-16s -> %-16s %-4s %.2f GB/s, %.1f us for 16 KiB%s\n", from, to, exo_link_path_name(l.path), l.gbs,
                   l.latency_us, l.cached ? " (cached)" : "");
        }
    uint32_t sel = 0;
    const char *why = "";
    if (exo_device_selected(rt, &sel, &why) == EXO_OK) {
        exo_device_info d;
        EXO_STRUCT_INIT(&d);
        exo_device_get_info(rt, sel, &d);
        printf("\nSelected: %s:%u (%s): %s\n", d.plugin, d.plugin_index, d.report->name, why);
    } else {
        printf("\nSelected: none: %s\n", why);
    }
}

static void usage(FILE *f) {
    fprintf(f, "usage: exo-probe [--json] [--isolate] [--telemetry] [--bench] [--verbose]\n"
               "  --json       machine-readable output (keys: plugins, devices, links, selected)\n"
               "  --isolate    probe each plugin in a child process with a timeout\n"
               "  --telemetry  read device sensors (memory, utilisation, temperature, power)\n"
               "  --bench      measure each usable device's read bandwidth and matmul throughput, and the\n"
               "               copy bandwidth between every two of them (cached per device and driver\n"
               "               version; cached figures show without it)\n"
               "  --verbose    log every registry decision to stderr\n"
               "Environment: EXO_PLUGIN_PATH, EXO_PLUGINS_SELECT, EXO_PLUGINS_DISABLE, EXO_PLUGIN_RANK,\n"
               "EXO_DEVICE, EXO_LOG_LEVEL.\n");
}

int main(int argc, char **argv) {
    int json = 0, isolate = 0, telemetry = 0, verbose = 0, bench = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) json = 1;
        else if (strcmp(argv[i], "--isolate") == 0) isolate = 1;
        else if (strcmp(argv[i], "--telemetry") == 0) telemetry = 1;
        else if (strcmp(argv[i], "--bench") == 0) bench = 1;
        else if (strcmp(argv[i], "--verbose") == 0 || strcmp(argv[i], "-v") == 0) verbose = 1;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "exo-probe: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    exo_runtime_options opts = EXO_RUNTIME_OPTIONS_INIT;
    opts.log_level = verbose ? EXO_LOG_DEBUG : EXO_LOG_LEVEL_DEFAULT;
    opts.flags = isolate ? EXO_RUNTIME_PROBE_ISOLATED : 0;
    exo_runtime *rt = NULL;
    exo_status st = exo_runtime_create(&opts, &rt);
    if (st != EXO_OK) {
        fprintf(stderr, "exo-probe: %s: %s\n", exo_status_name(st), exo_last_error());
        return 1;
    }
    if (json)
        print_json(rt, telemetry, bench);
    else
        print_table(rt, telemetry, bench);
    uint32_t sel = 0;
    int rc = exo_device_selected(rt, &sel, NULL) == EXO_OK ? 0 : 1;
    exo_runtime_destroy(rt);
    return rc;
}
