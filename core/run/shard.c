/* exo_shard: a layer range of a model, built into a graph and loaded on one device.
 *
 * Placement: the device the caller names, or else the selected device with fallback down the
 * ranking (its alternates — the same GPU through another plugin — then the next devices, the
 * CPU last) when opening, checking, allocating or compiling fails. Every failure is logged
 * with its reason; if all fail, the error lists each device's reason. */
#include <stdlib.h>
#include <string.h>

#include "base/struct_io.h"
#include "model_internal.h"
#include "run/placement.h"
#include "run/shard_memory.h"

#define DEFAULT_MAX_TOKENS 512
#define MAX_CANDIDATES 64
/* The shortest context a defaulted max_ctx is cut to before the shard is refused instead. */
#define MIN_FITTED_CTX 256

/* What the caller asked for; zero sizes are the defaults, which may shrink to fit a device. */
typedef struct shard_request {
    uint32_t max_tokens, max_ctx;
    bool tokens_fixed, ctx_fixed;
    exo_dtype kv_dtype; /* the KV cache wanted (F32, BF16, F16) */
    bool kv_named;      /* kv_dtype was asked for (option or EXO_KV_DTYPE), not defaulted */
} shard_request;

/* The KV cache's dtype: exo_shard_options.kv_dtype, else what EXO_KV_DTYPE names, else BF16
 * (half the memory and the bytes a decode step reads per position of F32; the golden tolerance
 * it costs is in docs/model-files.md). A device that cannot take it gets F32 (try_device). */
static exo_status wanted_kv_dtype(exo_runtime *rt, uint32_t option, shard_request *r) {
    static const exo_dtype from_option[] = {EXO_DTYPE_BF16, EXO_DTYPE_F32, EXO_DTYPE_BF16, EXO_DTYPE_F16};
    static const char *const names[] = {"f32", "bf16", "f16"};
    static const exo_dtype dtypes[] = {EXO_DTYPE_F32, EXO_DTYPE_BF16, EXO_DTYPE_F16};
    if (option >= sizeof from_option / sizeof *from_option)
        return exo_errorf(EXO_ERR_INVALID_ARG, "kv_dtype %u: takes EXO_KV_DTYPE_DEFAULT, _F32, _BF16 or _F16", option);
    r->kv_dtype = from_option[option];
    r->kv_named = option != EXO_KV_DTYPE_DEFAULT;
    const char *env = secure_getenv("EXO_KV_DTYPE");
    if (r->kv_named || !env || !*env) return EXO_OK;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcmp(env, names[i]) == 0) {
            r->kv_dtype = dtypes[i];
            r->kv_named = true;
            return EXO_OK;
        }
    exo_logf(&rt->logger, EXO_LOG_WARN, "shard", "EXO_KV_DTYPE=%s is not f32, bf16 or f16: the default (bf16) is kept",
             env);
    return EXO_OK;
}

static exo_kv_dtype public_kv_dtype(exo_dtype d) {
    return d == EXO_DTYPE_BF16 ? EXO_KV_DTYPE_BF16 : d == EXO_DTYPE_F16 ? EXO_KV_DTYPE_F16 : EXO_KV_DTYPE_F32;
}

static void set_kv_dtype(exo_shard *s, exo_dtype dtype) {
    exo_graph_plan_set_kv_dtype(&s->plan, dtype);
    exo_graph_plan_set_kv_dtype(&s->plan_last, dtype);
}

void exo_shard_buffer_release(exo_shard *shard, exo_buffer *buf) {
    if (buf && shard->plugin->api.buffer_free) shard->plugin->api.buffer_free(buf);
}

static void unload_from_device(exo_shard *s) {
    if (s->compiled && s->plugin->api.compiled_free) s->plugin->api.compiled_free(s->compiled);
    if (s->compiled_last && s->plugin->api.compiled_free) s->plugin->api.compiled_free(s->compiled_last);
    if (s->compiled_rows && s->plugin->api.compiled_free) s->plugin->api.compiled_free(s->compiled_rows);
    s->compiled = s->compiled_last = s->compiled_rows = NULL;
    exo_kv_pool_free(s);
    exo_batch_buffers_free(s);
    /* Back to one cache per session, the form the next device is fitted and tried with. */
    exo_graph_plan_pool_kv(&s->plan, 0);
    exo_graph_plan_pool_kv(&s->plan_last, 0);
    s->pooled = false;
    if (s->buffers)
        for (uint32_t i = 0; i < s->plan.n_buffers; i++) exo_shard_buffer_release(s, s->buffers[i]);
    free(s->buffers);
    s->buffers = NULL;
    s->weight_bytes = 0;
}

