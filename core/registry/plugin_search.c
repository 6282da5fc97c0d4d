/* Where plugins are looked for, in order: the directories in the options, EXO_PLUGIN_PATH
 * (colon-separated; ignored in setuid processes via secure_getenv), the install directory,
 * then next to libexocore itself (DIR/exo/plugins, then DIR). Never the current directory:
 * a relative entry is skipped with a warning, so a stray .so in $PWD is never loaded. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/library_dir.h"
#include "runtime.h"

#define PLUGIN_PREFIX "libexo-plugin-"
#define PLUGIN_SUFFIX ".so"

static exo_status add_dir(exo_runtime *rt, const char *dir, const char *origin) {
    if (!dir || !*dir) return EXO_OK;
    if (dir[0] != '/') {
        exo_logf(&rt->logger, EXO_LOG_WARN, "registry",
                 "ignoring relative plugin directory '%s' from %s (only absolute paths are searched)",
                 dir, origin);
        return EXO_OK;
    }
    for (uint32_t i = 0; i < rt->n_search_dirs; i++)
        if (strcmp(rt->search_dirs[i], dir) == 0) return EXO_OK;
    char **grown = realloc(rt->search_dirs, (rt->n_search_dirs + 1) * sizeof *grown);
    if (!grown) return exo_errorf(EXO_ERR_NO_MEMORY, "out of memory listing plugin directories");
    rt->search_dirs = grown;
    rt->search_dirs[rt->n_search_dirs] = strdup(dir);
    if (!rt->search_dirs[rt->n_search_dirs])
        return exo_errorf(EXO_ERR_NO_MEMORY, "out of memory listing plugin directories");
    rt->n_search_dirs++;
    exo_logf(&rt->logger, EXO_LOG_DEBUG, "registry", "plugin directory %s (%s)", dir, origin);
    return EXO_OK;
}

static exo_status add_path_list(exo_runtime *rt, const char *list, const char *origin) {
    if (!list) return EXO_OK;
    char *copy = strdup(list);
    if (!copy) return exo_errorf(EXO_ERR_NO_MEMORY, "out of memory reading %s", origin);
    exo_status st = EXO_OK;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ":", &save); tok && st == EXO_OK; tok = strtok_r(NULL, ":", &save))
        st = add_dir(rt, tok, origin);
    free(copy);
    return st;
}

exo_status exo_registry_search_dirs(exo_runtime *rt, const exo_runtime_options *opts) {
    exo_status st = EXO_OK;
    if (opts && EXO_STRUCT_HAS(opts, exo_runtime_options, n_plugin_paths) && opts->plugin_paths)
        for (uint32_t i = 0; i < opts->n_plugin_paths && st == EXO_OK; i++)
            st = add_dir(rt, opts->plugin_paths[i], "options");
    if (st == EXO_OK) st = add_path_list(rt, secure_getenv("EXO_PLUGIN_PATH"), "EXO_PLUGIN_PATH");
    if (st != EXO_OK || (rt->flags & EXO_RUNTIME_NO_DEFAULT_PATHS)) return st;
    st = add_dir(rt, EXO_INSTALL_PLUGIN_DIR, "install directory");
    char dir[EXO_PATH_MAX];
    if (st == EXO_OK && exo_library_dir(dir, sizeof dir)) {
        char beside[EXO_PATH_MAX + 16];
        snprintf(beside, sizeof beside, "%s/exo/plugins", dir);
        st = add_dir(rt, beside, "next to libexocore");
        if (st == EXO_OK) st = add_dir(rt, dir, "next to libexocore");
    }
    return st;
}

static bool plugin_name_from_file(const char *file, char *name, size_t size) {
    size_t n = strlen(file), pre = strlen(PLUGIN_PREFIX), suf = strlen(PLUGIN_SUFFIX);
    if (n <= pre + suf || strncmp(file, PLUGIN_PREFIX, pre) != 0 ||
        strcmp(file + n - suf, PLUGIN_SUFFIX) != 0)
        return false;
    size_t len = n - pre - suf;
    if (len >= size) return false;
    memcpy(name, file + pre, len);
    name[len] = '\0';
    return true;
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Adds the plugins of one directory in name order (deterministic across file systems). */
static void scan_dir(exo_runtime *rt, const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    char *files[256];
    uint32_t n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL && n < 256;) {
        char name[64];
        if (plugin_name_from_file(e->d_name, name, sizeof name)) files[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(files, n, sizeof *files, compare_names);
    for (uint32_t i = 0; i < n; i++) {
        if (!files[i]) continue;
        char name[64];
        plugin_name_from_file(files[i], name, sizeof name);
        bool seen = false;
        for (uint32_t k = 0; k < rt->n_plugins; k++)
            if (strcmp(rt->plugins[k].name, name) == 0) seen = true;
        if (seen) {
            exo_logf(&rt->logger, EXO_LOG_INFO, "registry",
                     "plugin %s in %s shadowed by one found earlier in the search order", name, dir);
        } else if (rt->n_plugins == EXO_MAX_PLUGINS) {
            exo_logf(&rt->logger, EXO_LOG_WARN, "registry", "too many plugins; ignoring %s/%s", dir, files[i]);
        } else {
            exo_plugin_rec *p = &rt->plugins[rt->n_plugins++];
            snprintf(p->name, sizeof p->name, "%s", name);
            snprintf(p->path, sizeof p->path, "%s/%s", dir, files[i]);
            p->state = EXO_PLUGIN_LOADED;
        }
        free(files[i]);
    }
}

exo_status exo_registry_scan(exo_runtime *rt) {
    for (uint32_t i = 0; i < rt->n_search_dirs; i++) scan_dir(rt, rt->search_dirs[i]);
    if (rt->n_plugins == 0)
        exo_logf(&rt->logger, EXO_LOG_WARN, "registry",
                 "no plugins found (searched %u directories; set EXO_PLUGIN_PATH)", rt->n_search_dirs);
    return EXO_OK;
}
