/* gpu_bandwidth.h — the device's read bandwidth, measured now (ABI 1.8 device_read_bandwidth):
 * what a decode step, which streams the weights once, is compared against. */
#ifndef EXO_GPU_BANDWIDTH_H
#define EXO_GPU_BANDWIDTH_H

#include "gpu_backend.h"

/* Allocates `bytes` of device memory (at most the device's largest allocation), fills it once,
 * then times `passes` passes of a read-only sweep kernel (kernels/bandwidth.cl), each pass
 * GPU_BW_SWEEPS launches back to back between two waits, after one untimed pass. *best_gbps: the
 * fastest pass, in 1e9 bytes/s. The kernels must be built (the backend's program). */
exo_status gpu_read_bandwidth(const gpu_backend *be, uint64_t bytes, uint32_t passes, double *best_gbps);

/* Launches per timed pass: the host's enqueue and wait cost once per pass, not per sweep. */
#define GPU_BW_SWEEPS 4

#endif
