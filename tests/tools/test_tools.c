/* exo-synth and exo-bench, run as the programs users run. exo-synth's models cannot be checked
 * against references (no transformers here), so the tests check what can be: the runtime opens
 * and runs them, their shapes and dtypes are the preset's, the bytes are deterministic per seed,
 * and a sharded copy computes exactly what the single file does. exo-bench's JSON line carries
 * positive figures, and its bytes-per-token matches the preset's dimensions. */
#include <check.h>
#include <cjson/cJSON.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_run.h"

#include "exo.h"

/* The tiny preset, as tools/exo-synth/presets.c defines it (written out again on purpose). */
#define TINY_HIDDEN 64
#define TINY_LAYERS 2
#define TINY_HEADS 4
#define TINY_KV_HEADS 2
#define TINY_HEAD_DIM 16
#define TINY_FFN 128
#define TINY_VOCAB 512

/* ------------------------------------------------------------------ helpers */

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

static char *tmpdir(void) {
    char *dir = strdup("/tmp/exo-tools-test-XXXXXX");
    ck_assert_ptr_nonnull(dir);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    return dir;
}

static void rmdir_all(char *dir) {
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

/* Runs a shell command; returns its exit status, and its stdout in *out (caller frees) if out. */
static int run(const char *cmd, char **out) {
    FILE *p = popen(cmd, "r");
    ck_assert_msg(p != NULL, "popen failed: %s", cmd);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (cap - n < 1024) {
            cap *= 2;
            buf = realloc(buf, cap);
            ck_assert_ptr_nonnull(buf);
        }
    }
    buf[n] = '\0';
    int status = pclose(p);
    if (out) *out = buf;
    else free(buf);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int synth(const char *args, const char *dir) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s --out %s --quiet", EXO_SYNTH_BIN, args, dir);
    return run(cmd, NULL);
}

static unsigned char *read_file(const char *dir, const char *name, size_t *len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    b[n] = 0;
    *len = (size_t)n;
    return b;
}

static int files_equal(const char *a_dir, const char *b_dir, const char *name) {
    size_t na, nb;
    unsigned char *a = read_file(a_dir, name, &na), *b = read_file(b_dir, name, &nb);
    int eq = na == nb && memcmp(a, b, na) == 0;
    free(a);
    free(b);
    return eq;
}

