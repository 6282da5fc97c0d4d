/* A model directory's weights: model.safetensors, or model.safetensors.index.json and its shards.
 *
 * With an index, only the index is read at open (plus a stat of each shard, so a missing file is
 * reported up front); a shard is mapped and its header parsed the first time one of its tensors
 * is requested. A pipeline shard that owns layers [start, end) therefore maps only the files
 * holding those layers. The index is not trusted: its file names must stay inside the directory,
 * and a tensor must really be in the file the index names. */
#include "model/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"

#define WT_INDEX_NAME "model.safetensors.index.json"
#define WT_SINGLE_NAME "model.safetensors"
/* An index for the largest models is a few hundred kB; anything near this is not an index. */
#define WT_MAX_INDEX_BYTES (64u * 1024u * 1024u)

typedef struct wt_shard {
    char *name;          /* as written in the index, relative to the directory */
    char *path;          /* dir/name */
    exo_st_file *file;   /* NULL until one of its tensors is requested */
} wt_shard;

typedef struct wt_entry {
    char *name;
    uint32_t shard;
} wt_entry;

struct exo_weights {
    char *dir;
    char *index_path;     /* NULL: a single model.safetensors (shards[0], opened at once) */
    pthread_mutex_t lock; /* lazy shard opening may race between loader threads */
    uint32_t n_shards;
    wt_shard *shards;
    uint32_t n_entries;
    wt_entry *entries;    /* sorted by name */
};

static char *wt_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + 1 + strlen(name) + 1;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int wt_entry_cmp(const void *a, const void *b) {
    return strcmp(((const wt_entry *)a)->name, ((const wt_entry *)b)->name);
}

static const wt_entry *wt_find_entry(const exo_weights *w, const char *name) {
    wt_entry key = {(char *)name, 0};
    return bsearch(&key, w->entries, w->n_entries, sizeof key, wt_entry_cmp);
}

/* ------------------------------------------------------------------ index */

