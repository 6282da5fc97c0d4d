/*
 * exo_plugin.h — the plugin ABI of exo-ipex. The only header a plugin includes.
 *
 * Rules (Level Zero / Vulkan loaders, SQLite's extension ABI, ggml's backend registry):
 *  - Every struct that crosses the core<->plugin boundary starts with exo_struct_header
 *    {size, version}. version = EXO_MAKE_VERSION(major, minor). The major must match exactly;
 *    the minor is negotiated down to min(core, plugin).
 *  - Structs and function tables only grow at the end. Members are never reordered, removed or
 *    retyped (that needs a major bump). A reader touches a member only when
 *    offsetof(member) + sizeof(member) <= hdr.size; a writer fills only what fits.
 *  - Header-less IR elements (exo_tensor, exo_node, exo_binding) grow the same way; their
 *    arrays carry the stride (ABI 1.2), readers index through the accessors, and a plugin of a
 *    minor below 1.2 is only ever handed 1.0-sized elements (see "IR arrays" below).
 *  - Enums are int32_t with explicit values; values are never reused.
 *  - One exported symbol per plugin: exo_plugin_entry (EXO_PLUGIN_DEFINE also exports a
 *    per-name alias so tests can link several plugins into one binary).
 *  - Plugins never print, never call getenv, never abort or exit: they go through the host table.
 *  - A writer of a struct the other side allocated copies with exo_struct_copy_out and leaves
 *    the header alone: hdr.size keeps describing the allocation, and the allocator zeroes it
 *    first, so members the writer does not know read as 0 (absent).
 *
 * The plugin contract (what exo_plugin_api's members mean; the loader enforces the first rule):
 *  - REQUIRED / OPTIONAL. Every member is marked below. A plugin lacking init, probe or
 *    device_report is refused at load. A plugin that sets graph_compile declares it runs graphs
 *    and must also set device_open, buffer_alloc, buffer_write, buffer_read, buffer_free,
 *    graph_execute and compiled_free, or it is refused at load with the missing members named
 *    (exo-probe shows the reason). Without graph_compile it is a probe-only plugin: its devices
 *    are listed and ranked but never given work. An OPTIONAL member may be NULL; the core then
 *    does what its comment says. Members past the plugin's hdr.size read as NULL.
 *  - Strings. name and version are read once, right after the entry call, and copied.
 *    build_info is read and copied then, and again (from probe_build_info, when set) right after
 *    each probe returns, on the probing thread, so exo-probe shows the text as the probe left it.
 *    The entry's strings must stay valid while the library is loaded (string literals, or
 *    static text written before the entry returns and never again).
 *  - Ownership. Arguments are borrowed for the call only: the graph of supports_graph and
 *    graph_compile (tensors, nodes, the buffers array), exec args and bindings, the data of
 *    buffer_write/read, the output structs. A plugin copies what it keeps. What a plugin returns
 *    (contexts, buffers, compiled graphs) it owns until the matching free: shutdown,
 *    buffer_free, compiled_free. The core frees every compiled graph that uses a buffer before
 *    that buffer, every buffer and compiled graph of a device before device_close, and closes
 *    every device before shutdown. Weight buffers outlive the compiled graphs that name them;
 *    host memory given to buffer_wrap_host outlives the buffer.
 *  - Threads. Each runtime has its own context (init), and several runtimes may live in one
 *    process: entry, init, probe and every other call may run on different contexts at the same
 *    time, so process-wide state of a plugin (loader handles, static tables) needs its own
 *    lock or pthread_once. On one context, init/probe/device_report/shutdown come from one
 *    thread with nothing else in flight; device_open/device_close/device_telemetry are
 *    serialised with each other; buffer, supports_graph, compile, execute and (1.8)
 *    device_read_bandwidth calls are serialised per device (the core holds that device's
 *    lock), but calls for two different devices of one context, and device_telemetry of a
 *    device, may run concurrently with them
 *    buffer_copy_peer (1.9) involves two devices: the core holds both devices' locks, so no
 *    other call for either device runs during it.
 *    Every host table function may be called from any thread at any time; set_error records
 *    the detail for the calling thread (like errno), so a plugin calls it on the thread that
 *    returns the status.
 *
 * The plain types this ABI shares with the public API (status codes, log levels, dtypes, the
 * device report and telemetry) are in exo_types.h, included below; it is part of this ABI.
 * The layout of everything here is asserted by tests/abi/test_abi_layout.c.
 */
#ifndef EXO_PLUGIN_H
#define EXO_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "exo_types.h" /* the plain types shared with the public API: status codes, devices, ... */

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- versions and headers */

#define EXO_ABI_MAJOR 1
#define EXO_ABI_MINOR 10 /* 1.1: exo_plugin_api.probe_build_info; 1.2: IR element strides;
                          1.3: quantized weights (EXO_DTYPE_MLX_AFFINE, exo_tensor.q_*);
                          1.4: mixture of experts (EXO_OP_MOE_*);
                          1.5: gpt_oss and glm4_moe: routing rules SIGMOID_BIAS and
                          TOPK_SOFTMAX, expert biases, attention sinks, EXO_ACT_SWIGLU_CLAMP;
                          1.6: pooled KV caches (batched steps, "Pooled KV caches");
                          1.7: KV caches of 16-bit floats ("KV cache dtypes");
                          1.8: exo_plugin_api.device_read_bandwidth;
                          1.9: exo_plugin_api.peer_copy_supported and buffer_copy_peer;
                          1.10: EXO_OP_ARGMAX (the greedy token picked on the device) */
