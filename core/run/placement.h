/* Placement: which devices of the node a shard's layer range goes to, and how many layers each
 * holds (a pipeline: consecutive ranges, one per device, the hidden state handed from one to the
 * next; core/run/pipeline.c loads and steps it). Pure arithmetic over what the registry knows
 * of each device (free memory, speed) and what config.json says a layer weighs: nothing here
 * touches a device. docs/placement.md explains the rule. */
#ifndef EXO_RUN_PLACEMENT_H
#define EXO_RUN_PLACEMENT_H

#include <stdbool.h>
#include <stdint.h>

#include "model/config.h"
#include "registry/runtime.h"

/* Devices one pipeline may span. */
#define EXO_PLACEMENT_MAX_DEVICES 16

/* The devices exo_shard_options.devices names, as public device indices in pipeline order:
 * "auto" gives every usable GPU (primary views, best first) when the node has more than one and
 * no device is pinned (`pinned`: exo_shard_options.device, else EXO_DEVICE), else none (*n = 0:
 * load on one device as without the option); a comma-separated list of "plugin[:index]" gives
 * those devices in that order (each once, every one usable). Errors name the bad entry. */
exo_status exo_placement_devices(const exo_runtime *rt, const char *devices, const char *pinned, uint32_t *out,
                                 uint32_t max, uint32_t *n);

/* Splits n_layers into consecutive counts, one per device: proportional to speed[i] (largest
 * remainders), no device above cap[i] layers (what its memory holds; UINT32_MAX: no limit),
 * every device at least one layer when there are as many layers as devices. EXO_ERR_NO_MEMORY
 * when the caps together hold fewer than n_layers. */
exo_status exo_placement_split(uint32_t n_layers, const double *speed, const uint32_t *cap, uint32_t n,
                               uint32_t *counts);

/* What placing one layer range costs, from config.json's shapes. */
typedef struct exo_placement_costs {
    uint64_t layer_bytes;   /* weights and KV cache (at max_ctx, float32) of the range's largest layer */
    uint64_t ends_bytes;    /* the embedding table, or the final norm and lm_head: each end's weights */
} exo_placement_costs;

/* quantize_bits/_group: exo_shard_options' quantization on load (0: none). */
void exo_placement_costs_of(const exo_model_config *cfg, uint32_t start, uint32_t end, uint32_t max_ctx,
                            uint32_t quantize_bits, uint32_t quantize_group, exo_placement_costs *out);

/* A device's relative speed for placement: decode streams the weights, so its read bandwidth as
 * measured by exo_device_benchmark when cached, else the memory bandwidth its plugin estimates,
 * else its fp32 throughput, else 1. */
double exo_placement_device_speed(const exo_runtime *rt, uint32_t device);

/* The layer range [start, end) over the n devices: bounds[0] = start, bounds[n] = end, device i
 * holds [bounds[i], bounds[i+1]). Memory: each device's available memory (exo_device_memory_
 * available; host memory counts only when its plugin copies weights rather than mapping them)
 * minus a reserve for intermediates, the first device also holding the embedding and the last
 * the head. Logged at INFO with every figure. */
exo_status exo_placement_ranges(exo_runtime *rt, const exo_model_config *cfg, const uint32_t *devices, uint32_t n,
                                uint32_t start, uint32_t end, uint32_t max_ctx, uint32_t quantize_bits,
                                uint32_t quantize_group, uint32_t *bounds);

/* device_bench.c: the figures exo_device_benchmark cached for the device and its driver. */
bool exo_device_bench_cached(const exo_runtime *rt, uint32_t device, double *read_gbs, double *gflops);

#endif
