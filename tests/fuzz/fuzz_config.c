/* libFuzzer harness: config.json (core/model/config.c), both dialects (classic rope_theta +
 * rope_scaling, and rope_parameters), every architecture the parser knows.
 *
 * The input is the JSON text. A config the parser accepts then goes through what the graph
 * builder does with it first: the RoPE inverse frequencies (core/model/rope.c), whose scaling
 * maths takes the parsed factors, so absurd-but-accepted values surface there (UBSan catches
 * float-to-int overflow). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "fuzz_scratch.h"
#include "model/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CONFIG_PATH "fuzz/config.json"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* The parser takes NUL-terminated text; an embedded NUL just ends it early. */
    char *json = malloc(size + 1);
    if (!json) return 0;
    memcpy(json, data, size);
    json[size] = '\0';
    exo_error_clear();
    exo_model_config cfg;
    exo_status st = exo_model_config_parse(json, FUZZ_CONFIG_PATH, &cfg);
    free(json);
    fuzz_check_error_detail(st, FUZZ_CONFIG_PATH);
    if (st) return 0;

    if (cfg.n_heads == 0 || cfg.head_dim == 0 || cfg.n_layers == 0 || cfg.n_eos > EXO_MAX_EOS) {
        fprintf(stderr, "fuzz finding: accepted config with heads %u head_dim %u layers %u eos %u\n",
                cfg.n_heads, cfg.head_dim, cfg.n_layers, cfg.n_eos);
        abort();
    }
    uint32_t n_rot = exo_rope_n_rot(&cfg);
    if (n_rot > cfg.head_dim) {
        fprintf(stderr, "fuzz finding: n_rot %u exceeds head_dim %u\n", n_rot, cfg.head_dim);
        abort();
    }
    if (n_rot >= 2) {
        float *inv = malloc((size_t)(n_rot / 2) * sizeof *inv);
        if (!inv) return 0;
        float attention_factor = 0;
        exo_rope_inv_freq(&cfg, inv, n_rot, &attention_factor);
        free(inv);
    }
    return 0;
}
