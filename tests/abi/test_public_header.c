/* The public API on its own: a program that includes exo.h sees the shared plain types and the
 * API's own version, and nothing of the plugin ABI (a graph-IR bump there must not reach
 * programs). Structs carry the API version, the library checks the API major, and exo_version
 * tells the library's release and API at run time. */
#include <check.h>
#include <string.h>

#include "check_run.h"

#include "exo.h"

/* Compiling this file is the check: exo.h alone must not declare the plugin ABI. */
#if defined(EXO_PLUGIN_H) || defined(EXO_ABI_MAJOR) || defined(EXO_ABI_VERSION) || defined(EXO_PLUGIN_ENTRY_SYMBOL) \
    || defined(EXO_ABI_STRUCT_INIT)
#error "exo.h exposes the plugin ABI"
#endif
#if !defined(EXO_TYPES_H) || !defined(EXO_API_MAJOR) || !defined(EXO_API_MINOR)
#error "exo.h must give the shared types and its own version"
#endif
_Static_assert(EXO_API_VERSION == EXO_MAKE_VERSION(EXO_API_MAJOR, EXO_API_MINOR), "EXO_API_VERSION");

START_TEST(structs_are_stamped_with_the_api_version) {
    exo_model_info info;
    EXO_STRUCT_INIT(&info);
    ck_assert_uint_eq(info.hdr.size, sizeof info);
    ck_assert_uint_eq(info.hdr.version, EXO_API_VERSION);
    exo_runtime_options ro = EXO_RUNTIME_OPTIONS_INIT;
    exo_shard_options so = EXO_SHARD_OPTIONS_INIT;
    exo_generate_options go = EXO_GENERATE_OPTIONS_INIT;
    exo_sampling sa = EXO_SAMPLING_INIT;
    ck_assert_uint_eq(ro.hdr.version, EXO_API_VERSION);
    ck_assert_uint_eq(ro.hdr.size, sizeof ro);
    ck_assert_uint_eq(so.hdr.version, EXO_API_VERSION);
    ck_assert_uint_eq(go.hdr.version, EXO_API_VERSION);
    ck_assert_uint_eq(sa.hdr.version, EXO_API_VERSION);
    /* The defaults that are not 0. */
    ck_assert_int_eq(ro.log_level, EXO_LOG_LEVEL_DEFAULT);
    ck_assert_uint_eq(so.end_layer, EXO_LAYERS_END);
    ck_assert_int_eq(go.add_bos, EXO_BOS_DEFAULT);
    ck_assert_float_eq(sa.temperature, 0.7f);
    ck_assert_int_eq(sa.seed, 42);
}
END_TEST

START_TEST(exo_version_gives_the_release_and_the_api) {
    uint32_t api = 0;
    const char *v = exo_version(&api);
    ck_assert_ptr_nonnull(v);
    ck_assert_str_eq(v, exo_version(NULL));
    ck_assert_uint_eq(EXO_VERSION_MAJOR(api), EXO_API_MAJOR);
    ck_assert_uint_ge(EXO_VERSION_MINOR(api), EXO_API_MINOR);
    ck_assert_int_eq(strspn(v, "0123456789."), strlen(v));
}
END_TEST

/* Another API major is refused before anything is read; the API minor does not matter. */
START_TEST(another_api_major_is_refused) {
    exo_runtime_options ro = EXO_RUNTIME_OPTIONS_INIT;
    ro.hdr.version = EXO_MAKE_VERSION(EXO_API_MAJOR + 1, 0);
    exo_runtime *rt = NULL;
    ck_assert_int_eq(exo_runtime_create(&ro, &rt), EXO_ERR_INVALID_ARG);
    ck_assert_ptr_null(rt);

    exo_sampling sa = EXO_SAMPLING_INIT;
    exo_sampler *s = NULL;
    sa.hdr.version = EXO_MAKE_VERSION(EXO_API_MAJOR + 1, 0);
    ck_assert_int_eq(exo_sampler_create(&sa, 16, &s), EXO_ERR_INVALID_ARG);
    ck_assert_ptr_null(s);
    sa.hdr.version = EXO_MAKE_VERSION(EXO_API_MAJOR, 0x7fff);
    ck_assert_int_eq(exo_sampler_create(&sa, 16, &s), EXO_OK);
    exo_sampler_destroy(s);
}
END_TEST

int main(void) {
    Suite *s = suite_create("public_header");
    TCase *tc = tcase_create("public_header");
    tcase_add_test(tc, structs_are_stamped_with_the_api_version);
    tcase_add_test(tc, exo_version_gives_the_release_and_the_api);
    tcase_add_test(tc, another_api_major_is_refused);
    suite_add_tcase(s, tc);
    return exo_check_run(s, CK_FORK_GETENV);
}
