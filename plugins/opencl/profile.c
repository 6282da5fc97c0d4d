/* profile.c — per-kernel device time, for finding where a step goes (EXO_OPENCL_PROFILE=1).
 *
 * With it, device_open creates the queue with CL_QUEUE_PROFILING_ENABLE, every launch returns
 * an event, and each finish reads the events' start and end stamps into per-kernel totals.
 * Besides the kernels' own time it keeps each execution's span (first start to last end):
 * the difference is the device waiting between kernels, i.e. launch overhead. device_close
 * logs the table at INFO. Off (the default) it costs nothing: no events are created. */
#include "ocl_plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROFILE_PENDING 4096 /* events held until a finish reads them */

typedef struct kernel_total {
    char name[48];
    uint64_t launches;
    uint64_t ns;
} kernel_total;

struct ocl_profile {
    cl_event pending[PROFILE_PENDING];
    uint16_t pending_kernel[PROFILE_PENDING]; /* index into totals */
    uint32_t n_pending;
    kernel_total totals[OCL_MAX_KERNELS];
    uint32_t n_totals;
    uint64_t executions, kernel_ns, span_ns;
};

ocl_profile *ocl_profile_create(exo_plugin_ctx *ctx) {
    const char *v = ctx->host->get_env ? ctx->host->get_env(ctx->host->host_ctx, "EXO_OPENCL_PROFILE") : NULL;
    if (!v || strcmp(v, "1") != 0) return NULL;
    ocl_profile *p = ctx->host->alloc(ctx->host->host_ctx, sizeof *p);
    if (!p) {
        ocl_log(ctx, EXO_LOG_WARN, "EXO_OPENCL_PROFILE: out of memory; not profiling");
        return NULL;
    }
    memset(p, 0, sizeof *p);
    return p;
}

static uint32_t total_for(ocl_profile *p, const char *name) {
    for (uint32_t i = 0; i < p->n_totals; i++)
        if (strcmp(p->totals[i].name, name) == 0) return i;
    if (p->n_totals == OCL_MAX_KERNELS) return OCL_MAX_KERNELS - 1; /* cannot happen: as many as kernels */
    kernel_total *t = &p->totals[p->n_totals];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    return p->n_totals++;
}

/* Reads and releases the pending events (all complete: called after clFinish). */
void ocl_profile_collect(ocl_runtime *rt) {
    ocl_profile *p = rt->profile;
    if (!p || p->n_pending == 0) return;
    const ocl_api *api = &rt->ctx->api;
    cl_ulong first = UINT64_MAX, last = 0;
    for (uint32_t i = 0; i < p->n_pending; i++) {
        cl_ulong start = 0, end = 0;
        if (api->clGetEventProfilingInfo(p->pending[i], CL_PROFILING_COMMAND_START, sizeof start, &start, NULL) ==
                CL_SUCCESS &&
            api->clGetEventProfilingInfo(p->pending[i], CL_PROFILING_COMMAND_END, sizeof end, &end, NULL) == CL_SUCCESS &&
            end >= start) {
            kernel_total *t = &p->totals[p->pending_kernel[i]];
            t->launches++;
            t->ns += end - start;
            p->kernel_ns += end - start;
            first = start < first ? start : first;
            last = end > last ? end : last;
        }
        api->clReleaseEvent(p->pending[i]);
    }
    if (last > first) p->span_ns += last - first;
    p->executions++;
    p->n_pending = 0;
}

void ocl_profile_add(ocl_runtime *rt, const char *kernel, cl_event event) {
    ocl_profile *p = rt->profile;
    if (p->n_pending == PROFILE_PENDING) {
        /* A graph with more launches than we hold: read what we have (the span splits in two). */
        rt->ctx->api.clFinish(rt->queue);
        ocl_profile_collect(rt);
    }
    p->pending_kernel[p->n_pending] = (uint16_t)total_for(p, kernel);
    p->pending[p->n_pending++] = event;
}

static int by_time(const void *a, const void *b) {
    const kernel_total *x = a, *y = b;
    return x->ns < y->ns ? 1 : x->ns > y->ns ? -1 : 0;
}

void ocl_profile_report_and_free(ocl_runtime *rt) {
    ocl_profile *p = rt->profile;
    if (!p) return;
    rt->profile = NULL;
    exo_plugin_ctx *ctx = rt->ctx;
    for (uint32_t i = 0; i < p->n_pending; i++) ctx->api.clReleaseEvent(p->pending[i]);
    if (p->executions > 0) {
        double idle = p->span_ns > p->kernel_ns ? (double)(p->span_ns - p->kernel_ns) : 0.0;
        ocl_log(ctx, EXO_LOG_INFO,
                "profile of device %u: %llu executions; kernels %.3f ms, spans %.3f ms (device idle between kernels "
                "%.1f%%)",
                rt->index, (unsigned long long)p->executions, (double)p->kernel_ns * 1e-6, (double)p->span_ns * 1e-6,
                p->span_ns ? 100.0 * idle / (double)p->span_ns : 0.0);
        qsort(p->totals, p->n_totals, sizeof *p->totals, by_time);
        for (uint32_t i = 0; i < p->n_totals; i++) {
            const kernel_total *t = &p->totals[i];
            ocl_log(ctx, EXO_LOG_INFO, "profile:   %-28s %9llu launches %10.3f ms %9.2f us each %5.1f%%", t->name,
                    (unsigned long long)t->launches, (double)t->ns * 1e-6,
                    t->launches ? (double)t->ns * 1e-3 / (double)t->launches : 0.0,
                    p->kernel_ns ? 100.0 * (double)t->ns / (double)p->kernel_ns : 0.0);
        }
    }
    ctx->host->free(ctx->host->host_ctx, p);
}
