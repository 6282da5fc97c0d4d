/* profile.c — where a step goes, device and host side (EXO_OPENCL_PROFILE=1, =shapes or =host).
 *
 * With it, device_open creates the queue with CL_QUEUE_PROFILING_ENABLE, every launch returns
 * an event, and each finish reads the events' start and end stamps into per-kernel totals.
 * Besides the kernels' own time it keeps each execution's span (first start to last end):
 * the difference is the device waiting between kernels, i.e. launch overhead. =shapes keys the
 * kernel table by name and global work size, so the matvecs of different shapes show apart.
 *
 * The host side, per graph execution: the time from its first index read-back (the executor's
 * check of token ids, positions and slots) or first launch to its last launch (building and
 * enqueueing launches), the time from there to the finish's return (blocked in clFinish), and
 * the blocking calls of buffers.c (buffer_write, buffer_read, the executor's mem_read): count,
 * bytes, time. Writes before an execution count as its inputs, reads after it as its outputs;
 * weight uploads (load) count nowhere. Executions are grouped by their rows — the element count
 * of the largest index input read back, i.e. the tokens of the step — so a run's one-token
 * decode steps, 8-row batched steps and prompts show apart; rows 0 is what reads no index (the
 * read-bandwidth sweep). Each group's figures are means over its executions but the first
 * (program builds and first touches land there). The profile's own costs stay inside: an event
 * per launch (in "before the finish") and reading them after the finish (shown apart).
 * device_close logs it all at INFO. Off (the default) it costs nothing: no events are created
 * and buffers.c tests one pointer. =host keeps the host side only: no events and a queue
 * without profiling, so "before the finish" is what building a step costs without the
 * profile's events. */
#include "ocl_plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROFILE_PENDING 4096 /* events held until a finish reads them */
#define PROFILE_ENTRIES 512  /* kernel table rows: kernels, or kernels x shapes under =shapes */
#define PROFILE_GROUPS 16    /* execution groups by rows (the last takes any further row count) */

typedef struct kernel_total {
    char name[96]; /* the kernel, or "kernel [global]" under =shapes */
    uint64_t launches;
    uint64_t ns;
} kernel_total;

typedef struct host_calls {
    uint64_t calls, bytes, ns;
} host_calls;

/* One execution under way, or the totals of a group of them. */
typedef struct exec_totals {
    uint64_t executions, launches;
    uint64_t args_set, args; /* clSetKernelArg calls made, and the launches' arguments */
    uint64_t before_finish_ns; /* first index read or launch -> last launch enqueued */
    uint64_t finish_ns;        /* last launch enqueued -> the finish returned */
    uint64_t events_ns;        /* the profile's own reading of the events after the finish */
    uint64_t kernel_ns, span_ns;
    host_calls call[OCL_CALL_KINDS];
} exec_totals;

/* Executions of one row count. The first is kept apart (program builds, first touches: PoCL
 * compiles a kernel at its first launch) and shown only where it is the only one. */
typedef struct exec_group {
    uint32_t rows;
    exec_totals first, rest;
} exec_group;

struct ocl_profile {
    int shapes;
    int host_only; /* =host: no events */
    cl_event pending[PROFILE_PENDING];
    uint16_t pending_kernel[PROFILE_PENDING]; /* index into totals */
    uint32_t n_pending;
    kernel_total totals[PROFILE_ENTRIES];
    uint32_t n_totals;
    uint64_t executions, kernel_ns, span_ns;
    /* The execution under way (open), the rows it read back, when it started and last launched. */
    int open;
    uint32_t rows;
    uint64_t start_ns, last_launch_ns;
    exec_totals cur;
    host_calls writes_before; /* buffer_writes since the last execution: the next one's inputs */
    exec_group groups[PROFILE_GROUPS];
    uint32_t n_groups;
    exec_totals *last; /* the totals the last execution went to (its outputs' reads go there) */
};