#define EXO_ABI_VERSION EXO_MAKE_VERSION(EXO_ABI_MAJOR, EXO_ABI_MINOR)

/* Initialises the header of a struct the plugin side allocates, for the compiling side's layout
 * and the plugin ABI's version. In a plugin (which includes only this header) EXO_STRUCT_INIT is
 * the same; code that also includes exo.h (the core) gets exo.h's EXO_STRUCT_INIT, which stamps
 * the public API's version, and stamps plugin-side structs with EXO_ABI_STRUCT_INIT. */
#define EXO_ABI_STRUCT_INIT(ptr) \
    ((ptr)->hdr.size = (uint32_t)sizeof(*(ptr)), (ptr)->hdr.version = EXO_ABI_VERSION)
#ifndef EXO_H
#define EXO_STRUCT_INIT(ptr) EXO_ABI_STRUCT_INIT(ptr)
#endif

/* Copies a complete struct of the writer's layout (`src`, `src_size` bytes) into a struct the
 * other side allocated (`dst`, whose header says how big it is): only the members both layouts
 * hold, never the header. Returns EXO_ERR_INVALID_ARG, writing nothing, for a NULL or
 * headerless dst. (A byte loop: this header includes nothing beyond stddef.h and stdint.h.) */
static inline exo_status exo_struct_copy_out(void *dst, const void *src, size_t src_size) {
    exo_struct_header *h = (exo_struct_header *)dst;
    if (!h || !src || h->size < sizeof *h) return EXO_ERR_INVALID_ARG;
    size_t n = h->size < src_size ? h->size : src_size;
    const unsigned char *from = (const unsigned char *)src;
    unsigned char *to = (unsigned char *)dst;
    for (size_t k = sizeof *h; k < n; k++) to[k] = from[k];
    return EXO_OK;
}

/* EXO_OP_ARGMAX's rule over one row of n floats (the result of `best = 0; for i: if (x[i] >
 * x[best]) best = i`), for the plugins' kernels and the core's host-side pick to share. Two
 * passes a compiler vectorises, since a row of logits is 128K floats: the largest value, 16
 * lanes at once (a NaN never replaces a lane's value: `x > lane` is false), then the first
 * index holding it. -0 == +0, so the first of either wins; a row starting with NaN gives 0. */
static inline uint32_t exo_argmax_row(const float *x, uint32_t n) {
    if (n == 0 || x[0] != x[0]) return 0;
    float lane[16];
    for (uint32_t l = 0; l < 16; l++) lane[l] = x[0];
    uint32_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (uint32_t l = 0; l < 16; l++) lane[l] = x[i + l] > lane[l] ? x[i + l] : lane[l];
    float best = lane[0];
    for (uint32_t l = 1; l < 16; l++) best = lane[l] > best ? lane[l] : best;
    for (; i < n; i++) best = x[i] > best ? x[i] : best;
    for (i = 0; i + 16 <= n; i += 16) {
        int hit = 0;
        for (uint32_t l = 0; l < 16; l++) hit |= x[i + l] == best;
        if (hit) break;
    }
    for (; i < n; i++)
        if (x[i] == best) return i;
    return 0; /* not reached: best is one of x's values */
}

/* ---------------------------------------------------------------- host table (core -> plugin) */

typedef struct exo_host_api {
    exo_struct_header hdr;
    void *host_ctx; /* passed back as the first argument of every call below */
    /* One line, no trailing newline. `component` is e.g. "plugin:opencl". */
    void (*log)(void *host_ctx, exo_log_level level, const char *component, const char *message);
    /* Records error detail for the current call on the calling thread; returns `status` so
     * plugins can `return host->set_error(...)`. vendor_code is the ze_result_t / cl_int /
     * dnnl_status_t (0: none); the core keeps it with the detail and shows it in messages. */
    exo_status (*set_error)(void *host_ctx, exo_status status, int64_t vendor_code,
                            const char *fmt, ...) __attribute__((format(printf, 4, 5)));
    /* Environment lookup (secure_getenv). Returns NULL when unset. */
    const char *(*get_env)(void *host_ctx, const char *name);
    void *(*alloc)(void *host_ctx, size_t size); /* may return NULL */
    void (*free)(void *host_ctx, void *ptr);
    uint64_t (*now_ns)(void *host_ctx); /* monotonic clock */
    /* Number of worker threads the host wants a CPU device to use (0: all cores). */
    uint32_t (*cpu_threads)(void *host_ctx);
} exo_host_api;

/* ---------------------------------------------------------------- the graph IR */

/* Tensor roles. */
#define EXO_TENSOR_INPUT (1u << 0)  /* bound per execution (token ids, hidden states, positions) */
#define EXO_TENSOR_OUTPUT (1u << 1) /* bound per execution (logits, hidden states) */
#define EXO_TENSOR_WEIGHT (1u << 2) /* lives in a weight buffer at (buffer, offset) */
#define EXO_TENSOR_KV (1u << 3)     /* KV cache: bound per execution, persistent per session */

/* A dimension equal to EXO_DIM_TOKENS is the number of tokens of the current execution. */
#define EXO_DIM_TOKENS (-1)
#define EXO_MAX_DIMS 4
#define EXO_MAX_SRC 6
#define EXO_TENSOR_NAME_MAX 48

