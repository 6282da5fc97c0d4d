/* Loading tokenizer.json: the BPE model (vocab, merges, unk / byte fallback options) and the
 * added tokens, then the pipeline sections and the BOS/EOS facts. Every failure names the
 * file and the item. */
#include "tokenizer/tokenizer_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"
#include "model/json_file.h"

/* Token ids are int32 and the id table is allocated up front: refuse absurd ids. */
#define TOKENIZER_MAX_ID (1 << 24)

/* The core's one bounded JSON reader: the model-file path rule, a size limit per file name
 * (tokenizer.json 64 MiB: the largest real ones are ~33 MB) and a memory check for the parse. */
exo_status exo_tok_read_json(const char *path, cJSON **out) {
    exo_status st = exo_json_file_load_path(path, out);
    /* A missing tokenizer file is an I/O error to this loader's callers. */
    if (st == EXO_ERR_NOT_FOUND) return exo_errorf(EXO_ERR_IO, "%s: cannot open: %s", path, strerror(ENOENT));
    return st;
}

static const cJSON *get(const cJSON *obj, const char *key) {
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

static bool get_bool(const cJSON *obj, const char *key, bool dflt) {
    const cJSON *v = get(obj, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

/* A JSON number that is an integer id in [0, TOKENIZER_MAX_ID). */
static bool as_id(const cJSON *v, int32_t *id) {
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= 0 && d < TOKENIZER_MAX_ID) || d != (double)(int32_t)d) return false;
    *id = (int32_t)d;
    return true;
}

static exo_status check_model_type(const exo_tokenizer *tok, const cJSON *model) {
    const cJSON *type = get(model, "type");
    if (cJSON_IsString(type) && strcmp(type->valuestring, "BPE") != 0)
        return exo_errorf(EXO_ERR_UNSUPPORTED,
                          "%s: tokenizer model type '%s' is not supported (only BPE is)", tok->path,
                          type->valuestring);
    if (!type && !get(model, "merges"))
        return exo_errorf(EXO_ERR_UNSUPPORTED,
                          "%s: tokenizer model without \"type\" or \"merges\" is not BPE; only BPE "
                          "is supported", tok->path);
    const cJSON *dropout = get(model, "dropout");
    if (cJSON_IsNumber(dropout) && dropout->valuedouble != 0.0)
        return exo_errorf(EXO_ERR_UNSUPPORTED, "%s: BPE dropout %g is not supported", tok->path,
                          dropout->valuedouble);
    static const char *const affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (size_t i = 0; i < 2; i++) {
        const cJSON *a = get(model, affixes[i]);
        if (cJSON_IsString(a) && a->valuestring[0])
            return exo_errorf(EXO_ERR_UNSUPPORTED, "%s: BPE %s \"%s\" is not supported", tok->path,
                              affixes[i], a->valuestring);
    }
    return EXO_OK;
}

/* Builds the id -> text table over the vocab and the added tokens (added tokens may lie beyond
 * the model vocab, as Llama-3's special tokens do), with all texts in one arena. */
static exo_status build_id_table(exo_tokenizer *tok, const cJSON *vocab, const cJSON *added) {
    int32_t max_id = -1;
    size_t n_vocab = 0, bytes = 0;
    for (const cJSON *e = vocab->child; e; e = e->next) {
        int32_t id;
        if (!as_id(e, &id))
            return exo_errorf(EXO_ERR_FORMAT, "%s: model.vocab entry \"%s\" has no valid id",
                              tok->path, e->string ? e->string : "");
        if (id > max_id) max_id = id;
        bytes += strlen(e->string) + 1;
        n_vocab++;
    }
    size_t n_added = 0;
    if (added) {
        if (!cJSON_IsArray(added))
            return exo_errorf(EXO_ERR_FORMAT, "%s: \"added_tokens\" is not an array", tok->path);
        for (const cJSON *a = added->child; a; a = a->next) {
            int32_t id;
            const cJSON *content = get(a, "content");
            if (!cJSON_IsObject(a) || !as_id(get(a, "id"), &id) || !cJSON_IsString(content) ||
                !content->valuestring[0])
                return exo_errorf(EXO_ERR_FORMAT,
                                  "%s: added_tokens[%zu] needs an integer \"id\" and a non-empty "
                                  "\"content\"", tok->path, n_added);
            if (id > max_id) max_id = id;
            bytes += strlen(content->valuestring) + 1;
            n_added++;
        }
    }
    if (max_id < 0) return exo_errorf(EXO_ERR_FORMAT, "%s: empty vocabulary", tok->path);

    tok->n_ids = (uint32_t)max_id + 1;
    tok->id_text = calloc(tok->n_ids, sizeof *tok->id_text);
    tok->id_len = calloc(tok->n_ids, sizeof *tok->id_len);
    tok->id_flags = calloc(tok->n_ids, 1);
    tok->arena = malloc(bytes ? bytes : 1);
    tok->added = calloc(n_added ? n_added : 1, sizeof *tok->added);
    if (!tok->id_text || !tok->id_len || !tok->id_flags || !tok->arena || !tok->added)
        return exo_errorf(EXO_ERR_NO_MEMORY, "%s: out of memory for %u token ids", tok->path,
                          tok->n_ids);
    exo_status st = exo_strmap_init(&tok->vocab, n_vocab);
    if (!st) st = exo_strmap_init(&tok->added_map, n_added);
    if (st) return st;

    char *p = tok->arena;
    for (const cJSON *e = vocab->child; e; e = e->next) {
        int32_t id = (int32_t)e->valuedouble;
        size_t len = strlen(e->string);
        memcpy(p, e->string, len + 1);
        if (tok->id_text[id])
            return exo_errorf(EXO_ERR_FORMAT, "%s: model.vocab gives id %d to two tokens (\"%s\")",
                              tok->path, id, e->string);
        tok->id_text[id] = p;
        tok->id_len[id] = (uint32_t)len;
        st = exo_strmap_put(&tok->vocab, p, len, id);
        if (st) return st;
        p += len + 1;
    }
    for (const cJSON *a = added ? added->child : NULL; a; a = a->next) {
        int32_t id = (int32_t)get(a, "id")->valuedouble;
        const char *content = get(a, "content")->valuestring;
        size_t len = strlen(content);
        memcpy(p, content, len + 1);
        /* The added token's content is what decoding gives back for its id. */
        tok->id_text[id] = p;
        tok->id_len[id] = (uint32_t)len;
        exo_added_token *t = &tok->added[tok->n_added++];
        t->content = p;
        t->len = len;
        t->id = id;
        t->special = get_bool(a, "special", false);
        t->lstrip = get_bool(a, "lstrip", false);
        t->rstrip = get_bool(a, "rstrip", false);
        t->single_word = get_bool(a, "single_word", false);
        t->normalized = get_bool(a, "normalized", !t->special);
        if (t->normalized) tok->any_normalized_added = true;
        tok->id_flags[id] |= EXO_TOK_ADDED | (t->special ? EXO_TOK_SPECIAL : 0);
        st = exo_strmap_put(&tok->added_map, p, len, id);
        if (st) return st;
        p += len + 1;
    }
    return EXO_OK;
}

/* One merge: "left right" (split at the space that leaves two vocab tokens) or
 * ["left", "right"]. The merged token must be in the vocab, as the tokenizers library
 * demands. */
static exo_status add_merge(exo_tokenizer *tok, const cJSON *m, int32_t rank, exo_tok_buf *tmp) {
    const char *left = NULL, *right = NULL;
    size_t left_len = 0, right_len = 0;
    int32_t lid = -1, rid = -1;
    if (cJSON_IsString(m)) {
        const char *s = m->valuestring;
        size_t n = strlen(s);
        for (const char *sp = strchr(s, ' '); sp; sp = strchr(sp + 1, ' ')) {
            lid = exo_strmap_get(&tok->vocab, s, (size_t)(sp - s));
            rid = exo_strmap_get(&tok->vocab, sp + 1, n - (size_t)(sp - s) - 1);
            if (lid >= 0 && rid >= 0) {
                left = s;
                left_len = (size_t)(sp - s);
                right = sp + 1;
                right_len = n - left_len - 1;
                break;
            }
        }
        if (!left)
            return exo_errorf(EXO_ERR_FORMAT,
                              "%s: model.merges[%d] \"%s\" is not two vocab tokens separated by a "
                              "space", tok->path, rank, s);
    } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) &&
               cJSON_IsString(m->child->next)) {
        left = m->child->valuestring;
        right = m->child->next->valuestring;
        left_len = strlen(left);
        right_len = strlen(right);
        lid = exo_strmap_get(&tok->vocab, left, left_len);
        rid = exo_strmap_get(&tok->vocab, right, right_len);
        if (lid < 0 || rid < 0)
            return exo_errorf(EXO_ERR_FORMAT, "%s: model.merges[%d] token \"%s\" is not in the vocab",
                              tok->path, rank, lid < 0 ? left : right);
    } else {
        return exo_errorf(EXO_ERR_FORMAT,
                          "%s: model.merges[%d] is neither \"a b\" nor [\"a\", \"b\"]", tok->path,
                          rank);
    }
    tmp->len = 0;
    exo_status st = exo_tok_buf_append(tmp, left, left_len);
    if (!st) st = exo_tok_buf_append(tmp, right, right_len);
    if (st) return st;
    int32_t merged = exo_strmap_get(&tok->vocab, tmp->data, tmp->len);
    if (merged < 0)
        return exo_errorf(EXO_ERR_FORMAT, "%s: model.merges[%d]: merged token \"%s\" is not in the vocab",
                          tok->path, rank, tmp->data);
    /* A repeated pair keeps its last rank, as the tokenizers library's map does. */
    return exo_pairmap_put(&tok->merges, lid, rid, (exo_merge){rank, merged});
}

