/* The device self-benchmark (exo_device_benchmark, exo.h): placement facts measured on the device
 * through its own graph path — read bandwidth from a matrix-vector product over a 64 MiB float32
 * weight (a decode step streams weights the same way) and float32 matmul throughput — cached per
 * device and driver version in a small tab-separated file, so a node measures once per driver.
 * The graph is bench_graph.c's single matmul; buffers, compile and execute go through the plugin
 * as a shard's would, under the device lock. The link between two devices (exo_device_link_benchmark)
 * is timed the way the pipeline's hand-over goes: a device-to-device copy where the plugin offers
 * one for the pair (peer_copy.h), else a buffer read back from one into host memory and written to
 * the other (as the tensor-parallel all-reduce always does). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/struct_io.h"
#include "graph/builder.h"
#include "registry/runtime.h"
#include "run/peer_copy.h"
#include "run/shard_memory.h"

#define READ_K 4096
#define READ_N 4096          /* 64 MiB of float32 weights */
#define MATMUL_T 256
#define MATMUL_K 1024
#define MATMUL_N 1024
#define RUNS 5               /* timed runs after one warm-up; the best counts */
#define LINK_BYTES ((uint64_t)16 << 20)   /* the link's bandwidth copy */
#define LINK_SMALL_BYTES ((uint64_t)16 << 10) /* its latency copy: 4096 floats, an 8B model's hidden row */
#define CACHE_LINE 4096     /* a link's line holds both devices' keys */

/* The cache entry's key: plugin, fingerprint, name and driver version (a new driver measures again). */
static void cache_key(const exo_runtime *rt, uint32_t device, char *key, size_t cap) {
    const exo_device_rec *d = exo_runtime_device(rt, device);
    const exo_device_report *r = d->report;
    snprintf(key, cap, "%s:%u\t%s\t%s\t%s", rt->plugins[d->plugin].name, d->index, r->fingerprint, r->name,
             r->driver_version);
    for (char *c = key; *c; c++)
        if (*c == '\n') *c = ' ';
}

static bool cache_path(char *path, size_t cap, bool make_dir) {
    const char *xdg = secure_getenv("XDG_CACHE_HOME"), *home = secure_getenv("HOME");
    char dir[3072];
    if (xdg && *xdg == '/') snprintf(dir, sizeof dir, "%s/exo-ipex", xdg);
    else if (home && *home == '/') snprintf(dir, sizeof dir, "%s/.cache/exo-ipex", home);
    else return false;
    if (make_dir) {
        char parent[3072];
        snprintf(parent, sizeof parent, "%s", dir);
        char *slash = strrchr(parent, '/');
        if (slash) *slash = '\0';
        if (mkdir(parent, 0700) != 0 && errno != EEXIST) return false;
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) return false;
    }
    snprintf(path, cap, "%s/device-bench.tsv", dir);
    return true;
}

/* Looks the key up: "key\tv0\tv1[\ttag]" (a device: read_gbs, matmul_gflops; a link: gbs,
 * latency_us and, since peer copies, "peer" or "host": a line without it is a host-path figure).
 * *peer (may be NULL) tells which. */
static bool cache_read(const char *key, double *v0, double *v1, bool *peer) {
    char path[4096], line[CACHE_LINE];
    if (!cache_path(path, sizeof path, false)) return false;
    FILE *f = fopen(path, "r");
    if (!f) return false;
    size_t n = strlen(key);
    bool found = false;
    char tag[8] = "";
    while (!found && fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0 && line[n] == '\t')
            found = sscanf(line + n + 1, "%lf\t%lf\t%7s", v0, v1, tag) >= 2 && *v0 > 0 && *v1 > 0;
    fclose(f);
    if (peer) *peer = found && strcmp(tag, "peer") == 0;
    return found;
}

/* Rewrites the file with the key's entry replaced (a temporary file renamed over it). A cache that
 * cannot be written is logged, never an error. */