/* Shapes use ggml's order: ne[0] is the innermost (contiguous) dimension. Tensors are dense
 * and row-major in v1.0; nb is reserved for strided views and written as 0. */
typedef struct exo_tensor {
    uint32_t id;        /* index in the graph's tensor table */
    exo_dtype dtype;
    uint32_t flags;     /* EXO_TENSOR_*; none = intermediate owned by the plugin */
    uint32_t n_dims;
    int64_t ne[EXO_MAX_DIMS];
    int64_t nb[EXO_MAX_DIMS];
    int32_t buffer;     /* WEIGHT: index into exo_graph.buffers; otherwise -1 */
    uint32_t reserved;
    uint64_t offset;    /* byte offset inside that buffer */
    char name[EXO_TENSOR_NAME_MAX];
    /* ---- ABI 1.3: how a weight of a quantized dtype is read (see "Quantized weights"); written
     * as 0 for every other tensor. */
    uint32_t q_bits;    /* MLX_AFFINE: bits per element, 2, 3, 4, 5, 6 or 8 */
    uint32_t q_group;   /* MLX_AFFINE: elements per scale/bias along ne[0]: 32, 64 or 128 */
    uint32_t q_scales;  /* MLX_AFFINE: tensor id of the scales */
    uint32_t q_biases;  /* MLX_AFFINE: tensor id of the biases */
} exo_tensor;

/* Quantized weights (ABI 1.3). A tensor of dtype EXO_DTYPE_MLX_AFFINE is a WEIGHT of logical
 * shape ne = [K, rows...] (ne[0] = K, the reduced dimension, a multiple of q_group) stored as
 * MLX's affine quantization writes it (mlx.core.quantize, mlx-lm's QuantizedLinear and
 * QuantizedEmbedding; the layout of mlx-community checkpoints):
 *  - data: each row is K * q_bits / 32 little-endian uint32 words (4-byte aligned), read as one
 *    little-endian bit stream: element j of a row is the unsigned integer q in bits
 *    [j * q_bits, (j + 1) * q_bits) of the row (bit 0 = the lowest bit of the row's first word),
 *    so 3-, 5- and 6-bit values may straddle two words; the row takes K * q_bits / 8 bytes;
 *  - q_scales and q_biases: two WEIGHT tensors of one float dtype (F32, F16 or BF16), each of
 *    shape ne = [K / q_group, rows...]: group g of row r covers elements [g * q_group,
 *    (g + 1) * q_group);
 *  - value: w[r, j] = scales[r, j / q_group] * q + biases[r, j / q_group], computed in float
 *    (scales may be negative, biases zero).
 * Kernels dequantize in registers or tiles; a plugin never expands such a weight to float in
 * memory. A plugin whose kernels lack the dtype refuses the graph in supports_graph (the core
 * then falls back down the ranking); a plugin of a minor below 1.3 sees an unknown dtype and
 * refuses it too. */

