/* spirv_translate.c — SPIR-V to SPIR 1.2 bitcode for PoCL, which cannot ingest SPIR-V but
 * accepts SPIR bitcode (cl_khr_spir). `llvm-spirv-15 -r` runs as a subprocess at module-create
 * time; its output is cached as <cache>/<fnv1a64 of the SPIR-V>.bc so each distinct module is
 * translated once per machine. Writes go to a unique temporary file renamed into place, so
 * parallel test processes never see half a file. */
#include "ze_test_driver.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static uint64_t fnv1a64(const void *data, size_t size) {
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < size; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static void cache_dir(char *out, size_t size) {
    const char *dir = getenv("EXO_ZE_TEST_CACHE_DIR");
    if (dir && *dir) {
        snprintf(out, size, "%s", dir);
    } else if ((dir = getenv("XDG_CACHE_HOME")) && *dir) {
        snprintf(out, size, "%s/exo-ze-test-driver", dir);
    } else if ((dir = getenv("HOME")) && *dir) {
        snprintf(out, size, "%s/.cache/exo-ze-test-driver", dir);
    } else {
        snprintf(out, size, "/tmp/exo-ze-test-driver-%u", (unsigned)getuid());
    }
}

/* mkdir -p */
static bool make_dirs(const char *path) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return false;
        *p = '/';
    }
    return mkdir(tmp, 0755) == 0 || errno == EEXIST;
}

static bool read_file(const char *path, unsigned char **data, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    bool ok = fseek(f, 0, SEEK_END) == 0;
    long n = ok ? ftell(f) : -1;
    ok = n > 0 && fseek(f, 0, SEEK_SET) == 0;
    unsigned char *buf = ok ? malloc((size_t)n) : NULL;
    ok = buf && fread(buf, 1, (size_t)n, f) == (size_t)n;
    fclose(f);
    if (!ok) {
        free(buf);
        return false;
    }
    *data = buf;
    *size = (size_t)n;
    return true;
}

static bool write_file(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(data, 1, size, f) == size;
    return fclose(f) == 0 && ok;
}

static char *log_printf(const char *fmt, const char *a, const char *b) {
    size_t n = strlen(fmt) + (a ? strlen(a) : 0) + (b ? strlen(b) : 0) + 1;
    char *s = malloc(n);
    if (s) snprintf(s, n, fmt, a ? a : "", b ? b : "");
    return s;
}

/* Runs `translator -r in -o out`, stderr into err_path; returns the exit status (-1: not run). */
static int run_translator(const char *translator, const char *in, const char *out, const char *err_path) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    char *argv[] = {(char *)translator, "-r", (char *)in, "-o", (char *)out, NULL};
    pid_t pid;
    int rc = posix_spawnp(&pid, translator, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return -1;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

bool td_spirv_to_bitcode(const void *spirv, size_t size, unsigned char **bc, size_t *bc_size, char **log) {
    *log = NULL;
    char dir[768], final_path[1024];
    cache_dir(dir, sizeof dir);
    snprintf(final_path, sizeof final_path, "%s/%016llx.bc", dir, (unsigned long long)fnv1a64(spirv, size));
    if (read_file(final_path, bc, bc_size)) return true; /* cached */
    if (!make_dirs(dir)) {
        *log = log_printf("cannot create the SPIR-V cache directory %s%s", dir, NULL);
        return false;
    }
    char spv_path[1100], tmp_path[1100], err_path[1100];
    snprintf(spv_path, sizeof spv_path, "%s/in-%d-XXXXXX", dir, (int)getpid());
    int fd = mkstemp(spv_path);
    if (fd < 0) {
        *log = log_printf("cannot create a temporary file in %s%s", dir, NULL);
        return false;
    }
    close(fd);
    snprintf(tmp_path, sizeof tmp_path, "%s.bc", spv_path);
    snprintf(err_path, sizeof err_path, "%s.log", spv_path);
    const char *translator = getenv("EXO_ZE_TEST_LLVM_SPIRV");
    if (!translator || !*translator) translator = "llvm-spirv-15";
    bool ok = write_file(spv_path, spirv, size);
    int rc = ok ? run_translator(translator, spv_path, tmp_path, err_path) : -1;
    if (rc == 0 && read_file(tmp_path, bc, bc_size)) {
        rename(tmp_path, final_path); /* a lost race leaves an identical file: fine */
    } else {
        unsigned char *err = NULL;
        size_t err_size = 0;
        char *text = NULL;
        if (read_file(err_path, &err, &err_size)) {
            text = malloc(err_size + 1);
            if (text) {
                memcpy(text, err, err_size);
                text[err_size] = '\0';
            }
            free(err);
        }
        *log = log_printf(rc < 0 ? "could not run the SPIR-V translator %s (install llvm-spirv-15)\n%s"
                                 : "%s -r rejected the SPIR-V module:\n%s",
                          translator, text);
        free(text);
        ok = false;
        unlink(tmp_path);
    }
    unlink(spv_path);
    unlink(err_path);
    return ok && rc == 0;
}
