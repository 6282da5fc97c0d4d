/* Live readings of the CPU device. Utilization and power are rates, so the context keeps the
 * previous /proc/stat and RAPL samples; the first call reports neither. Sensors the process
 * cannot read (no thermal zones in a VM, RAPL readable by root only) are simply left invalid. */
#include "cpu_plugin.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

static bool read_proc_stat(uint64_t *busy, uint64_t *total) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return false;
    unsigned long long v[10] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
    fclose(f);
    if (n < 4) return false;
    uint64_t sum = 0;
    for (int i = 0; i < 8 && i < n; i++) sum += v[i]; /* guest time is already in user */
    *total = sum;
    *busy = sum - v[3] - (n > 4 ? v[4] : 0); /* minus idle and iowait */
    return true;
}

static bool read_u64_file(const char *path, uint64_t *out) {
    FILE *f = fopen(path, "r");
    if (!f) return false;
    unsigned long long v;
    bool ok = fscanf(f, "%llu", &v) == 1;
    fclose(f);
    if (ok) *out = v;
    return ok;
}

/* The package sensor when one is named so, otherwise the first readable thermal zone. */
static bool read_temperature(float *celsius) {
    DIR *dir = opendir("/sys/class/thermal");
    if (!dir) return false;
    struct dirent *e;
    bool found = false;
    while ((e = readdir(dir))) {
        if (strncmp(e->d_name, "thermal_zone", 12) != 0) continue;
        char path[512], type[64] = "";
        snprintf(path, sizeof path, "/sys/class/thermal/%s/type", e->d_name);
        FILE *f = fopen(path, "r");
        if (f) {
            if (!fgets(type, sizeof type, f)) type[0] = 0;
            fclose(f);
        }
        uint64_t milli;
        snprintf(path, sizeof path, "/sys/class/thermal/%s/temp", e->d_name);
        if (!read_u64_file(path, &milli)) continue;
        if (!found || strstr(type, "pkg")) *celsius = (float)milli / 1000.0f;
        found = true;
        if (strstr(type, "pkg")) break;
    }
    closedir(dir);
    return found;
}

static float average_mhz(void) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return 0;
    char line[256];
    double sum = 0, mhz;
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "cpu MHz : %lf", &mhz) == 1) {
            sum += mhz;
            n++;
        }
    fclose(f);
    return n ? (float)(sum / n) : 0;
}

exo_status cpu_device_telemetry(exo_plugin_ctx *ctx, uint32_t index, exo_device_telemetry *out) {
    if (!out || out->hdr.size < sizeof(exo_struct_header))
        return cpu_error(ctx, EXO_ERR_INVALID_ARG, "cpu_amx telemetry: output struct is NULL or too small");
    if (index != 0) return cpu_error(ctx, EXO_ERR_NOT_FOUND, "cpu_amx telemetry: no device %u (only 0)", index);
    exo_device_telemetry t;
    memset(&t, 0, sizeof t);
    EXO_STRUCT_INIT(&t);

    uint64_t total, avail;
    if (cpu_read_meminfo(&total, &avail)) {
        t.memory_used = total - avail;
        t.memory_free = avail;
        t.valid |= EXO_TELEMETRY_MEMORY;
    }
    uint64_t busy, all;
    if (read_proc_stat(&busy, &all)) {
        if (ctx->have_stat_sample && all > ctx->stat_total) {
            t.utilization = (float)(busy - ctx->stat_busy) / (float)(all - ctx->stat_total);
            if (t.utilization < 0) t.utilization = 0;
            if (t.utilization > 1) t.utilization = 1;
            t.valid |= EXO_TELEMETRY_UTILIZATION;
        }
        ctx->stat_busy = busy;
        ctx->stat_total = all;
        ctx->have_stat_sample = true;
    }
    if (read_temperature(&t.temperature_c)) t.valid |= EXO_TELEMETRY_TEMPERATURE;
    uint64_t energy;
    if (read_u64_file("/sys/class/powercap/intel-rapl:0/energy_uj", &energy)) {
        uint64_t now = ctx->host->now_ns(ctx->host->host_ctx);
        if (ctx->have_energy_sample && now > ctx->energy_ns && energy >= ctx->energy_uj) {
            t.power_w = (float)((double)(energy - ctx->energy_uj) / ((double)(now - ctx->energy_ns) / 1e3));
            t.valid |= EXO_TELEMETRY_POWER;
        }
        ctx->energy_uj = energy;
        ctx->energy_ns = now;
        ctx->have_energy_sample = true;
    }
    t.frequency_mhz = average_mhz();
    if (t.frequency_mhz > 0) t.valid |= EXO_TELEMETRY_FREQUENCY;
    struct utsname u;
    if (uname(&u) == 0) {
        snprintf(t.driver_version, sizeof t.driver_version, "Linux %s", u.release);
        t.valid |= EXO_TELEMETRY_DRIVER;
    }

    return exo_struct_copy_out(out, &t, sizeof t);
}