static exo_status parse_model(exo_tokenizer *tok, const cJSON *root) {
    const cJSON *model = get(root, "model");
    if (!cJSON_IsObject(model))
        return exo_errorf(EXO_ERR_FORMAT, "%s: no \"model\" object", tok->path);
    exo_status st = check_model_type(tok, model);
    if (st) return st;
    const cJSON *vocab = get(model, "vocab");
    const cJSON *merges = get(model, "merges");
    if (!cJSON_IsObject(vocab))
        return exo_errorf(EXO_ERR_FORMAT, "%s: model.vocab is not an object", tok->path);
    if (merges && !cJSON_IsArray(merges))
        return exo_errorf(EXO_ERR_FORMAT, "%s: model.merges is not an array", tok->path);
    st = build_id_table(tok, vocab, get(root, "added_tokens"));
    bool single_word = false;
    for (size_t i = 0; st == EXO_OK && i < tok->n_added; i++) single_word |= tok->added[i].single_word;
    if (st == EXO_OK && single_word) {
        static const char word[] = "[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]";
        st = exo_regex_compile(&tok->word_char, word, sizeof word - 1, false, tok->path, "single_word");
    }
    if (st) return st;

    int n_merges = merges ? cJSON_GetArraySize(merges) : 0;
    st = exo_pairmap_init(&tok->merges, (size_t)n_merges);
    if (st) return st;
    exo_tok_buf tmp = {0};
    int32_t rank = 0;
    for (const cJSON *m = merges ? merges->child : NULL; m && !st; m = m->next)
        st = add_merge(tok, m, rank++, &tmp);
    exo_tok_buf_free(&tmp);
    if (st) return st;

    tok->unk_id = -1;
    const cJSON *unk = get(model, "unk_token");
    if (cJSON_IsString(unk)) {
        tok->unk_id = exo_strmap_get(&tok->vocab, unk->valuestring, strlen(unk->valuestring));
        if (tok->unk_id < 0)
            return exo_errorf(EXO_ERR_FORMAT, "%s: model.unk_token \"%s\" is not in the vocab",
                              tok->path, unk->valuestring);
    }
    tok->byte_fallback = get_bool(model, "byte_fallback", false);
    tok->fuse_unk = get_bool(model, "fuse_unk", false);
    tok->ignore_merges = get_bool(model, "ignore_merges", false);
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        tok->byte_ids[b] = exo_strmap_get(&tok->vocab, name, 6);
    }
    return EXO_OK;
}

