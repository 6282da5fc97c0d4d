/* exo-bench: prefill and decode speed of a model on one device, against the machine's limits.
 *
 *   exo-bench --model DIR [--device D | --devices A,B [--tensor-parallel N]] [--quantize mlx-q4-g64] [--kv-dtype bf16] [-p 512] [-n 128] [-t THREADS] [-r REPS] [--batch N] [--json] [--no-stream]
 *
 * Like llama-bench: a prompt of p tokens in one forward step (prefill), then n single-token steps
 * (decode), repeated r times after a warmup; mean +- sample sd over the repetitions. Decode is
 * bound by memory bandwidth, so it also reports the bytes of weights read per token, the GB/s that
 * makes, and (unless --no-stream) the machine's own read bandwidth measured in the same run with
 * the same thread count: decode GB/s as a fraction of it is how close to the hardware limit we are.
 * A GPU plugin (ABI 1.8) measures its device's own read bandwidth instead (exo_shard_read_bandwidth).
 * A mixture of experts reads per token only the k experts its router chose in each sparse layer:
 * those are what its bytes count (model_cost.h), next to the experts' stored total.
 * --json: the last line of stdout is one JSON object with every figure. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cli_number.h"
#include "monotonic_clock.h"
#include "exo.h"
#include "batch_bench.h"
#include "model_cost.h"
#include "read_bandwidth.h"
#include "summary.h"

#define STREAM_BYTES ((size_t)1 << 30)
#define STREAM_PASSES 6
#define WARMUP_DECODE_STEPS 4

typedef struct bench_options {
    const char *model_dir, *device;
    const char *devices;              /* --devices: a pipeline across them (docs/placement.md) */
    uint32_t tensor_parallel;         /* --tensor-parallel: every layer split over N of them */
    uint32_t n_prompt, n_gen, threads, reps;
    uint32_t batch;                   /* --batch: sequences stepped together (0: none) */
    uint32_t quant_bits, quant_group; /* --quantize: on load; 0 = as stored */
    uint32_t kv_dtype;                /* --kv-dtype: exo_kv_dtype; 0 = the library's default */
    int json, no_stream;
} bench_options;

typedef struct bench_results {
    double load_s;
    summary prefill_tps, decode_tps, ttft_ms, step_ms;
    uint64_t peak_rss_bytes;
    double loadavg;     /* 1-minute load average before the run: other work on the machine */
    read_bandwidth stream;
    int have_stream;
    batch_results batch;              /* --batch */
} bench_results;

static void usage(FILE *f) {
    fprintf(f,
            "usage: exo-bench --model DIR [options]\n"
            "  --model DIR        Hugging Face model directory\n"
            "  --device D         plugin[:index] (default: the best device; see exo-probe)\n"
            "  --devices A,B,...  spread the model over these devices (a pipeline of layer ranges)\n"
            "  --tensor-parallel N  split every layer over the first N of --devices instead\n"
            "  --quantize SPEC    quantize a float checkpoint on load: mlx-q<bits>-g<group>, e.g. mlx-q4-g64\n"
            "                     (bits 2-6 or 8, group 32/64/128; bytes per token count the packed size)\n"
            "  --kv-dtype T       KV cache f32, bf16 or f16 (default: EXO_KV_DTYPE, else bf16 where the device\n"
            "                     takes it); KV bytes count its element size\n"
            "  -p N               prompt tokens, run as one prefill step (default 512)\n"
            "  -n N               tokens decoded one at a time after the prefill (default 128)\n"
            "  -t N               CPU threads (default: all cores)\n"
            "  -r N               repetitions after one warmup (default 3)\n"
            "  --batch N          also N sequences stepped together (exo_session_forward_batch): aggregate and\n"
            "                     per-sequence decode tok/s, a prompt prefilled while the others decode, KV bytes\n"
            "  --json             last line of stdout: one JSON object with every figure\n"
            "  --no-stream        skip the read-bandwidth measurement (1 GiB, a second or two)\n");
}

static int parse_count(const char *flag, const char *text, uint32_t lo, uint32_t hi, uint32_t *out) {
    return cli_parse_u32("exo-bench", flag, text, lo, hi, out);
}

