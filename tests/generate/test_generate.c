/* Generation through the public API on the embedded default model: greedy text equals the
 * references, max_tokens / stop strings / EOS / cancellation end it with the right reason,
 * streamed pieces are valid UTF-8 and add up to the whole text, seeds reproduce, and the stats
 * are filled. */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"

#include "exo.h"

#define MODEL EXO_TEST_SOURCE_DIR "/models/tiny-llama-licenses"
#define PROMPT "Permission is hereby granted, free of charge, to any person"
#define GREEDY " obtaining a copy\nof this software and associated documentation files (the \"Software\"), to deal"

typedef struct fixture {
    exo_runtime *rt;
    exo_model *model;
    exo_shard *shard;
    exo_session *session;
} fixture;

static fixture open_model(void) {
    fixture f = {0};
    ck_assert_int_eq(exo_runtime_create(NULL, &f.rt), EXO_OK);
    ck_assert_int_eq(exo_model_open(f.rt, MODEL, &f.model), EXO_OK);
    ck_assert_int_eq(exo_shard_load(f.model, NULL, &f.shard), EXO_OK);
    ck_assert_int_eq(exo_session_create(f.shard, 0, &f.session), EXO_OK);
    return f;
}

static void close_model(fixture *f) {
    exo_session_destroy(f->session);
    exo_shard_destroy(f->shard);
    exo_model_destroy(f->model);
    exo_runtime_destroy(f->rt);
}

typedef struct collected {
    char text[8192];
    size_t len;
    uint32_t events, tokens;
    int cancel_after; /* return nonzero after this many tokens (0: never) */
    int bad_utf8;
} collected;

static int utf8_complete(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!len || i + len > n) return 0;
        for (size_t k = 1; k < len; k++)
            if (((unsigned char)s[i + k] & 0xC0) != 0x80) return 0;
        i += len;
    }
    return 1;
}

static int on_token(void *user, const exo_token_event *ev) {
    collected *c = user;
    if (!utf8_complete(ev->text, ev->text_len)) c->bad_utf8++;
    if (c->len + ev->text_len < sizeof c->text) {
        memcpy(c->text + c->len, ev->text, ev->text_len);
        c->len += ev->text_len;
        c->text[c->len] = '\0';
    }
    c->events++;
    if (ev->token >= 0) c->tokens++;
    return c->cancel_after && (int)c->tokens >= c->cancel_after;
}

static exo_generate_stats generate(fixture *f, const char *prompt, exo_sampling *sampling, uint32_t max_tokens,
                                   const char *const *stop, uint32_t n_stop, collected *c, exo_status expect) {
    exo_generate_options o = EXO_GENERATE_OPTIONS_INIT;
    o.sampling = sampling;
    o.max_tokens = max_tokens;
    o.stop = stop;
    o.n_stop = n_stop;
    o.on_token = on_token;
    o.user = c;
    exo_generate_stats stats;
    EXO_STRUCT_INIT(&stats);
    ck_assert_int_eq(exo_session_reset(f->session), EXO_OK);
    ck_assert_int_eq(exo_generate(f->session, prompt, &o, &stats), expect);
    return stats;
}

static exo_sampling greedy(void) {
    exo_sampling s = EXO_SAMPLING_INIT;
    s.temperature = 0.0f;
    return s;
}

START_TEST(greedy_text_matches_the_references) {
    fixture f = open_model();
    exo_sampling s = greedy();
    collected c = {0};
    exo_generate_stats st = generate(&f, PROMPT, &s, 24, NULL, 0, &c, EXO_OK);
    ck_assert_msg(strncmp(c.text, GREEDY, strlen(c.text) < strlen(GREEDY) ? strlen(c.text) : strlen(GREEDY)) == 0,
                  "got %s", c.text);
    ck_assert_uint_eq(st.generation_tokens, 24);
    ck_assert_int_eq(st.finish_reason, EXO_FINISH_LENGTH);
    ck_assert_uint_eq(st.prompt_tokens, 13); /* BOS + 12 */
    ck_assert(st.prompt_tps > 0 && st.generation_tps > 0 && st.ttft_ms > 0 && st.peak_memory_bytes > 0);
    ck_assert_int_eq(c.bad_utf8, 0);
    close_model(&f);
}
END_TEST

