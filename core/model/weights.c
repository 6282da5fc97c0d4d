/* A model directory's weights: model.safetensors, or model.safetensors.index.json and its shards.
 *
 * With an index, only the index is read at open (plus a stat of each shard, so a missing file is
 * reported up front); a shard is mapped and its header parsed the first time one of its tensors
 * is requested. A pipeline shard that owns layers [start, end) therefore maps only the files
 * holding those layers. The index is not trusted: its file names must stay inside the directory,
 * and a tensor must really be in the file the index names.
 *
 * Every file is opened under the model-file path rule (model_path.h), at open and again when a
 * shard is mapped later, and must still be the inode seen at open: a shard swapped for a link,
 * or replaced, between exo_weights_open and its first use is an error, not a silent mix of two
 * models. exo_weights_load_begin re-checks the files already mapped before a shard load uses
 * them, and every tensor handed out has had its pages read in (exo_st_populate) first, so a
 * truncated file is an error naming it rather than SIGBUS. */
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
#include <unistd.h>

#include "base/error.h"
#include "base/meminfo.h"
#include "model/json_file.h"
#include "model/model_path.h"

#define WT_INDEX_NAME "model.safetensors.index.json"
#define WT_SINGLE_NAME "model.safetensors"

typedef struct wt_shard {
    char *name;          /* as written in the index, relative to the directory */
    char *path;          /* dir/name */
    exo_st_file *file;   /* NULL until one of its tensors is requested */
    /* The file seen at open: later opens and checks must find the same one. Inode numbers are
     * reused at once after a delete, so size and modification time are part of the identity. */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
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
    uint64_t populate_left; /* bytes exo_weights_get may still read in ahead of use */
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

static exo_status wt_add_shard(exo_weights *w, const char *name, uint32_t *index) {
    /* Indexes list a shard's tensors together, so the last shard is the usual hit. */
    for (uint32_t k = w->n_shards; k-- > 0;) {
        if (strcmp(w->shards[k].name, name) == 0) { *index = k; return EXO_OK; }
    }
    wt_shard *grown = realloc(w->shards, (w->n_shards + 1) * sizeof *grown);
    if (!grown) return exo_errorf(EXO_ERR_NO_MEMORY, "%s: out of memory", w->index_path);
    w->shards = grown;
    wt_shard *s = &w->shards[w->n_shards];
    *s = (wt_shard){strdup(name), wt_join(w->dir, name), NULL, 0, 0, 0, {0, 0}};
    if (!s->name || !s->path) {
        free(s->name);
        free(s->path);
        return exo_errorf(EXO_ERR_NO_MEMORY, "%s: out of memory", w->index_path);
    }
    *index = w->n_shards++;
    return EXO_OK;
}

/* One shard file under the path rule (a missing one named as the index's or the directory's). */
static exo_status wt_check_shard(const exo_weights *w, const wt_shard *s, struct stat *sb) {
    exo_status st = exo_model_path_check(w->dir, s->name, sb);
    if (st == EXO_ERR_NOT_FOUND)
        return exo_errorf(EXO_ERR_IO, "%s: shard file '%s' listed in %s is missing", w->dir, s->name,
                          w->index_path ? WT_INDEX_NAME : "the directory");
    return st;
}

/* Every shard must exist and resolve (through symlinks too) under the path rule. This stats; it
 * maps nothing. The inode seen now is the one a later mapping must find. */
static exo_status wt_check_shards(exo_weights *w) {
    for (uint32_t k = 0; k < w->n_shards; k++) {
        struct stat sb;
        exo_status st = wt_check_shard(w, &w->shards[k], &sb);
        if (st) return st;
        w->shards[k].dev = sb.st_dev;
        w->shards[k].ino = sb.st_ino;
        w->shards[k].size = sb.st_size;
        w->shards[k].mtime = sb.st_mtim;
    }
    return EXO_OK;
}

static bool wt_same_file(const wt_shard *s, const struct stat *sb) {
    return sb->st_dev == s->dev && sb->st_ino == s->ino && sb->st_size == s->size &&
           sb->st_mtim.tv_sec == s->mtime.tv_sec && sb->st_mtim.tv_nsec == s->mtime.tv_nsec;
}

static exo_status wt_replaced(const wt_shard *s) {
    return exo_errorf(EXO_ERR_IO, "%s: was replaced or modified after the model was opened (reopen the model to "
                      "use the new file)", s->path);
}

/* Maps a shard: opened under the path rule, and still the inode checked at open. */
static exo_status wt_map_shard(exo_weights *w, wt_shard *s) {
    int fd;
    struct stat sb;
    exo_status st = exo_model_path_open(w->dir, s->name, &fd, &sb);
    if (st == EXO_ERR_NOT_FOUND)
        return exo_errorf(EXO_ERR_IO, "%s: shard file '%s' is missing (it was there when the model was opened)",
                          w->dir, s->name);
    if (st) return st;
    if (!wt_same_file(s, &sb)) {
        close(fd);
        return wt_replaced(s);
    }
    return exo_st_file_open_fd(fd, s->path, &s->file);
}

static exo_status wt_load_index(exo_weights *w) {
    const char *path = w->index_path;
    cJSON *root = NULL;
    exo_status st = exo_json_file_load(w->dir, WT_INDEX_NAME, &root);
    if (st) return st;
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
        if (!exo_model_path_name_ok(e->valuestring)) {
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

/* Something is at the path (a dangling link too: the path rule then says what is wrong). */
static bool wt_exists(const char *path) {
    struct stat sb;
    return lstat(path, &sb) == 0;
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
    } else if (wt_exists(index_path)) {
        w->index_path = index_path;
        index_path = NULL;
        st = wt_load_index(w);
    } else if (wt_exists(single_path)) {
        uint32_t k;
        st = wt_add_shard(w, WT_SINGLE_NAME, &k);
        if (!st) st = wt_check_shards(w);
        if (!st) st = wt_map_shard(w, &w->shards[0]);
    } else {
        st = exo_errorf(EXO_ERR_IO, "%s: no weights found (neither %s nor %s)", dir,
                        WT_INDEX_NAME, WT_SINGLE_NAME);
    }
    free(index_path);
    free(single_path);
    /* Read-ahead budget: half of what is free, so reading pages in never pushes the machine into
     * reclaim (a shard larger than that is read in on first use, as before). */
    w->populate_left = exo_mem_available() / 2;
    if (st) {
        exo_weights_close(w);
        return st;
    }
    *out = w;
    return EXO_OK;
}

/* ------------------------------------------------------------------ lookups */

/* The tensor and the shard file holding it. */
static exo_status wt_find_locked(exo_weights *w, const char *name, const exo_st_tensor **out, exo_st_file **file) {
    if (!w->index_path) {
        const exo_st_tensor *t = exo_st_file_find(w->shards[0].file, name);
        if (!t)
            return exo_errorf(EXO_ERR_NOT_FOUND, "%s: tensor '%s' not found (not in %s, which "
                              "holds %u tensors)", w->dir, name, WT_SINGLE_NAME,
                              exo_st_file_count(w->shards[0].file));
        *out = t;
        *file = w->shards[0].file;
        return EXO_OK;
    }
    const wt_entry *e = wt_find_entry(w, name);
    if (!e)
        return exo_errorf(EXO_ERR_NOT_FOUND, "%s: tensor '%s' not found (not in %s)", w->dir,
                          name, WT_INDEX_NAME);
    wt_shard *s = &w->shards[e->shard];
    if (!s->file) {
        exo_status st = wt_map_shard(w, s);
        if (st) return st;
    }
    const exo_st_tensor *t = exo_st_file_find(s->file, name);
    if (!t)
        return exo_errorf(EXO_ERR_FORMAT, "%s: tensor '%s': the index places it in '%s', which "
                          "does not hold it", w->index_path, name, s->name);
    *out = t;
    *file = s->file;
    return EXO_OK;
}

/* Hands a tensor out only after its pages were read in (while the budget lasts), so the caller's
 * first touch of its bytes cannot raise SIGBUS on a file truncated since it was mapped. Past the
 * budget the fstat check still catches a truncation that happened before this call. */
static exo_status wt_get_locked(exo_weights *w, const char *name, const exo_st_tensor **out) {
    const exo_st_tensor *t = NULL;
    exo_st_file *file = NULL;
    exo_status st = wt_find_locked(w, name, &t, &file);
    if (st) return st;
    char what[160];
    snprintf(what, sizeof what, "tensor '%s''s bytes", name);
    if (t->nbytes <= w->populate_left) {
        st = exo_st_populate(file, what, t->data, (size_t)t->nbytes);
        w->populate_left -= t->nbytes;
    } else {
        st = exo_st_file_check_extent(file, what, (uint64_t)((const char *)t->data - (const char *)exo_st_file_map(file)) + t->nbytes);
    }
    if (st) return st;
    *out = t;
    return EXO_OK;
}

exo_status exo_weights_load_begin(exo_weights *w) {
    if (!w) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_weights_load_begin: NULL argument");
    pthread_mutex_lock(&w->lock);
    exo_status st = EXO_OK;
    for (uint32_t k = 0; k < w->n_shards && !st; k++) {
        wt_shard *s = &w->shards[k];
        /* A mapped file cut short is the dangerous case (SIGBUS): say so first. */
        if (s->file && (st = exo_st_file_revalidate(s->file))) break;
        struct stat sb;
        if ((st = wt_check_shard(w, s, &sb))) break;
        if (!wt_same_file(s, &sb)) st = wt_replaced(s);
    }
    w->populate_left = exo_mem_available() / 2;
    pthread_mutex_unlock(&w->lock);
    return st;
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
