/*
 * exo.h — the public C API of exo-ipex (libexocore).
 *
 * Style (libuv): exo_<noun>_<verb>, opaque handles, inputs first and out-params last, every
 * call that can fail returns an exo_status (0 ok, negative error). exo_status_name() and
 * exo_status_str() give static strings; the detail of a failure is kept per object
 * (exo_runtime_last_error, exo_model_last_error, ...) and per thread (exo_last_error).
 * As in libuv and SQLite, the last error is the last failing call's: every failing call on an
 * object replaces its message (with at least "EXO_ERR_X: <status text>"), successful calls leave
 * it as it was, so read it right after the failure.
 * Caller-sized structs: set hdr with EXO_STRUCT_INIT before passing them in. Options structs
 * start from their initialiser instead (exo_runtime_options o = EXO_RUNTIME_OPTIONS_INIT;), which
 * sets the header and every member whose default is not 0, so a caller names only what it changes.
 * One disposal verb: every handle, however it was made (create, open, load), is released with
 * exo_<noun>_destroy (Level Zero's zeContextDestroy, Vulkan's vkDestroy*): the caller never has to
 * remember which of close / free a noun takes. Destroying NULL does nothing.
 * Three numbers order devices, named apart: a plugin's class_rank (its class's preference,
 * EXO_PLUGIN_RANK), a device's position in the ranking (0 = best; devices are listed in that
 * order, so it is also the public device index that every exo_device_* call and
 * exo_shard_info.device use) and its plugin_index (its index within its plugin:
 * EXO_DEVICE=plugin:N).
 * Versions: this API has its own, EXO_API_VERSION, apart from the plugin ABI's (a graph-IR change
 * that bumps the plugin ABI's major leaves programs alone). Caller-sized structs carry the API
 * version they were compiled with; the library refuses another major (EXO_ERR_INVALID_ARG) and
 * serves any minor, by size: members a smaller struct lacks take their defaults, members past
 * what the library knows are left alone. exo_version() says what the library implements. The
 * shared structs of exo_types.h (device report, telemetry) are read by size alone.
 * This header includes exo_types.h (the plain types shared with plugins) and nothing of the
 * plugin ABI.
 * The library never aborts or exits, and never crashes on bad input.
 */
#ifndef EXO_H
#define EXO_H

#include "exo_types.h" /* shared plain types: status codes, dtypes, device reports, telemetry */

