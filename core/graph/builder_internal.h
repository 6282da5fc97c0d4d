/* builder_internal.h — the graph builder's steps, shared by the files of core/graph: builder.c
 * (tables, weights, the decoder layer, the whole range) and moe_layer.c (the mixture-of-experts
 * MLPs). Not part of the core's interface. */
#ifndef EXO_GRAPH_BUILDER_INTERNAL_H
#define EXO_GRAPH_BUILDER_INTERNAL_H

#include "builder.h"

#include <stddef.h>

#define NONE UINT32_MAX

/* The builder's state. Errors are sticky (as SQLite's sqlite3_str): the first failing step
 * records its status in `st` (its detail is already in the thread's error), and every later
 * step is a no-op that returns NONE, so a build reads top-down and checks `st` once at the end.
 * Steps that hand out an element to fill (gb_node(), gb_tensor_at()) hand out a sink after a
 * failure: writes to it are harmless and never reach the plan. */
typedef struct builder {
    exo_graph_plan *plan;
    const exo_model_config *cfg;
    exo_weights *weights;
    const char *dir;
    exo_quant_cache *q;   /* quantize on load (bits set) and re-laid-out weights, or NULL */
    uint64_t max_buffer;  /* the largest weight buffer expert tensors may share (gb_expert_spans) */
    const exo_graph_slice *slice;   /* tensor parallelism: one rank's half layer (cfg is the rank's
                                     * shapes: heads, KV heads, intermediate / n_ranks), or NULL */
    const exo_model_config *full;   /* with slice: the model's own config */
    exo_status st;
    exo_node sink_node;
    exo_tensor sink_tensor;
} builder;

bool gb_failed(const builder *b);
/* Records the first error; returns NONE for the failing step's result. */
uint32_t gb_fail(builder *b, exo_status st);
/* Grows a table of item_size items to hold `need`. */
exo_status gb_grow(void **items, uint32_t *cap, uint32_t need, size_t item_size);
/* A tensor of the plan to adjust, or the sink after a failure. */
exo_tensor *gb_tensor_at(builder *b, uint32_t id);
/* Makes tensor id an MLX affine weight: its bits, group and scales / biases tensors. Returns id,
 * or NONE after a failure (of this builder's earlier steps too). */
uint32_t gb_set_mlx(builder *b, uint32_t id, uint32_t bits, uint32_t group, uint32_t scales, uint32_t biases);
/* Adds a tensor; dims are given outermost first (as in PyTorch), stored innermost first. */
uint32_t gb_tensor(builder *b, exo_dtype dtype, uint32_t flags, const char *name, uint32_t n_dims,
                   const int64_t *dims);
/* An intermediate activation [T, d0] (n_inner 1) or [T, d0, d1] (n_inner 2). */
uint32_t gb_activation(builder *b, const char *name, uint32_t n_inner, int64_t d0, int64_t d1);
/* Adds a node; its parameters are set through the returned pointer (valid until the next node). */
exo_node *gb_node(builder *b, exo_op op, uint32_t dst, uint32_t n_src, const uint32_t *src);
/* Adds a weight buffer and returns its index (-1 after a failure). Takes `owned` in all cases. */
int32_t gb_add_buffer(builder *b, const void *data, uint64_t size, void *owned, int32_t layer, const char *name);
/* Adds a buffer over data an exo_quant_cache holds (freed with the cache, not the plan). */
int32_t gb_add_heap_buffer(builder *b, const void *data, uint64_t size, int32_t layer, const char *name);
/* Lets the kernel reclaim a checkpoint tensor's file pages once the builder has copied it. */
void gb_drop_pages(const exo_st_tensor *t);
/* Looks a float checkpoint tensor up and checks its shape (outermost first) and dtype. */
exo_status gb_checkpoint(builder *b, const char *name, uint32_t n_dims, const int64_t *shape,
                         const exo_st_tensor **out);