static exo_status load(exo_tokenizer *tok, const char *dir) {
    cJSON *root = NULL;
    exo_status st = exo_tok_read_json(tok->path, &root);
    if (st) return st;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return exo_errorf(EXO_ERR_FORMAT, "%s: top level is not a JSON object", tok->path);
    }
    st = parse_model(tok, root);
    if (!st) st = exo_tok_parse_normalizer(tok, get(root, "normalizer"));
    if (!st) st = exo_tok_parse_pretokenizer(tok, get(root, "pre_tokenizer"));
    if (!st) st = exo_tok_parse_decoder(tok, get(root, "decoder"));
    if (!st) st = exo_tok_load_special(tok, dir, get(root, "post_processor"));
    cJSON_Delete(root);
    return st;
}

exo_status exo_tokenizer_load_file(const char *path, exo_tokenizer **out) {
    if (!path || !out) return exo_errorf(EXO_ERR_INVALID_ARG, "tokenizer: NULL path or out");
    *out = NULL;
    exo_tokenizer *tok = calloc(1, sizeof *tok);
    char *dir = NULL;
    if (tok) tok->path = strdup(path);
    if (tok && tok->path) dir = strdup(path);
    if (!tok || !tok->path || !dir) {
        free(dir);
        exo_tokenizer_free(tok);
        return exo_errorf(EXO_ERR_NO_MEMORY, "%s: out of memory", path);
    }
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else strcpy(dir, ".");
    tok->bos = -1;
    tok->unk_id = -1;
    exo_status st = load(tok, dir);
    free(dir);
    if (st) {
        exo_tokenizer_free(tok);
        return st;
    }
    *out = tok;
    return EXO_OK;
}