static exo_status wt_read_file(const char *path, char **text, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return exo_errorf(EXO_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(fp);
        return exo_errorf(EXO_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size > WT_MAX_INDEX_BYTES) {
        fclose(fp);
        return exo_errorf(EXO_ERR_FORMAT, "%s: %lld bytes is too large for an index (limit %u)",
                          path, (long long)sb.st_size, WT_MAX_INDEX_BYTES);
    }
    size_t n = (size_t)sb.st_size;
    char *buf = malloc(n + 1);
    if (!buf) { fclose(fp); return exo_errorf(EXO_ERR_NO_MEMORY, "%s: out of memory", path); }
    size_t got = fread(buf, 1, n, fp);
    fclose(fp);
    if (got != n) {
        free(buf);
        return exo_errorf(EXO_ERR_IO, "%s: short read (%zu of %zu bytes)", path, got, n);
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return EXO_OK;
}

/* A shard name must name a file inside the directory: relative, with no ".." anywhere. */
static bool wt_shard_name_ok(const char *name) {
    return name[0] != '\0' && name[0] != '/' && strstr(name, "..") == NULL;
}

static exo_status wt_add_shard(exo_weights *w, const char *name, uint32_t *index) {
    /* Indexes list a shard's tensors together, so the last shard is the usual hit. */
    for (uint32_t k = w->n_shards; k-- > 0;) {
        if (strcmp(w->shards[k].name, name) == 0) { *index = k; return EXO_OK; }
    }
    wt_shard *grown = realloc(w->shards, (w->n_shards + 1) * sizeof *grown);
    if (!grown) return exo_errorf(EXO_ERR_NO_MEMORY, "%s: out of memory", w->index_path);
    w->shards = grown;
    wt_shard *s = &w->shards[w->n_shards];
    *s = (wt_shard){strdup(name), wt_join(w->dir, name), NULL};
    if (!s->name || !s->path) {
        free(s->name);
        free(s->path);
        return exo_errorf(EXO_ERR_NO_MEMORY, "%s: out of memory", w->index_path);
    }
    *index = w->n_shards++;
    return EXO_OK;
}

/* Every shard must exist and resolve (through symlinks too) to a file inside the directory.
 * This stats; it maps nothing. */
static exo_status wt_check_shards(exo_weights *w) {
    char dir_real[PATH_MAX], shard_real[PATH_MAX];
    if (!realpath(w->dir, dir_real))
        return exo_errorf(EXO_ERR_IO, "%s: cannot resolve directory: %s", w->dir, strerror(errno));
    size_t dlen = strlen(dir_real);
    for (uint32_t k = 0; k < w->n_shards; k++) {
        const wt_shard *s = &w->shards[k];
        struct stat sb;
        if (stat(s->path, &sb) != 0 || !S_ISREG(sb.st_mode))
            return exo_errorf(EXO_ERR_IO, "%s: shard file '%s' listed in %s is missing", w->dir,
                              s->name, WT_INDEX_NAME);
        if (!realpath(s->path, shard_real))
            return exo_errorf(EXO_ERR_IO, "%s: cannot resolve shard '%s': %s", w->dir, s->name,
                              strerror(errno));
        if (strncmp(shard_real, dir_real, dlen) != 0 || shard_real[dlen] != '/')
            return exo_errorf(EXO_ERR_FORMAT, "%s: shard file '%s' listed in %s resolves outside "
                              "the model directory", w->dir, s->name, WT_INDEX_NAME);
    }
    return EXO_OK;
}

static exo_status wt_load_index(exo_weights *w) {
    const char *path = w->index_path;
    char *text = NULL;
    size_t len = 0;
    exo_status st = wt_read_file(path, &text, &len);
    if (st) return st;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root) return exo_errorf(EXO_ERR_FORMAT, "%s: not valid JSON", path);
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(root) || !cJSON_IsObject(map)) {
        cJSON_Delete(root);
        return exo_errorf(EXO_ERR_FORMAT, "%s: field 'weight_map' is missing or not an object", path);
    }
    int n = cJSON_GetArraySize(map);
    w->entries = calloc(n > 0 ? (size_t)n : 1, sizeof *w->entries);
    if (!w->entries) {
        cJSON_Delete(root);
        return exo_errorf(EXO_ERR_NO_MEMORY, "%s: out of memory", path);
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, map) {
        if (!e->string || !e->string[0]) {
            st = exo_errorf(EXO_ERR_FORMAT, "%s: weight_map has an entry with an empty name", path);
            break;
        }
        if (!cJSON_IsString(e) || !e->valuestring) {
            st = exo_errorf(EXO_ERR_FORMAT, "%s: tensor '%s': weight_map value is not a file name",
                            path, e->string);
            break;
        }
        if (!wt_shard_name_ok(e->valuestring)) {
            st = exo_errorf(EXO_ERR_FORMAT,
                            "%s: tensor '%s': file name '%s' points outside the model directory",
                            path, e->string, e->valuestring);
            break;
        }
        uint32_t shard;
        st = wt_add_shard(w, e->valuestring, &shard);
        if (st) break;
        wt_entry *entry = &w->entries[w->n_entries];
        entry->name = strdup(e->string);
        entry->shard = shard;
        if (!entry->name) { st = exo_errorf(EXO_ERR_NO_MEMORY, "%s: out of memory", path); break; }
        w->n_entries++;
    }
    cJSON_Delete(root);
    if (st) return st;
    qsort(w->entries, w->n_entries, sizeof *w->entries, wt_entry_cmp);
    for (uint32_t k = 1; k < w->n_entries; k++)
        if (strcmp(w->entries[k - 1].name, w->entries[k].name) == 0)
            return exo_errorf(EXO_ERR_FORMAT, "%s: tensor '%s': listed twice in weight_map", path,
                              w->entries[k].name);
    return wt_check_shards(w);
}

/* ------------------------------------------------------------------ open / close */

