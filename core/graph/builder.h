/* The graph builder: (architecture config, weights, layer range [start, end)) -> a graph in
 * the plugin IR (abi/exo_plugin.h). Architecture knowledge lives here and in model/config.c
 * only; plugins never see architecture names. */
#ifndef EXO_GRAPH_BUILDER_H
#define EXO_GRAPH_BUILDER_H

#include <stdbool.h>

#include "model/config.h"
#include "model/safetensors.h"

/* A weight buffer the shard must create on the device: a tensor of the checkpoint (used in
 * place where the device allows) or a constant the builder computed (RoPE frequencies, f32
 * copies of biases). */
typedef struct exo_plan_buffer {
    const void *data;
    uint64_t size;
    void *owned;      /* malloc'd constant data (NULL for checkpoint tensors) */
    int32_t layer;    /* layer it belongs to, -1 for embedding/head/constants (load progress) */
    char name[96];
    bool heap;        /* data the builder computed and a exo_quant_cache holds (quantized on load):
                       * takes memory like `owned`, but is freed with the cache, not the plan */
} exo_plan_buffer;

/* Weights quantized while loading (exo_shard_options.quantize_bits/_group) to MLX affine, held
 * once per shard and shared by its plans (full and last-row): an entry per checkpoint tensor. */
typedef struct exo_quant_entry {
    char name[96];
    void *data;            /* packed words, then scales, then biases */
    uint64_t words_bytes, scales_bytes;
} exo_quant_entry;

typedef struct exo_quant_cache {
    uint32_t bits, group;  /* 0 bits: nothing is quantized */
    exo_quant_entry *items;
    uint32_t n, cap;
} exo_quant_cache;

void exo_quant_cache_free(exo_quant_cache *cache);

typedef struct exo_graph_plan {
    exo_tensor *tensors;
    uint32_t n_tensors, cap_tensors;
    exo_node *nodes;
    uint32_t n_nodes, cap_nodes;
    exo_plan_buffer *buffers;
    uint32_t n_buffers, cap_buffers;

    uint32_t start, end;   /* layer range */
    bool embeds;           /* input is token ids */
    bool has_head;         /* output is logits */
    uint32_t max_tokens;
    uint32_t max_ctx;      /* KV rows per layer */

    uint32_t in_tokens;    /* I32 [T] or UINT32_MAX */
    uint32_t in_hidden;    /* F32 [T, hidden] or UINT32_MAX */
    uint32_t in_positions; /* I32 [T] */
    uint32_t in_output_row;/* I32 [1] (or [selected_rows]): the rows whose logits a last-row graph computes, or UINT32_MAX */
    uint32_t output;       /* F32 [T, vocab] or [T, hidden]; [1, vocab] for a last-row graph */
    /* Head graphs: I32 [rows of output] = each row's greedy token (EXO_OP_ARGMAX over the
     * logits, the graph's last node, which exo_graph_plan_view leaves out for a plugin below ABI
     * 1.10), or UINT32_MAX. An OUTPUT tensor: always bound, read only by a greedy step. */
    uint32_t out_argmax;
    uint32_t *kv;          /* 2 per layer of the range: K then V, [max_ctx, n_kv, head_dim] of kv_dtype */
    uint32_t n_kv;
    void *tensors_1_0;     /* the tensors repacked at the ABI 1.0 stride (exo_graph_plan_view), or NULL */
    /* Pooled KV caches (ABI 1.6; graph/kv_pool.h): 0 = one cache per session (as built);
     * otherwise the KV tensors are pools of kv_slots sessions and in_slots is I32 [T]. */
    uint32_t kv_slots;
    uint32_t in_slots;
    /* The KV tensors' dtype (ABI 1.7, "KV cache dtypes"; graph/kv_pool.h): F32 as built. */
    exo_dtype kv_dtype;
} exo_graph_plan;

/* What a graph computes at its ends. */
typedef struct exo_graph_ends {
    bool embeds;          /* starts from token ids (else from hidden states) */
    bool head;            /* ends with the final norm and lm_head (else with hidden states) */
    bool last_row_only;   /* with head: logits of one selected row only (decode, sampling) */
    /* With head, above 1: logits of this many selected rows (in_output_row I32 [selected_rows]),
     * the rows a batched step samples from (run/batch.c); last_row_only is selected_rows 1. */
    uint32_t selected_rows;
} exo_graph_ends;

/* Builds the graph of layers [start, end). The weight buffers are listed in the same order
 * whatever the ends' last_row_only says, so the two variants of a shard share their buffers.
 * Errors name the model directory and the missing or malformed tensor. */