ocl_profile *ocl_profile_create(exo_plugin_ctx *ctx) {
    const char *v = ctx->host->get_env ? ctx->host->get_env(ctx->host->host_ctx, "EXO_OPENCL_PROFILE") : NULL;
    if (!v || (strcmp(v, "1") != 0 && strcmp(v, "shapes") != 0 && strcmp(v, "host") != 0)) return NULL;
    ocl_profile *p = ctx->host->alloc(ctx->host->host_ctx, sizeof *p);
    if (!p) {
        ocl_log(ctx, EXO_LOG_WARN, "EXO_OPENCL_PROFILE: out of memory; not profiling");
        return NULL;
    }
    memset(p, 0, sizeof *p);
    p->shapes = strcmp(v, "shapes") == 0;
    p->host_only = strcmp(v, "host") == 0;
    return p;
}

int ocl_profile_events(const ocl_profile *p) { return p && !p->host_only; }

uint64_t ocl_profile_now(const ocl_runtime *rt) {
    const exo_host_api *h = rt->ctx->host;
    return h->now_ns ? h->now_ns(h->host_ctx) : 0;
}

static void begin_execution(ocl_profile *p, uint64_t start_ns) {
    if (p->open) return;
    p->open = 1;
    p->rows = 0;
    p->start_ns = p->last_launch_ns = start_ns;
    memset(&p->cur, 0, sizeof p->cur);
}

void ocl_profile_host_call(ocl_runtime *rt, ocl_host_call call, uint64_t bytes, uint64_t start_ns) {
    ocl_profile *p = rt->profile;
    uint64_t ns = ocl_profile_now(rt) - start_ns;
    host_calls *to = NULL;
    if (call == OCL_CALL_MEM_READ) { /* only the executor's index check reads this way */
        begin_execution(p, start_ns);
        if (bytes / 4 > p->rows) p->rows = (uint32_t)(bytes / 4);
        to = &p->cur.call[call];
    } else if (p->open) {
        to = &p->cur.call[call];
    } else if (call == OCL_CALL_BUFFER_WRITE) {
        to = &p->writes_before;
    } else if (p->last) {
        to = &p->last->call[call];
    }
    if (!to) return; /* a read before any execution */
    to->calls++;
    to->bytes += bytes;
    to->ns += ns;
}

static uint32_t total_for(ocl_profile *p, const gpu_launch *l) {
    char key[sizeof p->totals[0].name];
    if (p->shapes && l->dims == 1)
        snprintf(key, sizeof key, "%s [%zu]", l->kernel, l->global[0]);
    else if (p->shapes && l->dims == 2)
        snprintf(key, sizeof key, "%s [%zux%zu]", l->kernel, l->global[0], l->global[1]);
    else if (p->shapes)
        snprintf(key, sizeof key, "%s [%zux%zux%zu]", l->kernel, l->global[0], l->global[1], l->global[2]);
    else
        snprintf(key, sizeof key, "%s", l->kernel);
    for (uint32_t i = 0; i < p->n_totals; i++)
        if (strcmp(p->totals[i].name, key) == 0) return i;
    if (p->n_totals == PROFILE_ENTRIES) { /* every further one shares the last row */
        snprintf(p->totals[PROFILE_ENTRIES - 1].name, sizeof key, "(other)");
        return PROFILE_ENTRIES - 1;
    }
    kernel_total *t = &p->totals[p->n_totals];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", key);
    return p->n_totals++;
}

/* Reads and releases the pending events (all complete: called after clFinish) into the kernel
 * table and the execution under way. */
static void read_events(ocl_runtime *rt) {
    ocl_profile *p = rt->profile;
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
            p->cur.kernel_ns += end - start;
            first = start < first ? start : first;
            last = end > last ? end : last;
        }
        api->clReleaseEvent(p->pending[i]);
    }
    if (last > first) p->cur.span_ns += last - first;
    p->n_pending = 0;
}

static exec_group *group_for(ocl_profile *p, uint32_t rows) {
    for (uint32_t i = 0; i < p->n_groups; i++)
        if (p->groups[i].rows == rows) return &p->groups[i];
    if (p->n_groups == PROFILE_GROUPS) return &p->groups[PROFILE_GROUPS - 1]; /* shown as "other rows" */
    exec_group *g = &p->groups[p->n_groups++];
    memset(g, 0, sizeof *g);
    g->rows = rows;
    return g;
}

