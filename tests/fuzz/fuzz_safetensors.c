/* libFuzzer harness: one safetensors file (core/model/safetensors.c).
 *
 * The input is the whole file: 8-byte header length, JSON header, data section. It is written
 * to a scratch file and opened the way the model loader opens a shard (mmap + header checks).
 * On success every tensor is looked up by name and its first and last data bytes are read, so
 * an offset the checks let through outside the mapping faults here; on failure the error
 * detail must name the file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "fuzz_scratch.h"
#include "model/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_scratch_write("model.safetensors", data, size);
    const char *path = fuzz_scratch_path("model.safetensors");
    exo_error_clear();
    exo_st_file *f = NULL;
    exo_status st = exo_st_file_open(path, &f);
    fuzz_check_error_detail(st, path);
    if (st) return 0;

    volatile uint8_t sink = 0;
    uint32_t n = exo_st_file_count(f);
    uint64_t mapped = exo_st_file_mapped_bytes(f);
    for (uint32_t i = 0; i < n; i++) {
        const exo_st_tensor *t = exo_st_file_tensor(f, i);
        const exo_st_tensor *found = exo_st_file_find(f, t->name);
        /* Names are unique (the parser refuses duplicates), so lookup must give this tensor. */
        if (found != t || t->n_dims > EXO_ST_MAX_DIMS || t->nbytes > mapped) {
            fprintf(stderr, "fuzz finding: tensor %u ('%s') inconsistent after a successful open\n",
                    i, t->name);
            abort();
        }
        if (t->nbytes) {
            const uint8_t *b = t->data;
            sink ^= b[0];
            sink ^= b[t->nbytes - 1];
        }
    }
    (void)sink;
    exo_st_file_close(f);
    return 0;
}
