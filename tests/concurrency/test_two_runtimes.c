/* Two runtimes created at once from two threads (EXO embeds one per runner, and a process may
 * hold several): probing every plugin, loading a model and generating run concurrently. Each
 * runtime gets its own plugin contexts, so what two contexts of one plugin share (static text,
 * a loader opened once) is exactly what these cases exercise. The suite also runs under
 * ThreadSanitizer (EXO_TSAN) in scripts/test.sh, which is where a data race fails it. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"

#include "exo.h"

#define MODEL EXO_TEST_SOURCE_DIR "/models/tiny-llama-licenses"
#define PROMPT "Permission is hereby granted, free of charge, to any person"
#define GREEDY_START " obtaining a copy"

/* Both threads leave the barrier together, so their runtime creations overlap. */
static pthread_barrier_t start;

typedef struct probe_result {
    exo_status status;
    uint32_t n_plugins, n_devices, loaded;
    char build_info[8][640];
    char names[8][64];
    char reasons[8][256];
    uint32_t devices[8];
} probe_result;

static void *probe_all(void *arg) {
    probe_result *r = arg;
    exo_runtime_options o = EXO_RUNTIME_OPTIONS_INIT;
    o.log_level = EXO_LOG_ERROR;
    o.n_threads = 1;
    exo_runtime *rt = NULL;
    pthread_barrier_wait(&start);
    r->status = exo_runtime_create(&o, &rt);
    if (r->status != EXO_OK) return NULL;
    r->n_plugins = exo_plugin_count(rt);
    r->n_devices = exo_device_count(rt);
    for (uint32_t i = 0; i < r->n_plugins && i < 8; i++) {
        exo_plugin_info p;
        EXO_STRUCT_INIT(&p);
        if (exo_plugin_get_info(rt, i, &p) != EXO_OK) continue;
        snprintf(r->names[i], sizeof r->names[i], "%s", p.name);
        snprintf(r->build_info[i], sizeof r->build_info[i], "%s", p.build_info);
        snprintf(r->reasons[i], sizeof r->reasons[i], "%s", p.reason);
        r->devices[i] = p.n_devices;
        if (p.state == EXO_PLUGIN_LOADED) r->loaded++;
    }
    exo_runtime_destroy(rt);
    return NULL;
}

START_TEST(two_runtimes_probe_every_plugin_at_once) {
    probe_result r[2];
    memset(r, 0, sizeof r);
    pthread_t t[2];
    pthread_barrier_init(&start, NULL, 2);
    for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, probe_all, &r[i]), 0);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < 2; i++) ck_assert_int_eq(r[i].status, EXO_OK);
    /* Both see the same plugins and devices, and each plugin's build text as its probe left it. */
    ck_assert_uint_eq(r[0].n_plugins, r[1].n_plugins);
    ck_assert_uint_ge(r[0].loaded, 1); /* the CPU is always there */
    int saw_level_zero = 0;
    for (uint32_t i = 0; i < r[0].n_plugins && i < 8; i++) {
        ck_assert_str_eq(r[0].names[i], r[1].names[i]);
        ck_assert_msg(r[0].devices[i] == r[1].devices[i], "%s: %u devices (%s) in one runtime, %u (%s) in the other",
                      r[0].names[i], r[0].devices[i], r[0].reasons[i], r[1].devices[i], r[1].reasons[i]);
        ck_assert_str_eq(r[0].build_info[i], r[1].build_info[i]);
        if (strcmp(r[0].names[i], "level_zero") == 0) {
            saw_level_zero = 1;
            ck_assert_msg(strstr(r[0].build_info[i], "dlopened at probe") == NULL,
                          "level_zero shows its pre-probe text: %s", r[0].build_info[i]);
        }
    }
    ck_assert_msg(saw_level_zero, "the level_zero plugin was not found");
    ck_assert_uint_eq(r[0].n_devices, r[1].n_devices);
}
END_TEST

typedef struct generate_result {
    exo_status status;
    char where[64];
    char text[1024];
    size_t len;
} generate_result;

static int collect(void *user, const exo_token_event *ev) {
    generate_result *r = user;
    if (r->len + ev->text_len < sizeof r->text) {
        memcpy(r->text + r->len, ev->text, ev->text_len);
        r->len += ev->text_len;
        r->text[r->len] = '\0';
    }
    return 0;
}

static void *load_and_generate(void *arg) {
    generate_result *r = arg;
    exo_runtime_options o = EXO_RUNTIME_OPTIONS_INIT;
    o.log_level = EXO_LOG_ERROR;
    o.n_threads = 1;
    o.plugins_select = "cpu_amx";
    exo_runtime *rt = NULL;
    exo_model *model = NULL;
    exo_shard *shard = NULL;
    exo_session *session = NULL;
    pthread_barrier_wait(&start);
    snprintf(r->where, sizeof r->where, "runtime");
    r->status = exo_runtime_create(&o, &rt);
    if (r->status == EXO_OK) snprintf(r->where, sizeof r->where, "model"), r->status = exo_model_open(rt, MODEL, &model);
    if (r->status == EXO_OK) snprintf(r->where, sizeof r->where, "shard"), r->status = exo_shard_load(model, NULL, &shard);
    if (r->status == EXO_OK)
        snprintf(r->where, sizeof r->where, "session"), r->status = exo_session_create(shard, 0, &session);
    if (r->status == EXO_OK) {
        exo_sampling s = EXO_SAMPLING_INIT;
        s.temperature = 0.0f;
        exo_generate_options g = EXO_GENERATE_OPTIONS_INIT;
        g.sampling = &s;
        g.max_tokens = 6;
        g.on_token = collect;
        g.user = r;
        snprintf(r->where, sizeof r->where, "generate");
        r->status = exo_generate(session, PROMPT, &g, NULL);
    }
    exo_session_destroy(session);
    exo_shard_destroy(shard);
    exo_model_destroy(model);
    exo_runtime_destroy(rt);
    return NULL;
}

START_TEST(two_runtimes_load_and_generate_at_once) {
    generate_result r[2];
    memset(r, 0, sizeof r);
    pthread_t t[2];
    pthread_barrier_init(&start, NULL, 2);
    for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, load_and_generate, &r[i]), 0);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(r[i].status == EXO_OK, "thread %d: %s: %s", i, r[i].where, exo_status_name(r[i].status));
        ck_assert_msg(strncmp(r[i].text, GREEDY_START, strlen(GREEDY_START)) == 0, "thread %d generated '%s'", i,
                      r[i].text);
    }
    ck_assert_str_eq(r[0].text, r[1].text);
}
END_TEST

int main(void) {
    Suite *s = suite_create("concurrency");
    TCase *tc = tcase_create("two runtimes");
    tcase_set_timeout(tc, 120); /* ThreadSanitizer runs the model several times slower */
    tcase_add_test(tc, two_runtimes_probe_every_plugin_at_once);
    tcase_add_test(tc, two_runtimes_load_and_generate_at_once);
    suite_add_tcase(s, tc);
    return exo_check_run(s, CK_FORK_GETENV);
}
