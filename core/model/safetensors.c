/* One safetensors file: mapped read-only, header parsed and checked as if the file were hostile.
 *
 * Layout: 8-byte little-endian header length N, N bytes of UTF-8 JSON, then the data section.
 * Every tensor's [begin, end) is relative to the start of the data section. Nothing here reads
 * outside the mapping: the header is parsed with an explicit length, and every offset is checked
 * against the data section before a pointer is formed. */
#include "model/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/utf8.h"
#include "base/meminfo.h"
#include "model/json_file.h"

/* A header past this size is not a tensor index but an attack or a corrupt file. */
#define ST_MAX_HEADER_BYTES (100u * 1024u * 1024u)
/* Largest integer a JSON number (a double in cJSON) holds exactly. */
#define ST_MAX_EXACT_INT 9007199254740992.0 /* 2^53 */

struct exo_st_file {
    char *path;
    int fd;                   /* kept open: revalidation fstats the very inode that is mapped */
    void *map;
    size_t map_size;
    uint64_t data_end;        /* bytes of the file the header and every tensor need */
    uint32_t count;
    exo_st_tensor *tensors;   /* in header order */
    uint32_t *by_name;        /* indices into tensors, sorted by name (binary search) */
    cJSON *root;              /* the parsed header; owns the tensor name strings */
};

/* ------------------------------------------------------------------ dtypes */

/* The dtypes safetensors defines; the ones we cannot use are UNSUPPORTED, anything else FORMAT. */
static const char *const st_known_unsupported_dtypes[] = {
    "F64", "I64", "U64", "I16", "U16", "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2",
    "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64", "E8M0",
};

static exo_status st_parse_dtype(const char *path, const char *name, const cJSON *item,
                                 exo_dtype *out) {
    if (!cJSON_IsString(item) || !item->valuestring)
        return exo_errorf(EXO_ERR_FORMAT, "%s: tensor '%s': 'dtype' is missing or not a string",
                          path, name);
    const char *s = item->valuestring;
    static const struct { const char *name; exo_dtype dtype; } ok[] = {
        {"F32", EXO_DTYPE_F32}, {"F16", EXO_DTYPE_F16}, {"BF16", EXO_DTYPE_BF16},
        {"I32", EXO_DTYPE_I32}, {"U32", EXO_ST_DTYPE_U32},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        if (strcmp(s, ok[i].name) == 0) {
            *out = ok[i].dtype;
            return EXO_OK;
        }
    }
    for (size_t i = 0; i < sizeof st_known_unsupported_dtypes / sizeof st_known_unsupported_dtypes[0]; i++) {
        if (strcmp(s, st_known_unsupported_dtypes[i]) == 0)
            return exo_errorf(EXO_ERR_UNSUPPORTED,
                              "%s: tensor '%s': dtype %s is not supported (F32, F16, BF16, I32, U32 are)",
                              path, name, s);
    }
    return exo_errorf(EXO_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%.64s'", path, name, s);
}

/* A JSON number that is a non-negative integer below 2^53 (exact in a double). */
static bool st_json_uint(const cJSON *item, uint64_t *out) {
    if (!cJSON_IsNumber(item)) return false;
    double v = item->valuedouble;
    if (!isfinite(v) || v < 0 || v >= ST_MAX_EXACT_INT || floor(v) != v) return false;
    *out = (uint64_t)v;
    return true;
}

/* ------------------------------------------------------------------ header checks */

/* Strict UTF-8 and no NUL: names end up in messages and in maps. */
static bool st_valid_utf8(const unsigned char *s, size_t n) {
    return exo_utf8_check(s, n) == n && !memchr(s, 0, n);
}

static exo_status st_parse_shape(const char *path, const char *name, const cJSON *shape,
                                 exo_st_tensor *t, uint64_t *elements) {
    if (!cJSON_IsArray(shape))
        return exo_errorf(EXO_ERR_FORMAT, "%s: tensor '%s': 'shape' is missing or not an array",
                          path, name);
    int n = cJSON_GetArraySize(shape);
    if (n > EXO_ST_MAX_DIMS)
        return exo_errorf(EXO_ERR_FORMAT, "%s: tensor '%s': shape has %d dimensions (at most %d)",
                          path, name, n, EXO_ST_MAX_DIMS);
    uint64_t count = 1;
    int d = 0;
    const cJSON *dim;
    cJSON_ArrayForEach(dim, shape) {
        uint64_t v;
        if (!st_json_uint(dim, &v))
            return exo_errorf(EXO_ERR_FORMAT,
                              "%s: tensor '%s': shape[%d] is not a non-negative integer", path,
                              name, d);
        if (v != 0 && count > UINT64_MAX / 4 / v)
            return exo_errorf(EXO_ERR_FORMAT, "%s: tensor '%s': element count overflows", path,
                              name);
        count *= v;
        t->shape[d++] = (int64_t)v;
    }
    t->n_dims = (uint32_t)n;
    *elements = count;
    return EXO_OK;
}

static exo_status st_parse_entry(const char *path, const cJSON *entry, uint64_t data_size,
                                 exo_st_tensor *t, uint64_t *begin_out) {
    const char *name = entry->string;
    if (!cJSON_IsObject(entry))
        return exo_errorf(EXO_ERR_FORMAT, "%s: tensor '%s': entry is not a JSON object", path, name);
    exo_status st = st_parse_dtype(path, name, cJSON_GetObjectItemCaseSensitive(entry, "dtype"),
                                   &t->dtype);
    if (st) return st;
    uint64_t elements = 0;
    st = st_parse_shape(path, name, cJSON_GetObjectItemCaseSensitive(entry, "shape"), t, &elements);
    if (st) return st;

    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
    uint64_t begin, end;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        !st_json_uint(cJSON_GetArrayItem(offs, 0), &begin) ||
        !st_json_uint(cJSON_GetArrayItem(offs, 1), &end))
        return exo_errorf(EXO_ERR_FORMAT,
                          "%s: tensor '%s': 'data_offsets' is not [begin, end] of non-negative "
                          "integers", path, name);
    if (begin > end)
        return exo_errorf(EXO_ERR_FORMAT, "%s: tensor '%s': data_offsets begin %llu > end %llu",
                          path, name, (unsigned long long)begin, (unsigned long long)end);
    if (end > data_size)
        return exo_errorf(EXO_ERR_IO,
                          "%s: tensor '%s': data ends at byte %llu but the data section holds %llu "
                          "bytes (truncated file?)", path, name, (unsigned long long)end,
                          (unsigned long long)data_size);
    uint64_t want = elements * exo_st_dtype_size(t->dtype); /* no overflow: shape check bounds it */
    if (end - begin != want)
        return exo_errorf(EXO_ERR_FORMAT,
                          "%s: tensor '%s': holds %llu bytes but its %s shape needs %llu", path,
                          name, (unsigned long long)(end - begin), exo_st_dtype_name(t->dtype),
                          (unsigned long long)want);
    t->name = name;
    t->nbytes = want;
    *begin_out = begin;
    return EXO_OK;
}