static void cache_write(exo_runtime *rt, const char *key, double v0, double v1, const char *tag) {
    char path[4096], tmp[4200], line[CACHE_LINE];
    if (!cache_path(path, sizeof path, true)) return;
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *out = fopen(tmp, "w");
    if (!out) {
        exo_logf(&rt->logger, EXO_LOG_INFO, "bench", "cannot write %s: %s", tmp, strerror(errno));
        return;
    }
    FILE *in = fopen(path, "r");
    size_t n = strlen(key);
    while (in && fgets(line, sizeof line, in))
        if (!(strncmp(line, key, n) == 0 && line[n] == '\t')) fputs(line, out);
    if (in) fclose(in);
    /* 6 significant digits: a slow link of 0.256 GB/s too */
    fprintf(out, "%s\t%.6g\t%.6g%s%s\n", key, v0, v1, tag ? "\t" : "", tag ? tag : "");
    if (fclose(out) != 0 || rename(tmp, path) != 0) {
        exo_logf(&rt->logger, EXO_LOG_INFO, "bench", "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
    }
}

/* Runs a [t, k] x [n, k] matmul RUNS times after a warm-up; *best_s the fastest run's seconds. */
static exo_status time_matmul(exo_runtime *rt, uint32_t device, uint32_t t, uint32_t k, uint32_t n, double *best_s) {
    exo_plugin_rec *p = exo_runtime_device_plugin(rt, device);
    const exo_plugin_api *api = &p->api;
    uint32_t dev = exo_runtime_device(rt, device)->index;
    if (!api->graph_compile || !api->graph_execute || !api->buffer_alloc || !api->buffer_write || !api->buffer_read)
        return exo_errorf(EXO_ERR_UNSUPPORTED, "plugin %s runs no graphs", p->name);
    exo_graph_plan plan;
    exo_status st = exo_graph_plan_build_matmul(k, n, t, &plan);
    if (st != EXO_OK) return st;
    exo_buffer *weight = NULL, *x = NULL, *y = NULL;
    exo_compiled *compiled = NULL;
    float *host = calloc((size_t)t * (k > n ? k : n), sizeof *host);
    if (!host) st = exo_errorf(EXO_ERR_NO_MEMORY, "out of memory for the benchmark");
    for (size_t i = 0; host && i < (size_t)t * k; i++) host[i] = (float)(i % 7) / 7.0f;
    exo_error_clear();
    if (st == EXO_OK) st = api->buffer_alloc(p->ctx, dev, plan.buffers[0].size, EXO_BUFFER_WEIGHTS, &weight);
    if (st == EXO_OK) st = api->buffer_write(weight, 0, plan.buffers[0].data, plan.buffers[0].size);
    if (st == EXO_OK) st = api->buffer_alloc(p->ctx, dev, (uint64_t)t * k * 4, EXO_BUFFER_SCRATCH, &x);
    if (st == EXO_OK) st = api->buffer_write(x, 0, host, (uint64_t)t * k * 4);
    if (st == EXO_OK) st = api->buffer_alloc(p->ctx, dev, (uint64_t)t * n * 4, EXO_BUFFER_SCRATCH, &y);
    exo_graph graph;
    if (st == EXO_OK) st = exo_graph_plan_view(&plan, &weight, p->abi_version, &graph);
    if (st == EXO_OK) st = api->graph_compile(p->ctx, dev, &graph, &compiled);
    exo_binding bindings[2] = {{.tensor = plan.in_hidden, .buffer = x}, {.tensor = plan.output, .buffer = y}};
    exo_exec_args args;
    memset(&args, 0, sizeof args);
    EXO_ABI_STRUCT_INIT(&args);
    args.n_tokens = t;
    args.n_bindings = 2;
    args.bindings = bindings;
    args.binding_stride = (uint32_t)sizeof *bindings;
    *best_s = 0;
    for (int run = 0; st == EXO_OK && run <= RUNS; run++) {
        uint64_t t0 = exo_now_ns();
        st = api->graph_execute(compiled, &args);
        /* Reading one value back waits for the device (a GPU's execute may return early). */
        if (st == EXO_OK) st = api->buffer_read(y, 0, host, 4);
        double s = (double)(exo_now_ns() - t0) / 1e9;
        if (st == EXO_OK && run > 0 && (*best_s == 0 || s < *best_s)) *best_s = s;
    }
    if (st != EXO_OK) exo_error_wrap(st, "the %ux%ux%u benchmark matmul", t, k, n);
    if (compiled && api->compiled_free) api->compiled_free(compiled);
    if (api->buffer_free) {
        if (weight) api->buffer_free(weight);
        if (x) api->buffer_free(x);
        if (y) api->buffer_free(y);
    }
    free(host);
    exo_graph_plan_free(&plan);
    return st;
}

/* The cached figures of a device, if any (placement.c's speed). */
bool exo_device_bench_cached(const exo_runtime *rt, uint32_t device, double *read_gbs, double *gflops) {
    char key[768];
    cache_key(rt, device, key, sizeof key);
    return cache_read(key, read_gbs, gflops, NULL);
}

exo_status exo_device_benchmark(exo_runtime *rt, uint32_t index, uint32_t flags, exo_device_bench *out) {
    exo_error_clear();
    if (!rt || !out || out->hdr.size < sizeof(exo_struct_header))
        return exo_errorf(EXO_ERR_INVALID_ARG, "exo_device_benchmark: NULL argument or uninitialised header");
    if (index >= rt->n_ranked)
        return exo_error_keep(&rt->error, exo_errorf(EXO_ERR_INVALID_ARG, "device %u out of range", index));
    exo_device_bench b;
    memset(&b, 0, sizeof b);
    EXO_STRUCT_INIT(&b);
    const exo_device_rec *d = exo_runtime_device(rt, index);
    bool host = false;
    const char *source = "";
    uint64_t avail = exo_device_memory_available(d, &host, &source);
    b.memory_free = avail == UINT64_MAX ? d->report->memory_free : avail;
    char key[768];
    cache_key(rt, index, key, sizeof key);
    exo_status st = EXO_OK;
    if (!(flags & EXO_DEVICE_BENCH_REFRESH) && cache_read(key, &b.read_gbs, &b.matmul_gflops, NULL)) {
        b.cached = 1;
    } else if (flags & EXO_DEVICE_BENCH_CACHED_ONLY) {
        st = exo_errorf(EXO_ERR_NOT_FOUND, "%s:%u has no cached benchmark for driver '%s'",
                        rt->plugins[d->plugin].name, d->index, d->report->driver_version);
    } else {
        double read_s = 0, matmul_s = 0;
        st = exo_runtime_device_open(rt, index);
        exo_runtime_device_lock(rt, index);
        if (st == EXO_OK) st = time_matmul(rt, index, 1, READ_K, READ_N, &read_s);
        if (st == EXO_OK) st = time_matmul(rt, index, MATMUL_T, MATMUL_K, MATMUL_N, &matmul_s);
        exo_runtime_device_unlock(rt, index);
        if (st == EXO_OK) {
            b.read_gbs = (double)READ_K * READ_N * 4 / read_s / 1e9;
            b.matmul_gflops = 2.0 * MATMUL_T * MATMUL_K * MATMUL_N / matmul_s / 1e9;
            cache_write(rt, key, b.read_gbs, b.matmul_gflops, NULL);
            exo_logf(&rt->logger, EXO_LOG_INFO, "bench", "%s:%u '%s': read %.1f GB/s, matmul %.1f GFLOP/s (measured)",
                     rt->plugins[d->plugin].name, d->index, d->report->name, b.read_gbs, b.matmul_gflops);
        } else {
            exo_error_wrap(st, "benchmarking %s:%u", rt->plugins[d->plugin].name, d->index);
        }
    }
    if (st != EXO_OK) return exo_error_keep(&rt->error, st);
    exo_struct_copy_out(out, &b, sizeof b);
    return EXO_OK;
}

/* ---------------------------------------------------------------- links */

/* A link's cache key: both devices' keys (so a new driver on either side measures again). */
static void link_key(const exo_runtime *rt, uint32_t from, uint32_t to, char *key, size_t cap) {
    char a[768], b[768];
    cache_key(rt, from, a, sizeof a);
    cache_key(rt, to, b, sizeof b);
    snprintf(key, cap, "link\t%s\t->\t%s", a, b);
}

/* Copies `bytes` from -> host -> to RUNS times after a warm-up; *best_s the fastest. Each side
 * under its own device lock, taken one at a time (never both: no lock order to get wrong). */
static exo_status time_link(exo_runtime *rt, uint32_t from, uint32_t to, exo_buffer *a, exo_buffer *b, void *host,
                            uint64_t bytes, bool peer, double *best_s) {
    const exo_plugin_api *fa = &exo_runtime_device_plugin(rt, from)->api, *fb = &exo_runtime_device_plugin(rt, to)->api;
    exo_status st = EXO_OK;
    *best_s = 0;
    for (int run = 0; st == EXO_OK && run <= RUNS; run++) {
        uint64_t t0 = exo_now_ns();
        if (peer) { /* one device-to-device copy, both locks held (exo_peer_copy) */
            st = exo_peer_copy(rt, from, a, 0, to, b, 0, bytes);
            double s = (double)(exo_now_ns() - t0) / 1e9;
            if (st == EXO_OK && run > 0 && (*best_s == 0 || s < *best_s)) *best_s = s;
            continue;
        }
        exo_runtime_device_lock(rt, from);
        st = fa->buffer_read(a, 0, host, bytes);
        exo_runtime_device_unlock(rt, from);
        if (st == EXO_OK) {
            exo_runtime_device_lock(rt, to);
            st = fb->buffer_write(b, 0, host, bytes);
            exo_runtime_device_unlock(rt, to);
        }
        double s = (double)(exo_now_ns() - t0) / 1e9;
        if (st == EXO_OK && run > 0 && (*best_s == 0 || s < *best_s)) *best_s = s;
    }
    return st;
}

/* The copies arrived: the destination's bytes equal the source's pattern (a copy that moved nothing
 * would otherwise time as a fast link). */
static exo_status check_link_copy(exo_runtime *rt, uint32_t to, exo_buffer *b, const void *want, const char *name_a,
                                  const char *name_b) {
    exo_plugin_rec *p = exo_runtime_device_plugin(rt, to);
    unsigned char got[4096];
    exo_status st = EXO_OK;
    exo_runtime_device_lock(rt, to);
    /* The first bytes (every copy wrote them) and the last of the big copy. */
    uint64_t at[2] = {0, LINK_BYTES - sizeof got};
    for (int i = 0; i < 2 && st == EXO_OK; i++) {
        st = p->api.buffer_read(b, at[i], got, sizeof got);
        if (st == EXO_OK && memcmp(got, (const unsigned char *)want + at[i], sizeof got) != 0)
            st = exo_errorf(EXO_ERR_BACKEND, "the copy from %s to %s did not arrive: bytes at offset %llu differ",
                            name_a, name_b, (unsigned long long)at[i]);
    }
    exo_runtime_device_unlock(rt, to);
    return st;
}

/* Allocates a scratch buffer of `bytes` on a device (its lock held for the call). */
static exo_status link_buffer(exo_runtime *rt, uint32_t device, uint64_t bytes, const void *fill, exo_buffer **out) {
    exo_plugin_rec *p = exo_runtime_device_plugin(rt, device);
    uint32_t dev = exo_runtime_device(rt, device)->index;
    if (!p->api.buffer_alloc || !p->api.buffer_read || !p->api.buffer_write)
        return exo_errorf(EXO_ERR_UNSUPPORTED, "plugin %s has no buffers", p->name);
    exo_runtime_device_lock(rt, device);
    exo_status st = p->api.buffer_alloc(p->ctx, dev, bytes, EXO_BUFFER_SCRATCH, out);
    if (st == EXO_OK && fill) st = p->api.buffer_write(*out, 0, fill, bytes);
    exo_runtime_device_unlock(rt, device);
    return st;
}

static void link_buffer_free(exo_runtime *rt, uint32_t device, exo_buffer *buf) {
    exo_plugin_rec *p = exo_runtime_device_plugin(rt, device);
    if (!buf || !p->api.buffer_free) return;
    exo_runtime_device_lock(rt, device);
    p->api.buffer_free(buf);
    exo_runtime_device_unlock(rt, device);
}

exo_status exo_device_link_benchmark(exo_runtime *rt, uint32_t from, uint32_t to, uint32_t flags,
                                     exo_device_link *out) {
    exo_error_clear();
    if (!rt || !out || out->hdr.size < sizeof(exo_struct_header))
        return exo_errorf(EXO_ERR_INVALID_ARG, "exo_device_link_benchmark: NULL argument or uninitialised header");
    if (from >= rt->n_ranked || to >= rt->n_ranked)
        return exo_error_keep(&rt->error, exo_errorf(EXO_ERR_INVALID_ARG, "device %u out of range",
                                                     from >= rt->n_ranked ? from : to));
    const exo_device_rec *da = exo_runtime_device(rt, from), *db = exo_runtime_device(rt, to);
    char name_a[96], name_b[96];
    snprintf(name_a, sizeof name_a, "%s:%u", rt->plugins[da->plugin].name, da->index);
    snprintf(name_b, sizeof name_b, "%s:%u", rt->plugins[db->plugin].name, db->index);
    if (from == to)
        return exo_error_keep(&rt->error, exo_errorf(EXO_ERR_INVALID_ARG, "a link joins two devices; %s is given "
                                                     "twice", name_a));
    exo_device_link l;
    memset(&l, 0, sizeof l);
    EXO_STRUCT_INIT(&l);
    /* The cached figure is the last measurement's, with the path it took (the drivers unchanged);
     * measuring opens both devices and asks the plugin which path a shard across them takes. */
    exo_status st = EXO_OK;
    char key[1700], why[EXO_ERROR_MAX] = "";
    bool peer = false;
    link_key(rt, from, to, key, sizeof key);
    if (!(flags & EXO_DEVICE_BENCH_REFRESH) && cache_read(key, &l.gbs, &l.latency_us, &peer)) l.cached = 1;
    if (!l.cached && (flags & EXO_DEVICE_BENCH_CACHED_ONLY)) {
        st = exo_errorf(EXO_ERR_NOT_FOUND, "no cached link benchmark from %s to %s", name_a, name_b);
    } else if (!l.cached) {
        exo_buffer *a = NULL, *b = NULL;
        double big_s = 0, small_s = 0;
        void *host = malloc(LINK_BYTES);
        if (!host) st = exo_errorf(EXO_ERR_NO_MEMORY, "out of memory for the link benchmark");
        for (uint64_t i = 0; host && i < LINK_BYTES; i++) ((unsigned char *)host)[i] = (unsigned char)(i * 31);
        if (st == EXO_OK) st = exo_runtime_device_open(rt, from);
        if (st == EXO_OK) st = exo_runtime_device_open(rt, to);
        if (st == EXO_OK) peer = exo_peer_copy_offered(rt, from, to, why, sizeof why);
        if (st == EXO_OK && (st = link_buffer(rt, from, LINK_BYTES, host, &a)) != EXO_OK)
            exo_error_wrap(st, "a %llu-byte buffer on %s", (unsigned long long)LINK_BYTES, name_a);
        if (st == EXO_OK && (st = link_buffer(rt, to, LINK_BYTES, NULL, &b)) != EXO_OK)
            exo_error_wrap(st, "a %llu-byte buffer on %s", (unsigned long long)LINK_BYTES, name_b);
        if (st == EXO_OK) st = time_link(rt, from, to, a, b, host, LINK_BYTES, peer, &big_s);
        if (st == EXO_OK) st = time_link(rt, from, to, a, b, host, LINK_SMALL_BYTES, peer, &small_s);
        if (st == EXO_OK) st = check_link_copy(rt, to, b, host, name_a, name_b);
        link_buffer_free(rt, from, a);
        link_buffer_free(rt, to, b);
        free(host);
        if (st == EXO_OK) {
            l.gbs = (double)LINK_BYTES / big_s / 1e9;
            l.latency_us = small_s * 1e6;
            cache_write(rt, key, l.gbs, l.latency_us, peer ? "peer" : "host");
            exo_logf(&rt->logger, EXO_LOG_INFO, "bench", "link %s -> %s %s: %.2f GB/s, %.1f us for 16 KiB (measured)%s%s",
                     name_a, name_b, peer ? "by peer copies" : "through host memory", l.gbs, l.latency_us,
                     peer || !why[0] ? "" : "; no peer copies: ", peer ? "" : why);
        } else {
            exo_error_wrap(st, "benchmarking the link from %s to %s", name_a, name_b);
        }
    }
    if (st != EXO_OK) return exo_error_keep(&rt->error, st);
    l.path = peer ? EXO_DEVICE_LINK_PEER : EXO_DEVICE_LINK_HOST;
    exo_struct_copy_out(out, &l, sizeof l);
    return EXO_OK;
}
