/* module.c — the kernels of kernels/ as one ze_module per device, built from the SPIR-V the
 * build embedded (plugins/gpu_common: exo_kernels_spv). A failed build reports the driver's
 * build log, so "why did it not compile for this GPU" is answered in the error itself. Kernel
 * objects are created on first use and kept: arguments are captured per launch at append
 * time, so one ze_kernel per name serves every launch of it. */
#include "l0_internal.h"

#include "exo_kernels_spv.h"
#include "exo_kernels_spv_intel.h"
#include "gpu_intel.h"

#include <stdio.h>
#include <string.h>

typedef struct l0_kernel_entry {
    char name[64];
    ze_kernel_handle_t handle;
    uint32_t group[3]; /* the group size last set on it */
} l0_kernel_entry;

typedef struct l0_module {
    ze_module_handle_t handle;
    ze_module_handle_t intel; /* Intel's sub-group/XMX kernels (EXO_GPU_XMX), or NULL */
    uint32_t n_kernels, cap_kernels;
    l0_kernel_entry *kernels;
} l0_module;

/* Intel's compiler flag for buffers above 4 GiB (stateless addressing). */
#define L0_LARGE_BUFFER_FLAG "-ze-opt-greater-than-4GB-buffer-required"

static exo_status build_failed(exo_plugin_ctx *ctx, l0_device *dev, ze_result_t r, ze_module_build_log_handle_t log) {
    const l0_loader *ze = ctx->ze;
    char text[1024] = "";
    if (log) {
        size_t size = 0;
        if (ze->zeModuleBuildLogGetString(log, &size, NULL) == ZE_RESULT_SUCCESS && size > 0) {
            if (size > sizeof text) size = sizeof text; /* the start of the log says what broke */
            if (ze->zeModuleBuildLogGetString(log, &size, text) != ZE_RESULT_SUCCESS) text[0] = '\0';
            text[sizeof text - 1] = '\0';
        }
    }
    for (char *p = text; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' '; /* one line */
    return l0_fail(ctx, dev, r, "zeModuleCreate", "building the SPIR-V kernels (%zu bytes)%s%s", exo_kernels_spv_size,
                   text[0] ? "; build log: " : "; no build log", text);
}

/* Intel's sub-group/XMX kernels (gpu_intel.h) for this device, as a second module beside the
 * portable one. Level Zero has no extension string, so the names gpu_intel_choose looks for are
 * spelled from what the device reports: an Intel GPU with 8- or 16-lane sub-groups has the
 * sub-group extensions (every Intel GPU compiler does), matrix engines where xe_arch knows the
 * generation has XMX. Only modules with the XMX GEMM are built in, so a device without XMX keeps
 * the portable kernels. A module that fails to build is logged and left out. */
static void build_intel_module(exo_plugin_ctx *ctx, l0_device *dev, l0_module *m) {
    const char *env = ctx->host->get_env(ctx->host->host_ctx, "EXO_GPU_XMX");
    if (!env || !*env || strcmp(env, "0") == 0) return;
    uint32_t sizes[8], n = 0;
    for (uint32_t i = 0; dev->have_compute && i < dev->compute.numSubGroupSizes && i < 8; i++)
        sizes[n++] = dev->compute.subGroupSizes[i];
    l0_xe_arch arch = l0_xe_arch_classify(dev->props.vendorId, dev->props.deviceId, dev->props.name);
    char ext[160] = "";
    if (dev->props.vendorId == 0x8086 && n > 0)
        snprintf(ext, sizeof ext, "cl_intel_subgroups cl_intel_subgroups_short cl_intel_required_subgroup_size%s",
                 arch.known && arch.has_xmx ? " cl_intel_subgroup_matrix_multiply_accumulate" : "");
    gpu_intel_choice c;
    gpu_intel_choose(ext, sizes, n, env, &c);
    if (c.kernels != (GPU_INTEL_SGBLOCK | GPU_INTEL_DPAS)) {
        l0_log(ctx->host, EXO_LOG_WARN, "level_zero:%u: %s", dev->index,
               c.kernels ? "Intel sub-group kernels off: no XMX on this device (only XMX modules are built in)" : c.why);
        return;
    }
    const unsigned char *spv = c.emulated ? (c.sub_group == 8 ? exo_kernels_spv_intel_emu8 : exo_kernels_spv_intel_emu16)
                                          : (c.sub_group == 8 ? exo_kernels_spv_intel_sg8 : exo_kernels_spv_intel_sg16);
    size_t size = c.emulated ? (c.sub_group == 8 ? exo_kernels_spv_intel_emu8_size : exo_kernels_spv_intel_emu16_size)
                             : (c.sub_group == 8 ? exo_kernels_spv_intel_sg8_size : exo_kernels_spv_intel_sg16_size);
    ze_module_desc_t desc = {.stype = ZE_STRUCTURE_TYPE_MODULE_DESC,
                             .format = ZE_MODULE_FORMAT_IL_SPIRV,
                             .inputSize = size,
                             .pInputModule = spv,
                             .pBuildFlags = dev->exec.large_buffers ? L0_LARGE_BUFFER_FLAG : ""};
    ze_module_build_log_handle_t log = NULL;
    ze_result_t r = ctx->ze->zeModuleCreate(dev->exec.context, dev->handle, &desc, &m->intel, &log);
    if (log) ctx->ze->zeModuleBuildLogDestroy(log);
    if (r != ZE_RESULT_SUCCESS) {
        if (m->intel) ctx->ze->zeModuleDestroy(m->intel);
        m->intel = NULL;
        l0_log(ctx->host, EXO_LOG_WARN, "level_zero:%u: Intel sub-group/XMX kernels left out: zeModuleCreate returned 0x%x",
               dev->index, (unsigned)r);
        return;
    }
    dev->exec.intel_kernels = c.kernels;
    dev->exec.intel_sub_group = c.sub_group;
    l0_log(ctx->host, EXO_LOG_INFO, "level_zero:%u: %s", dev->index, c.why);
}

exo_status l0_module_ensure(exo_plugin_ctx *ctx, l0_device *dev) {
    l0_exec *x = &dev->exec;
    if (x->module) return EXO_OK;
    exo_status st = l0_check_not_lost(ctx, dev);
    if (st != EXO_OK) return st;
    const l0_loader *ze = ctx->ze;
    ze_module_desc_t desc = {.stype = ZE_STRUCTURE_TYPE_MODULE_DESC,
                             .format = ZE_MODULE_FORMAT_IL_SPIRV,
                             .inputSize = exo_kernels_spv_size,
                             .pInputModule = exo_kernels_spv,
                             .pBuildFlags = x->large_buffers ? L0_LARGE_BUFFER_FLAG : ""};
    ze_module_handle_t handle = NULL;
    ze_module_build_log_handle_t log = NULL;
    uint64_t t0 = ctx->host->now_ns ? ctx->host->now_ns(ctx->host->host_ctx) : 0;
    ze_result_t r = ze->zeModuleCreate(x->context, dev->handle, &desc, &handle, &log);
    if (r != ZE_RESULT_SUCCESS) {
        st = build_failed(ctx, dev, r, log);
        if (handle) ze->zeModuleDestroy(handle);
    }
    if (log) ze->zeModuleBuildLogDestroy(log);
    if (st != EXO_OK) return st;
    l0_module *m = ctx->host->alloc(ctx->host->host_ctx, sizeof *m);
    if (!m) {
        ze->zeModuleDestroy(handle);
        return l0_error(ctx, dev, EXO_ERR_NO_MEMORY, "building the kernels: out of host memory");
    }
    memset(m, 0, sizeof *m);
    m->handle = handle;
    x->module = m;
    build_intel_module(ctx, dev, m);
    uint64_t t1 = ctx->host->now_ns ? ctx->host->now_ns(ctx->host->host_ctx) : 0;
    l0_log(ctx->host, EXO_LOG_INFO, "level_zero:%u: built the SPIR-V kernels (%zu bytes%s) in %.0f ms", dev->index,
           exo_kernels_spv_size, x->large_buffers ? ", " L0_LARGE_BUFFER_FLAG : "", (double)(t1 - t0) / 1e6);
    return EXO_OK;
}

void l0_module_destroy(exo_plugin_ctx *ctx, l0_device *dev) {
    l0_module *m = dev->exec.module;
    if (!m) return;
    for (uint32_t i = 0; i < m->n_kernels; i++) ctx->ze->zeKernelDestroy(m->kernels[i].handle);
    ctx->host->free(ctx->host->host_ctx, m->kernels);
    if (m->intel) ctx->ze->zeModuleDestroy(m->intel);
    ctx->ze->zeModuleDestroy(m->handle);
    dev->exec.intel_kernels = dev->exec.intel_sub_group = 0;
    ctx->host->free(ctx->host->host_ctx, m);
    dev->exec.module = NULL;
}

static l0_kernel_entry *find(l0_module *m, const char *name) {
    for (uint32_t i = 0; i < m->n_kernels; i++)
        if (strcmp(m->kernels[i].name, name) == 0) return &m->kernels[i];
    return NULL;
}

exo_status l0_module_kernel(exo_plugin_ctx *ctx, l0_device *dev, const char *name, ze_kernel_handle_t *out) {
    l0_module *m = dev->exec.module;
    if (!m) return l0_error(ctx, dev, EXO_ERR_INTERNAL, "kernel %s requested before the module was built", name);
    l0_kernel_entry *e = find(m, name);
    if (e) {
        *out = e->handle;
        return EXO_OK;
    }
    if (strlen(name) >= sizeof e->name)
        return l0_error(ctx, dev, EXO_ERR_INTERNAL, "kernel name '%s' is too long", name);
    if (m->n_kernels == m->cap_kernels) {
        uint32_t cap = m->cap_kernels ? 2 * m->cap_kernels : 32;
        l0_kernel_entry *grown = ctx->host->alloc(ctx->host->host_ctx, cap * sizeof *grown);
        if (!grown) return l0_error(ctx, dev, EXO_ERR_NO_MEMORY, "creating kernel %s: out of host memory", name);
        if (m->n_kernels) memcpy(grown, m->kernels, m->n_kernels * sizeof *grown);
        ctx->host->free(ctx->host->host_ctx, m->kernels);
        m->kernels = grown;
        m->cap_kernels = cap;
    }
    ze_kernel_desc_t desc = {.stype = ZE_STRUCTURE_TYPE_KERNEL_DESC, .pKernelName = name};
    ze_kernel_handle_t handle = NULL;
    ze_result_t r = ctx->ze->zeKernelCreate(m->handle, &desc, &handle);
    if (r != ZE_RESULT_SUCCESS && m->intel) { /* kernels/matmul_intel.cl's live in the second module */
        handle = NULL;
        r = ctx->ze->zeKernelCreate(m->intel, &desc, &handle);
    }
    if (r != ZE_RESULT_SUCCESS) return l0_fail(ctx, dev, r, "zeKernelCreate", "creating kernel %s", name);
    e = &m->kernels[m->n_kernels++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->handle = handle;
    *out = handle;
    return EXO_OK;
}

exo_status l0_kernel_group_size(exo_plugin_ctx *ctx, l0_device *dev, ze_kernel_handle_t kernel, const char *name,
                                const uint32_t group[3]) {
    l0_kernel_entry *e = dev->exec.module ? find(dev->exec.module, name) : NULL;
    if (e && memcmp(e->group, group, sizeof e->group) == 0) return EXO_OK;
    ze_result_t r = ctx->ze->zeKernelSetGroupSize(kernel, group[0], group[1], group[2]);
    if (r != ZE_RESULT_SUCCESS)
        return l0_fail(ctx, dev, r, "zeKernelSetGroupSize", "kernel %s, group %ux%ux%u", name, group[0], group[1],
                       group[2]);
    if (e) memcpy(e->group, group, sizeof e->group);
    return EXO_OK;
}