static int parse_args(int argc, char **argv, bench_options *o) {
    memset(o, 0, sizeof *o);
    o->n_prompt = 512;
    o->n_gen = 128;
    o->reps = 3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--json") == 0) {
            o->json = 1;
            continue;
        } else if (strcmp(a, "--no-stream") == 0) {
            o->no_stream = 1;
            continue;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "exo-bench: %s needs a value (or is unknown)\n", a);
            return 0;
        }
        i++;
        if (strcmp(a, "--model") == 0 || strcmp(a, "-m") == 0) o->model_dir = v;
        else if (strcmp(a, "--device") == 0) o->device = v;
        else if (strcmp(a, "--devices") == 0) o->devices = v;
        else if (strcmp(a, "--tensor-parallel") == 0) { if (!parse_count(a, v, 2, 16, &o->tensor_parallel)) return 0; }
        else if (strcmp(a, "--quantize") == 0) {
            if (!cli_parse_quant("exo-bench", a, v, &o->quant_bits, &o->quant_group)) return 0;
        }
        else if (strcmp(a, "--kv-dtype") == 0) { if (!cli_parse_kv_dtype("exo-bench", a, v, &o->kv_dtype)) return 0; }
        else if (strcmp(a, "-p") == 0) { if (!parse_count(a, v, 1, 1u << 20, &o->n_prompt)) return 0; }
        else if (strcmp(a, "-n") == 0) { if (!parse_count(a, v, 1, 1u << 20, &o->n_gen)) return 0; }
        else if (strcmp(a, "-t") == 0) { if (!parse_count(a, v, 1, 4096, &o->threads)) return 0; }
        else if (strcmp(a, "-r") == 0) { if (!parse_count(a, v, 1, 1000, &o->reps)) return 0; }
        else if (strcmp(a, "--batch") == 0) { if (!parse_count(a, v, 1, 256, &o->batch)) return 0; }
        else {
            fprintf(stderr, "exo-bench: unknown option '%s'\n", a);
            return 0;
        }
    }
    if (!o->model_dir) {
        fprintf(stderr, "exo-bench: --model DIR is required\n");
        return 0;
    }
    return 1;
}

static int fail(const char *what, exo_status st, const char *detail) {
    fprintf(stderr, "exo-bench: %s: %s: %s\n", what, exo_status_name(st),
            detail && *detail ? detail : exo_last_error());
    return 1;
}

static const char *dtype_name(exo_dtype d) {
    switch (d) {
    case EXO_DTYPE_F32: return "f32";
    case EXO_DTYPE_F16: return "f16";
    case EXO_DTYPE_BF16: return "bf16";
    case EXO_DTYPE_Q8_0: return "q8_0";
    default: return "?";
    }
}

/* The benchmark's state: everything one repetition needs, and everything main opens or
 * allocates, so that one path (finish) frees it whichever step fails. */
typedef struct bench {
    const bench_options *o;
    exo_runtime *rt;
    exo_model *model;
    exo_shard *shard;
    exo_session *session;
    int32_t *prompt;
    uint32_t vocab;
    double *step_s; /* every decode step of every repetition */
    size_t n_steps;
    double *prefill_tps, *decode_tps, *ttft_ms; /* one per repetition */
} bench;

/* Closes the session, shard, model and runtime, children first. The success path calls it
 * before the bandwidth sweep (the runtime's worker threads must not compete with it); finish
 * calls it again, which then finds nothing to close. */
static void close_runtime(bench *b) {
    exo_session_destroy(b->session);
    exo_shard_destroy(b->shard);
    exo_model_destroy(b->model);
    exo_runtime_destroy(b->rt);
    b->session = NULL;
    b->shard = NULL;
    b->model = NULL;
    b->rt = NULL;
}

/* Frees everything main holds and returns rc: every exit after parsing goes through here, the
 * failures included (tests/tools runs them under LeakSanitizer). */
static int finish(bench *b, int rc) {
    close_runtime(b);
    free(b->prompt);
    free(b->step_s);
    free(b->prefill_tps);
    free(b->decode_tps);
    free(b->ttft_ms);
    return rc;
}

/* One prefill of the prompt, then n_decode greedy single-token steps, each token picked by the
 * engine (EXO_FORWARD_ARGMAX: on the device where its plugin can). Times go to the out-params
 * (any may be NULL); step times are appended to b->step_s when record is set. */