typedef int32_t exo_op;
enum {
    /* dst[T,H] = table[ids[t], :] * scale.  src: table [V,H] weight, ids I32 [T].
     * f[EXO_GET_ROWS_F_SCALE] (1 = none). The table may be MLX_AFFINE (1.3): the selected rows
     * are dequantized ("Quantized weights"); the table is then often also an lm_head's W. */
    EXO_OP_GET_ROWS = 0,
    /* dst = x / rms(x) * (w or 1 + w), over ne[0]. src: x, w [ne0]. f[EXO_RMS_NORM_F_EPS];
     * i[EXO_RMS_NORM_I_ADD_ONE]: 1 = "1 + w". */
    EXO_OP_RMS_NORM = 1,
    /* dst[T,N] = x[T,K] @ W[N,K]^T (+ bias[N]). src: x f32, W (f32/f16/bf16/q8_0, or MLX_AFFINE
     * (1.3) with K a multiple of W.q_group, dequantized as "Quantized weights" says), optional
     * bias f32. */
    EXO_OP_MATMUL = 2,
    /* dst = a + b (same shape). */
    EXO_OP_ADD = 3,
    /* dst = a * b (same shape). */
    EXO_OP_MUL = 4,
    /* dst = act(gate) * up. src: gate, up. i[EXO_GLU_I_ACT]: EXO_ACT_*. (1.5) With
     * EXO_ACT_SWIGLU_CLAMP (gpt_oss's experts): g = min(gate, limit), u = clamp(up, -limit,
     * limit), dst = (u + 1) * g * sigmoid(alpha * g), alpha = f[EXO_GLU_F_ALPHA], limit =
     * f[EXO_GLU_F_LIMIT] (> 0). */
    EXO_OP_GLU = 5,
    /* Rotary embedding in place of a copy. src: x [T, n_heads, head_dim], positions I32 [T],
     * inv_freq F32 [n_rot/2]. i[EXO_ROPE_I_MODE]: EXO_ROPE_*; i[EXO_ROPE_I_N_ROT]: n_rot
     * (<= head_dim). f[EXO_ROPE_F_ATTN_FACTOR]: attention factor multiplying cos and sin (yarn
     * mscale; 1 = none). */
    EXO_OP_ROPE = 6,
    /* cache[pos[t], :, :] = src[t, :, :]. dst: KV tensor [ctx, n_kv_heads, head_dim];
     * src: k or v [T, n_kv_heads, head_dim] (f32), positions I32 [T]. (1.6) With a pooled
     * cache [n_slots, ctx, n_kv_heads, head_dim], src[2] is slots I32 [T] and row t goes to
     * cache[slots[t], pos[t], :, :] ("Pooled KV caches"). (1.7) A BF16 or F16 cache stores
     * each float rounded to nearest even ("KV cache dtypes"). */
    EXO_OP_KV_WRITE = 7,
    /* Fused causal attention over the KV cache. dst [T, n_heads*head_dim]; src: q [T, n_heads,
     * head_dim], k cache, v cache [ctx, n_kv_heads, head_dim], positions I32 [T]. Query t attends
     * to cache rows [max(0, pos[t] - window + 1), pos[t]]. i[EXO_ATTENTION_I_*]: n_heads,
     * n_kv_heads, head_dim, window (0 = none); f[EXO_ATTENTION_F_*]: scale, softcap (0 = none).
     * (1.5) Optional src[4]: sinks F32 [n_heads] (gpt_oss): head h's softmax over its scores
     * gets one more logit, sinks[h], in the denominator only (it has no value row):
     * p_i = exp(s_i - m) / (exp(sinks[h] - m) + sum_j exp(s_j - m)), m = max(max_j s_j, sinks[h]).
     * (1.6) With pooled caches [n_slots, ctx, n_kv_heads, head_dim], the last source (src[4],
     * or src[5] after the sinks) is slots I32 [T]: query t attends to rows of slot slots[t]
     * only ("Pooled KV caches"). (1.7) The caches may be BF16 or F16 (k and v of one dtype),
     * read exactly and computed with in float ("KV cache dtypes"). */
    EXO_OP_ATTENTION = 8,
    /* dst = cap * tanh(x / cap). f[EXO_SOFTCAP_F_CAP]. */
    EXO_OP_SOFTCAP = 9,
    /* dst = x. Element counts are equal; shapes may differ, which makes COPY the reshape
     * (e.g. [T, n_heads*head_dim] -> [T, n_heads, head_dim]). */
    EXO_OP_COPY = 10,
    /* ---- ABI 1.4: mixture of experts (see "Mixture of experts" below). Routing is two nodes
     * that share one rule: MOE_TOPK picks the experts, MOE_WEIGHTS weighs them. */
    /* dst ids I32 [T, k] = the k experts of each token, best first. src: scores F32 [T, E] (the
     * router's logits). i[EXO_MOE_TOPK_I_K]: k (1..E); i[EXO_MOE_TOPK_I_RULE]: EXO_MOE_RULE_*,
     * the scores the selection ranks (SOFTMAX: softmax over the E logits, in float; the order is
     * that of the logits). Ties rank the lower expert id first. (1.5) SIGMOID_BIAS: ranks
     * sigmoid(logit[e]) + bias[e], bias = src[1] F32 [E] (glm4_moe's e_score_correction_bias);
     * TOPK_SOFTMAX: ranks the raw logits (gpt_oss). Only SIGMOID_BIAS has (and needs) src[1]. */
    EXO_OP_MOE_TOPK = 11,
    /* dst F32 [T, k] = the weight of each selected expert. src: scores F32 [T, E] (the same
     * logits), ids I32 [T, k] (MOE_TOPK's dst). i[EXO_MOE_WEIGHTS_I_RULE]: EXO_MOE_RULE_*
     * (SOFTMAX: p = softmax over all E logits, w[t, j] = p[t, ids[t, j]]);
     * i[EXO_MOE_WEIGHTS_I_NORMALIZE]: 1 = divide the k weights by their sum (norm_topk_prob);
     * f[EXO_MOE_WEIGHTS_F_SCALE]: a factor on every weight (routed_scaling_factor; 1 = none).
     * (1.5) SIGMOID_BIAS: w[t, j] = sigmoid(logits[t, ids[t, j]]) (the bias only selects);
     * NORMALIZE divides by (their sum + 1e-20), as glm4_moe does; then F_SCALE.
     * TOPK_SOFTMAX: w = softmax over the k selected logits (NORMALIZE must be 0); then F_SCALE. */
    EXO_OP_MOE_WEIGHTS = 12,
    /* The expert-indexed matmul. dst F32 [T, k, N]: dst[t, j, :] = x_row @ W[ids[t, j]]^T.
     * src: x F32 [T, K] (each selected expert reads the token's row) or [T, k, K] (slot j reads
     * row (t, j)); ids I32 [T, k] (values in [0, E), checked at run time); the experts' weights,
     * named by src[2] in one of two forms ("Mixture of experts" below) with
     * i[EXO_MOE_MATMUL_I_N_EXPERTS] = E. Only the selected experts' weights are read. (1.5)
     * Optional src[3]: bias F32 [E, N] (ne = {N, E}): dst[t, j, :] += bias[ids[t, j], :]
     * (gpt_oss's expert biases). */
    EXO_OP_MOE_MATMUL = 13,
    /* dst F32 [T, N] = sum over j of w[t, j] * y[t, j, :]. src: y F32 [T, k, N], w F32 [T, k]. */
    EXO_OP_MOE_COMBINE = 14,
    /* ---- ABI 1.10 */
    /* dst I32 [R] = for each row r of x F32 [R, N] (any R: every token's row, or a head's
     * selected rows), the index of its largest value by the rule of the loop `best = 0; for i:
     * if (x[i] > x[best]) best = i`: the first of equal values (-0 == +0), a NaN never chosen,
     * and 0 when the row starts with a NaN. The greedy token of each row of logits, picked on
     * the device, so a decode step hands back 4 bytes a sequence instead of a row of vocabulary
     * floats. src: x; no parameters. A plugin of a minor below 1.10 never sees it (the core
     * then reads the logits and picks on the host by the same rule). */
    EXO_OP_ARGMAX = 15,
    EXO_OP_COUNT = 16,
    EXO_OP_FORCE_INT32 = 0x7fffffff
};

