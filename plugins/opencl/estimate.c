/* estimate.c — peak-throughput and bandwidth estimates for EXO's placement. OpenCL exposes no
 * FLOP rate or memory bus width, so these are compute units x clock x a per-architecture rate
 * (public spec sheets), and a bandwidth-per-FLOP ratio. They rank devices; they are not
 * measurements (exo-bench measures). */
#include "ocl_plugin.h"

/* fp32 FLOPs per clock per compute unit (an FMA counts 2). */
static double fp32_per_clock(const exo_device_report *r, const ocl_device_facts *f) {
    if (f->cl_type & CL_DEVICE_TYPE_CPU) {
        /* A core retires two vector FMAs per clock on current x86 (one on small cores). */
        cl_uint lanes = f->native_float_width ? f->native_float_width : 4;
        return 2.0 * 2.0 * lanes;
    }
    switch (f->vendor) {
    case OCL_VENDOR_INTEL: return 16.0; /* compute unit = EU/XVE: 8 fp32 lanes */
    case OCL_VENDOR_AMD: return 128.0;  /* 64 lanes per CU */
    case OCL_VENDOR_NVIDIA: {           /* compute unit = SM; fp32 lanes per SM by generation */
        cl_uint major = f->nv_cc_major, minor = f->nv_cc_minor;
        if (major == 0) return 128.0;
        if (major == 3) return 2.0 * 192;
        if (major == 6 && minor == 0) return 2.0 * 64;
        if (major == 7 || (major == 8 && minor == 0)) return 2.0 * 64;
        return 2.0 * 128; /* 5.x, 6.1+, 8.6+, 9.0 (H100), 10.x, 12.x */
    }
    default: return 16.0; /* unknown GPU or accelerator: a small SIMD-8 unit */
    }
}

void ocl_estimate_performance(exo_device_report *r, const ocl_device_facts *f) {
    double ghz = r->clock_mhz / 1000.0;
    double fp32 = r->compute_units * ghz * fp32_per_clock(r, f) / 1000.0; /* TFLOPS */
    double fp16 = fp32, int8 = fp32;
    int cpu = (f->cl_type & CL_DEVICE_TYPE_CPU) != 0;
    if (!cpu && (r->caps & EXO_CAP_FP16)) fp16 = 2.0 * fp32; /* packed half math on GPUs */
    if (r->caps & EXO_CAP_INT8_DOT) int8 = 4.0 * fp32;      /* DP4A: four int8 MACs per lane */
    if (f->vendor == OCL_VENDOR_INTEL && f->intel_dpas && (r->caps & EXO_CAP_MATRIX)) {
        /* XMX on Xe-HPG: 128 fp16 / 256 int8 ops per clock per XVE (Arc A770: 138 / 275 T). */
        fp16 = r->compute_units * ghz * 128.0 / 1000.0;
        int8 = r->compute_units * ghz * 256.0 / 1000.0;
    }
    r->tflops_fp32 = (float)fp32;
    r->tflops_fp16 = (float)fp16;
    r->tflops_int8 = (float)int8;

    double bandwidth;
    if (cpu) {
        /* A server core streams 10-15 GB/s from DRAM (30 GB/s on this 2-core VM); sockets cap
         * around 300 GB/s (8-12 DDR5 channels). */
        bandwidth = r->compute_units * 12.0;
        if (bandwidth > 300.0) bandwidth = 300.0;
    } else {
        /* Discrete GPUs ship ~1 byte/s of DRAM bandwidth per 20-30 FLOP/s (H100 67 T : 3.35 TB/s,
         * A770 17 T : 0.56 TB/s); integrated ones share dual-channel DRAM (~100 GB/s at most). */
        bandwidth = fp32 * 1000.0 / 25.0;
        if ((r->caps & EXO_CAP_UNIFIED_MEMORY) && bandwidth > 100.0) bandwidth = 100.0;
    }
    r->memory_bandwidth_gbs = (float)bandwidth;
}