/* Puts one plan buffer on the device: in place over the mapping when the plugin can wrap host
 * memory, else a device allocation and an upload. */
static exo_status place_buffer(exo_shard *s, uint32_t dev, const exo_plan_buffer *pb, exo_buffer **out) {
    const exo_plugin_api *api = &s->plugin->api;
    exo_status st;
    if (api->buffer_wrap_host && !pb->owned) {
        st = api->buffer_wrap_host(s->plugin->ctx, dev, (void *)pb->data, pb->size, EXO_BUFFER_WEIGHTS, out);
        if (st == EXO_OK) return st;
    }
    if (!api->buffer_alloc || !api->buffer_write)
        return exo_errorf(EXO_ERR_UNSUPPORTED, "plugin %s has no buffers", s->plugin->name);
    st = api->buffer_alloc(s->plugin->ctx, dev, pb->size ? pb->size : 1, EXO_BUFFER_WEIGHTS, out);
    if (st != EXO_OK) return st;
    st = api->buffer_write(*out, 0, pb->data, pb->size);
    if (st != EXO_OK) {
        if (api->buffer_free) api->buffer_free(*out);
        *out = NULL;
    }
    return st;
}

/* Sizes the plans for the device (a public device index), before anything is allocated on it: the weights, one
 * session's KV cache and the intermediates must fit its memory. Defaulted sizes shrink to fit
 * (logged); a shard that still does not fit is refused with every figure. */
static exo_status fit_to_device(exo_shard *s, uint32_t device, const shard_request *r) {
    exo_runtime *rt = s->model->rt;
    const exo_device_rec *d = exo_runtime_device(rt, device);
    const exo_plugin_rec *plugin = exo_runtime_device_plugin(rt, device);
    bool host = false;
    const char *source = "";
    uint64_t avail = exo_device_memory_available(d, &host, &source);
    /* On host memory a plugin that wraps the mapping uses the file's pages, which the kernel
     * pages in and out as it likes; only copies take memory. */
    bool weights_count = !host || !plugin->api.buffer_wrap_host;
    exo_graph_plan *last = s->plan.has_head ? &s->plan_last : NULL;
    exo_shard_memory m;
    bool fits = exo_shard_memory_fit(&s->plan, last, s->input_width, s->output_width, avail, weights_count,
                                     r->max_tokens, r->tokens_fixed, r->max_ctx, r->ctx_fixed, MIN_FITTED_CTX, &m);
    if (!fits) {
        exo_shard_memory_measure(&s->plan, last, s->input_width, s->output_width, r->max_tokens, r->max_ctx, &m);
        return exo_errorf(host ? EXO_ERR_NO_MEMORY : EXO_ERR_DEVICE_OOM,
                          "%s: layers [%u, %u) need %llu bytes (weights %llu, KV cache %llu for max_ctx %u, scratch "
                          "%llu for max_tokens %u), more than %s: %llu bytes",
                          s->model->dir, s->plan.start, s->plan.end,
                          (unsigned long long)exo_shard_memory_need(&m, weights_count),
                          (unsigned long long)(weights_count ? m.weights : m.weights_owned), (unsigned long long)m.kv,
                          m.max_ctx, (unsigned long long)m.scratch, m.max_tokens, source, (unsigned long long)avail);
    }
    if (m.max_tokens != r->max_tokens || m.max_ctx != r->max_ctx)
        exo_logf(&rt->logger, EXO_LOG_WARN, "shard",
                 "%s: layers [%u, %u) at max_ctx %u and max_tokens %u would not fit %s (%llu bytes): using max_ctx "
                 "%u and max_tokens %u (%llu bytes)",
                 s->model->dir, s->plan.start, s->plan.end, r->max_ctx, r->max_tokens, source,
                 (unsigned long long)avail, m.max_ctx, m.max_tokens,
                 (unsigned long long)exo_shard_memory_need(&m, weights_count));
    exo_graph_plan_resize(&s->plan, m.max_tokens, m.max_ctx);
    if (last) exo_graph_plan_resize(last, m.max_tokens, m.max_ctx);
    return EXO_OK;
}

