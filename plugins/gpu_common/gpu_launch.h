/* gpu_launch.h — building one kernel launch: its arguments in the order of the kernel's parameter
 * list (kernels/), its global and local sizes, and what choosing a kernel needs to know of the
 * tensors in the current execution (shapes at its token count, placement). Shared by the per-node
 * launches (gpu_kernels.c) and the fused ones (gpu_fusions.c). */
#ifndef EXO_GPU_LAUNCH_H
#define EXO_GPU_LAUNCH_H

#include "gpu_backend.h"

#include <stdbool.h>

struct gpu_moe_plan;

/* Where every tensor of the graph lives for the current execution. */
typedef struct gpu_exec_view {
    const gpu_backend *be;
    const exo_tensor *tensors;
    gpu_mem **mem;     /* per tensor */
    uint64_t *offset;  /* per tensor, bytes into mem */
    uint32_t n_tokens;
    /* Split decode attention (exo_attention_split + exo_attention_combine): room for the
     * per-split states of GPU_ATT_MAX_SPLITS splits of every head of GPU_ATT_SPLIT_MAX_TOKENS
     * tokens (NULL: not available), and the largest position among the tokens of the node being
     * enqueued (-1: not known on the host). */
    gpu_mem *attn_partials;
    int64_t attn_position;
    /* The MoE expert tables and prefill work area (gpu_moe.h). */
    const struct gpu_moe_plan *moe;
} gpu_exec_view;

/* Token counts up to this use the matrix-vector kernels (weights read once per row). */
#define GPU_MATVEC_MAX_TOKENS 4 /* EXO_MV_MAX_M in kernels/matmul.cl */
/* Token counts of a batched decode step (one row per sequence) take the batched-step matvecs
 * (kernels/matvec_batch.cl, exo_matmul_vecb<8|16>*): every weight read once for all rows, R x
 * tokens sums per item in registers. Defaults of gpu_features.matvec_batch_min / _max; the
 * kernels take at most GPU_MATVEC_BATCH_MAX_TOKENS (gpu_backend.h). */
#define GPU_MATVEC_BATCH_MIN_DEFAULT 5
#define GPU_MATVEC_BATCH_MAX_DEFAULT 16
/* The prefill GEMM takes the largest block of (tokens x weight rows) that leaves at least this
 * many work-groups, about two per multiprocessor of a big GPU. */
#define GPU_GEMM_MIN_GROUPS 256

/* A tensor's element count at the execution's token count (ne: its resolved shape, or NULL). */
int64_t gpu_view_count(const gpu_exec_view *v, uint32_t tensor, int64_t ne[EXO_MAX_DIMS]);
/* Its outermost extent (a cache's rows). */
int64_t gpu_view_outer_dim(const gpu_exec_view *v, uint32_t tensor);
/* Whether tensors a and b share bytes in this execution. */
bool gpu_view_overlaps(const gpu_exec_view *v, uint32_t a, uint32_t b);
/* Whether matmul nd (inner size k) may take a wide-load matvec kernel (exo_matmul_vec16*). */
bool gpu_view_wide_loads_fit(const gpu_exec_view *v, const exo_node *nd, int64_t k);
/* The kernel-name suffix of a weight dtype: "f32", "f16", "bf16". */
const char *gpu_dtype_suffix(exo_dtype t);
/* The vec16 kernels' suffix of weight w (its storage): a float dtype's, or "mlx4" / "mlx8". */
const char *gpu_weight_suffix(const exo_tensor *w);
/* Whether weights a and b take one vec16 kernel together (exo_matmul_vec16x3_*,
 * exo_matmul_vec16_glu_*): one dtype, and for MLX_AFFINE one bits, group and scale dtype (the
 * kernel takes q_type and group once). */
bool gpu_same_weight_format(const gpu_exec_view *v, uint32_t a, uint32_t b);

typedef struct gpu_builder {
    const gpu_exec_view *v;
    gpu_launch l;
} gpu_builder;

void gpu_build_start(gpu_builder *b, const gpu_exec_view *v, const char *kernel);
/* A tensor as a MEM argument: its memory and its element offset in units of its dtype. */
void gpu_build_tensor(gpu_builder *b, uint32_t tensor);
void gpu_build_mem(gpu_builder *b, gpu_mem *mem, uint32_t element_offset);
/* A weight as the vec16 kernels take it (kernels/matmul.cl, EXO_W_PARAMS_*): a float one as
 * one MEM argument; an MLX_AFFINE one as its words (offset in words), scales and biases. */
void gpu_build_weight(gpu_builder *b, uint32_t tensor);
/* What the weights of one vec16 launch share, its last arguments (EXO_Q_PARAMS_*): nothing for
 * float weights; q_type (the scales' dtype) and group for MLX_AFFINE. */
