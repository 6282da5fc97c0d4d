/* dladdr names the library as the loader was handed it, which is a relative path when the
 * embedder dlopened "build/lib/libexocore.so" or ran with LD_LIBRARY_PATH=build/lib. Resolving
 * that against the current directory would be wrong once the process has changed directory
 * (and would make a directory the caller never named a plugin source), so a relative name is
 * looked up instead in the kernel's map of this process, which names every mapped file by its
 * absolute path. */
#include "library_dir.h"

#include <dlfcn.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The absolute path of the file mapped at addr, from /proc/self/maps ("lo-hi perms offset dev
 * inode path"). */
static bool mapped_file(uintptr_t addr, char *out, size_t size) {
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f) return false;
    char line[4096 + 256];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        int path_at = 0;
        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &path_at) < 2 || path_at == 0) continue;
        if (addr < lo || addr >= hi || line[path_at] != '/') continue;
        line[strcspn(line, "\n")] = '\0';
        found = (size_t)snprintf(out, size, "%s", line + path_at) < size;
    }
    fclose(f);
    return found;
}

bool exo_library_dir(char *out, size_t size) {
    Dl_info info;
    char lib[4096];
    if (!dladdr((void *)exo_library_dir, &info) || !info.dli_fname || !*info.dli_fname) return false;
    if (info.dli_fname[0] == '/') {
        if ((size_t)snprintf(lib, sizeof lib, "%s", info.dli_fname) >= sizeof lib) return false;
    } else if (!mapped_file((uintptr_t)exo_library_dir, lib, sizeof lib)) {
        return false;
    }
    return (size_t)snprintf(out, size, "%s", dirname(lib)) < size;
}