static void add_calls(host_calls *to, const host_calls *from) {
    to->calls += from->calls;
    to->bytes += from->bytes;
    to->ns += from->ns;
}

static void add_totals(exec_totals *to, const exec_totals *from) {
    to->executions += from->executions;
    to->launches += from->launches;
    to->args_set += from->args_set;
    to->args += from->args;
    to->before_finish_ns += from->before_finish_ns;
    to->finish_ns += from->finish_ns;
    to->events_ns += from->events_ns;
    to->kernel_ns += from->kernel_ns;
    to->span_ns += from->span_ns;
    for (int k = 0; k < OCL_CALL_KINDS; k++) add_calls(&to->call[k], &from->call[k]);
}

/* The end of an execution: its finish returned (backend.c's be_finish). */
void ocl_profile_collect(ocl_runtime *rt) {
    ocl_profile *p = rt->profile;
    if (!p || (!p->open && p->n_pending == 0)) return;
    uint64_t finished = ocl_profile_now(rt);
    begin_execution(p, finished); /* no-op unless a finish came with no launch recorded */
    read_events(rt);
    exec_totals *c = &p->cur;
    c->executions = 1;
    c->before_finish_ns = p->last_launch_ns - p->start_ns;
    c->finish_ns = finished - p->last_launch_ns;
    c->events_ns = ocl_profile_now(rt) - finished;
    add_calls(&c->call[OCL_CALL_BUFFER_WRITE], &p->writes_before);
    memset(&p->writes_before, 0, sizeof p->writes_before);
    p->executions++;
    p->kernel_ns += c->kernel_ns;
    p->span_ns += c->span_ns;
    exec_group *g = group_for(p, p->rows);
    p->last = g->first.executions ? &g->rest : &g->first;
    add_totals(p->last, c);
    p->open = 0;
}

void ocl_profile_add_launch(ocl_runtime *rt, const gpu_launch *l, cl_event event, uint32_t args_set, uint32_t args) {
    ocl_profile *p = rt->profile;
    uint64_t now = ocl_profile_now(rt);
    begin_execution(p, now);
    p->last_launch_ns = now;
    p->cur.launches++;
    p->cur.args_set += args_set;
    p->cur.args += args;
    if (!event) return; /* =host */
    if (p->n_pending == PROFILE_PENDING) {
        /* A graph with more launches than we hold: read what we have (the span splits in two). */
        rt->ctx->api.clFinish(rt->queue);
        read_events(rt);
    }
    p->pending_kernel[p->n_pending] = (uint16_t)total_for(p, l);
    p->pending[p->n_pending++] = event;
}

static int by_time(const void *a, const void *b) {
    const kernel_total *x = a, *y = b;
    return x->ns < y->ns ? 1 : x->ns > y->ns ? -1 : 0;
}

static int by_rows(const void *a, const void *b) {
    const exec_group *x = a, *y = b;
    return x->rows < y->rows ? -1 : x->rows > y->rows ? 1 : 0;
}

/* "N x SIZE TIME" of one kind of call, per execution. */
static void format_calls(char *out, size_t size, const host_calls *c, double executions) {
    double each = c->calls ? (double)c->bytes / (double)c->calls : 0.0;
    if (each < 10e3)
        snprintf(out, size, "%.1f x %.0f B %.3f ms", (double)c->calls / executions, each,
                 (double)c->ns * 1e-6 / executions);
    else
        snprintf(out, size, "%.1f x %.1f KB %.3f ms", (double)c->calls / executions, each / 1e3,
                 (double)c->ns * 1e-6 / executions);
}

