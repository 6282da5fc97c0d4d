/* exo-golden: checks a model against the reference outputs Hugging Face transformers computed
 * for it (golden.safetensors, format in tests/data/hf-tiny/README.md).
 *
 *   exo-golden MODEL_DIR [--device PLUGIN[:N] | --devices A,B,...] [--tensor-parallel N] [--golden FILE]
 *              [--tolerance T] [--top1-margin M] [--kv-dtype f32|bf16|f16] [--verbose]
 *
 * For every prompt p: (1) prompt logits of the whole model against p.logits; (2) teacher-forced
 * decode of the golden greedy tokens one at a time through the KV cache, whose logits must
 * match a single prefill of the same sequence, and whose argmax must be the golden token
 * unless the two are tied within the tolerance; (3) for every split point k, shards [0,k) and
 * [k,L) handing hidden states from one to the other reproduce p.logits, and the hidden states
 * handed over match p.hidden.k. Every logits row compared with a reference must also have the
 * reference's argmax wherever the reference's top-2 margin exceeds --top1-margin (default
 * TOP1_MARGIN: a reduced-precision run may move the logits by its tolerance, never the confident
 * choices; a mode of coarser arithmetic, such as int8 activations, states its own margin). --kv-dtype picks the KV
 * cache (exo_shard_options.kv_dtype; the library's default otherwise); the line naming the device
 * says which one the shards run. --devices loads every shard (the whole model and both sides of
 * every split) as a pipeline across the listed devices (exo_shard_options.devices), so each check
 * runs the hidden state handed device to device inside a step; a line per part names its layers
 * and device. --tensor-parallel N splits every layer of every shard over the first N devices of
 * --devices instead (exo_shard_options.tensor_parallel: heads and MLP columns per device, the
 * all-reduce on the host). The last line is
 *   golden: PASS|FAIL prompts=N max_rel_err=E decode_steps=S split_points=K
 * and the exit status is 0 only on PASS. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_number.h"
#include "exo.h"
#include "link_path.h"

/* Default logit margin (top-1 minus top-2 of the reference) above which the argmax must agree
 * (/work/shared/fixtures/README.md, "Reasonable tolerances"). */
#define TOP1_MARGIN 0.05

typedef struct checker {
    double tolerance;
    double top1_margin;
    double max_rel_err;
    int failures;
    int verbose;
} checker;

/* Relative L2 error of one row. */
static double rel_err(const float *out, const float *ref, uint64_t n) {
    double num = 0, den = 0;
    for (uint64_t i = 0; i < n; i++) {
        double d = (double)out[i] - (double)ref[i];
        num += d * d;
        den += (double)ref[i] * (double)ref[i];
    }
    if (den == 0) return sqrt(num);
    return sqrt(num / den);
}

static uint64_t argmax(const float *row, uint64_t n) {
    uint64_t best = 0;
    for (uint64_t i = 1; i < n; i++)
        if (row[i] > row[best]) best = i;
    return best;
}

/* Whether out's row has ref's argmax, or ref is not confident about it (margin <= top1_margin). */
static bool same_top1(const float *out, const float *ref, uint64_t n, double top1_margin, uint64_t *got, uint64_t *want,
                      double *margin) {
    *want = argmax(ref, n);
    *got = argmax(out, n);
    float second = -INFINITY;
    for (uint64_t i = 0; i < n; i++)
        if (i != *want && ref[i] > second) second = ref[i];
    *margin = (double)ref[*want] - (double)second;
    return *got == *want || !(*margin > top1_margin);
}

/* logits: the rows are logits (checked for the top-1 as well). */
static void compare_rows(checker *c, const char *what, const float *out, const float *ref, uint32_t rows,
                         uint64_t width, bool logits) {
    for (uint32_t r = 0; r < rows; r++) {
        uint64_t got, want;
        double margin;
        if (logits && !same_top1(out + (uint64_t)r * width, ref + (uint64_t)r * width, width, c->top1_margin, &got, &want, &margin)) {
            c->failures++;
            if (c->failures <= 20)
                printf("  FAIL %s row %u: argmax %llu, reference %llu (margin %.3f > %.2f)\n", what, r,
                       (unsigned long long)got, (unsigned long long)want, margin, c->top1_margin);
        }
        double e = rel_err(out + (uint64_t)r * width, ref + (uint64_t)r * width, width);
        if (!(e <= c->max_rel_err)) c->max_rel_err = isnan(e) ? INFINITY : e;
        if (!(e <= c->tolerance)) {
            c->failures++;
            if (c->failures <= 20) printf("  FAIL %s row %u: relative error %.3e > %.1e\n", what, r, e, c->tolerance);
        } else if (c->verbose) {
            printf("  ok   %s row %u: %.3e\n", what, r, e);
        }
    }
}

