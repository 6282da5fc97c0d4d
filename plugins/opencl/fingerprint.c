/* fingerprint.c — one stable identity per physical device, shared with the other plugins so the
 * registry shows a device once (best-ranked view primary, the others as alternates). */
#include "ocl_plugin.h"

#include <stdio.h>
#include <string.h>

static int format_pci(char *out, size_t out_size, unsigned domain, unsigned bus, unsigned device,
                      unsigned function) {
    snprintf(out, out_size, "%04x:%02x:%02x.%x", domain & 0xffffu, bus & 0xffu, device & 0x1fu,
             function & 0x7u);
    return 1;
}

static int khr_pci(exo_plugin_ctx *ctx, const ocl_device *dev, const ocl_device_facts *f, char *out,
                   size_t out_size) {
    if (!ocl_has_extension(f->extensions, "cl_khr_pci_bus_info")) return 0;
    ocl_pci_bus_info pci = {0};
    if (ctx->api.clGetDeviceInfo(dev->id, CL_DEVICE_PCI_BUS_INFO_KHR, sizeof pci, &pci, NULL) != CL_SUCCESS)
        return 0;
    return format_pci(out, out_size, pci.domain, pci.bus, pci.device, pci.function);
}

/* NVIDIA reports bus and "slot" without documenting the slot's encoding. It is the PCI device
 * number: on an H200 (driver 580.159.04) nvidia-smi says 0000:00:06.0 and the queries answer
 * bus 0, slot 6 (hwloc and clinfo read the slot as device << 3 | function and print 00:00.6,
 * which is wrong there). NVIDIA GPUs are single-function, so the function is 0. Drivers that
 * have cl_khr_pci_bus_info (this one does) never get here. */
static int nv_pci(exo_plugin_ctx *ctx, const ocl_device *dev, const ocl_device_facts *f, char *out,
                  size_t out_size) {
    if (!ocl_has_extension(f->extensions, "cl_nv_device_attribute_query")) return 0;
    cl_uint bus = 0, slot = 0, domain = 0;
    if (ctx->api.clGetDeviceInfo(dev->id, CL_DEVICE_PCI_BUS_ID_NV, sizeof bus, &bus, NULL) != CL_SUCCESS ||
        ctx->api.clGetDeviceInfo(dev->id, CL_DEVICE_PCI_SLOT_ID_NV, sizeof slot, &slot, NULL) != CL_SUCCESS)
        return 0;
    /* The domain query arrived with CUDA 10.2 drivers; older ones only have domain 0. */
    if (ctx->api.clGetDeviceInfo(dev->id, CL_DEVICE_PCI_DOMAIN_ID_NV, sizeof domain, &domain, NULL) != CL_SUCCESS)
        domain = 0;
    return format_pci(out, out_size, domain, bus, slot, 0);
}

static int amd_pci(exo_plugin_ctx *ctx, const ocl_device *dev, const ocl_device_facts *f, char *out,
                   size_t out_size) {
    if (!ocl_has_extension(f->extensions, "cl_amd_device_attribute_query")) return 0;
    ocl_topology_amd topo;
    memset(&topo, 0, sizeof topo);
    if (ctx->api.clGetDeviceInfo(dev->id, CL_DEVICE_TOPOLOGY_AMD, sizeof topo, &topo, NULL) != CL_SUCCESS ||
        topo.raw.type != OCL_TOPOLOGY_TYPE_PCIE_AMD)
        return 0;
    return format_pci(out, out_size, 0, topo.pcie.bus, topo.pcie.device, topo.pcie.function);
}

static int khr_uuid(exo_plugin_ctx *ctx, const ocl_device *dev, const ocl_device_facts *f, char *out,
                    size_t out_size) {
    if (!ocl_has_extension(f->extensions, "cl_khr_device_uuid")) return 0;
    cl_uchar uuid[CL_UUID_SIZE_KHR] = {0};
    if (ctx->api.clGetDeviceInfo(dev->id, CL_DEVICE_UUID_KHR, sizeof uuid, uuid, NULL) != CL_SUCCESS) return 0;
    int all_zero = 1;
    for (size_t k = 0; k < sizeof uuid; k++) all_zero &= uuid[k] == 0;
    if (all_zero) return 0; /* some drivers answer without knowing one */
    size_t used = (size_t)snprintf(out, out_size, "uuid:");
    for (size_t k = 0; k < sizeof uuid && used + 2 < out_size; k++) {
        used += (size_t)snprintf(out + used, out_size - used, "%02x", uuid[k]);
    }
    return 1;
}

void ocl_fingerprint(exo_plugin_ctx *ctx, const ocl_device *dev, const ocl_device_facts *facts,
                     char *out, size_t out_size) {
    /* One CPU per host as far as placement goes; every plugin names it "cpu:0". */
    if (facts->cl_type & CL_DEVICE_TYPE_CPU) {
        snprintf(out, out_size, "cpu:0");
        return;
    }
    if (khr_pci(ctx, dev, facts, out, out_size)) return;
    if (nv_pci(ctx, dev, facts, out, out_size)) return;
    if (amd_pci(ctx, dev, facts, out, out_size)) return;
    if (khr_uuid(ctx, dev, facts, out, out_size)) return;
    /* Unique within this process only: such a device is never merged with another view. */
    snprintf(out, out_size, "opencl:%u.%u", dev->platform_index, dev->device_index);
}