static int file_exists(const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* A model directory opened, loaded whole on the CPU plugin, with one session. */
typedef struct loaded {
    exo_runtime *rt;
    exo_model *model;
    exo_shard *shard;
    exo_session *session;
    exo_model_info info;
} loaded;

static void load(const char *dir, loaded *l) {
    memset(l, 0, sizeof *l);
    exo_runtime_options ro = EXO_RUNTIME_OPTIONS_INIT;
    ro.n_threads = 1;
    ck_assert_int_eq(exo_runtime_create(&ro, &l->rt), EXO_OK);
    exo_status st = exo_model_open(l->rt, dir, &l->model);
    ck_assert_msg(st == EXO_OK, "open %s: %s", dir, exo_last_error());
    EXO_STRUCT_INIT(&l->info);
    ck_assert_int_eq(exo_model_get_info(l->model, &l->info), EXO_OK);
    exo_shard_options so = EXO_SHARD_OPTIONS_INIT;
    so.end_layer = l->info.n_layers;
    so.device = "cpu_amx";
    so.max_tokens = 16;
    so.max_ctx = 64;
    st = exo_shard_load(l->model, &so, &l->shard);
    ck_assert_msg(st == EXO_OK, "load %s: %s", dir, exo_model_last_error(l->model));
    ck_assert_int_eq(exo_session_create(l->shard, 0, &l->session), EXO_OK);
}

static void unload(loaded *l) {
    exo_session_destroy(l->session);
    exo_shard_destroy(l->shard);
    exo_model_destroy(l->model);
    exo_runtime_destroy(l->rt);
}

/* Logits of the last of a fixed 8-token prompt. */
static float *prompt_logits(loaded *l) {
    static const int32_t prompt[8] = {0, 70, 300, 5, 511, 42, 260, 99};
    float *logits = malloc(TINY_VOCAB * sizeof *logits);
    ck_assert_ptr_nonnull(logits);
    exo_status st = exo_session_forward_tokens(l->session, prompt, 8, EXO_FORWARD_LAST_ONLY, logits, TINY_VOCAB);
    ck_assert_msg(st == EXO_OK, "forward: %s", exo_session_last_error(l->session));
    return logits;
}

/* ------------------------------------------------------------------ exo-synth */

START_TEST(synth_tiny_is_a_model_the_runtime_runs) {
    char *dir = tmpdir();
    ck_assert_int_eq(synth("--preset tiny --dtype bf16 --seed 7", dir), 0);
    static const char *const files[] = {"config.json", "generation_config.json", "model.safetensors",
                                        "tokenizer.json", "tokenizer_config.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        ck_assert_msg(file_exists(dir, files[i]), "%s missing", files[i]);
    loaded l;
    load(dir, &l);
    ck_assert_str_eq(l.info.architecture, "llama");
    ck_assert_uint_eq(l.info.hidden_size, TINY_HIDDEN);
    ck_assert_uint_eq(l.info.n_layers, TINY_LAYERS);
    ck_assert_uint_eq(l.info.n_heads, TINY_HEADS);
    ck_assert_uint_eq(l.info.n_kv_heads, TINY_KV_HEADS);
    ck_assert_uint_eq(l.info.head_dim, TINY_HEAD_DIM);
    ck_assert_uint_eq(l.info.intermediate_size, TINY_FFN);
    ck_assert_uint_eq(l.info.vocab_size, TINY_VOCAB);
    ck_assert_int_eq(l.info.dtype, EXO_DTYPE_BF16);
    ck_assert_uint_eq(l.info.tie_word_embeddings, 0);
    float *logits = prompt_logits(&l);
    double sumsq = 0;
    for (int i = 0; i < TINY_VOCAB; i++) {
        ck_assert_msg(isfinite(logits[i]), "logit %d is %g", i, logits[i]);
        sumsq += (double)logits[i] * logits[i];
    }
    ck_assert_msg(sumsq > 0, "all logits are zero");
    free(logits);
    unload(&l);
    rmdir_all(dir);
}
END_TEST

START_TEST(synth_tokenizer_round_trips_text) {
    char *dir = tmpdir();
    ck_assert_int_eq(synth("--preset tiny", dir), 0);
    loaded l;
    load(dir, &l);
    const char *text = "Permission is hereby granted, free of charge, to any person\n\tünïcode 123";
    int32_t ids[256];
    size_t n = 0;
    ck_assert_int_eq(exo_model_tokenize(l.model, text, strlen(text), 1, ids, 256, &n), EXO_OK);
    ck_assert_int_eq(ids[0], 0); /* BOS is <|begin_of_text|>, id 0 */
    ck_assert_uint_lt(n, strlen(text)); /* the merges shortened it */
    char back[512];
    size_t len = 0;
    ck_assert_int_eq(exo_model_detokenize(l.model, ids + 1, n - 1, back, sizeof back, &len), EXO_OK);
    ck_assert_str_eq(back, text);
    unload(&l);
    rmdir_all(dir);
}
END_TEST

START_TEST(synth_same_seed_same_bytes) {
    char *a = tmpdir(), *b = tmpdir();
    ck_assert_int_eq(synth("--preset tiny --seed 11", a), 0);
    ck_assert_int_eq(synth("--preset tiny --seed 11", b), 0);
    static const char *const files[] = {"config.json", "generation_config.json", "model.safetensors",
                                        "tokenizer.json", "tokenizer_config.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        ck_assert_msg(files_equal(a, b, files[i]), "%s differs between two runs with one seed", files[i]);
    rmdir_all(a);
    rmdir_all(b);
}
END_TEST

START_TEST(synth_different_seed_different_weights) {
    char *a = tmpdir(), *b = tmpdir();
    ck_assert_int_eq(synth("--preset tiny --seed 1", a), 0);
    ck_assert_int_eq(synth("--preset tiny --seed 2", b), 0);
    ck_assert(!files_equal(a, b, "model.safetensors"));
    ck_assert(files_equal(a, b, "config.json"));
    ck_assert(files_equal(a, b, "tokenizer.json"));
    rmdir_all(a);
    rmdir_all(b);
}
END_TEST

/* A shard limit below the model size gives an index and several files that compute exactly what
 * the single file computes (the same tensors, the same bytes). */
START_TEST(synth_sharded_equals_single_file) {
    char *single = tmpdir(), *sharded = tmpdir();
    ck_assert_int_eq(synth("--preset tiny --seed 3", single), 0);
    ck_assert_int_eq(synth("--preset tiny --seed 3 --shard-gb 0.0001", sharded), 0);
    ck_assert(file_exists(sharded, "model.safetensors.index.json"));
    ck_assert(!file_exists(sharded, "model.safetensors"));
    ck_assert(file_exists(sharded, "model-00001-of-00003.safetensors"));
    ck_assert(file_exists(sharded, "model-00003-of-00003.safetensors"));
    loaded a, b;
    load(single, &a);
    float *la = prompt_logits(&a);
    unload(&a);
    load(sharded, &b);
    float *lb = prompt_logits(&b);
    unload(&b);
    ck_assert_mem_eq(la, lb, TINY_VOCAB * sizeof *la);
    free(la);
    free(lb);
    rmdir_all(single);
    rmdir_all(sharded);
}
END_TEST

/* Rewriting a directory in the other layout leaves no stale index to shadow the new weights. */
START_TEST(synth_rewrite_replaces_the_layout) {
    char *dir = tmpdir();
    ck_assert_int_eq(synth("--preset tiny --shard-gb 0.0001", dir), 0);
    ck_assert(file_exists(dir, "model.safetensors.index.json"));
    ck_assert_int_eq(synth("--preset tiny", dir), 0);
    ck_assert(!file_exists(dir, "model.safetensors.index.json"));
    ck_assert(file_exists(dir, "model.safetensors"));
    rmdir_all(dir);
}
END_TEST

START_TEST(synth_dtypes_are_what_was_asked) {
    static const struct { const char *arg; exo_dtype dtype; size_t bytes; } cases[] = {
        {"f16", EXO_DTYPE_F16, 2}, {"f32", EXO_DTYPE_F32, 4}};
    for (size_t i = 0; i < 2; i++) {
        char *dir = tmpdir(), args[64];
        snprintf(args, sizeof args, "--preset tiny --dtype %s", cases[i].arg);
        ck_assert_int_eq(synth(args, dir), 0);
        loaded l;
        load(dir, &l);
        ck_assert_int_eq(l.info.dtype, cases[i].dtype);
        float *logits = prompt_logits(&l);
        for (int k = 0; k < TINY_VOCAB; k++) ck_assert(isfinite(logits[k]));
        free(logits);
        unload(&l);
        struct stat sb;
        char path[4096];
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        ck_assert_int_eq(stat(path, &sb), 0);
        /* embed + lm_head + 2 layers of matrices and norms, plus the final norm */
        size_t elements = 2 * TINY_VOCAB * TINY_HIDDEN +
                          TINY_LAYERS * (2 * TINY_HIDDEN * TINY_HEADS * TINY_HEAD_DIM +
                                         2 * TINY_HIDDEN * TINY_KV_HEADS * TINY_HEAD_DIM + 3 * TINY_HIDDEN * TINY_FFN +
                                         2 * TINY_HIDDEN) +
                          TINY_HIDDEN;
        ck_assert_uint_gt((size_t)sb.st_size, elements * cases[i].bytes);
        ck_assert_uint_lt((size_t)sb.st_size, elements * cases[i].bytes + 8192); /* + the header */
        rmdir_all(dir);
    }
}
END_TEST

START_TEST(synth_rejects_unknown_preset_and_dtype) {
    char *dir = tmpdir();
    ck_assert_int_eq(synth("--preset llama-9000", dir), 2);
    ck_assert_int_eq(synth("--preset tiny --dtype q4", dir), 2);
    ck_assert(!file_exists(dir, "config.json"));
    rmdir_all(dir);
}
END_TEST

/* ------------------------------------------------------------------ exo-bench */

static cJSON *last_json_line(char *out) {
    size_t n = strlen(out);
    while (n && out[n - 1] == '\n') out[--n] = '\0';
    char *line = strrchr(out, '\n');
    line = line ? line + 1 : out;
    cJSON *j = cJSON_Parse(line);
    ck_assert_msg(j != NULL, "last line is not JSON: '%s'", line);
    return j;
}

static double number(const cJSON *j, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    ck_assert_msg(cJSON_IsNumber(v), "key %s missing or not a number", key);
    return v->valuedouble;
}

START_TEST(bench_json_has_positive_figures) {
    char *dir = tmpdir();
    ck_assert_int_eq(synth("--preset tiny", dir), 0);
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s --model %s --device cpu_amx -p 16 -n 8 -r 2 -t 1 --json", EXO_BENCH_BIN, dir);
    ck_assert_int_eq(run(cmd, &out), 0);
    cJSON *j = last_json_line(out);
    static const char *const positive[] = {"prefill_tps", "decode_tps", "decode_bytes_per_token", "peak_rss_bytes",
                                           "ttft_ms", "load_s", "kv_bytes_per_token", "decode_gbps", "stream_gbps",
                                           "decode_fraction_of_stream", "decode_ceiling_tps"};
    for (size_t i = 0; i < sizeof positive / sizeof positive[0]; i++)
        ck_assert_msg(number(j, positive[i]) > 0, "%s is not positive", positive[i]);
    ck_assert_double_eq(number(j, "threads"), 1);
    ck_assert_double_eq(number(j, "n_prompt"), 16);
    ck_assert_double_eq(number(j, "n_gen"), 8);
    /* Weights read per token: every layer matrix and norm, the final norm, one embedding row and
     * the whole (untied) lm_head, 2 bytes each in bf16. */
    double elements = TINY_LAYERS * (2.0 * TINY_HIDDEN * TINY_HEADS * TINY_HEAD_DIM +
                                     2.0 * TINY_HIDDEN * TINY_KV_HEADS * TINY_HEAD_DIM + 3.0 * TINY_HIDDEN * TINY_FFN +
                                     2.0 * TINY_HIDDEN) +
                      TINY_HIDDEN + TINY_HIDDEN + (double)TINY_VOCAB * TINY_HIDDEN;
    ck_assert_double_eq(number(j, "decode_bytes_per_token"), 2 * elements);
    /* K and V in bf16 (the default KV cache) for every layer at the mean context 16 + (8 + 1) / 2 */
    ck_assert_str_eq(cJSON_GetObjectItem(j, "kv_dtype")->valuestring, "bf16");
    ck_assert_double_eq_tol(number(j, "kv_bytes_per_token"),
                            2.0 * TINY_LAYERS * TINY_KV_HEADS * TINY_HEAD_DIM * 2 * 20.5, 1e-6);
    cJSON_Delete(j);
    free(out);
    /* --kv-dtype f32: twice the bytes */
    snprintf(cmd, sizeof cmd, "%s --model %s --device cpu_amx -p 16 -n 8 -r 1 -t 1 --kv-dtype f32 --json", EXO_BENCH_BIN,
             dir);
    ck_assert_int_eq(run(cmd, &out), 0);
    j = last_json_line(out);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "kv_dtype")->valuestring, "f32");
    ck_assert_double_eq_tol(number(j, "kv_bytes_per_token"),
                            2.0 * TINY_LAYERS * TINY_KV_HEADS * TINY_HEAD_DIM * 4 * 20.5, 1e-6);
    cJSON_Delete(j);
    free(out);
    rmdir_all(dir);
}
END_TEST

START_TEST(bench_no_stream_leaves_out_the_bandwidth) {
    char *dir = tmpdir();
    ck_assert_int_eq(synth("--preset tiny", dir), 0);
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s --model %s -p 4 -n 2 -r 1 -t 1 --json --no-stream", EXO_BENCH_BIN, dir);
    ck_assert_int_eq(run(cmd, &out), 0);
    cJSON *j = last_json_line(out);
    ck_assert(number(j, "decode_tps") > 0);
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(j, "stream_gbps"));
    cJSON_Delete(j);
    free(out);
    rmdir_all(dir);
}
END_TEST