START_TEST(stop_string_ends_before_it) {
    fixture f = open_model();
    exo_sampling s = greedy();
    collected c = {0};
    const char *stop[] = {"documentation"};
    exo_generate_stats st = generate(&f, PROMPT, &s, 64, stop, 1, &c, EXO_OK);
    ck_assert_int_eq(st.finish_reason, EXO_FINISH_STOP);
    ck_assert_str_eq(c.text, " obtaining a copy\nof this software and associated ");
    close_model(&f);
}
END_TEST

START_TEST(callback_cancels) {
    fixture f = open_model();
    exo_sampling s = greedy();
    collected c = {.cancel_after = 3};
    exo_generate_stats st = generate(&f, PROMPT, &s, 64, NULL, 0, &c, EXO_OK);
    ck_assert_int_eq(st.finish_reason, EXO_FINISH_CANCELLED);
    ck_assert_uint_eq(c.tokens, 3);
    close_model(&f);
}
END_TEST

START_TEST(cancel_flag_stops) {
    fixture f = open_model();
    exo_sampling s = greedy();
    volatile int cancel = 1;
    exo_generate_options o = EXO_GENERATE_OPTIONS_INIT;
    o.sampling = &s;
    o.max_tokens = 64;
    o.cancel = &cancel;
    exo_generate_stats st;
    EXO_STRUCT_INIT(&st);
    ck_assert_int_eq(exo_generate(f.session, PROMPT, &o, &st), EXO_OK);
    ck_assert_int_eq(st.finish_reason, EXO_FINISH_CANCELLED);
    ck_assert_uint_eq(st.generation_tokens, 1);
    close_model(&f);
}
END_TEST

START_TEST(eos_ends_generation) {
    fixture f = open_model();
    exo_model_info info;
    EXO_STRUCT_INIT(&info);
    ck_assert_int_eq(exo_model_get_info(f.model, &info), EXO_OK);
    ck_assert_uint_ge(info.n_eos, 1);
    /* Ban every token but EOS: the first sample is EOS, which ends generation unseen. */
    int32_t *banned = malloc(info.vocab_size * sizeof *banned);
    uint32_t n = 0;
    for (uint32_t t = 0; t < info.vocab_size; t++)
        if (t != (uint32_t)info.eos_token_ids[0]) banned[n++] = (int32_t)t;
    exo_sampling s = greedy();
    s.banned = banned;
    s.n_banned = n;
    collected c = {0};
    exo_generate_stats st = generate(&f, PROMPT, &s, 64, NULL, 0, &c, EXO_OK);
    ck_assert_int_eq(st.finish_reason, EXO_FINISH_EOS);
    ck_assert_uint_eq(st.generation_tokens, 0);
    ck_assert_uint_eq(c.len, 0);
    free(banned);
    close_model(&f);
}
END_TEST

START_TEST(same_seed_same_text) {
    fixture f = open_model();
    exo_sampling s = EXO_SAMPLING_INIT;
    s.temperature = 4.0f; /* the model knows these licenses by heart: flatten it so seeds matter */
    s.min_p = 0.0f;
    s.seed = 1234;
    collected a = {0}, b = {0}, c = {0};
    generate(&f, "This program is", &s, 32, NULL, 0, &a, EXO_OK);
    generate(&f, "This program is", &s, 32, NULL, 0, &b, EXO_OK);
    s.seed = 99;
    generate(&f, "This program is", &s, 32, NULL, 0, &c, EXO_OK);
    ck_assert_str_eq(a.text, b.text);
    ck_assert_str_ne(a.text, c.text);
    close_model(&f);
}
END_TEST

