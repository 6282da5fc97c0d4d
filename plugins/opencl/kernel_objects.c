/* kernel_objects.c — the cl_kernel a launch is enqueued with, its arguments set.
 *
 * Why launch sites: a decode step enqueues the same launches every time (~80 for a 1B-class
 * model, each fused matvec with up to 42 parameters, ~60 arguments counting offsets), and all
 * but a few of their arguments are the same at every step: the graph's buffers and offsets are
 * fixed when it is compiled, positions and slots are read on the device. OpenCL keeps a
 * kernel object's arguments until they are set again and clEnqueueNDRangeKernel captures them,
 * so each launch site - the n-th launch of an execution, for one kernel name - gets a
 * cl_kernel of its own, and a launch sets only the arguments that differ from what that object
 * holds. On the H100's host building a step's launches took 16-18 us each, close to the device's
 * own time for the step (docs/performance.md 5.5.2, 7.6), so the host was nearly the bound.
 *
 * A released cl_mem may come back at the same address as a different buffer, and a driver may
 * have turned the handle into a device address when the argument was set: every release of
 * device memory forgets what the sites hold (ocl_sites_forget), so the next launch of each
 * sets all of its arguments again. A launch without a site - past OCL_MAX_SITE_ORDINALS in one
 * execution, past OCL_MAX_SITES kernel objects, or a ninth kernel name at one ordinal (no
 * eviction: a rotation would create and release kernel objects at every step) - shares one
 * kernel object per name and sets every argument, as every launch does by default: sites are
 * taken only under EXO_OPENCL_LAUNCH_SITES=1. Measured on an H100 (docs/performance.md 5.5.4):
 * arguments set per one-token step 4,527 -> 124, but neither the host's time building the
 * launches nor the step's changed (NVIDIA's clSetKernelArg is cheap; its enqueue is not), so
 * they stay opt-in until a driver shows a gain (Intel's is not measured). EXO_OPENCL_PROFILE
 * reports the arguments set per execution. */
#include "ocl_plugin.h"

#include <stdio.h>
#include <string.h>

/* Distinct kernels at one ordinal: the graphs (last row, all rows, selected rows) x the token
 * counts' kernels (matvec, batched, GEMM). */
#define OCL_SITES_PER_ORDINAL 8
#define OCL_MAX_SITE_ORDINALS 4096
/* Kernel objects of all sites together: a driver may give each its own private memory. */
#define OCL_MAX_SITES 2048

/* One argument as given to clSetKernelArg. */
typedef struct ocl_arg_value {
    uint32_t size;
    uint64_t bits;
} ocl_arg_value;

typedef struct ocl_site {
    char name[48]; /* "" while unused */
    cl_kernel kernel;
    uint32_t generation; /* known[] is void unless this is ocl_sites.generation */
    uint32_t n_known;    /* known[0 .. n_known) are the values the kernel object holds */
    ocl_arg_value known[2 * GPU_MAX_ARGS];
} ocl_site;

struct ocl_sites {
    ocl_site *at[OCL_MAX_SITE_ORDINALS]; /* OCL_SITES_PER_ORDINAL each, allocated on first use */
    uint32_t ordinal;                     /* launches enqueued since the last finish */
    uint32_t n_sites;                     /* kernel objects created for sites */
    uint32_t generation;                  /* bumped when device memory is released */
};

/* The kernel object shared by every launch of `name` that has no site of its own. */
static exo_status shared_kernel(ocl_runtime *rt, const char *name, cl_kernel *out) {
    for (uint32_t i = 0; i < rt->n_kernels; i++)
        if (strcmp(rt->kernels[i].name, name) == 0) {
            *out = rt->kernels[i].kernel;
            return EXO_OK;
        }
    if (rt->n_kernels == OCL_MAX_KERNELS)
        return rt->ctx->host->set_error(rt->ctx->host->host_ctx, EXO_ERR_INTERNAL, 0,
                                        "opencl: more than %d distinct kernels", OCL_MAX_KERNELS);
    cl_int err = CL_SUCCESS;
    cl_kernel k = rt->ctx->api.clCreateKernel(rt->program, name, &err);
    if (!k) return ocl_fail(rt->ctx, err, "clCreateKernel(%s)", name);
    snprintf(rt->kernels[rt->n_kernels].name, sizeof rt->kernels[0].name, "%s", name);
    rt->kernels[rt->n_kernels++].kernel = k;
    *out = k;
    return EXO_OK;
}

/* Launch l's arguments in clSetKernelArg's terms: a MEM argument is two (the buffer, then its
 * element offset). Returns the count. */
static uint32_t arg_values(const gpu_launch *l, ocl_arg_value *out) {
    uint32_t n = 0;
    for (uint32_t a = 0; a < l->n_args; a++) {
        const gpu_arg *arg = &l->args[a];
        switch (arg->kind) {
        case GPU_ARG_MEM:
            out[n++] = (ocl_arg_value){sizeof(cl_mem), (uint64_t)(uintptr_t)arg->v.mem.mem->mem};
            out[n++] = (ocl_arg_value){sizeof(cl_uint), arg->v.mem.offset};
            break;
        case GPU_ARG_U32: out[n++] = (ocl_arg_value){sizeof(cl_uint), arg->v.u32}; break;
        case GPU_ARG_I32: out[n++] = (ocl_arg_value){sizeof(cl_int), (uint32_t)arg->v.i32}; break;
        case GPU_ARG_F32: {
            uint32_t bits;
            memcpy(&bits, &arg->v.f32, sizeof bits);
            out[n++] = (ocl_arg_value){sizeof(cl_float), bits};
            break;
        }
        }
    }
    return n;
}