/* --batch: the aggregate and the step in the JSON (the engine picks the greedy tokens). */
START_TEST(bench_batch_reports_the_step) {
    char *dir = tmpdir();
    ck_assert_int_eq(synth("--preset tiny", dir), 0);
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s --model %s --device cpu_amx -p 4 -n 4 -r 1 -t 1 --batch 2 --json --no-stream",
             EXO_BENCH_BIN, dir);
    ck_assert_int_eq(run(cmd, &out), 0);
    cJSON *j = last_json_line(out);
    ck_assert_double_eq(number(j, "batch"), 2);
    double median = number(j, "batch_step_ms_median"), max = number(j, "batch_step_ms_max");
    ck_assert(median > 0 && median <= max && number(j, "batch_decode_tps") > 0);
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(j, "batch_step_sample_ms_median"));
    cJSON_Delete(j);
    free(out);
    rmdir_all(dir);
}
END_TEST

START_TEST(bench_fails_cleanly_without_a_model) {
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s --model /nonexistent/model --json --no-stream 2>&1", EXO_BENCH_BIN);
    ck_assert_int_eq(run(cmd, &out), 1);
    ck_assert_msg(strstr(out, "/nonexistent/model") != NULL, "message does not name the directory: %s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s --model x -p 0 2>&1", EXO_BENCH_BIN);
    ck_assert_int_eq(run(cmd, &out), 2);
    free(out);
}
END_TEST

/* ------------------------------------------------------------------ command lines and exo-run */

#define FIXTURE EXO_TEST_DATA "/hf-tiny/llama"

/* Runs `cmd 2>&1`; returns its exit status and the output in *out. A child built with ASan exits
 * 23 and prints "LeakSanitizer" when it leaks (ASAN_OPTIONS=detect_leaks=1 in the test env). */
static int run_merged(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run_merged(char **out, const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    strncat(cmd, " 2>&1", sizeof cmd - strlen(cmd) - 1);
    int rc = run(cmd, out);
    /* The report's head only: check refuses messages past its pipe's limit (about 4 KB). */
    ck_assert_msg(!strstr(*out, "LeakSanitizer"), "leak in '%s':\n%.2000s", cmd, strstr(*out, "LeakSanitizer"));
    return rc;
}

static void expect(const char *cmd_out, const char *text) {
    ck_assert_msg(strstr(cmd_out, text) != NULL, "expected '%s' in:\n%s", text, cmd_out);
}

START_TEST(tools_refuse_fractional_negative_exponent_and_overflowing_counts) {
    static const char *const bad[] = {"3.7", "-1", "1e3", "99999999999999999999", "+5", "12abc", "0x10", " 5"};
    char *out = NULL;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(run_merged(&out, "%s -n '%s'", EXO_RUN_BIN, bad[i]), 2);
        expect(out, "exo-run: -n expects a whole number in [0, 10000000], got");
        free(out);
        ck_assert_int_eq(run_merged(&out, "%s --model x -n '%s'", EXO_BENCH_BIN, bad[i]), 2);
        expect(out, "exo-bench: -n expects a whole number");
        free(out);
    }
    ck_assert_int_eq(run_merged(&out, "%s --top-k 2.5", EXO_RUN_BIN), 2);
    expect(out, "--top-k expects a whole number");
    free(out);
    ck_assert_int_eq(run_merged(&out, "%s --temperature nan", EXO_RUN_BIN), 2);
    expect(out, "--temperature expects a number in [0, 100], got 'nan'");
    free(out);
    ck_assert_int_eq(run_merged(&out, "%s x --tolerance 1e-3x", EXO_GOLDEN_BIN), 2);
    expect(out, "exo-golden: --tolerance expects a number");
    free(out);
    ck_assert_int_eq(run_merged(&out, "%s --preset tiny --out /nonexistent --seed 1.5", EXO_SYNTH_BIN), 2);
    expect(out, "exo-synth: --seed expects a whole number");
    free(out);
}
END_TEST

START_TEST(run_help_says_what_zero_and_minus_one_mean) {
    char *out = NULL;
    ck_assert_int_eq(run_merged(&out, "%s --help", EXO_RUN_BIN), 0);
    expect(out, "0 = until EOS or the context is full");
    expect(out, "-1 = from OS entropy");
    free(out);
}
END_TEST

/* The same refusal, in the core's words, whichever way the device is named. */
START_TEST(device_index_overflow_is_refused_by_every_tool) {
    const char *problem = "device 'cpu_amx:4294967296': the index 4294967296 is out of range";
    char *out = NULL;
    ck_assert_int_eq(run_merged(&out, "%s --model %s -n 1 --device cpu_amx:4294967296", EXO_RUN_BIN, FIXTURE), 1);
    expect(out, problem);
    ck_assert_msg(!strstr(out, "device: cpu_amx:0"), "ran on device 0:\n%s", out);
    free(out);
    ck_assert_int_eq(run_merged(&out, "EXO_DEVICE=cpu_amx:4294967296 %s --model %s -n 1", EXO_RUN_BIN, FIXTURE), 1);
    expect(out, problem);
    free(out);
    ck_assert_int_eq(run_merged(&out, "%s --model %s -p 2 -n 1 -r 1 --no-stream --device cpu_amx:4294967296",
                                EXO_BENCH_BIN, FIXTURE), 1);
    expect(out, problem);
    free(out);
    ck_assert_int_eq(run_merged(&out, "%s %s --device cpu_amx:4294967296", EXO_GOLDEN_BIN, FIXTURE), 1);
    expect(out, problem);
    free(out);
}
END_TEST

/* The fixture without tokenizer.json: the tokenizer is read before any weight goes to a device,
 * so the run stops before the "device:" line that follows the load. */