static int die(const char *what, exo_status st) {
    fprintf(stderr, "exo-golden: %s: %s: %s\n", what, exo_status_name(st), exo_last_error());
    printf("golden: FAIL prompts=0 max_rel_err=inf decode_steps=0 split_points=0\n");
    return 1;
}

/* Where shards go: one device (NULL: the selected one), or a pipeline across `devices`. */
typedef struct placement {
    const char *device;
    const char *devices;
    uint32_t kv_dtype;
    uint32_t tensor_parallel;
} placement;

static exo_status load_shard(exo_model *m, uint32_t start, uint32_t end, const placement *where, uint32_t max_ctx,
                             exo_shard **out) {
    exo_shard_options o = EXO_SHARD_OPTIONS_INIT;
    o.kv_dtype = where->kv_dtype;
    o.start_layer = start;
    o.end_layer = end;
    o.device = where->device;
    o.devices = where->devices;
    o.tensor_parallel = where->tensor_parallel;
    o.max_ctx = max_ctx;
    return exo_shard_load(m, &o, out);
}

/* One line per part of a shard across devices: which layers went where. */
static void print_parts(const exo_runtime *rt, const exo_shard *shard, uint32_t n_parts) {
    for (uint32_t i = 0; i < n_parts; i++) {
        exo_shard_info pi;
        EXO_STRUCT_INIT(&pi);
        exo_device_info di;
        EXO_STRUCT_INIT(&di);
        if (exo_shard_get_part_info(shard, i, &pi) != EXO_OK || exo_device_get_info(rt, pi.device, &di) != EXO_OK)
            continue;
        printf("  part %u: layers [%u, %u) on %s:%u '%s'%s%s%s\n", i, pi.start_layer, pi.end_layer, pi.plugin,
               di.plugin_index, pi.device_name, pi.input_path ? " (hand-over: " : "", exo_link_path_name(pi.input_path),
               pi.input_path ? ")" : "");
    }
}

static const float *golden_f32(const exo_tensor_file *g, const char *name, uint64_t expect, exo_status *st) {
    exo_tensor_view v;
    *st = exo_tensor_file_get(g, name, &v);
    if (*st != EXO_OK) return NULL;
    if (v.dtype != EXO_DTYPE_F32 || v.nbytes != expect * 4) {
        fprintf(stderr, "exo-golden: golden tensor %s has an unexpected dtype or size\n", name);
        *st = EXO_ERR_FORMAT;
        return NULL;
    }
    return v.data;
}

/* Everything main opens or allocates, so that one path (finish) frees it whichever check fails:
 * tests/tools runs the failures under LeakSanitizer. */
typedef struct golden_run {
    exo_runtime *rt;
    exo_model *model;
    exo_tensor_file *golden;
    exo_shard *full;
    /* One prompt's buffers and sessions (release_prompt). */
    float *logits, *last, *step, *whole, *hidden;
    int32_t *seq;
    exo_session *s, *last_only, *fresh;
    /* One split point's shards and sessions (release_split). */
    exo_shard *a, *b;
    exo_session *sa, *sb;
} golden_run;

static void release_split(golden_run *g) {
    exo_session_destroy(g->sa);
    exo_session_destroy(g->sb);
    exo_shard_destroy(g->a);
    exo_shard_destroy(g->b);
    g->sa = g->sb = NULL;
    g->a = g->b = NULL;
}

static void release_prompt(golden_run *g) {
    release_split(g);
    exo_session_destroy(g->s);
    exo_session_destroy(g->last_only);
    exo_session_destroy(g->fresh);
    g->s = g->last_only = g->fresh = NULL;
    free(g->logits);
    free(g->last);
    free(g->step);
    free(g->whole);
    free(g->hidden);
    free(g->seq);
    g->logits = g->last = g->step = g->whole = g->hidden = NULL;
    g->seq = NULL;
}

/* Frees everything, children before their parents, and returns rc. */
static int finish(golden_run *g, int rc) {
    release_prompt(g);
    exo_shard_destroy(g->full);
    exo_tensor_file_destroy(g->golden);
    exo_model_destroy(g->model);
    exo_runtime_destroy(g->rt);
    return rc;
}