exo_status exo_shard_compile(exo_shard *s, exo_compiled **full, exo_compiled **last) {
    const exo_plugin_api *api = &s->plugin->api;
    uint32_t dev = exo_runtime_device(s->model->rt, s->device)->index;
    *full = *last = NULL;
    exo_graph graph;
    exo_status st = exo_graph_plan_view(&s->plan, s->buffers, s->plugin->abi_version, &graph);
    if (st != EXO_OK) return st;
    exo_error_clear();
    st = api->graph_compile(s->plugin->ctx, dev, &graph, full);
    if (st != EXO_OK) {
        *full = NULL;
        return exo_error_wrap(st, "compiling the graph failed");
    }
    if (!s->plan.has_head) return EXO_OK;
    st = exo_graph_plan_view(&s->plan_last, s->buffers, s->plugin->abi_version, &graph);
    if (st == EXO_OK) {
        exo_error_clear();
        st = api->graph_compile(s->plugin->ctx, dev, &graph, last);
        if (st != EXO_OK) exo_error_wrap(st, "compiling the last-row graph failed");
    }
    if (st != EXO_OK) {
        *last = NULL;
        if (api->compiled_free) api->compiled_free(*full);
        *full = NULL;
    }
    return st;
}

/* Pools the plans' KV caches (one graph run steps a batch of sequences) when the plugin negotiated
 * ABI 1.6 and accepts the pooled graph; otherwise each session keeps its own caches and a batch's
 * sequences are stepped one after another (logged once per load). */
/* Whether the plugin takes the plans' 16-bit KV caches (ABI 1.7, "KV cache dtypes"): asked
 * through supports_graph, with one cache per session, before pooling is tried with the dtype
 * kept. A refusal is logged (a warning when the dtype was asked for) and the caller falls back
 * to F32. */
static bool takes_kv_dtype(exo_shard *s, uint32_t dev, bool named) {
    const exo_plugin_api *api = &s->plugin->api;
    exo_runtime *rt = s->model->rt;
    exo_log_level level = named ? EXO_LOG_WARN : EXO_LOG_INFO;
    const char *dtype = exo_dtype_name(s->plan.kv_dtype);
    if (!api->supports_graph) {
        exo_logf(&rt->logger, level, "shard", "plugin %s cannot say whether it takes %s KV caches: float32 caches",
                 s->plugin->name, dtype);
        return false;
    }
    exo_graph graph;
    uint32_t first_bad = UINT32_MAX;
    exo_status st = exo_graph_plan_view(&s->plan, s->buffers, s->plugin->abi_version, &graph);
    if (st == EXO_OK) {
        exo_error_clear();
        st = api->supports_graph(s->plugin->ctx, dev, &graph, &first_bad);
    }
    if (st == EXO_OK) return true;
    exo_logf(&rt->logger, level, "shard", "plugin %s runs no %s KV caches (%s): float32 caches", s->plugin->name, dtype,
             exo_error_message());
    exo_error_clear();
    return false;
}