START_TEST(run_without_tokenizer_fails_before_loading_weights) {
    char *dir = tmpdir(), *out = NULL;
    ck_assert_int_eq(run_merged(&out, "cp %s/config.json %s/model.safetensors %s/", FIXTURE, FIXTURE, dir), 0);
    free(out);
    ck_assert_int_eq(run_merged(&out, "%s --model %s -n 1", EXO_RUN_BIN, dir), 1);
    expect(out, "exo-run: the tokenizer:");
    expect(out, "tokenizer.json");
    ck_assert_msg(!strstr(out, "device:"), "weights were loaded first:\n%s", out);
    free(out);
    rmdir_all(dir);
}
END_TEST

/* Every failing exo-run frees what it opened (checked by LeakSanitizer in the ASan build). */
START_TEST(run_failure_paths_free_what_they_opened) {
    char *out = NULL;
    ck_assert_int_eq(run_merged(&out, "%s --model %s -n 1 --device nosuch:0", EXO_RUN_BIN, FIXTURE), 1);
    expect(out, "no plugin named 'nosuch'");
    free(out);
    ck_assert_int_eq(run_merged(&out, "%s --model %s -n 1 -p \"$(printf '\\377')\"", EXO_RUN_BIN, FIXTURE), 1);
    expect(out, "exo-run: the prompt:");
    expect(out, "not valid UTF-8");
    free(out);
    ck_assert_int_eq(run_merged(&out, "%s --model /nonexistent/model -n 1", EXO_RUN_BIN), 1);
    expect(out, "/nonexistent/model");
    free(out);
    ck_assert_int_eq(run_merged(&out, "%s --model %s -n 1 -p ''", EXO_RUN_BIN, FIXTURE), 0);
    free(out);
    ck_assert_int_eq(run_merged(&out, "%s --model %s -n 2 --temperature 0 -p 'The'", EXO_RUN_BIN, FIXTURE), 0);
    expect(out, "stats: prompt");
    free(out);
}
END_TEST

#define FIXTURE_VOCAB 512 /* vocab_size in the fixture's config.json */

/* A golden file (safetensors: 8-byte header length, JSON header, data) of one prompt, ids 1 and
 * 2, whose p0.logits holds n_logits zeros, and a one-token greedy continuation when greedy >= 0. */
static void write_golden(const char *path, uint64_t n_logits, int32_t greedy) {
    char header[512];
    uint64_t logits_end = 8 + n_logits * 4;
    int n = snprintf(header, sizeof header,
                     "{\"p0.ids\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                     "\"p0.logits\":{\"dtype\":\"F32\",\"shape\":[1,%llu],\"data_offsets\":[8,%llu]}%s",
                     (unsigned long long)n_logits, (unsigned long long)logits_end, greedy >= 0 ? "," : "}");
    if (greedy >= 0)
        n += snprintf(header + n, sizeof header - (size_t)n,
                      "\"p0.greedy\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[%llu,%llu]}}",
                      (unsigned long long)logits_end, (unsigned long long)logits_end + 4);
    /* Padded with spaces to a multiple of 8, as safetensors writers do: the data then starts
     * aligned, and the int32 and float views the tool reads are aligned too. */
    ck_assert_int_lt(n, (int)sizeof header - 8);
    while (n % 8) header[n++] = ' ';
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    uint64_t len = (uint64_t)n;
    static const int32_t ids[2] = {1, 2};
    ck_assert_uint_eq(fwrite(&len, 8, 1, f), 1);
    ck_assert_uint_eq(fwrite(header, 1, (size_t)n, f), (size_t)n);
    ck_assert_uint_eq(fwrite(ids, sizeof ids, 1, f), 1);
    static const float zero = 0;
    for (uint64_t i = 0; i < n_logits; i++) ck_assert_uint_eq(fwrite(&zero, 4, 1, f), 1);
    if (greedy >= 0) ck_assert_uint_eq(fwrite(&greedy, 4, 1, f), 1);
    ck_assert_int_eq(fclose(f), 0);
}

/* Every failing exo-golden and exo-bench frees what it opened (checked by LeakSanitizer in the
 * ASan build): each failure below comes after the model, and most after the golden file or a
 * shard, were opened. */
START_TEST(golden_and_bench_failure_paths_free_what_they_opened) {
    char *dir = tmpdir(), *out = NULL;
    ck_assert_int_eq(run_merged(&out, "%s %s --golden /nonexistent/golden.safetensors", EXO_GOLDEN_BIN, FIXTURE), 1);
    expect(out, "/nonexistent/golden.safetensors: EXO_ERR_IO");
    expect(out, "golden: FAIL");
    free(out);
    /* A safetensors file that is no golden file: opened, then found to hold no prompts. */
    ck_assert_int_eq(run_merged(&out, "%s %s --golden %s/model.safetensors", EXO_GOLDEN_BIN, FIXTURE, FIXTURE), 1);
    expect(out, "golden file holds no prompts");
    free(out);
    /* The whole model loaded, then a golden tensor of the wrong size. */
    char golden[4096];
    snprintf(golden, sizeof golden, "%s/bad-logits.safetensors", dir);
    write_golden(golden, 3, -1);
    ck_assert_int_eq(run_merged(&out, "%s %s --device cpu_amx --golden %s", EXO_GOLDEN_BIN, FIXTURE, golden), 1);
    expect(out, "golden tensor p0.logits has an unexpected dtype or size");
    free(out);
    /* Further in: the prompt's buffers and two sessions exist when the greedy token is refused. */
    snprintf(golden, sizeof golden, "%s/bad-greedy.safetensors", dir);
    write_golden(golden, 2 * FIXTURE_VOCAB, FIXTURE_VOCAB);
    ck_assert_int_eq(run_merged(&out, "%s %s --device cpu_amx --golden %s", EXO_GOLDEN_BIN, FIXTURE, golden), 1);
    expect(out, "golden greedy token outside the vocabulary");
    free(out);
    /* A model that opens (its config is fine) but whose shard cannot load: its weights file is
     * the golden file, which holds none of the model's tensors. */
    ck_assert_int_eq(run_merged(&out, "cp %s/config.json %s/ && cp %s/golden.safetensors %s/model.safetensors",
                                FIXTURE, dir, FIXTURE, dir), 0);
    free(out);
    ck_assert_int_eq(run_merged(&out, "%s %s --golden %s/golden.safetensors", EXO_GOLDEN_BIN, dir, FIXTURE), 1);
    expect(out, "exo-golden: loading the whole model: EXO_ERR_NOT_FOUND");
    free(out);
    ck_assert_int_eq(run_merged(&out, "%s --model %s -p 2 -n 1 -r 1 -t 1 --no-stream", EXO_BENCH_BIN, dir), 1);
    expect(out, "exo-bench: loading the model: EXO_ERR_NOT_FOUND");
    free(out);
    rmdir_all(dir);
}
END_TEST

/* Quantized synthetic models (MLX affine, issue 13): exo-synth writes mlx-lm's layout, the
 * runtime loads and runs it packed, and exo-bench counts the bytes the packed codes, scales and
 * biases take (bf16 scales and biases: 2 x 2 bytes per group). */
