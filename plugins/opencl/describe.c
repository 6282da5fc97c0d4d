/* describe.c — turns one cl_device_id into an exo_device_report: identity, memory, capability
 * bits, type, score with its reason, fingerprint and estimates. Every query may fail on some
 * driver; a failed query leaves its field "unknown" (0 or "") rather than dropping the device,
 * except the ones the device cannot serve without (type, availability, compiler). */
#include "ocl_plugin.h"

#include <stdio.h>
#include <string.h>

static cl_int query(exo_plugin_ctx *ctx, cl_device_id id, cl_device_info param, void *out, size_t size) {
    cl_int err = ctx->api.clGetDeviceInfo(id, param, size, out, NULL);
    if (err != CL_SUCCESS) memset(out, 0, size);
    return err;
}

/* Copies a string query into a fixed report field (truncating); "" when it fails. */
static cl_int query_text(exo_plugin_ctx *ctx, cl_device_id id, cl_device_info param, char *out,
                         size_t size) {
    char *text = NULL;
    cl_int err = ocl_device_string(ctx, id, param, &text);
    snprintf(out, size, "%s", text ? text : "");
    if (text) ctx->host->free(ctx->host->host_ctx, text);
    return err;
}

static ocl_vendor classify_vendor(cl_uint vendor_id, const char *extensions) {
    if (vendor_id == 0x8086 || ocl_has_extension(extensions, "cl_intel_device_attribute_query"))
        return OCL_VENDOR_INTEL;
    if (vendor_id == 0x10de || ocl_has_extension(extensions, "cl_nv_device_attribute_query"))
        return OCL_VENDOR_NVIDIA;
    if (vendor_id == 0x1002 || ocl_has_extension(extensions, "cl_amd_device_attribute_query"))
        return OCL_VENDOR_AMD;
    return OCL_VENDOR_OTHER;
}

/* The PCI vendor id of a CPU OpenCL device, from the CPUID vendor string its driver reports as
 * CL_DEVICE_VENDOR. CL_DEVICE_VENDOR_ID cannot be trusted for CPUs: PoCL answers 0x8086 on every
 * x86 host, AMD EPYC included, which would make an AMD CPU look like an Intel device. 0 when the
 * string names no vendor we know (the report then claims none). */
static cl_uint cpu_vendor_pci_id(const char *vendor) {
    static const struct { const char *cpuid; cl_uint pci; } known[] = {
        {"GenuineIntel", 0x8086}, {"AuthenticAMD", 0x1022}, {"HygonGenuine", 0x1d94},
        {"Intel", 0x8086},        {"AMD", 0x1022},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strstr(vendor, known[i].cpuid)) return known[i].pci;
    return 0;
}

/* "OpenCL 3.0 PoCL HSTR: ..." -> "OpenCL 3.0" (the rest is vendor text; the CPU keeps it as isa). */
static void short_api_version(const char *version, char *out, size_t size) {
    unsigned major = 0, minor = 0;
    if (sscanf(version, "OpenCL %u.%u", &major, &minor) == 2)
        snprintf(out, size, "OpenCL %u.%u", major, minor);
    else
        snprintf(out, size, "%s", version);
}

/* Reads the integer-dot-product and Intel feature queries into caps. */
static void int8_and_matrix_caps(exo_plugin_ctx *ctx, cl_device_id id, exo_device_report *r,
                                 ocl_device_facts *f) {
    if (ocl_has_extension(f->extensions, "cl_khr_integer_dot_product")) {
        cl_bitfield dot = 0;
        ocl_dot_acceleration accel;
        cl_int err = query(ctx, id, CL_DEVICE_INTEGER_DOT_PRODUCT_CAPABILITIES_KHR, &dot, sizeof dot);
        int packed = err == CL_SUCCESS && (dot & CL_DEVICE_INTEGER_DOT_PRODUCT_INPUT_4x8BIT_PACKED_KHR);
        /* The extension allows emulated dot products; only hardware ones are worth a cap bit. */
        err = query(ctx, id, CL_DEVICE_INTEGER_DOT_PRODUCT_ACCELERATION_PROPERTIES_4x8BIT_PACKED_KHR,
                    &accel, sizeof accel);
        int fast = err != CL_SUCCESS || accel.signed_accelerated || accel.mixed_signedness_accelerated;
        if (packed && fast) r->caps |= EXO_CAP_INT8_DOT;
    }
    if (ocl_has_extension(f->extensions, "cl_intel_device_attribute_query")) {
        cl_bitfield features = 0;
        if (query(ctx, id, CL_DEVICE_FEATURE_CAPABILITIES_INTEL, &features, sizeof features) == CL_SUCCESS) {
            if (features & CL_DEVICE_FEATURE_FLAG_DP4A_INTEL) r->caps |= EXO_CAP_INT8_DOT;
            if (features & CL_DEVICE_FEATURE_FLAG_DPAS_INTEL) {
                f->intel_dpas = 1;
                /* DPAS is reachable from OpenCL C only through the subgroup matrix extension. */
                r->caps |= ocl_has_extension(f->extensions, "cl_intel_subgroup_matrix_multiply_accumulate")
                               ? EXO_CAP_MATRIX
                               : EXO_CAP_MATRIX_PRESENT;
            }
        }
    }
}

