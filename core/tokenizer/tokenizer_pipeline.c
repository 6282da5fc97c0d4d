/* tokenizer.json's "normalizer", "pre_tokenizer" and "decoder" sections, read into flat lists
 * of steps (a "Sequence" is flattened in order). Only the components that BPE checkpoints use
 * are implemented; any other type fails the load with EXO_ERR_UNSUPPORTED naming it, rather
 * than tokenizing differently from the reference. */
#include "tokenizer/tokenizer_internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "base/error.h"

/* GPT-2's pre-tokenizer regex, which ByteLevel applies when "use_regex" is true. */
static const char gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static const cJSON *get(const cJSON *obj, const char *key) {
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

static const char *type_of(const cJSON *node) {
    const cJSON *t = get(node, "type");
    return cJSON_IsString(t) ? t->valuestring : "";
}

static bool get_bool(const cJSON *obj, const char *key, bool dflt) {
    const cJSON *v = get(obj, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

/* The tokenizers library runs these patterns with Oniguruma, whose \s is Unicode White_Space;
 * PCRE2's \s (with UCP: \p{Z}, \h, \v) also takes U+180E MONGOLIAN VOWEL SEPARATOR, which
 * left White_Space in Unicode 6.3, and so splits text around it differently. So \s and \S are
 * spelled out as White_Space before compiling. Inside a class \s becomes the bare ranges; a \S
 * inside a class (no class subtraction in PCRE2 10.42) stays PCRE2's. */
#define WHITE_SPACE "\\t-\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

static char *white_space_pattern(const char *pattern, size_t len, size_t *out_len) {
    size_t cap = len * (sizeof WHITE_SPACE + 3) + 1, n = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    bool in_class = false;
    for (size_t i = 0; i < len; i++) {
        char c = pattern[i];
        if (c == '\\' && i + 1 < len) {
            char e = pattern[i + 1];
            const char *with = NULL;
            if (e == 's') with = in_class ? WHITE_SPACE : "[" WHITE_SPACE "]";
            else if (e == 'S' && !in_class) with = "[^" WHITE_SPACE "]";
            if (with) {
                memcpy(out + n, with, strlen(with));
                n += strlen(with);
            } else {
                out[n++] = c;
                out[n++] = e;
            }
            i++;
            continue;
        }
        if (!in_class && c == '[') {
            in_class = true;
            out[n++] = c;
            /* A ']' right after '[' or '[^' is a literal member, not the end. */
            if (i + 1 < len && pattern[i + 1] == '^') out[n++] = pattern[++i];
            if (i + 1 < len && pattern[i + 1] == ']') out[n++] = pattern[++i];
            continue;
        }
        if (in_class && c == '[' && i + 1 < len && pattern[i + 1] == ':') {
            /* A POSIX class [:name:] inside a class: copied whole. */
            const char *close = NULL;
            for (size_t k = i + 2; k + 1 < len; k++)
                if (pattern[k] == ':' && pattern[k + 1] == ']') {
                    close = pattern + k;
                    break;
                }
            if (close) {
                size_t span = (size_t)(close - (pattern + i)) + 2;
                memcpy(out + n, pattern + i, span);
                n += span;
                i += span - 1;
                continue;
            }
        }
        if (in_class && c == ']') in_class = false;
        out[n++] = c;
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

exo_status exo_regex_compile(exo_regex *re, const char *pattern, size_t len, bool literal,
                             const char *path, const char *what) {
    int err = 0;
    PCRE2_SIZE at = 0;
    re->label = NULL;
    /* UCP gives \p{..} and \w their Unicode meaning; PCRE2 refuses it with LITERAL. */
    uint32_t opts = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
    size_t rewritten_len = len;
    char *rewritten = literal ? NULL : white_space_pattern(pattern, len, &rewritten_len);
    if (!literal && !rewritten) return exo_errorf(EXO_ERR_NO_MEMORY, "%s: out of memory compiling a regex", path);
    re->code = pcre2_compile((PCRE2_SPTR)(rewritten ? rewritten : pattern), rewritten_len, opts, &err, &at, NULL);
    free(rewritten);
    if (!re->code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return exo_errorf(EXO_ERR_FORMAT, "%s: %s regex /%.*s/ does not compile at offset %zu: %s",
                          path, what, (int)(len > 200 ? 200 : len), pattern, (size_t)at,
                          (const char *)msg);
    }
    /* JIT makes splitting several times faster; the interpreter is the fallback. Matching
     * is windowed with partial matches (tokenizer_regex.c), so both modes are compiled. */
    (void)pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE | PCRE2_JIT_PARTIAL_HARD);
    /* The label names the pattern when it gives up on an input (tokenizer_regex.c): its first
     * 40 bytes, cut at a character boundary. */
    size_t shown = len;
    if (shown > 40) {
        shown = 40;
        while (shown > 0 && ((uint8_t)pattern[shown] & 0xC0) == 0x80) shown--;
    }
    size_t cap = strlen(path) + strlen(what) + shown + 32;
    re->label = malloc(cap);
    if (!re->label) {
        exo_regex_free(re);
        return exo_errorf(EXO_ERR_NO_MEMORY, "%s: out of memory compiling a regex", path);
    }
    snprintf(re->label, cap, "%s: %s pattern '%.*s%s'", path, what, (int)shown, pattern,
             shown < len ? "\xE2\x80\xA6" : "");
    return EXO_OK;
}

void exo_regex_free(exo_regex *re) {
    pcre2_code_free(re->code);
    re->code = NULL;
    free(re->label);
    re->label = NULL;
}

static exo_status dup_string(const exo_tokenizer *tok, const char *s, char **out, size_t *len) {
    *len = strlen(s);
    *out = malloc(*len + 1);
    if (!*out) return exo_errorf(EXO_ERR_NO_MEMORY, "%s: out of memory", tok->path);
    memcpy(*out, s, *len + 1);
    return EXO_OK;
}

/* A "pattern" object: {"String": "..."} or {"Regex": "..."}. */
static exo_status read_pattern(const exo_tokenizer *tok, const cJSON *node, const char *what,
                               const char **text, bool *is_regex) {
    const cJSON *p = get(node, "pattern");
    const cJSON *s = get(p, "String");
    const cJSON *r = get(p, "Regex");
    if (cJSON_IsString(s)) {
        *text = s->valuestring;
        *is_regex = false;
    } else if (cJSON_IsString(r)) {
        *text = r->valuestring;
        *is_regex = true;
    } else {
        return exo_errorf(EXO_ERR_FORMAT, "%s: %s needs a \"pattern\" with \"String\" or \"Regex\"",
                          tok->path, what);
    }
    return EXO_OK;
}

/* The replacement character of a Metaspace or Strip step: one UTF-8 character. */
static exo_status read_char(const exo_tokenizer *tok, const cJSON *node, const char *key,
                            const char *dflt, const char *what, char out[5], uint8_t *len) {
    const cJSON *v = get(node, key);
    const char *s = cJSON_IsString(v) ? v->valuestring : dflt;
    size_t n = strlen(s);
    uint32_t cp;
    if (n == 0 || n > 4 || exo_utf8_char((const uint8_t *)s, n, &cp) != (int)n)
        return exo_errorf(EXO_ERR_FORMAT, "%s: %s \"%s\" must be a single character", tok->path,
                          what, key);
    memcpy(out, s, n + 1);
    *len = (uint8_t)n;
    return EXO_OK;
}

static exo_status read_prepend_scheme(const exo_tokenizer *tok, const cJSON *node,
                                      const char *what, exo_prepend_scheme *out) {
    const cJSON *scheme = get(node, "prepend_scheme");
    if (cJSON_IsString(scheme)) {
        if (!strcmp(scheme->valuestring, "always")) *out = EXO_PREPEND_ALWAYS;
        else if (!strcmp(scheme->valuestring, "first")) *out = EXO_PREPEND_FIRST;
        else if (!strcmp(scheme->valuestring, "never")) *out = EXO_PREPEND_NEVER;
        else
            return exo_errorf(EXO_ERR_FORMAT, "%s: %s prepend_scheme \"%s\" is not always/first/never",
                              tok->path, what, scheme->valuestring);
    } else {
        /* Older files: add_prefix_space, true by default. */
        *out = get_bool(node, "add_prefix_space", true) ? EXO_PREPEND_ALWAYS : EXO_PREPEND_NEVER;
    }
    return EXO_OK;
}

/* ---------------------------------------------------------------- normalizer */

static exo_status push_norm(exo_tokenizer *tok, exo_norm_step **step) {
    exo_norm_step *p = realloc(tok->norm, (tok->n_norm + 1) * sizeof *p);
    if (!p) return exo_errorf(EXO_ERR_NO_MEMORY, "%s: out of memory", tok->path);
    tok->norm = p;
    *step = memset(&p[tok->n_norm++], 0, sizeof *p);
    return EXO_OK;
}

static exo_status parse_norm(exo_tokenizer *tok, const cJSON *node, int depth) {
    const char *type = type_of(node);
    exo_norm_step *s = NULL;
    exo_status st;
    if (depth > 16)
        return exo_errorf(EXO_ERR_FORMAT, "%s: normalizer Sequence nested too deeply", tok->path);
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = get(node, "normalizers");
        if (!cJSON_IsArray(list))
            return exo_errorf(EXO_ERR_FORMAT, "%s: normalizer Sequence without \"normalizers\"",
                              tok->path);
        for (const cJSON *c = list->child; c; c = c->next)
            if ((st = parse_norm(tok, c, depth + 1))) return st;
        return EXO_OK;
    }
    if (!strcmp(type, "Prepend")) {
        const cJSON *p = get(node, "prepend");
        if (!cJSON_IsString(p))
            return exo_errorf(EXO_ERR_FORMAT, "%s: Prepend normalizer without \"prepend\"", tok->path);
        if ((st = push_norm(tok, &s))) return st;
        s->kind = EXO_NORM_PREPEND;
        return dup_string(tok, p->valuestring, &s->text, &s->text_len);
    }
    if (!strcmp(type, "Replace")) {
        const char *pattern = "";
        bool is_regex = false;
        const cJSON *content = get(node, "content");
        if ((st = read_pattern(tok, node, "Replace normalizer", &pattern, &is_regex))) return st;
        if (!cJSON_IsString(content))
            return exo_errorf(EXO_ERR_FORMAT, "%s: Replace normalizer without \"content\"", tok->path);
        if (!is_regex && !pattern[0])
            return exo_errorf(EXO_ERR_FORMAT, "%s: Replace normalizer with an empty pattern", tok->path);
        if ((st = push_norm(tok, &s))) return st;
        s->kind = EXO_NORM_REPLACE;
        if (is_regex) st = exo_regex_compile(&s->regex, pattern, strlen(pattern), false, tok->path,
                                             "Replace normalizer");
        else st = dup_string(tok, pattern, &s->pattern, &s->pattern_len);
        if (st) return st;
        return dup_string(tok, content->valuestring, &s->text, &s->text_len);
    }
    if (!strcmp(type, "NFC")) {
        /* Qwen2/Qwen3 declare NFC. Text from keyboards, files and the web is almost always
         * NFC already, and NFC of NFC text is the identity, so the step passes text through;
         * decomposed input (a letter followed by a combining accent) is then tokenized as
         * written rather than composed first. Exact composition needs the Unicode tables
         * (ICU's unorm2), which the core does not link. */
        return EXO_OK;
    }
    return exo_errorf(EXO_ERR_UNSUPPORTED, "%s: normalizer type '%s' is not supported",
                      tok->path, type[0] ? type : "(none)");
}

exo_status exo_tok_parse_normalizer(exo_tokenizer *tok, const cJSON *node) {
    if (!node || cJSON_IsNull(node)) return EXO_OK;
    tok->has_normalizer = true;
    return parse_norm(tok, node, 0);
}

/* ---------------------------------------------------------------- pre-tokenizer */

static exo_status push_pretok(exo_tokenizer *tok, exo_pretok_step **step) {
    exo_pretok_step *p = realloc(tok->pretok, (tok->n_pretok + 1) * sizeof *p);
    if (!p) return exo_errorf(EXO_ERR_NO_MEMORY, "%s: out of memory", tok->path);
    tok->pretok = p;
    *step = memset(&p[tok->n_pretok++], 0, sizeof *p);
    return EXO_OK;
}

static exo_status push_split(exo_tokenizer *tok, const char *pattern, bool literal,
                             exo_split_behavior behavior, bool invert, const char *what) {
    exo_pretok_step *s = NULL;
    exo_status st = push_pretok(tok, &s);
    if (st) return st;
    s->kind = EXO_PRETOK_SPLIT;
    s->behavior = behavior;
    s->invert = invert;
    return exo_regex_compile(&s->regex, pattern, strlen(pattern), literal, tok->path, what);
}

static exo_status read_behavior(const exo_tokenizer *tok, const cJSON *node,
                                exo_split_behavior *out) {
    static const struct {
        const char *name;
        exo_split_behavior b;
    } names[] = {{"Removed", EXO_SPLIT_REMOVED},
                 {"Isolated", EXO_SPLIT_ISOLATED},
                 {"MergedWithPrevious", EXO_SPLIT_MERGED_WITH_PREVIOUS},
                 {"MergedWithNext", EXO_SPLIT_MERGED_WITH_NEXT},
                 {"Contiguous", EXO_SPLIT_CONTIGUOUS}};
    const cJSON *b = get(node, "behavior");
    if (cJSON_IsString(b))
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (!strcmp(b->valuestring, names[i].name)) {
                *out = names[i].b;
                return EXO_OK;
            }
    return exo_errorf(EXO_ERR_FORMAT, "%s: Split pre-tokenizer behavior \"%s\" is unknown",
                      tok->path, cJSON_IsString(b) ? b->valuestring : "(missing)");
}

static exo_status parse_pretok(exo_tokenizer *tok, const cJSON *node, int depth) {
    const char *type = type_of(node);
    exo_pretok_step *s = NULL;
    exo_status st;
    if (depth > 16)
        return exo_errorf(EXO_ERR_FORMAT, "%s: pre_tokenizer Sequence nested too deeply", tok->path);
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = get(node, "pretokenizers");
        if (!cJSON_IsArray(list))
            return exo_errorf(EXO_ERR_FORMAT, "%s: pre_tokenizer Sequence without \"pretokenizers\"",
                              tok->path);
        for (const cJSON *c = list->child; c; c = c->next)
            if ((st = parse_pretok(tok, c, depth + 1))) return st;
        return EXO_OK;
    }
    if (!strcmp(type, "Split")) {
        const char *pattern = "";
        bool is_regex = false;
        exo_split_behavior behavior = EXO_SPLIT_ISOLATED;
        if ((st = read_pattern(tok, node, "Split pre-tokenizer", &pattern, &is_regex))) return st;
        if ((st = read_behavior(tok, node, &behavior))) return st;
        if (!pattern[0])
            return exo_errorf(EXO_ERR_FORMAT, "%s: Split pre-tokenizer with an empty pattern", tok->path);
        return push_split(tok, pattern, !is_regex, behavior, get_bool(node, "invert", false),
                          "Split pre-tokenizer");
    }
    if (!strcmp(type, "ByteLevel")) {
        if ((st = push_pretok(tok, &s))) return st;
        s->kind = EXO_PRETOK_BYTELEVEL;
        s->add_prefix_space = get_bool(node, "add_prefix_space", true);
        tok->byte_level = true;
        if (get_bool(node, "use_regex", true))
            return push_split(tok, gpt2_pattern, false, EXO_SPLIT_ISOLATED, false,
                              "ByteLevel pre-tokenizer");
        return EXO_OK;
    }
    if (!strcmp(type, "Metaspace")) {
        if ((st = push_pretok(tok, &s))) return st;
        s->kind = EXO_PRETOK_METASPACE;
        s->split = get_bool(node, "split", true);
        if ((st = read_prepend_scheme(tok, node, "Metaspace pre-tokenizer", &s->prepend))) return st;
        return read_char(tok, node, "replacement", "\xE2\x96\x81", "Metaspace pre-tokenizer",
                         s->replacement, &s->replacement_len);
    }
    if (!strcmp(type, "Digits"))
        return push_split(tok, get_bool(node, "individual_digits", false) ? "\\p{N}" : "\\p{N}+",
                          false, EXO_SPLIT_ISOLATED, false, "Digits pre-tokenizer");
    if (!strcmp(type, "Whitespace"))
        return push_split(tok, "\\w+|[^\\w\\s]+", false, EXO_SPLIT_REMOVED, true,
                          "Whitespace pre-tokenizer");
    if (!strcmp(type, "WhitespaceSplit"))
        return push_split(tok, "\\s+", false, EXO_SPLIT_REMOVED, false,
                          "WhitespaceSplit pre-tokenizer");
    return exo_errorf(EXO_ERR_UNSUPPORTED, "%s: pre-tokenizer type '%s' is not supported",
                      tok->path, type[0] ? type : "(none)");
}

exo_status exo_tok_parse_pretokenizer(exo_tokenizer *tok, const cJSON *node) {
    if (!node || cJSON_IsNull(node)) return EXO_OK;
    return parse_pretok(tok, node, 0);
}

/* ---------------------------------------------------------------- decoder */

static exo_status push_dec(exo_tokenizer *tok, exo_dec_kind kind, exo_dec_step **step) {
    exo_dec_step *p = realloc(tok->dec, (tok->n_dec + 1) * sizeof *p);
    if (!p) return exo_errorf(EXO_ERR_NO_MEMORY, "%s: out of memory", tok->path);
    tok->dec = p;
    *step = memset(&p[tok->n_dec++], 0, sizeof *p);
    (*step)->kind = kind;
    return EXO_OK;
}

static bool fused(const exo_tokenizer *tok) {
    for (size_t i = 0; i < tok->n_dec; i++)
        if (tok->dec[i].kind == EXO_DEC_FUSE) return true;
    return false;
}

static exo_status parse_dec(exo_tokenizer *tok, const cJSON *node, int depth) {
    const char *type = type_of(node);
    exo_dec_step *s = NULL;
    exo_status st;
    if (depth > 16)
        return exo_errorf(EXO_ERR_FORMAT, "%s: decoder Sequence nested too deeply", tok->path);
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = get(node, "decoders");
        if (!cJSON_IsArray(list))
            return exo_errorf(EXO_ERR_FORMAT, "%s: decoder Sequence without \"decoders\"", tok->path);
        for (const cJSON *c = list->child; c; c = c->next)
            if ((st = parse_dec(tok, c, depth + 1))) return st;
        return EXO_OK;
    }
    if (!strcmp(type, "ByteLevel")) return push_dec(tok, EXO_DEC_BYTELEVEL, &s);
    if (!strcmp(type, "ByteFallback")) return push_dec(tok, EXO_DEC_BYTEFALLBACK, &s);
    if (!strcmp(type, "Fuse")) return push_dec(tok, EXO_DEC_FUSE, &s);
    if (!strcmp(type, "Replace")) {
        const char *pattern = "";
        bool is_regex = false;
        const cJSON *content = get(node, "content");
        if ((st = read_pattern(tok, node, "Replace decoder", &pattern, &is_regex))) return st;
        if (is_regex)
            return exo_errorf(EXO_ERR_UNSUPPORTED, "%s: Replace decoder with a Regex pattern is not "
                              "supported", tok->path);
        if (!cJSON_IsString(content) || !pattern[0])
            return exo_errorf(EXO_ERR_FORMAT, "%s: Replace decoder needs a non-empty pattern and a "
                              "\"content\"", tok->path);
        if ((st = push_dec(tok, EXO_DEC_REPLACE, &s))) return st;
        if ((st = dup_string(tok, pattern, &s->pattern, &s->pattern_len))) return st;
        return dup_string(tok, content->valuestring, &s->content, &s->content_len);
    }
    if (!strcmp(type, "Strip")) {
        const cJSON *start = get(node, "start"), *stop = get(node, "stop");
        char c[5];
        uint8_t clen;
        if ((st = read_char(tok, node, "content", " ", "Strip decoder", c, &clen))) return st;
        double a = cJSON_IsNumber(start) ? start->valuedouble : 0;
        double b = cJSON_IsNumber(stop) ? stop->valuedouble : 0;
        if (!(a >= 0 && a < 1024 && b >= 0 && b < 1024))
            return exo_errorf(EXO_ERR_FORMAT, "%s: Strip decoder start/stop out of range", tok->path);
        /* Trailing strip of the fused text would need the end of the stream to be known. */
        if (b > 0 && fused(tok))
            return exo_errorf(EXO_ERR_UNSUPPORTED, "%s: Strip decoder with stop > 0 after Fuse is "
                              "not supported", tok->path);
        if ((st = push_dec(tok, EXO_DEC_STRIP, &s))) return st;
        s->start = (uint32_t)a;
        s->stop = (uint32_t)b;
        return dup_string(tok, c, &s->content, &s->content_len);
    }
    if (!strcmp(type, "Metaspace")) {
        char c[5];
        uint8_t clen;
        if ((st = read_char(tok, node, "replacement", "\xE2\x96\x81", "Metaspace decoder", c, &clen)))
            return st;
        if ((st = push_dec(tok, EXO_DEC_METASPACE, &s))) return st;
        if ((st = read_prepend_scheme(tok, node, "Metaspace decoder", &s->prepend))) return st;
        return dup_string(tok, c, &s->pattern, &s->pattern_len);
    }
    return exo_errorf(EXO_ERR_UNSUPPORTED, "%s: decoder type '%s' is not supported", tok->path,
                      type[0] ? type : "(none)");
}

exo_status exo_tok_parse_decoder(exo_tokenizer *tok, const cJSON *node) {
    if (!node || cJSON_IsNull(node)) return EXO_OK;
    tok->has_decoder = true;
    return parse_dec(tok, node, 0);
}
