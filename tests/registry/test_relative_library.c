/* libexocore loaded through a relative path (dlopen("lib/libexocore.so"), or LD_LIBRARY_PATH=
 * build/lib) finds its plugins beside itself, also after the process left that directory. This
 * program does not link libexocore: it loads the build's by a path relative to the build
 * directory, moves to /, and looks for the cpu_amx plugin from lib/exo/plugins. Before the
 * library looked itself up in /proc/self/maps, the relative directory was ignored (no plugin,
 * "no usable device among 0 found"). */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_run.h"
#include "exo.h"

typedef exo_status (*runtime_create_fn)(const exo_runtime_options *, exo_runtime **);
typedef void (*runtime_destroy_fn)(exo_runtime *);
typedef uint32_t (*plugin_count_fn)(const exo_runtime *);
typedef exo_status (*plugin_get_info_fn)(const exo_runtime *, uint32_t, exo_plugin_info *);

START_TEST(plugins_found_beside_a_relatively_loaded_library) {
    ck_assert_int_eq(chdir(EXO_TEST_BINARY_DIR), 0);
    void *lib = dlopen("lib/libexocore.so", RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(lib != NULL, "dlopen: %s", dlerror());
    ck_assert_int_eq(chdir("/"), 0);
    unsetenv("EXO_PLUGIN_PATH");
    setenv("EXO_PLUGINS_SELECT", "cpu_amx", 1);

    runtime_create_fn create = (runtime_create_fn)dlsym(lib, "exo_runtime_create");
    runtime_destroy_fn destroy = (runtime_destroy_fn)dlsym(lib, "exo_runtime_destroy");
    plugin_count_fn count = (plugin_count_fn)dlsym(lib, "exo_plugin_count");
    plugin_get_info_fn get_info = (plugin_get_info_fn)dlsym(lib, "exo_plugin_get_info");
    ck_assert(create && destroy && count && get_info);
    exo_runtime_options o = EXO_RUNTIME_OPTIONS_INIT;
    o.log_level = EXO_LOG_ERROR;
    exo_runtime *rt = NULL;
    ck_assert_int_eq(create(&o, &rt), EXO_OK);
    bool beside = false;
    for (uint32_t i = 0; i < count(rt); i++) {
        exo_plugin_info p;
        EXO_STRUCT_INIT(&p);
        ck_assert_int_eq(get_info(rt, i, &p), EXO_OK);
        if (strcmp(p.name, "cpu_amx") == 0 && p.state == EXO_PLUGIN_LOADED &&
            strncmp(p.path, EXO_TEST_PLUGIN_DIR "/", strlen(EXO_TEST_PLUGIN_DIR) + 1) == 0)
            beside = true;
    }
    ck_assert_msg(beside, "cpu_amx was not loaded from %s", EXO_TEST_PLUGIN_DIR);
    destroy(rt);
    dlclose(lib);
}
END_TEST

int main(void) {
    Suite *s = suite_create("relative_library");
    TCase *tc = tcase_create("search");
    tcase_add_test(tc, plugins_found_beside_a_relatively_loaded_library);
    suite_add_tcase(s, tc);
    return exo_check_run(s, CK_FORK_GETENV);
}