static bool try_pooled(exo_shard *s, uint32_t dev) {
    const exo_plugin_api *api = &s->plugin->api;
    exo_runtime *rt = s->model->rt;
    /* EXO_KV_POOL=off keeps per-session caches on any plugin: the form every plugin ran before
     * ABI 1.6, kept reachable to compare against and to fall back to should a plugin's pooled
     * kernels misbehave (and to test the per-session paths on plugins that pool). */
    const char *env = secure_getenv("EXO_KV_POOL");
    if (env && *env && strcmp(env, "auto") != 0 && strcmp(env, "off") != 0)
        exo_logf(&rt->logger, EXO_LOG_WARN, "shard", "EXO_KV_POOL=%s is not auto or off: auto (the default) is kept", env);
    if (env && strcmp(env, "off") == 0) {
        exo_logf(&rt->logger, EXO_LOG_INFO, "shard", "EXO_KV_POOL=off: no pooled KV caches on plugin %s: batched steps run "
                 "their sequences one after another", s->plugin->name);
        return false;
    }
    if (EXO_VERSION_MINOR(s->plugin->abi_version) < 6 || !api->supports_graph) {
        exo_logf(&rt->logger, EXO_LOG_INFO, "shard", "plugin %s (ABI 1.%u) takes no pooled KV caches: batched steps run "
                 "their sequences one after another", s->plugin->name, EXO_VERSION_MINOR(s->plugin->abi_version));
        return false;
    }
    exo_graph graph;
    uint32_t first_bad = UINT32_MAX;
    exo_status st = exo_graph_plan_pool_kv(&s->plan, 1);
    if (st == EXO_OK) st = exo_graph_plan_pool_kv(&s->plan_last, s->plan.has_head ? 1 : 0);
    if (st == EXO_OK) st = exo_graph_plan_view(&s->plan, s->buffers, s->plugin->abi_version, &graph);
    if (st == EXO_OK) {
        exo_error_clear();
        st = api->supports_graph(s->plugin->ctx, dev, &graph, &first_bad);
    }
    if (st == EXO_OK) return true;
    exo_logf(&rt->logger, EXO_LOG_INFO, "shard", "plugin %s runs no pooled KV caches (%s): batched steps run their "
             "sequences one after another", s->plugin->name, exo_error_message());
    exo_error_clear();
    exo_graph_plan_pool_kv(&s->plan, 0);
    exo_graph_plan_pool_kv(&s->plan_last, 0);
    return false;
}

static exo_status try_device(exo_shard *s, uint32_t device, const exo_shard_options *o, const shard_request *r,
                             bool *cancelled) {
    exo_runtime *rt = s->model->rt;
    /* A plugin below ABI 1.7 never sees a 16-bit cache; the memory fit counts the dtype offered. */
    const exo_plugin_rec *candidate = exo_runtime_device_plugin(rt, device);
    exo_dtype kv = r->kv_dtype;
    if (kv != EXO_DTYPE_F32 && EXO_VERSION_MINOR(candidate->abi_version) < 7) {
        exo_logf(&rt->logger, r->kv_named ? EXO_LOG_WARN : EXO_LOG_INFO, "shard", "plugin %s (ABI 1.%u) takes no %s KV "
                 "caches (ABI 1.7): float32 caches", candidate->name, EXO_VERSION_MINOR(candidate->abi_version),
                 exo_dtype_name(kv));
        kv = EXO_DTYPE_F32;
    }
    set_kv_dtype(s, kv);
    exo_status st = fit_to_device(s, device, r);
    if (st != EXO_OK) return st;
    st = exo_runtime_device_open(rt, device);
    if (st != EXO_OK) return st;
    s->device = device;
    s->plugin = exo_runtime_device_plugin(rt, device);
    const exo_device_rec *d = exo_runtime_device(rt, device);
    const exo_plugin_api *api = &s->plugin->api;
    if (!api->graph_compile || !api->graph_execute)
        return exo_errorf(EXO_ERR_UNSUPPORTED, "plugin %s cannot run graphs yet", s->plugin->name);
    s->buffers = calloc(s->plan.n_buffers ? s->plan.n_buffers : 1, sizeof *s->buffers);
    if (!s->buffers) return exo_errorf(EXO_ERR_NO_MEMORY, "out of memory loading the shard");
    uint32_t total_layers = s->plan.end - s->plan.start, loaded = 0;
    for (uint32_t i = 0; i < s->plan.n_buffers; i++) {
        const exo_plan_buffer *pb = &s->plan.buffers[i];
        exo_error_clear();
        st = place_buffer(s, d->index, pb, &s->buffers[i]);
        if (st != EXO_OK) return exo_error_wrap(st, "weight '%s' (%llu bytes)", pb->name, (unsigned long long)pb->size);
        s->weight_bytes += pb->size;
        /* A layer is loaded when the next buffer belongs to another layer. */
        bool layer_done = pb->layer >= 0 && (i + 1 == s->plan.n_buffers || s->plan.buffers[i + 1].layer != pb->layer);
        if (layer_done) {
            loaded++;
            if (o && o->progress && o->progress(o->progress_user, loaded, total_layers) != 0) {
                *cancelled = true;
                return exo_errorf(EXO_ERR_ABORTED, "loading cancelled by the progress callback");
            }
        }
    }
    if (s->plan.kv_dtype != EXO_DTYPE_F32 && !takes_kv_dtype(s, d->index, r->kv_named)) {
        /* F32 caches take twice the memory: fitted again (a defaulted max_ctx may shrink). */
        set_kv_dtype(s, EXO_DTYPE_F32);
        st = fit_to_device(s, device, r);
        if (st != EXO_OK) return st;
    }
    s->pooled = try_pooled(s, d->index);
    exo_graph graph;
    st = exo_graph_plan_view(&s->plan, s->buffers, s->plugin->abi_version, &graph);
    if (st != EXO_OK) return st;
    if (api->supports_graph) {
        uint32_t first_bad = UINT32_MAX;
        exo_error_clear();
        st = api->supports_graph(s->plugin->ctx, d->index, &graph, &first_bad);
        if (st != EXO_OK)
            return exo_error_wrap(st, "cannot run node %u (op %d) of the graph", first_bad,
                                  first_bad < s->plan.n_nodes ? s->plan.nodes[first_bad].op : -1);
    }
    st = exo_shard_compile(s, &s->compiled, &s->compiled_last);
    if (st != EXO_OK) return st;
    if (total_layers == 0 && o && o->progress) o->progress(o->progress_user, 0, 0);
    return EXO_OK;
}