/* Vendor details: PCI device id, architecture string for report->isa, NVIDIA compute capability. */
static void vendor_details(exo_plugin_ctx *ctx, cl_device_id id, exo_device_report *r,
                           ocl_device_facts *f, const char *device_version) {
    if (f->cl_type & CL_DEVICE_TYPE_CPU) {
        /* PoCL names the target it compiles kernels for: "HSTR: pthread-x86_64-...-skylake-avx512". */
        const char *hstr = strstr(device_version, "HSTR: ");
        snprintf(r->isa, sizeof r->isa, "%s", hstr ? hstr + 6 : "");
        return;
    }
    if (ocl_has_extension(f->extensions, "cl_intel_device_attribute_query")) {
        cl_uint ip = 0, pci_id = 0, slices = 0, subslices = 0, eus = 0, threads = 0;
        if (query(ctx, id, CL_DEVICE_IP_VERSION_INTEL, &ip, sizeof ip) == CL_SUCCESS && ip) {
            /* GMD ID layout, as in Level Zero's ze_device_ip_version_ext_t: arch.release.revision. */
            snprintf(r->isa, sizeof r->isa, "ip %u.%u.%u", ip >> 22, (ip >> 14) & 0xffu, ip & 0x3fu);
        }
        if (query(ctx, id, CL_DEVICE_ID_INTEL, &pci_id, sizeof pci_id) == CL_SUCCESS) r->device_id = pci_id;
        query(ctx, id, CL_DEVICE_NUM_SLICES_INTEL, &slices, sizeof slices);
        query(ctx, id, CL_DEVICE_NUM_SUB_SLICES_PER_SLICE_INTEL, &subslices, sizeof subslices);
        query(ctx, id, CL_DEVICE_NUM_EUS_PER_SUB_SLICE_INTEL, &eus, sizeof eus);
        query(ctx, id, CL_DEVICE_NUM_THREADS_PER_EU_INTEL, &threads, sizeof threads);
        /* Compute units are the enabled EUs on Intel. The topology product counts the maximum
         * per sub-slice (fused-off EUs included), so it only stands in when the count is missing. */
        if (r->compute_units == 0) r->compute_units = slices * subslices * eus;
        ocl_log(ctx, EXO_LOG_DEBUG, "%s: %u slices x %u sub-slices x %u EUs, %u threads/EU", r->name,
                slices, subslices, eus, threads);
    }
    if (ocl_has_extension(f->extensions, "cl_nv_device_attribute_query")) {
        query(ctx, id, CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV, &f->nv_cc_major, sizeof f->nv_cc_major);
        query(ctx, id, CL_DEVICE_COMPUTE_CAPABILITY_MINOR_NV, &f->nv_cc_minor, sizeof f->nv_cc_minor);
        if (f->nv_cc_major) snprintf(r->isa, sizeof r->isa, "sm_%u%u", f->nv_cc_major, f->nv_cc_minor);
    }
    if (ocl_has_extension(f->extensions, "cl_amd_device_attribute_query")) {
        cl_uint major = 0, minor = 0, pcie_id = 0;
        if (query(ctx, id, CL_DEVICE_GFXIP_MAJOR_AMD, &major, sizeof major) == CL_SUCCESS && major) {
            query(ctx, id, CL_DEVICE_GFXIP_MINOR_AMD, &minor, sizeof minor);
            snprintf(r->isa, sizeof r->isa, "gfx%u.%u", major, minor);
        }
        if (query(ctx, id, CL_DEVICE_PCIE_ID_AMD, &pcie_id, sizeof pcie_id) == CL_SUCCESS) r->device_id = pcie_id;
    }
}

/* Is the device a platform of PoCL? Its CPU device gets the PoCL-specific reason. */
static int is_pocl(const char *platform_name, const char *device_version) {
    return strstr(platform_name, "Portable Computing Language") || strstr(device_version, "PoCL");
}

