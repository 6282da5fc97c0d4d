/* What this CPU is and what it can do: CPUID feature bits, the OS's consent to AVX-512 and AMX
 * state (XCR0 and Linux's arch_prctl permission for AMX tile data), oneDNN's effective ISA,
 * cores, clock and memory, turned into the device report and its score. */
#include "cpu_plugin.h"

#include <oneapi/dnnl/dnnl.h>

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#endif

/* <asm/prctl.h>: 0x1021 asks what the kernel supports, 0x1022 what this process is already
 * permitted (tile data is not, until 0x1023 requests it). */
#define ARCH_GET_XCOMP_SUPP 0x1021
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

uint32_t cpu_affinity_cores(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return (uint32_t)n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (uint32_t)n : 1;
}

bool cpu_read_meminfo(uint64_t *total, uint64_t *available) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return false;
    char line[256];
    unsigned long long kb;
    bool have_total = false, have_avail = false;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "MemTotal: %llu kB", &kb) == 1) {
            *total = (uint64_t)kb * 1024u;
            have_total = true;
        } else if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
            *available = (uint64_t)kb * 1024u;
            have_avail = true;
        }
    }
    fclose(f);
    if (have_total && !have_avail) *available = *total;
    return have_total;
}

/* CPUID pads the brand string with spaces (AMD pads at the end, Intel at the start); a report
 * shows the name, not the padding. */
static void trim_trailing_space(char *text) {
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\t')) text[--n] = 0;
}

/* Model name and clock from /proc/cpuinfo (first processor), max clock from cpufreq. */
static void read_cpuinfo(cpu_features *f) {
    FILE *fp = fopen("/proc/cpuinfo", "r");
    if (fp) {
        char line[512];
        double mhz = 0;
        while (fgets(line, sizeof line, fp)) {
            if (!f->brand[0] && strncmp(line, "model name", 10) == 0) {
                const char *colon = strchr(line, ':');
                if (colon) {
                    colon++;
                    while (*colon == ' ' || *colon == '\t') colon++;
                    snprintf(f->brand, sizeof f->brand, "%s", colon);
                    f->brand[strcspn(f->brand, "\n")] = 0;
                }
            } else if (mhz == 0 && sscanf(line, "cpu MHz : %lf", &mhz) == 1) {
                f->clock_mhz = (uint32_t)mhz;
            }
        }
        fclose(fp);
    }
    fp = fopen("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "r");
    if (fp) {
        unsigned long khz;
        if (fscanf(fp, "%lu", &khz) == 1 && khz > 0) f->clock_mhz = (uint32_t)(khz / 1000);
        fclose(fp);
    }
    if (f->clock_mhz == 0) f->clock_mhz = 2000; /* unknown: a conservative server clock */
}

#if defined(__x86_64__)
static void read_brand_string(cpu_features *f) {
    unsigned a, b, c, d;
    if (!__get_cpuid(0x80000000u, &a, &b, &c, &d) || a < 0x80000004u) return;
    uint32_t words[12];
    for (unsigned leaf = 0; leaf < 3; leaf++)
        __get_cpuid(0x80000002u + leaf, &words[leaf * 4], &words[leaf * 4 + 1], &words[leaf * 4 + 2],
                    &words[leaf * 4 + 3]);
    char brand[49];
    memcpy(brand, words, 48);
    brand[48] = 0;
    const char *s = brand;
    while (*s == ' ') s++;
    if (*s) snprintf(f->brand, sizeof f->brand, "%s", s);
}

static uint64_t read_xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

/* Linux keeps AMX tile data off until a process asks (since 5.16). */
static void request_amx(cpu_features *f) {
    unsigned long supported = 0;
    if (syscall(SYS_arch_prctl, ARCH_GET_XCOMP_SUPP, &supported) != 0) {
        snprintf(f->amx_status, sizeof f->amx_status,
                 "AMX in CPUID but the kernel does not support AMX state (ARCH_GET_XCOMP_SUPP failed)");
        return;
    }
    if (!(supported & (1ul << XFEATURE_XTILEDATA))) {
        snprintf(f->amx_status, sizeof f->amx_status,
                 "AMX in CPUID but unusable: the kernel's ARCH_GET_XCOMP_SUPP mask 0x%lx lacks XTILEDATA (bit %d)",
                 supported, XFEATURE_XTILEDATA);
        return;
    }
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) {
        snprintf(f->amx_status, sizeof f->amx_status,
                 "AMX in CPUID but the kernel refused permission for tile data (ARCH_REQ_XCOMP_PERM)");
        return;
    }
    f->amx_permitted = true;
    snprintf(f->amx_status, sizeof f->amx_status, "AMX usable (tile data permitted)");
}
#endif

