/* exo-run: the main job. Loads a model (the embedded default when none is given), says which
 * device it chose and why, streams a continuation of the prompt and ends with a stats line.
 *
 *   exo-run [--model DIR] [-p TEXT] [-n N] [--temperature T] [--top-k K] [--top-p P]
 *           [--min-p P] [--seed S] [--device PLUGIN[:N] | --devices auto|A,B,... [--tensor-parallel N]]
 *           [--quantize mlx-q4-g64] [--kv-dtype f32|bf16|f16] [--json] [--tokenize TEXT]
 *
 * Placement: with no --device (and no EXO_DEVICE) the model spreads over every usable GPU of the
 * node when it has more than one (exo_shard_options.devices = "auto", a pipeline of layer ranges,
 * docs/placement.md), else it runs on the best device; --devices names the devices to spread it
 * over, --device pins one. --tensor-parallel N splits every layer over the first N of them
 * instead (heads and MLP columns; the ranks run at once, one host thread each).
 *
 * Prompts are raw text (chat templating is EXO's job). --json prints one JSON object per token
 * and a stats object last. --tokenize prints the ids of TEXT (no BOS) as a JSON array on the
 * last line and exits. */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_number.h"
#include "exo.h"
#include "link_path.h"

#define DEFAULT_PROMPT "Permission is hereby granted, free of charge, to any person"

typedef struct run_options {
    const char *model_dir, *prompt, *device, *devices, *tokenize;
    uint32_t n_predict;
    uint32_t tensor_parallel;         /* --tensor-parallel: every layer split over N devices (0: off) */
    uint32_t quant_bits, quant_group; /* --quantize: on load; 0 = as stored */
    uint32_t kv_dtype;                /* --kv-dtype: exo_kv_dtype; 0 = the library's default */
    int json;
    exo_sampling sampling;
} run_options;

static void usage(FILE *f) {
    fprintf(f,
            "usage: exo-run [options]\n"
            "  --model DIR          Hugging Face model directory (default: the embedded tiny-llama-licenses)\n"
            "  -p, --prompt TEXT    prompt (raw text; default: \"%s\")\n"
            "  -n N                 tokens to generate (default 128; 0 = until EOS or the context is full)\n"
            "  --temperature T      0 = greedy (default 0.7)\n"
            "  --top-k K            0 = off (default 0)\n"
            "  --top-p P            1 = off (default 1)\n"
            "  --min-p P            0 = off (default 0.05)\n"
            "  --seed S             sampling seed (default 42; -1 = from OS entropy)\n"
            "  --device PLUGIN[:N]  device to run on (default: every usable GPU when there are several,\n"
            "                       else the best device found; see exo-probe)\n"
            "  --devices LIST       spread the layers over these devices: auto (the default) or\n"
            "                       PLUGIN[:N],PLUGIN[:N],... (a pipeline, one layer range per device)\n"
            "  --tensor-parallel N  split every layer over the first N of --devices (default: the node's\n"
            "                       GPUs) instead: attention heads and MLP columns, one host thread each\n"
            "  --quantize SPEC      quantize a float checkpoint on load to MLX affine: mlx-q<bits>-g<group>,\n"
            "                       e.g. mlx-q4-g64 (bits 2-6 or 8, group 32/64/128)\n"
            "  --kv-dtype T         KV cache f32, bf16 or f16 (default: EXO_KV_DTYPE, else bf16 where the\n"
            "                       device takes it)\n"
            "  --json               one JSON object per token, then a stats object\n"
            "  --tokenize TEXT      print the token ids of TEXT (no BOS) as a JSON array and exit\n",
            DEFAULT_PROMPT);
}

