/* Test helpers for the cpu_amx plugin: load and open the plugin, build small graphs tensor by
 * tensor, bind every INPUT/OUTPUT/KV tensor to its own buffer, execute, and compare results. */
#ifndef EXO_CPU_TEST_GRAPH_H
#define EXO_CPU_TEST_GRAPH_H

#include "test_host.h"

#include <stdint.h>

#define TG_MAX_TENSORS 64
#define TG_MAX_NODES 32

typedef struct cpu_fixture {
    exo_test_host host;
    exo_plugin_api api;
    exo_plugin_ctx *ctx;
} cpu_fixture;

/* Loads the plugin from the build tree and opens device 0 with `threads` workers (0: all). */
void fx_open(cpu_fixture *f, uint32_t threads);
void fx_close(cpu_fixture *f);

typedef struct tgraph {
    cpu_fixture *fx;
    exo_tensor tensors[TG_MAX_TENSORS];
    exo_node nodes[TG_MAX_NODES];
    exo_buffer *buffers[TG_MAX_TENSORS]; /* weight buffers (exo_graph.buffers) */
    exo_buffer *bound[TG_MAX_TENSORS];   /* per tensor: buffer of INPUT/OUTPUT/KV tensors */
    uint32_t n_tensors, n_nodes, n_buffers, max_tokens;
} tgraph;

void tg_init(tgraph *g, cpu_fixture *fx, uint32_t max_tokens);
void tg_free(tgraph *g);
/* A tensor with up to 4 dims (ne0 innermost; pass 0 for absent dims). */
uint32_t tg_tensor(tgraph *g, const char *name, exo_dtype dtype, uint32_t flags, int64_t ne0, int64_t ne1,
                   int64_t ne2, int64_t ne3);
/* A WEIGHT tensor in its own buffer, filled with `data` (bytes as the dtype lays them out). */
uint32_t tg_weight(tgraph *g, const char *name, exo_dtype dtype, const void *data, int64_t ne0, int64_t ne1);
uint32_t tg_node(tgraph *g, exo_op op, uint32_t dst, uint32_t n_src, const uint32_t *src);
exo_graph tg_graph(const tgraph *g);
/* Allocates buffers for every bound tensor (sized for max_tokens); call before tg_write/tg_run. */
void tg_alloc_bound(tgraph *g);
void tg_write(tgraph *g, uint32_t tensor, const void *data, uint64_t bytes);
void tg_read(tgraph *g, uint32_t tensor, void *data, uint64_t bytes);
/* Binds all bound tensors and executes; returns the plugin's status. */
exo_status tg_run(tgraph *g, exo_compiled *c, uint32_t n_tokens);

/* Deterministic uniform floats in [lo, hi). */
void tg_random(float *out, int64_t n, float lo, float hi, uint32_t seed);
uint16_t tg_f32_to_bf16(float f); /* round to nearest even */
uint16_t tg_f32_to_f16(float f);  /* round to nearest even, normal range */
double tg_bf16_to_f64(uint16_t h);
/* n deterministic values in [-1, 1) stored as `type` (F32, F16, BF16, or Q8_0 with scale
 * 1/127); malloc'd. */
void *tg_weights_of(exo_dtype type, int64_t n, uint32_t seed);

/* Three matmuls reading one input x [tokens][TG_GROUP_K], of widths 128, 48 and 80 (the middle
 * one with a bias) and the given weight types: the grouped-matmul graphs of the CPU tests. */
#define TG_GROUP_K 192
typedef struct tg_matmul_group {
    uint32_t x, out[3];
    int64_t n[3];
    void *w[3];
    float *bias;
} tg_matmul_group;
void tg_build_matmul_group(tgraph *g, const exo_dtype types[3], tg_matmul_group *mg);
void tg_matmul_group_free(tg_matmul_group *mg);
double tg_f16_to_f64(uint16_t h);
/* sum((a - b)^2) / sum(b^2) */
double tg_nmse(const float *a, const double *b, int64_t n);
double tg_nmse_f(const float *a, const float *b, int64_t n);

#endif
