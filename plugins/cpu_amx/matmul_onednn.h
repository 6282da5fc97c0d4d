/* Prefill matmuls through oneDNN in bf16, the path that reaches AMX: on a CPU with AMX tiles
 * that Linux lets this process use, oneDNN's bf16 x bf16 -> f32 matmul runs on the tile unit
 * (avx512_core_amx), several times the f32 FMA rate. Activations are rounded to bf16 for it,
 * which is the precision AMX prefill costs everywhere (llama.cpp, IPEX do the same); decode
 * (a few tokens) stays on the own f32-accumulating kernels, which are bound by memory anyway.
 *
 * The switch EXO_CPU_ONEDNN (read through the host's get_env):
 *   auto (default): only where AMX is usable and oneDNN dispatches to it;
 *   on:  also without AMX (oneDNN then runs avx512_core_bf16: slower than the own f32 GEMM,
 *        but it exercises this path on machines without AMX);
 *   off: never.
 * A graph compiled with the path on reorders the bf16 weights of its MATMUL nodes once into
 * oneDNN's preferred blocked layout (shared with other compiled graphs reading the same
 * weights: a shard compiles a full-output and a last-row graph over one set of buffers) and
 * keeps primitives per (N, K, bias) for the last few token counts seen. */
#ifndef EXO_CPU_MATMUL_ONEDNN_H
#define EXO_CPU_MATMUL_ONEDNN_H

#include "cpu_plugin.h"
#include "threadpool.h"

#include <stdbool.h>
#include <stdint.h>

/* Fewer rows than this stay on the own kernels: below it the matmul is closer to a matrix-vector
 * product, bound by reading the weights, and bf16 rounding would buy nothing. */
#define CPU_ONEDNN_MIN_ROWS 32
/* In auto mode, weights smaller than this (elements) stay on the own GEMM. */
#define CPU_ONEDNN_AUTO_MIN_WEIGHT (2048 * 2048)

typedef struct cpu_onednn cpu_onednn;

/* Decides whether graph g's prefill matmuls take oneDNN, logs the decision and its reason at
 * INFO and, if they do, creates the engine, reorders the weights and creates the primitives
 * for max_tokens rows. *out stays NULL when the path is off for this graph, which is not an
 * error. Fails on a bad EXO_CPU_ONEDNN value, and when EXO_CPU_ONEDNN=on but oneDNN cannot
 * create the bf16 matmul here. n_threads: the plugin pool's size, given to OpenMP. */
exo_status cpu_onednn_create(exo_plugin_ctx *ctx, const exo_graph *g, uint32_t n_threads, cpu_onednn **out);
void cpu_onednn_free(cpu_onednn *o);

/* Whether MATMUL node `node` runs through oneDNN at `rows` rows of x. */
bool cpu_onednn_takes(const cpu_onednn *o, uint32_t node, int64_t rows);

/* Rounds x (rows x k floats) to bf16 into o's activation buffer, on the plugin's pool. One
 * call serves every following cpu_onednn_matmul that reads the same x. */
void cpu_onednn_load_x(cpu_onednn *o, cpu_threadpool *pool, const float *x, int64_t rows, int64_t k);

/* dst[rows][n] = x_bf16 . W^T (+ bias[n]) for MATMUL node `node`, on oneDNN's OpenMP threads
 * (the plugin's pool is idle meanwhile). Creates the primitive for a row count not seen yet. */
exo_status cpu_onednn_matmul(cpu_onednn *o, uint32_t node, int64_t rows, const float *bias, float *dst);

#endif
