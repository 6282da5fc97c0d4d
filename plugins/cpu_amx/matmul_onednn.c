/* oneDNN bf16 prefill matmuls (see matmul_onednn.h): the decision and its log, the per-graph
 * engine, primitives per (N, K, bias) and row count, bf16 activations, execution.
 *
 * oneDNN 2.6 runs its primitives on OpenMP (libgomp), a second thread pool beside the plugin's.
 * The two never run at once: the plugin's pool finishes its job (the bf16 rounding of x) before
 * a primitive starts, and the primitive has finished when cpu_onednn_matmul returns. OpenMP is
 * given the plugin pool's thread count, so -t N means N threads on either side. */
#include "matmul_onednn.h"

#include "graph_ir.h"
#include "onednn_weight_cache.h"

#include <oneapi/dnnl/dnnl.h>

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Row counts whose primitives a shape keeps: prefill chunks come in few sizes (the chunk size,
 * the prompt's remainder); oneDNN's own primitive cache makes a re-creation cheap anyway. */
#define ROW_SLOTS 8
#define ENV_NAME "EXO_CPU_ONEDNN"

typedef enum onednn_mode { MODE_AUTO, MODE_ON, MODE_OFF } onednn_mode;

typedef struct row_slot {
    int64_t rows;       /* 0: empty */
    uint64_t last_use;
    dnnl_primitive_t prim;
    dnnl_memory_t src, dst, bias; /* descriptors for `rows`; data handles set per execution */
} row_slot;

/* Matmuls of one (N, K, bias) share primitives; their weights share one blocked layout. */
typedef struct matmul_shape {
    int64_t n, k;
    bool bias;
    dnnl_memory_desc_t wei_md;
    char impl[64]; /* oneDNN's implementation at compile, e.g. brg:avx512_core_amx */
    row_slot slot[ROW_SLOTS];
} matmul_shape;

typedef struct onednn_node {
    int32_t shape; /* -1: this node does not take oneDNN */
    cpu_onednn_weights *weights;
    dnnl_memory_t wei_mem;
} onednn_node;

typedef void (*omp_set_num_threads_fn)(int);

struct cpu_onednn {
    exo_plugin_ctx *ctx;
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    int omp_threads;
    omp_set_num_threads_fn omp_set_num_threads; /* NULL: oneDNN's runtime is not libgomp */
    uint32_t n_nodes, n_shapes;
    onednn_node *nodes;
    matmul_shape *shapes;
    uint16_t *x_bf16; /* rows x k of the largest oneDNN matmul at max_tokens */
    int64_t min_weight; /* smallest weight (elements) that takes oneDNN */
    uint64_t clock;
    char err[320];    /* the last failure, for the error detail or (auto mode) the warning */
};

/* Records why something failed in o->err and returns status. */
__attribute__((format(printf, 3, 4))) static exo_status fail(cpu_onednn *o, exo_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->err, sizeof o->err, fmt, ap);
    va_end(ap);
    return status;
}

static exo_status dnnl_fail_status(dnnl_status_t st) {
    return st == dnnl_out_of_memory ? EXO_ERR_NO_MEMORY : EXO_ERR_UNSUPPORTED;
}

/* ---------------------------------------------------------------- the decision */

/* A value outside auto/on/off is a typo: failing the compile for it would move the whole run to
 * the next device (PoCL), so it warns and keeps the default. */
static onednn_mode read_mode(exo_plugin_ctx *ctx) {
    const char *v = ctx->host->get_env ? ctx->host->get_env(ctx->host->host_ctx, ENV_NAME) : NULL;
    if (!v || !*v || strcmp(v, "auto") == 0) return MODE_AUTO;
    if (strcmp(v, "on") == 0 || strcmp(v, "1") == 0) return MODE_ON;
    if (strcmp(v, "off") == 0 || strcmp(v, "0") == 0) return MODE_OFF;
    cpu_log(ctx, EXO_LOG_WARN, "%s='%.40s' is not one of auto, on, off (or 1, 0); using auto", ENV_NAME, v);
    return MODE_AUTO;
}