static int run_once(bench *b, uint32_t n_decode, int record, double *prefill_s, double *ttft_s, double *decode_s) {
    exo_status st = exo_session_reset(b->session);
    if (st != EXO_OK) return fail("session reset", st, exo_session_last_error(b->session));
    double t0 = now_s();
    float pick = 0;
    st = exo_session_forward_tokens(b->session, b->prompt, b->o->n_prompt, EXO_FORWARD_ARGMAX, &pick, 1);
    if (st != EXO_OK) return fail("prefill", st, exo_session_last_error(b->session));
    double t1 = now_s();
    int32_t token = (int32_t)pick;
    double t2 = now_s();
    double decode = 0;
    for (uint32_t i = 0; i < n_decode; i++) {
        double s0 = now_s();
        st = exo_session_forward_tokens(b->session, &token, 1, EXO_FORWARD_ARGMAX, &pick, 1);
        if (st != EXO_OK) return fail("decode step", st, exo_session_last_error(b->session));
        token = (int32_t)pick;
        double dt = now_s() - s0;
        decode += dt;
        if (record) b->step_s[b->n_steps++] = dt;
    }
    if (prefill_s) *prefill_s = t1 - t0;
    if (ttft_s) *ttft_s = t2 - t0;
    if (decode_s) *decode_s = decode;
    return 0;
}

static uint64_t peak_rss_bytes(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (uint64_t)ru.ru_maxrss * 1024; /* Linux reports kB */
}

static void add(cJSON *o, const char *k, double v) { cJSON_AddNumberToObject(o, k, v); }

