/* sysman_pci.c — zesDevicePciGetProperties: where the fake GPU sits on the PCI bus. */
#include "ze_test_driver.h"

ze_result_t ZE_APICALL td_zesDevicePciGetProperties(zes_device_handle_t device, zes_pci_properties_t *props) {
    ze_result_t r = td_enter_sysman();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!td_device_valid(device)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    if (!props) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    if (props->stype != ZES_STRUCTURE_TYPE_PCI_PROPERTIES) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    props->address = device->pci;
    props->maxSpeed = (zes_pci_speed_t){.gen = 4, .width = 16, .maxBandwidth = 31500000000ll};
    props->haveBandwidthCounters = 0;
    props->havePacketCounters = 0;
    props->haveReplayCounters = 0;
    return ZE_RESULT_SUCCESS;
}