/* Whether oneDNN's bf16 matmul runs on AMX here; if not, why, in words. */
static bool amx_usable(const cpu_features *f, char *why, size_t why_size) {
    if (!f->amx_tile || !f->amx_permitted) {
        snprintf(why, why_size, "%s", f->amx_status);
        return false;
    }
    if (!f->amx_bf16) {
        snprintf(why, why_size, "AMX tiles without AMX-BF16");
        return false;
    }
    if (strcmp(f->onednn_isa, "avx512_core_amx") != 0) {
        snprintf(why, why_size, "AMX usable but oneDNN's effective ISA is %s (ONEDNN_MAX_CPU_ISA set?)", f->onednn_isa);
        return false;
    }
    snprintf(why, why_size, "AMX usable (tile data permitted, oneDNN isa %s)", f->onednn_isa);
    return true;
}

/* Rows of x at n_tokens for MATMUL node i (x is rows x K). */
static int64_t matmul_rows(const exo_graph *g, const exo_node *nd, uint32_t n_tokens) {
    int64_t ne[EXO_MAX_DIMS];
    int64_t x_count = graph_resolve_shape(exo_graph_tensor(g, nd->src[0]), n_tokens, ne);
    return x_count / exo_graph_tensor(g, nd->src[1])->ne[0];
}

/* A MATMUL whose bf16 weights are fixed at compile time, hold at least min_weight elements, and
 * whose x reaches the row threshold. */
static bool node_eligible(const exo_graph *g, const exo_node *nd, int64_t min_weight) {
    if (nd->op != EXO_OP_MATMUL) return false;
    const exo_tensor *w = exo_graph_tensor(g, nd->src[1]);
    int64_t elements = 1;
    for (uint32_t d = 0; d < w->n_dims; d++) elements *= w->ne[d];
    return w->dtype == EXO_DTYPE_BF16 && (w->flags & EXO_TENSOR_WEIGHT) && elements >= min_weight &&
           matmul_rows(g, nd, g->max_tokens) >= CPU_ONEDNN_MIN_ROWS;
}

/* ---------------------------------------------------------------- primitives */

static void set_omp_threads(const cpu_onednn *o) {
    /* An ICV of the calling thread: graph_execute may come from any thread, so set it each time. */
    if (o->omp_set_num_threads) o->omp_set_num_threads(o->omp_threads);
}

/* Once oneDNN has run a primitive, OpenMP worker threads (and oneDNN's thread-local state in
 * them) live until the process exits; unloading libgomp or libdnnl under them when the host
 * unloads this plugin would leave those threads on unmapped code. So both stay loaded for good
 * (RTLD_NODELETE), and OpenMP's thread count is looked up in the libgomp oneDNN loaded rather
 * than from a second runtime linked into the plugin. Returns NULL where oneDNN's runtime is
 * not libgomp. */
static omp_set_num_threads_fn pin_runtime(void) {
    Dl_info info;
    if (dladdr((void *)dnnl_engine_create, &info) && info.dli_fname)
        (void)dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE); /* never closed: pinned */
    void *gomp = dlopen("libgomp.so.1", RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE);
    if (!gomp) return NULL;
    void *sym = dlsym(gomp, "omp_set_num_threads");
    omp_set_num_threads_fn fn = NULL;
    if (sym) memcpy(&fn, &sym, sizeof fn);
    return fn;
}