static double tiny_quant_bytes_per_token(double bits, double group) {
    double m = bits / 8 + 4.0 / group;
    double matrices = TINY_LAYERS * (2.0 * TINY_HIDDEN * TINY_HEADS * TINY_HEAD_DIM +
                                     2.0 * TINY_HIDDEN * TINY_KV_HEADS * TINY_HEAD_DIM + 3.0 * TINY_HIDDEN * TINY_FFN) +
                      TINY_HIDDEN + (double)TINY_VOCAB * TINY_HIDDEN;
    double norms = TINY_LAYERS * 2.0 * TINY_HIDDEN + TINY_HIDDEN;
    return matrices * m + norms * 2;
}

START_TEST(synth_quantized_models_load_run_and_bench) {
    static const struct { const char *spec; uint32_t bits, group; } cases[] = {
        {"mlx-q4-g64", 4, 64}, {"mlx-q8-g32", 8, 32}, {"mlx-q3-g32", 3, 32}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char *dir = tmpdir(), args[128];
        snprintf(args, sizeof args, "--preset tiny --seed 5 --quant %s", cases[c].spec);
        ck_assert_int_eq(synth(args, dir), 0);
        size_t n;
        unsigned char *cfg = read_file(dir, "config.json", &n);
        cJSON *j = cJSON_Parse((const char *)cfg);
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(j, "quantization");
        ck_assert_msg(cJSON_IsObject(q), "%s: no quantization block", cases[c].spec);
        ck_assert_double_eq(cJSON_GetObjectItemCaseSensitive(q, "bits")->valuedouble, cases[c].bits);
        ck_assert_double_eq(cJSON_GetObjectItemCaseSensitive(q, "group_size")->valuedouble, cases[c].group);
        cJSON_Delete(j);
        free(cfg);
        unsigned char *st = read_file(dir, "model.safetensors", &n);
        ck_assert_ptr_nonnull(strstr((const char *)st + 8, "\"model.layers.0.mlp.down_proj.weight\":{\"dtype\":\"U32\""));
        ck_assert_ptr_nonnull(strstr((const char *)st + 8, "\"model.embed_tokens.scales\":{\"dtype\":\"BF16\""));
        ck_assert_ptr_nonnull(strstr((const char *)st + 8, "\"lm_head.biases\":{\"dtype\":\"BF16\""));
        free(st);

        loaded l;
        load(dir, &l);
        ck_assert_uint_eq(l.info.quant_bits, cases[c].bits);
        ck_assert_uint_eq(l.info.quant_group, cases[c].group);
        exo_shard_info si;
        EXO_STRUCT_INIT(&si);
        ck_assert_int_eq(exo_shard_get_info(l.shard, &si), EXO_OK);
        /* On the device: the packed words, scales and biases of every matrix, the embedding
         * and the untied lm_head, the bf16 norms; nothing expanded to float. */
        double m = cases[c].bits / 8.0 + 4.0 / cases[c].group;
        double stored = (TINY_LAYERS * (2.0 * TINY_HIDDEN * TINY_HEADS * TINY_HEAD_DIM +
                                        2.0 * TINY_HIDDEN * TINY_KV_HEADS * TINY_HEAD_DIM +
                                        3.0 * TINY_HIDDEN * TINY_FFN) +
                         2.0 * TINY_VOCAB * TINY_HIDDEN) * m +
                        (TINY_LAYERS * 2.0 * TINY_HIDDEN + TINY_HIDDEN) * 2 +
                        TINY_HEAD_DIM / 2 * 4.0; /* and RoPE's inv_freq, f32 */
        ck_assert_msg(si.weight_bytes == (uint64_t)stored, "%s: %llu weight bytes on the device, expected %.0f",
                      cases[c].spec, (unsigned long long)si.weight_bytes, stored);
        float *logits = prompt_logits(&l);
        double sum = 0;
        for (uint32_t i = 0; i < TINY_VOCAB; i++) {
            ck_assert_msg(isfinite(logits[i]), "%s: logit %u not finite", cases[c].spec, i);
            sum += fabs(logits[i]);
        }
        ck_assert_msg(sum > 0, "%s: all logits zero", cases[c].spec);
        free(logits);
        unload(&l);

        char cmd[4096], *out = NULL;
        snprintf(cmd, sizeof cmd, "%s --model %s --device cpu_amx -p 8 -n 4 -r 1 -t 1 --no-stream --json",
                 EXO_BENCH_BIN, dir);
        ck_assert_int_eq(run(cmd, &out), 0);
        cJSON *b = last_json_line(out);
        ck_assert_double_eq(number(b, "quant_bits"), cases[c].bits);
        ck_assert_double_eq(number(b, "quant_group"), cases[c].group);
        ck_assert_double_eq_tol(number(b, "decode_bytes_per_token"),
                                tiny_quant_bytes_per_token(cases[c].bits, cases[c].group), 1e-6);
        ck_assert_double_eq(number(b, "device_weight_bytes"), (double)(uint64_t)stored);
        ck_assert_msg(number(b, "decode_tps") > 0, "%s: no decode speed", cases[c].spec);
        cJSON_Delete(b);
        free(out);
        rmdir_all(dir);
    }
}
END_TEST

START_TEST(synth_quant_spec_is_parsed_strictly) {
    char *dir = tmpdir(), cmd[4096], *out = NULL;
    static const char *const bad[] = {"mlx-q7-g64", "mlx-q4-g48", "mlx-q4-g64x", "q4", "mlx-q04-g64", "MLX-Q4-G64"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s --preset tiny --quant %s --out %s --quiet 2>&1", EXO_SYNTH_BIN, bad[i], dir);
        ck_assert_int_eq(run(cmd, &out), 2);
        expect(out, "exo-synth: --quant expects mlx-q<bits>-g<group>");
        free(out);
    }
    /* The tiny preset's widths (64) hold no group of 128. */
    snprintf(cmd, sizeof cmd, "%s --preset tiny --quant mlx-q4-g128 --out %s --quiet 2>&1", EXO_SYNTH_BIN, dir);
    ck_assert_int_eq(run(cmd, &out), 2);
    expect(out, "is not a multiple of the group size 128");
    free(out);
    rmdir_all(dir);
}
END_TEST

/* ------------------------------------------------------------------ MoE synthetic models */

/* The tiny-moe preset (tools/exo-synth/presets.c), written out again on purpose: qwen3_moe,
 * layer 0 dense (mlp_only_layers), layers 1-2 sparse. The attention and vocab are tiny's. */
#define MOE_LAYERS 3
#define MOE_DENSE_LAYERS 1
#define MOE_EXPERTS 8
#define MOE_TOPK 2
#define MOE_WIDTH 64

/* Weights one token reads at m bytes per matrix weight (experts at me, routers at mr, norms at
 * 2 bytes): attention of every layer, layer 0's dense MLP, the routers and k of the E experts of
 * the sparse layers, every RMSNorm (q/k norms left out, as exo-bench does), one embedding row
 * and the untied lm_head. */
static double moe_bytes_per_token(double m, double me, double mr) {
    double h = TINY_HIDDEN, attention = 2.0 * h * TINY_HEADS * TINY_HEAD_DIM + 2.0 * h * TINY_KV_HEADS * TINY_HEAD_DIM;
    double matrices = MOE_LAYERS * attention + MOE_DENSE_LAYERS * 3.0 * h * TINY_FFN + h + TINY_VOCAB * h;
    double sparse = MOE_LAYERS - MOE_DENSE_LAYERS;
    double experts = sparse * MOE_TOPK * 3.0 * h * MOE_WIDTH, routers = sparse * MOE_EXPERTS * h;
    return matrices * m + experts * me + routers * mr + (2.0 * MOE_LAYERS + 1) * h * 2;
}