/* The module path of a ".weight" the checkpoint MLX-quantized (it has "<module>.scales"). */
bool gb_quantized_module(const builder *b, const char *name, uint32_t n_dims, char *module, size_t size);
float gb_to_f32(const void *data, exo_dtype dtype, uint64_t i);
/* Whether a float weight of this name and shape is quantized on load (b->q bits set): the rule
 * one device applies (a linear ".weight" or the embedding, input width a multiple of the group,
 * no MoE experts or routers). */
bool gb_quantizes(const builder *b, const char *name, uint32_t n_dims, const int64_t *shape);
/* MLX affine quantization of `rows` rows of k values of t's data (t->dtype), in groups of
 * `group` (MLX's CPU quantizer's arithmetic): packed words [rows, k * bits / 32], scales and
 * biases [rows, k / group] of t->dtype. */
void gb_quantize_rows(const exo_st_tensor *t, int64_t rows, int64_t k, uint32_t bits, uint32_t group,
                      uint32_t *words, void *scales, void *biases);
/* A weight used as stored (float, or MLX-quantized with its scales and biases). */
uint32_t gb_weight(builder *b, const char *name, int32_t layer, uint32_t n_dims, const int64_t *shape);
/* A constant f32 weight of n values the builder owns (`values`, taken in all cases). */
uint32_t gb_constant_f32(builder *b, float *values, int64_t n, int32_t layer, const char *name);
/* A small vector (bias) as an f32 constant, whatever its stored dtype. */
uint32_t gb_vector_f32(builder *b, const char *name, int32_t layer, int64_t n);
/* "model.layers.<layer>.<suffix>" in out. */
const char *gb_lname(char *out, size_t size, uint32_t layer, const char *suffix);
/* matmul(h, W) (+ bias): [T, d0], or [T, d0, d1] when d1 > 0. */
uint32_t gb_projection(builder *b, uint32_t l, uint32_t h, uint32_t w, const char *bias_name, int64_t d0, int64_t d1,
                       const char *out_name);
uint32_t gb_add(builder *b, uint32_t x, uint32_t y, int64_t width, const char *name);

/* One checkpoint tensor of a layer's expert tables, for gb_expert_spans (expert_spans.c). */
typedef struct gb_span_item {
    const char *file;           /* the file holding it: a span never crosses files */
    const uint8_t *data;        /* its bytes in the file's mapping */
    uint64_t nbytes;
    uint32_t align;             /* its element size */
    uint32_t span;              /* out: its span */
    uint64_t offset;            /* out: its byte offset in the span */
} gb_span_item;

/* One weight buffer over a byte range of a checkpoint file. */
typedef struct gb_span {
    const char *file;
    const uint8_t *data;
    uint64_t size;
    uint32_t n_items;
} gb_span;

/* Groups items (in any order) into spans, each one weight buffer over a range of one file that
 * holds several of them: ranges of at most max_bytes in which the tensors take at least 4/5 of
 * the bytes, each tensor aligned to its elements. A tensor that joins no other gets a span of
 * its own bytes (a buffer of its own, as any weight has). `spans` has room for n. */
exo_status gb_expert_spans(gb_span_item *items, uint32_t n, uint64_t max_bytes, gb_span *spans, uint32_t *n_spans);

/* ---- tensor_slice.c: one rank's part of the weights a slice splits. */
/* With b->slice: the rank's part of weight `name` of local shape `shape` (copied out of the
 * checkpoint), or NONE with *handled false when the weight is not split (the caller reads it whole). */
uint32_t gb_slice_weight(builder *b, const char *name, int32_t layer, uint32_t n_dims, const int64_t *shape,
                         bool *handled);
/* The same for a vector read as f32 (biases, attention sinks); output biases are rank 0's alone. */
uint32_t gb_slice_vector(builder *b, const char *name, int32_t layer, int64_t n, bool *handled);

/* The MLP of a sparse layer l over the normed input h (moe_layer.c); returns its [T, H] output. */
uint32_t gb_moe_mlp(builder *b, uint32_t l, uint32_t h);

#endif