static void report(const bench_options *o, const exo_model_info *mi, const exo_shard_info *si, const model_cost *c,
                   const bench_results *r, uint32_t threads) {
    double mean_ctx = o->n_prompt + (o->n_gen + 1) / 2.0; /* positions attended, averaged over the steps */
    double kv_bytes = c->kv_bytes_per_position * mean_ctx;
    double bytes = c->decode_weight_bytes + kv_bytes;
    double tps = r->decode_tps.mean;
    double gbps = bytes * tps / 1e9, weight_gbps = c->decode_weight_bytes * tps / 1e9;
    double prefill_gflops = c->layer_flops_per_token * r->prefill_tps.mean / 1e9;
    double stream = r->have_stream ? r->stream.best_gbps : 0;
    double fraction = stream > 0 ? gbps / stream : 0;
    double ceiling = stream > 0 ? stream * 1e9 / bytes : 0;

    FILE *f = o->json ? stderr : stdout;
    char quant[64] = "";
    if (c->quant_bits)
        snprintf(quant, sizeof quant, ", MLX affine %u-bit g%u (%.3f bytes/weight)", c->quant_bits, c->quant_group,
                 c->bytes_per_weight);
    fprintf(f, "model:   %s (%s, %u layers, hidden %u, %s%s, %.2f M parameters)\n", mi->path, mi->architecture,
            mi->n_layers, mi->hidden_size, dtype_name(mi->dtype), quant, c->total_params / 1e6);
    if (si->n_parts > 1)
        fprintf(f, "devices: %s %s (%u parts), %u threads; %.1f MB of weights on the devices; load %.2f s\n",
                o->tensor_parallel ? "tensor-parallel over" : "a pipeline across", o->devices, si->n_parts, threads,
                si->weight_bytes / 1e6, r->load_s);
    else
        fprintf(f, "device:  %s '%s', %u threads; %.1f MB of weights on the device; load %.2f s\n", si->plugin,
                si->device_name, threads, si->weight_bytes / 1e6, r->load_s);
    fprintf(f, "prefill: pp%u %.2f +- %.2f tok/s, time to first token %.1f +- %.1f ms, %.1f GFLOP/s in the layer matrices\n",
            o->n_prompt, r->prefill_tps.mean, r->prefill_tps.sd, r->ttft_ms.mean, r->ttft_ms.sd, prefill_gflops);
    fprintf(f, "decode:  tg%u %.2f +- %.2f tok/s (per step: median %.2f ms, min %.2f, max %.2f)\n", o->n_gen, tps,
            r->decode_tps.sd, r->step_ms.median, r->step_ms.min, r->step_ms.max);
    fprintf(f, "bytes:   %.1f MB of weights + %.1f MB of %s KV (mean context %.0f) per token -> %.2f GB/s (weights alone "
               "%.2f)\n", c->decode_weight_bytes / 1e6, kv_bytes / 1e6, cli_kv_dtype_name(si->kv_dtype), mean_ctx, gbps,
            weight_gbps);
    if (c->n_experts)
        fprintf(f, "experts: %u sparse layers, top-%u of %u: %.1f MB of experts read per token of %.1f MB stored "
                   "(%.3f bytes/weight), routers %.1f MB\n",
                c->n_moe_layers, c->n_experts_per_tok, c->n_experts, c->expert_bytes_per_token / 1e6,
                c->expert_bytes_total / 1e6, c->expert_bytes_per_weight, c->router_bytes_per_token / 1e6);
    if (r->have_stream && r->stream.threads == 0) /* the device's own (exo_shard_read_bandwidth) */
        fprintf(f, "memory:  device read bandwidth %.2f GB/s (%s, %zu MiB, best of %d); decode at %.1f%% of it, "
                   "ceiling %.2f tok/s\n",
                stream, r->stream.kernel, r->stream.bytes >> 20, r->stream.passes, 100 * fraction, ceiling);
    else if (r->have_stream)
        fprintf(f, "memory:  read bandwidth %.2f GB/s (%s, %u threads, %zu MiB, best of %d); decode at %.1f%% of it, "
                   "ceiling %.2f tok/s\n",
                stream, r->stream.kernel, r->stream.threads, r->stream.bytes >> 20, r->stream.passes, 100 * fraction,
                ceiling);
    if (o->batch) batch_bench_print(f, &r->batch, o->n_prompt, o->n_gen);
    fprintf(f, "peak RSS: %.1f MB (before the bandwidth buffer)\n", r->peak_rss_bytes / 1e6);
    if (r->loadavg > 0.5)
        fprintf(f, "warning: the load average was %.2f before the run: other processes shared the CPU, so these "
                   "figures may be low\n", r->loadavg);
    fflush(f);
    if (!o->json) return;

    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", mi->path);
    cJSON_AddStringToObject(j, "architecture", mi->architecture);
    cJSON_AddStringToObject(j, "dtype", dtype_name(mi->dtype));
    cJSON_AddStringToObject(j, "device", si->plugin);
    cJSON_AddStringToObject(j, "device_name", si->device_name);
    if (o->devices) cJSON_AddStringToObject(j, "devices", o->devices);
    add(j, "n_parts", si->n_parts);
    add(j, "tensor_parallel", o->tensor_parallel);
    add(j, "threads", threads);
    add(j, "n_prompt", o->n_prompt);
    add(j, "n_gen", o->n_gen);
    add(j, "reps", o->reps);
    add(j, "params", (double)c->total_params);
    add(j, "quant_bits", c->quant_bits);
    add(j, "quant_group", c->quant_group);
    add(j, "bytes_per_weight", c->bytes_per_weight);
    add(j, "load_s", r->load_s);
    add(j, "prefill_tps", r->prefill_tps.mean);
    add(j, "prefill_tps_sd", r->prefill_tps.sd);
    add(j, "prefill_gflops", prefill_gflops);
    add(j, "ttft_ms", r->ttft_ms.mean);
    add(j, "ttft_ms_sd", r->ttft_ms.sd);
    add(j, "decode_tps", tps);
    add(j, "decode_tps_sd", r->decode_tps.sd);
    add(j, "decode_step_ms_median", r->step_ms.median);
    add(j, "decode_step_ms_min", r->step_ms.min);
    add(j, "decode_step_ms_max", r->step_ms.max);
    add(j, "decode_bytes_per_token", c->decode_weight_bytes);
    add(j, "kv_bytes_per_token", kv_bytes);
    cJSON_AddStringToObject(j, "kv_dtype", cli_kv_dtype_name(si->kv_dtype));
    add(j, "n_experts", c->n_experts);
    add(j, "n_experts_per_tok", c->n_experts_per_tok);
    add(j, "n_moe_layers", c->n_moe_layers);
    add(j, "expert_bytes_total", c->expert_bytes_total);
    add(j, "expert_bytes_per_token", c->expert_bytes_per_token);
    add(j, "router_bytes_per_token", c->router_bytes_per_token);
    add(j, "mean_context", mean_ctx);
    add(j, "decode_gbps", gbps);
    add(j, "decode_weight_gbps", weight_gbps);
    add(j, "device_weight_bytes", (double)si->weight_bytes);
    add(j, "peak_rss_bytes", (double)r->peak_rss_bytes);
    add(j, "loadavg", r->loadavg);
    if (o->batch) batch_bench_json(j, &r->batch);
    if (r->have_stream) {
        add(j, "stream_gbps", stream);
        cJSON_AddStringToObject(j, "stream_source", r->stream.threads == 0 ? "device" : "host");
        add(j, "decode_fraction_of_stream", fraction);
        add(j, "decode_ceiling_tps", ceiling);
    }
    char *line = cJSON_PrintUnformatted(j);
    if (line) puts(line);
    free(line);
    cJSON_Delete(j);
}

