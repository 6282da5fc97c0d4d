/* ddi_ze.c — the core (ze) DDI tables the loader asks for. Slots this driver implements are
 * filled; the others stay NULL and the loader reports them as unsupported (events among them:
 * completion is reported through fences). */
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
    table->pfnGetExtensionProperties = td_zeDriverGetExtensionProperties;
})

TD_DDI_TABLE(zeGetDeviceProcAddrTable, ze_device_dditable_t, {
    table->pfnGet = td_zeDeviceGet;
    table->pfnGetProperties = td_zeDeviceGetProperties;
    table->pfnGetComputeProperties = td_zeDeviceGetComputeProperties;
    table->pfnGetModuleProperties = td_zeDeviceGetModuleProperties;
    table->pfnGetMemoryProperties = td_zeDeviceGetMemoryProperties;
    table->pfnGetCommandQueueGroupProperties = td_zeDeviceGetCommandQueueGroupProperties;
    table->pfnCanAccessPeer = td_zeDeviceCanAccessPeer;
    table->pfnGetP2PProperties = td_zeDeviceGetP2PProperties;
})

TD_DDI_TABLE(zeGetDeviceExpProcAddrTable, ze_device_exp_dditable_t, (void)0)
TD_DDI_TABLE(zeGetContextProcAddrTable, ze_context_dditable_t, {
    table->pfnCreate = td_zeContextCreate;
    table->pfnDestroy = td_zeContextDestroy;
    table->pfnGetStatus = td_zeContextGetStatus;
})
TD_DDI_TABLE(zeGetCommandQueueProcAddrTable, ze_command_queue_dditable_t, {
    table->pfnCreate = td_zeCommandQueueCreate;
    table->pfnDestroy = td_zeCommandQueueDestroy;
    table->pfnExecuteCommandLists = td_zeCommandQueueExecuteCommandLists;
    table->pfnSynchronize = td_zeCommandQueueSynchronize;
})
TD_DDI_TABLE(zeGetCommandListProcAddrTable, ze_command_list_dditable_t, {
    table->pfnCreate = td_zeCommandListCreate;
    table->pfnCreateImmediate = td_zeCommandListCreateImmediate;
    table->pfnDestroy = td_zeCommandListDestroy;
    table->pfnClose = td_zeCommandListClose;
    table->pfnReset = td_zeCommandListReset;
    table->pfnAppendBarrier = td_zeCommandListAppendBarrier;
    table->pfnAppendMemoryCopy = td_zeCommandListAppendMemoryCopy;
    table->pfnAppendMemoryFill = td_zeCommandListAppendMemoryFill;
    table->pfnAppendLaunchKernel = td_zeCommandListAppendLaunchKernel;
})
TD_DDI_TABLE(zeGetImageProcAddrTable, ze_image_dditable_t, (void)0)
TD_DDI_TABLE(zeGetImageExpProcAddrTable, ze_image_exp_dditable_t, (void)0)
TD_DDI_TABLE(zeGetFenceProcAddrTable, ze_fence_dditable_t, {
    table->pfnCreate = td_zeFenceCreate;
    table->pfnDestroy = td_zeFenceDestroy;
    table->pfnHostSynchronize = td_zeFenceHostSynchronize;
    table->pfnQueryStatus = td_zeFenceQueryStatus;
    table->pfnReset = td_zeFenceReset;
})
TD_DDI_TABLE(zeGetEventPoolProcAddrTable, ze_event_pool_dditable_t, (void)0)
TD_DDI_TABLE(zeGetEventProcAddrTable, ze_event_dditable_t, (void)0)
TD_DDI_TABLE(zeGetEventExpProcAddrTable, ze_event_exp_dditable_t, (void)0)
TD_DDI_TABLE(zeGetModuleProcAddrTable, ze_module_dditable_t, {
    table->pfnCreate = td_zeModuleCreate;
    table->pfnDestroy = td_zeModuleDestroy;
})
TD_DDI_TABLE(zeGetModuleBuildLogProcAddrTable, ze_module_build_log_dditable_t, {
    table->pfnDestroy = td_zeModuleBuildLogDestroy;
    table->pfnGetString = td_zeModuleBuildLogGetString;
})
TD_DDI_TABLE(zeGetKernelProcAddrTable, ze_kernel_dditable_t, {
    table->pfnCreate = td_zeKernelCreate;
    table->pfnDestroy = td_zeKernelDestroy;
    table->pfnSetGroupSize = td_zeKernelSetGroupSize;
    table->pfnSuggestGroupSize = td_zeKernelSuggestGroupSize;
    table->pfnSetArgumentValue = td_zeKernelSetArgumentValue;
    table->pfnGetProperties = td_zeKernelGetProperties;
})
TD_DDI_TABLE(zeGetKernelExpProcAddrTable, ze_kernel_exp_dditable_t, (void)0)
TD_DDI_TABLE(zeGetSamplerProcAddrTable, ze_sampler_dditable_t, (void)0)
TD_DDI_TABLE(zeGetPhysicalMemProcAddrTable, ze_physical_mem_dditable_t, (void)0)
TD_DDI_TABLE(zeGetMemProcAddrTable, ze_mem_dditable_t, {
    table->pfnAllocDevice = td_zeMemAllocDevice;
    table->pfnAllocHost = td_zeMemAllocHost;
    table->pfnAllocShared = td_zeMemAllocShared;
    table->pfnFree = td_zeMemFree;
    table->pfnGetAllocProperties = td_zeMemGetAllocProperties;
})
TD_DDI_TABLE(zeGetVirtualMemProcAddrTable, ze_virtual_mem_dditable_t, (void)0)
TD_DDI_TABLE(zeGetFabricVertexExpProcAddrTable, ze_fabric_vertex_exp_dditable_t, (void)0)
TD_DDI_TABLE(zeGetFabricEdgeExpProcAddrTable, ze_fabric_edge_exp_dditable_t, (void)0)