static void score_device(exo_device_report *r, const ocl_device_facts *f, cl_bool available,
                         cl_bool compiler, unsigned c_major, unsigned c_minor, const char *platform_name,
                         const char *device_version, cl_int type_err) {
    if (type_err != CL_SUCCESS) {
        r->score = EXO_SCORE_UNUSABLE;
        snprintf(r->reason, sizeof r->reason, "clGetDeviceInfo(CL_DEVICE_TYPE) failed: %s (%d)",
                 cl_error_name(type_err), type_err);
        return;
    }
    if (!available) {
        r->score = EXO_SCORE_UNUSABLE;
        snprintf(r->reason, sizeof r->reason, "the driver reports the device unavailable (CL_DEVICE_AVAILABLE = false)");
        return;
    }
    if (!compiler) {
        r->score = EXO_SCORE_UNUSABLE;
        snprintf(r->reason, sizeof r->reason,
                 "no OpenCL C compiler (CL_DEVICE_COMPILER_AVAILABLE = false); this plugin builds its kernels at run time");
        return;
    }
    if (c_major == 0 || (c_major == 1 && c_minor < 2)) {
        r->score = EXO_SCORE_UNUSABLE;
        snprintf(r->reason, sizeof r->reason, "OpenCL C %u.%u: the kernels need OpenCL C 1.2 or newer",
                 c_major, c_minor);
        return;
    }
    if (f->cl_type & CL_DEVICE_TYPE_GPU) {
        int integrated = r->type == EXO_DEVICE_INTEGRATED_GPU;
        r->score = integrated ? EXO_SCORE_CAPABLE : EXO_SCORE_PREFERRED;
        snprintf(r->reason, sizeof r->reason,
                 "%s GPU through OpenCL%s; TFLOPS and bandwidth are estimates from compute units x clock",
                 integrated ? "integrated" : "discrete", integrated ? " (shares host memory)" : "");
    } else if (f->cl_type & CL_DEVICE_TYPE_CPU) {
        /* PoCL's CPU device is correct but slow (it targets a generic ISA and has no fp16, no
         * subgroups); it must rank below the cpu_amx plugin's view of the same "cpu:0". */
        r->score = EXO_SCORE_SERVABLE;
        if (is_pocl(platform_name, device_version))
            snprintf(r->reason, sizeof r->reason,
                     "CPU OpenCL device (PoCL): usable, but the cpu_amx plugin serves this CPU better");
        else
            snprintf(r->reason, sizeof r->reason,
                     "CPU OpenCL device (%s): usable, but the cpu_amx plugin serves this CPU better",
                     platform_name);
    } else if (f->cl_type & CL_DEVICE_TYPE_ACCELERATOR) {
        r->score = EXO_SCORE_SERVABLE;
        snprintf(r->reason, sizeof r->reason,
                 "OpenCL accelerator: the kernels are written and tuned for GPUs, not for it");
    } else {
        r->score = EXO_SCORE_UNUSABLE;
        snprintf(r->reason, sizeof r->reason,
                 "custom OpenCL device type (0x%llx): runs only built-in kernels", (unsigned long long)f->cl_type);
    }
}

