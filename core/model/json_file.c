/* Bounded JSON file reading (see json_file.h).
 *
 * Limits, from real files: config.json and generation_config.json are a few kB (4 MiB leaves
 * room for label maps); tokenizer_config.json holds chat templates and added-token tables,
 * hundreds of kB at most (16 MiB); the largest tokenizer.json files (Gemma 3) are ~33 MB
 * (64 MiB); an index for a trillion-parameter model lists ~100k tensors in a few MB (64 MiB).
 * Under cJSON every input byte may cost 41 bytes, so a 64 MiB file may need 2.6 GiB: the parse
 * is refused up front when the machine (or the container) lacks that, rather than failing deep
 * inside cJSON or waking the OOM killer. */
#include "model/json_file.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "base/meminfo.h"
#include "model/model_path.h"

#define MIB (1024u * 1024u)

static const struct {
    const char *name;
    uint64_t limit;
} json_limits[] = {
    {"config.json", 4 * MIB},
    {"generation_config.json", 4 * MIB},
    {"tokenizer_config.json", 16 * MIB},
    {"tokenizer.json", 64 * MIB},
    {"model.safetensors.index.json", 64 * MIB},
};

uint64_t exo_json_file_limit(const char *name) {
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    for (size_t i = 0; i < sizeof json_limits / sizeof json_limits[0]; i++)
        if (strcmp(base, json_limits[i].name) == 0) return json_limits[i].limit;
    return json_limits[0].limit;
}

exo_status exo_json_parse_fits(const char *path, uint64_t bytes, uint64_t available) {
    uint64_t need = bytes * EXO_JSON_PARSE_BYTES_PER_BYTE; /* bytes is at most a limit: no overflow */
    if (need > available)
        return exo_errorf(EXO_ERR_NO_MEMORY, "%s: parsing its %llu bytes may take up to %llu MiB, more than the "
                          "%llu MiB of memory available", path, (unsigned long long)bytes,
                          (unsigned long long)(need / MIB), (unsigned long long)(available / MIB));
    return EXO_OK;
}

/* Where the parser stopped, as line and column, for the message. */
static void json_position(const char *text, size_t len, const char *end, size_t *line, size_t *col) {
    size_t at = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < at; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static exo_status json_read_fd(int fd, const char *path, uint64_t size, char **out) {
    char *buf = malloc((size_t)size + 1);
    if (!buf) return exo_errorf(EXO_ERR_NO_MEMORY, "%s: out of memory reading %llu bytes", path,
                                (unsigned long long)size);
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, buf + got, (size_t)size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            free(buf);
            return n < 0 ? exo_errorf(EXO_ERR_IO, "%s: read failed: %s", path, strerror(errno))
                         : exo_errorf(EXO_ERR_IO, "%s: read %zu of %llu bytes (file shrank while reading)", path,
                                      got, (unsigned long long)size);
        }
        got += (size_t)n;
    }
    buf[size] = '\0';
    *out = buf;
    return EXO_OK;
}

exo_status exo_json_file_load(const char *dir, const char *name, cJSON **out) {
    if (!dir || !name || !out) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_json_file_load: NULL argument");
    *out = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd;
    struct stat sb;
    exo_status st = exo_model_path_open(dir, name, &fd, &sb);
    if (st) return st;
    uint64_t size = (uint64_t)sb.st_size, limit = exo_json_file_limit(name);
    char *text = NULL;
    if (size > limit)
        st = exo_errorf(EXO_ERR_FORMAT, "%s: %llu bytes is too large for this file (limit %llu MiB; the largest "
                        "real ones are far smaller)", path, (unsigned long long)size,
                        (unsigned long long)(limit / MIB));
    if (!st) st = exo_json_parse_fits(path, size, exo_mem_available());
    if (!st) st = json_read_fd(fd, path, size, &text);
    close(fd);
    if (st) return st;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, (size_t)size, &end, false);
    if (root) {
        /* Only whitespace may follow the value; a NUL or a second value is a broken file. */
        for (const char *p = end; p < text + size; p++)
            if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
                cJSON_Delete(root);
                root = NULL;
                end = p;
                break;
            }
    }
    if (!root) {
        size_t line, col;
        json_position(text, (size_t)size, end, &line, &col);
        free(text);
        return exo_errorf(EXO_ERR_FORMAT, "%s: malformed JSON near line %zu, column %zu", path, line, col);
    }
    free(text);
    *out = root;
    return EXO_OK;
}

exo_status exo_json_file_load_path(const char *path, cJSON **out) {
    if (!path || !out) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_json_file_load_path: NULL argument");
    const char *slash = strrchr(path, '/');
    if (!slash) return exo_json_file_load(".", path, out);
    char dir[4096];
    size_t n = (size_t)(slash - path);
    if (n >= sizeof dir) return exo_errorf(EXO_ERR_IO, "%s: path too long", path);
    memcpy(dir, path, n);
    dir[n] = '\0';
    return exo_json_file_load(n ? dir : "/", slash + 1, out);
}
