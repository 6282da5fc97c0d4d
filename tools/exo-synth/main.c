/* exo-synth: writes a Hugging Face model directory (llama or qwen3_moe) with deterministic random
 * weights.
 *
 *   exo-synth --preset NAME --out DIR [--dtype bf16|f16|f32] [--quant mlx-q4-g64] [--seed S] [--shard-gb G]
 *             [--quiet]
 *
 * The same preset, dtype and seed always give byte-identical files, so a benchmark model can be
 * regenerated anywhere instead of being copied. The weights are random (std 0.02, norms near 1):
 * good for measuring speed and memory, meaningless as text. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli_number.h"
#include "synth.h"

typedef struct synth_options {
    const char *preset, *out;
    synth_dtype dtype;
    synth_quant quant;
    uint64_t seed;
    double shard_gb;
    bool quiet;
} synth_options;

static void usage(FILE *f) {
    char names[256];
    synth_preset_list(names, sizeof names);
    fprintf(f,
            "usage: exo-synth --preset NAME --out DIR [options]\n"
            "  --preset NAME     model shape: %s\n"
            "  --out DIR         output directory (created; existing model files are replaced)\n"
            "  --dtype T         bf16 (default), f16 or f32 (with --quant: of scales, biases, norms)\n"
            "  --quant Q         MLX affine quantized weights, mlx-q<bits>-g<group> (e.g. mlx-q4-g64,\n"
            "                    mlx-q8-g32): the layout of mlx-community checkpoints\n"
            "  --seed S          PRNG seed (default 0); same seed, same bytes\n"
            "  --shard-gb G      split the weights into files of at most G GB (default 2)\n"
            "  --quiet           no progress messages\n",
            names);
}

static int parse_args(int argc, char **argv, synth_options *o) {
    memset(o, 0, sizeof *o);
    o->dtype = SYNTH_BF16;
    o->shard_gb = 2.0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(a, "--quiet") == 0) {
            o->quiet = true;
            continue;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "exo-synth: %s needs a value (or is unknown)\n", a);
            return 0;
        }
        i++;
        if (strcmp(a, "--preset") == 0) {
            o->preset = v;
        } else if (strcmp(a, "--out") == 0) {
            o->out = v;
        } else if (strcmp(a, "--dtype") == 0) {
            if (!synth_dtype_parse(v, &o->dtype)) {
                fprintf(stderr, "exo-synth: --dtype expects bf16, f16 or f32, got '%s'\n", v);
                return 0;
            }
        } else if (strcmp(a, "--quant") == 0) {
            if (!cli_parse_quant("exo-synth", a, v, &o->quant.bits, &o->quant.group)) return 0;
        } else if (strcmp(a, "--seed") == 0) {
            int64_t s = 0;
            if (!cli_parse_int("exo-synth", a, v, 0, INT64_MAX, &s)) return 0;
            o->seed = (uint64_t)s;
        } else if (strcmp(a, "--shard-gb") == 0) {
            if (!cli_parse_real("exo-synth", a, v, 1e-6, 1e4, &o->shard_gb)) return 0;
        } else {
            fprintf(stderr, "exo-synth: unknown option '%s'\n", a);
            return 0;
        }
    }
    if (!o->preset || !o->out) {
        fprintf(stderr, "exo-synth: --preset and --out are required\n");
        return 0;
    }
    return 1;
}

/* mkdir -p */
static int make_dirs(const char *path) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) {
        fprintf(stderr, "exo-synth: output path '%s' is empty or too long\n", path);
        return -1;
    }
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
            fprintf(stderr, "exo-synth: %s: cannot create directory: %s\n", buf, strerror(errno));
            return -1;
        }
        buf[i] = c;
    }
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "exo-synth: %s: not a directory\n", path);
        return -1;
    }
    return 0;
}

/* A previous run may have written the other layout (one file vs. shards + index); loaders prefer
 * the index, so a stale one would shadow the new weights. */
static void remove_stale_layout(const char *dir) {
    static const char *const names[] = {"model.safetensors", "model.safetensors.index.json"};
    char path[4096];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
}

/* Every stored parameter, and (*active) those one token uses: k of the E experts. */
static uint64_t parameter_count(const synth_preset *p, uint64_t *active) {
    uint64_t h = p->hidden_size, q = (uint64_t)p->n_heads * p->head_dim, kv = (uint64_t)p->n_kv_heads * p->head_dim;
    uint64_t attention = 2 * h * q + 2 * h * kv + 2 * h + (p->arch == SYNTH_QWEN3_MOE ? 2ull * p->head_dim : 0);
    uint64_t expert = 3 * h * p->moe_intermediate_size, router = (uint64_t)p->n_experts * h;
    uint64_t embed = (uint64_t)p->vocab_size * h, all = 0, used = 0;
    for (uint32_t l = 0; l < p->n_layers; l++) {
        bool moe = synth_layer_is_moe(p, l);
        all += attention + (moe ? router + expert * p->n_experts : 3 * h * p->intermediate_size);
        used += attention + (moe ? router + expert * p->n_experts_per_tok : 3 * h * p->intermediate_size);
    }
    uint64_t rest = embed * (p->tie_word_embeddings ? 1 : 2) + h;
    *active = used + rest;
    return all + rest;
}

int main(int argc, char **argv) {
    synth_options o;
    if (!parse_args(argc, argv, &o)) {
        usage(stderr);
        return 2;
    }
    const synth_preset *p = synth_preset_find(o.preset);
    if (!p) {
        char names[256];
        synth_preset_list(names, sizeof names);
        fprintf(stderr, "exo-synth: unknown preset '%s' (known: %s)\n", o.preset, names);
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (make_dirs(o.out)) return 1;
    remove_stale_layout(o.out);
    if (o.quant.bits) {
        /* Every quantized matrix's input width must hold whole groups and whole words (the
         * routers' at their own 8-bit g64). */
        struct { uint32_t width; synth_quant q; } m[5] = {
            {p->hidden_size, o.quant}, {p->n_heads * p->head_dim, o.quant}, {p->intermediate_size, o.quant},
            {p->moe_intermediate_size, o.quant}, {p->hidden_size, SYNTH_ROUTER_QUANT}};
        for (int i = 0; i < (p->n_experts ? 5 : 3); i++)
            if (m[i].width % m[i].q.group || (uint64_t)m[i].width * m[i].q.bits % 32) {
                fprintf(stderr, "exo-synth: preset %s: input width %u is not a multiple of the group size %u\n",
                        p->name, m[i].width, m[i].q.group);
                return 2;
            }
    }
    uint64_t bytes = 0;
    if (synth_write_config(o.out, p, o.dtype, o.quant) || synth_write_tokenizer(o.out, p) ||
        synth_write_weights(o.out, p, o.dtype, o.quant, o.seed, (uint64_t)(o.shard_gb * 1e9), !o.quiet, &bytes))
        return 1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
    uint64_t active = 0, n = parameter_count(p, &active);
    if (!o.quiet)
        fprintf(stderr, "exo-synth: %s (%s): %.2f M parameters (%.2f M active per token), %.1f MB of %s%s%s weights, "
                        "seed %llu, %.1f s -> %s\n",
                p->name, p->description, n / 1e6, active / 1e6, bytes / 1e6, o.quant.bits ? "MLX-quantized " : "",
                synth_dtype_torch_name(o.dtype), o.quant.bits ? " (scales)" : "", (unsigned long long)o.seed, s, o.out);
    return 0;
}