void ocl_describe_device(exo_plugin_ctx *ctx, ocl_device *dev, const char *platform_name) {
    exo_device_report *r = &dev->report;
    memset(r, 0, sizeof *r);
    EXO_STRUCT_INIT(r);
    cl_device_id id = dev->id;

    char *extensions = NULL;
    cl_int err = ocl_device_string(ctx, id, CL_DEVICE_EXTENSIONS, &extensions);
    if (err != CL_SUCCESS)
        ocl_log(ctx, EXO_LOG_WARN, "clGetDeviceInfo(CL_DEVICE_EXTENSIONS) failed: %s (%d)", cl_error_name(err), err);
    ocl_device_facts facts = {0};
    facts.extensions = extensions ? extensions : "";

    if (query_text(ctx, id, CL_DEVICE_NAME, r->name, sizeof r->name) != CL_SUCCESS || !r->name[0])
        snprintf(r->name, sizeof r->name, "OpenCL device %u.%u", dev->platform_index, dev->device_index);
    query_text(ctx, id, CL_DEVICE_VENDOR, r->vendor, sizeof r->vendor);
    query_text(ctx, id, CL_DRIVER_VERSION, r->driver_version, sizeof r->driver_version);
    char device_version[256];
    query_text(ctx, id, CL_DEVICE_VERSION, device_version, sizeof device_version);
    short_api_version(device_version, r->api_version, sizeof r->api_version);
    char c_version[128];
    unsigned c_major = 0, c_minor = 0;
    query_text(ctx, id, CL_DEVICE_OPENCL_C_VERSION, c_version, sizeof c_version);
    if (sscanf(c_version, "OpenCL C %u.%u", &c_major, &c_minor) != 2) c_major = c_minor = 0;

    cl_uint vendor_id = 0, units = 0, clock = 0;
    cl_ulong global_mem = 0, max_alloc = 0;
    cl_bool unified = CL_FALSE, available = CL_FALSE, compiler = CL_FALSE;
    cl_int type_err = query(ctx, id, CL_DEVICE_TYPE, &facts.cl_type, sizeof facts.cl_type);
    query(ctx, id, CL_DEVICE_VENDOR_ID, &vendor_id, sizeof vendor_id);
    query(ctx, id, CL_DEVICE_GLOBAL_MEM_SIZE, &global_mem, sizeof global_mem);
    query(ctx, id, CL_DEVICE_MAX_MEM_ALLOC_SIZE, &max_alloc, sizeof max_alloc);
    query(ctx, id, CL_DEVICE_MAX_COMPUTE_UNITS, &units, sizeof units);
    query(ctx, id, CL_DEVICE_MAX_CLOCK_FREQUENCY, &clock, sizeof clock);
    query(ctx, id, CL_DEVICE_HOST_UNIFIED_MEMORY, &unified, sizeof unified);
    query(ctx, id, CL_DEVICE_AVAILABLE, &available, sizeof available);
    query(ctx, id, CL_DEVICE_COMPILER_AVAILABLE, &compiler, sizeof compiler);
    query(ctx, id, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT, &facts.native_float_width, sizeof facts.native_float_width);

    if (type_err == CL_SUCCESS && (facts.cl_type & CL_DEVICE_TYPE_CPU)) vendor_id = cpu_vendor_pci_id(r->vendor);
    facts.vendor = classify_vendor(vendor_id, facts.extensions);
    /* CL_DEVICE_VENDOR_ID is a PCI vendor id for PCI devices and a Khronos id (>= 0x10000) for
     * others; the report wants the PCI id or 0. */
    r->vendor_id = vendor_id <= 0xffffu ? vendor_id : 0;
    r->memory_total = global_mem;
    r->max_alloc = max_alloc;
    r->compute_units = units;
    r->clock_mhz = clock;

    if (ocl_has_extension(facts.extensions, "cl_nv_device_attribute_query")) {
        /* NVIDIA answers HOST_UNIFIED_MEMORY false even on Tegra; its own query knows. */
        cl_bool integrated = CL_FALSE;
        if (query(ctx, id, CL_DEVICE_INTEGRATED_MEMORY_NV, &integrated, sizeof integrated) == CL_SUCCESS)
            unified = integrated;
    }
    if (facts.cl_type & CL_DEVICE_TYPE_GPU)
        r->type = unified ? EXO_DEVICE_INTEGRATED_GPU : EXO_DEVICE_DISCRETE_GPU;
    else if (facts.cl_type & CL_DEVICE_TYPE_CPU)
        r->type = EXO_DEVICE_CPU;
    else if (facts.cl_type & CL_DEVICE_TYPE_ACCELERATOR)
        r->type = EXO_DEVICE_ACCELERATOR;
    else
        r->type = EXO_DEVICE_UNKNOWN;

    if (unified || (facts.cl_type & CL_DEVICE_TYPE_CPU)) r->caps |= EXO_CAP_UNIFIED_MEMORY;
    if (ocl_has_extension(facts.extensions, "cl_khr_fp16")) r->caps |= EXO_CAP_FP16;
    if (ocl_has_extension(facts.extensions, "cl_khr_subgroups") ||
        ocl_has_extension(facts.extensions, "cl_intel_subgroups"))
        r->caps |= EXO_CAP_SUBGROUPS;
    int8_and_matrix_caps(ctx, id, r, &facts);
    vendor_details(ctx, id, r, &facts, device_version);

    /* Free memory: only AMD's extension tells; the others report the total (ABI rule). */
    r->memory_free = r->memory_total;
    if (ocl_has_extension(facts.extensions, "cl_amd_device_attribute_query")) {
        uint64_t free_bytes = 0;
        if (ocl_amd_free_memory(ctx, id, &free_bytes) == CL_SUCCESS) {
            dev->has_amd_free_memory = 1;
            r->memory_free = free_bytes < r->memory_total ? free_bytes : r->memory_total;
        }
    }

    score_device(r, &facts, available, compiler, c_major, c_minor, platform_name, device_version, type_err);
    ocl_fingerprint(ctx, dev, &facts, r->fingerprint, sizeof r->fingerprint);
    ocl_estimate_performance(r, &facts);
    if (extensions) ctx->host->free(ctx->host->host_ctx, extensions);
}