int main(int argc, char **argv) {
    bench_options o;
    if (!parse_args(argc, argv, &o)) {
        usage(stderr);
        return 2;
    }
    bench b;
    memset(&b, 0, sizeof b);
    b.o = &o;
    exo_runtime_options ro = EXO_RUNTIME_OPTIONS_INIT;
    ro.n_threads = o.threads;
    exo_status st = exo_runtime_create(&ro, &b.rt);
    if (st != EXO_OK) return finish(&b, fail("runtime", st, NULL));
    /* --device goes through the core's parser before anything is opened. */
    uint32_t wanted = 0;
    if (o.device && (st = exo_device_find(b.rt, o.device, &wanted)) != EXO_OK)
        return finish(&b, fail("--device", st, NULL));
    uint32_t threads = o.threads;
    if (!threads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (uint32_t)n : 1;
    }

    bench_results r;
    memset(&r, 0, sizeof r);
    double load[1];
    if (getloadavg(load, 1) == 1) r.loadavg = load[0];
    double t0 = now_s();
    st = exo_model_open(b.rt, o.model_dir, &b.model);
    if (st != EXO_OK) return finish(&b, fail(o.model_dir, st, NULL));
    exo_model_info mi;
    EXO_STRUCT_INIT(&mi);
    st = exo_model_get_info(b.model, &mi);
    if (st != EXO_OK) return finish(&b, fail(o.model_dir, st, exo_model_last_error(b.model)));
    model_cost cost;
    char err[512];
    if (model_cost_from_info(&mi, o.quant_bits, o.quant_group, &cost, err, sizeof err)) {
        fprintf(stderr, "exo-bench: %s\n", err);
        return finish(&b, 1);
    }
    exo_shard_options so = EXO_SHARD_OPTIONS_INIT;
    so.device = o.device;
    so.devices = o.devices;
    so.tensor_parallel = o.tensor_parallel;
    so.quantize_bits = o.quant_bits;
    so.quantize_group = o.quant_group;
    so.kv_dtype = o.kv_dtype;
    /* The whole prompt in one step; with --batch, also with a token of each other sequence. */
    so.max_tokens = o.n_prompt + (o.batch ? o.batch - 1 : 0);
    so.max_ctx = o.n_prompt + o.n_gen + (o.batch ? 1 : 0); /* the batch's mixed step decodes one more */
    st = exo_shard_load(b.model, &so, &b.shard);
    if (st != EXO_OK) return finish(&b, fail("loading the model", st, exo_model_last_error(b.model)));
    r.load_s = now_s() - t0;
    exo_shard_info si;
    EXO_STRUCT_INIT(&si);
    exo_shard_get_info(b.shard, &si);

    b.vocab = mi.vocab_size;
    st = exo_session_create(b.shard, 0, &b.session);
    if (st != EXO_OK) return finish(&b, fail("session", st, exo_shard_last_error(b.shard)));
    /* KV bytes per position as the runtime holds them (the shard's KV dtype, every layer). */
    cost.kv_bytes_per_position = (double)exo_session_kv_bytes(b.session) / si.max_ctx;
    b.prompt = malloc(o.n_prompt * sizeof *b.prompt);
    b.step_s = malloc((size_t)o.reps * o.n_gen * sizeof *b.step_s);
    b.prefill_tps = calloc(o.reps, sizeof(double));
    b.decode_tps = calloc(o.reps, sizeof(double));
    b.ttft_ms = calloc(o.reps, sizeof(double));
    if (!b.prompt || !b.step_s || !b.prefill_tps || !b.decode_tps || !b.ttft_ms)
        return finish(&b, fail("setup", EXO_ERR_NO_MEMORY, "out of memory"));
    /* Token ids spread over the vocabulary (past the first few, which are often special); the
     * values do not change the work done, only which embedding rows are read. */
    uint32_t first = mi.vocab_size > 16 ? 16 : 0;
    for (uint32_t i = 0; i < o.n_prompt; i++)
        b.prompt[i] = (int32_t)(first + (uint32_t)(((uint64_t)i * 2654435761u) % (mi.vocab_size - first)));

    /* Warmup: first-touch page faults, kernel builds and thread start-up stay out of the figures. */
    st = exo_shard_warmup(b.shard);
    if (st != EXO_OK) return finish(&b, fail("warmup", st, exo_shard_last_error(b.shard)));
    if (run_once(&b, o.n_gen < WARMUP_DECODE_STEPS ? o.n_gen : WARMUP_DECODE_STEPS, 0, NULL, NULL, NULL))
        return finish(&b, 1);
    for (uint32_t k = 0; k < o.reps; k++) {
        double prefill_s, ttft_s, decode_s;
        if (run_once(&b, o.n_gen, 1, &prefill_s, &ttft_s, &decode_s)) return finish(&b, 1);
        b.prefill_tps[k] = o.n_prompt / prefill_s;
        b.ttft_ms[k] = ttft_s * 1e3;
        b.decode_tps[k] = o.n_gen / decode_s;
        if (!o.json)
            fprintf(stderr, "exo-bench: rep %u/%u: prefill %.2f tok/s, decode %.2f tok/s\n", k + 1, o.reps,
                    b.prefill_tps[k], b.decode_tps[k]);
    }
    r.prefill_tps = summarize(b.prefill_tps, o.reps);
    r.decode_tps = summarize(b.decode_tps, o.reps);
    r.ttft_ms = summarize(b.ttft_ms, o.reps);
    for (size_t i = 0; i < b.n_steps; i++) b.step_s[i] *= 1e3;
    r.step_ms = summarize(b.step_s, b.n_steps);
    if (o.batch && batch_bench_run(b.shard, &mi, so.max_ctx, b.prompt, o.n_prompt, o.n_gen, o.batch, o.reps, &r.batch))
        return finish(&b, 1);
    r.peak_rss_bytes = peak_rss_bytes(); /* before the bandwidth buffer inflates it */

    /* A device with memory of its own (a GPU plugin of ABI 1.8) measures its read bandwidth
     * itself, while the shard is open; the others get the host-side sweep below. A shard over
     * several devices reads from all of them: one device's figure would not be its limit. */
    if (!o.no_stream && si.n_parts <= 1) {
        double device_gbps = 0;
        st = exo_shard_read_bandwidth(b.shard, STREAM_BYTES, STREAM_PASSES, &device_gbps);
        if (st == EXO_OK) {
            r.stream = (read_bandwidth){device_gbps, 0, 0, STREAM_BYTES, STREAM_PASSES, "the plugin's read sweep"};
            r.have_stream = 1;
        } else if (st != EXO_ERR_UNSUPPORTED)
            fprintf(stderr, "exo-bench: %s (continuing with the host's)\n", exo_shard_last_error(b.shard));
    }

    /* The runtime goes before the bandwidth sweep (its worker threads must not compete), and the
     * info strings it owns go with it: keep copies for the report. */
    char path[4096], arch[64], plugin[64], device_name[256];
    snprintf(path, sizeof path, "%s", mi.path ? mi.path : o.model_dir);
    snprintf(arch, sizeof arch, "%s", mi.architecture ? mi.architecture : "?");
    snprintf(plugin, sizeof plugin, "%s", si.plugin ? si.plugin : "?");
    snprintf(device_name, sizeof device_name, "%s", si.device_name ? si.device_name : "?");
    mi.path = path;
    mi.architecture = arch;
    mi.eos_token_ids = NULL;
    si.plugin = plugin;
    si.device_name = device_name;
    close_runtime(&b);

    if (!o.no_stream && !r.have_stream) {
        if (read_bandwidth_measure(threads, STREAM_BYTES, STREAM_PASSES, &r.stream, err, sizeof err))
            fprintf(stderr, "exo-bench: %s (continuing without it)\n", err);
        else
            r.have_stream = 1;
    }
    report(&o, &mi, &si, &cost, &r, threads);
    return finish(&b, 0);
}
