/* Scratch files for the harnesses: see fuzz_scratch.h. */
#include "fuzz_scratch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"

static char scratch_dir[256];

static void scratch_die(const char *what) {
    fprintf(stderr, "fuzz harness: %s: %s\n", what, strerror(errno));
    abort();
}

/* Only our own flat directory: every entry is a file a harness wrote. */
static void scratch_cleanup(void) {
    if (!scratch_dir[0]) return;
    DIR *d = opendir(scratch_dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            unlinkat(dirfd(d), e->d_name, 0);
        }
        closedir(d);
    }
    rmdir(scratch_dir);
}

const char *fuzz_scratch_dir(void) {
    if (scratch_dir[0]) return scratch_dir;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    if (!base || !base[0]) base = "/tmp";
    snprintf(scratch_dir, sizeof scratch_dir, "%s/exo-fuzz-XXXXXX", base);
    if (!mkdtemp(scratch_dir)) scratch_die(scratch_dir);
    atexit(scratch_cleanup);
    return scratch_dir;
}

const char *fuzz_scratch_path(const char *name) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", fuzz_scratch_dir(), name);
    return path;
}

void fuzz_scratch_write(const char *name, const void *data, size_t n) {
    const char *path = fuzz_scratch_path(name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) scratch_die(path);
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            scratch_die(path);
        }
        p += w;
        n -= (size_t)w;
    }
    if (close(fd) != 0) scratch_die(path);
}

void fuzz_scratch_remove(const char *name) {
    const char *path = fuzz_scratch_path(name);
    if (unlink(path) != 0 && errno != ENOENT) scratch_die(path);
}

void fuzz_check_error_detail(int status, const char *must_name) {
    if (status == 0) return;
    const char *msg = exo_error_message();
    if (!msg[0]) {
        fprintf(stderr, "fuzz finding: status %d with no error detail\n", status);
        abort();
    }
    if (must_name && !strstr(msg, must_name)) {
        fprintf(stderr, "fuzz finding: error detail does not name '%s': %s\n", must_name, msg);
        abort();
    }
}