int main(int argc, char **argv) {
    const char *model_dir = NULL, *device = NULL, *devices = NULL, *golden_path = NULL;
    checker c = {.tolerance = 1e-4, .top1_margin = TOP1_MARGIN};
    uint32_t kv_dtype = EXO_KV_DTYPE_DEFAULT;
    static const char usage[] = "usage: exo-golden MODEL_DIR [--device PLUGIN[:N] | --devices A,B,...] [--golden FILE] "
                                "[--tensor-parallel N] [--tolerance T] [--top1-margin M] [--kv-dtype f32|bf16|f16] [--verbose]\n";
    uint32_t tensor_parallel = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--device") == 0 && i + 1 < argc) device = argv[++i];
        else if (strcmp(argv[i], "--devices") == 0 && i + 1 < argc) devices = argv[++i];
        else if (strcmp(argv[i], "--tensor-parallel") == 0 && i + 1 < argc) {
            double v = 0;
            if (!cli_parse_real("exo-golden", "--tensor-parallel", argv[++i], 2, 16, &v) || v != (uint32_t)v) {
                fprintf(stderr, "exo-golden: --tensor-parallel takes a whole number of devices, 2 to 16\n");
                return 2;
            }
            tensor_parallel = (uint32_t)v;
        }
        else if (strcmp(argv[i], "--golden") == 0 && i + 1 < argc) golden_path = argv[++i];
        else if (strcmp(argv[i], "--tolerance") == 0 && i + 1 < argc) {
            if (!cli_parse_real("exo-golden", "--tolerance", argv[++i], 0, 1e6, &c.tolerance)) return 2;
        }
        else if (strcmp(argv[i], "--top1-margin") == 0 && i + 1 < argc) {
            if (!cli_parse_real("exo-golden", "--top1-margin", argv[++i], 0, 1e6, &c.top1_margin)) return 2;
        }
        else if (strcmp(argv[i], "--kv-dtype") == 0 && i + 1 < argc) {
            if (!cli_parse_kv_dtype("exo-golden", "--kv-dtype", argv[++i], &kv_dtype)) return 2;
        }
        else if (strcmp(argv[i], "--verbose") == 0 || strcmp(argv[i], "-v") == 0) c.verbose = 1;
        else if (argv[i][0] != '-' && !model_dir) model_dir = argv[i];
        else {
            fputs(usage, stderr);
            return 2;
        }
    }
    if (!model_dir || (device && devices)) {
        fputs(usage, stderr);
        return 2;
    }
    placement where = {device, devices, kv_dtype, tensor_parallel};
    char default_golden[4096];
    snprintf(default_golden, sizeof default_golden, "%s/golden.safetensors", model_dir);
    if (!golden_path) golden_path = default_golden;

    golden_run g;
    memset(&g, 0, sizeof g);
    exo_status st = exo_runtime_create(NULL, &g.rt);
    if (st != EXO_OK) return finish(&g, die("creating the runtime", st));
    /* --device goes through the core's parser before anything is opened. */
    uint32_t wanted = 0;
    if (device && (st = exo_device_find(g.rt, device, &wanted)) != EXO_OK) return finish(&g, die("--device", st));
    st = exo_model_open(g.rt, model_dir, &g.model);
    if (st != EXO_OK) return finish(&g, die(model_dir, st));
    st = exo_tensor_file_open(golden_path, &g.golden);
    if (st != EXO_OK) return finish(&g, die(golden_path, st));
    exo_model_info info;
    EXO_STRUCT_INIT(&info);
    exo_model_get_info(g.model, &info);
    uint32_t L = info.n_layers, V = info.vocab_size, H = info.hidden_size;

    /* The longest sequence: prompt + greedy continuation. */
    uint32_t max_ctx = 0;
    for (int p = 0;; p++) {
        char name[64];
        exo_tensor_view ids, greedy;
        snprintf(name, sizeof name, "p%d.ids", p);
        if (exo_tensor_file_get(g.golden, name, &ids) != EXO_OK) break;
        snprintf(name, sizeof name, "p%d.greedy", p);
        uint32_t n = (uint32_t)ids.shape[0];
        if (exo_tensor_file_get(g.golden, name, &greedy) == EXO_OK) n += (uint32_t)greedy.shape[0];
        if (n > max_ctx) max_ctx = n;
    }
    if (max_ctx == 0) return finish(&g, die("golden file holds no prompts (p0.ids)", EXO_ERR_FORMAT));

    st = load_shard(g.model, 0, L, &where, max_ctx, &g.full);
    if (st != EXO_OK) return finish(&g, die("loading the whole model", st));
    exo_shard_info si;
    EXO_STRUCT_INIT(&si);
    exo_shard_get_info(g.full, &si);
    if (tensor_parallel)
        printf("exo-golden: %s (%s, %u layers) tensor-parallel over %u devices (%s, %u parts), %s KV cache\n",
               model_dir, info.architecture, L, tensor_parallel, devices ? devices : "auto", si.n_parts,
               cli_kv_dtype_name(si.kv_dtype));
    else if (devices)
        printf("exo-golden: %s (%s, %u layers) across %u devices (%s), %s KV cache\n", model_dir, info.architecture, L,
               si.n_parts, devices, cli_kv_dtype_name(si.kv_dtype));
    else
        printf("exo-golden: %s (%s, %u layers) on %s:%s '%s', %s KV cache\n", model_dir, info.architecture, L,
               si.plugin, device ? device : "selected", si.device_name, cli_kv_dtype_name(si.kv_dtype));
    if (si.n_parts > 1 && !tensor_parallel) print_parts(g.rt, g.full, si.n_parts);

    int prompts = 0, decode_steps = 0, split_points = 0;
    for (int p = 0;; p++) {
        char name[64];
        exo_tensor_view ids_v, greedy_v;
        snprintf(name, sizeof name, "p%d.ids", p);
        if (exo_tensor_file_get(g.golden, name, &ids_v) != EXO_OK) break;
        if (ids_v.dtype != EXO_DTYPE_I32 || ids_v.n_dims != 1 || ids_v.shape[0] < 1)
            return finish(&g, die("golden ids must be a non-empty int32 vector", EXO_ERR_FORMAT));
        uint32_t T = (uint32_t)ids_v.shape[0];
        const int32_t *ids = ids_v.data;
        snprintf(name, sizeof name, "p%d.logits", p);
        const float *ref_logits = golden_f32(g.golden, name, (uint64_t)T * V, &st);
        if (!ref_logits) return finish(&g, die(name, st));
        prompts++;

        /* (1) prompt logits */
        g.logits = malloc((uint64_t)T * V * sizeof *g.logits);
        g.last = malloc((uint64_t)V * sizeof *g.last);
        g.hidden = malloc((uint64_t)T * H * sizeof *g.hidden);
        if (!g.logits || !g.last || !g.hidden) return finish(&g, die("the prompt's buffers", EXO_ERR_NO_MEMORY));
        st = exo_session_create(g.full, 0, &g.s);
        if (st == EXO_OK) st = exo_session_forward_tokens(g.s, ids, T, 0, g.logits, (uint64_t)T * V);
        if (st != EXO_OK) return finish(&g, die("prompt forward", st));
        snprintf(name, sizeof name, "p%d prompt logits", p);
        compare_rows(&c, name, g.logits, ref_logits, T, V, true);
        /* The last-row path (what sampling uses) must give the same last row. */
        st = exo_session_create(g.full, 0, &g.last_only);
        if (st == EXO_OK) st = exo_session_forward_tokens(g.last_only, ids, T, EXO_FORWARD_LAST_ONLY, g.last, V);
        if (st != EXO_OK) return finish(&g, die("last-row prompt forward", st));
        snprintf(name, sizeof name, "p%d last-row logits", p);
        compare_rows(&c, name, g.last, ref_logits + (uint64_t)(T - 1) * V, 1, V, true);

        /* (2) teacher-forced decode through the KV cache */
        snprintf(name, sizeof name, "p%d.greedy", p);
        if (exo_tensor_file_get(g.golden, name, &greedy_v) == EXO_OK && greedy_v.dtype == EXO_DTYPE_I32 &&
            greedy_v.n_dims == 1 && greedy_v.shape[0] >= 1) {
            uint32_t G = (uint32_t)greedy_v.shape[0];
            const int32_t *greedy = greedy_v.data;
            for (uint32_t j = 0; j < G; j++)
                if (greedy[j] < 0 || (uint32_t)greedy[j] >= V)
                    return finish(&g, die("golden greedy token outside the vocabulary", EXO_ERR_FORMAT));
            g.seq = malloc((uint64_t)(T + G) * sizeof *g.seq);
            g.step = malloc((uint64_t)G * V * sizeof *g.step);
            g.whole = malloc((uint64_t)(T + G) * V * sizeof *g.whole);
            if (!g.seq || !g.step || !g.whole) return finish(&g, die("decode buffers", EXO_ERR_NO_MEMORY));
            memcpy(g.seq, ids, T * sizeof *g.seq);
            memcpy(g.seq + T, greedy, G * sizeof *g.seq);
            /* The prompt's last logits predict greedy[0]; each decoded token predicts the next. */
            const float *prev = g.logits + (uint64_t)(T - 1) * V;
            for (uint32_t j = 0; j < G && st == EXO_OK; j++) {
                uint32_t top = 0;
                for (uint32_t v = 1; v < V; v++)
                    if (prev[v] > prev[top]) top = v;
                double norm = 0;
                for (uint32_t v = 0; v < V; v++) norm += (double)prev[v] * prev[v];
                double gap = (double)prev[top] - (double)prev[greedy[j]];
                if ((int32_t)top != greedy[j] && gap > c.tolerance * sqrt(norm)) {
                    c.failures++;
                    printf("  FAIL p%d decode step %u: argmax %u, golden token %d (gap %.3e)\n", p, j, top, greedy[j], gap);
                }
                if (j + 1 == G) break;
                st = exo_session_forward_tokens(g.s, &greedy[j], 1, 0, g.step + (uint64_t)j * V, V);
                prev = g.step + (uint64_t)j * V;
                decode_steps++;
            }
            if (st != EXO_OK) return finish(&g, die("decode step", st));
            /* The same sequence in one prefill must give the same logits as step by step. */
            st = exo_session_create(g.full, 0, &g.fresh);
            if (st == EXO_OK)
                st = exo_session_forward_tokens(g.fresh, g.seq, T + G - 1, 0, g.whole, (uint64_t)(T + G) * V);
            if (st != EXO_OK) return finish(&g, die("prefill of prompt + continuation", st));
            snprintf(name, sizeof name, "p%d decode vs prefill", p);
            compare_rows(&c, name, g.step, g.whole + (uint64_t)T * V, G - 1, V, true);
        }

        /* (3) split points, and the hidden states handed over */
        for (uint32_t k = 0; k <= L; k++) {
            snprintf(name, sizeof name, "p%d.hidden.%u", p, k);
            exo_tensor_view hv;
            bool have_hidden = k < L && exo_tensor_file_get(g.golden, name, &hv) == EXO_OK;
            bool split = k > 0 && k < L;
            if (!have_hidden && !split) continue;
            st = load_shard(g.model, 0, k, &where, T, &g.a);
            if (st == EXO_OK) st = exo_session_create(g.a, 0, &g.sa);
            if (st == EXO_OK) st = exo_session_forward_tokens(g.sa, ids, T, 0, g.hidden, (uint64_t)T * H);
            if (st != EXO_OK) return finish(&g, die("first shard of a split", st));
            if (have_hidden) {
                const float *ref_hidden = golden_f32(g.golden, name, (uint64_t)T * H, &st);
                if (!ref_hidden) return finish(&g, die(name, st));
                char what[96];
                snprintf(what, sizeof what, "p%d hidden state entering layer %u", p, k);
                compare_rows(&c, what, g.hidden, ref_hidden, T, H, false);
            }
            if (split) {
                st = load_shard(g.model, k, L, &where, T, &g.b);
                if (st == EXO_OK) st = exo_session_create(g.b, 0, &g.sb);
                if (st == EXO_OK) st = exo_session_forward_hidden(g.sb, g.hidden, T, 0, g.logits, (uint64_t)T * V);
                if (st != EXO_OK) return finish(&g, die("second shard of a split", st));
                char what[96];
                snprintf(what, sizeof what, "p%d split at %u logits", p, k);
                compare_rows(&c, what, g.logits, ref_logits, T, V, true);
                if (p == 0) split_points++;
            }
            release_split(&g);
        }
        release_prompt(&g);
    }
    bool pass = c.failures == 0 && prompts > 0;
    printf("golden: %s prompts=%d max_rel_err=%.3e decode_steps=%d split_points=%d\n", pass ? "PASS" : "FAIL", prompts,
           c.max_rel_err, decode_steps, split_points);
    return finish(&g, pass ? 0 : 1);
}