exo_status exo_tokenizer_load(const char *model_dir, exo_tokenizer **out) {
    if (!model_dir || !out) return exo_errorf(EXO_ERR_INVALID_ARG, "tokenizer: NULL model_dir or out");
    size_t n = strlen(model_dir);
    char *path = malloc(n + sizeof "/tokenizer.json");
    if (!path) return exo_errorf(EXO_ERR_NO_MEMORY, "%s: out of memory", model_dir);
    memcpy(path, model_dir, n);
    strcpy(path + n, "/tokenizer.json");
    exo_status st = exo_tokenizer_load_file(path, out);
    free(path);
    return st;
}

void exo_tokenizer_free(exo_tokenizer *tok) {
    if (!tok) return;
    for (size_t i = 0; i < tok->n_norm; i++) {
        free(tok->norm[i].pattern);
        free(tok->norm[i].text);
        exo_regex_free(&tok->norm[i].regex);
    }
    free(tok->norm);
    for (size_t i = 0; i < tok->n_pretok; i++) exo_regex_free(&tok->pretok[i].regex);
    exo_regex_free(&tok->word_char);
    free(tok->pretok);
    for (size_t i = 0; i < tok->n_dec; i++) {
        free(tok->dec[i].pattern);
        free(tok->dec[i].content);
    }
    free(tok->dec);
    exo_strmap_free(&tok->vocab);
    exo_strmap_free(&tok->added_map);
    exo_pairmap_free(&tok->merges);
    free(tok->added);
    free(tok->id_text);
    free(tok->id_len);
    free(tok->id_flags);
    free(tok->arena);
    free(tok->eos);
    free(tok->path);
    free(tok);
}

uint32_t exo_tokenizer_vocab_size(const exo_tokenizer *tok) { return tok ? tok->n_ids : 0; }

int32_t exo_tokenizer_bos(const exo_tokenizer *tok) { return tok ? tok->bos : -1; }

bool exo_tokenizer_adds_bos(const exo_tokenizer *tok) { return tok && tok->adds_bos && tok->bos >= 0; }

size_t exo_tokenizer_eos(const exo_tokenizer *tok, const int32_t **ids) {
    if (ids) *ids = tok ? tok->eos : NULL;
    return tok ? tok->n_eos : 0;
}

bool exo_tokenizer_is_special(const exo_tokenizer *tok, int32_t id) {
    return tok && id >= 0 && (uint32_t)id < tok->n_ids && (tok->id_flags[id] & EXO_TOK_SPECIAL);
}

const char *exo_tokenizer_token_text(const exo_tokenizer *tok, int32_t id, size_t *len) {
    if (!tok || id < 0 || (uint32_t)id >= tok->n_ids || !tok->id_text[id]) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = tok->id_len[id];
    return tok->id_text[id];
}

int32_t exo_tokenizer_token_id(const exo_tokenizer *tok, const char *text, size_t len) {
    if (!tok || (!text && len)) return -1;
    int32_t id = exo_strmap_get(&tok->added_map, text, len);
    return id >= 0 ? id : exo_strmap_get(&tok->vocab, text, len);
}