exo_status exo_graph_plan_build(const exo_model_config *cfg, exo_weights *weights, const char *model_dir,
                                uint32_t start, uint32_t end, exo_graph_ends ends, uint32_t max_tokens,
                                uint32_t max_ctx, exo_graph_plan *out);
/* The largest weight buffer a layer's per-expert tensors share by default: 4 GiB keeps every
 * float element within the GPU kernels' 32-bit element offsets. */
#define EXO_GRAPH_MAX_SHARED_BUFFER ((uint64_t)4 << 30)

/* exo_graph_plan_build, quantizing on load: with cache->bits set, every 2-D float linear weight
 * and the embedding whose input width is a multiple of cache->group becomes an MLX_AFFINE weight
 * (mlx.core.quantize's arithmetic; scales and biases in the checkpoint's float dtype) kept in
 * `cache`, which must outlive the plan. Norms, biases, MoE experts and routers stay float.
 * max_buffer (0: EXO_GRAPH_MAX_SHARED_BUFFER, and never above it) bounds the buffers that a
 * layer's per-expert tensors share (the smallest largest-allocation of the devices the shard
 * may land on). */
exo_status exo_graph_plan_build_quantized(const exo_model_config *cfg, exo_weights *weights, const char *model_dir,
                                          uint32_t start, uint32_t end, exo_graph_ends ends, uint32_t max_tokens,
                                          uint32_t max_ctx, exo_quant_cache *cache, uint64_t max_buffer,
                                          exo_graph_plan *out);
/* Tensor parallelism (core/run/tensor_parallel.c, docs/placement.md): one device's slice of one
 * layer, cut at the two all-reduces. The attention half takes the layer's input hidden states and
 * gives its o_proj output for this rank's heads (q/k/v rows and o_proj columns of heads
 * [rank, rank + 1) x n_heads / n_ranks, KV heads likewise, its own KV cache of those heads); the
 * MLP half takes the hidden states after attention's residual and gives its down_proj output for
 * this rank's columns of the intermediate width (gate/up rows, down_proj columns). Neither adds
 * the residual: the caller sums the ranks' outputs and adds it (the all-reduce). Output biases
 * (o_proj, down_proj) join rank 0's output only. A sparse (MoE) layer's MLP half is not split:
 * build it with n_ranks 1. Weights are copied out of the checkpoint, so a device holds its slice
 * only; MLX-quantized columns are cut on group boundaries; with `cache` bits set (quantize on
 * load) a float checkpoint's slices are quantized in the groups one device would use. */
typedef enum exo_graph_half { EXO_GRAPH_HALF_ATTENTION = 1, EXO_GRAPH_HALF_MLP = 2 } exo_graph_half;

typedef struct exo_graph_slice {
    uint32_t rank, n_ranks;
    exo_graph_half half;
} exo_graph_slice;

/* Whether the model's layer l can be split over n_ranks (heads, KV heads and the dense
 * intermediate width divide): EXO_OK, else EXO_ERR_INVALID_ARG with the reason. */
exo_status exo_graph_slice_check(const exo_model_config *cfg, uint32_t l, uint32_t n_ranks);

/* The graph of one half of layer l for one rank: input hidden states [T, hidden], output the
 * partial [T, hidden] before the all-reduce. */
exo_status exo_graph_plan_build_slice(const exo_model_config *cfg, exo_weights *weights, const char *model_dir,
                                      uint32_t l, const exo_graph_slice *slice, uint32_t max_tokens, uint32_t max_ctx,
                                      exo_quant_cache *cache, exo_graph_plan *out);

/* The device self-benchmark's graph (bench_graph.c): x [T, k] f32 in, times an [n, k] f32 weight
 * the plan owns, y [T, n] f32 out. */
exo_status exo_graph_plan_build_matmul(uint32_t k, uint32_t n, uint32_t max_tokens, exo_graph_plan *out);

/* Re-sizes a built plan: rows per step and KV cache positions (the KV tensors' outermost dimension).
 * Nothing else in a plan depends on them, so a shard fitted to its device's memory keeps its graph. */
void exo_graph_plan_resize(exo_graph_plan *plan, uint32_t max_tokens, uint32_t max_ctx);
void exo_graph_plan_free(exo_graph_plan *plan);

/* The graph as a plugin of the negotiated `abi_version` sees it; `buffers` are the device buffers
 * created for plan->buffers. A plugin below ABI 1.2 gets the tensors repacked at the 1.0 stride
 * (kept in the plan until the next view or plan_free). EXO_ERR_NO_MEMORY when repacking fails. */
exo_status exo_graph_plan_view(exo_graph_plan *plan, exo_buffer *const *buffers, uint32_t abi_version, exo_graph *out);

#endif