/* A group's two lines: every figure per execution, over all but its first where it has more. */
static void report_group(exo_plugin_ctx *ctx, uint32_t device, const exec_group *g, int other, int host_only) {
    const exec_totals *t = g->rest.executions ? &g->rest : &g->first;
    double n = (double)t->executions;
    char rows[32], w[64], r[64], m[64], device_side[96] = ", no events (EXO_OPENCL_PROFILE=host)";
    snprintf(rows, sizeof rows, other ? "other rows" : "rows %u", g->rows);
    if (!host_only)
        snprintf(device_side, sizeof device_side, ", kernels %.3f ms (span %.3f), reading the events %.3f ms",
                 (double)t->kernel_ns * 1e-6 / n, (double)t->span_ns * 1e-6 / n, (double)t->events_ns * 1e-6 / n);
    ocl_log(ctx, EXO_LOG_INFO,
            "profile of device %u: host, %s, %llu executions%s, each: before the finish %.3f ms (%.1f launches, %.0f of their "
            "%.0f arguments set), in the finish %.3f ms%s",
            device, rows, (unsigned long long)(g->first.executions + g->rest.executions),
            g->rest.executions ? " (the first left out)" : "", (double)t->before_finish_ns * 1e-6 / n,
            (double)t->launches / n, (double)t->args_set / n, (double)t->args / n, (double)t->finish_ns * 1e-6 / n,
            device_side);
    format_calls(w, sizeof w, &t->call[OCL_CALL_BUFFER_WRITE], n);
    format_calls(r, sizeof r, &t->call[OCL_CALL_BUFFER_READ], n);
    format_calls(m, sizeof m, &t->call[OCL_CALL_MEM_READ], n);
    ocl_log(ctx, EXO_LOG_INFO,
            "profile of device %u: host, %s, blocking calls each: buffer_write %s; buffer_read %s; mem_read %s (part "
            "of before the finish)",
            device, rows, w, r, m);
}

void ocl_profile_report_and_free(ocl_runtime *rt) {
    ocl_profile *p = rt->profile;
    if (!p) return;
    rt->profile = NULL;
    exo_plugin_ctx *ctx = rt->ctx;
    for (uint32_t i = 0; i < p->n_pending; i++) ctx->api.clReleaseEvent(p->pending[i]);
    if (p->executions > 0) {
        double idle = p->span_ns > p->kernel_ns ? (double)(p->span_ns - p->kernel_ns) : 0.0;
        if (p->host_only)
            ocl_log(ctx, EXO_LOG_INFO, "profile of device %u: %llu executions; the host side only (EXO_OPENCL_PROFILE=host)",
                    rt->index, (unsigned long long)p->executions);
        else
            ocl_log(ctx, EXO_LOG_INFO,
                    "profile of device %u: %llu executions; kernels %.3f ms, spans %.3f ms (device idle between "
                    "kernels %.1f%%)",
                    rt->index, (unsigned long long)p->executions, (double)p->kernel_ns * 1e-6, (double)p->span_ns * 1e-6,
                    p->span_ns ? 100.0 * idle / (double)p->span_ns : 0.0);
        int full = p->n_groups == PROFILE_GROUPS;
        exec_group last = p->groups[PROFILE_GROUPS - 1];
        if (full) p->n_groups--; /* the last group holds every further row count: shown at the end */
        qsort(p->groups, p->n_groups, sizeof *p->groups, by_rows);
        for (uint32_t i = 0; i < p->n_groups; i++) report_group(ctx, rt->index, &p->groups[i], 0, p->host_only);
        if (full) report_group(ctx, rt->index, &last, 1, p->host_only);
        qsort(p->totals, p->n_totals, sizeof *p->totals, by_time);
        int width = 28;
        for (uint32_t i = 0; i < p->n_totals; i++)
            if ((int)strlen(p->totals[i].name) > width) width = (int)strlen(p->totals[i].name);
        for (uint32_t i = 0; i < p->n_totals; i++) {
            const kernel_total *t = &p->totals[i];
            ocl_log(ctx, EXO_LOG_INFO, "profile:   %-*s %9llu launches %10.3f ms %9.2f us each %5.1f%%", width, t->name,
                    (unsigned long long)t->launches, (double)t->ns * 1e-6,
                    t->launches ? (double)t->ns * 1e-3 / (double)t->launches : 0.0,
                    p->kernel_ns ? 100.0 * (double)t->ns / (double)p->kernel_ns : 0.0);
        }
    }
    ctx->host->free(ctx->host->host_ctx, p);
}
