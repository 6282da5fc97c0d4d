/* gpu_intel.h — Intel's sub-group and matrix-engine (XMX) kernels (kernels/matmul_intel.cl): which
 * a device gets, decided once when its program is built, and the MATMUL launches that take them.
 *
 * Off by default: they have not run on an Intel GPU yet (docs/performance.md 5.6). EXO_GPU_XMX=1
 * turns them on where the device reports what they need; EXO_GPU_XMX=emulate (emulate8: 8-lane
 * sub-groups) builds them on any device with each sub-group builtin emulated in local memory, to
 * check their arithmetic and indexing where no Intel GPU is (the tests, on PoCL). */
#ifndef EXO_GPU_INTEL_H
#define EXO_GPU_INTEL_H

#include "gpu_launch.h"

#include <stdbool.h>
#include <stdint.h>

/* gpu_features.intel bits. */
#define GPU_INTEL_SGBLOCK 1u /* exo_matmul_sgblock_bf16 / _mlx4: decode with sub-group block reads */
#define GPU_INTEL_DPAS 2u    /* exo_matmul_xmx_bf16: prompts on the matrix engines */

typedef struct gpu_intel_choice {
    uint32_t kernels;   /* GPU_INTEL_* bits; 0: the portable kernels only */
    uint32_t sub_group; /* 8 or 16 lanes (EXO_XMX_SG) */
    int emulated;       /* EXO_GPU_XMX=emulate: builtins emulated (EXO_XMX_EMULATE) */
    char defines[96];   /* build options to append, each with a leading space ("" when off) */
    char why[160];      /* what was chosen and why, for the plugin's log */
} gpu_intel_choice;

/* Decides from the device's extension string (OpenCL's CL_DEVICE_EXTENSIONS; Level Zero spells
 * the same names from its device properties), the sub-group sizes it supports (n 0: unknown) and
 * EXO_GPU_XMX's value (NULL when unset). The sub-group kernels need cl_intel_subgroups,
 * cl_intel_subgroups_short and cl_intel_required_subgroup_size; the GEMM also
 * cl_intel_subgroup_matrix_multiply_accumulate. Lanes: 8 where the device offers 8 (Xe-HPG: its
 * DPAS is SIMD8), else 16 (Xe-HPC, Xe2). */
void gpu_intel_choose(const char *extensions, const uint32_t *sub_group_sizes, uint32_t n_sizes, const char *env,
                      gpu_intel_choice *out);

/* Whether extension `name` is a whole word of the space-separated list `extensions`. */
bool gpu_intel_has_extension(const char *extensions, const char *name);

/* If the device's Intel kernels take MATMUL nd in this execution, enqueues it, sets *status and
 * returns true; else returns false and the portable kernels run it. */
bool gpu_intel_matmul(const gpu_exec_view *v, const exo_node *nd, exo_status *status);

#endif