/* The parameter slots of exo_node.i[] (_I_) and exo_node.f[] (_F_), named per op. The values
 * are ABI (a slot is never renumbered or reused within a major); an op gains a parameter by
 * naming the next free slot. Slots an op does not name are written as 0. */
enum {
    EXO_GET_ROWS_F_SCALE = 0,
    EXO_RMS_NORM_I_ADD_ONE = 0,
    EXO_RMS_NORM_F_EPS = 0,
    EXO_GLU_I_ACT = 0,
    EXO_ROPE_I_MODE = 0,
    EXO_ROPE_I_N_ROT = 1,
    EXO_ROPE_F_ATTN_FACTOR = 0,
    EXO_ATTENTION_I_N_HEADS = 0,
    EXO_ATTENTION_I_N_KV_HEADS = 1,
    EXO_ATTENTION_I_HEAD_DIM = 2,
    EXO_ATTENTION_I_WINDOW = 3,
    EXO_ATTENTION_F_SCALE = 0,
    EXO_ATTENTION_F_SOFTCAP = 1,
    EXO_SOFTCAP_F_CAP = 0,
    /* ABI 1.4 */
    EXO_MOE_TOPK_I_K = 0,
    EXO_MOE_TOPK_I_RULE = 1,
    EXO_MOE_WEIGHTS_I_RULE = 0,
    EXO_MOE_WEIGHTS_I_NORMALIZE = 1,
    EXO_MOE_WEIGHTS_F_SCALE = 0,
    EXO_MOE_MATMUL_I_N_EXPERTS = 0,
    /* ABI 1.5 */
    EXO_GLU_F_ALPHA = 0,
    EXO_GLU_F_LIMIT = 1
};

/* Routing rules (i[EXO_MOE_TOPK_I_RULE], i[EXO_MOE_WEIGHTS_I_RULE]). Values are ABI; the rules
 * of other architectures take the next values. A plugin of minor 1.4 refuses 1 and 2. */
enum {
    EXO_MOE_RULE_SOFTMAX = 0,      /* qwen3_moe, mixtral: softmax over all E logits */
    EXO_MOE_RULE_SIGMOID_BIAS = 1, /* 1.5, glm4_moe: sigmoid scores, selection-only bias */
    EXO_MOE_RULE_TOPK_SOFTMAX = 2  /* 1.5, gpt_oss: top-k of the raw logits, softmax over the k */
};

/* Mixture of experts (ABI 1.4). An expert's weights stay where the checkpoint has them: the
 * MOE_MATMUL weight operand src[2] is either
 *  - a table: src[2] is expert 0's weight, a 2-D WEIGHT [N, K], and experts 1..E-1 are the
 *    WEIGHT tensors with the next E-1 ids of the graph's tensor table (ids src[2] + e), of one
 *    dtype and shape, each at its own (buffer, offset); per-expert checkpoint tensors (Qwen3-MoE,
 *    Mixtral), which are not contiguous in the files, come this way; or
 *  - stacked: src[2] is one 3-D WEIGHT [E, N, K] (ne = {K, N, E}), expert e at e * N * K
 *    elements (fused checkpoints such as gpt_oss, mlx-lm's switch_mlp).
 * Weights may be of any dtype MATMUL takes (an MLX_AFFINE table entry carries its own scales and
 * biases; a stacked MLX_AFFINE weight has scales and biases ne = {K / q_group, N, E}, so expert
 * e's packed rows start at byte e * N * K * q_bits / 8 and its scales/biases at element
 * e * N * K / q_group: mlx-lm's QuantizedSwitchLinear). A decode step reads only the k selected experts' bytes; a plugin may group tokens by
 * expert (one matmul per active expert) in prefill. */

/* Pooled KV caches (ABI 1.6): one graph run steps several sequences (a batched step), so every
 * matmul reads its weights once for all of them. The tokens of all sequences are concatenated
 * (T = the sum of their counts, each sequence's tokens contiguous, in any order of sequences);
 * every op but KV_WRITE and ATTENTION treats them as one batch of rows. The KV tensors are then
 * pools, 4-D [n_slots, ctx, n_kv_heads, head_dim] (ne = {head_dim, n_kv_heads, ctx, n_slots}),
 * one slot per live sequence; an INPUT slots I32 [T] names each token's slot and is the last
 * source of KV_WRITE and ATTENTION. Positions stay per token (each sequence at its own).
 * Whether a node is pooled is the rank of its cache tensors: 4-D pooled (then the slots
 * source is there), 3-D not. A slot id outside [0, n_slots) or a position outside [0, ctx) is
 * refused at execute naming the node. A plugin that cannot run the pooled form refuses it in
 * supports_graph (EXO_ERR_UNSUPPORTED): the core then gives it per-sequence caches and steps
 * the sequences of a batch one after another; a plugin of a minor below 1.6 never sees it. */

