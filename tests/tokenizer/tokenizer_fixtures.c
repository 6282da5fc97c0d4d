#include "tokenizer_fixtures.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

cJSON *fixture_read_json(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = buf ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    if (!buf || got != (size_t)n) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    cJSON *root = cJSON_ParseWithLength(buf, (size_t)n);
    free(buf);
    if (!root) fprintf(stderr, "cannot parse %s\n", path);
    return root;
}

char *fixture_make_dir(void) {
    const char *base = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/exo-tok-XXXXXX", base && base[0] ? base : "/tmp");
    char *dir = mkdtemp(tmpl);
    return dir ? strdup(dir) : NULL;
}

bool fixture_write(const char *dir, const char *name, const char *content) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(content, 1, strlen(content), f) == strlen(content);
    return fclose(f) == 0 && ok;
}

void fixture_remove_dir(char *dir) {
    if (!dir) return;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
    free(dir);
}

bool fixture_ids(const cJSON *array, int32_t **ids, size_t *n) {
    if (!cJSON_IsArray(array)) return false;
    size_t count = (size_t)cJSON_GetArraySize(array);
    int32_t *v = malloc((count ? count : 1) * sizeof *v);
    if (!v) return false;
    size_t i = 0;
    for (const cJSON *e = array->child; e; e = e->next) {
        if (!cJSON_IsNumber(e)) {
            free(v);
            return false;
        }
        v[i++] = (int32_t)e->valuedouble;
    }
    *ids = v;
    *n = count;
    return true;
}

#define SP "\\u2581"

bool fixture_write_sentencepiece(const char *dir, bool metaspace) {
    static const char *const pieces[] = {SP, "h", "e", "l", "o", "w", "r", "d", SP "h", "ll",
                                         SP "he", "llo", SP "hello", SP "w", "or", SP "wor", "ld",
                                         SP "world"};
    /* "a b" strings, in rank order. */
    static const char *const merges[] = {SP " h", "l l", SP "h e", "ll o", SP "he llo",
                                         SP " w", "o r", SP "w or", "l d", SP "wor ld"};
    size_t cap = 64 * 1024, len = 0;
    char *json = malloc(cap);
    if (!json) return false;
#define OUT(...) len += (size_t)snprintf(json + len, cap - len, __VA_ARGS__)
    OUT("{\"version\":\"1.0\",\"added_tokens\":[");
    static const char *const specials[] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < 3; i++)
        OUT("%s{\"id\":%d,\"content\":\"%s\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,"
            "\"normalized\":false,\"special\":true}", i ? "," : "", i, specials[i]);
    OUT("],");
    if (metaspace) {
        OUT("\"normalizer\":null,");
        OUT("\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"" SP "\","
            "\"prepend_scheme\":\"first\",\"split\":true},");
        OUT("\"post_processor\":null,");
        OUT("\"decoder\":{\"type\":\"Metaspace\",\"replacement\":\"" SP "\","
            "\"prepend_scheme\":\"first\",\"split\":true},");
    } else {
        OUT("\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":["
            "{\"type\":\"Prepend\",\"prepend\":\"" SP "\"},"
            "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"" SP "\"}]},");
        OUT("\"pre_tokenizer\":null,");
        OUT("\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":["
            "{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],"
            "\"pair\":[],\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[1],\"tokens\":[\"<s>\"]}}},");
        OUT("\"decoder\":{\"type\":\"Sequence\",\"decoders\":["
            "{\"type\":\"Replace\",\"pattern\":{\"String\":\"" SP "\"},\"content\":\" \"},"
            "{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},"
            "{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]},");
    }
    OUT("\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":\"<unk>\","
        "\"continuing_subword_prefix\":null,\"end_of_word_suffix\":null,\"fuse_unk\":true,"
        "\"byte_fallback\":true,\"ignore_merges\":false,\"vocab\":{");
    OUT("\"<unk>\":0,\"<s>\":1,\"</s>\":2");
    for (int b = 0; b < 256; b++) OUT(",\"<0x%02X>\":%d", b, SP_BYTE0 + b);
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++)
        OUT(",\"%s\":%d", pieces[i], SP_SPACE + (int)i);
    OUT("},\"merges\":[");
    for (size_t i = 0; i < sizeof merges / sizeof merges[0]; i++) OUT("%s\"%s\"", i ? "," : "", merges[i]);
    OUT("]}}");
#undef OUT
    bool ok = len < cap && fixture_write(dir, "tokenizer.json", json) &&
              fixture_write(dir, "tokenizer_config.json",
                            metaspace ? "{\"bos_token\":\"<s>\",\"eos_token\":\"</s>\",\"add_bos_token\":false}"
                                      : "{\"bos_token\":{\"content\":\"<s>\"},\"eos_token\":\"</s>\"}");
    free(json);
    return ok;
}