static int parse_args(int argc, char **argv, run_options *o) {
    memset(o, 0, sizeof *o);
    o->prompt = DEFAULT_PROMPT;
    o->n_predict = 128;
    o->sampling = (exo_sampling)EXO_SAMPLING_INIT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        double x;
        int64_t k;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--json") == 0) {
            o->json = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "exo-run: %s needs a value (or is unknown)\n", a);
            return 0;
        }
        i++;
        if (strcmp(a, "--model") == 0) o->model_dir = v;
        else if (strcmp(a, "-p") == 0 || strcmp(a, "--prompt") == 0) o->prompt = v;
        else if (strcmp(a, "--device") == 0) o->device = v;
        else if (strcmp(a, "--devices") == 0) o->devices = v;
        else if (strcmp(a, "--tensor-parallel") == 0) {
            if (!cli_parse_u32("exo-run", a, v, 2, 16, &o->tensor_parallel)) return 0;
        }
        else if (strcmp(a, "--quantize") == 0) {
            if (!cli_parse_quant("exo-run", a, v, &o->quant_bits, &o->quant_group)) return 0;
        } else if (strcmp(a, "--kv-dtype") == 0) {
            if (!cli_parse_kv_dtype("exo-run", a, v, &o->kv_dtype)) return 0;
        }
        else if (strcmp(a, "--tokenize") == 0) o->tokenize = v;
        else if (strcmp(a, "-n") == 0 || strcmp(a, "--n-predict") == 0) {
            if (!cli_parse_u32("exo-run", a, v, 0, 10000000, &o->n_predict)) return 0;
        } else if (strcmp(a, "--temperature") == 0 || strcmp(a, "--temp") == 0) {
            if (!cli_parse_real("exo-run", a, v, 0, 100, &x)) return 0;
            o->sampling.temperature = (float)x;
        } else if (strcmp(a, "--top-k") == 0) {
            if (!cli_parse_int("exo-run", a, v, 0, INT32_MAX, &k)) return 0;
            o->sampling.top_k = (int32_t)k;
        } else if (strcmp(a, "--top-p") == 0) {
            if (!cli_parse_real("exo-run", a, v, 0, 1, &x)) return 0;
            o->sampling.top_p = (float)x;
        } else if (strcmp(a, "--min-p") == 0) {
            if (!cli_parse_real("exo-run", a, v, 0, 1, &x)) return 0;
            o->sampling.min_p = (float)x;
        } else if (strcmp(a, "--seed") == 0) {
            if (!cli_parse_int("exo-run", a, v, -1, INT64_MAX, &o->sampling.seed)) return 0;
        } else {
            fprintf(stderr, "exo-run: unknown option '%s'\n", a);
            return 0;
        }
    }
    if (o->tensor_parallel && o->device) {
        fprintf(stderr, "exo-run: --tensor-parallel splits layers over several devices; --device pins one "
                        "(use --devices A,B)\n");
        return 0;
    }
    return 1;
}

static int on_token(void *user, const exo_token_event *ev) {
    const run_options *o = user;
    if (o->json) {
        cJSON *obj = cJSON_CreateObject();
        cJSON_AddNumberToObject(obj, "index", ev->index);
        cJSON_AddNumberToObject(obj, "token", ev->token);
        /* cJSON needs a NUL-terminated string; pieces are short. */
        char *text = malloc(ev->text_len + 1);
        if (text) {
            memcpy(text, ev->text, ev->text_len);
            text[ev->text_len] = '\0';
            cJSON_AddStringToObject(obj, "text", text);
            free(text);
        }
        if (ev->token >= 0) cJSON_AddNumberToObject(obj, "logprob", ev->logprob);
        char *line = cJSON_PrintUnformatted(obj);
        if (line) puts(line);
        free(line);
        cJSON_Delete(obj);
    } else {
        fwrite(ev->text, 1, ev->text_len, stdout);
    }
    fflush(stdout);
    return 0;
}

static const char *finish_name(exo_finish_reason r) {
    switch (r) {
    case EXO_FINISH_EOS: return "eos";
    case EXO_FINISH_STOP: return "stop";
    case EXO_FINISH_LENGTH: return "length";
    case EXO_FINISH_CANCELLED: return "cancelled";
    default: return "none";
    }
}

static int fail(const char *what, exo_status st, const char *detail) {
    fprintf(stderr, "exo-run: %s: %s: %s\n", what, exo_status_name(st), detail && *detail ? detail : exo_last_error());
    return 1;
}

static int tokenize(exo_model *model, const char *text) {
    size_t n = 0, cap = strlen(text) + 8;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) return fail("tokenize", EXO_ERR_NO_MEMORY, "out of memory");
    exo_status st = exo_model_tokenize(model, text, strlen(text), 0, ids, cap, &n);
    if (st != EXO_OK) {
        free(ids);
        return fail("tokenize", st, exo_model_last_error(model));
    }
    putchar('[');
    for (size_t i = 0; i < n; i++) printf("%s%d", i ? ", " : "", ids[i]);
    puts("]");
    free(ids);
    return 0;
}

/* Token ids of the prompt (BOS as the tokenizer says), read before any weight is loaded: a missing
 * or broken tokenizer.json, or a prompt that is not UTF-8, fails in milliseconds. */