/* ------------------------------------------------------------------ sorting helpers */

typedef struct st_span { uint64_t begin, end; uint32_t index; } st_span;

static int st_span_cmp(const void *a, const void *b) {
    const st_span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int st_name_cmp(const void *a, const void *b, void *tensors) {
    const exo_st_tensor *t = tensors;
    return strcmp(t[*(const uint32_t *)a].name, t[*(const uint32_t *)b].name);
}

/* ------------------------------------------------------------------ open / close */

static exo_status st_parse_header(exo_st_file *f, const char *json, size_t json_len,
                                  uint64_t data_size, const unsigned char *data) {
    const char *path = f->path;
    if (!st_valid_utf8((const unsigned char *)json, json_len))
        return exo_errorf(EXO_ERR_FORMAT, "%s: header is not valid UTF-8 text", path);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, json_len, &end, false);
    if (!root)
        return exo_errorf(EXO_ERR_FORMAT, "%s: header is not valid JSON (near byte %lld)", path,
                          end ? (long long)(end - json) + 8 : -1LL);
    f->root = root; /* freed with the file: tensor names point into it */
    /* Only whitespace may follow the JSON value (writers pad the header with spaces). */
    for (const char *p = end; p < json + json_len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            return exo_errorf(EXO_ERR_FORMAT, "%s: header has trailing bytes after the JSON object",
                              path);
    if (!cJSON_IsObject(root))
        return exo_errorf(EXO_ERR_FORMAT, "%s: header is not a JSON object", path);

    uint32_t n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, root) {
        if (!e->string)
            return exo_errorf(EXO_ERR_FORMAT, "%s: header entry without a name", path);
        if (strcmp(e->string, "__metadata__") != 0) n++;
    }
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    f->by_name = calloc(n ? n : 1, sizeof *f->by_name);
    st_span *spans = calloc(n ? n : 1, sizeof *spans);
    if (!f->tensors || !f->by_name || !spans) {
        free(spans);
        return exo_errorf(EXO_ERR_NO_MEMORY, "%s: out of memory for %u tensors", path, n);
    }
    uint32_t i = 0;
    cJSON_ArrayForEach(e, root) {
        if (strcmp(e->string, "__metadata__") == 0) continue;
        exo_st_tensor *t = &f->tensors[i];
        uint64_t begin = 0;
        exo_status st = st_parse_entry(path, e, data_size, t, &begin);
        if (st) { free(spans); return st; }
        t->data = data + begin;
        t->file = f->path;
        spans[i] = (st_span){begin, begin + t->nbytes, i};
        f->by_name[i] = i;
        i++;
    }
    f->count = n;

    /* Duplicate names: JSON allows them, and cJSON keeps both, but a tensor must be unique. */
    qsort_r(f->by_name, n, sizeof *f->by_name, st_name_cmp, f->tensors);
    for (uint32_t k = 1; k < n; k++) {
        const char *a = f->tensors[f->by_name[k - 1]].name, *b = f->tensors[f->by_name[k]].name;
        if (strcmp(a, b) == 0) {
            free(spans);
            return exo_errorf(EXO_ERR_FORMAT, "%s: tensor '%s': name appears twice in the header",
                              path, a);
        }
    }
    /* Overlap: sorted by begin, every non-empty span must start at or after the previous end. */
    qsort(spans, n, sizeof *spans, st_span_cmp);
    uint64_t prev_end = 0;
    uint32_t prev = UINT32_MAX;
    for (uint32_t k = 0; k < n; k++) {
        if (spans[k].begin == spans[k].end) continue; /* empty tensors occupy no bytes */
        if (prev != UINT32_MAX && spans[k].begin < prev_end) {
            exo_status st = exo_errorf(EXO_ERR_FORMAT,
                                       "%s: tensor '%s': data [%llu, %llu) overlaps tensor '%s'",
                                       path, f->tensors[spans[k].index].name,
                                       (unsigned long long)spans[k].begin,
                                       (unsigned long long)spans[k].end,
                                       f->tensors[prev].name);
            free(spans);
            return st;
        }
        prev_end = spans[k].end;
        prev = spans[k].index;
    }
    free(spans);
    f->data_end = (uint64_t)(data - (const unsigned char *)f->map) + prev_end;
    return EXO_OK;
}