START_TEST(pieces_are_valid_utf8_for_multibyte_output) {
    fixture f = open_model();
    exo_sampling s = EXO_SAMPLING_INIT;
    s.temperature = 1.5f;
    s.min_p = 0.0f;
    s.seed = 7;
    collected c = {0};
    generate(&f, "\xc3\xa9t\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80", &s, 48, NULL, 0, &c, EXO_OK);
    ck_assert_int_eq(c.bad_utf8, 0);
    close_model(&f);
}
END_TEST

START_TEST(bad_utf8_prompt_is_an_error) {
    fixture f = open_model();
    exo_sampling s = greedy();
    collected c = {0};
    generate(&f, "bad \xff\xfe text", &s, 8, NULL, 0, &c, EXO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(exo_session_last_error(f.session), "UTF-8"));
    close_model(&f);
}
END_TEST

/* The last error is the last failing call's: a later failure on the same object replaces it, also
 * where the call takes the object const (exo_model_get_info, exo_shard_get_info, exo_device_get_info). */
START_TEST(a_failing_call_replaces_the_previous_message) {
    fixture f = open_model();
    size_t n = 0;
    int32_t ids[8];
    ck_assert_int_eq(exo_model_tokenize(f.model, "\xff", 1, 0, ids, 8, &n), EXO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(exo_model_last_error(f.model), "UTF-8"));
    exo_model_info mi;
    memset(&mi, 0, sizeof mi); /* header not initialised */
    ck_assert_int_eq(exo_model_get_info(f.model, &mi), EXO_ERR_INVALID_ARG);
    ck_assert_msg(strstr(exo_model_last_error(f.model), "exo_model_get_info"), "%s", exo_model_last_error(f.model));
    /* The same for a shard: a refused session leaves its message, then exo_shard_get_info's replaces it. */
    exo_session *too_long = NULL;
    ck_assert_int_eq(exo_session_create(f.shard, UINT32_MAX, &too_long), EXO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(exo_shard_last_error(f.shard), "exceeds the shard's"));
    exo_shard_info si;
    memset(&si, 0, sizeof si); /* header not initialised */
    ck_assert_int_eq(exo_shard_get_info(f.shard, &si), EXO_ERR_INVALID_ARG);
    ck_assert_msg(strstr(exo_shard_last_error(f.shard), "exo_shard_get_info"), "%s", exo_shard_last_error(f.shard));
    ck_assert_int_eq(exo_shard_get_info(f.shard, NULL), EXO_ERR_INVALID_ARG);
    ck_assert_int_eq(exo_shard_get_info(NULL, &si), EXO_ERR_INVALID_ARG);

    uint32_t idx = 0;
    ck_assert_int_eq(exo_device_find(f.rt, "nosuch:0", &idx), EXO_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(exo_runtime_last_error(f.rt), "nosuch"));
    exo_device_info di;
    EXO_STRUCT_INIT(&di);
    ck_assert_int_eq(exo_device_get_info(f.rt, 9999, &di), EXO_ERR_INVALID_ARG);
    ck_assert_msg(strstr(exo_runtime_last_error(f.rt), "index 9999 out of range"), "%s", exo_runtime_last_error(f.rt));

    ck_assert_int_eq(exo_session_truncate(f.session, 99), EXO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(exo_session_last_error(f.session), "cannot truncate to 99"));
    exo_sampling s = greedy();
    collected c = {0};
    generate(&f, "bad \xff text", &s, 4, NULL, 0, &c, EXO_ERR_INVALID_ARG);
    ck_assert_msg(strstr(exo_session_last_error(f.session), "UTF-8"), "%s", exo_session_last_error(f.session));
    close_model(&f);
}
END_TEST

