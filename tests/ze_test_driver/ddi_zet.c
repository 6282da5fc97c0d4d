/* ddi_zet.c — the tools (zet) DDI tables. The loader 1.8 refuses a driver that lacks any of
 * them, but this driver offers no tools API: every table is returned empty. */
#include "ze_test_driver.h"

#include <level_zero/zet_ddi.h>
#include <string.h>

TD_DDI_TABLE(zetGetDeviceProcAddrTable, zet_device_dditable_t, (void)0)
TD_DDI_TABLE(zetGetContextProcAddrTable, zet_context_dditable_t, (void)0)
TD_DDI_TABLE(zetGetCommandListProcAddrTable, zet_command_list_dditable_t, (void)0)
TD_DDI_TABLE(zetGetModuleProcAddrTable, zet_module_dditable_t, (void)0)
TD_DDI_TABLE(zetGetKernelProcAddrTable, zet_kernel_dditable_t, (void)0)
TD_DDI_TABLE(zetGetMetricGroupProcAddrTable, zet_metric_group_dditable_t, (void)0)
TD_DDI_TABLE(zetGetMetricGroupExpProcAddrTable, zet_metric_group_exp_dditable_t, (void)0)
TD_DDI_TABLE(zetGetMetricProcAddrTable, zet_metric_dditable_t, (void)0)
TD_DDI_TABLE(zetGetMetricStreamerProcAddrTable, zet_metric_streamer_dditable_t, (void)0)
TD_DDI_TABLE(zetGetMetricQueryPoolProcAddrTable, zet_metric_query_pool_dditable_t, (void)0)
TD_DDI_TABLE(zetGetMetricQueryProcAddrTable, zet_metric_query_dditable_t, (void)0)
TD_DDI_TABLE(zetGetTracerExpProcAddrTable, zet_tracer_exp_dditable_t, (void)0)
TD_DDI_TABLE(zetGetDebugProcAddrTable, zet_debug_dditable_t, (void)0)