/* exo-bench's JSON line for a model, with its MoE figures checked against the preset. */
static void check_moe_bench(const char *dir, double m, double me, double mr) {
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s --model %s --device cpu_amx -p 8 -n 4 -r 1 -t 1 --no-stream --json 2>&1",
             EXO_BENCH_BIN, dir);
    ck_assert_int_eq(run(cmd, &out), 0);
    ck_assert_msg(strstr(out, "experts: 2 sparse layers, top-2 of 8") != NULL, "no experts line: %s", out);
    cJSON *j = last_json_line(out);
    double sparse = MOE_LAYERS - MOE_DENSE_LAYERS, expert = 3.0 * TINY_HIDDEN * MOE_WIDTH;
    ck_assert_double_eq(number(j, "n_experts"), MOE_EXPERTS);
    ck_assert_double_eq(number(j, "n_experts_per_tok"), MOE_TOPK);
    ck_assert_double_eq(number(j, "n_moe_layers"), sparse);
    ck_assert_double_eq_tol(number(j, "expert_bytes_total"), sparse * MOE_EXPERTS * expert * me, 1e-6);
    ck_assert_double_eq_tol(number(j, "expert_bytes_per_token"), sparse * MOE_TOPK * expert * me, 1e-6);
    ck_assert_double_eq_tol(number(j, "router_bytes_per_token"), sparse * MOE_EXPERTS * TINY_HIDDEN * mr, 1e-6);
    ck_assert_double_eq_tol(number(j, "decode_bytes_per_token"), moe_bytes_per_token(m, me, mr), 1e-6);
    ck_assert_msg(number(j, "decode_tps") > 0, "%s: no decode speed", dir);
    cJSON_Delete(j);
    free(out);
}

static void check_moe_info(const loaded *l, uint32_t router_bits, uint32_t router_group) {
    ck_assert_str_eq(l->info.architecture, "qwen3_moe");
    ck_assert_uint_eq(l->info.n_layers, MOE_LAYERS);
    ck_assert_uint_eq(l->info.n_experts, MOE_EXPERTS);
    ck_assert_uint_eq(l->info.n_experts_per_tok, MOE_TOPK);
    ck_assert_uint_eq(l->info.moe_intermediate_size, MOE_WIDTH);
    ck_assert_uint_eq(l->info.n_moe_layers, MOE_LAYERS - MOE_DENSE_LAYERS);
    ck_assert_uint_eq(l->info.router_quant_bits, router_bits);
    ck_assert_uint_eq(l->info.router_quant_group, router_group);
}

START_TEST(synth_tiny_moe_has_the_hub_layout_and_runs) {
    char *dir = tmpdir();
    ck_assert_int_eq(synth("--preset tiny-moe --seed 4", dir), 0);
    size_t n;
    char *st = (char *)read_file(dir, "model.safetensors", &n);
    /* transformers' names: per-expert tensors and the router in sparse layers, a dense MLP in
     * layer 0, q/k norms. */
    static const char *const present[] = {
        "\"model.layers.1.mlp.experts.7.down_proj.weight\":{\"dtype\":\"BF16\",\"shape\":[64,64]",
        "\"model.layers.2.mlp.experts.0.gate_proj.weight\":{\"dtype\":\"BF16\",\"shape\":[64,64]",
        "\"model.layers.2.mlp.gate.weight\":{\"dtype\":\"BF16\",\"shape\":[8,64]",
        "\"model.layers.0.mlp.up_proj.weight\":{\"dtype\":\"BF16\",\"shape\":[128,64]",
        "\"model.layers.0.self_attn.k_norm.weight\":{\"dtype\":\"BF16\",\"shape\":[16]"};
    for (size_t i = 0; i < sizeof present / sizeof present[0]; i++)
        ck_assert_msg(strstr(st + 8, present[i]) != NULL, "header lacks %s", present[i]);
    ck_assert_ptr_null(strstr(st + 8, "model.layers.0.mlp.experts."));
    ck_assert_ptr_null(strstr(st + 8, "model.layers.1.mlp.gate_proj"));
    ck_assert_ptr_null(strstr(st + 8, "model.layers.1.mlp.experts.8."));
    free(st);
    loaded l;
    load(dir, &l);
    check_moe_info(&l, 0, 0);
    float *logits = prompt_logits(&l);
    double sumsq = 0;
    for (int i = 0; i < TINY_VOCAB; i++) {
        ck_assert_msg(isfinite(logits[i]), "logit %d is %g", i, logits[i]);
        sumsq += (double)logits[i] * logits[i];
    }
    ck_assert_msg(sumsq > 0, "all logits are zero");
    free(logits);
    unload(&l);
    /* bf16: everything 2 bytes a weight; only k of the E experts count per token. */
    check_moe_bench(dir, 2, 2, 2);
    /* Quantized on load: attention, dense MLP, embedding and lm_head packed; experts and routers
     * stay bf16, as the loader leaves them. */
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s --model %s --device cpu_amx --quantize mlx-q4-g32 -p 4 -n 2 -r 1 -t 1 --no-stream --json",
             EXO_BENCH_BIN, dir);
    ck_assert_int_eq(run(cmd, &out), 0);
    cJSON *j = last_json_line(out);
    ck_assert_double_eq_tol(number(j, "decode_bytes_per_token"), moe_bytes_per_token(0.5 + 4.0 / 32, 2, 2), 1e-6);
    cJSON_Delete(j);
    free(out);
    rmdir_all(dir);
}
END_TEST

/* The tensors of a safetensors file, parsed here (the public reader refuses U32 on purpose). */
typedef struct st_file {
    unsigned char *bytes;
    size_t len;
    cJSON *header;
    const unsigned char *data;
} st_file;

static void st_open(const char *dir, st_file *f) {
    f->bytes = read_file(dir, "model.safetensors", &f->len);
    uint64_t hlen = 0;
    for (int b = 7; b >= 0; b--) hlen = hlen << 8 | f->bytes[b];
    ck_assert_uint_le(8 + hlen, f->len);
    f->header = cJSON_ParseWithLength((const char *)f->bytes + 8, hlen);
    ck_assert_ptr_nonnull(f->header);
    f->data = f->bytes + 8 + hlen;
}

static const void *st_tensor(const st_file *f, const char *name, const char *dtype, int64_t *shape, int *n_dims) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(f->header, name);
    ck_assert_msg(cJSON_IsObject(t), "tensor %s missing", name);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(t, "dtype")->valuestring, dtype);
    *n_dims = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(t, "shape")) shape[(*n_dims)++] = (int64_t)d->valuedouble;
    return f->data + (size_t)cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(t, "data_offsets"), 0)->valuedouble;
}

static float bf16_value(const void *p, size_t i) {
    uint16_t h;
    memcpy(&h, (const unsigned char *)p + 2 * i, 2);
    uint32_t u = (uint32_t)h << 16;
    float v;
    memcpy(&v, &u, 4);
    return v;
}

/* A float32 safetensors file written tensor by tensor: names, shapes and data kept until the end. */
typedef struct st_out {
    cJSON *header;
    float *data;
    size_t n, cap;
} st_out;