/* The primitive descriptor for rows x K bf16 . (K x N bf16 in `wei`) -> rows x N f32 [+ bias]. */
static dnnl_status_t make_pd(const cpu_onednn *o, int64_t rows, int64_t n, int64_t k, bool bias,
                             const dnnl_memory_desc_t *wei, dnnl_primitive_desc_t *pd) {
    dnnl_memory_desc_t src_md, dst_md, bias_md;
    dnnl_dims_t src_dims = {rows, k}, dst_dims = {rows, n}, bias_dims = {1, n};
    dnnl_status_t st = dnnl_memory_desc_init_by_tag(&src_md, 2, src_dims, dnnl_bf16, dnnl_ab);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&dst_md, 2, dst_dims, dnnl_f32, dnnl_ab);
    if (st == dnnl_success && bias) st = dnnl_memory_desc_init_by_tag(&bias_md, 2, bias_dims, dnnl_f32, dnnl_ab);
    dnnl_matmul_desc_t desc;
    if (st == dnnl_success) st = dnnl_matmul_desc_init(&desc, &src_md, wei, bias ? &bias_md : NULL, &dst_md);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(pd, &desc, NULL, o->engine, NULL);
    return st;
}

static void slot_clear(row_slot *s) {
    if (s->prim) dnnl_primitive_destroy(s->prim);
    if (s->src) dnnl_memory_destroy(s->src);
    if (s->dst) dnnl_memory_destroy(s->dst);
    if (s->bias) dnnl_memory_destroy(s->bias);
    memset(s, 0, sizeof *s);
}

static const char *impl_name(const_dnnl_primitive_desc_t pd) {
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success || !impl) return "?";
    return impl;
}

/* Fills `slot` with the primitive for `rows` rows of shape s (weights in s->wei_md). */
static exo_status slot_create(cpu_onednn *o, matmul_shape *s, int64_t rows, row_slot *slot) {
    dnnl_primitive_desc_t pd = NULL;
    const char *step = "describing the matmul";
    dnnl_status_t st = make_pd(o, rows, s->n, s->k, s->bias, &s->wei_md, &pd);
    if (st == dnnl_success) step = "creating the primitive", st = dnnl_primitive_create(&slot->prim, pd);
    const dnnl_query_t mds[3] = {dnnl_query_src_md, dnnl_query_dst_md, dnnl_query_weights_md};
    dnnl_memory_t *mems[3] = {&slot->src, &slot->dst, &slot->bias};
    for (int i = 0; i < 3 && st == dnnl_success; i++) {
        if (i == 2 && !s->bias) break;
        step = "creating its memory objects";
        /* The bias is weights index 1 of a matmul. */
        const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, mds[i], i == 2 ? 1 : 0);
        st = md ? dnnl_memory_create(mems[i], md, o->engine, DNNL_MEMORY_NONE) : dnnl_runtime_error;
    }
    if (st == dnnl_success && strcmp(impl_name(pd), s->impl) != 0)
        cpu_log(o->ctx, EXO_LOG_WARN, "oneDNN matmul %lld x %lld x %lld runs as %s, not %s as compiled", (long long)rows,
                (long long)s->k, (long long)s->n, impl_name(pd), s->impl);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (st != dnnl_success) {
        slot_clear(slot);
        return fail(o, dnnl_fail_status(st), "bf16 matmul of %lld x %lld by %lld x %lld: %s failed: %s", (long long)rows,
                    (long long)s->k, (long long)s->k, (long long)s->n, step, cpu_dnnl_status_name(st));
    }
    slot->rows = rows;
    slot->last_use = ++o->clock;
    return EXO_OK;
}

/* The shape for (n, k, bias), created with oneDNN's preferred weight layout at `rows` rows. */
static exo_status shape_index(cpu_onednn *o, int64_t n, int64_t k, bool bias, int64_t rows, int32_t *out) {
    for (uint32_t i = 0; i < o->n_shapes; i++)
        if (o->shapes[i].n == n && o->shapes[i].k == k && o->shapes[i].bias == bias) {
            *out = (int32_t)i;
            return EXO_OK;
        }
    matmul_shape *s = &o->shapes[o->n_shapes];
    memset(s, 0, sizeof *s);
    s->n = n, s->k = k, s->bias = bias;
    dnnl_memory_desc_t any;
    dnnl_dims_t wei_dims = {k, n};
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_memory_desc_init_by_tag(&any, 2, wei_dims, dnnl_bf16, dnnl_format_tag_any);
    if (st == dnnl_success) st = make_pd(o, rows, n, k, bias, &any, &pd);
    if (st != dnnl_success)
        return fail(o, dnnl_fail_status(st), "no bf16 matmul of %lld x %lld by %lld x %lld on this CPU (oneDNN isa %s): %s",
                    (long long)rows, (long long)k, (long long)k, (long long)n, o->ctx->features.onednn_isa,
                    cpu_dnnl_status_name(st));
    s->wei_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    snprintf(s->impl, sizeof s->impl, "%s", impl_name(pd));
    dnnl_primitive_desc_destroy(pd);
    exo_status est = slot_create(o, s, rows, &s->slot[0]);
    if (est != EXO_OK) return est;
    *out = (int32_t)o->n_shapes++;
    return EXO_OK;
}

