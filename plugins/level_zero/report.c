/* report.c — turns what the probe learned about one device into the exo_device_report the
 * core ranks: score, type, fingerprint, capabilities and throughput estimates for placement. */
#include "l0_internal.h"

#include <stdio.h>
#include <string.h>

#define GIB (1024.0 * 1024.0 * 1024.0)

static const char *device_type_name(ze_device_type_t type) {
    switch (type) {
    case ZE_DEVICE_TYPE_GPU: return "GPU";
    case ZE_DEVICE_TYPE_CPU: return "CPU";
    case ZE_DEVICE_TYPE_FPGA: return "FPGA";
    case ZE_DEVICE_TYPE_MCA: return "MCA";
    case ZE_DEVICE_TYPE_VPU: return "VPU";
    default: return "unknown";
    }
}

/* PCI address when Sysman gave one (the same GPU seen through OpenCL has the same), else the
 * Level Zero UUID. */
static void fingerprint(const l0_device *dev, char *out, size_t size) {
    if (dev->have_pci) {
        snprintf(out, size, "%04x:%02x:%02x.%x", dev->pci.domain & 0xffffu, dev->pci.bus & 0xffu,
                 dev->pci.device & 0x1fu, dev->pci.function & 0x7u);
        return;
    }
    size_t n = (size_t)snprintf(out, size, "uuid:");
    for (int i = 0; i < ZE_MAX_DEVICE_UUID_SIZE && n + 2 < size; i++)
        n += (size_t)snprintf(out + n, size - n, "%02x", dev->props.uuid.id[i]);
}

/* Peak estimates: fp32 = EUs x SIMD lanes x 2 (FMA) x clock; fp16 doubles on the vector units,
 * DP4A gives 4 int8 MACs per lane; XMX replaces both with its own per-EU rate. */
static void estimate_throughput(const l0_device *dev, const l0_xe_arch *arch, exo_device_report *r) {
    double eus = r->compute_units;
    double lanes = dev->props.physicalEUSimdWidth ? dev->props.physicalEUSimdWidth : 8;
    double ghz = dev->props.coreClockRate / 1000.0;
    double fp32 = eus * lanes * 2.0 * ghz / 1000.0; /* TFLOPS */
    double fp16 = (r->caps & EXO_CAP_FP16) ? 2.0 * fp32 : fp32;
    double int8 = (r->caps & EXO_CAP_INT8_DOT) ? 4.0 * fp32 : fp32;
    if (arch->has_xmx) {
        fp16 = eus * arch->xmx_fp16_per_eu_clk * ghz / 1000.0;
        int8 = eus * arch->xmx_int8_per_eu_clk * ghz / 1000.0;
    }
    r->tflops_fp32 = (float)fp32;
    r->tflops_fp16 = (float)fp16;
    r->tflops_int8 = (float)int8;

    /* Bandwidth: what Sysman says, else the board table, else a rough guess (Alchemist's
     * ~1.1 GB/s per EU for discrete cards, dual-channel DDR5 for integrated ones). */
    if (dev->sysman_bandwidth)
        r->memory_bandwidth_gbs = (float)(dev->sysman_bandwidth / 1e9);
    else if (arch->bandwidth_gbs > 0)
        r->memory_bandwidth_gbs = arch->bandwidth_gbs;
    else if (r->type == EXO_DEVICE_INTEGRATED_GPU)
        r->memory_bandwidth_gbs = 68.0f;
    else
        r->memory_bandwidth_gbs = (float)(1.1 * eus);
}

static void score(const l0_device *dev, exo_device_report *r) {
    double gib = (double)r->memory_total / GIB;
    if (dev->props.type != ZE_DEVICE_TYPE_GPU) {
        r->score = EXO_SCORE_UNUSABLE;
        r->type = dev->props.type == ZE_DEVICE_TYPE_CPU ? EXO_DEVICE_CPU : EXO_DEVICE_ACCELERATOR;
        snprintf(r->reason, sizeof r->reason,
                 "Level Zero device of type %s is not a GPU; the level_zero plugin runs on GPUs only",
                 device_type_name(dev->props.type));
    } else if (dev->props.vendorId != 0x8086) {
        r->score = EXO_SCORE_SERVABLE;
        snprintf(r->reason, sizeof r->reason, "non-Intel GPU (vendor 0x%04x) through Level Zero; kernels are tuned for Intel",
                 dev->props.vendorId);
    } else if (r->type == EXO_DEVICE_INTEGRATED_GPU) {
        r->score = EXO_SCORE_CAPABLE;
        snprintf(r->reason, sizeof r->reason, "integrated Intel GPU, %u EUs, sharing %.1f GiB of host memory",
                 r->compute_units, gib);
    } else {
        r->score = EXO_SCORE_PREFERRED;
        snprintf(r->reason, sizeof r->reason, "discrete Intel GPU, %u EUs, %.1f GiB%s", r->compute_units, gib,
                 (r->caps & EXO_CAP_MATRIX) ? ", XMX" : "");
    }
}

void l0_report_build(l0_device *dev) {
    exo_device_report *r = &dev->report;
    memset(r, 0, sizeof *r);
    EXO_STRUCT_INIT(r);
    const ze_device_properties_t *p = &dev->props;
    bool integrated = p->flags & ZE_DEVICE_PROPERTY_FLAG_INTEGRATED;
    r->type = integrated ? EXO_DEVICE_INTEGRATED_GPU : EXO_DEVICE_DISCRETE_GPU;
    fingerprint(dev, r->fingerprint, sizeof r->fingerprint);
    snprintf(r->name, sizeof r->name, "%s", p->name);
    if (p->vendorId == 0x8086)
        snprintf(r->vendor, sizeof r->vendor, "Intel(R) Corporation");
    else
        snprintf(r->vendor, sizeof r->vendor, "PCI vendor 0x%04x", p->vendorId);
    r->vendor_id = p->vendorId;
    r->device_id = p->deviceId;
    snprintf(r->driver_version, sizeof r->driver_version, "%s", dev->driver_version);
    snprintf(r->api_version, sizeof r->api_version, "%s", dev->api_version);
    r->memory_total = dev->memory_total;
    r->memory_free = dev->have_memory_free && dev->memory_free <= dev->memory_total ? dev->memory_free : dev->memory_total;
    r->max_alloc = p->maxMemAllocSize;
    r->compute_units = p->numSlices * p->numSubslicesPerSlice * p->numEUsPerSubslice;
    r->clock_mhz = p->coreClockRate;

    l0_xe_arch arch = l0_xe_arch_classify(p->vendorId, p->deviceId, p->name);
    if (dev->have_module && (dev->module.flags & ZE_DEVICE_MODULE_FLAG_FP16)) r->caps |= EXO_CAP_FP16;
    if (dev->have_module && (dev->module.flags & ZE_DEVICE_MODULE_FLAG_DP4A)) r->caps |= EXO_CAP_INT8_DOT;
    if (dev->have_compute && dev->compute.numSubGroupSizes > 0) r->caps |= EXO_CAP_SUBGROUPS;
    if (integrated) r->caps |= EXO_CAP_UNIFIED_MEMORY;
    if (arch.known && arch.has_xmx) r->caps |= EXO_CAP_MATRIX | EXO_CAP_BF16; /* XMX does bf16 dpas */
    if (arch.name)
        snprintf(r->isa, sizeof r->isa, "%s", arch.name);
    else
        snprintf(r->isa, sizeof r->isa, "device 0x%04x (generation unknown)", p->deviceId);
    estimate_throughput(dev, &arch, r);
    score(dev, r);
}
