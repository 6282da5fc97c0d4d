/* ocl_ext.h — vendor and KHR extension constants the probe queries, defined here when the
 * installed Khronos headers predate them. Values are from the Khronos OpenCL registry
 * (cl_ext.h / the extension specifications) and never change once published. */
#ifndef EXO_OPENCL_OCL_EXT_H
#define EXO_OPENCL_OCL_EXT_H

/* cl_khr_icd: clGetPlatformIDs result when the loader finds no vendor ICD. */
#ifndef CL_PLATFORM_NOT_FOUND_KHR
#define CL_PLATFORM_NOT_FOUND_KHR -1001
#endif

/* cl_khr_device_uuid */
#ifndef CL_UUID_SIZE_KHR
#define CL_UUID_SIZE_KHR 16
#endif
#ifndef CL_DEVICE_UUID_KHR
#define CL_DEVICE_UUID_KHR 0x106A
#endif

/* cl_khr_pci_bus_info: returns four cl_uints (domain, bus, device, function). Our own struct
 * so the layout does not depend on the header's age. */
#ifndef CL_DEVICE_PCI_BUS_INFO_KHR
#define CL_DEVICE_PCI_BUS_INFO_KHR 0x410F
#endif
typedef struct ocl_pci_bus_info {
    cl_uint domain;
    cl_uint bus;
    cl_uint device;
    cl_uint function;
} ocl_pci_bus_info;

/* cl_khr_integer_dot_product */
#ifndef CL_DEVICE_INTEGER_DOT_PRODUCT_CAPABILITIES_KHR
#define CL_DEVICE_INTEGER_DOT_PRODUCT_CAPABILITIES_KHR 0x1073
#endif
#ifndef CL_DEVICE_INTEGER_DOT_PRODUCT_ACCELERATION_PROPERTIES_4x8BIT_PACKED_KHR
#define CL_DEVICE_INTEGER_DOT_PRODUCT_ACCELERATION_PROPERTIES_4x8BIT_PACKED_KHR 0x1075
#endif
#ifndef CL_DEVICE_INTEGER_DOT_PRODUCT_INPUT_4x8BIT_PACKED_KHR
#define CL_DEVICE_INTEGER_DOT_PRODUCT_INPUT_4x8BIT_PACKED_KHR (1 << 0)
#endif
/* Six cl_bools: signed, unsigned, mixed, then the accumulating-saturating variants. */
typedef struct ocl_dot_acceleration {
    cl_bool signed_accelerated;
    cl_bool unsigned_accelerated;
    cl_bool mixed_signedness_accelerated;
    cl_bool accumulating_saturating_signed_accelerated;
    cl_bool accumulating_saturating_unsigned_accelerated;
    cl_bool accumulating_saturating_mixed_signedness_accelerated;
} ocl_dot_acceleration;

/* cl_intel_device_attribute_query */
#ifndef CL_DEVICE_IP_VERSION_INTEL
#define CL_DEVICE_IP_VERSION_INTEL 0x4250
#endif
#ifndef CL_DEVICE_ID_INTEL
#define CL_DEVICE_ID_INTEL 0x4251
#endif
#ifndef CL_DEVICE_NUM_SLICES_INTEL
#define CL_DEVICE_NUM_SLICES_INTEL 0x4252
#endif
#ifndef CL_DEVICE_NUM_SUB_SLICES_PER_SLICE_INTEL
#define CL_DEVICE_NUM_SUB_SLICES_PER_SLICE_INTEL 0x4253
#endif
#ifndef CL_DEVICE_NUM_EUS_PER_SUB_SLICE_INTEL
#define CL_DEVICE_NUM_EUS_PER_SUB_SLICE_INTEL 0x4254
#endif
#ifndef CL_DEVICE_NUM_THREADS_PER_EU_INTEL
#define CL_DEVICE_NUM_THREADS_PER_EU_INTEL 0x4255
#endif
#ifndef CL_DEVICE_FEATURE_CAPABILITIES_INTEL
#define CL_DEVICE_FEATURE_CAPABILITIES_INTEL 0x4256
#endif
#ifndef CL_DEVICE_FEATURE_FLAG_DP4A_INTEL
#define CL_DEVICE_FEATURE_FLAG_DP4A_INTEL (1 << 0)
#endif
#ifndef CL_DEVICE_FEATURE_FLAG_DPAS_INTEL
#define CL_DEVICE_FEATURE_FLAG_DPAS_INTEL (1 << 1)
#endif

/* cl_nv_device_attribute_query. The PCI queries are documented by use (hwloc, NVIDIA samples),
 * not in the registry text; see fingerprint code for how SLOT_ID is decoded. */
#ifndef CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV
#define CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV 0x4000
#endif
#ifndef CL_DEVICE_COMPUTE_CAPABILITY_MINOR_NV
#define CL_DEVICE_COMPUTE_CAPABILITY_MINOR_NV 0x4001
#endif
#ifndef CL_DEVICE_INTEGRATED_MEMORY_NV
#define CL_DEVICE_INTEGRATED_MEMORY_NV 0x4006
#endif
#ifndef CL_DEVICE_PCI_BUS_ID_NV
#define CL_DEVICE_PCI_BUS_ID_NV 0x4008
#endif
#ifndef CL_DEVICE_PCI_SLOT_ID_NV
#define CL_DEVICE_PCI_SLOT_ID_NV 0x4009
#endif
#ifndef CL_DEVICE_PCI_DOMAIN_ID_NV
#define CL_DEVICE_PCI_DOMAIN_ID_NV 0x400A
#endif

/* cl_amd_device_attribute_query */
#ifndef CL_DEVICE_TOPOLOGY_AMD
#define CL_DEVICE_TOPOLOGY_AMD 0x4037
#endif
#ifndef CL_DEVICE_GLOBAL_FREE_MEMORY_AMD
#define CL_DEVICE_GLOBAL_FREE_MEMORY_AMD 0x4039
#endif
#ifndef CL_DEVICE_PCIE_ID_AMD
#define CL_DEVICE_PCIE_ID_AMD 0x4034
#endif
#ifndef CL_DEVICE_GFXIP_MAJOR_AMD
#define CL_DEVICE_GFXIP_MAJOR_AMD 0x404A
#endif
#ifndef CL_DEVICE_GFXIP_MINOR_AMD
#define CL_DEVICE_GFXIP_MINOR_AMD 0x404B
#endif
#define OCL_TOPOLOGY_TYPE_PCIE_AMD 1
/* Our own copy of cl_device_topology_amd (24 bytes): type, then bus/device/function in the
 * last three bytes of the PCIe view. */
typedef union ocl_topology_amd {
    struct { cl_uint type; cl_uint data[5]; } raw;
    struct { cl_uint type; cl_uchar unused[17]; cl_uchar bus; cl_uchar device; cl_uchar function; } pcie;
} ocl_topology_amd;

#endif