static const char *onednn_isa_name(dnnl_cpu_isa_t isa) {
    switch ((int)isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    default: return "unknown";
    }
}

void cpu_detect_features(cpu_features *f) {
    memset(f, 0, sizeof *f);
    f->cores = cpu_affinity_cores();
#if defined(__x86_64__)
    unsigned a, b, c, d;
    bool osxsave = false;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        f->fma = (c >> 12) & 1;
        f->f16c = (c >> 29) & 1;
        osxsave = (c >> 27) & 1;
    }
    uint64_t xcr0 = osxsave ? read_xcr0() : 0;
    bool os_avx = (xcr0 & 0x6) == 0x6;
    f->os_avx512 = os_avx && (xcr0 & 0xe0) == 0xe0;
    unsigned max_leaf = __get_cpuid_max(0, NULL);
    if (max_leaf >= 7 && __get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        f->avx2 = ((b >> 5) & 1) && os_avx;
        f->avx512f = ((b >> 16) & 1) && f->os_avx512;
        f->avx512bw = ((b >> 30) & 1) && f->os_avx512;
        f->avx512vl = ((b >> 31) & 1) && f->os_avx512;
        f->avx512_vnni = ((c >> 11) & 1) && f->os_avx512;
        f->avx512_fp16 = ((d >> 23) & 1) && f->os_avx512;
        f->amx_bf16 = (d >> 22) & 1;
        f->amx_tile = (d >> 24) & 1;
        f->amx_int8 = (d >> 25) & 1;
        unsigned a1, b1, c1, d1;
        if (__get_cpuid_count(7, 1, &a1, &b1, &c1, &d1)) f->avx512_bf16 = ((a1 >> 5) & 1) && f->os_avx512;
    }
    f->fma = f->fma && os_avx;
    if (!f->amx_tile)
        snprintf(f->amx_status, sizeof f->amx_status,
                 "no AMX: CPUID reports no AMX tiles (absent on this CPU or hidden by the hypervisor)");
    else
        request_amx(f);
    read_brand_string(f);
#else
    snprintf(f->amx_status, sizeof f->amx_status, "no AMX: not an x86-64 CPU");
#endif
    read_cpuinfo(f);
    trim_trailing_space(f->brand);
    snprintf(f->onednn_isa, sizeof f->onednn_isa, "%s", onednn_isa_name(dnnl_get_effective_cpu_isa()));
}

/* Peak estimates for EXO's placement: cores x GHz x FLOPs per cycle. AVX-512 has two FMA ports
 * of 16 fp32 lanes (2 FLOPs each); AMX tiles do 1024 bf16 / 2048 int8 MACs per cycle per core. */
static void estimate_throughput(const cpu_features *f, exo_device_report *r) {
    double ghz = f->clock_mhz / 1000.0, cores = f->cores;
    double fp32_per_cycle = f->avx512f ? 2 * 16 * 2 : f->fma ? 2 * 8 * 2 : 8;
    r->tflops_fp32 = (float)(cores * ghz * fp32_per_cycle / 1000.0);
    double bf16_per_cycle = f->avx512_bf16 ? 2 * 32 * 2 : fp32_per_cycle;
    double int8_per_cycle = f->avx512_vnni ? 2 * 64 * 2 : fp32_per_cycle;
    if (f->amx_permitted) {
        bf16_per_cycle = f->amx_bf16 ? 1024 * 2 : bf16_per_cycle;
        int8_per_cycle = f->amx_int8 ? 2048 * 2 : int8_per_cycle;
    }
    r->tflops_fp16 = (float)(cores * ghz * bf16_per_cycle / 1000.0);
    r->tflops_int8 = (float)(cores * ghz * int8_per_cycle / 1000.0);
    /* Memory bandwidth cannot be read from the system; estimate about 15 GB/s a core (what one
     * core streams from DDR5) capped at 8 DDR5-4800 channels of 38.4 GB/s. */
    double bw = cores * 15.0;
    r->memory_bandwidth_gbs = (float)(bw < 8 * 38.4 ? bw : 8 * 38.4);
}

