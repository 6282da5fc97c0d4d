/* BOS and EOS. Where they come from, in order of authority:
 *  - tokenizer_config.json: "bos_token" / "eos_token" (a string or {"content": ...}) and
 *    "add_bos_token";
 *  - generation_config.json: "bos_token_id", "eos_token_id" (an int or a list; instruct models
 *    list several EOS ids there, and generation must stop on all of them);
 *  - config.json: the same keys, used when generation_config.json lacks them;
 *  - tokenizer.json's post_processor: a TemplateProcessing whose "single" template starts with
 *    a special token means the model's tokenizer prepends it (Llama-3 style).
 * The config files are optional; a file that exists but is malformed is an error. */
#include "tokenizer/tokenizer_internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"

static const cJSON *get(const cJSON *obj, const char *key) {
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/* Reads dir/name when it exists; *out stays NULL when it does not. */
static exo_status read_optional(const char *dir, const char *name, cJSON **out) {
    *out = NULL;
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = malloc(n);
    if (!path) return exo_errorf(EXO_ERR_NO_MEMORY, "%s/%s: out of memory", dir, name);
    snprintf(path, n, "%s/%s", dir, name);
    /* Absent is fine; a dangling link (lstat sees it) or one leading outside the model is an error. */
    exo_status st = EXO_OK;
    struct stat sb;
    if (lstat(path, &sb) == 0) {
        st = exo_tok_read_json(path, out);
        if (!st && !cJSON_IsObject(*out)) {
            cJSON_Delete(*out);
            *out = NULL;
            st = exo_errorf(EXO_ERR_FORMAT, "%s: top level is not a JSON object", path);
        }
    }
    free(path);
    return st;
}

/* "bos_token": "<s>" | {"content": "<s>", ...} | null -> id, or -1. */
static int32_t token_spec_id(const exo_tokenizer *tok, const cJSON *spec) {
    if (cJSON_IsObject(spec)) spec = get(spec, "content");
    if (!cJSON_IsString(spec)) return -1;
    return exo_tokenizer_token_id(tok, spec->valuestring, strlen(spec->valuestring));
}

static exo_status check_id(const exo_tokenizer *tok, const cJSON *v, const char *file,
                           const char *key, int32_t *id) {
    double d = cJSON_IsNumber(v) ? v->valuedouble : -1;
    if (!(d >= 0 && d < tok->n_ids) || d != (double)(int32_t)d)
        return exo_errorf(EXO_ERR_FORMAT, "%s: \"%s\" is not a token id below the vocab size %u",
                          file, key, tok->n_ids);
    *id = (int32_t)d;
    return EXO_OK;
}

static exo_status add_eos(exo_tokenizer *tok, int32_t id) {
    for (size_t i = 0; i < tok->n_eos; i++)
        if (tok->eos[i] == id) return EXO_OK;
    int32_t *p = realloc(tok->eos, (tok->n_eos + 1) * sizeof *p);
    if (!p) return exo_errorf(EXO_ERR_NO_MEMORY, "%s: out of memory", tok->path);
    tok->eos = p;
    tok->eos[tok->n_eos++] = id;
    return EXO_OK;
}

/* bos_token_id / eos_token_id of a generation_config.json or config.json. Returns whether the
 * file gave an EOS. */
static exo_status read_config_ids(exo_tokenizer *tok, const cJSON *cfg, const char *file,
                                  bool want_eos, bool *gave_eos) {
    *gave_eos = false;
    if (!cfg) return EXO_OK;
    const cJSON *bos = get(cfg, "bos_token_id");
    if (tok->bos < 0 && cJSON_IsNumber(bos)) {
        exo_status st = check_id(tok, bos, file, "bos_token_id", &tok->bos);
        if (st) return st;
        /* Encode puts the BOS id in front of every prompt, so it must be a token the vocabulary
         * can decode; an id in a hole of the vocab would make every decode fail later. */
        if (!exo_tokenizer_token_text(tok, tok->bos, NULL))
            return exo_errorf(EXO_ERR_FORMAT, "%s: \"bos_token_id\" %d is not in the vocabulary of %s",
                              file, tok->bos, tok->path);
    }
    const cJSON *eos = get(cfg, "eos_token_id");
    if (!want_eos || !eos || cJSON_IsNull(eos)) return EXO_OK;
    if (cJSON_IsArray(eos)) {
        for (const cJSON *e = eos->child; e; e = e->next) {
            int32_t id = -1;
            exo_status st = check_id(tok, e, file, "eos_token_id", &id);
            if (!st) st = add_eos(tok, id);
            if (st) return st;
        }
    } else {
        int32_t id = -1;
        exo_status st = check_id(tok, eos, file, "eos_token_id", &id);
        if (!st) st = add_eos(tok, id);
        if (st) return st;
    }
    *gave_eos = true;
    return EXO_OK;
}

/* The special token a TemplateProcessing "single" template starts with, or -1. Looks inside a
 * "Sequence" of processors too (Llama-3: ByteLevel + TemplateProcessing). */
static int32_t template_leading_token(const exo_tokenizer *tok, const cJSON *pp, int depth) {
    if (!cJSON_IsObject(pp) || depth > 8) return -1;
    const cJSON *type = get(pp, "type");
    if (!cJSON_IsString(type)) return -1;
    if (!strcmp(type->valuestring, "Sequence")) {
        const cJSON *list = get(pp, "processors");
        for (const cJSON *c = cJSON_IsArray(list) ? list->child : NULL; c; c = c->next) {
            int32_t id = template_leading_token(tok, c, depth + 1);
            if (id >= 0) return id;
        }
        return -1;
    }
    if (!strcmp(type->valuestring, "RobertaProcessing") || !strcmp(type->valuestring, "BertProcessing")) {
        const cJSON *cls = get(pp, "cls"); /* ["<s>", 0] */
        if (cJSON_IsArray(cls) && cJSON_IsString(cls->child))
            return exo_tokenizer_token_id(tok, cls->child->valuestring, strlen(cls->child->valuestring));
        return -1;
    }
    if (strcmp(type->valuestring, "TemplateProcessing") != 0) return -1;
    const cJSON *single = get(pp, "single");
    const cJSON *first = cJSON_IsArray(single) ? single->child : NULL;
    const cJSON *special = get(first, "SpecialToken");
    const cJSON *name = get(special, "id");
    if (!cJSON_IsString(name)) return -1;
    /* special_tokens maps the template name to the ids it stands for. */
    const cJSON *entry = get(get(pp, "special_tokens"), name->valuestring);
    const cJSON *ids = get(entry, "ids");
    /* An id in a hole of the vocab (no token has it) is not taken: encode would put it in front
     * of every prompt, and no decode could spell it (the fuzzer's find); the name decides then. */
    if (cJSON_IsArray(ids) && cJSON_IsNumber(ids->child)) {
        double d = ids->child->valuedouble;
        if (d >= 0 && d < tok->n_ids && d == (double)(int32_t)d && exo_tokenizer_token_text(tok, (int32_t)d, NULL))
            return (int32_t)d;
    }
    return exo_tokenizer_token_id(tok, name->valuestring, strlen(name->valuestring));
}

exo_status exo_tok_load_special(exo_tokenizer *tok, const char *dir, const cJSON *post_processor) {
    cJSON *tcfg = NULL, *gcfg = NULL, *mcfg = NULL;
    char *gpath = NULL, *mpath = NULL;
    exo_status st = read_optional(dir, "tokenizer_config.json", &tcfg);
    if (!st) st = read_optional(dir, "generation_config.json", &gcfg);
    if (!st) st = read_optional(dir, "config.json", &mcfg);
    if (!st && (asprintf(&gpath, "%s/generation_config.json", dir) < 0 ||
                asprintf(&mpath, "%s/config.json", dir) < 0)) {
        gpath = mpath = NULL;
        st = exo_errorf(EXO_ERR_NO_MEMORY, "%s: out of memory", dir);
    }
    if (st) goto done;

    int32_t leading = template_leading_token(tok, post_processor, 0);
    /* "bos_token": null in tokenizer_config.json says the model has none (Qwen), even where
     * config.json still carries a bos_token_id. */
    const cJSON *bos_spec = tcfg ? get(tcfg, "bos_token") : NULL;
    bool no_bos = cJSON_IsNull(bos_spec);
    if (tcfg) {
        tok->bos = token_spec_id(tok, bos_spec);
        int32_t eos = token_spec_id(tok, get(tcfg, "eos_token"));
        if (eos >= 0 && (st = add_eos(tok, eos))) goto done;
    }
    bool gave_eos = false;
    if ((st = read_config_ids(tok, gcfg, gpath, true, &gave_eos))) goto done;
    if ((st = read_config_ids(tok, mcfg, mpath, !gave_eos, &gave_eos))) goto done;
    if (tok->bos < 0) tok->bos = leading;
    if (no_bos && leading < 0) tok->bos = -1;

    /* Whether a sequence starts with BOS: add_bos_token when given; else the post-processor's
     * template when it leads with a special token; else — a template that adds nothing, or none
     * at all, as in tokenizers trained with the tokenizers library — BOS when tokenizer_config
     * names one, which is how such models were trained and how their references were made. */
    const cJSON *add_bos = tcfg ? get(tcfg, "add_bos_token") : NULL;
    if (cJSON_IsBool(add_bos)) tok->adds_bos = cJSON_IsTrue(add_bos);
    else if (leading >= 0) tok->adds_bos = leading == tok->bos;
    else tok->adds_bos = tok->bos >= 0 && bos_spec && !cJSON_IsNull(bos_spec);
done:
    free(gpath);
    free(mpath);
    cJSON_Delete(tcfg);
    cJSON_Delete(gcfg);
    cJSON_Delete(mcfg);
    return st;
}
