/* libFuzzer harness: model.safetensors.index.json (core/model/weights.c).
 *
 * The input is the index text. It is written into a scratch model directory that also holds
 * three small, valid shards under the names the embedded default model's index uses (with a
 * few of its tensor names), and one corrupt shard, so a real index reaches the lazy shard
 * opening and the "index places it in a file that does not hold it" check. After a successful
 * open, every tensor the index lists (up to 64) is looked up. Errors must name the directory
 * or a file in it. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "fuzz_scratch.h"
#include "model/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_MAX_LOOKUPS 64

/* A safetensors file of F32 tensors of shape [2] each, named as given. */
static void write_shard(const char *file, const char *const *names, int n) {
    char header[1024];
    size_t len = 0;
    len += (size_t)snprintf(header + len, sizeof header - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(header + len, sizeof header - len,
                                ",\"%s\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[%d,%d]}",
                                names[i], i * 8, i * 8 + 8);
    len += (size_t)snprintf(header + len, sizeof header - len, "}");
    size_t total = 8 + len + (size_t)n * 8;
    uint8_t *buf = calloc(1, total);
    if (!buf) abort();
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)len >> (8 * i));
    memcpy(buf + 8, header, len);
    fuzz_scratch_write(file, buf, total);
    free(buf);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    static const char *const s1[] = {"model.embed_tokens.weight",
                                     "model.layers.0.input_layernorm.weight"};
    static const char *const s2[] = {"model.layers.2.input_layernorm.weight"};
    static const char *const s3[] = {"model.layers.5.input_layernorm.weight", "model.norm.weight"};
    write_shard("model-00001-of-00003.safetensors", s1, 2);
    write_shard("model-00002-of-00003.safetensors", s2, 1);
    write_shard("model-00003-of-00003.safetensors", s3, 2);
    static const uint8_t corrupt[12] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, '{', '}'};
    fuzz_scratch_write("corrupt.safetensors", corrupt, sizeof corrupt);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_scratch_write("model.safetensors.index.json", data, size);
    const char *dir = fuzz_scratch_dir();
    exo_error_clear();
    exo_weights *w = NULL;
    exo_status st = exo_weights_open(dir, &w);
    fuzz_check_error_detail(st, dir);
    if (st) return 0;

    /* The names to request: the index's own keys (the parser accepted it, so it is JSON). */
    cJSON *root = cJSON_ParseWithLength((const char *)data, size);
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    int looked = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, map) {
        if (looked++ == FUZZ_MAX_LOOKUPS || !e->string) break;
        if (!exo_weights_has(w, e->string)) {
            fprintf(stderr, "fuzz finding: '%s' listed in the index but has() says no\n", e->string);
            abort();
        }
        const exo_st_tensor *t = NULL;
        exo_error_clear();
        st = exo_weights_get(w, e->string, &t);
        fuzz_check_error_detail(st, dir);
        if (!st && (!t || strcmp(t->name, e->string) != 0)) {
            fprintf(stderr, "fuzz finding: get('%s') returned another tensor\n", e->string);
            abort();
        }
    }
    cJSON_Delete(root);
    const exo_st_tensor *t = NULL;
    exo_error_clear();
    st = exo_weights_get(w, "fuzz.not.a.tensor", &t);
    if (!exo_weights_has(w, "fuzz.not.a.tensor") && st != EXO_ERR_NOT_FOUND) {
        fprintf(stderr, "fuzz finding: lookup of an unlisted name gave status %d\n", st);
        abort();
    }
    (void)exo_weights_mapped_bytes(w);
    exo_weights_close(w);
    return 0;
}
