/* Weights reordered into oneDNN's blocked matmul layout, shared by every compiled graph that
 * reads the same weights: a shard compiles a full-output and a last-row graph over one set of
 * weight buffers, and a second reordered copy of a model's matmul weights would cost as much
 * memory again. Entries are keyed by (weight address, N, K, layout), counted by reference and
 * freed with their last user; the weights must outlive the graphs compiled over them (which
 * the ABI requires anyway). Process-wide and thread-safe: the reordered bytes belong to no
 * engine, so plugin contexts can share them. */
#ifndef EXO_CPU_ONEDNN_WEIGHT_CACHE_H
#define EXO_CPU_ONEDNN_WEIGHT_CACHE_H

#include "exo_plugin.h"

#include <oneapi/dnnl/dnnl.h>

#include <stddef.h>
#include <stdint.h>

typedef struct cpu_onednn_weights cpu_onednn_weights;

/* Weights w: n rows of k bf16 values, row-major (the IR's [K, N] weight). Returns them in the
 * layout `md` (bf16, dims {k, n}), reordering them now on `engine`/`stream` unless a live entry
 * holds them already. On failure err says why, naming the tensor `what`. */
exo_status cpu_onednn_weights_acquire(const void *w, int64_t n, int64_t k, const dnnl_memory_desc_t *md,
                                      dnnl_engine_t engine, dnnl_stream_t stream, const char *what,
                                      cpu_onednn_weights **out, char *err, size_t err_size);
void *cpu_onednn_weights_data(const cpu_onednn_weights *e);
uint64_t cpu_onednn_weights_bytes(const cpu_onednn_weights *e);
void cpu_onednn_weights_release(cpu_onednn_weights *e);

/* dnnl_status_t as a word for messages. */
const char *cpu_dnnl_status_name(dnnl_status_t st);

#endif