void exo_weights_close(exo_weights *w) {
    if (!w) return;
    for (uint32_t k = 0; k < w->n_shards; k++) {
        exo_st_file_close(w->shards[k].file);
        free(w->shards[k].name);
        free(w->shards[k].path);
    }
    for (uint32_t k = 0; k < w->n_entries; k++) free(w->entries[k].name);
    free(w->shards);
    free(w->entries);
    free(w->index_path);
    free(w->dir);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

static bool wt_is_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

exo_status exo_weights_open(const char *dir, exo_weights **out) {
    if (!dir || !out) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_weights_open: NULL argument");
    *out = NULL;
    struct stat sb;
    errno = 0;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return exo_errorf(EXO_ERR_IO, "%s: not a model directory: %s", dir,
                          errno ? strerror(errno) : "not a directory");
    exo_weights *w = calloc(1, sizeof *w);
    if (!w) return exo_errorf(EXO_ERR_NO_MEMORY, "%s: out of memory", dir);
    pthread_mutex_init(&w->lock, NULL);
    exo_status st = EXO_OK;
    w->dir = strdup(dir);
    char *index_path = w->dir ? wt_join(dir, WT_INDEX_NAME) : NULL;
    char *single_path = w->dir ? wt_join(dir, WT_SINGLE_NAME) : NULL;
    if (!index_path || !single_path) {
        st = exo_errorf(EXO_ERR_NO_MEMORY, "%s: out of memory", dir);
    } else if (wt_is_file(index_path)) {
        w->index_path = index_path;
        index_path = NULL;
        st = wt_load_index(w);
    } else if (wt_is_file(single_path)) {
        uint32_t k;
        st = wt_add_shard(w, WT_SINGLE_NAME, &k);
        if (!st) st = exo_st_file_open(w->shards[0].path, &w->shards[0].file);
    } else {
        st = exo_errorf(EXO_ERR_IO, "%s: no weights found (neither %s nor %s)", dir,
                        WT_INDEX_NAME, WT_SINGLE_NAME);
    }
    free(index_path);
    free(single_path);
    if (st) {
        exo_weights_close(w);
        return st;
    }
    *out = w;
    return EXO_OK;
}

/* ------------------------------------------------------------------ lookups */

static exo_status wt_get_locked(exo_weights *w, const char *name, const exo_st_tensor **out) {
    if (!w->index_path) {
        const exo_st_tensor *t = exo_st_file_find(w->shards[0].file, name);
        if (!t)
            return exo_errorf(EXO_ERR_NOT_FOUND, "%s: tensor '%s' not found (not in %s, which "
                              "holds %u tensors)", w->dir, name, WT_SINGLE_NAME,
                              exo_st_file_count(w->shards[0].file));
        *out = t;
        return EXO_OK;
    }
    const wt_entry *e = wt_find_entry(w, name);
    if (!e)
        return exo_errorf(EXO_ERR_NOT_FOUND, "%s: tensor '%s' not found (not in %s)", w->dir,
                          name, WT_INDEX_NAME);
    wt_shard *s = &w->shards[e->shard];
    if (!s->file) {
        exo_status st = exo_st_file_open(s->path, &s->file);
        if (st) return st;
    }
    const exo_st_tensor *t = exo_st_file_find(s->file, name);
    if (!t)
        return exo_errorf(EXO_ERR_FORMAT, "%s: tensor '%s': the index places it in '%s', which "
                          "does not hold it", w->index_path, name, s->name);
    *out = t;
    return EXO_OK;
}

exo_status exo_weights_get(exo_weights *w, const char *name, const exo_st_tensor **out) {
    if (!w || !name || !out) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_weights_get: NULL argument");
    *out = NULL;
    pthread_mutex_lock(&w->lock);
    exo_status st = wt_get_locked(w, name, out);
    pthread_mutex_unlock(&w->lock);
    return st;
}

int exo_weights_has(const exo_weights *w, const char *name) {
    if (!w || !name) return 0;
    if (w->index_path) return wt_find_entry(w, name) != NULL;
    return exo_st_file_find(w->shards[0].file, name) != NULL; /* opened at exo_weights_open */
}

uint64_t exo_weights_mapped_bytes(const exo_weights *w) {
    if (!w) return 0;
    pthread_mutex_t *lock = (pthread_mutex_t *)&w->lock; /* a read of state get() may change */
    pthread_mutex_lock(lock);
    uint64_t total = 0;
    for (uint32_t k = 0; k < w->n_shards; k++) total += exo_st_file_mapped_bytes(w->shards[k].file);
    pthread_mutex_unlock(lock);
    return total;
}