/* ---------------------------------------------------------------- lifetime */

void cpu_onednn_free(cpu_onednn *o) {
    if (!o) return;
    for (uint32_t i = 0; o->nodes && i < o->n_nodes; i++) {
        if (o->nodes[i].wei_mem) dnnl_memory_destroy(o->nodes[i].wei_mem);
        cpu_onednn_weights_release(o->nodes[i].weights);
    }
    for (uint32_t i = 0; o->shapes && i < o->n_shapes; i++)
        for (int j = 0; j < ROW_SLOTS; j++) slot_clear(&o->shapes[i].slot[j]);
    if (o->stream) dnnl_stream_destroy(o->stream);
    if (o->engine) dnnl_engine_destroy(o->engine);
    free(o->nodes);
    free(o->shapes);
    free(o->x_bf16);
    free(o);
}

/* Engine, stream, per-node weights and primitives for every eligible node of g. */
static exo_status build(cpu_onednn *o, const exo_graph *g, uint64_t *reordered_bytes, uint32_t *n_matmuls) {
    if (dnnl_engine_create(&o->engine, dnnl_cpu, 0) != dnnl_success || !o->engine)
        return fail(o, EXO_ERR_UNSUPPORTED, "cannot create the CPU engine");
    if (dnnl_stream_create(&o->stream, o->engine, dnnl_stream_default_flags) != dnnl_success)
        return fail(o, EXO_ERR_UNSUPPORTED, "cannot create a stream");
    set_omp_threads(o); /* the weight reorders run on OpenMP too */
    size_t x_elems = 0;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        onednn_node *on = &o->nodes[i];
        on->shape = -1;
        const exo_node *nd = exo_graph_node(g, i);
        if (!node_eligible(g, nd, o->min_weight)) continue;
        const exo_tensor *w = exo_graph_tensor(g, nd->src[1]);
        int64_t k = w->ne[0], n = 1, rows = matmul_rows(g, nd, g->max_tokens);
        for (uint32_t d = 1; d < w->n_dims; d++) n *= w->ne[d];
        exo_status st = shape_index(o, n, k, nd->n_src == 3, rows, &on->shape);
        if (st != EXO_OK) return st;
        const matmul_shape *s = &o->shapes[on->shape];
        char what[EXO_TENSOR_NAME_MAX + 1];
        snprintf(what, sizeof what, "%.*s", GRAPH_NAME_ARG(w));
        const void *data = g->buffers[w->buffer]->data + w->offset;
        st = cpu_onednn_weights_acquire(data, n, k, &s->wei_md, o->engine, o->stream, what, &on->weights, o->err,
                                        sizeof o->err);
        if (st != EXO_OK) return st;
        if (dnnl_memory_create(&on->wei_mem, &s->wei_md, o->engine, cpu_onednn_weights_data(on->weights)) != dnnl_success)
            return fail(o, EXO_ERR_NO_MEMORY, "weight '%s': cannot create its memory object", what);
        *reordered_bytes += cpu_onednn_weights_bytes(on->weights);
        ++*n_matmuls;
        if ((size_t)(rows * k) > x_elems) x_elems = (size_t)(rows * k);
    }
    if (posix_memalign((void **)&o->x_bf16, CPU_ALIGN, x_elems * sizeof(uint16_t)) != 0) {
        o->x_bf16 = NULL;
        return fail(o, EXO_ERR_NO_MEMORY, "cannot allocate %zu bytes for bf16 activations", x_elems * sizeof(uint16_t));
    }
    return EXO_OK;
}