void gpu_build_weight_format(gpu_builder *b, uint32_t tensor);
/* An MLX_AFFINE weight as the other quantized kernels take it: gpu_build_weight's three, then
 * the scales' dtype, bits and group (exo_matmul_vec_mlx, exo_matmul_tiled_mlx, exo_get_rows_mlx). */
void gpu_build_mlx_weight(gpu_builder *b, uint32_t tensor);
void gpu_build_u32(gpu_builder *b, uint64_t x);
void gpu_build_i32(gpu_builder *b, int64_t x);
void gpu_build_f32(gpu_builder *b, float x);
/* The matmul kernels' common head: x, W (gpu_build_weight), bias, has_bias, y, m, k, n. */
void gpu_build_matmul_args(gpu_builder *b, const exo_node *nd, uint32_t bias, int64_t m, int64_t k, int64_t n);

/* Enqueues the launch: `count` items per dimension rounded up to work-groups of `local`. */
exo_status gpu_build_go(gpu_builder *b, uint32_t dims, const uint64_t count[3], const size_t local[3]);
/* One dimension of `count` items, work-groups of 256. */
exo_status gpu_build_go_1d(gpu_builder *b, uint64_t count);
/* A wide-load matvec kernel over `rows` work-item rows of inner size k (weight rows divided by
 * gpu_matvec_rows_per_item). */
exo_status gpu_build_go_matvec(gpu_builder *b, int64_t k, int64_t rows);
/* The same for a launch of m tokens against `weight`: the batched-step kernels' geometry where m
 * takes them (gpu_matvec_batch; the tensor-core ones': a work-group per row group), else
 * gpu_build_go_matvec's. */
exo_status gpu_build_go_matvec_at(gpu_builder *b, int64_t m, int64_t k, int64_t rows, uint32_t weight);
/* Weight rows per work-item of exo_matmul_vec16 / vec16x3 launches at m tokens against `weight`
 * (their `rpi` argument): 2 at one token unless the backend asks for 1 (gpu_features.matvec_rows),
 * else 1; the batched-step kernels' R (4 for up to 8 tokens, 2 for up to 16) where m takes them,
 * and the tensor-core ones' rows per work-group (GPU_MATVEC_MMA_ROWS). */
#define GPU_MATVEC_ROWS_DEFAULT 2
uint32_t gpu_matvec_rows_per_item(const gpu_exec_view *v, int64_t m, uint32_t weight);
/* Whether m tokens take the batched-step matvecs on this backend (gpu_features.matvec_batch_*). */
bool gpu_matvec_batch(const gpu_exec_view *v, int64_t m);
/* Whether they take the tensor-core batched-step kernels against `weight` (exo_matmul_mmab8*,
 * kernels/matvec_batch_mma.cl): gpu_features.mma_batch, at most GPU_MATVEC_MMA_MAX_TOKENS, bf16
 * weights, k a multiple of 32. */
#define GPU_MATVEC_MMA_MAX_TOKENS 8
bool gpu_matvec_batch_mma(const gpu_exec_view *v, int64_t m, uint32_t weight);
/* Their weight rows per work-group against `weight` (EXO_MMAB_ROWS): GPU_MATVEC_MMA_ROWS in
 * GPU_MATVEC_MMA_ITEMS items, or, for a weight of fewer rows than GPU_MATVEC_BATCH_MIN_GROUPS
 * such groups (too few to fill a big GPU), 16 in GPU_MATVEC_MMA_ITEMS_R16 (the "r16" kernels)
 * where the device takes work-groups that large; gpu_features.mma_batch_rows fixes it. */
#define GPU_MATVEC_MMA_ROWS 32
#define GPU_MATVEC_MMA_ITEMS 256
#define GPU_MATVEC_MMA_ITEMS_R16 512
#define GPU_MATVEC_BATCH_MIN_GROUPS 256 /* work-groups that keep a big GPU busy */
uint32_t gpu_matvec_mma_rows(const gpu_exec_view *v, uint32_t weight);
/* Whether a wide-load matvec kernel (one-token family or batched-step) takes m tokens. */
bool gpu_matvec_tokens_fit(const gpu_exec_view *v, int64_t m);
/* The name of a wide-load matvec family at m tokens against `weight`: `family`
 * ("exo_matmul_vec16", "exo_matmul_vec16x3") as it is, or its batched-step counterpart
 * (exo_matmul_vecb<T>, exo_matmul_vecb<T>x3, or exo_matmul_mmab8...: same parameters) where m
 * takes those kernels. Into name[48]. */
void gpu_matvec_family(const gpu_exec_view *v, int64_t m, uint32_t weight, const char *family, char name[48]);

#endif
