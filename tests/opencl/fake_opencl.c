/* A stand-in OpenCL ICD loader for the probe tests, loaded by the plugin through
 * EXO_OPENCL_LIBRARY. It serves the four calls the probe makes with devices this machine does
 * not have (an Intel discrete and an integrated GPU, an NVIDIA GPU without cl_khr_pci_bus_info,
 * devices the plugin must refuse, a non-PCI vendor), and one platform without devices, so the
 * describe/fingerprint/score logic is checked against known answers. Values follow the drivers'
 * real encodings (GMD IP version, NVIDIA bus/slot, Intel feature bits). */
#define CL_TARGET_OPENCL_VERSION 300
#include <CL/cl.h>
#include <CL/cl_ext.h>

#include <string.h>

typedef struct fake_device {
    const char *name, *vendor, *version, *c_version, *extensions;
    cl_device_type type;
    cl_uint vendor_id, units, clock;
    cl_bool unified, available, compiler;
    cl_ulong memory;
    cl_uint pci[4];       /* cl_khr_pci_bus_info */
    cl_uchar uuid[16];    /* cl_khr_device_uuid */
    cl_uint ip_version, intel_id, slices, subslices, eus;
    cl_bitfield intel_features;
    cl_uint nv_bus, nv_slot, nv_domain, nv_cc_major, nv_cc_minor;
} fake_device;

#define INTEL_EXT "cl_khr_fp16 cl_intel_subgroups cl_intel_device_attribute_query "
static const fake_device devices[] = {
    {.name = "Intel(R) Arc(TM) A770 Graphics", .vendor = "Intel(R) Corporation", .version = "OpenCL 3.0 NEO ",
     .c_version = "OpenCL C 1.2 ", .type = CL_DEVICE_TYPE_GPU, .vendor_id = 0x8086, .units = 512, .clock = 2400,
     .extensions = INTEL_EXT "cl_khr_pci_bus_info cl_khr_device_uuid cl_intel_subgroup_matrix_multiply_accumulate",
     .available = CL_TRUE, .compiler = CL_TRUE, .memory = 16ull << 30, .pci = {0, 3, 0, 0},
     .uuid = {0x86, 0x80}, .ip_version = (12u << 22) | (55u << 14) | 8u, .intel_id = 0x56a0, .slices = 1,
     .subslices = 32, .eus = 16, .intel_features = CL_DEVICE_FEATURE_FLAG_DP4A_INTEL | CL_DEVICE_FEATURE_FLAG_DPAS_INTEL},
    {.name = "Intel(R) UHD Graphics 770", .vendor = "Intel(R) Corporation", .version = "OpenCL 3.0 NEO ",
     .c_version = "OpenCL C 1.2 ", .type = CL_DEVICE_TYPE_GPU, .vendor_id = 0x8086, .units = 32, .clock = 1450,
     .extensions = INTEL_EXT "cl_khr_device_uuid", .unified = CL_TRUE, .available = CL_TRUE, .compiler = CL_TRUE,
     .memory = 12ull << 30, .uuid = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
     .intel_features = CL_DEVICE_FEATURE_FLAG_DP4A_INTEL | CL_DEVICE_FEATURE_FLAG_DPAS_INTEL},
    {.name = "NVIDIA Fake", .vendor = "NVIDIA Corporation", .version = "OpenCL 3.0 CUDA", .c_version = "OpenCL C 1.2 ",
     .type = CL_DEVICE_TYPE_GPU, .vendor_id = 0x10de, .units = 84, .clock = 1700,
     .extensions = "cl_khr_fp64 cl_nv_device_attribute_query", .available = CL_TRUE, .compiler = CL_TRUE,
     .memory = 24ull << 30, .nv_bus = 0x41, .nv_slot = 2, .nv_domain = 1, .nv_cc_major = 8, .nv_cc_minor = 6},
    {.name = "Unavailable GPU", .vendor = "Nobody", .version = "OpenCL 3.0", .c_version = "OpenCL C 1.2",
     .type = CL_DEVICE_TYPE_GPU, .units = 8, .clock = 1000, .extensions = "", .available = CL_FALSE,
     .compiler = CL_TRUE, .memory = 1ull << 30},
    {.name = "Old GPU", .vendor = "Nobody", .version = "OpenCL 1.1", .c_version = "OpenCL C 1.1",
     .type = CL_DEVICE_TYPE_GPU, .units = 8, .clock = 1000, .extensions = "", .available = CL_TRUE,
     .compiler = CL_TRUE, .memory = 1ull << 30},
    {.name = "Khronos-id accelerator", .vendor = "Someone", .version = "OpenCL 3.0", .c_version = "OpenCL C 1.2",
     .type = CL_DEVICE_TYPE_ACCELERATOR, .vendor_id = 0x10006, .units = 4, .clock = 500, .extensions = "",
     .available = CL_TRUE, .compiler = CL_TRUE, .memory = 1ull << 30},
};
#define N_DEVICES (sizeof devices / sizeof devices[0])