/* exo_shard_load, and (slice set) one rank's half of one layer for tensor_parallel.c. */
static exo_status load(exo_model *m, const exo_shard_options *o, const exo_graph_slice *slice, exo_shard **out) {
    if (!m || !out) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_shard_load: NULL argument");
    *out = NULL;
    if (o && (o->hdr.size < sizeof(exo_struct_header) || EXO_VERSION_MAJOR(o->hdr.version) != EXO_API_MAJOR))
        return exo_error_keep(&m->error, exo_errorf(EXO_ERR_INVALID_ARG, "exo_shard_load: options header not "
                                                                         "initialised (use EXO_SHARD_OPTIONS_INIT)"));
    exo_shard_options opts;
    memset(&opts, 0, sizeof opts);
    EXO_STRUCT_INIT(&opts);
    opts.end_layer = EXO_LAYERS_END;
    if (o) exo_struct_copy_in(&opts, sizeof opts, o);
    if (opts.end_layer == EXO_LAYERS_END) opts.end_layer = m->cfg.n_layers;
    uint32_t max_tokens = opts.max_tokens ? opts.max_tokens : DEFAULT_MAX_TOKENS;
    if (opts.end_layer > opts.start_layer && opts.end_layer - opts.start_layer > EXO_MAX_SHARD_LAYERS)
        return exo_error_keep(&m->error, exo_errorf(EXO_ERR_INVALID_ARG, "a shard holds at most %u layers",
                                                    EXO_MAX_SHARD_LAYERS));
    if (max_tokens > 65536)
        return exo_error_keep(&m->error, exo_errorf(EXO_ERR_INVALID_ARG, "max_tokens %u is too large", max_tokens));
    uint32_t qbits = opts.quantize_bits, qgroup = opts.quantize_group ? opts.quantize_group : 64;
    if (qbits || opts.quantize_group) {
        if (qbits < 2 || qbits > 8 || qbits == 7)
            return exo_error_keep(&m->error, exo_errorf(EXO_ERR_INVALID_ARG, "quantize_bits %u: quantizing on load "
                                                        "takes 2, 3, 4, 5, 6 or 8 bits", qbits));
        if (qgroup != 32 && qgroup != 64 && qgroup != 128)
            return exo_error_keep(&m->error, exo_errorf(EXO_ERR_INVALID_ARG, "quantize_group %u: quantizing on load "
                                                        "takes groups of 32, 64 or 128", qgroup));
        if (m->cfg.quant.bits)
            return exo_error_keep(&m->error, exo_errorf(EXO_ERR_INVALID_ARG, "%s is already quantized (%u-bit, group "
                                                        "%u): quantize on load takes a float checkpoint", m->dir,
                                                        m->cfg.quant.bits, m->cfg.quant.group));
    }

    /* Across devices (pipeline.c, tensor_parallel.c): the parts are loaded as shards of their own
     * from here. */
    uint32_t spread[EXO_PLACEMENT_MAX_DEVICES], n_spread = 0;
    exo_status placed = exo_placement_devices(m->rt, opts.devices, opts.device, spread, EXO_PLACEMENT_MAX_DEVICES,
                                              &n_spread);
    if (placed != EXO_OK) return exo_error_keep(&m->error, placed);
    if (opts.tensor_parallel > 1)
        return exo_error_keep(&m->error, exo_tensor_parallel_load(m, &opts, spread, n_spread, out));
    if (n_spread > 1 && opts.end_layer > opts.start_layer)
        return exo_error_keep(&m->error, exo_pipeline_load(m, &opts, spread, n_spread, out));
    char one_device[96];
    if (n_spread == 1) { /* a list of one: that device, as `device` names it */
        const exo_device_rec *d = exo_runtime_device(m->rt, spread[0]);
        snprintf(one_device, sizeof one_device, "%s:%u", m->rt->plugins[d->plugin].name, d->index);
        opts.device = one_device;
    }

    /* The files may have changed since exo_model_open (truncated, replaced, swapped for a link):
     * check them again before their bytes are used. */
    exo_status checked = exo_weights_load_begin(m->weights);
    if (checked != EXO_OK) return exo_error_keep(&m->error, checked);

    exo_shard *s = calloc(1, sizeof *s);
    if (!s) return exo_error_keep(&m->error, exo_errorf(EXO_ERR_NO_MEMORY, "out of memory loading a shard"));
    s->model = m;
    s->qcache.bits = qbits;
    s->qcache.group = qgroup;
    bool embeds = !slice && opts.start_layer == 0, head = !slice && opts.end_layer == m->cfg.n_layers;
    uint32_t max_ctx = opts.max_ctx ? opts.max_ctx : m->cfg.max_position_embeddings;
    if (!opts.max_ctx && max_ctx > EXO_DEFAULT_MAX_CTX) max_ctx = EXO_DEFAULT_MAX_CTX;
    if (max_ctx == 0 || max_ctx > (1u << 24)) {
        free(s);
        return exo_error_keep(&m->error, exo_errorf(EXO_ERR_INVALID_ARG, "max_ctx %u is out of range", max_ctx));
    }
    shard_request request = {max_tokens, max_ctx, opts.max_tokens != 0, opts.max_ctx != 0, EXO_DTYPE_F32, false};
    exo_status wanted = wanted_kv_dtype(m->rt, opts.kv_dtype, &request);
    if (wanted != EXO_OK) {
        exo_quant_cache_free(&s->qcache);
        free(s);
        return exo_error_keep(&m->error, wanted);
    }

    /* The devices to try, in order, before the graph is built: the weight buffers that a layer's
     * experts share must fit the smallest largest-allocation among them. */
    exo_runtime *rt = m->rt;
    uint32_t order[MAX_CANDIDATES], n = 0;
    exo_status st;
    if (opts.device) {
        st = exo_device_find(rt, opts.device, &order[0]);
        n = st == EXO_OK ? 1 : 0; /* a named device gets no silent fallback */
    } else {
        uint32_t first = 0;
        st = exo_device_selected(rt, &first, NULL);
        /* A device the user named (EXO_DEVICE) gets no silent fallback either. */
        if (st == EXO_OK) n = rt->device_spec[0] ? 1 : exo_registry_fallback_order(rt, first, order, MAX_CANDIDATES);
        if (st == EXO_OK && n == 1) order[0] = first;
    }
    if (st != EXO_OK) {
        exo_quant_cache_free(&s->qcache);
        free(s);
        return exo_error_keep(&m->error, st);
    }
    uint64_t max_buffer = 0; /* 0: the builder's own cap */
    for (uint32_t i = 0; i < n; i++) {
        uint64_t a = exo_runtime_device(rt, order[i])->report->max_alloc;
        if (a && (!max_buffer || a < max_buffer)) max_buffer = a;
    }

    exo_graph_ends ends = {.embeds = embeds, .head = head, .last_row_only = false};
    if (slice)
        st = exo_graph_plan_build_slice(&m->cfg, m->weights, m->dir, opts.start_layer, slice, max_tokens, max_ctx,
                                        &s->qcache, &s->plan);
    else
        st = exo_graph_plan_build_quantized(&m->cfg, m->weights, m->dir, opts.start_layer, opts.end_layer, ends,
                                        max_tokens, max_ctx, &s->qcache, max_buffer, &s->plan);
    if (st == EXO_OK && head) {
        ends.last_row_only = true;
        st = exo_graph_plan_build_quantized(&m->cfg, m->weights, m->dir, opts.start_layer, opts.end_layer, ends,
                                            max_tokens, max_ctx, &s->qcache, max_buffer, &s->plan_last);
        if (st == EXO_OK && s->plan_last.n_buffers != s->plan.n_buffers)
            st = exo_errorf(EXO_ERR_INTERNAL, "the last-row graph lists %u weight buffers, the full one %u",
                            s->plan_last.n_buffers, s->plan.n_buffers);
        /* The selected-rows graph of batched steps (batch.c compiles it when a step needs it). */
        ends.selected_rows = EXO_BATCH_SELECTED_ROWS;
        if (st == EXO_OK)
            st = exo_graph_plan_build_quantized(&m->cfg, m->weights, m->dir, opts.start_layer, opts.end_layer, ends,
                                                max_tokens, max_ctx, &s->qcache, max_buffer, &s->plan_rows);
        if (st == EXO_OK && s->plan_rows.n_buffers != s->plan.n_buffers)
            st = exo_errorf(EXO_ERR_INTERNAL, "the selected-rows graph lists %u weight buffers, the full one %u",
                            s->plan_rows.n_buffers, s->plan.n_buffers);
    }
    if (st != EXO_OK) {
        exo_graph_plan_free(&s->plan);
        exo_graph_plan_free(&s->plan_last);
        exo_graph_plan_free(&s->plan_rows);
        exo_quant_cache_free(&s->qcache);
        free(s);
        return exo_error_keep(&m->error, st);
    }
    s->input_width = embeds ? 1 : m->cfg.hidden_size;
    s->output_width = head ? m->cfg.vocab_size : m->cfg.hidden_size;

    char failures[EXO_ERROR_MAX] = "";
    bool cancelled = false;
    st = EXO_ERR_NO_DEVICE;
    for (uint32_t i = 0; i < n && !cancelled; i++) {
        const exo_device_rec *d = exo_runtime_device(rt, order[i]);
        const char *pname = rt->plugins[d->plugin].name;
        exo_runtime_device_lock(rt, order[i]);
        st = try_device(s, order[i], &opts, &request, &cancelled);
        if (st != EXO_OK) unload_from_device(s);
        exo_runtime_device_unlock(rt, order[i]);
        if (st == EXO_OK) {
            exo_logf(&rt->logger, EXO_LOG_INFO, "shard", "layers [%u, %u) of %s on %s:%u '%s' (%llu weight bytes)",
                     opts.start_layer, opts.end_layer, m->dir, pname, d->index, d->report->name,
                     (unsigned long long)s->weight_bytes);
            break;
        }
        char line[EXO_ERROR_MAX];
        snprintf(line, sizeof line, "%s:%u: %s", pname, d->index, exo_last_error());
        exo_logf(&rt->logger, cancelled ? EXO_LOG_INFO : EXO_LOG_WARN, "shard", "%s%s", line,
                 cancelled || i + 1 == n ? "" : "; trying the next device");
        size_t used = strlen(failures);
        snprintf(failures + used, sizeof failures - used, "%s%s", used ? "; " : "", line);
        s->plugin = NULL;
    }
    if (st != EXO_OK) {
        if (!cancelled) exo_errorf(st, "%s: layers [%u, %u) could not be loaded on any device: %s", m->dir,
                                   opts.start_layer, opts.end_layer, failures[0] ? failures : "no candidates");
        exo_graph_plan_free(&s->plan);
        exo_graph_plan_free(&s->plan_last);
        exo_graph_plan_free(&s->plan_rows);
        exo_quant_cache_free(&s->qcache);
        free(s);
        return exo_error_keep(&m->error, st);
    }
    *out = s;
    return EXO_OK;
}

