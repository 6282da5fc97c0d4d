/* op_harness.h — runs small graphs on two plugins (the OpenCL plugin and the CPU plugin, whose
 * plain-C reference kernels are the oracle) from one description, so a test states a graph once
 * and compares what both compute. Tensors are bound to their own buffers; weights get their own
 * buffer, optionally at an offset (as slices of a fused weight are). */
#ifndef EXO_OP_HARNESS_H
#define EXO_OP_HARNESS_H

#include "test_host.h"

#include <stdint.h>

#define OH_MAX_TENSORS 24
#define OH_MAX_NODES 12

typedef struct oh_device {
    exo_test_host host;
    exo_plugin_api api;
    exo_plugin_ctx *ctx;
} oh_device;

/* Loads plugin `name` from the build tree, probes, opens device 0. Returns 0 on success, else
 * fills `why`. */
int oh_open(oh_device *d, const char *name, char *why, size_t why_size);
void oh_close(oh_device *d);

typedef struct oh_graph {
    exo_tensor tensors[OH_MAX_TENSORS];
    exo_node nodes[OH_MAX_NODES];
    const void *weight_data[OH_MAX_TENSORS]; /* WEIGHT tensors: their bytes */
    uint64_t weight_offset[OH_MAX_TENSORS];  /* WEIGHT tensors: where they sit in their buffer */
    uint64_t bind_offset[OH_MAX_TENSORS];    /* bound tensors: the same, their binding's offset (0) */
    uint32_t n_tensors, n_nodes, max_tokens;
} oh_graph;

void oh_init(oh_graph *g, uint32_t max_tokens);
uint32_t oh_tensor(oh_graph *g, const char *name, exo_dtype dtype, uint32_t flags, uint32_t n_dims, int64_t ne0,
                   int64_t ne1, int64_t ne2);
uint32_t oh_weight(oh_graph *g, const char *name, exo_dtype dtype, const void *data, uint64_t offset, uint32_t n_dims,
                   int64_t ne0, int64_t ne1);
/* Adds a node; returns its index. i/f may be NULL. */
uint32_t oh_node(oh_graph *g, exo_op op, uint32_t dst, uint32_t n_src, const uint32_t *src, const int32_t *i,
                 uint32_t n_i, const float *f, uint32_t n_f);
uint64_t oh_bytes(const oh_graph *g, uint32_t tensor, uint32_t n_tokens);

/* One graph compiled on one device, with its buffers. */
typedef struct oh_run {
    oh_device *d;
    const oh_graph *g;
    exo_buffer *buf[OH_MAX_TENSORS];
    exo_compiled *compiled;
} oh_run;

/* Uploads weights, allocates bound buffers (zeroed) and compiles. Returns the status. oh_write,
 * oh_read and oh_exec address a bound tensor at its bind_offset. */
exo_status oh_start(oh_run *r, oh_device *d, const oh_graph *g);
exo_status oh_write(oh_run *r, uint32_t tensor, const void *data, uint64_t bytes);
exo_status oh_read(oh_run *r, uint32_t tensor, void *data, uint64_t bytes);
exo_status oh_exec(oh_run *r, uint32_t n_tokens);
void oh_stop(oh_run *r);

/* Deterministic uniform floats in [lo, hi). */
void oh_random(float *out, int64_t n, float lo, float hi, uint32_t seed);
uint16_t oh_f32_to_f16(float f);
uint16_t oh_f32_to_bf16(float f);
/* Floats as the bytes of a `dtype` tensor (f32 copied, f16 / bf16 rounded to nearest): malloc'ed. */
void *oh_float_bytes(exo_dtype dtype, const float *values, int64_t n);
/* sum((a - b)^2) / sum(b^2), as ggml's test-backend-ops. */
double oh_nmse(const float *a, const float *b, int64_t n);

#endif
