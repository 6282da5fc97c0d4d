/* exo_version: what the library is (its release) and which public API it implements, so a
 * program can tell, at run time, the library it got from the header it was compiled with. */
#include "exo.h"

#ifndef EXO_LIBRARY_VERSION
#error "EXO_LIBRARY_VERSION comes from the project version (core/CMakeLists.txt)"
#endif

const char *exo_version(uint32_t *api_version) {
    if (api_version) *api_version = EXO_API_VERSION;
    return EXO_LIBRARY_VERSION;
}
