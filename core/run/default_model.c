/* Where the embedded default model lives: installed beside the library, or in the source tree
 * of a build that was never installed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/library_dir.h"
#include "exo.h"

#define DEFAULT_MODEL_NAME "tiny-llama-licenses"

static int has_config(const char *dir) {
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/config.json", dir);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

const char *exo_default_model_dir(void) {
    static _Thread_local char found[4096];
    const char *env = secure_getenv("EXO_MODEL_DIR");
    if (env && *env) {
        snprintf(found, sizeof found, "%s", env);
        return has_config(found) ? found : NULL;
    }
    snprintf(found, sizeof found, "%s/%s", EXO_INSTALL_MODEL_DIR, DEFAULT_MODEL_NAME);
    if (has_config(found)) return found;
    /* Relative to the library: <prefix>/lib/libexocore.so -> <prefix>/share/exo-ipex/models. */
    char lib_dir[4096];
    if (exo_library_dir(lib_dir, sizeof lib_dir)) {
        snprintf(found, sizeof found, "%s/../share/exo-ipex/models/%s", lib_dir, DEFAULT_MODEL_NAME);
        if (has_config(found)) return found;
    }
    snprintf(found, sizeof found, "%s/%s", EXO_SOURCE_MODEL_DIR, DEFAULT_MODEL_NAME);
    return has_config(found) ? found : NULL;
}
