/* gpu_kernels.h — from one graph node to the kernel launches that compute it: which kernel of
 * kernels/ (by weight dtype, token count and device features), its arguments in the order of the
 * kernel's parameter list, and its global/local sizes. Runs of nodes computed by one launch are
 * gpu_fusions.h's. */
#ifndef EXO_GPU_KERNELS_H
#define EXO_GPU_KERNELS_H

#include "gpu_launch.h"

/* Enqueues the launches of node `index`. The node passed validation at this token count. */
exo_status gpu_enqueue_node(const gpu_exec_view *v, const exo_node *nd, uint32_t index);

/* Most splits of one head's cache rows in a decode step (each a work-group of EXO_ATT_TILE). */
#define GPU_ATT_MAX_SPLITS 32
#define GPU_ATT_TILE 64 /* EXO_ATT_TILE in kernels/attention.cl */
/* The widest head the grouped-query split attention takes (EXO_ATT_GQA_MAX_DIM, kernels/attention_gqa.cl),
 * and its largest group of query heads (the exo_attention_split_g8* variants; the SPIR-V module's
 * largest is GPU_ATT_GQA_MAX_GROUP_SPIRV). */
#define GPU_ATT_GQA_MAX_DIM 128
#define GPU_ATT_GQA_MAX_GROUP 8
#define GPU_ATT_GQA_MAX_GROUP_SPIRV 4
/* Most query tokens the split attention takes in one launch: a batched decode step of that many
 * sequences (ABI 1.6), or a chunk that short; more take exo_attention_flash* (exo_attention where
 * head_dim is above GPU_ATT_FLASH_MAX_DIM or not a multiple of 4). */
#define GPU_ATT_SPLIT_MAX_TOKENS 16
/* The prompt attention (exo_attention_flash64 / 128, kernels/attention.cl): query tokens and
 * items per work-group (EXO_FA_BQ, EXO_FA_ITEMS there), and the widest head it takes (wider or
 * head_dim not a multiple of 4: exo_attention). */
#define GPU_ATT_FLASH_QUERIES 32
#define GPU_ATT_FLASH_ITEMS 128
#define GPU_ATT_FLASH_MAX_DIM 128
/* Floats of partial state the split decode attention needs for a node with these heads and up to
 * `tokens` query tokens. */
#define GPU_ATT_PARTIAL_FLOATS(n_heads, head_dim, tokens) \
    ((uint64_t)(tokens) * (uint64_t)(n_heads) * GPU_ATT_MAX_SPLITS * ((uint64_t)(head_dim) + 2))

/* The split decode attention (kernels/attention.cl) of ATTENTION node nd, up to
 * GPU_ATT_SPLIT_MAX_TOKENS tokens, v->attn_position known and v->attn_partials there: its first
 * launch, exo_attention_split, which leaves gpu_attention_split_count splits' partial states per
 * (token, head) in v->attn_partials for exo_attention_combine, or for an o_proj launch that merges
 * them while it stages x (gpu_fusions.c, "attention + o_proj"). */
exo_status gpu_enqueue_attention_splits(const gpu_exec_view *v, const exo_node *nd, int64_t tokens);
int64_t gpu_attention_split_count(const gpu_exec_view *v, const exo_node *nd);
/* Whether ATTENTION node nd has sinks (src[4], ABI 1.5; a pooled cache's slots come after). */
bool gpu_attention_has_sinks(const gpu_exec_view *v, const exo_node *nd);

/* A KV cache's rows per sequence (ctx): its outermost extent, or for a pooled cache (ABI 1.6,
 * 4-D [n_slots][ctx][n_kv_heads][head_dim]) the one inside the slots. */
int64_t gpu_cache_rows(const gpu_exec_view *v, uint32_t cache);
/* The slots arguments of the kernels that index a cache (kernels/common.cl, exo_slot_row0):
 * for a pooled `cache`, node nd's slots source (its last) and the pool's slot count; for an
 * unpooled one, `stand_in` (an I32 tensor the kernel never reads then) and 0. It also makes the
 * launch the kernel's variant for the cache's dtype (ABI 1.7: exo_attention_bf16 for
 * exo_attention over a BF16 cache; kernels/common.cl, EXO_KV_VARIANTS), as every launch that
 * indexes a cache passes through here: exo_kv_write, exo_rope_kv, exo_attention and
 * exo_attention_split. */
void gpu_build_kv_slots(gpu_builder *b, const exo_node *nd, uint32_t cache, uint32_t stand_in);

/* Work-group sizes the kernels assume (kernels/); a device must allow GPU_MIN_WORK_GROUP. */
#define GPU_MIN_WORK_GROUP 256
/* ARGMAX's items per row (EXO_ARGMAX_WG in kernels/argmax.cl, its reqd_work_group_size). */
#define GPU_ARGMAX_WG 256

#endif