void exo_st_file_close(exo_st_file *file) {
    if (!file) return;
    if (file->map) munmap(file->map, file->map_size);
    if (file->fd >= 0) close(file->fd);
    cJSON_Delete(file->root);
    free(file->tensors);
    free(file->by_name);
    free(file->path);
    free(file);
}

exo_status exo_st_file_open(const char *path, exo_st_file **out) {
    if (!path || !out) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_st_file_open: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return exo_errorf(EXO_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    return exo_st_file_open_fd(fd, path, out);
}

exo_status exo_st_file_open_fd(int fd, const char *path, exo_st_file **out) {
    if (fd < 0 || !path || !out) {
        if (fd >= 0) close(fd);
        return exo_errorf(EXO_ERR_INVALID_ARG, "exo_st_file_open_fd: bad argument");
    }
    *out = NULL;
    exo_st_file *f = calloc(1, sizeof *f);
    if (!f) {
        close(fd);
        return exo_errorf(EXO_ERR_NO_MEMORY, "%s: out of memory", path);
    }
    f->fd = fd;
    f->path = strdup(path);
    if (!f->path) {
        exo_st_file_close(f);
        return exo_errorf(EXO_ERR_NO_MEMORY, "%s: out of memory", path);
    }

    exo_status st = EXO_OK;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = exo_errorf(EXO_ERR_IO, "%s: not a regular file", path);
        goto fail;
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (size < 8) {
        st = exo_errorf(EXO_ERR_IO, "%s: file is %llu bytes, shorter than the 8-byte header length",
                        path, (unsigned long long)size);
        goto fail;
    }
    if (size > SIZE_MAX) {
        st = exo_errorf(EXO_ERR_IO, "%s: file too large to map", path);
        goto fail;
    }
    f->map_size = (size_t)size;
    f->map = mmap(NULL, f->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        st = exo_errorf(EXO_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
        goto fail;
    }
    /* The header is read through the mapping: make sure its pages are there first. */
    st = exo_st_populate(f, "the header", f->map, size < 4096 ? (size_t)size : 4096);
    if (st) goto fail;

    const unsigned char *bytes = f->map;
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--) header_len = (header_len << 8) | bytes[i];
    if (header_len > ST_MAX_HEADER_BYTES) {
        st = exo_errorf(EXO_ERR_FORMAT, "%s: header length %llu is absurd (limit %u bytes)", path,
                        (unsigned long long)header_len, ST_MAX_HEADER_BYTES);
        goto fail;
    }
    if (header_len > size - 8) {
        st = exo_errorf(EXO_ERR_IO,
                        "%s: header length %llu runs past the end of the %llu-byte file "
                        "(truncated file?)", path, (unsigned long long)header_len,
                        (unsigned long long)size);
        goto fail;
    }
    st = exo_st_populate(f, "the header", bytes, (size_t)(8 + header_len));
    if (st) goto fail;
    /* cJSON may take 41 bytes per header byte: refuse what the machine cannot hold. */
    st = exo_json_parse_fits(path, header_len, exo_mem_available());
    if (st) goto fail;
    if (header_len < 2) {
        st = exo_errorf(EXO_ERR_FORMAT, "%s: header length %llu is too small for a JSON object",
                        path, (unsigned long long)header_len);
        goto fail;
    }
    st = st_parse_header(f, (const char *)bytes + 8, (size_t)header_len, size - 8 - header_len,
                         bytes + 8 + header_len);
    if (st) goto fail;
    *out = f;
    return EXO_OK;
fail:
    exo_st_file_close(f);
    return st;
}

uint32_t exo_st_file_count(const exo_st_file *file) { return file ? file->count : 0; }

const exo_st_tensor *exo_st_file_tensor(const exo_st_file *file, uint32_t index) {
    if (!file || index >= file->count) return NULL;
    return &file->tensors[index];
}

const exo_st_tensor *exo_st_file_find(const exo_st_file *file, const char *name) {
    if (!file || !name) return NULL;
    uint32_t lo = 0, hi = file->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const exo_st_tensor *t = &file->tensors[file->by_name[mid]];
        int c = strcmp(name, t->name);
        if (c == 0) return t;
        if (c < 0) hi = mid; else lo = mid + 1;
    }
    return NULL;
}

