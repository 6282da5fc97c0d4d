/* A program built against an installed exo-ipex, as a third party would. */
#include <stdio.h>

#include <exo.h>

/* The installed exo.h brings its shared types (exo_types.h, installed beside it) and nothing of
 * the plugin ABI. */
#if defined(EXO_ABI_MAJOR) || defined(EXO_PLUGIN_H)
#error "the installed exo.h exposes the plugin ABI"
#endif

int main(void) {
    uint32_t api = 0;
    const char *version = exo_version(&api);
    if (EXO_VERSION_MAJOR(api) != EXO_API_MAJOR) {
        fprintf(stderr, "library %s implements API %u.%u, built against %u.%u\n", version, EXO_VERSION_MAJOR(api),
                EXO_VERSION_MINOR(api), EXO_API_MAJOR, EXO_API_MINOR);
        return 1;
    }
    exo_runtime *rt = NULL;
    exo_status st = exo_runtime_create(NULL, &rt);
    if (st != EXO_OK) {
        fprintf(stderr, "%s: %s\n", exo_status_name(st), exo_last_error());
        return 1;
    }
    uint32_t selected = 0;
    int rc = exo_device_selected(rt, &selected, NULL) == EXO_OK ? 0 : 1;
    printf("plugins %u devices %u selected %u\n", exo_plugin_count(rt), exo_device_count(rt), selected);
    exo_runtime_destroy(rt);
    return rc;
}
