/* module.c — the kernels of kernels/ as one ze_module per device, built from the SPIR-V the
 * build embedded (plugins/gpu_common: exo_kernels_spv). A failed build reports the driver's
 * build log, so "why did it not compile for this GPU" is answered in the error itself. Kernel
 * objects are created on first use and kept: arguments are captured per launch at append
 * time, so one ze_kernel per name serves every launch of it. */
#include "l0_internal.h"

#include "exo_kernels_spv.h"

#include <stdio.h>
#include <string.h>

typedef struct l0_kernel_entry {
    char name[64];
    ze_kernel_handle_t handle;
    uint32_t group[3]; /* the group size last set on it */
} l0_kernel_entry;

typedef struct l0_module {
    ze_module_handle_t handle;
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
    ctx->ze->zeModuleDestroy(m->handle);
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
