/* loader.c — resolves the OpenCL entry points from the ICD loader at run time (see ocl_api.h). */
#include "ocl_api.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

int ocl_api_load(ocl_api *api, const char *library_name, char *why, size_t why_size) {
    memset(api, 0, sizeof *api);
    snprintf(api->library_name, sizeof api->library_name, "%s", library_name);
    /* RTLD_LOCAL: the cl* symbols must not leak into the global namespace where another
     * plugin (or oneDNN, which links libOpenCL itself) could bind to them by accident. */
    void *library = dlopen(library_name, RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        const char *err = dlerror();
        snprintf(why, why_size, "%s", err ? err : "dlopen failed");
        return OCL_API_NOT_FOUND;
    }
    void *sym;
#define OCL_API_RESOLVE(name)                                                                 \
    sym = dlsym(library, #name);                                                              \
    if (!sym) {                                                                               \
        snprintf(why, why_size, "%s does not export %s", library_name, #name);                \
        dlclose(library);                                                                     \
        memset(api, 0, sizeof *api);                                                          \
        return OCL_API_INCOMPLETE;                                                            \
    }                                                                                         \
    memcpy(&api->name, &sym, sizeof sym); /* object -> function pointer without a cast warning */
    OCL_API_FUNCTIONS(OCL_API_RESOLVE)
#undef OCL_API_RESOLVE
#define OCL_EXEC_RESOLVE(name)                                                                \
    sym = dlsym(library, #name);                                                              \
    if (!sym && !api->missing_exec[0]) snprintf(api->missing_exec, sizeof api->missing_exec, "%s", #name); \
    memcpy(&api->name, &sym, sizeof sym);
    OCL_EXEC_FUNCTIONS(OCL_EXEC_RESOLVE)
#undef OCL_EXEC_RESOLVE
    api->library = library;
    return OCL_API_LOADED;
}