exo_status exo_shard_load(exo_model *m, const exo_shard_options *o, exo_shard **out) {
    exo_error_clear();
    return load(m, o, NULL, out);
}

exo_status exo_shard_load_slice(exo_model *m, const exo_shard_options *o, const exo_graph_slice *slice,
                                exo_shard **out) {
    return load(m, o, slice, out);
}

void exo_shard_destroy(exo_shard *s) {
    if (!s) return;
    if (s->n_parts) { /* a pipeline's shell: its parts hold everything */
        exo_pipeline_destroy(s);
        free(s);
        return;
    }
    if (s->plugin) {
        exo_runtime_device_lock(s->model->rt, s->device);
        unload_from_device(s);
        exo_runtime_device_unlock(s->model->rt, s->device);
    }
    exo_graph_plan_free(&s->plan);
    exo_graph_plan_free(&s->plan_last);
    exo_graph_plan_free(&s->plan_rows);
    exo_quant_cache_free(&s->qcache);
    free(s);
}

/* One throwaway step (BOS, or a zero hidden row for a shard without the embedding) through a
 * short session, so the first real request does not pay for first-touch page faults, lazy
 * kernel builds and device warm-up. */
exo_status exo_shard_warmup(exo_shard *sh) {
    exo_error_clear();
    if (!sh) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_shard_warmup: shard is NULL");
    exo_session *s = NULL;
    exo_status st = exo_session_create(sh, 2, &s);
    float *out = NULL;
    if (st == EXO_OK) {
        out = malloc((size_t)sh->output_width * sizeof *out);
        if (!out) st = exo_errorf(EXO_ERR_NO_MEMORY, "out of memory warming up");
    }
    if (st == EXO_OK) {
        if (sh->plan.embeds) {
            int32_t token = sh->model->cfg.bos_token_id >= 0 ? sh->model->cfg.bos_token_id : 0;
            st = exo_session_forward_tokens(s, &token, 1, 0, out, sh->output_width);
        } else {
            float *zeros = calloc(sh->input_width, sizeof *zeros);
            st = zeros ? exo_session_forward_hidden(s, zeros, 1, 0, out, sh->output_width)
                       : exo_errorf(EXO_ERR_NO_MEMORY, "out of memory warming up");
            free(zeros);
        }
    }
    free(out);
    exo_session_destroy(s);
    return exo_error_keep(&sh->error, st);
}