static void fill_report(exo_plugin_ctx *ctx) {
    const cpu_features *f = &ctx->features;
    exo_device_report *r = &ctx->report;
    memset(r, 0, sizeof *r);
    EXO_STRUCT_INIT(r);
    r->type = EXO_DEVICE_CPU;
    snprintf(r->fingerprint, sizeof r->fingerprint, "cpu:0");
    snprintf(r->name, sizeof r->name, "%s", f->brand[0] ? f->brand : "x86-64 CPU");
    snprintf(r->vendor, sizeof r->vendor, "%s", strstr(f->brand, "Intel") ? "Intel" : strstr(f->brand, "AMD") ? "AMD" : "unknown");
    r->vendor_id = strstr(f->brand, "Intel") ? 0x8086 : strstr(f->brand, "AMD") ? 0x1022 : 0;
    const dnnl_version_t *v = dnnl_version();
    snprintf(r->driver_version, sizeof r->driver_version, "oneDNN %d.%d.%d", v->major, v->minor, v->patch);
    snprintf(r->api_version, sizeof r->api_version, "%s", f->avx512f ? "AVX-512" : f->avx2 ? "AVX2" : "x86-64");
    uint64_t total = 0, avail = 0;
    cpu_read_meminfo(&total, &avail);
    r->memory_total = total;
    r->memory_free = avail;
    r->max_alloc = total;
    r->compute_units = f->cores;
    r->clock_mhz = f->clock_mhz;
    r->caps = EXO_CAP_UNIFIED_MEMORY;
    if (f->avx512_bf16) r->caps |= EXO_CAP_BF16;
    if (f->avx512_fp16) r->caps |= EXO_CAP_FP16;
    if (f->avx512_vnni) r->caps |= EXO_CAP_INT8_DOT;
    if (f->amx_tile) r->caps |= f->amx_permitted ? EXO_CAP_MATRIX : EXO_CAP_MATRIX_PRESENT;
    estimate_throughput(f, r);
    snprintf(r->isa, sizeof r->isa, "%s", f->onednn_isa);
#if defined(__x86_64__)
    if (f->amx_permitted && f->avx512f) {
        r->score = EXO_SCORE_PREFERRED;
        snprintf(r->reason, sizeof r->reason, "%u cores with AVX-512 and AMX (oneDNN isa %s)", f->cores, f->onednn_isa);
    } else if (f->avx512f) {
        r->score = EXO_SCORE_CAPABLE;
        snprintf(r->reason, sizeof r->reason, "%u cores with AVX-512%s; %s", f->cores,
                 f->avx512_bf16 ? " (bf16, vnni)" : "", f->amx_status);
    } else {
        r->score = EXO_SCORE_SERVABLE;
        snprintf(r->reason, sizeof r->reason, "%u cores without AVX-512: plain C kernels only; %s", f->cores,
                 f->amx_status);
    }
#else
    r->score = EXO_SCORE_SERVABLE;
    snprintf(r->reason, sizeof r->reason, "not x86-64: plain C kernels only");
#endif
}

exo_status cpu_probe(exo_plugin_ctx *ctx, uint32_t *count) {
    if (!count) return cpu_error(ctx, EXO_ERR_INVALID_ARG, "cpu_amx probe: count is NULL");
    if (!ctx->probed) {
        cpu_detect_features(&ctx->features);
        ctx->probed = true;
        cpu_log(ctx, EXO_LOG_DEBUG, "probe: %s; %s", ctx->features.brand, ctx->features.amx_status);
    }
    fill_report(ctx); /* refreshes free memory */
    *count = 1;
    return EXO_OK;
}

exo_status cpu_device_report(exo_plugin_ctx *ctx, uint32_t index, exo_device_report *out) {
    if (!out || out->hdr.size < sizeof(exo_struct_header))
        return cpu_error(ctx, EXO_ERR_INVALID_ARG, "cpu_amx device_report: output struct is NULL or too small");
    if (!ctx->probed) return cpu_error(ctx, EXO_ERR_INVALID_ARG, "cpu_amx device_report: call probe first");
    if (index != 0) return cpu_error(ctx, EXO_ERR_NOT_FOUND, "cpu_amx device_report: no device %u (only 0)", index);
    return exo_struct_copy_out(out, &ctx->report, sizeof ctx->report);
}