static float *st_add(st_out *o, const char *name, int n_dims, const int64_t *shape) {
    size_t count = 1;
    cJSON *t = cJSON_AddObjectToObject(o->header, name), *s = cJSON_AddArrayToObject(t, "shape");
    for (int d = 0; d < n_dims; d++) {
        cJSON_AddItemToArray(s, cJSON_CreateNumber((double)shape[d]));
        count *= (size_t)shape[d];
    }
    cJSON_AddStringToObject(t, "dtype", "F32");
    cJSON *offs = cJSON_AddArrayToObject(t, "data_offsets");
    cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(o->n * 4)));
    cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)((o->n + count) * 4)));
    if (o->n + count > o->cap) {
        o->cap = (o->n + count) * 2;
        o->data = realloc(o->data, o->cap * sizeof *o->data);
        ck_assert_ptr_nonnull(o->data);
    }
    o->n += count;
    return o->data + o->n - count;
}

/* Dequantizes an MLX module (w = scale * q + bias; element j of a row in bits [j*bits, (j+1)*bits)
 * of the row's little-endian bit stream, MLX's layout) into float rows [rows, cols]. */
static void dequantize_rows(const uint32_t *packed, const void *scales, const void *biases, size_t row0, size_t rows,
                            size_t cols, uint32_t bits, uint32_t group, float *out) {
    size_t words = cols * bits / 32, groups = cols / group;
    for (size_t r = 0; r < rows; r++) {
        const uint32_t *row = packed + (row0 + r) * words;
        for (size_t j = 0; j < cols; j++) {
            size_t bit = j * bits;
            uint64_t w = row[bit / 32] | (bit / 32 + 1 < words ? (uint64_t)row[bit / 32 + 1] << 32 : 0);
            uint32_t q = (uint32_t)(w >> (bit % 32)) & ((1u << bits) - 1);
            size_t g = (row0 + r) * groups + j / group;
            out[r * cols + j] = bf16_value(scales, g) * (float)q + bf16_value(biases, g);
        }
    }
}

/* Writes DIR/model.safetensors and config.json: the quantized model QDIR dequantized to float32
 * in the hub's layout (stacked switch_mlp experts split into mlp.experts.E.*), the config without
 * its quantization. */
static void write_dequantized_copy(const char *qdir, const char *dir, uint32_t bits, uint32_t group) {
    st_file q;
    st_open(qdir, &q);
    st_out o = {cJSON_CreateObject(), NULL, 0, 0};
    const cJSON *t;
    cJSON_ArrayForEach(t, q.header) {
        const char *name = t->string, *dtype = cJSON_GetObjectItemCaseSensitive(t, "dtype") ?
            cJSON_GetObjectItemCaseSensitive(t, "dtype")->valuestring : NULL;
        size_t len = strlen(name);
        if (!dtype || (len > 7 && (!strcmp(name + len - 7, ".scales") || !strcmp(name + len - 7, ".biases")))) continue;
        int64_t shape[4];
        int nd;
        const void *src = st_tensor(&q, name, dtype, shape, &nd);
        if (!strcmp(dtype, "BF16")) { /* norms */
            float *dst = st_add(&o, name, nd, shape);
            for (int64_t i = 0; i < shape[0]; i++) dst[i] = bf16_value(src, (size_t)i);
            continue;
        }
        ck_assert_str_eq(dtype, "U32");
        char module[128], part[160];
        snprintf(module, sizeof module, "%.*s", (int)(len - 7), name);
        /* The router: mlx-lm's 8-bit g64 override, as config.json says. */
        uint32_t b = strstr(name, "mlp.gate.weight") ? 8 : bits, g = strstr(name, "mlp.gate.weight") ? 64 : group;
        int64_t ss[4], bs[4];
        int snd, bnd;
        snprintf(part, sizeof part, "%s.scales", module);
        const void *scales = st_tensor(&q, part, "BF16", ss, &snd);
        snprintf(part, sizeof part, "%s.biases", module);
        const void *biases = st_tensor(&q, part, "BF16", bs, &bnd);
        int64_t cols = shape[nd - 1] * 32 / b, rows = shape[nd - 2];
        ck_assert_int_eq(ss[snd - 1], cols / g);
        const char *sw = strstr(module, "mlp.switch_mlp.");
        if (!sw) {
            int64_t fs[2] = {rows, cols};
            dequantize_rows(src, scales, biases, 0, (size_t)rows, (size_t)cols, b, g, st_add(&o, name, 2, fs));
            continue;
        }
        ck_assert_int_eq(nd, 3);
        for (int64_t e = 0; e < shape[0]; e++) {
            snprintf(part, sizeof part, "%.*smlp.experts.%lld.%s.weight", (int)(sw - module), module, (long long)e,
                     sw + strlen("mlp.switch_mlp."));
            int64_t fs[2] = {rows, cols};
            dequantize_rows(src, scales, biases, (size_t)(e * rows), (size_t)rows, (size_t)cols, b, g,
                            st_add(&o, part, 2, fs));
        }
    }
    char *json = cJSON_PrintUnformatted(o.header);
    size_t jl = strlen(json), padded = (jl + 7) & ~(size_t)7;
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(padded >> (8 * i));
    ck_assert_uint_eq(fwrite(le, 1, 8, f), 8);
    ck_assert_uint_eq(fwrite(json, 1, jl, f), jl);
    for (size_t i = jl; i < padded; i++) fputc(' ', f);
    ck_assert_uint_eq(fwrite(o.data, sizeof *o.data, o.n, f), o.n);
    ck_assert_int_eq(fclose(f), 0);
    free(json);
    cJSON_Delete(o.header);
    free(o.data);
    cJSON_Delete(q.header);
    free(q.bytes);

    size_t n;
    char *text = (char *)read_file(qdir, "config.json", &n);
    cJSON *cfg = cJSON_Parse(text);
    ck_assert_ptr_nonnull(cfg);
    cJSON_DeleteItemFromObjectCaseSensitive(cfg, "quantization");
    cJSON_DeleteItemFromObjectCaseSensitive(cfg, "quantization_config");
    cJSON_ReplaceItemInObjectCaseSensitive(cfg, "torch_dtype", cJSON_CreateString("float32"));
    char *out = cJSON_Print(cfg);
    snprintf(path, sizeof path, "%s/config.json", dir);
    f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(out, f);
    ck_assert_int_eq(fclose(f), 0);
    free(out);
    cJSON_Delete(cfg);
    free(text);
}

/* exo-synth's quantized MoE is mlx-lm's layout (stacked switch_mlp experts, 8-bit router by
 * override), and the runtime reads it as such: its logits equal (to float rounding) those of the
 * same weights dequantized into a float checkpoint with per-expert tensors, which the runtime runs
 * through its float expert table instead. A wrong expert slice, bit order, group or router
 * override shows up as a large difference. */