exo_status cpu_onednn_create(exo_plugin_ctx *ctx, const exo_graph *g, uint32_t n_threads, cpu_onednn **out) {
    *out = NULL;
    onednn_mode mode = read_mode(ctx);
    uint32_t eligible = 0;
    /* auto leaves small matrices to the own GEMM: measured on a 16-core Sapphire Rapids-class
     * host, oneDNN 2.6's AMX matmuls beat it at 2048x2048 and up (1B shape, +12 % prefill) but
     * lose 4x at 768x2048 (110M shape), where conversion and hand-off overheads dominate. */
    int64_t min_weight = mode == MODE_AUTO ? CPU_ONEDNN_AUTO_MIN_WEIGHT : 0;
    for (uint32_t i = 0; i < g->n_nodes; i++) eligible += node_eligible(g, exo_graph_node(g, i), min_weight);
    char why[200];
    bool amx = amx_usable(&ctx->features, why, sizeof why);
    if (mode == MODE_OFF) {
        cpu_log(ctx, EXO_LOG_INFO, "prefill matmuls: own f32 GEMM (%s=off)", ENV_NAME);
        return EXO_OK;
    }
    if (mode == MODE_AUTO && !amx) {
        cpu_log(ctx, EXO_LOG_INFO, "prefill matmuls: own f32 GEMM, not oneDNN bf16: %s (%s=on forces oneDNN)", why,
                ENV_NAME);
        return EXO_OK;
    }
    if (eligible == 0) {
        cpu_log(ctx, EXO_LOG_INFO,
                "prefill matmuls: own kernels (no MATMUL with bf16 weights of >= %lld elements reaches %d rows at "
                "max_tokens %u, so no oneDNN bf16 path)",
                (long long)min_weight, CPU_ONEDNN_MIN_ROWS, g->max_tokens);
        return EXO_OK;
    }
    cpu_onednn *o = calloc(1, sizeof *o);
    if (o) {
        o->ctx = ctx;
        o->omp_threads = (int)(n_threads ? n_threads : 1);
        o->min_weight = min_weight;
        o->omp_set_num_threads = pin_runtime();
        o->n_nodes = g->n_nodes;
        o->nodes = calloc(g->n_nodes, sizeof *o->nodes);
        o->shapes = calloc(eligible, sizeof *o->shapes);
    }
    if (!o || !o->nodes || !o->shapes) {
        cpu_onednn_free(o);
        return cpu_error(ctx, EXO_ERR_NO_MEMORY, "cpu_amx graph_compile: out of memory");
    }
    uint64_t reordered = 0;
    uint32_t n_matmuls = 0;
    exo_status st = build(o, g, &reordered, &n_matmuls);
    if (st != EXO_OK) {
        if (mode == MODE_ON)
            st = cpu_error(ctx, st, "cpu_amx graph_compile: %s=on but the oneDNN bf16 matmul path failed: %s", ENV_NAME,
                           o->err);
        else /* auto: the own GEMM serves every matmul; say why oneDNN does not. */
            cpu_log(ctx, EXO_LOG_WARN, "prefill matmuls: own f32 GEMM; the oneDNN bf16 path failed: %s", o->err);
        cpu_onednn_free(o);
        return mode == MODE_ON ? st : EXO_OK;
    }
    if (!o->omp_set_num_threads)
        cpu_log(ctx, EXO_LOG_DEBUG, "oneDNN's OpenMP runtime is not libgomp: its thread count follows OMP_NUM_THREADS");
    cpu_log(ctx, EXO_LOG_INFO,
            "prefill matmuls (>= %d rows): oneDNN bf16 %s, %u matmuls, %u shapes, %.1f MiB of reordered weights, %d "
            "OpenMP threads: %s%s",
            CPU_ONEDNN_MIN_ROWS, o->shapes[0].impl, n_matmuls, o->n_shapes, (double)reordered / (1024.0 * 1024.0),
            o->omp_threads, mode == MODE_ON && !amx ? "forced by " ENV_NAME "=on; " : "", why);
    *out = o;
    return EXO_OK;
}