/* Bytes mapped for this file (for the weights layer's load reports). */
uint64_t exo_st_file_mapped_bytes(const exo_st_file *file) { return file ? file->map_size : 0; }

/* ------------------------------------------------------------------ truncation guards */

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14; older headers lack the name */
#endif

/* Cleared the first time the kernel says it lacks MADV_POPULATE_READ. */
static int st_populate_supported = 1;

static exo_status st_truncated(const exo_st_file *f, const char *what, uint64_t need, uint64_t size) {
    return exo_errorf(EXO_ERR_IO, "%s: %s can no longer be read (the file is %llu bytes, they end at byte %llu): "
                      "the file was truncated or replaced while loading", f->path, what, (unsigned long long)size,
                      (unsigned long long)need);
}

exo_status exo_st_file_check_extent(const exo_st_file *f, const char *what, uint64_t end) {
    struct stat sb;
    if (fstat(f->fd, &sb) != 0) return exo_errorf(EXO_ERR_IO, "%s: cannot stat: %s", f->path, strerror(errno));
    if ((uint64_t)sb.st_size < end) return st_truncated(f, what, end, (uint64_t)sb.st_size);
    return EXO_OK;
}

/* A read of a mapped page past the end of its file raises SIGBUS, and so does an I/O error under
 * it. MADV_POPULATE_READ reads the pages in and reports those cases as EFAULT / EIO instead, so
 * the first touch of the bytes happens here, where it can fail politely. Kernels without it
 * (EINVAL) get the fstat check, which catches the same truncation, not the I/O error. */
exo_status exo_st_populate(const exo_st_file *f, const char *what, const void *addr, size_t n) {
    if (!f || !addr || n == 0) return EXO_OK;
    const unsigned char *base = f->map;
    const unsigned char *p = addr;
    if (p < base || n > f->map_size || (size_t)(p - base) > f->map_size - n)
        return exo_errorf(EXO_ERR_INTERNAL, "%s: %s lies outside the file's mapping", f->path, what);
    uint64_t end = (uint64_t)(p - base) + n;
    if (__atomic_load_n(&st_populate_supported, __ATOMIC_RELAXED)) {
        uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
        uintptr_t start = (uintptr_t)p & ~(page - 1);
        size_t len = (size_t)((uintptr_t)p + n - start);
        for (;;) {
            if (madvise((void *)start, len, MADV_POPULATE_READ) == 0) return EXO_OK;
            if (errno == EINTR || errno == EAGAIN) continue;
            break;
        }
        int err = errno;
        if (err == EFAULT) {
            struct stat sb;
            uint64_t size = fstat(f->fd, &sb) == 0 ? (uint64_t)sb.st_size : 0;
            return st_truncated(f, what, end, size);
        }
        if (err == EIO || err == EHWPOISON)
            return exo_errorf(EXO_ERR_IO, "%s: %s cannot be read: %s", f->path, what, strerror(err));
        if (err == EINVAL || err == ENOSYS) __atomic_store_n(&st_populate_supported, 0, __ATOMIC_RELAXED);
        /* ENOMEM (no memory to read into) and the unsupported cases: the size check below. */
    }
    return exo_st_file_check_extent(f, what, end);
}

exo_status exo_st_file_revalidate(const exo_st_file *f) {
    if (!f) return EXO_OK;
    return exo_st_file_check_extent(f, "its tensors", f->data_end);
}

const void *exo_st_file_map(const exo_st_file *f) { return f ? f->map : NULL; }