/* Two platforms: the first has every device above, the second none. */
static const char *const platform_names[2] = {"Fake Platform", "Empty Fake Platform"};
static const int platform_tokens[2];

static cl_int answer(const void *value, size_t size, size_t param_value_size, void *param_value,
                     size_t *param_value_size_ret) {
    if (param_value_size_ret) *param_value_size_ret = size;
    if (param_value) {
        if (param_value_size < size) return CL_INVALID_VALUE;
        memcpy(param_value, value, size);
    }
    return CL_SUCCESS;
}

static cl_int answer_text(const char *text, size_t n, void *v, size_t *r) {
    return answer(text, strlen(text) + 1, n, v, r);
}

CL_API_ENTRY cl_int CL_API_CALL clGetPlatformIDs(cl_uint num_entries, cl_platform_id *platforms,
                                                 cl_uint *num_platforms) {
    if (num_platforms) *num_platforms = 2;
    for (cl_uint k = 0; platforms && k < num_entries && k < 2; k++)
        platforms[k] = (cl_platform_id)(const void *)&platform_tokens[k];
    return CL_SUCCESS;
}

static int platform_index(cl_platform_id p) {
    for (int k = 0; k < 2; k++)
        if ((const void *)p == (const void *)&platform_tokens[k]) return k;
    return -1;
}

CL_API_ENTRY cl_int CL_API_CALL clGetPlatformInfo(cl_platform_id platform, cl_platform_info param,
                                                  size_t n, void *v, size_t *r) {
    int k = platform_index(platform);
    if (k < 0) return CL_INVALID_PLATFORM;
    if (param != CL_PLATFORM_NAME) return CL_INVALID_VALUE;
    return answer_text(platform_names[k], n, v, r);
}

CL_API_ENTRY cl_int CL_API_CALL clGetDeviceIDs(cl_platform_id platform, cl_device_type type,
                                               cl_uint num_entries, cl_device_id *out, cl_uint *num_devices) {
    int k = platform_index(platform);
    if (k < 0) return CL_INVALID_PLATFORM;
    if (k == 1 || type != CL_DEVICE_TYPE_ALL) return CL_DEVICE_NOT_FOUND;
    if (num_devices) *num_devices = (cl_uint)N_DEVICES;
    for (cl_uint d = 0; out && d < num_entries && d < N_DEVICES; d++)
        out[d] = (cl_device_id)(const void *)&devices[d];
    return CL_SUCCESS;
}

static int has(const fake_device *d, const char *ext) { return strstr(d->extensions, ext) != NULL; }

