/* cache.h — the program-binary cache: built OpenCL programs stored as files under
 * $XDG_CACHE_HOME/exo-ipex/opencl (or ~/.cache/exo-ipex/opencl), named by a 128-bit hash of
 * everything that decides the binary (kernel sources, build options, device name, driver
 * version, device version, platform name and version, this plugin's cache format).
 *
 * File: "EXOCLBIN" | u32 format | u32 0 | 16-byte key | u64 payload size | u64 payload hash |
 * payload (the device binary). An entry that is short, has a foreign magic, format or key, or
 * whose payload hash differs, is ignored (and replaced after the rebuild); a binary the driver
 * rejects is rebuilt from source the same way. Files are written to a temporary name and
 * renamed, so concurrent processes never see half a file. */
#ifndef EXO_OPENCL_CACHE_H
#define EXO_OPENCL_CACHE_H

#include "ocl_plugin.h"

typedef struct ocl_cache_key {
    uint64_t h[2];
    char hex[33];
} ocl_cache_key;

typedef struct ocl_hasher {
    uint64_t h[2];
} ocl_hasher;

void ocl_hash_init(ocl_hasher *s);
/* Adds one component (its length first, so "ab"+"c" and "a"+"bc" differ). */
void ocl_hash_add(ocl_hasher *s, const void *data, size_t size);
void ocl_hash_add_str(ocl_hasher *s, const char *text);
void ocl_hash_finish(const ocl_hasher *s, ocl_cache_key *key);

/* The cache directory (created if needed) into out; 0 when there is none (no HOME, or it cannot
 * be created: the plugin then builds from source every time). */
int ocl_cache_dir(exo_plugin_ctx *ctx, char *out, size_t size);
/* The entry's path: <dir>/<key hex>.bin */
void ocl_cache_path(const char *dir, const ocl_cache_key *key, char *out, size_t size);

/* A valid entry's payload (host->alloc'd, *size bytes), or NULL with the reason logged. */
unsigned char *ocl_cache_load(exo_plugin_ctx *ctx, const char *dir, const ocl_cache_key *key, size_t *size);
/* Best effort: a failure is logged, never an error (the cache only saves time). */
void ocl_cache_store(exo_plugin_ctx *ctx, const char *dir, const ocl_cache_key *key, const unsigned char *data,
                     size_t size);

#endif