static exo_status encode_prompt(exo_model *model, const char *text, int32_t **ids, size_t *n) {
    *ids = NULL;
    *n = 0;
    size_t need = 0;
    exo_status st = exo_model_tokenize(model, text, strlen(text), -1, NULL, 0, &need);
    if (st != EXO_OK && st != EXO_ERR_BUFFER_TOO_SMALL) return st;
    *ids = malloc((need ? need : 1) * sizeof **ids);
    if (!*ids) return EXO_ERR_NO_MEMORY;
    st = exo_model_tokenize(model, text, strlen(text), -1, *ids, need, n);
    if (st != EXO_OK) {
        free(*ids);
        *ids = NULL;
    }
    return st;
}

/* Everything main opens, freed in reverse order on every path (LeakSanitizer runs the failures). */
typedef struct run_state {
    exo_runtime *rt;
    exo_model *model;
    exo_shard *shard;
    exo_session *session;
    int32_t *prompt_ids;
} run_state;

static int finish(run_state *r, int rc) {
    exo_session_destroy(r->session);
    exo_shard_destroy(r->shard);
    exo_model_destroy(r->model);
    exo_runtime_destroy(r->rt);
    free(r->prompt_ids);
    return rc;
}

int main(int argc, char **argv) {
    run_options o;
    if (!parse_args(argc, argv, &o)) {
        usage(stderr);
        return 2;
    }
    if (!o.model_dir) o.model_dir = exo_default_model_dir();
    if (!o.model_dir) {
        fprintf(stderr, "exo-run: the embedded default model was not found; pass --model DIR\n");
        return 1;
    }
    run_state r;
    memset(&r, 0, sizeof r);
    exo_status st = exo_runtime_create(NULL, &r.rt);
    if (st != EXO_OK) return finish(&r, fail("runtime", st, NULL));
    /* The device string is checked by the core's parser before anything is read from disk. */
    uint32_t wanted = 0;
    if (o.device && (st = exo_device_find(r.rt, o.device, &wanted)) != EXO_OK)
        return finish(&r, fail("--device", st, NULL));
    st = exo_model_open(r.rt, o.model_dir, &r.model);
    if (st != EXO_OK) return finish(&r, fail(o.model_dir, st, NULL));
    if (o.tokenize) return finish(&r, tokenize(r.model, o.tokenize));
    exo_model_info mi;
    EXO_STRUCT_INIT(&mi);
    exo_model_get_info(r.model, &mi);
    size_t n_prompt = 0;
    st = encode_prompt(r.model, o.prompt, &r.prompt_ids, &n_prompt);
    if (st != EXO_OK)
        return finish(&r, fail(mi.has_tokenizer ? "the prompt" : "the tokenizer", st, exo_model_last_error(r.model)));
    if (n_prompt == 0) return finish(&r, fail("the prompt", EXO_ERR_INVALID_ARG, "it holds no tokens"));
    if (n_prompt > UINT32_MAX) return finish(&r, fail("the prompt", EXO_ERR_INVALID_ARG, "too many tokens"));

    exo_shard_options so = EXO_SHARD_OPTIONS_INIT;
    so.device = o.device;
    /* Every usable GPU when the node has several and nothing pins one device. */
    so.devices = o.devices ? o.devices : o.device ? NULL : "auto";
    so.tensor_parallel = o.tensor_parallel;
    so.quantize_bits = o.quant_bits;
    so.quantize_group = o.quant_group;
    so.kv_dtype = o.kv_dtype;
    st = exo_shard_load(r.model, &so, &r.shard);
    if (st != EXO_OK) return finish(&r, fail("loading the model", st, exo_model_last_error(r.model)));
    exo_shard_info si;
    EXO_STRUCT_INIT(&si);
    exo_shard_get_info(r.shard, &si);
    exo_device_info di;
    EXO_STRUCT_INIT(&di);
    exo_device_get_info(r.rt, si.device, &di);
    uint32_t selected = 0;
    const char *why = "";
    exo_status sel = exo_device_selected(r.rt, &selected, &why);
    const char *reason = o.device ? "requested with --device"
                         : (sel == EXO_OK && selected == si.device) ? why
                                                                    : "fallback: the better-ranked devices failed (see the log)";
    FILE *info = o.json ? stderr : stdout;
    if (si.n_parts > 1 && o.tensor_parallel) {
        /* Parts per layer and rank: list each rank's device once, in rank order. */
        fprintf(info, "devices: tensor-parallel over %u devices (%u parts; %s)\n", o.tensor_parallel, si.n_parts,
                o.devices ? "requested with --devices" : "the node's GPUs");
        uint32_t seen[16], n_seen = 0;
        for (uint32_t i = 0; i < si.n_parts && n_seen < o.tensor_parallel; i++) {
            exo_shard_info pi;
            EXO_STRUCT_INIT(&pi);
            exo_device_info pd;
            EXO_STRUCT_INIT(&pd);
            if (exo_shard_get_part_info(r.shard, i, &pi) != EXO_OK || exo_device_get_info(r.rt, pi.device, &pd) != EXO_OK)
                continue;
            bool listed = false;
            for (uint32_t j = 0; j < n_seen; j++) listed = listed || seen[j] == pi.device;
            if (listed) continue;
            fprintf(info, "  rank %u on %s:%u '%s'\n", n_seen, pi.plugin, pd.plugin_index, pi.device_name);
            seen[n_seen++] = pi.device;
        }
    } else if (si.n_parts > 1) {
        fprintf(info, "devices: a pipeline across %u devices (%s)\n", si.n_parts,
                o.devices ? "requested with --devices" : "every usable GPU of the node");
        for (uint32_t i = 0; i < si.n_parts; i++) {
            exo_shard_info pi;
            EXO_STRUCT_INIT(&pi);
            exo_device_info pd;
            EXO_STRUCT_INIT(&pd);
            if (exo_shard_get_part_info(r.shard, i, &pi) != EXO_OK || exo_device_get_info(r.rt, pi.device, &pd) != EXO_OK)
                continue;
            fprintf(info, "  layers [%u, %u) on %s:%u '%s'%s%s%s\n", pi.start_layer, pi.end_layer, pi.plugin,
                    pd.plugin_index, pi.device_name, pi.input_path ? " (hand-over: " : "",
                    exo_link_path_name(pi.input_path), pi.input_path ? ")" : "");
        }
    } else {
        fprintf(info, "device: %s:%u '%s' (%s)\n", si.plugin, di.plugin_index, si.device_name, reason);
    }
    fprintf(info, "model: %s (%s, %u layers, %.1f MB of weights, %s KV cache)\n", mi.path, mi.architecture,
            mi.n_layers, si.weight_bytes / 1e6, cli_kv_dtype_name(si.kv_dtype));
    fflush(info);

    st = exo_session_create(r.shard, 0, &r.session);
    if (st != EXO_OK) return finish(&r, fail("session", st, exo_shard_last_error(r.shard)));
    exo_shard_warmup(r.shard);
    exo_generate_options go = EXO_GENERATE_OPTIONS_INIT;
    go.sampling = &o.sampling;
    go.max_tokens = o.n_predict;
    go.on_token = on_token;
    go.user = &o;
    exo_generate_stats stats;
    EXO_STRUCT_INIT(&stats);
    if (!o.json) {
        fputs(o.prompt, stdout);
        fflush(stdout);
    }
    st = exo_generate_tokens(r.session, r.prompt_ids, (uint32_t)n_prompt, &go, &stats);
    if (st != EXO_OK) return finish(&r, fail("generate", st, exo_session_last_error(r.session)));
    if (o.json) {
        cJSON *obj = cJSON_CreateObject();
        cJSON_AddStringToObject(obj, "type", "stats");
        cJSON_AddNumberToObject(obj, "prompt_tokens", stats.prompt_tokens);
        cJSON_AddNumberToObject(obj, "generation_tokens", stats.generation_tokens);
        cJSON_AddNumberToObject(obj, "prompt_tps", stats.prompt_tps);
        cJSON_AddNumberToObject(obj, "generation_tps", stats.generation_tps);
        cJSON_AddNumberToObject(obj, "ttft_ms", stats.ttft_ms);
        cJSON_AddNumberToObject(obj, "peak_memory_bytes", (double)stats.peak_memory_bytes);
        cJSON_AddStringToObject(obj, "finish_reason", finish_name(stats.finish_reason));
        cJSON_AddStringToObject(obj, "device", si.plugin);
        char *line = cJSON_PrintUnformatted(obj);
        if (line) puts(line);
        free(line);
        cJSON_Delete(obj);
    } else {
        printf("\n\nstats: prompt %u tokens at %.1f tok/s, generated %u tokens at %.1f tok/s, "
               "time to first token %.1f ms, peak memory %.1f MB, finish %s\n",
               stats.prompt_tokens, stats.prompt_tps, stats.generation_tokens, stats.generation_tps, stats.ttft_ms,
               stats.peak_memory_bytes / 1e6, finish_name(stats.finish_reason));
    }
    return finish(&r, 0);
}
