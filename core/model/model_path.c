/* The model-file path rule (see model_path.h). Why links at all: the Hugging Face hub cache
 * stores each snapshot file as a link into the repository's blobs/ (snapshots/REV/x ->
 * ../../blobs/SHA), and people link big weights in from other disks inside their model folder.
 * Why not every link: a model directory is often untrusted input (downloaded), and a link to
 * /etc/passwd or into another user's files must not be read, let alone quoted in an error. */
#include "model/model_path.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"

int exo_model_path_name_ok(const char *name) {
    if (!name || !name[0] || name[0] == '/') return 0;
    /* ".." as a whole component anywhere; "a..b" is a fine file name. */
    for (const char *p = name; *p;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') return 0;
        if (!slash) break;
        p = slash + 1;
    }
    return 1;
}

/* The last path component of s (no trailing slash in realpath output). */
static const char *mp_base(const char *s, size_t len) {
    const char *b = s + len;
    while (b > s && b[-1] != '/') b--;
    return b;
}

/* Length of the hub repository root when dir_real is …/models--X--Y/snapshots/REV, else 0. */
static size_t mp_hub_root(const char *dir_real) {
    size_t len = strlen(dir_real);
    const char *rev = mp_base(dir_real, len);
    if (rev == dir_real || !rev[0]) return 0;
    size_t snap_end = (size_t)(rev - dir_real) - 1; /* the slash before REV */
    const char *snap = mp_base(dir_real, snap_end);
    if ((size_t)(dir_real + snap_end - snap) != strlen("snapshots") || strncmp(snap, "snapshots", 9) != 0) return 0;
    if (snap == dir_real) return 0;
    size_t repo_end = (size_t)(snap - dir_real) - 1;
    const char *repo = mp_base(dir_real, repo_end);
    size_t repo_len = (size_t)(dir_real + repo_end - repo);
    if (repo_len <= strlen("models--") || strncmp(repo, "models--", 8) != 0) return 0;
    return repo_end;
}

static bool mp_inside(const char *target, const char *root, size_t root_len) {
    if (root_len == 1 && root[0] == '/') return true;
    return strncmp(target, root, root_len) == 0 && target[root_len] == '/';
}

/* Resolves and checks dir/name; *target_out (caller frees) is the final target. */
static exo_status mp_resolve(const char *dir, const char *name, char **target_out, struct stat *sb) {
    *target_out = NULL;
    if (!exo_model_path_name_ok(name))
        return exo_errorf(EXO_ERR_FORMAT, "%s: file name '%s' points outside the model directory", dir,
                          name ? name : "(null)");
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return exo_errorf(EXO_ERR_IO, "%s/%s: path too long", dir, name);
    struct stat lsb;
    if (lstat(path, &lsb) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) return exo_errorf(EXO_ERR_NOT_FOUND, "%s: no such file", path);
        return exo_errorf(EXO_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    }
    char dir_real[PATH_MAX];
    if (!realpath(dir, dir_real))
        return exo_errorf(EXO_ERR_IO, "%s: cannot resolve the model directory: %s", dir, strerror(errno));
    char *target = realpath(path, NULL);
    if (!target) {
        int err = errno;
        if (S_ISLNK(lsb.st_mode)) {
            char to[PATH_MAX];
            ssize_t n = readlink(path, to, sizeof to - 1);
            to[n > 0 ? n : 0] = '\0';
            return exo_errorf(EXO_ERR_IO, "%s: is a symbolic link to '%s', which cannot be resolved: %s", path, to,
                              strerror(err));
        }
        return exo_errorf(EXO_ERR_IO, "%s: cannot resolve: %s", path, strerror(err));
    }
    size_t dir_len = strlen(dir_real), hub_len = mp_hub_root(dir_real);
    if (!mp_inside(target, dir_real, dir_len) && !(hub_len && mp_inside(target, dir_real, hub_len))) {
        exo_status st;
        if (hub_len)
            st = exo_errorf(EXO_ERR_FORMAT, "%s: resolves to '%s', outside the model directory and its hub "
                            "repository %.*s; refusing to read it", path, target, (int)hub_len, dir_real);
        else
            st = exo_errorf(EXO_ERR_FORMAT, "%s: resolves to '%s', outside the model directory %s; refusing to "
                            "read it", path, target, dir_real);
        free(target);
        return st;
    }
    if (stat(target, sb) != 0 || !S_ISREG(sb->st_mode)) {
        free(target);
        return exo_errorf(EXO_ERR_IO, "%s: not a regular file", path);
    }
    *target_out = target;
    return EXO_OK;
}

exo_status exo_model_path_check(const char *dir, const char *name, struct stat *sb) {
    char *target = NULL;
    exo_status st = mp_resolve(dir, name, &target, sb);
    free(target);
    return st;
}

exo_status exo_model_path_open(const char *dir, const char *name, int *fd, struct stat *sb) {
    *fd = -1;
    char *target = NULL;
    struct stat checked;
    exo_status st = mp_resolve(dir, name, &target, &checked);
    if (st) return st;
    /* O_NOFOLLOW: the target is fully resolved, so a link there now is a swap after the check.
     * O_NONBLOCK: a FIFO swapped in would otherwise block the open. */
    int f = open(target, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    free(target);
    if (f < 0) return exo_errorf(EXO_ERR_IO, "%s/%s: cannot open: %s", dir, name, strerror(errno));
    if (fstat(f, sb) != 0 || !S_ISREG(sb->st_mode) || sb->st_dev != checked.st_dev || sb->st_ino != checked.st_ino) {
        close(f);
        return exo_errorf(EXO_ERR_IO, "%s/%s: changed while being opened", dir, name);
    }
    *fd = f;
    return EXO_OK;
}