/* ---------------------------------------------------------------- execution */

bool cpu_onednn_takes(const cpu_onednn *o, uint32_t node, int64_t rows) {
    return o && node < o->n_nodes && o->nodes[node].shape >= 0 && rows >= CPU_ONEDNN_MIN_ROWS;
}

typedef struct to_bf16_args {
    const float *x;
    int64_t k;
    uint16_t *out;
} to_bf16_args;

/* Items: rows. Round to nearest even, as oneDNN's own f32 -> bf16 reorder; NaN stays NaN. */
static void rows_to_bf16(void *args, int64_t begin, int64_t end, uint32_t thread) {
    const to_bf16_args *a = args;
    for (int64_t i = begin * a->k; i < end * a->k; i++) {
        uint32_t bits;
        memcpy(&bits, &a->x[i], sizeof bits);
        if ((bits & 0x7fffffffu) > 0x7f800000u) a->out[i] = (uint16_t)((bits >> 16) | 0x40u);
        else a->out[i] = (uint16_t)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
    }
}

void cpu_onednn_load_x(cpu_onednn *o, cpu_threadpool *pool, const float *x, int64_t rows, int64_t k) {
    to_bf16_args a = {x, k, o->x_bf16};
    int64_t grain = k >= 16384 ? 1 : 16384 / k;
    cpu_threadpool_run(pool, rows, grain, rows_to_bf16, &a);
}

static exo_status slot_for(cpu_onednn *o, matmul_shape *s, int64_t rows, row_slot **out) {
    row_slot *victim = &s->slot[0];
    for (int i = 0; i < ROW_SLOTS; i++) {
        row_slot *r = &s->slot[i];
        if (r->rows == rows) {
            r->last_use = ++o->clock;
            *out = r;
            return EXO_OK;
        }
        if (r->rows == 0 || (victim->rows != 0 && r->last_use < victim->last_use)) victim = r;
    }
    slot_clear(victim);
    *out = victim;
    return slot_create(o, s, rows, victim);
}

exo_status cpu_onednn_matmul(cpu_onednn *o, uint32_t node, int64_t rows, const float *bias, float *dst) {
    onednn_node *on = &o->nodes[node];
    matmul_shape *s = &o->shapes[on->shape];
    row_slot *slot;
    exo_status st = slot_for(o, s, rows, &slot);
    if (st != EXO_OK) return cpu_error(o->ctx, st, "cpu_amx graph_execute: node %u: oneDNN %s", node, o->err);
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, slot->src}, {DNNL_ARG_WEIGHTS, on->wei_mem}, {DNNL_ARG_DST, slot->dst}};
    int n_args = 3;
    dnnl_status_t ds = dnnl_memory_set_data_handle(slot->src, o->x_bf16);
    if (ds == dnnl_success) ds = dnnl_memory_set_data_handle(slot->dst, dst);
    if (ds == dnnl_success && s->bias) {
        /* oneDNN only reads the bias; its API has no const memory. */
        ds = dnnl_memory_set_data_handle(slot->bias, (void *)bias);
        args[n_args++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, slot->bias};
    }
    set_omp_threads(o);
    if (ds == dnnl_success) ds = dnnl_primitive_execute(slot->prim, o->stream, n_args, args);
    if (ds == dnnl_success) ds = dnnl_stream_wait(o->stream);
    if (ds != dnnl_success)
        return cpu_error(o->ctx, EXO_ERR_INTERNAL, "cpu_amx graph_execute: node %u: oneDNN bf16 matmul of %lld rows failed: %s",
                         node, (long long)rows, cpu_dnnl_status_name(ds));
    return EXO_OK;
}
