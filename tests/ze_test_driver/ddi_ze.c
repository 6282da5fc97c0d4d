/* ddi_ze.c — the core (ze) DDI tables the loader asks for. Slots this driver implements are
 * filled; the others stay NULL and the loader reports them as unsupported. A later issue fills
 * Context, Mem, Module, Kernel, CommandList, CommandQueue, Event and Fence here. */
#include "ze_test_driver.h"

#include <level_zero/ze_ddi.h>
#include <string.h>

ze_result_t td_ddi_request(ze_api_version_t version, const void *table) {
    if (!table) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    if (ZE_MAJOR_VERSION(version) != ZE_MAJOR_VERSION(ZE_API_VERSION_CURRENT))
        return ZE_RESULT_ERROR_UNSUPPORTED_VERSION;
    return ZE_RESULT_SUCCESS;
}

TD_DDI_TABLE(zeGetGlobalProcAddrTable, ze_global_dditable_t, table->pfnInit = td_zeInit)

TD_DDI_TABLE(zeGetDriverProcAddrTable, ze_driver_dditable_t, {
    table->pfnGet = td_zeDriverGet;
    table->pfnGetApiVersion = td_zeDriverGetApiVersion;
    table->pfnGetProperties = td_zeDriverGetProperties;
})

TD_DDI_TABLE(zeGetDeviceProcAddrTable, ze_device_dditable_t, {
    table->pfnGet = td_zeDeviceGet;
    table->pfnGetProperties = td_zeDeviceGetProperties;
    table->pfnGetComputeProperties = td_zeDeviceGetComputeProperties;
    table->pfnGetModuleProperties = td_zeDeviceGetModuleProperties;
    table->pfnGetMemoryProperties = td_zeDeviceGetMemoryProperties;
})

TD_DDI_TABLE(zeGetDeviceExpProcAddrTable, ze_device_exp_dditable_t, (void)0)
TD_DDI_TABLE(zeGetContextProcAddrTable, ze_context_dditable_t, (void)0)
TD_DDI_TABLE(zeGetCommandQueueProcAddrTable, ze_command_queue_dditable_t, (void)0)
TD_DDI_TABLE(zeGetCommandListProcAddrTable, ze_command_list_dditable_t, (void)0)
TD_DDI_TABLE(zeGetImageProcAddrTable, ze_image_dditable_t, (void)0)
TD_DDI_TABLE(zeGetImageExpProcAddrTable, ze_image_exp_dditable_t, (void)0)
TD_DDI_TABLE(zeGetFenceProcAddrTable, ze_fence_dditable_t, (void)0)
TD_DDI_TABLE(zeGetEventPoolProcAddrTable, ze_event_pool_dditable_t, (void)0)
TD_DDI_TABLE(zeGetEventProcAddrTable, ze_event_dditable_t, (void)0)
TD_DDI_TABLE(zeGetEventExpProcAddrTable, ze_event_exp_dditable_t, (void)0)
TD_DDI_TABLE(zeGetModuleProcAddrTable, ze_module_dditable_t, (void)0)
TD_DDI_TABLE(zeGetModuleBuildLogProcAddrTable, ze_module_build_log_dditable_t, (void)0)
TD_DDI_TABLE(zeGetKernelProcAddrTable, ze_kernel_dditable_t, (void)0)
TD_DDI_TABLE(zeGetKernelExpProcAddrTable, ze_kernel_exp_dditable_t, (void)0)
TD_DDI_TABLE(zeGetSamplerProcAddrTable, ze_sampler_dditable_t, (void)0)
TD_DDI_TABLE(zeGetPhysicalMemProcAddrTable, ze_physical_mem_dditable_t, (void)0)
TD_DDI_TABLE(zeGetMemProcAddrTable, ze_mem_dditable_t, (void)0)
TD_DDI_TABLE(zeGetVirtualMemProcAddrTable, ze_virtual_mem_dditable_t, (void)0)
TD_DDI_TABLE(zeGetFabricVertexExpProcAddrTable, ze_fabric_vertex_exp_dditable_t, (void)0)
TD_DDI_TABLE(zeGetFabricEdgeExpProcAddrTable, ze_fabric_edge_exp_dditable_t, (void)0)