/* Sets argument i of k to v (a cl_mem handle, or a 32-bit value). */
static cl_int set_arg(const ocl_api *api, cl_kernel k, cl_uint i, const ocl_arg_value *v) {
    if (v->size == sizeof(cl_mem)) {
        cl_mem m = (cl_mem)(uintptr_t)v->bits;
        return api->clSetKernelArg(k, i, sizeof m, &m);
    }
    uint32_t x = (uint32_t)v->bits;
    return api->clSetKernelArg(k, i, sizeof x, &x);
}

/* The site for this launch's ordinal and kernel: found, or made in a free slot; NULL where the
 * shared kernel object serves (see the top of the file), with *st set only on a driver error. */
static ocl_site *site_for(ocl_runtime *rt, const char *name, exo_status *st) {
    *st = EXO_OK;
    const exo_host_api *host = rt->ctx->host;
    if (rt->shared_kernels_only || strlen(name) >= sizeof(((ocl_site *)0)->name)) return NULL;
    if (!rt->sites) {
        rt->sites = host->alloc(host->host_ctx, sizeof *rt->sites);
        if (!rt->sites) return NULL;
        memset(rt->sites, 0, sizeof *rt->sites);
    }
    ocl_sites *s = rt->sites;
    uint32_t o = s->ordinal++;
    if (o >= OCL_MAX_SITE_ORDINALS) return NULL;
    if (!s->at[o]) {
        s->at[o] = host->alloc(host->host_ctx, OCL_SITES_PER_ORDINAL * sizeof(ocl_site));
        if (!s->at[o]) return NULL;
        memset(s->at[o], 0, OCL_SITES_PER_ORDINAL * sizeof(ocl_site));
    }
    ocl_site *slots = s->at[o], *pick = NULL;
    for (uint32_t i = 0; i < OCL_SITES_PER_ORDINAL; i++) {
        if (slots[i].name[0] && strcmp(slots[i].name, name) == 0) {
            if (slots[i].generation != s->generation) {
                slots[i].generation = s->generation;
                slots[i].n_known = 0;
            }
            return &slots[i];
        }
        if (!pick && !slots[i].name[0]) pick = &slots[i];
    }
    if (!pick || s->n_sites >= OCL_MAX_SITES) return NULL;
    cl_int err = CL_SUCCESS;
    pick->kernel = rt->ctx->api.clCreateKernel(rt->program, name, &err);
    if (!pick->kernel) {
        *st = ocl_fail(rt->ctx, err, "clCreateKernel(%s)", name);
        return NULL;
    }
    s->n_sites++;
    snprintf(pick->name, sizeof pick->name, "%s", name);
    pick->generation = s->generation;
    pick->n_known = 0;
    return pick;
}

exo_status ocl_kernel_for_launch(ocl_runtime *rt, const gpu_launch *l, cl_kernel *out, uint32_t *args_set,
                                 uint32_t *args) {
    if (!rt->program)
        return rt->ctx->host->set_error(rt->ctx->host->host_ctx, EXO_ERR_INTERNAL, 0,
                                        "opencl: kernel %s launched before the program was built", l->kernel);
    ocl_arg_value values[2 * GPU_MAX_ARGS];
    uint32_t n = arg_values(l, values);
    *args = n;
    *args_set = 0;
    exo_status st = EXO_OK;
    ocl_site *site = site_for(rt, l->kernel, &st);
    if (st != EXO_OK) return st;
    cl_kernel k = site ? site->kernel : NULL;
    if (!site && (st = shared_kernel(rt, l->kernel, &k)) != EXO_OK) return st;
    const ocl_api *api = &rt->ctx->api;
    for (uint32_t i = 0; i < n; i++) {
        if (site && i < site->n_known && site->known[i].size == values[i].size && site->known[i].bits == values[i].bits)
            continue;
        cl_int err = set_arg(api, k, i, &values[i]);
        if (err != CL_SUCCESS) {
            if (site) site->n_known = 0; /* some were set, some not: trust none */
            return ocl_fail(rt->ctx, err, "clSetKernelArg(%s, argument %u)", l->kernel, i);
        }
        ++*args_set;
        if (site) site->known[i] = values[i];
    }
    if (site && n > site->n_known) site->n_known = n;
    *out = k;
    return EXO_OK;
}

void ocl_sites_next_execution(ocl_runtime *rt) {
    if (rt->sites) rt->sites->ordinal = 0;
}

void ocl_sites_forget(ocl_runtime *rt) {
    if (rt->sites) rt->sites->generation++;
}

void ocl_release_kernels(ocl_runtime *rt) {
    for (uint32_t i = 0; i < rt->n_kernels; i++) rt->ctx->api.clReleaseKernel(rt->kernels[i].kernel);
    rt->n_kernels = 0;
    if (!rt->sites) return;
    const exo_host_api *host = rt->ctx->host;
    for (uint32_t o = 0; o < OCL_MAX_SITE_ORDINALS; o++) {
        if (!rt->sites->at[o]) continue;
        for (uint32_t i = 0; i < OCL_SITES_PER_ORDINAL; i++)
            if (rt->sites->at[o][i].kernel) rt->ctx->api.clReleaseKernel(rt->sites->at[o][i].kernel);
        host->free(host->host_ctx, rt->sites->at[o]);
    }
    host->free(host->host_ctx, rt->sites);
    rt->sites = NULL;
}