/* KV cache dtypes (ABI 1.7): a KV tensor (per-session 3-D or pooled 4-D) may be F32, BF16 or
 * F16; the K and V caches that one ATTENTION reads share a dtype. KV_WRITE rounds its float32
 * rows to the cache's dtype, to nearest even (F16: overflow to infinity, subnormals kept);
 * ATTENTION widens the cached values exactly and computes in float32 as with an F32 cache. The
 * 16-bit forms halve the cache (the bytes a decode step reads per position, and the memory a
 * session takes); the core picks them per shard (exo_shard_options.kv_dtype) and offers them
 * only to a plugin of minor 1.7 or later. A plugin whose kernels lack a KV dtype refuses the
 * graph in supports_graph (EXO_ERR_UNSUPPORTED, naming the node); the core then gives it F32
 * caches. Buffer sizes and the offsets of slots and positions follow the element size. */

enum { EXO_ACT_SILU = 0, EXO_ACT_GELU_TANH = 1, EXO_ACT_SWIGLU_CLAMP = 2 /* 1.5, see EXO_OP_GLU */ };
enum { EXO_ROPE_NORMAL = 0 /* interleaved pairs (GPT-J) */, EXO_ROPE_NEOX = 1 /* halves (HF llama) */ };

typedef struct exo_node {
    exo_op op;
    uint32_t dst;
    uint32_t n_src;
    uint32_t src[EXO_MAX_SRC];
    int32_t i[8]; /* integer parameters, per op above: i[EXO_<OP>_I_<NAME>] */
    float f[8];   /* float parameters, per op above: f[EXO_<OP>_F_<NAME>] */
} exo_node;

struct exo_buffer; /* plugin-defined */
typedef struct exo_buffer exo_buffer;

typedef struct exo_graph {
    exo_struct_header hdr;
    uint32_t n_tensors;
    const exo_tensor *tensors;
    uint32_t n_nodes;
    const exo_node *nodes; /* topological order */
    uint32_t n_buffers;
    exo_buffer *const *buffers; /* weight buffers referenced by WEIGHT tensors */
    uint32_t max_tokens;        /* largest EXO_DIM_TOKENS an execution will use */
    uint32_t reserved;
    /* ---- ABI 1.2: the arrays' element strides (see "IR arrays" below). */
    uint32_t tensor_stride; /* bytes from one exo_tensor of `tensors` to the next */
    uint32_t node_stride;   /* bytes from one exo_node of `nodes` to the next */
} exo_graph;

/* One tensor bound to memory for one execution (INPUT, OUTPUT and KV tensors). */
typedef struct exo_binding {
    uint32_t tensor;
    uint32_t reserved;
    exo_buffer *buffer;
    uint64_t offset;
} exo_binding;

typedef struct exo_exec_args {
    exo_struct_header hdr;
    uint32_t n_tokens; /* value of EXO_DIM_TOKENS for this execution, 1..max_tokens */
    uint32_t n_bindings;
    const exo_binding *bindings;
    /* ---- ABI 1.2 */
    uint32_t binding_stride; /* bytes from one exo_binding of `bindings` to the next */
    uint32_t reserved;
} exo_exec_args;

/* IR arrays. exo_tensor, exo_node and exo_binding carry no header: they grow within a major by
 * appending members, and the arrays say how far apart their elements are. A stride that is 0,
 * or absent (a graph or exec args whose hdr.size ends before it: an ABI 1.0/1.1 writer), is the
 * ABI 1.0 element size below. A reader indexes only through the accessors that follow, never
 * with tensors[i] / nodes[i] / bindings[i], and touches a member appended after 1.0 only when
 * EXO_ELEMENT_HAS says the stride holds it. A writer sets each stride to the sizeof it filled
 * (EXO_STRUCT_INIT-style), with every member it does not know zeroed. A plugin that negotiated
 * a minor below 1.2 indexes with its own sizeof, which is the 1.0 size: the core hands such a
 * plugin only arrays at the 1.0 strides (repacking them if an element has grown since). */
#define EXO_TENSOR_SIZE_1_0 144u
#define EXO_NODE_SIZE_1_0 100u
#define EXO_BINDING_SIZE_1_0 24u

/* True when elements `stride` bytes apart hold `member` of `type` entirely. */
#define EXO_ELEMENT_HAS(stride, type, member) \
    ((stride) >= offsetof(type, member) + sizeof(((type *)0)->member))

static inline uint32_t exo_graph_tensor_stride(const exo_graph *g) {
    uint32_t s = EXO_STRUCT_HAS(g, exo_graph, tensor_stride) ? g->tensor_stride : 0;
    return s ? s : EXO_TENSOR_SIZE_1_0;
}
static inline uint32_t exo_graph_node_stride(const exo_graph *g) {
    uint32_t s = EXO_STRUCT_HAS(g, exo_graph, node_stride) ? g->node_stride : 0;
    return s ? s : EXO_NODE_SIZE_1_0;
}
static inline uint32_t exo_exec_binding_stride(const exo_exec_args *a) {
    uint32_t s = EXO_STRUCT_HAS(a, exo_exec_args, binding_stride) ? a->binding_stride : 0;
    return s ? s : EXO_BINDING_SIZE_1_0;
}
/* Element i of a graph's tensors / nodes, of an execution's bindings (i below the count). */
static inline const exo_tensor *exo_graph_tensor(const exo_graph *g, uint32_t i) {
    return (const exo_tensor *)(const void *)((const char *)g->tensors + (size_t)i * exo_graph_tensor_stride(g));
}
static inline const exo_node *exo_graph_node(const exo_graph *g, uint32_t i) {
    return (const exo_node *)(const void *)((const char *)g->nodes + (size_t)i * exo_graph_node_stride(g));
}
static inline const exo_binding *exo_exec_binding(const exo_exec_args *a, uint32_t i) {
    return (const exo_binding *)(const void *)((const char *)a->bindings + (size_t)i * exo_exec_binding_stride(a));
}

