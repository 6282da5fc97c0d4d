/* xe_arch.c — which Intel GPU generation a device is, from its PCI device id (names as the
 * fallback), because API 1.4 has no IP-version query. What matters for placement: whether it
 * has XMX matrix engines, their dense throughput per EU (XVE) per clock, and a known memory
 * bandwidth for boards whose driver gives none.
 *
 * XMX rates are the public peak numbers divided by EUs x clock: Arc A770 (512 EUs, 2.1 GHz)
 * 137.6 fp16 TFLOPS / 275 int8 TOPS -> 128 / 256; Data Center GPU Max (Xe-HPC) doubles that;
 * Arc B580 (160 XVEs, 2.85 GHz) 233 int8 TOPS -> 512 / 256 fp16. */
#include "l0_internal.h"

#include <string.h>

typedef struct id_range {
    uint16_t first, last;
    const char *name;
    bool has_xmx;
    float fp16, int8;
} id_range;

static const id_range ranges[] = {
    {0x5690, 0x56ff, "Xe-HPG (Alchemist / Flex)", true, 128, 256},
    {0x0bd0, 0x0bdb, "Xe-HPC (Ponte Vecchio)", true, 256, 512},
    {0x0b69, 0x0b6e, "Xe-HPC (Ponte Vecchio)", true, 256, 512},
    {0xe202, 0xe21f, "Xe2-HPG (Battlemage)", true, 256, 512},
    {0x6420, 0x64b0, "Xe2-LPG (Lunar Lake)", true, 256, 512},
    {0x7d51, 0x7d51, "Xe-LPG+ (Arrow Lake-H)", true, 128, 256},
    {0x7dd1, 0x7dd1, "Xe-LPG+ (Arrow Lake-H)", true, 128, 256},
    {0x7d40, 0x7dff, "Xe-LPG (Meteor Lake / Arrow Lake)", false, 0, 0},
    {0x4905, 0x4909, "Xe-LP (DG1)", false, 0, 0},
    {0x9a40, 0x9aff, "Xe-LP (Tiger Lake)", false, 0, 0},
    {0x4c80, 0x4c9a, "Xe-LP (Rocket Lake)", false, 0, 0},
    {0x4600, 0x46ff, "Xe-LP (Alder Lake)", false, 0, 0},
    {0xa700, 0xa7ff, "Xe-LP (Raptor Lake)", false, 0, 0},
};

/* Boards with a published memory bandwidth (GB/s). */
static const struct { uint16_t id; float gbs; } boards[] = {
    {0x56a0, 560}, /* Arc A770 */
    {0x56a1, 512}, /* Arc A750 */
    {0x56a2, 512}, /* Arc A580 */
    {0x56a5, 186}, /* Arc A380 */
    {0x56a6, 124}, /* Arc A310 */
    {0x56c0, 512}, /* Data Center GPU Flex 170 */
    {0x56c1, 186}, /* Data Center GPU Flex 140 */
    {0x0bd5, 3277}, /* Data Center GPU Max 1550 */
    {0x0bda, 1229}, /* Data Center GPU Max 1100 */
    {0xe20b, 456}, /* Arc B580 */
    {0xe20c, 380}, /* Arc B570 */
};

static l0_xe_arch from_range(const id_range *r) {
    return (l0_xe_arch){.name = r->name, .known = true, .has_xmx = r->has_xmx,
                        .xmx_fp16_per_eu_clk = r->fp16, .xmx_int8_per_eu_clk = r->int8};
}

l0_xe_arch l0_xe_arch_classify(uint32_t vendor_id, uint32_t device_id, const char *name) {
    l0_xe_arch arch = {0};
    if (vendor_id != 0x8086) return arch;
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
        if (device_id >= ranges[i].first && device_id <= ranges[i].last) {
            arch = from_range(&ranges[i]);
            break;
        }
    if (!arch.known && name) {
        /* Marketing names of ids this table does not know yet. */
        if (strstr(name, "Arc(TM) A") || strstr(name, "Flex"))
            arch = from_range(&ranges[0]);
        else if (strstr(name, "Max"))
            arch = from_range(&ranges[1]);
        else if (strstr(name, "Arc(TM) B"))
            arch = from_range(&ranges[3]);
    }
    for (size_t i = 0; i < sizeof boards / sizeof boards[0]; i++)
        if (boards[i].id == device_id) arch.bandwidth_gbs = boards[i].gbs;
    return arch;
}