START_TEST(synth_quantized_moe_matches_its_dequantized_float_copy) {
    static const struct { const char *spec; uint32_t bits, group; } cases[] = {{"mlx-q4-g32", 4, 32},
                                                                              {"mlx-q3-g64", 3, 64}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char *qdir = tmpdir(), *fdir = tmpdir(), args[128];
        snprintf(args, sizeof args, "--preset tiny-moe --seed 9 --quant %s", cases[c].spec);
        ck_assert_int_eq(synth(args, qdir), 0);
        size_t n;
        char *st = (char *)read_file(qdir, "model.safetensors", &n);
        char want[160];
        snprintf(want, sizeof want, "\"model.layers.1.mlp.switch_mlp.down_proj.weight\":{\"dtype\":\"U32\",\"shape\":[8,64,%u]",
                 64 * cases[c].bits / 32);
        ck_assert_msg(strstr(st + 8, want) != NULL, "%s: header lacks %s", cases[c].spec, want);
        ck_assert_msg(strstr(st + 8, "\"model.layers.2.mlp.gate.weight\":{\"dtype\":\"U32\",\"shape\":[8,16]") != NULL,
                      "%s: router not 8-bit", cases[c].spec);
        ck_assert_ptr_null(strstr(st + 8, "mlp.experts."));
        free(st);
        write_dequantized_copy(qdir, fdir, cases[c].bits, cases[c].group);

        loaded lq, lf;
        load(qdir, &lq);
        check_moe_info(&lq, 8, 64);
        load(fdir, &lf);
        check_moe_info(&lf, 0, 0);
        ck_assert_int_eq(lf.info.dtype, EXO_DTYPE_F32);
        float *a = prompt_logits(&lq), *b = prompt_logits(&lf);
        double diff = 0, ref = 0;
        for (int i = 0; i < TINY_VOCAB; i++) {
            ck_assert_msg(isfinite(a[i]), "%s: logit %d is %g", cases[c].spec, i, a[i]);
            diff += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
            ref += (double)b[i] * b[i];
        }
        ck_assert_msg(ref > 0, "all logits are zero");
        ck_assert_msg(sqrt(diff / ref) < 1e-5, "%s: quantized vs dequantized float logits differ by %g (relative)",
                      cases[c].spec, sqrt(diff / ref));
        free(a);
        free(b);
        unload(&lq);
        unload(&lf);

        double m = cases[c].bits / 8.0 + 4.0 / cases[c].group;
        check_moe_bench(qdir, m, m, 1.0 + 4.0 / 64);
        rmdir_all(qdir);
        rmdir_all(fdir);
    }
}
END_TEST

/* exo-bench on MoE checkpoints as others wrote them: mixtral (transformers, float32,
 * block_sparse_moe) and qwen3_moe as mlx-lm writes it (q4-g32; the routers 8-bit g32 by override;
 * the experts' down_proj, 48 wide, left bf16 because 48 holds no whole group of 32). Per token:
 * attention, k of the E experts and the router of each sparse layer, norms, one embedding row and
 * the lm_head, each at its stored size. */
START_TEST(bench_counts_active_experts_of_published_checkpoints) {
    static const struct {
        const char *dir;
        double experts, k, width, m, m_down, m_router, b; /* bytes per weight: matrices, experts' down, router, float */
    } cases[] = {
        {EXO_TEST_DATA "/moe-tiny/mixtral", 6, 2, 96, 4, 4, 4, 4},
        {EXO_TEST_DATA "/mlx-tiny/qwen3_moe-q4-g32", 8, 2, 48, 0.5 + 4.0 / 32, 2, 1 + 4.0 / 32, 2},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double h = TINY_HIDDEN, layers = 3, w = cases[c].width;
        double attention = (2.0 * h * TINY_HEADS * TINY_HEAD_DIM + 2.0 * h * TINY_KV_HEADS * TINY_HEAD_DIM) * cases[c].m;
        double expert = 2 * h * w * cases[c].m + h * w * cases[c].m_down;
        double router = cases[c].experts * h * cases[c].m_router;
        double want = layers * (attention + cases[c].k * expert + router) + (h + TINY_VOCAB * h) * cases[c].m +
                      (2 * layers + 1) * h * cases[c].b;
        char cmd[4096], *out = NULL;
        snprintf(cmd, sizeof cmd, "%s --model %s --device cpu_amx -p 4 -n 2 -r 1 -t 1 --no-stream --json", EXO_BENCH_BIN,
                 cases[c].dir);
        ck_assert_int_eq(run(cmd, &out), 0);
        cJSON *j = last_json_line(out);
        ck_assert_double_eq(number(j, "n_experts"), cases[c].experts);
        ck_assert_double_eq(number(j, "n_experts_per_tok"), cases[c].k);
        ck_assert_double_eq(number(j, "n_moe_layers"), layers);
        ck_assert_double_eq_tol(number(j, "expert_bytes_total"), layers * cases[c].experts * expert, 1e-6);
        ck_assert_double_eq_tol(number(j, "router_bytes_per_token"), layers * router, 1e-6);
        ck_assert_msg(fabs(number(j, "decode_bytes_per_token") - want) < 1e-6, "%s: %.0f bytes per token, expected %.0f",
                      cases[c].dir, number(j, "decode_bytes_per_token"), want);
        cJSON_Delete(j);
        free(out);
    }
}
END_TEST

static Suite *tools_suite(void) {
    Suite *s = suite_create("tools");
    TCase *synth_tc = tcase_create("exo-synth");
    tcase_set_timeout(synth_tc, 120);
    tcase_add_test(synth_tc, synth_tiny_is_a_model_the_runtime_runs);
    tcase_add_test(synth_tc, synth_tokenizer_round_trips_text);
    tcase_add_test(synth_tc, synth_same_seed_same_bytes);
    tcase_add_test(synth_tc, synth_different_seed_different_weights);
    tcase_add_test(synth_tc, synth_sharded_equals_single_file);
    tcase_add_test(synth_tc, synth_rewrite_replaces_the_layout);
    tcase_add_test(synth_tc, synth_dtypes_are_what_was_asked);
    tcase_add_test(synth_tc, synth_rejects_unknown_preset_and_dtype);
    tcase_add_test(synth_tc, synth_quantized_models_load_run_and_bench);
    tcase_add_test(synth_tc, synth_quant_spec_is_parsed_strictly);
    tcase_add_test(synth_tc, synth_tiny_moe_has_the_hub_layout_and_runs);
    tcase_add_test(synth_tc, synth_quantized_moe_matches_its_dequantized_float_copy);
    suite_add_tcase(s, synth_tc);
    TCase *bench_tc = tcase_create("exo-bench");
    tcase_set_timeout(bench_tc, 120);
    tcase_add_test(bench_tc, bench_json_has_positive_figures);
    tcase_add_test(bench_tc, bench_no_stream_leaves_out_the_bandwidth);
    tcase_add_test(bench_tc, bench_fails_cleanly_without_a_model);
    tcase_add_test(bench_tc, bench_batch_reports_the_step);
    tcase_add_test(bench_tc, bench_counts_active_experts_of_published_checkpoints);
    suite_add_tcase(s, bench_tc);
    TCase *cli_tc = tcase_create("command lines");
    tcase_set_timeout(cli_tc, 120);
    tcase_add_test(cli_tc, tools_refuse_fractional_negative_exponent_and_overflowing_counts);
    tcase_add_test(cli_tc, run_help_says_what_zero_and_minus_one_mean);
    tcase_add_test(cli_tc, device_index_overflow_is_refused_by_every_tool);
    tcase_add_test(cli_tc, run_without_tokenizer_fails_before_loading_weights);
    tcase_add_test(cli_tc, run_failure_paths_free_what_they_opened);
    tcase_add_test(cli_tc, golden_and_bench_failure_paths_free_what_they_opened);
    suite_add_tcase(s, cli_tc);
    return s;
}

int main(void) {
    return exo_check_run(tools_suite(), CK_FORK_GETENV);
}