/* ---------------------------------------------------------------- plugin table (plugin -> core) */

typedef int32_t exo_buffer_usage;
enum {
    EXO_BUFFER_WEIGHTS = 0,
    EXO_BUFFER_KV = 1,
    EXO_BUFFER_SCRATCH = 2, /* inputs, outputs, activations */
    EXO_BUFFER_USAGE_FORCE_INT32 = 0x7fffffff
};

/* Plugin class ranks (GStreamer style, with gaps). */
#define EXO_RANK_LEVEL_ZERO 256
#define EXO_RANK_OPENCL 128
#define EXO_RANK_CPU 64

struct exo_plugin_ctx;  /* plugin-defined: state between probe/open and close */
typedef struct exo_plugin_ctx exo_plugin_ctx;
struct exo_compiled;    /* plugin-defined: a compiled graph */
typedef struct exo_compiled exo_compiled;

typedef struct exo_plugin_api {
    exo_struct_header hdr; /* set by the core before the entry call */
    const char *name;      /* "level_zero", "opencl", "cpu_amx"; OPTIONAL (the file name rules) */
    const char *version;   /* plugin semver; OPTIONAL */
    const char *build_info;/* e.g. "oneDNN 2.6.3"; OPTIONAL; see "Strings" above */
    uint32_t rank;         /* class rank, EXO_RANK_* */
    uint32_t reserved;

    /* REQUIRED. Creates the plugin context. Cheap: no driver calls. */
    exo_status (*init)(const exo_host_api *host, exo_plugin_ctx **out);
    /* OPTIONAL (NULL: nothing to free). Frees the context; called once, after device_close of
     * every opened device. */
    void (*shutdown)(exo_plugin_ctx *ctx);

    /* REQUIRED. Finds devices. May load the vendor library and query devices; creates no
     * contexts or queues. Bounded time, idempotent. `*count` receives the number of devices; the
     * core then reads each report with device_report. When it finds no device (loader missing,
     * no driver, zeInit failing) it sets *count = 0, tells why through
     * host->set_error(host_ctx, EXO_ERR_NO_DEVICE, vendor_code, "...") and returns EXO_OK or
     * EXO_ERR_NO_DEVICE: the core lists the plugin as loaded with no devices and that message as
     * its reason. Any other error status means the probe itself broke. */
    exo_status (*probe)(exo_plugin_ctx *ctx, uint32_t *count);
    /* REQUIRED. Fills `out` (allocated and zeroed by the core) with exo_struct_copy_out. */
    exo_status (*device_report)(exo_plugin_ctx *ctx, uint32_t index, exo_device_report *out);
    /* OPTIONAL (NULL: telemetry reads return no valid field). May run concurrently with work
     * on the same device (see "Threads"). */
    exo_status (*device_telemetry)(exo_plugin_ctx *ctx, uint32_t index, exo_device_telemetry *out);

    /* REQUIRED for graph runners (NULL: the plugin's devices cannot be opened). Opens a device
     * for work (context, queue, ...). Called at most once per device. */
    exo_status (*device_open)(exo_plugin_ctx *ctx, uint32_t index);
    /* OPTIONAL (NULL: nothing to close). Called at shutdown for each opened device. */
    void (*device_close)(exo_plugin_ctx *ctx, uint32_t index);

    /* Buffers on an opened device. alloc, write, read and free: REQUIRED for graph runners.
     * A weight buffer lives until every compiled graph naming it is freed. */
    exo_status (*buffer_alloc)(exo_plugin_ctx *ctx, uint32_t device, uint64_t size,
                               exo_buffer_usage usage, exo_buffer **out);
    /* OPTIONAL (NULL: the core allocates and uploads instead): wraps host memory the caller
     * keeps alive and unchanged (e.g. an mmap'd weight file) without copying, when the device
     * can use it in place. */
    exo_status (*buffer_wrap_host)(exo_plugin_ctx *ctx, uint32_t device, void *ptr, uint64_t size,
                                   exo_buffer_usage usage, exo_buffer **out);
    exo_status (*buffer_write)(exo_buffer *buf, uint64_t offset, const void *data, uint64_t size);
    exo_status (*buffer_read)(exo_buffer *buf, uint64_t offset, void *data, uint64_t size);
    void (*buffer_free)(exo_buffer *buf);

    /* Graph execution. OPTIONAL (NULL: graph_compile decides alone): supports_graph sets
     * *first_unsupported to the first node it cannot run (UINT32_MAX when it can run them all)
     * and returns EXO_OK or EXO_ERR_UNSUPPORTED. */
    exo_status (*supports_graph)(exo_plugin_ctx *ctx, uint32_t device, const exo_graph *graph,
                                 uint32_t *first_unsupported);
    /* OPTIONAL; setting it declares a graph runner (see "REQUIRED / OPTIONAL"). The graph is
     * borrowed for the call: the compiled graph keeps copies of what it needs, and may keep the
     * exo_buffer pointers of graph->buffers (those outlive it). */
    exo_status (*graph_compile)(exo_plugin_ctx *ctx, uint32_t device, const exo_graph *graph,
                                exo_compiled **out);
    /* REQUIRED for graph runners. args and its bindings are borrowed for the call; the bound
     * buffers are the plugin's own, alive for the call. */
    exo_status (*graph_execute)(exo_compiled *compiled, const exo_exec_args *args);
    /* REQUIRED for graph runners. */
    void (*compiled_free)(exo_compiled *compiled);

    /* ---- ABI 1.1 */
    /* OPTIONAL (NULL: build_info as read after the entry call stands). The build text as this
     * context's last probe found it (e.g. the loader and driver versions, or why there are no
     * devices), owned by the context and unchanged until its next probe or shutdown. The core
     * calls it right after each probe returns, on the probing thread, and copies the text. */
    const char *(*probe_build_info)(exo_plugin_ctx *ctx);

    /* ---- ABI 1.8 */
    /* OPTIONAL (NULL: not offered). The read bandwidth of opened device `device`, measured now: a
     * kernel that only reads `bytes` of device memory (fewer where one allocation cannot hold
     * them), timed over `passes` passes; *best_gbps the fastest, in 1e9 bytes/s. Benchmarks put a
     * decode step's bytes per second against it (exo-bench); nothing else depends on it. */
    exo_status (*device_read_bandwidth)(exo_plugin_ctx *ctx, uint32_t device, uint64_t bytes, uint32_t passes,
                                        double *best_gbps);

    /* ---- ABI 1.9: device-to-device copies ("peer copies"). Without them (NULL, or a plugin of a
     * minor below 1.9) the core hands data between two devices through host memory: buffer_read
     * from one, buffer_write to the other. */
    /* OPTIONAL (NULL: no peer copies). Whether buffer_copy_peer can copy from opened device `src`
     * into opened device `dst` of this context (two different devices): EXO_OK yes;
     * EXO_ERR_UNSUPPORTED no (the driver says the devices cannot reach each other's memory), with
     * the reason as error detail; another status when asking failed. The core asks when it places
     * a shard and when it measures a link, holding no device lock: it only queries the driver and
     * never touches the devices' queues or buffers. */
    exo_status (*peer_copy_supported)(exo_plugin_ctx *ctx, uint32_t src, uint32_t dst);
    /* OPTIONAL, set together with peer_copy_supported. Copies `size` bytes from `src` at
     * `src_offset` into `dst` at `dst_offset`: buffers of two different opened devices of this
     * context for which peer_copy_supported said EXO_OK. Returns when the bytes are in `dst`. The
     * core holds both devices' locks for the call (see "Threads"); a range outside either buffer
     * is EXO_ERR_INVALID_ARG. */
    exo_status (*buffer_copy_peer)(exo_buffer *dst, uint64_t dst_offset, exo_buffer *src, uint64_t src_offset,
                                   uint64_t size);
} exo_plugin_api;

