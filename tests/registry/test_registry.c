/* Registry behaviour against fake plugins: one behaviour per test. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_run.h"

#include "exo.h"
#include "registry/device_spec.h"
#include "registry/runtime.h"

static exo_runtime *runtime_with(const char *dirs_csv, uint32_t flags) {
    static char buf[8][1024];
    static const char *dirs[8];
    uint32_t n = 0;
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", dirs_csv);
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t && n < 8; t = strtok_r(NULL, ",", &save)) {
        snprintf(buf[n], sizeof buf[n], "%s/%s", EXO_TEST_FAKE_PLUGIN_DIR, t);
        dirs[n] = buf[n];
        n++;
    }
    unsetenv("EXO_PLUGIN_PATH");
    exo_runtime_options o = EXO_RUNTIME_OPTIONS_INIT;
    o.plugin_paths = dirs;
    o.n_plugin_paths = n;
    o.flags = flags | EXO_RUNTIME_NO_DEFAULT_PATHS;
    o.log_level = EXO_LOG_ERROR;
    o.probe_timeout_ms = 2000;
    exo_runtime *rt = NULL;
    ck_assert_int_eq(exo_runtime_create(&o, &rt), EXO_OK);
    return rt;
}

static exo_plugin_info plugin(exo_runtime *rt, const char *name) {
    exo_plugin_info p;
    for (uint32_t i = 0; i < exo_plugin_count(rt); i++) {
        EXO_STRUCT_INIT(&p);
        ck_assert_int_eq(exo_plugin_get_info(rt, i, &p), EXO_OK);
        if (strcmp(p.name, name) == 0) return p;
    }
    ck_abort_msg("plugin %s not listed", name);
    return p;
}

static exo_device_info device(exo_runtime *rt, uint32_t rank) {
    exo_device_info d;
    EXO_STRUCT_INIT(&d);
    ck_assert_int_eq(exo_device_get_info(rt, rank, &d), EXO_OK);
    return d;
}

START_TEST(loads_a_good_plugin) {
    exo_runtime *rt = runtime_with("alpha", 0);
    exo_plugin_info p = plugin(rt, "alpha");
    ck_assert_int_eq(p.state, EXO_PLUGIN_LOADED);
    ck_assert_uint_eq(p.n_devices, 1);
    ck_assert_uint_eq(p.abi_version, EXO_ABI_VERSION);
    ck_assert_uint_eq(exo_device_count(rt), 1);
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(other_major_is_rejected) {
    exo_runtime *rt = runtime_with("major2,alpha", 0);
    exo_plugin_info p = plugin(rt, "major2");
    ck_assert_int_eq(p.state, EXO_PLUGIN_FAILED);
    ck_assert_int_eq(p.status, EXO_ERR_ABI_MISMATCH);
    ck_assert_ptr_nonnull(strstr(p.reason, "plugin ABI 2."));
    ck_assert_int_eq(plugin(rt, "alpha").state, EXO_PLUGIN_LOADED);
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(newer_minor_negotiates_down) {
    exo_runtime *rt = runtime_with("minor99", 0);
    exo_plugin_info p = plugin(rt, "minor99");
    ck_assert_int_eq(p.state, EXO_PLUGIN_LOADED);
    ck_assert_uint_eq(p.abi_version, EXO_MAKE_VERSION(EXO_ABI_MAJOR, EXO_ABI_MINOR));
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(smaller_table_reads_missing_members_as_absent) {
    exo_runtime *rt = runtime_with("small", 0);
    ck_assert_int_eq(plugin(rt, "small").state, EXO_PLUGIN_LOADED);
    ck_assert_uint_eq(exo_device_count(rt), 1);
    /* The plugin wrote device_open into its table but declared a size that excludes it. */
    ck_assert_int_eq(exo_runtime_device_open(rt, 0), EXO_ERR_UNSUPPORTED);
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(missing_entry_symbol_is_reported) {
    exo_runtime *rt = runtime_with("nosym", 0);
    exo_plugin_info p = plugin(rt, "nosym");
    ck_assert_int_eq(p.state, EXO_PLUGIN_FAILED);
    ck_assert_int_eq(p.status, EXO_ERR_PLUGIN_LOAD);
    ck_assert_ptr_nonnull(strstr(p.reason, "exo_plugin_entry"));
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(failing_probe_is_reported) {
    setenv("EXO_FAKE_alpha_PROBE", "fail", 1);
    exo_runtime *rt = runtime_with("alpha,beta", 0);
    exo_plugin_info p = plugin(rt, "alpha");
    ck_assert_int_eq(p.state, EXO_PLUGIN_FAILED);
    ck_assert_int_eq(p.status, EXO_ERR_BACKEND);
    ck_assert_ptr_nonnull(strstr(p.reason, "fake driver refused to start"));
    ck_assert_uint_eq(exo_device_count(rt), 1); /* beta's device is still there */
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(crashing_probe_is_contained_when_isolated) {
    setenv("EXO_FAKE_alpha_PROBE", "crash", 1);
    exo_runtime *rt = runtime_with("alpha,beta", EXO_RUNTIME_PROBE_ISOLATED);
    exo_plugin_info p = plugin(rt, "alpha");
    ck_assert_int_eq(p.state, EXO_PLUGIN_FAILED);
    ck_assert_ptr_nonnull(strstr(p.reason, "crashed"));
    ck_assert_int_eq(plugin(rt, "beta").state, EXO_PLUGIN_LOADED);
    uint32_t sel = 99;
    ck_assert_int_eq(exo_device_selected(rt, &sel, NULL), EXO_OK);
    ck_assert_str_eq(device(rt, sel).plugin, "beta");
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(hanging_probe_times_out_when_isolated) {
    setenv("EXO_FAKE_alpha_PROBE", "hang", 1);
    exo_runtime *rt = runtime_with("alpha", EXO_RUNTIME_PROBE_ISOLATED);
    exo_plugin_info p = plugin(rt, "alpha");
    ck_assert_int_eq(p.state, EXO_PLUGIN_FAILED);
    ck_assert_int_eq(p.status, EXO_ERR_TIMEOUT);
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(isolated_probe_reports_devices) {
    setenv("EXO_FAKE_alpha_DEVICES", "d:100:pci-1:4096:Card A;i:50:pci-2:512:Card B", 1);
    exo_runtime *rt = runtime_with("alpha", EXO_RUNTIME_PROBE_ISOLATED);
    ck_assert_uint_eq(exo_device_count(rt), 2);
    ck_assert_str_eq(device(rt, 0).report->name, "Card A");
    /* Work on an isolated-probed device loads the plugin in-process on demand. */
    ck_assert_int_eq(exo_runtime_device_open(rt, 0), EXO_OK);
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(score_zero_is_listed_but_not_selected) {
    setenv("EXO_FAKE_alpha_DEVICES", "d:0:pci-1:4096:Broken GPU", 1);
    setenv("EXO_FAKE_beta_DEVICES", "c:50:cpu:0:64:CPU", 1);
    exo_runtime *rt = runtime_with("alpha,beta", 0);
    ck_assert_uint_eq(exo_device_count(rt), 2);
    exo_device_info last = device(rt, 1);
    ck_assert_str_eq(last.plugin, "alpha");
    ck_assert_uint_eq(last.usable, 0);
    uint32_t sel = 99;
    ck_assert_int_eq(exo_device_selected(rt, &sel, NULL), EXO_OK);
    ck_assert_str_eq(device(rt, sel).plugin, "beta");
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(class_rank_orders_plugins) {
    setenv("EXO_FAKE_alpha_RANK", "64", 1);
    setenv("EXO_FAKE_beta_RANK", "256", 1);
    setenv("EXO_FAKE_alpha_DEVICES", "d:100:a:4096", 1);
    setenv("EXO_FAKE_beta_DEVICES", "d:1:b:16", 1);
    exo_runtime *rt = runtime_with("alpha,beta", 0);
    ck_assert_str_eq(device(rt, 0).plugin, "beta");
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(rank_override_from_environment) {
    setenv("EXO_FAKE_alpha_RANK", "64", 1);
    setenv("EXO_FAKE_beta_RANK", "256", 1);
    setenv("EXO_FAKE_alpha_DEVICES", "d:100:a:4096", 1);
    setenv("EXO_FAKE_beta_DEVICES", "d:100:b:4096", 1);
    setenv("EXO_PLUGIN_RANK", "alpha:300", 1);
    exo_runtime *rt = runtime_with("alpha,beta", 0);
    ck_assert_str_eq(device(rt, 0).plugin, "alpha");
    ck_assert_uint_eq(plugin(rt, "alpha").class_rank, 300);
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(rank_zero_is_never_chosen_automatically) {
    setenv("EXO_PLUGIN_RANK", "alpha:0", 1);
    setenv("EXO_FAKE_beta_RANK", "10", 1);
    setenv("EXO_FAKE_alpha_DEVICES", "d:100:a:4096", 1);
    setenv("EXO_FAKE_beta_DEVICES", "c:1:b:16", 1);
    exo_runtime *rt = runtime_with("alpha,beta", 0);
    uint32_t sel = 99;
    ck_assert_int_eq(exo_device_selected(rt, &sel, NULL), EXO_OK);
    ck_assert_str_eq(device(rt, sel).plugin, "beta");
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(score_then_type_then_memory_then_name) {
    setenv("EXO_FAKE_alpha_DEVICES",
           "c:100:f1:9000:cpu;i:100:f2:100:igpu;d:100:f3:100:dgpu-small;d:100:f4:200:dgpu-big;d:50:f5:99999:low-score", 1);
    exo_runtime *rt = runtime_with("alpha", 0);
    ck_assert_str_eq(device(rt, 0).report->name, "dgpu-big");
    ck_assert_str_eq(device(rt, 1).report->name, "dgpu-small");
    ck_assert_str_eq(device(rt, 2).report->name, "igpu");
    ck_assert_str_eq(device(rt, 3).report->name, "cpu");
    ck_assert_str_eq(device(rt, 4).report->name, "low-score");
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(name_breaks_ties) {
    setenv("EXO_FAKE_alpha_DEVICES", "d:100:a:100", 1);
    setenv("EXO_FAKE_beta_DEVICES", "d:100:b:100", 1);
    exo_runtime *rt = runtime_with("beta,alpha", 0);
    ck_assert_str_eq(device(rt, 0).plugin, "alpha");
    ck_assert_str_eq(device(rt, 1).plugin, "beta");
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(same_fingerprint_is_one_device) {
    /* The same GPU through two plugins: the higher class rank at equal score is the primary. */
    setenv("EXO_FAKE_alpha_RANK", "256", 1);
    setenv("EXO_FAKE_beta_RANK", "128", 1);
    setenv("EXO_FAKE_alpha_DEVICES", "d:100:pci-0000-03-00:1000", 1);
    setenv("EXO_FAKE_beta_DEVICES", "d:100:pci-0000-03-00:1000", 1);
    exo_runtime *rt = runtime_with("alpha,beta", 0);
    ck_assert_uint_eq(exo_device_count(rt), 2);
    exo_device_info primary = device(rt, 0), alt = device(rt, 1);
    ck_assert_str_eq(primary.plugin, "alpha");
    ck_assert_int_eq(primary.alternate_of, -1);
    ck_assert_str_eq(primary.alternates, "beta:0");
    ck_assert_int_eq(alt.alternate_of, 0);
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(better_score_wins_a_shared_device) {
    /* PoCL's view of the CPU (higher class, low score) yields to the CPU plugin's. */
    setenv("EXO_FAKE_alpha_RANK", "128", 1);
    setenv("EXO_FAKE_beta_RANK", "64", 1);
    setenv("EXO_FAKE_alpha_DEVICES", "c:1:cpu:0:1000", 1);
    setenv("EXO_FAKE_beta_DEVICES", "c:50:cpu:0:1000", 1);
    exo_runtime *rt = runtime_with("alpha,beta", 0);
    uint32_t sel = 99;
    ck_assert_int_eq(exo_device_selected(rt, &sel, NULL), EXO_OK);
    ck_assert_str_eq(device(rt, sel).plugin, "beta");
    ck_assert_int_eq(device(rt, 1).alternate_of, 0);
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(select_filter_keeps_only_matching_plugins) {
    setenv("EXO_PLUGINS_SELECT", "al*", 1);
    exo_runtime *rt = runtime_with("alpha,beta", 0);
    ck_assert_int_eq(plugin(rt, "beta").state, EXO_PLUGIN_SKIPPED);
    ck_assert_ptr_nonnull(strstr(plugin(rt, "beta").reason, "EXO_PLUGINS_SELECT"));
    ck_assert_int_eq(plugin(rt, "alpha").state, EXO_PLUGIN_LOADED);
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(disable_filter_skips_plugins) {
    setenv("EXO_PLUGINS_DISABLE", "beta,gamma", 1);
    exo_runtime *rt = runtime_with("alpha,beta,gamma", 0);
    ck_assert_int_eq(plugin(rt, "beta").state, EXO_PLUGIN_SKIPPED);
    ck_assert_int_eq(plugin(rt, "gamma").state, EXO_PLUGIN_SKIPPED);
    ck_assert_uint_eq(exo_device_count(rt), 1);
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(device_environment_picks_a_device) {
    setenv("EXO_FAKE_alpha_DEVICES", "d:100:a:4096;d:100:b:100", 1);
    setenv("EXO_DEVICE", "alpha:1", 1);
    exo_runtime *rt = runtime_with("alpha", 0);
    uint32_t sel = 99;
    const char *why = NULL;
    ck_assert_int_eq(exo_device_selected(rt, &sel, &why), EXO_OK);
    ck_assert_uint_eq(device(rt, sel).plugin_index, 1);
    ck_assert_ptr_nonnull(strstr(why, "EXO_DEVICE"));
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(device_environment_naming_nothing_is_an_error) {
    setenv("EXO_DEVICE", "nosuch:3", 1);
    exo_runtime *rt = runtime_with("alpha", 0);
    uint32_t sel = 99;
    ck_assert_int_eq(exo_device_selected(rt, &sel, NULL), EXO_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(exo_last_error(), "nosuch:3"));
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(device_find_by_spec) {
    setenv("EXO_FAKE_alpha_DEVICES", "d:100:a:4096;d:100:b:100", 1);
    exo_runtime *rt = runtime_with("alpha", 0);
    uint32_t idx = 99;
    ck_assert_int_eq(exo_device_find(rt, "alpha:1", &idx), EXO_OK);
    ck_assert_uint_eq(device(rt, idx).plugin_index, 1);
    ck_assert_int_eq(exo_device_find(rt, "alpha", &idx), EXO_OK);
    ck_assert_uint_eq(device(rt, idx).plugin_index, 0);
    ck_assert_int_eq(exo_device_find(rt, "alpha:7", &idx), EXO_ERR_NOT_FOUND);
    ck_assert_int_eq(exo_device_find(rt, "alpha:x", &idx), EXO_ERR_INVALID_ARG);
    exo_runtime_destroy(rt);
}
END_TEST

/* 4294967296 is 2^32: cast to uint32_t it is device 0, which is what used to run. The spec is
 * refused with the same words through EXO_DEVICE, exo_device_find and exo_shard_options.device. */
START_TEST(device_index_overflow_is_refused_everywhere_with_one_message) {
    const char *problem = "device 'alpha:4294967296': the index 4294967296 is out of range";
    setenv("EXO_FAKE_alpha_DEVICES", "d:100:a:4096", 1);
    setenv("EXO_DEVICE", "alpha:4294967296", 1);
    exo_runtime *rt = runtime_with("alpha", 0);
    uint32_t sel = 99;
    ck_assert_int_eq(exo_device_selected(rt, &sel, NULL), EXO_ERR_INVALID_ARG);
    ck_assert_msg(strstr(exo_last_error(), problem), "EXO_DEVICE: %s", exo_last_error());
    exo_runtime_destroy(rt);

    unsetenv("EXO_DEVICE");
    rt = runtime_with("alpha", 0);
    ck_assert_int_eq(exo_device_find(rt, "alpha:4294967296", &sel), EXO_ERR_INVALID_ARG);
    ck_assert_msg(strstr(exo_last_error(), problem), "exo_device_find: %s", exo_last_error());
    exo_model *m = NULL;
    ck_assert_int_eq(exo_model_open(rt, EXO_TEST_DATA "/hf-tiny/llama", &m), EXO_OK);
    exo_shard_options so = EXO_SHARD_OPTIONS_INIT;
    so.end_layer = 1;
    so.device = "alpha:4294967296";
    exo_shard *s = NULL;
    ck_assert_int_eq(exo_shard_load(m, &so, &s), EXO_ERR_INVALID_ARG);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(exo_model_last_error(m), problem), "shard: %s", exo_model_last_error(m));
    exo_model_destroy(m);
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(device_spec_refuses_signs_spaces_empty_index_and_junk) {
    const char *bad[] = {"alpha:-1", "alpha:+1",  "alpha: 1",   "alpha:",     ":1",
                         "alpha:1x", "alpha:1 ",  " alpha",     "alpha:0x1",  "alpha:1e3",
                         "",         "al pha:1",  "alpha:1:2",  "alpha:65536", "alpha:99999999999999999999999"};
    exo_device_spec spec;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(exo_device_spec_parse(bad[i], &spec) == EXO_ERR_INVALID_ARG, "'%s' was accepted", bad[i]);
        ck_assert_msg(strstr(exo_last_error(), "expected plugin[:index]"), "'%s': %s", bad[i], exo_last_error());
    }
    ck_assert_int_eq(exo_device_spec_parse("opencl", &spec), EXO_OK);
    ck_assert_str_eq(spec.plugin, "opencl");
    ck_assert_uint_eq(spec.index, 0);
    ck_assert_int_eq(exo_device_spec_parse("level_zero:65535", &spec), EXO_OK);
    ck_assert_str_eq(spec.plugin, "level_zero");
    ck_assert_uint_eq(spec.index, 65535);
}
END_TEST

START_TEST(fallback_order_goes_down_the_ranking) {
    setenv("EXO_FAKE_alpha_RANK", "256", 1);
    setenv("EXO_FAKE_beta_RANK", "128", 1);
    setenv("EXO_FAKE_gamma_RANK", "64", 1);
    setenv("EXO_FAKE_alpha_DEVICES", "d:100:gpu0:1000", 1);
    setenv("EXO_FAKE_beta_DEVICES", "d:100:gpu0:1000;d:0:gpu9:1000", 1);
    setenv("EXO_FAKE_gamma_DEVICES", "c:50:cpu:0:1000", 1);
    exo_runtime *rt = runtime_with("alpha,beta,gamma", 0);
    uint32_t order[8];
    uint32_t n = exo_registry_fallback_order(rt, 0, order, 8);
    ck_assert_uint_eq(n, 3); /* alpha's GPU, the same GPU through beta, then the CPU */
    ck_assert_str_eq(device(rt, order[0]).plugin, "alpha");
    ck_assert_str_eq(device(rt, order[1]).plugin, "beta");
    ck_assert_str_eq(device(rt, order[2]).plugin, "gamma");
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(failing_open_reports_the_plugin_detail) {
    setenv("EXO_FAKE_alpha_OPEN", "fail", 1);
    exo_runtime *rt = runtime_with("alpha", 0);
    ck_assert_int_eq(exo_runtime_device_open(rt, 0), EXO_ERR_DEVICE_OOM);
    ck_assert_ptr_nonnull(strstr(exo_last_error(), "fake device out of memory"));
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(devices_of_plugins_without_graphs_are_not_selected) {
    setenv("EXO_FAKE_small_RANK", "256", 1);
    setenv("EXO_FAKE_alpha_RANK", "64", 1);
    setenv("EXO_FAKE_alpha_DEVICES", "c:50:cpu:0:1000", 1);
    exo_runtime *rt = runtime_with("small,alpha", 0);
    ck_assert_str_eq(device(rt, 0).plugin, "small"); /* ranked first ... */
    uint32_t sel = 99;
    ck_assert_int_eq(exo_device_selected(rt, &sel, NULL), EXO_OK);
    ck_assert_str_eq(device(rt, sel).plugin, "alpha"); /* ... but work goes where graphs run */
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(shard_load_falls_back_when_compiling_fails) {
    setenv("EXO_FAKE_alpha_RANK", "256", 1);
    setenv("EXO_FAKE_beta_RANK", "64", 1);
    setenv("EXO_FAKE_alpha_COMPILE", "fail", 1);
    setenv("EXO_FAKE_alpha_DEVICES", "d:100:gpu0:1000", 1);
    setenv("EXO_FAKE_beta_DEVICES", "c:50:cpu:0:1000", 1);
    exo_runtime *rt = runtime_with("alpha,beta", 0);
    exo_model *m = NULL;
    ck_assert_int_eq(exo_model_open(rt, EXO_TEST_DATA "/hf-tiny/llama", &m), EXO_OK);
    exo_shard *s = NULL;
    ck_assert_int_eq(exo_shard_load(m, NULL, &s), EXO_OK);
    exo_shard_info info;
    EXO_STRUCT_INIT(&info);
    ck_assert_int_eq(exo_shard_get_info(s, &info), EXO_OK);
    ck_assert_str_eq(info.plugin, "beta");
    exo_shard_destroy(s);
    exo_model_destroy(m);
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(shard_load_reports_every_failed_device) {
    setenv("EXO_FAKE_alpha_COMPILE", "fail", 1);
    setenv("EXO_FAKE_beta_OPEN", "fail", 1);
    setenv("EXO_FAKE_alpha_DEVICES", "d:100:gpu0:1000", 1);
    setenv("EXO_FAKE_beta_DEVICES", "c:50:cpu:0:1000", 1);
    exo_runtime *rt = runtime_with("alpha,beta", 0);
    exo_model *m = NULL;
    ck_assert_int_eq(exo_model_open(rt, EXO_TEST_DATA "/hf-tiny/llama", &m), EXO_OK);
    exo_shard *s = NULL;
    ck_assert_int_ne(exo_shard_load(m, NULL, &s), EXO_OK);
    ck_assert_ptr_null(s);
    ck_assert_ptr_nonnull(strstr(exo_model_last_error(m), "fake kernel build failed"));
    ck_assert_ptr_nonnull(strstr(exo_model_last_error(m), "fake device out of memory"));
    exo_model_destroy(m);
    exo_runtime_destroy(rt);
}
END_TEST

/* A runtime that searches only EXO_PLUGIN_PATH (no install or library directories). */
static exo_runtime *runtime_from_environment(void) {
    exo_runtime_options o = EXO_RUNTIME_OPTIONS_INIT;
    o.flags = EXO_RUNTIME_NO_DEFAULT_PATHS;
    o.log_level = EXO_LOG_ERROR;
    exo_runtime *rt = NULL;
    ck_assert_int_eq(exo_runtime_create(&o, &rt), EXO_OK);
    return rt;
}

START_TEST(current_directory_is_never_searched) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/cwd", EXO_TEST_FAKE_PLUGIN_DIR);
    ck_assert_int_eq(chdir(dir), 0);
    unsetenv("EXO_PLUGIN_PATH");
    setenv("EXO_PLUGIN_PATH", ".:cwd", 1); /* relative entries are ignored */
    exo_runtime *rt = runtime_from_environment();
    ck_assert_uint_eq(exo_plugin_count(rt), 0);
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(plugin_path_environment_is_searched) {
    char dirs[2048];
    snprintf(dirs, sizeof dirs, "%s/alpha:%s/beta", EXO_TEST_FAKE_PLUGIN_DIR, EXO_TEST_FAKE_PLUGIN_DIR);
    setenv("EXO_PLUGIN_PATH", dirs, 1);
    exo_runtime *rt = runtime_from_environment();
    ck_assert_uint_eq(exo_plugin_count(rt), 2);
    exo_runtime_destroy(rt);
}
END_TEST

static char log_seen[8192];
static void capture_log(void *user, exo_log_level level, const char *component, const char *message) {
    size_t used = strlen(log_seen);
    snprintf(log_seen + used, sizeof log_seen - used, "[%s] %s\n", component, message);
}

START_TEST(decisions_are_logged_with_reasons) {
    setenv("EXO_PLUGINS_DISABLE", "beta", 1);
    const char *dirs[2] = {EXO_TEST_FAKE_PLUGIN_DIR "/alpha", EXO_TEST_FAKE_PLUGIN_DIR "/beta"};
    unsetenv("EXO_PLUGIN_PATH");
    exo_runtime_options o = EXO_RUNTIME_OPTIONS_INIT;
    o.plugin_paths = dirs;
    o.n_plugin_paths = 2;
    o.flags = EXO_RUNTIME_NO_DEFAULT_PATHS;
    o.log = capture_log;
    o.log_level = EXO_LOG_INFO;
    exo_runtime *rt = NULL;
    ck_assert_int_eq(exo_runtime_create(&o, &rt), EXO_OK);
    ck_assert_ptr_nonnull(strstr(log_seen, "[registry] plugin beta skipped: disabled by EXO_PLUGINS_DISABLE"));
    ck_assert_ptr_nonnull(strstr(log_seen, "[registry] plugin alpha"));
    ck_assert_ptr_nonnull(strstr(log_seen, "[registry] position 0: alpha:0"));
    ck_assert_ptr_nonnull(strstr(log_seen, "[registry] selected alpha:0"));
    exo_runtime_destroy(rt);
}
END_TEST

/* A runtime over alpha and beta that logs warnings into log_seen, its level from EXO_LOG_LEVEL. */
static exo_runtime *runtime_logging_warnings(void) {
    const char *dirs[2] = {EXO_TEST_FAKE_PLUGIN_DIR "/alpha", EXO_TEST_FAKE_PLUGIN_DIR "/beta"};
    unsetenv("EXO_PLUGIN_PATH");
    exo_runtime_options o = EXO_RUNTIME_OPTIONS_INIT;
    o.plugin_paths = dirs;
    o.n_plugin_paths = 2;
    o.flags = EXO_RUNTIME_NO_DEFAULT_PATHS;
    o.log = capture_log;
    log_seen[0] = '\0';
    exo_runtime *rt = NULL;
    ck_assert_int_eq(exo_runtime_create(&o, &rt), EXO_OK);
    return rt;
}

START_TEST(unknown_rank_override_entries_warn_and_keep_the_ranking) {
    setenv("EXO_FAKE_alpha_RANK", "64", 1);
    setenv("EXO_FAKE_beta_RANK", "256", 1);
    setenv("EXO_FAKE_alpha_DEVICES", "d:100:a:4096", 1);
    setenv("EXO_FAKE_beta_DEVICES", "d:100:b:4096", 1);
    setenv("EXO_PLUGIN_RANK", "alpha:high,alpah:300,alpha,alpha:-5,alpha:70000", 1);
    exo_runtime *rt = runtime_logging_warnings();
    ck_assert_str_eq(device(rt, 0).plugin, "beta");
    ck_assert_uint_eq(plugin(rt, "alpha").class_rank, 64);
    ck_assert_msg(strstr(log_seen, "EXO_PLUGIN_RANK entry 'alpha:high' ignored: expected plugin:rank with rank 0..65535"),
                  "%s", log_seen);
    ck_assert_msg(strstr(log_seen, "EXO_PLUGIN_RANK entry 'alpah:300' ignored: no plugin named 'alpah'"), "%s", log_seen);
    ck_assert_msg(strstr(log_seen, "EXO_PLUGIN_RANK entry 'alpha' ignored"), "%s", log_seen);
    ck_assert_msg(strstr(log_seen, "EXO_PLUGIN_RANK entry 'alpha:-5' ignored"), "%s", log_seen);
    ck_assert_msg(strstr(log_seen, "EXO_PLUGIN_RANK entry 'alpha:70000' ignored"), "%s", log_seen);
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(unknown_log_level_warns_and_uses_warn) {
    setenv("EXO_LOG_LEVEL", "verbose", 1);
    setenv("EXO_PLUGIN_RANK", "nosuch:1", 1); /* a warning that must still show at warn */
    exo_runtime *rt = runtime_logging_warnings();
    ck_assert_msg(strstr(log_seen, "EXO_LOG_LEVEL='verbose' is not a log level (accepted: error, warn, info, debug, "
                                   "trace or 0..4); using warn"),
                  "%s", log_seen);
    ck_assert_msg(strstr(log_seen, "no plugin named 'nosuch'"), "%s", log_seen);
    ck_assert_msg(!strstr(log_seen, "selected alpha"), "info lines shown at warn: %s", log_seen);
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(uninitialised_options_are_rejected) {
    exo_runtime_options o;
    memset(&o, 0, sizeof o);
    exo_runtime *rt = (exo_runtime *)0x1;
    ck_assert_int_eq(exo_runtime_create(&o, &rt), EXO_ERR_INVALID_ARG);
    ck_assert_ptr_null(rt);
    ck_assert_ptr_nonnull(strstr(exo_last_error(), "EXO_RUNTIME_OPTIONS_INIT"));
}
END_TEST

START_TEST(smaller_caller_structs_are_filled_only_to_their_size) {
    exo_runtime *rt = runtime_with("alpha", 0);
    struct { exo_struct_header hdr; const char *plugin; } small;
    char guard[64];
    memset(guard, 0x5a, sizeof guard);
    small.hdr.size = sizeof small;
    small.hdr.version = EXO_API_VERSION;
    ck_assert_int_eq(exo_device_get_info(rt, 0, (exo_device_info *)&small), EXO_OK);
    ck_assert_str_eq(small.plugin, "alpha");
    for (size_t i = 0; i < sizeof guard; i++) ck_assert_int_eq(guard[i], 0x5a);
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(plugin_built_against_abi_1_0_loads_and_runs_a_shard) {
    setenv("EXO_FAKE_old10_DEVICES", "c:50:cpu:0:1000", 1);
    exo_runtime *rt = runtime_with("old10", 0);
    exo_plugin_info p = plugin(rt, "old10");
    ck_assert_int_eq(p.state, EXO_PLUGIN_LOADED);
    ck_assert_uint_eq(p.abi_version, EXO_MAKE_VERSION(1, 0));
    /* ABI 1.0 has no probe_build_info: the table ends before it, so the entry's text stands. */
    ck_assert_str_eq(p.build_info, "registry test plugin");
    ck_assert(!exo_runtime_device_plugin(rt, 0)->api.probe_build_info);
    exo_model *m = NULL;
    ck_assert_int_eq(exo_model_open(rt, EXO_TEST_DATA "/hf-tiny/llama", &m), EXO_OK);
    exo_shard *s = NULL;
    ck_assert_int_eq(exo_shard_load(m, NULL, &s), EXO_OK);
    exo_shard_info info;
    EXO_STRUCT_INIT(&info);
    ck_assert_int_eq(exo_shard_get_info(s, &info), EXO_OK);
    ck_assert_str_eq(info.plugin, "old10");
    exo_session *session = NULL;
    ck_assert_int_eq(exo_session_create(s, 0, &session), EXO_OK);
    float *logits = malloc(info.output_width * sizeof *logits);
    for (uint32_t i = 0; i < info.output_width; i++) logits[i] = 1.0f;
    const int32_t tokens[2] = {1, 2};
    ck_assert_int_eq(exo_session_forward_tokens(session, tokens, 2, EXO_FORWARD_LAST_ONLY, logits, info.output_width),
                     EXO_OK);
    ck_assert_float_eq(logits[0], 0.0f); /* read back through the old plugin's buffer_read */
    free(logits);
    exo_session_destroy(session);
    exo_shard_destroy(s);
    exo_model_destroy(m);
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(graph_runner_without_buffer_read_is_refused) {
    exo_runtime *rt = runtime_with("noread,alpha", 0);
    exo_plugin_info p = plugin(rt, "noread");
    ck_assert_int_eq(p.state, EXO_PLUGIN_FAILED);
    ck_assert_int_eq(p.status, EXO_ERR_ABI_MISMATCH);
    ck_assert_msg(strstr(p.reason, "lacks required member buffer_read") != NULL, "reason: %s", p.reason);
    ck_assert_int_eq(plugin(rt, "alpha").state, EXO_PLUGIN_LOADED);
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(build_info_is_the_text_the_probe_left) {
    setenv("EXO_FAKE_alpha_DEVICES", "d:100:pci-1:4096;i:50:pci-2:512", 1);
    for (int isolated = 0; isolated < 2; isolated++) {
        exo_runtime *rt = runtime_with("alpha", isolated ? EXO_RUNTIME_PROBE_ISOLATED : 0);
        ck_assert_str_eq(plugin(rt, "alpha").build_info, "registry test plugin; probe found 2 devices");
        exo_runtime_destroy(rt);
    }
}
END_TEST

START_TEST(plugin_errors_keep_the_vendor_code) {
    setenv("EXO_FAKE_alpha_PROBE", "fail", 1);
    setenv("EXO_FAKE_beta_OPEN", "fail", 1);
    exo_runtime *rt = runtime_with("alpha,beta", 0);
    exo_plugin_info p = plugin(rt, "alpha");
    ck_assert_msg(strstr(p.reason, "fake driver refused to start (vendor code 0x78000001)") != NULL, "reason: %s",
                  p.reason);
    ck_assert_int_eq(exo_runtime_device_open(rt, 0), EXO_ERR_DEVICE_OOM);
    ck_assert_msg(strstr(exo_last_error(), "fake device out of memory (vendor code -5)") != NULL, "error: %s",
                  exo_last_error());
    ck_assert_int_eq(exo_error_vendor_code(), -5);
    exo_runtime_destroy(rt);
}
END_TEST

/* host->set_error from two threads at once: each thread reads back its own detail. */
typedef struct {
    exo_plugin_rec *p;
    int id;
    int mismatches;
} set_error_worker;

static void *set_error_loop(void *arg) {
    set_error_worker *w = arg;
    char want[64];
    for (int i = 0; i < 2000; i++) {
        snprintf(want, sizeof want, "thread %d failure %d", w->id, i);
        exo_registry_plugin_error_clear();
        w->p->host.set_error(w->p->host.host_ctx, EXO_ERR_BACKEND, -7001 - w->id, "%s", want);
        char expect[96];
        snprintf(expect, sizeof expect, "%s (vendor code %d)", want, -7001 - w->id);
        if (strcmp(exo_registry_plugin_error(w->p, ""), expect) != 0 || exo_error_vendor_code() != -7001 - w->id)
            w->mismatches++;
    }
    return NULL;
}

START_TEST(plugin_errors_from_two_threads_stay_apart) {
    exo_runtime *rt = runtime_with("alpha", 0);
    exo_plugin_rec *p = exo_runtime_device_plugin(rt, 0);
    set_error_worker w[2] = {{p, 0, 0}, {p, 1, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, set_error_loop, &w[i]), 0);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    ck_assert_int_eq(w[0].mismatches, 0);
    ck_assert_int_eq(w[1].mismatches, 0);
    exo_runtime_destroy(rt);
}
END_TEST

int main(void) {
    Suite *s = suite_create("registry");
    TCase *tc = tcase_create("registry");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, loads_a_good_plugin);
    tcase_add_test(tc, other_major_is_rejected);
    tcase_add_test(tc, newer_minor_negotiates_down);
    tcase_add_test(tc, smaller_table_reads_missing_members_as_absent);
    tcase_add_test(tc, missing_entry_symbol_is_reported);
    tcase_add_test(tc, failing_probe_is_reported);
    tcase_add_test(tc, crashing_probe_is_contained_when_isolated);
    tcase_add_test(tc, hanging_probe_times_out_when_isolated);
    tcase_add_test(tc, isolated_probe_reports_devices);
    tcase_add_test(tc, score_zero_is_listed_but_not_selected);
    tcase_add_test(tc, class_rank_orders_plugins);
    tcase_add_test(tc, rank_override_from_environment);
    tcase_add_test(tc, rank_zero_is_never_chosen_automatically);
    tcase_add_test(tc, score_then_type_then_memory_then_name);
    tcase_add_test(tc, name_breaks_ties);
    tcase_add_test(tc, same_fingerprint_is_one_device);
    tcase_add_test(tc, better_score_wins_a_shared_device);
    tcase_add_test(tc, select_filter_keeps_only_matching_plugins);
    tcase_add_test(tc, disable_filter_skips_plugins);
    tcase_add_test(tc, device_environment_picks_a_device);
    tcase_add_test(tc, device_environment_naming_nothing_is_an_error);
    tcase_add_test(tc, device_find_by_spec);
    tcase_add_test(tc, device_index_overflow_is_refused_everywhere_with_one_message);
    tcase_add_test(tc, device_spec_refuses_signs_spaces_empty_index_and_junk);
    tcase_add_test(tc, unknown_rank_override_entries_warn_and_keep_the_ranking);
    tcase_add_test(tc, unknown_log_level_warns_and_uses_warn);
    tcase_add_test(tc, fallback_order_goes_down_the_ranking);
    tcase_add_test(tc, failing_open_reports_the_plugin_detail);
    tcase_add_test(tc, devices_of_plugins_without_graphs_are_not_selected);
    tcase_add_test(tc, shard_load_falls_back_when_compiling_fails);
    tcase_add_test(tc, shard_load_reports_every_failed_device);
    tcase_add_test(tc, current_directory_is_never_searched);
    tcase_add_test(tc, plugin_path_environment_is_searched);
    tcase_add_test(tc, decisions_are_logged_with_reasons);
    tcase_add_test(tc, uninitialised_options_are_rejected);
    tcase_add_test(tc, smaller_caller_structs_are_filled_only_to_their_size);
    tcase_add_test(tc, plugin_built_against_abi_1_0_loads_and_runs_a_shard);
    tcase_add_test(tc, graph_runner_without_buffer_read_is_refused);
    tcase_add_test(tc, build_info_is_the_text_the_probe_left);
    tcase_add_test(tc, plugin_errors_keep_the_vendor_code);
    tcase_add_test(tc, plugin_errors_from_two_threads_stay_apart);
    suite_add_tcase(s, tc);
    return exo_check_run(s, CK_FORK_GETENV);
}
