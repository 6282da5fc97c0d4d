/* cache.c — the program-binary cache's files (see cache.h). */
#include "cache.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CACHE_MAGIC "EXOCLBIN"
#define CACHE_FORMAT 1u
#define CACHE_HEADER_SIZE (8 + 4 + 4 + 16 + 8 + 8)
#define CACHE_MAX_PAYLOAD ((uint64_t)1 << 30)

/* FNV-1a over two independent streams (different offset bases): 128 bits of key. */
static const uint64_t FNV_PRIME = 1099511628211ull;

void ocl_hash_init(ocl_hasher *s) {
    s->h[0] = 14695981039346656037ull;
    s->h[1] = 0x6c62272e07bb0142ull;
}

static void hash_bytes(ocl_hasher *s, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        s->h[0] = (s->h[0] ^ p[i]) * FNV_PRIME;
        s->h[1] = (s->h[1] ^ p[i] ^ 0x5a) * FNV_PRIME;
    }
}

void ocl_hash_add(ocl_hasher *s, const void *data, size_t size) {
    uint64_t len = size;
    hash_bytes(s, (const unsigned char *)&len, sizeof len);
    hash_bytes(s, data, size);
}

void ocl_hash_add_str(ocl_hasher *s, const char *text) { ocl_hash_add(s, text ? text : "", text ? strlen(text) : 0); }

void ocl_hash_finish(const ocl_hasher *s, ocl_cache_key *key) {
    key->h[0] = s->h[0];
    key->h[1] = s->h[1];
    snprintf(key->hex, sizeof key->hex, "%016llx%016llx", (unsigned long long)s->h[0], (unsigned long long)s->h[1]);
}

static int make_dirs(const char *path) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0700) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(buf, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

int ocl_cache_dir(exo_plugin_ctx *ctx, char *out, size_t size) {
    const char *xdg = ctx->host->get_env(ctx->host->host_ctx, "XDG_CACHE_HOME");
    const char *home = ctx->host->get_env(ctx->host->host_ctx, "HOME");
    if (xdg && xdg[0] == '/') snprintf(out, size, "%s/exo-ipex/opencl", xdg);
    else if (home && home[0] == '/') snprintf(out, size, "%s/.cache/exo-ipex/opencl", home);
    else return 0;
    if (make_dirs(out) != 0) {
        ocl_log(ctx, EXO_LOG_WARN, "program cache disabled: cannot create %s: %s", out, strerror(errno));
        return 0;
    }
    return 1;
}

void ocl_cache_path(const char *dir, const ocl_cache_key *key, char *out, size_t size) {
    snprintf(out, size, "%s/%s.bin", dir, key->hex);
}

static uint64_t payload_hash(const unsigned char *p, size_t n) {
    ocl_hasher s;
    ocl_hash_init(&s);
    hash_bytes(&s, p, n);
    return s.h[0];
}

static void put64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint64_t get64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

unsigned char *ocl_cache_load(exo_plugin_ctx *ctx, const char *dir, const ocl_cache_key *key, size_t *size) {
    char path[1200];
    ocl_cache_path(dir, key, path, sizeof path);
    FILE *f = fopen(path, "rb");
    if (!f) {
        ocl_log(ctx, EXO_LOG_DEBUG, "program cache miss: %s", path);
        return NULL;
    }
    unsigned char header[CACHE_HEADER_SIZE];
    const char *why = NULL;
    unsigned char *payload = NULL;
    uint64_t n = 0;
    if (fread(header, 1, sizeof header, f) != sizeof header) why = "shorter than its header";
    else if (memcmp(header, CACHE_MAGIC, 8) != 0) why = "not a cache file (magic)";
    else if (get64(header + 8) != (uint64_t)CACHE_FORMAT) why = "another cache format";
    else if (get64(header + 16) != key->h[0] || get64(header + 24) != key->h[1]) why = "written for another key";
    else if ((n = get64(header + 32)) == 0 || n > CACHE_MAX_PAYLOAD) why = "implausible payload size";
    else if (!(payload = ctx->host->alloc(ctx->host->host_ctx, (size_t)n))) why = "no memory to read it";
    else if (fread(payload, 1, (size_t)n, f) != n) why = "truncated";
    else if (fgetc(f) != EOF) why = "longer than its header says";
    else if (payload_hash(payload, (size_t)n) != get64(header + 40)) why = "payload checksum mismatch (corrupt)";
    fclose(f);
    if (why) {
        ocl_log(ctx, EXO_LOG_WARN, "program cache entry %s ignored: %s; rebuilding", path, why);
        if (payload) ctx->host->free(ctx->host->host_ctx, payload);
        return NULL;
    }
    *size = (size_t)n;
    return payload;
}

void ocl_cache_store(exo_plugin_ctx *ctx, const char *dir, const ocl_cache_key *key, const unsigned char *data,
                     size_t size) {
    char path[1200], tmp[1280];
    ocl_cache_path(dir, key, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    unsigned char header[CACHE_HEADER_SIZE];
    memcpy(header, CACHE_MAGIC, 8);
    put64(header + 8, CACHE_FORMAT); /* u32 format + u32 zero, little-endian */
    put64(header + 16, key->h[0]);
    put64(header + 24, key->h[1]);
    put64(header + 32, size);
    put64(header + 40, payload_hash(data, size));
    FILE *f = fopen(tmp, "wb");
    int ok = f && fwrite(header, 1, sizeof header, f) == sizeof header && fwrite(data, 1, size, f) == size;
    if (f && fclose(f) != 0) ok = 0;
    if (ok && rename(tmp, path) == 0) {
        ocl_log(ctx, EXO_LOG_DEBUG, "program cache: stored %zu bytes in %s", size, path);
        return;
    }
    ocl_log(ctx, EXO_LOG_WARN, "program cache: cannot write %s: %s", path, strerror(errno));
    unlink(tmp);
}