/* The one exported symbol. The core fills out->hdr with its own size and version; the plugin
 * writes at most out->hdr.size bytes, and returns EXO_ERR_ABI_MISMATCH (after writing its own
 * version into out->hdr.version) when the majors differ. */
typedef exo_status (*exo_plugin_entry_fn)(const exo_host_api *host, exo_plugin_api *out);
#define EXO_PLUGIN_ENTRY_SYMBOL "exo_plugin_entry"

#if defined(__GNUC__)
#define EXO_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define EXO_PLUGIN_EXPORT
#endif

/* Defines the exported entry point of a plugin as a call to `fn`. In a MODULE build
 * (EXO_PLUGIN_STATIC undefined) it exports exo_plugin_entry; with EXO_PLUGIN_STATIC it defines
 * exo_plugin_<name>_entry instead, so tests can link several plugins into one binary. */
#ifdef EXO_PLUGIN_STATIC
#define EXO_PLUGIN_DEFINE(name, fn)                                                            \
    exo_status exo_plugin_##name##_entry(const exo_host_api *host, exo_plugin_api *out) {     \
        return fn(host, out);                                                                  \
    }
#else
#define EXO_PLUGIN_DEFINE(name, fn)                                                            \
    EXO_PLUGIN_EXPORT exo_status exo_plugin_entry(const exo_host_api *host, exo_plugin_api *out); \
    EXO_PLUGIN_EXPORT exo_status exo_plugin_entry(const exo_host_api *host, exo_plugin_api *out) { \
        return fn(host, out);                                                                  \
    }
#endif

/* Helper for plugin entry functions: checks the major and fills the table, writing only what
 * fits in the core's struct. Returns EXO_OK or EXO_ERR_ABI_MISMATCH. */
static inline exo_status exo_plugin_fill(exo_plugin_api *out, const exo_plugin_api *mine) {
    if (!out || out->hdr.size < sizeof(exo_struct_header)) return EXO_ERR_INVALID_ARG;
    if (EXO_VERSION_MAJOR(out->hdr.version) != EXO_ABI_MAJOR) {
        out->hdr.version = EXO_ABI_VERSION;
        return EXO_ERR_ABI_MISMATCH;
    }
    uint32_t core_size = out->hdr.size;
    uint32_t n = core_size < sizeof(*mine) ? core_size : (uint32_t)sizeof(*mine);
    const unsigned char *src = (const unsigned char *)mine;
    unsigned char *dst = (unsigned char *)out;
    for (uint32_t k = sizeof(exo_struct_header); k < n; k++) dst[k] = src[k];
    out->hdr.size = n;
    out->hdr.version = EXO_ABI_VERSION;
    return EXO_OK;
}

#ifdef __cplusplus
}
#endif
#endif /* EXO_PLUGIN_H */
