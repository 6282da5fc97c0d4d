/* What a shard and its sessions will allocate, measured from the graph plans before anything is
 * allocated, and fitted to the memory of the device that will hold it. Every size here derives
 * from config.json numbers (vocab, hidden, heads, layers, max_position_embeddings), which a tiny
 * file can make absurd; sums and products saturate at UINT64_MAX, which no machine has, so an
 * overflowing shard is simply one that does not fit. */
#ifndef EXO_RUN_SHARD_MEMORY_H
#define EXO_RUN_SHARD_MEMORY_H

#include <stdbool.h>
#include <stdint.h>

#include "graph/builder.h"
#include "registry/runtime.h"

typedef struct exo_shard_memory {
    uint64_t weights;       /* every weight buffer of the plan */
    uint64_t weights_owned; /* of which the builder's own copies (constants, converted biases) */
    uint64_t kv;            /* one session's KV cache at max_ctx */
    uint64_t kv_per_ctx;    /* kv / max_ctx: the bytes one more position of context costs */
    uint64_t scratch;       /* intermediates of the compiled graphs at max_tokens */
    uint64_t io;            /* one session's input, positions and last-row output buffers */
    uint32_t max_tokens, max_ctx;
} exo_shard_memory;

/* The sizes of a shard built from these plans (last may be NULL: no head) if it were compiled
 * for max_tokens rows per step and max_ctx positions of KV cache. The scratch figure is the peak
 * of intermediates alive at once in each graph, a lower bound of what a plugin's planner takes. */
void exo_shard_memory_measure(const exo_graph_plan *full, const exo_graph_plan *last, uint32_t input_width,
                              uint32_t output_width, uint32_t max_tokens, uint32_t max_ctx, exo_shard_memory *out);

/* The bytes the device must find for the shard and one session; weights_count: whether the
 * checkpoint's weights take the device's memory (false when they stay in the file mapping). */
uint64_t exo_shard_memory_need(const exo_shard_memory *m, bool weights_count);

/* Memory a device can still give: MemAvailable (and the cgroup's headroom) for the CPU and
 * devices that share host memory (*host true), else the device's free memory as probed.
 * UINT64_MAX when unknown. *source names the figure for messages. */
uint64_t exo_device_memory_available(const exo_device_rec *d, bool *host, const char **source);

/* Shrinks what the caller left to defaults until the shard fits avail bytes: max_tokens (halved,
 * while the intermediates outweigh the KV cache, and as a last resort) and max_ctx (down to the
 * largest that fits, at least min_ctx). Fixed values are never changed. Returns true when the
 * result fits; *out then holds its measure (else the measure at the smallest sizes tried). */
bool exo_shard_memory_fit(const exo_graph_plan *full, const exo_graph_plan *last, uint32_t input_width,
                          uint32_t output_width, uint64_t avail, bool weights_count, uint32_t max_tokens,
                          bool tokens_fixed, uint32_t max_ctx, bool ctx_fixed, uint32_t min_ctx,
                          exo_shard_memory *out);

/* a * b and a + b, saturating at UINT64_MAX. */
uint64_t exo_mul_sat(uint64_t a, uint64_t b);
uint64_t exo_add_sat(uint64_t a, uint64_t b);

#endif