CL_API_ENTRY cl_int CL_API_CALL clGetDeviceInfo(cl_device_id device, cl_device_info param, size_t n,
                                                void *v, size_t *r) {
    const fake_device *d = (const fake_device *)(const void *)device;
    if (d < devices || d >= devices + N_DEVICES) return CL_INVALID_DEVICE;
    cl_uint width = 4, intel_threads = 8;
    switch (param) {
    case CL_DEVICE_NAME: return answer_text(d->name, n, v, r);
    case CL_DEVICE_VENDOR: return answer_text(d->vendor, n, v, r);
    case CL_DRIVER_VERSION: return answer_text("1.2.3-fake", n, v, r);
    case CL_DEVICE_VERSION: return answer_text(d->version, n, v, r);
    case CL_DEVICE_OPENCL_C_VERSION: return answer_text(d->c_version, n, v, r);
    case CL_DEVICE_EXTENSIONS: return answer_text(d->extensions, n, v, r);
    case CL_DEVICE_TYPE: return answer(&d->type, sizeof d->type, n, v, r);
    case CL_DEVICE_VENDOR_ID: return answer(&d->vendor_id, sizeof(cl_uint), n, v, r);
    case CL_DEVICE_MAX_COMPUTE_UNITS: return answer(&d->units, sizeof(cl_uint), n, v, r);
    case CL_DEVICE_MAX_CLOCK_FREQUENCY: return answer(&d->clock, sizeof(cl_uint), n, v, r);
    case CL_DEVICE_GLOBAL_MEM_SIZE: return answer(&d->memory, sizeof(cl_ulong), n, v, r);
    case CL_DEVICE_MAX_MEM_ALLOC_SIZE: {
        cl_ulong quarter = d->memory / 4;
        return answer(&quarter, sizeof quarter, n, v, r);
    }
    case CL_DEVICE_HOST_UNIFIED_MEMORY: return answer(&d->unified, sizeof(cl_bool), n, v, r);
    case CL_DEVICE_AVAILABLE: return answer(&d->available, sizeof(cl_bool), n, v, r);
    case CL_DEVICE_COMPILER_AVAILABLE: return answer(&d->compiler, sizeof(cl_bool), n, v, r);
    case CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT: return answer(&width, sizeof width, n, v, r);
    }
    if (has(d, "cl_khr_pci_bus_info") && param == CL_DEVICE_PCI_BUS_INFO_KHR)
        return answer(d->pci, sizeof d->pci, n, v, r);
    if (has(d, "cl_khr_device_uuid") && param == CL_DEVICE_UUID_KHR) return answer(d->uuid, 16, n, v, r);
    if (has(d, "cl_intel_device_attribute_query")) {
        switch (param) {
        case CL_DEVICE_IP_VERSION_INTEL: return answer(&d->ip_version, sizeof(cl_uint), n, v, r);
        case CL_DEVICE_ID_INTEL: return answer(&d->intel_id, sizeof(cl_uint), n, v, r);
        case CL_DEVICE_NUM_SLICES_INTEL: return answer(&d->slices, sizeof(cl_uint), n, v, r);
        case CL_DEVICE_NUM_SUB_SLICES_PER_SLICE_INTEL: return answer(&d->subslices, sizeof(cl_uint), n, v, r);
        case CL_DEVICE_NUM_EUS_PER_SUB_SLICE_INTEL: return answer(&d->eus, sizeof(cl_uint), n, v, r);
        case CL_DEVICE_NUM_THREADS_PER_EU_INTEL: return answer(&intel_threads, sizeof(cl_uint), n, v, r);
        case CL_DEVICE_FEATURE_CAPABILITIES_INTEL: return answer(&d->intel_features, sizeof(cl_bitfield), n, v, r);
        }
    }
    if (has(d, "cl_nv_device_attribute_query")) {
        cl_bool no = CL_FALSE;
        switch (param) {
        case 0x4000: return answer(&d->nv_cc_major, sizeof(cl_uint), n, v, r);
        case 0x4001: return answer(&d->nv_cc_minor, sizeof(cl_uint), n, v, r);
        case 0x4006: return answer(&no, sizeof no, n, v, r);
        case 0x4008: return answer(&d->nv_bus, sizeof(cl_uint), n, v, r);
        case 0x4009: return answer(&d->nv_slot, sizeof(cl_uint), n, v, r);
        case 0x400A: return answer(&d->nv_domain, sizeof(cl_uint), n, v, r);
        }
    }
    return CL_INVALID_VALUE;
}