const char *exo_shard_last_error(const exo_shard *s) { return s ? s->error.message : ""; }

exo_status exo_shard_get_info(const exo_shard *s, exo_shard_info *out) {
    exo_error_clear();
    if (!s) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_shard_get_info: shard is NULL");
    /* The error slot is the one part of a const shard that a call may change (base/error.h). */
    if (!out || out->hdr.size < sizeof(exo_struct_header))
        return exo_error_keep((exo_error_slot *)&s->error,
                              exo_errorf(EXO_ERR_INVALID_ARG,
                                         "exo_shard_get_info: NULL argument or uninitialised header"));
    exo_shard_info info;
    memset(&info, 0, sizeof info);
    EXO_STRUCT_INIT(&info);
    info.start_layer = s->plan.start;
    info.end_layer = s->plan.end;
    info.embeds = s->plan.embeds;
    info.has_head = s->plan.has_head;
    info.input_width = s->input_width;
    info.output_width = s->output_width;
    info.device = s->device;
    info.plugin = s->plugin->name;
    info.device_name = exo_runtime_device(s->model->rt, s->device)->report->name;
    info.weight_bytes = s->weight_bytes;
    info.max_tokens = s->plan.max_tokens;
    info.max_ctx = s->plan.max_ctx;
    info.kv_dtype = public_kv_dtype(s->plan.kv_dtype);
    info.n_parts = s->n_parts ? s->n_parts : 1;
    exo_struct_copy_out(out, &info, sizeof info);
    return EXO_OK;
}