#ifdef __cplusplus
extern "C" {
#endif

/* 1.0: the first versioned public API (one disposal verb, default initialisers). */
#define EXO_API_MAJOR 1
#define EXO_API_MINOR 0
#define EXO_API_VERSION EXO_MAKE_VERSION(EXO_API_MAJOR, EXO_API_MINOR)

/* Initialises a caller-sized struct's header: the caller's layout, the public API's version.
 * (exo_plugin.h, where the core includes it too, stamps plugin-side structs with
 * EXO_ABI_STRUCT_INIT instead; this definition replaces its plugin-only EXO_STRUCT_INIT.) */
#undef EXO_STRUCT_INIT
#define EXO_STRUCT_INIT(ptr) \
    ((ptr)->hdr.size = (uint32_t)sizeof(*(ptr)), (ptr)->hdr.version = EXO_API_VERSION)

#if defined(__GNUC__)
#define EXO_API __attribute__((visibility("default")))
#else
#define EXO_API
#endif

/* ---------------------------------------------------------------- version */

/* The library's version ("0.1.0"), static; *api_version (when not NULL) receives the
 * EXO_API_VERSION it implements, which a program compares with the one it was compiled with. */
EXO_API const char *exo_version(uint32_t *api_version);

/* ---------------------------------------------------------------- status and errors */

EXO_API const char *exo_status_name(exo_status status); /* "EXO_ERR_IO" */
EXO_API const char *exo_status_str(exo_status status);  /* "input/output error" */
/* Detail of the last failure on the calling thread ("" when none). */
EXO_API const char *exo_last_error(void);

/* ---------------------------------------------------------------- logging */

typedef void (*exo_log_fn)(void *user, exo_log_level level, const char *component,
                           const char *message);

/* exo_runtime_options.log_level: the level EXO_LOG_LEVEL names, else EXO_LOG_WARN. */
#define EXO_LOG_LEVEL_DEFAULT (-1)

/* ---------------------------------------------------------------- default initialisers */

/* The header of a caller-sized struct of `type`, in an initialiser: the size and version the
 * caller was compiled with (the initialisers below are expanded in the caller, so they describe
 * its layout even against a newer library). */
#define EXO_STRUCT_HEADER_INIT(type) { (uint32_t)sizeof(type), EXO_API_VERSION }

/* ---------------------------------------------------------------- runtime */

typedef struct exo_runtime exo_runtime;

/* exo_runtime_options.flags */
#define EXO_RUNTIME_PROBE_ISOLATED (1u << 0) /* probe each plugin in a child process */
#define EXO_RUNTIME_NO_DEFAULT_PATHS (1u << 1) /* search only plugin_paths and EXO_PLUGIN_PATH */

typedef struct exo_runtime_options {
    exo_struct_header hdr;
    const char *const *plugin_paths; /* directories searched first */
    uint32_t n_plugin_paths;
    uint32_t flags;                  /* EXO_RUNTIME_* */
    exo_log_fn log;                  /* NULL: stderr */
    void *log_user;
    int32_t log_level;               /* EXO_LOG_LEVEL_DEFAULT (-1): EXO_LOG_LEVEL, else warn */
    uint32_t n_threads;              /* CPU worker threads; 0: all cores */
    /* Filters; NULL falls back to the environment variable of the same name. */
    const char *plugins_select;      /* EXO_PLUGINS_SELECT: comma-separated globs */
    const char *plugins_disable;     /* EXO_PLUGINS_DISABLE */
    const char *plugin_rank;         /* EXO_PLUGIN_RANK: "opencl:300,level_zero:0" */
    const char *device;              /* EXO_DEVICE: "plugin[:index]" */
    uint32_t probe_timeout_ms;       /* isolated probes; 0: 10000 */
    uint32_t reserved;
} exo_runtime_options;

/* Defaults: the environment's filters and log level, stderr, all cores. (A zeroed log_level
 * would mean EXO_LOG_ERROR.) */
#define EXO_RUNTIME_OPTIONS_INIT \
    { .hdr = EXO_STRUCT_HEADER_INIT(exo_runtime_options), .log_level = EXO_LOG_LEVEL_DEFAULT }

/* Discovers, loads, probes and ranks plugins. Never fails because a plugin is broken: such
 * plugins are listed with the reason. opts may be NULL. */
EXO_API exo_status exo_runtime_create(const exo_runtime_options *opts, exo_runtime **out);
EXO_API void exo_runtime_destroy(exo_runtime *rt);
EXO_API const char *exo_runtime_last_error(const exo_runtime *rt);

/* ---------------------------------------------------------------- plugins */

typedef int32_t exo_plugin_state;
enum {
    EXO_PLUGIN_LOADED = 0,   /* entry negotiated, probe ran */
    EXO_PLUGIN_SKIPPED = 1,  /* filtered out by the options / environment */
    EXO_PLUGIN_FAILED = 2,   /* dlopen, symbol, ABI or probe failure */
    EXO_PLUGIN_STATE_FORCE_INT32 = 0x7fffffff
};

typedef struct exo_plugin_info {
    exo_struct_header hdr;
    const char *name;      /* from the plugin, or derived from the file name when it failed */
    const char *path;
    const char *version;
    const char *build_info;
    exo_plugin_state state;
    exo_status status;     /* why it failed (EXO_OK otherwise) */
    const char *reason;    /* human-readable reason for the state */
    uint32_t class_rank;   /* effective (after EXO_PLUGIN_RANK) */
    uint32_t abi_version;  /* negotiated */
    uint32_t n_devices;
    uint32_t reserved;
} exo_plugin_info;

EXO_API uint32_t exo_plugin_count(const exo_runtime *rt);
EXO_API exo_status exo_plugin_get_info(const exo_runtime *rt, uint32_t index, exo_plugin_info *out);

/* ---------------------------------------------------------------- devices (best first) */

typedef struct exo_device_info {
    exo_struct_header hdr;
    const char *plugin;               /* plugin name */
    uint32_t plugin_index;            /* device index within the plugin (EXO_DEVICE=plugin:N) */
    uint32_t position;                /* place in the ranking, 0 = best: the public device index */
    uint32_t class_rank;              /* the plugin's class rank (after EXO_PLUGIN_RANK) */
    uint32_t usable;                  /* score > 0, class rank > 0, not filtered */
    const exo_device_report *report;  /* owned by the runtime; filled by the plugin (its hdr carries
                                       * the plugin ABI's version: read it by hdr.size) */
    const char *alternates;           /* same physical device through other plugins: "opencl:0" */
    const char *rank_reason;          /* the ranking key, written out */
    int32_t alternate_of;             /* device index of the primary view of this physical device, or -1 */
    uint32_t selected;                /* 1 for the device work goes to by default */
} exo_device_info;

/* Every device of every plugin, best first. A physical device seen through several plugins
 * (the same GPU through Level Zero and OpenCL) is listed once per plugin: the view that serves
 * it best is its primary, the others follow it as alternates (used as fallbacks).
 * Strings live until exo_runtime_destroy. */
EXO_API uint32_t exo_device_count(const exo_runtime *rt);
EXO_API exo_status exo_device_get_info(const exo_runtime *rt, uint32_t index, exo_device_info *out);
EXO_API exo_status exo_device_telemetry_read(exo_runtime *rt, uint32_t index, exo_device_telemetry *out);

/* The device work goes to by default (EXO_DEVICE honoured) and why. EXO_ERR_NO_DEVICE when none. */
EXO_API exo_status exo_device_selected(const exo_runtime *rt, uint32_t *index, const char **reason);

/* Finds a device by "plugin[:index]" (index within that plugin; default 0). */
EXO_API exo_status exo_device_find(const exo_runtime *rt, const char *spec, uint32_t *index);

/* Appended (API 1.x): placement facts measured on the device itself (docs/placement.md), not the
 * plugin's estimates: a short self-benchmark through the device's own graph path, cached per
 * device and driver version ($XDG_CACHE_HOME/exo-ipex/device-bench.tsv, else ~/.cache/...). */
typedef struct exo_device_bench {
    exo_struct_header hdr;
    double read_gbs;          /* weight-streaming read bandwidth, GB/s: a matrix-vector product over a
                               * 64 MiB float32 matrix (what a decode step does with the weights) */
    double matmul_gflops;     /* float32 matmul throughput, GFLOP/s: [256 x 1024] by [1024 x 1024] */
    uint64_t memory_free;     /* bytes the device can give now (free GPU memory, MemAvailable for the
                               * CPU and devices sharing host memory), read at the call */
    uint32_t cached;          /* 1: the figures come from the cache (measured earlier, same driver) */
    uint32_t reserved;
} exo_device_bench;

/* exo_device_benchmark flags */
#define EXO_DEVICE_BENCH_CACHED_ONLY (1u << 0) /* never run: EXO_ERR_NOT_FOUND when nothing is cached */
#define EXO_DEVICE_BENCH_REFRESH (1u << 1)     /* run even when cached, and replace the entry */

/* Measures (about a second per device; more on a slow one) or reads the cached figures of device
 * `index`. The run uses the device like a shard does (its lock held); a failure (no memory, a
 * plugin that cannot run graphs) is an error naming the device, and nothing is cached. */
EXO_API exo_status exo_device_benchmark(exo_runtime *rt, uint32_t index, uint32_t flags, exo_device_bench *out);

/* Appended (API 1.x): the link between two devices, as a pipeline across them hands hidden states
 * over: a device-to-device copy where the plugin offers one for the pair (EXO_DEVICE_LINK_PEER:
 * level_zero between devices of one driver that can reach each other's memory), else a read back
 * from `from` into host memory and a write from there to `to` (EXO_DEVICE_LINK_HOST; the
 * tensor-parallel all-reduce always goes this way: it sums on the host). */
typedef struct exo_device_link {
    exo_struct_header hdr;
    double gbs;               /* GB/s of a 16 MiB copy from -> host -> to, best of 5 after a warm-up */
    double latency_us;        /* microseconds of a 16 KiB copy the same way (one hidden row of an 8B
                               * model in float32: a decode step's hand-over or all-reduce) */
    uint32_t path;            /* EXO_DEVICE_LINK_HOST or EXO_DEVICE_LINK_PEER */
    uint32_t cached;          /* 1: the figures come from the cache (both devices' drivers unchanged) */
} exo_device_link;

#define EXO_DEVICE_LINK_HOST 1u /* through host memory: each side's buffer read / write */
#define EXO_DEVICE_LINK_PEER 2u /* one device-to-device copy (plugin ABI 1.9 buffer_copy_peer) */

/* Measures (a fraction of a second) or reads the cached link figures from device `from` to device
 * `to` (flags as exo_device_benchmark's; the cache is the same file, keyed by both devices and
 * their drivers, each entry with the path it was measured on). Through host memory each side runs
 * under its own device lock; a peer copy holds both. The copied bytes are checked on arrival. Two
 * different usable devices; a failure names the devices and the copy. */
EXO_API exo_status exo_device_link_benchmark(exo_runtime *rt, uint32_t from, uint32_t to, uint32_t flags,
                                             exo_device_link *out);


/* ---------------------------------------------------------------- models */

typedef struct exo_model exo_model;

typedef struct exo_model_info {
    exo_struct_header hdr;
    const char *architecture;   /* config.json model_type: "llama", "qwen2", ... */
    const char *path;
    uint32_t n_layers;
    uint32_t hidden_size;
    uint32_t intermediate_size;
    uint32_t vocab_size;
    uint32_t n_heads;
    uint32_t n_kv_heads;
    uint32_t head_dim;
    uint32_t max_position_embeddings;
    exo_dtype dtype;            /* of the checkpoint's weights */
    int32_t bos_token_id;       /* -1: none */
    const int32_t *eos_token_ids; /* every end-of-sequence id (config.json, generation_config.json,
                                   * tokenizer); valid until exo_model_destroy */
    uint32_t n_eos;
    uint32_t tie_word_embeddings;
    uint32_t adds_bos;          /* text prompts start with BOS by default (exo_model_tokenize add_bos -1) */
    uint32_t has_tokenizer;
    /* Appended (API 1.x): the checkpoint's MLX affine quantization (config.json `quantization`):
     * the default bits per weight and group size; 0 = not quantized. Per-module overrides may
     * differ; scales and biases are of `dtype`. */
    uint32_t quant_bits;
    uint32_t quant_group;
    /* Appended (API 1.x): mixture of experts (qwen3_moe, mixtral); n_experts 0 = a dense model.
     * n_moe_layers of the n_layers have a sparse MLP (router [n_experts, hidden] and n_experts
     * SwiGLU experts of width moe_intermediate_size, n_experts_per_tok of them run per token);
     * the others a dense MLP of intermediate_size. router_quant_bits/_group: the router's own
     * MLX quantization (mlx-lm keeps it 8-bit by a per-module override; 0 = float). */
    uint32_t n_experts;
    uint32_t n_experts_per_tok;
    uint32_t moe_intermediate_size;
    uint32_t n_moe_layers;
    uint32_t router_quant_bits;
    uint32_t router_quant_group;
} exo_model_info;

/* Opens a Hugging Face model directory: reads config.json and the safetensors headers (one file
 * or model.safetensors.index.json shards, mapped lazily). Weights load with exo_shard_load. */
EXO_API exo_status exo_model_open(exo_runtime *rt, const char *dir, exo_model **out);
EXO_API void exo_model_destroy(exo_model *model);
EXO_API exo_status exo_model_get_info(const exo_model *model, exo_model_info *out);
EXO_API const char *exo_model_last_error(const exo_model *model);

/* ---------------------------------------------------------------- shards */

typedef struct exo_shard exo_shard;

/* Load progress: called after each layer's weights are on the device. Return nonzero to cancel
 * (exo_shard_load then returns EXO_ERR_ABORTED). */
typedef int (*exo_progress_fn)(void *user, uint32_t layers_loaded, uint32_t layers_total);

/* exo_shard_options.end_layer: up to the model's last layer (n_layers). */
#define EXO_LAYERS_END UINT32_MAX

typedef struct exo_shard_options {
    exo_struct_header hdr;
    uint32_t start_layer;       /* half-open range [start_layer, end_layer) of the model's layers */
    uint32_t end_layer;         /* EXO_LAYERS_END: n_layers (0 here means [0, 0): the embedding alone) */
    const char *device;         /* "plugin[:index]"; NULL: the selected device, falling back down
                                 * the ranking when opening, compiling or allocating fails */
    uint32_t max_tokens;        /* tokens per forward step (prefill chunk); 0: 512, or fewer when
                                 * the intermediates would not fit the device (logged) */
    uint32_t max_ctx;           /* KV cache positions per session; 0: max_position_embeddings,
                                 * capped at 4096 and to what the device's memory holds (logged,
                                 * at least 256). A shard whose weights, one session's cache and
                                 * intermediates still do not fit is refused before anything is
                                 * allocated (EXO_ERR_NO_MEMORY, or EXO_ERR_DEVICE_OOM for a GPU's
                                 * own memory), with every figure in the message. */
    exo_progress_fn progress;
    void *progress_user;
    /* Quantize on load (what ipex-llm's load_in_4bit does): a float (F32/F16/BF16) checkpoint's
     * linear weights and embedding whose input width is a multiple of quantize_group become MLX
     * affine weights (abi/exo_plugin.h, "Quantized weights"; mlx.core.quantize's arithmetic,
     * scales and biases in the checkpoint's dtype) kept in host memory once per shard; norms,
     * biases, other widths and MoE experts stay float. quantize_bits: 0 = off, or 2, 3, 4, 5, 6, 8;
     * quantize_group: 32, 64 or 128 (0 = 64). A checkpoint already quantized is refused. */
    uint32_t quantize_bits;
    uint32_t quantize_group;
    /* The KV cache's element type, an exo_kv_dtype. EXO_KV_DTYPE_DEFAULT (0): the one the
     * EXO_KV_DTYPE environment variable names (f32, bf16 or f16), else BF16. A 16-bit cache
     * takes half the memory of F32 and half the bytes a decode step reads per position; values
     * are rounded to nearest even when written and attention computes in float32 (golden
     * tolerance: docs/model-files.md). A device whose kernels lack the dtype gets F32 (logged);
     * exo_shard_info.kv_dtype says what the shard runs. */
    uint32_t kv_dtype;
    /* Appended (API 1.x): pipeline placement across the node's devices (docs/placement.md).
     * NULL: one device, as `device` says. "auto": every usable GPU of the node (one view per
     * physical GPU, best first) when it has more than one and no device is pinned (`device`,
     * EXO_DEVICE), else one device as with NULL; a CPU is never added automatically. A
     * comma-separated list of "plugin[:index]" ("level_zero:0,level_zero:1", GPU + CPU allowed):
     * exactly those devices, in that order. The layer range is split into consecutive parts, one
     * per device, sized by each device's available memory and speed (exo_shard_get_part_info
     * says which layers each holds); a step runs the parts one after another, the hidden states
     * handed from device to device through host memory inside the call. A named list gets no
     * fallback to other devices. */
    const char *devices;
    /* Appended (API 1.x): tensor parallelism over this many devices (0 or 1: off): the first N
     * of `devices` ("auto" or NULL: the node's usable GPUs, best first). Every layer of the range
     * is split: attention heads (q/k/v rows, o_proj columns) and KV heads, and the dense MLP's
     * intermediate width (gate/up rows, down_proj columns), each device holding its slice; the
     * partial outputs of o_proj and down_proj are summed by the runtime through host memory (the
     * all-reduce) and the residual added there. Heads, KV heads and the intermediate width must
     * divide by N (EXO_ERR_INVALID_ARG otherwise, naming them); MLX-quantized columns are cut on
     * group boundaries; a mixture-of-experts MLP runs whole on the first device; the embedding
     * and the head run on the first device. With quantize_bits each rank's rows are quantized in
     * the groups one device would use (the same weights). The ranks step at once, a host thread
     * each (EXO_TENSOR_PARALLEL_SEQUENTIAL=1: one after another). docs/placement.md. */
    uint32_t tensor_parallel;
} exo_shard_options;

/* exo_shard_options.kv_dtype, exo_shard_info.kv_dtype. */
typedef enum exo_kv_dtype {
    EXO_KV_DTYPE_DEFAULT = 0, /* options only: EXO_KV_DTYPE, else BF16 where the device takes it */
    EXO_KV_DTYPE_F32 = 1,
    EXO_KV_DTYPE_BF16 = 2,
    EXO_KV_DTYPE_F16 = 3,
} exo_kv_dtype;

/* Defaults: the whole model on the selected device, sizes from the model and the device. */
#define EXO_SHARD_OPTIONS_INIT \
    { .hdr = EXO_STRUCT_HEADER_INIT(exo_shard_options), .end_layer = EXO_LAYERS_END }

typedef struct exo_shard_info {
    exo_struct_header hdr;
    uint32_t start_layer, end_layer;
    uint32_t embeds;            /* input is token ids (the first shard) */
    uint32_t has_head;          /* output is logits (the last shard) */
    uint32_t input_width;       /* hidden_size, or 1 (token ids) */
    uint32_t output_width;      /* vocab_size (logits) or hidden_size */
    uint32_t device;            /* device index (exo_device_get_info) */
    const char *plugin;
    const char *device_name;
    uint64_t weight_bytes;
    uint32_t max_tokens;
    uint32_t max_ctx;
    uint32_t kv_dtype;          /* the KV cache's element type: EXO_KV_DTYPE_F32, _BF16 or _F16 */
    /* Appended (API 1.x): devices the shard spans (exo_shard_options.devices): 1 for a shard on
     * one device. For a pipeline, device, plugin, device_name and kv_dtype are its first part's,
     * weight_bytes the sum, max_tokens and max_ctx the smallest of its parts'. */
    uint32_t n_parts;
    /* Appended (API 1.x): how a pipeline part's input arrives from the previous part (the info of
     * exo_shard_get_part_info, parts 1 and up): EXO_DEVICE_LINK_PEER (a device-to-device copy) or
     * EXO_DEVICE_LINK_HOST (through host memory); 0 for part 0, a shard's own info and
     * tensor-parallel parts (their all-reduce is a host sum). docs/placement.md 2.1. */
    uint32_t input_path;
} exo_shard_info;

/* The first shard (start 0) embeds token ids; the last (end = n_layers) applies the final norm
 * and lm_head; the others take and give hidden states [tokens, hidden_size] in float32.
 * Empty ranges are allowed at the ends only: [0, 0) is the embedding alone, [L, L) the final
 * norm and lm_head alone. Lifetimes: sessions before their shard, shards before their model,
 * models before the runtime (the Python binding closes children first). */
EXO_API exo_status exo_shard_load(exo_model *model, const exo_shard_options *opts, exo_shard **out);
EXO_API void exo_shard_destroy(exo_shard *shard);
EXO_API exo_status exo_shard_get_info(const exo_shard *shard, exo_shard_info *out);
EXO_API const char *exo_shard_last_error(const exo_shard *shard);
/* Part `part` (0 .. n_parts - 1) of a shard placed across devices: its layer range, device,
 * weights and sizes (n_parts 1 in the part's own info). Part 0 of a one-device shard is the
 * shard itself. EXO_ERR_INVALID_ARG past the last part. */
EXO_API exo_status exo_shard_get_part_info(const exo_shard *shard, uint32_t part, exo_shard_info *out);
/* Runs one throw-away step so the first real request does not pay for first-touch page faults,
 * kernel builds and thread start-up. */
EXO_API exo_status exo_shard_warmup(exo_shard *shard);
/* The read bandwidth of the device the shard runs on (its first part's), measured now by its
 * plugin: a kernel that only reads `bytes` of device memory (fewer where the device cannot
 * allocate them), `passes` timed passes; *best_gbps the fastest in 1e9 bytes/s. For benchmarks
 * (exo-bench puts decode's bytes per second against it). EXO_ERR_UNSUPPORTED when the plugin
 * offers no such measurement (ABI below 1.8, or CPU plugins, whose memory a host-side sweep
 * measures). */
EXO_API exo_status exo_shard_read_bandwidth(exo_shard *shard, uint64_t bytes, uint32_t passes, double *best_gbps);

/* ---------------------------------------------------------------- sessions (one sequence each) */

typedef struct exo_session exo_session;

/* exo_session_forward flags */
#define EXO_FORWARD_LAST_ONLY (1u << 0) /* write only the last token's row of the output */
/* Greedy decoding without the logits: out[0] receives the id of the last token's most likely
 * next token (a float holding the integer exactly: ids are far below 2^24), out_count >= 1.
 * The first index of the largest logit, a NaN never chosen (EXO_OP_ARGMAX's rule, as numpy's
 * argmax picks on finite logits); the device picks it where its plugin can (ABI 1.10), so a
 * step reads 4 bytes back instead of a row of vocabulary floats. Implies LAST_ONLY; shards
 * that end with the lm_head only. */
#define EXO_FORWARD_ARGMAX (1u << 1)

/* A sequence's state on a shard: its KV cache, sized by the shard's max_ctx. max_ctx here
 * may lower the limit for this session (0: the shard's).
 * Threads: different sessions (of one shard or of several) may be used from different threads;
 * the steps of shards on the same device run one at a time. One session is used by one thread
 * at a time. A failed forward leaves the session's position where it was. */
EXO_API exo_status exo_session_create(exo_shard *shard, uint32_t max_ctx, exo_session **out);
EXO_API void exo_session_destroy(exo_session *session);
EXO_API exo_status exo_session_reset(exo_session *session);
/* Tokens held in the KV cache (the position of the next token). */
EXO_API uint32_t exo_session_position(const exo_session *session);
/* Forgets every position from n on (n <= position), e.g. to retry a step. */
EXO_API exo_status exo_session_truncate(exo_session *session, uint32_t n);
EXO_API const char *exo_session_last_error(const exo_session *session);
/* Prefix reuse: copies the first n positions of src's KV cache into dst and sets dst's position
 * to n, so dst continues as if it had been fed src's first n inputs itself (a shared system
 * prompt, a conversation's earlier turns) without recomputing them. Both sessions belong to one
 * shard; n <= src's position and dst's max_ctx; dst's earlier state is dropped; src is left as it
 * was. On failure dst holds no positions (0). A pooled shard copies slot to slot, per-session
 * caches buffer to buffer; either way the bytes go through the host (n rows per KV tensor). */
EXO_API exo_status exo_session_copy_prefix(exo_session *dst, const exo_session *src, uint32_t n);
/* Device memory the session's KV cache takes: every position up to its shard's max_ctx, whatever
 * the session holds now (its slot of a pooled shard's caches, or buffers of its own). What a
 * cache of idle sessions, kept for prefix reuse, costs per session. */
EXO_API uint64_t exo_session_kv_bytes(const exo_session *session);

/* Runs n tokens through the shard at the session's next positions and appends them to its KV
 * cache. Input: token ids (first shard) or hidden states [n, hidden_size]. Output: logits
 * [n, vocab] (last shard) or hidden states [n, hidden_size]; with EXO_FORWARD_LAST_ONLY just
 * the last row, which is all sampling needs: only then does a step's logits cost one row of
 * vocab floats rather than n; with EXO_FORWARD_ARGMAX the greedy token alone (out[0]). out_count is the capacity of out in floats. Once the session holds state, a
 * failing device gives EXO_ERR_DEVICE_LOST (no silent switch: re-place the shard). */
EXO_API exo_status exo_session_forward_tokens(exo_session *session, const int32_t *tokens, uint32_t n,
                                              uint32_t flags, float *out, uint64_t out_count);
EXO_API exo_status exo_session_forward_hidden(exo_session *session, const float *hidden, uint32_t n,
                                              uint32_t flags, float *out, uint64_t out_count);

/* One sequence's part of a batched step. Every entry of the array starts with the header
 * (EXO_STRUCT_INIT): its size is the array's stride, so the struct can grow. */
typedef struct exo_batch_entry {
    exo_struct_header hdr;
    exo_session *session;
    const int32_t *tokens;      /* first shard */
    const float *hidden;        /* other shards */
    uint32_t n;
    uint32_t flags;
    float *out;
    uint64_t out_count;
    exo_status status;          /* this entry's result */
    uint32_t reserved;
} exo_batch_entry;

/* Steps several sequences (EXO batches up to 8) of the same shard (EXO_ERR_INVALID_ARG when
 * the sessions belong to different shards). Returns EXO_OK when every entry succeeded, else the
 * first failing entry's status; each entry carries its own. */
EXO_API exo_status exo_session_forward_batch(exo_batch_entry *entries, uint32_t n_entries);


/* ---------------------------------------------------------------- tensor files (safetensors) */

typedef struct exo_tensor_file exo_tensor_file;

typedef struct exo_tensor_view {
    exo_dtype dtype;
    uint32_t n_dims;
    int64_t shape[4];   /* outermost first */
    const void *data;   /* valid until exo_tensor_file_destroy; aligned to the element size */
    uint64_t nbytes;
} exo_tensor_view;

/* Reads a safetensors file (e.g. golden references, hidden states saved by a peer). */
EXO_API exo_status exo_tensor_file_open(const char *path, exo_tensor_file **out);
EXO_API void exo_tensor_file_destroy(exo_tensor_file *file);
/* EXO_ERR_NOT_FOUND when the file has no tensor of that name. */
EXO_API exo_status exo_tensor_file_get(const exo_tensor_file *file, const char *name, exo_tensor_view *out);


/* ---------------------------------------------------------------- text: tokenizer */

/* add_bos of exo_model_tokenize and exo_generate_options: what the tokenizer's files say. */
#define EXO_BOS_DEFAULT (-1)

/* Token ids of UTF-8 text with the model's tokenizer (tokenizer.json). add_bos: 1 prepends BOS
 * when the model has one, 0 does not, -1 does what the tokenizer's files say (add_bos_token, the
 * post-processor template; else BOS when tokenizer_config names one). Text that already starts
 * with the BOS token (a chat template's "<|begin_of_text|>") never gets a second one. *n receives the count;
 * EXO_ERR_BUFFER_TOO_SMALL when cap is too small (*n then says how many are needed). Invalid
 * UTF-8 is an error (EXO_ERR_INVALID_ARG). */
EXO_API exo_status exo_model_tokenize(exo_model *model, const char *text, size_t len, int add_bos, int32_t *ids,
                                      size_t cap, size_t *n);
/* The exact bytes of token ids (special tokens as their text). Writes at most cap bytes and a
 * terminating NUL when room remains; *len receives the full length (EXO_OK even when cut:
 * compare *len with cap). */
EXO_API exo_status exo_model_detokenize(exo_model *model, const int32_t *ids, size_t n, char *text, size_t cap,
                                        size_t *len);

/* ---------------------------------------------------------------- sampling */

typedef struct exo_sampling {
    exo_struct_header hdr;
    float temperature;        /* 0 = greedy */
    int32_t top_k;            /* 0 = off */
    float top_p;              /* 1 = off */
    float min_p;              /* 0 = off */
    float repetition_penalty; /* 1 = off (HF semantics) */
    float presence_penalty;   /* 0 = off (OpenAI semantics) */
    float frequency_penalty;  /* 0 = off */
    int32_t penalty_window;   /* last tokens the penalties see */
    int64_t seed;             /* < 0: from OS entropy */
    uint32_t n_logprobs;      /* top log-probabilities reported per token (<= 20) */
    uint32_t n_banned;
    const int32_t *banned;    /* never sampled */
} exo_sampling;

/* EXO's defaults: temperature 0.7, top_p 1, top_k 0, min_p 0.05, repetition penalty 1 over the
 * last 20 tokens, no presence/frequency penalty, seed 42, no log-probabilities. */
#define EXO_SAMPLING_INIT                                                                          \
    { .hdr = EXO_STRUCT_HEADER_INIT(exo_sampling), .temperature = 0.7f, .top_p = 1.0f,             \
      .min_p = 0.05f, .repetition_penalty = 1.0f, .penalty_window = 20, .seed = 42 }
/* The same defaults written by the library, for bindings that cannot expand a macro: it writes
 * this library's sizeof(exo_sampling), so the caller's struct must be at least that big (a
 * binding built against this header). C callers use EXO_SAMPLING_INIT. */
EXO_API void exo_sampling_default(exo_sampling *sampling);

/* A sampler for one sequence, for callers that drive the steps themselves (pipeline ranks).
 * Order: repetition, presence and frequency penalties over the last penalty_window accepted
 * tokens; banned tokens; temperature; top_k; top_p; min_p; draw. Log-probabilities are those
 * of the penalised distribution before temperature and truncation. */
typedef struct exo_sampler exo_sampler;

typedef struct exo_sampled_token {
    exo_struct_header hdr;
    int32_t token;
    float logprob;
    uint32_t n_top;
    int32_t top_tokens[20];
    float top_logprobs[20];
} exo_sampled_token;

EXO_API exo_status exo_sampler_create(const exo_sampling *sampling, uint32_t vocab_size, exo_sampler **out);
EXO_API void exo_sampler_destroy(exo_sampler *sampler);
/* Adds a token the sequence keeps (prompt tokens too) to the penalties' history. */
EXO_API void exo_sampler_accept(exo_sampler *sampler, int32_t token);
/* Clears the history and restarts the random stream (the same stream for a fixed seed). */
EXO_API void exo_sampler_reset(exo_sampler *sampler);
/* Samples from one row of logits (left unchanged); n_logits must equal the vocabulary size. */
EXO_API exo_status exo_sampler_sample(exo_sampler *sampler, const float *logits, uint32_t n_logits,
                                      exo_sampled_token *out);

/* Streaming detokenizer: token ids in, text pieces out that never split a UTF-8 character. */
typedef struct exo_detokenizer exo_detokenizer;

EXO_API exo_status exo_detokenizer_create(exo_model *model, exo_detokenizer **out);
EXO_API void exo_detokenizer_destroy(exo_detokenizer *detok);
/* Appends a token; *text / *len receive the newly completed text (valid until the next call). */
EXO_API exo_status exo_detokenizer_push(exo_detokenizer *detok, int32_t token, const char **text, size_t *len);
/* Ends the stream: what an unfinished UTF-8 sequence held becomes U+FFFD. */
EXO_API exo_status exo_detokenizer_flush(exo_detokenizer *detok, const char **text, size_t *len);

/* ---------------------------------------------------------------- generation */

typedef int32_t exo_finish_reason;
enum {
    EXO_FINISH_NONE = 0,
    EXO_FINISH_EOS = 1,       /* the model produced an end-of-sequence token */
    EXO_FINISH_STOP = 2,      /* a stop string appeared */
    EXO_FINISH_LENGTH = 3,    /* max_tokens reached or the context is full */
    EXO_FINISH_CANCELLED = 4, /* the callback or the cancel flag stopped it */
    EXO_FINISH_REASON_FORCE_INT32 = 0x7fffffff
};

/* One event per generated token. Text that might begin a stop string is held back until it
 * cannot; what is held when generation ends comes in a last event with token -1. */
typedef struct exo_token_event {
    exo_struct_header hdr;
    uint32_t index;           /* 0 for the first generated token */
    int32_t token;            /* -1: the final flush of held-back text */
    const char *text;         /* newly completed UTF-8 text (may be empty; never splits a character) */
    size_t text_len;
    float logprob;
    uint32_t n_top;
    const int32_t *top_tokens;
    const float *top_logprobs;
} exo_token_event;

/* Return nonzero to stop generating (finish reason CANCELLED). */
typedef int (*exo_token_fn)(void *user, const exo_token_event *event);

typedef struct exo_generate_options {
    exo_struct_header hdr;
    const exo_sampling *sampling; /* NULL: exo_sampling_default */
    uint32_t max_tokens;          /* 0: until EOS or the context is full */
    uint32_t n_stop;
    const char *const *stop;      /* stop strings: generation ends before them; they are not emitted */
    int32_t add_bos;              /* EXO_BOS_DEFAULT (-1): as the tokenizer says; 0 / 1 */
    uint32_t ignore_eos;
    exo_token_fn on_token;
    void *user;
    const volatile int *cancel;   /* when non-NULL and nonzero, stop after the current step */
} exo_generate_options;

/* Defaults: EXO's sampling, until EOS or the context is full, BOS as the tokenizer says. */
#define EXO_GENERATE_OPTIONS_INIT \
    { .hdr = EXO_STRUCT_HEADER_INIT(exo_generate_options), .add_bos = EXO_BOS_DEFAULT }

typedef struct exo_generate_stats {
    exo_struct_header hdr;
    uint32_t prompt_tokens;
    uint32_t generation_tokens;
    double prompt_tps;        /* prompt tokens / prefill seconds */
    double generation_tps;    /* generated tokens after the first / their seconds */
    double ttft_ms;           /* time to first token */
    double total_ms;
    uint64_t peak_memory_bytes; /* peak resident memory of the process */
    exo_finish_reason finish_reason;
    uint32_t reserved;
} exo_generate_stats;

/* Generates a continuation of `prompt` (raw text: chat templating is the caller's job) on a
 * session of a whole-model shard, streaming tokens through on_token. The session continues
 * from its current position (reset it for a fresh conversation). On return its cache holds the
 * prompt and the generated tokens except the last one sampled (which was never fed back), and
 * on a stop string the tokens that formed it but the last: a caller continuing the conversation
 * should truncate to position - (tokens of the stop string) or re-feed what it keeps. */
EXO_API exo_status exo_generate(exo_session *session, const char *prompt, const exo_generate_options *opts,
                                exo_generate_stats *stats);
/* Same, from token ids. */
EXO_API exo_status exo_generate_tokens(exo_session *session, const int32_t *prompt, uint32_t n,
                                       const exo_generate_options *opts, exo_generate_stats *stats);

/* ---------------------------------------------------------------- the embedded default model */

/* Directory of the default model installed with the project (tiny-llama-licenses): EXO_MODEL_DIR
 * when set, else the install's share/exo-ipex/models, else the source tree's models/. NULL when
 * none exists. */
EXO_API const char *exo_default_model_dir(void);

#ifdef __cplusplus
}
#endif
#endif /* EXO_H */