START_TEST(pipeline_shards_refuse_generate) {
    fixture f = {0};
    ck_assert_int_eq(exo_runtime_create(NULL, &f.rt), EXO_OK);
    ck_assert_int_eq(exo_model_open(f.rt, MODEL, &f.model), EXO_OK);
    exo_shard_options o = EXO_SHARD_OPTIONS_INIT;
    o.start_layer = 0;
    o.end_layer = 3;
    ck_assert_int_eq(exo_shard_load(f.model, &o, &f.shard), EXO_OK);
    ck_assert_int_eq(exo_session_create(f.shard, 0, &f.session), EXO_OK);
    ck_assert_int_eq(exo_generate(f.session, PROMPT, NULL, NULL), EXO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(exo_session_last_error(f.session), "whole-model"));
    close_model(&f);
}
END_TEST

START_TEST(public_sampler_and_detokenizer_reproduce_generate) {
    fixture f = open_model();
    exo_model_info info;
    EXO_STRUCT_INIT(&info);
    exo_model_get_info(f.model, &info);
    int32_t ids[64];
    size_t n = 0;
    ck_assert_int_eq(exo_model_tokenize(f.model, PROMPT, strlen(PROMPT), -1, ids, 64, &n), EXO_OK);
    ck_assert_int_eq(exo_model_tokenize(f.model, PROMPT, strlen(PROMPT), -1, ids, 2, &n), EXO_ERR_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(n, 13);
    exo_sampling s = greedy();
    exo_sampler *sampler = NULL;
    exo_detokenizer *detok = NULL;
    ck_assert_int_eq(exo_sampler_create(&s, info.vocab_size, &sampler), EXO_OK);
    ck_assert_int_eq(exo_detokenizer_create(f.model, &detok), EXO_OK);
    float *logits = malloc(info.vocab_size * sizeof *logits);
    ck_assert_int_eq(exo_session_forward_tokens(f.session, ids, (uint32_t)n, EXO_FORWARD_LAST_ONLY, logits,
                                                info.vocab_size), EXO_OK);
    char text[1024] = "";
    for (int step = 0; step < 16; step++) {
        exo_sampled_token t;
        EXO_STRUCT_INIT(&t);
        ck_assert_int_eq(exo_sampler_sample(sampler, logits, info.vocab_size, &t), EXO_OK);
        exo_sampler_accept(sampler, t.token);
        const char *piece;
        size_t len;
        ck_assert_int_eq(exo_detokenizer_push(detok, t.token, &piece, &len), EXO_OK);
        strncat(text, piece, len);
        ck_assert_int_eq(exo_session_forward_tokens(f.session, &t.token, 1, 0, logits, info.vocab_size), EXO_OK);
    }
    ck_assert_msg(strncmp(text, GREEDY, strlen(text)) == 0, "got %s", text);
    free(logits);
    exo_detokenizer_destroy(detok);
    exo_sampler_destroy(sampler);
    close_model(&f);
}
END_TEST

START_TEST(a_prompt_starting_with_bos_gets_no_second_one) {
    fixture f = open_model();
    int32_t ids[32];
    size_t n = 0;
    const char *text = "<|begin_of_text|>Hello";
    ck_assert_int_eq(exo_model_tokenize(f.model, text, strlen(text), -1, ids, 32, &n), EXO_OK);
    ck_assert_uint_ge(n, 2);
    ck_assert_int_eq(ids[0], 0);
    ck_assert_int_ne(ids[1], 0);
    ck_assert_int_eq(exo_model_tokenize(f.model, "Hello", 5, 1, ids, 32, &n), EXO_OK);
    ck_assert_int_eq(ids[0], 0);
    ck_assert_int_eq(exo_model_tokenize(f.model, "Hello", 5, 0, ids, 32, &n), EXO_OK);
    ck_assert_int_ne(ids[0], 0);
    close_model(&f);
}
END_TEST

START_TEST(prompts_longer_than_a_step_are_chunked_exactly) {
    /* A shard whose step holds 4 tokens must give a 13-token prompt the logits of one step. */
    fixture f = open_model();
    exo_model_info info;
    EXO_STRUCT_INIT(&info);
    exo_model_get_info(f.model, &info);
    exo_shard_options o = EXO_SHARD_OPTIONS_INIT; /* the whole model: end_layer EXO_LAYERS_END */
    o.max_tokens = 4;
    exo_shard *small = NULL;
    exo_session *s = NULL;
    ck_assert_int_eq(exo_shard_load(f.model, &o, &small), EXO_OK);
    exo_shard_info si;
    EXO_STRUCT_INIT(&si);
    ck_assert_int_eq(exo_shard_get_info(small, &si), EXO_OK);
    ck_assert_uint_eq(si.start_layer, 0);
    ck_assert_uint_eq(si.end_layer, info.n_layers);
    ck_assert(si.embeds && si.has_head);
    ck_assert_int_eq(exo_session_create(small, 0, &s), EXO_OK);
    int32_t ids[64];
    size_t n = 0;
    ck_assert_int_eq(exo_model_tokenize(f.model, PROMPT, strlen(PROMPT), -1, ids, 64, &n), EXO_OK);
    size_t V = info.vocab_size;
    float *chunked = malloc(n * V * sizeof *chunked), *whole = malloc(n * V * sizeof *whole);
    ck_assert_int_eq(exo_session_forward_tokens(s, ids, (uint32_t)n, 0, chunked, n * V), EXO_OK);
    ck_assert_int_eq(exo_session_forward_tokens(f.session, ids, (uint32_t)n, 0, whole, n * V), EXO_OK);
    ck_assert_uint_eq(exo_session_position(s), n);
    double num = 0, den = 0;
    for (size_t i = 0; i < n * V; i++) {
        num += (chunked[i] - whole[i]) * (double)(chunked[i] - whole[i]);
        den += whole[i] * (double)whole[i];
    }
    ck_assert_msg(num <= 1e-10 * den, "chunked prefill differs: rel %g", num / den);
    free(chunked);
    free(whole);
    exo_session_destroy(s);
    exo_shard_destroy(small);
    close_model(&f);
}
END_TEST

typedef struct concurrent_run {
    exo_shard *shard;
    const int32_t *ids;
    uint32_t n;
    uint32_t vocab;
    const float *expect; /* last-row logits of one run alone */
    int mismatches;
    exo_status status;
} concurrent_run;

static void *run_sessions(void *arg) {
    concurrent_run *r = arg;
    float *logits = malloc(r->vocab * sizeof *logits);
    for (int round = 0; round < 20 && r->status == EXO_OK; round++) {
        exo_session *s = NULL;
        r->status = exo_session_create(r->shard, 0, &s);
        if (r->status == EXO_OK)
            r->status = exo_session_forward_tokens(s, r->ids, r->n, EXO_FORWARD_LAST_ONLY, logits, r->vocab);
        if (r->status == EXO_OK && memcmp(logits, r->expect, r->vocab * sizeof *logits) != 0) r->mismatches++;
        exo_session_destroy(s);
    }
    free(logits);
    return NULL;
}

START_TEST(sessions_on_one_shard_run_from_several_threads) {
    fixture f = open_model();
    exo_model_info info;
    EXO_STRUCT_INIT(&info);
    exo_model_get_info(f.model, &info);
    int32_t a[8] = {0, 3105, 336, 1605, 1362, 14, 1232, 304}, b[5] = {0, 1605, 14, 301, 505};
    float *ea = malloc(info.vocab_size * sizeof *ea), *eb = malloc(info.vocab_size * sizeof *eb);
    ck_assert_int_eq(exo_session_forward_tokens(f.session, a, 8, EXO_FORWARD_LAST_ONLY, ea, info.vocab_size), EXO_OK);
    ck_assert_int_eq(exo_session_reset(f.session), EXO_OK);
    ck_assert_int_eq(exo_session_forward_tokens(f.session, b, 5, EXO_FORWARD_LAST_ONLY, eb, info.vocab_size), EXO_OK);
    concurrent_run ra = {f.shard, a, 8, info.vocab_size, ea, 0, EXO_OK};
    concurrent_run rb = {f.shard, b, 5, info.vocab_size, eb, 0, EXO_OK};
    pthread_t ta, tb;
    ck_assert_int_eq(pthread_create(&ta, NULL, run_sessions, &ra), 0);
    ck_assert_int_eq(pthread_create(&tb, NULL, run_sessions, &rb), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    ck_assert_int_eq(ra.status, EXO_OK);
    ck_assert_int_eq(rb.status, EXO_OK);
    ck_assert_int_eq(ra.mismatches, 0);
    ck_assert_int_eq(rb.mismatches, 0);
    free(ea);
    free(eb);
    close_model(&f);
}
END_TEST

START_TEST(batch_step_matches_single_steps) {
    fixture f = open_model();
    exo_model_info info;
    EXO_STRUCT_INIT(&info);
    exo_model_get_info(f.model, &info);
    exo_session *other = NULL;
    ck_assert_int_eq(exo_session_create(f.shard, 0, &other), EXO_OK);
    int32_t a[3] = {0, 3105, 336}, b[2] = {0, 1605};
    float *la = malloc(info.vocab_size * sizeof *la), *lb = malloc(info.vocab_size * sizeof *lb);
    float *ref = malloc(info.vocab_size * sizeof *ref);
    exo_batch_entry e[2] = {
        {.hdr = {sizeof(exo_batch_entry), EXO_API_VERSION}, .session = f.session, .tokens = a, .n = 3, .flags = EXO_FORWARD_LAST_ONLY, .out = la, .out_count = info.vocab_size},
        {.hdr = {sizeof(exo_batch_entry), EXO_API_VERSION}, .session = other, .tokens = b, .n = 2, .flags = EXO_FORWARD_LAST_ONLY, .out = lb, .out_count = info.vocab_size}};
    ck_assert_int_eq(exo_session_forward_batch(e, 2), EXO_OK);
    ck_assert_int_eq(e[0].status, EXO_OK);
    ck_assert_int_eq(exo_session_reset(other), EXO_OK);
    ck_assert_int_eq(exo_session_forward_tokens(other, b, 2, EXO_FORWARD_LAST_ONLY, ref, info.vocab_size), EXO_OK);
    /* One graph run for both sequences: their rows share the matmuls (a 5-row product, not a
     * 2-row one), whose kernels sum in another order, so equal to float rounding, not bitwise
     * (tests/batch checks batched steps in depth). */
    float diff = 0, scale = 0;
    for (uint32_t i = 0; i < info.vocab_size; i++) {
        diff = fmaxf(diff, fabsf(ref[i] - lb[i]));
        scale = fmaxf(scale, fabsf(ref[i]));
    }
    ck_assert_float_le(diff, 1e-4f * scale);
    free(la);
    free(lb);
    free(ref);
    exo_session_destroy(other);
    close_model(&f);
}
END_TEST

int main(void) {
    Suite *s = suite_create("generate");
    TCase *tc = tcase_create("generate");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, greedy_text_matches_the_references);
    tcase_add_test(tc, stop_string_ends_before_it);
    tcase_add_test(tc, callback_cancels);
    tcase_add_test(tc, cancel_flag_stops);
    tcase_add_test(tc, eos_ends_generation);
    tcase_add_test(tc, same_seed_same_text);
    tcase_add_test(tc, pieces_are_valid_utf8_for_multibyte_output);
    tcase_add_test(tc, bad_utf8_prompt_is_an_error);
    tcase_add_test(tc, a_failing_call_replaces_the_previous_message);
    tcase_add_test(tc, pipeline_shards_refuse_generate);
    tcase_add_test(tc, public_sampler_and_detokenizer_reproduce_generate);
    tcase_add_test(tc, a_prompt_starting_with_bos_gets_no_second_one);
    tcase_add_test(tc, prompts_longer_than_a_step_are_chunked_exactly);
    tcase_add_test(tc, batch_step_matches_single_steps);
    tcase_add_test(tc, sessions_on_one_shard_run_from_several_threads);
    suite_add_tcase(s, tc);
    return exo_check_run(s, CK_FORK_GETENV);
}
