/* The regex work bound of the tokenizer (core/tokenizer/tokenizer_regex.c): a backtracking pattern
 * gives up quickly with an error naming the pattern and the input position, and the patterns of
 * real tokenizers never reach the bound, even on about 1 MB of adversarial text (long runs of
 * spaces, digits, CJK, emoji, combining marks, punctuation). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check_run.h"

#include "base/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_internal.h"
#include "tokenizer_fixtures.h"

#define HF_TINY EXO_TEST_DATA "/hf-tiny"
#define LICENSES EXO_TEST_SOURCE_DIR "/models/tiny-llama-licenses"

static exo_tokenizer *load_ok(const char *dir) {
    exo_tokenizer *tok = NULL;
    exo_status st = exo_tokenizer_load(dir, &tok);
    ck_assert_msg(st == EXO_OK, "load %s: %d %s", dir, st, exo_error_message());
    return tok;
}

static exo_tokenizer *load_json(const char *json, char **dir) {
    *dir = fixture_make_dir();
    ck_assert_ptr_nonnull(*dir);
    ck_assert(fixture_write(*dir, "tokenizer.json", json));
    return load_ok(*dir);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- patterns that give up */

/* A tokenizer.json with the given normalizer and pre-tokenizer (JSON, or null) and an added
 * token "<m>"; the vocab does not matter, the regexes give up first. */
static exo_tokenizer *load_steps(const char *normalizer, const char *pre_tokenizer, char **dir) {
    char json[1024];
    snprintf(json, sizeof json,
             "{\"added_tokens\":[{\"id\":1,\"content\":\"<m>\",\"special\":true,"
             "\"normalized\":false}],\"normalizer\":%s,\"pre_tokenizer\":%s,"
             "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"<m>\":1},\"merges\":[]}}",
             normalizer, pre_tokenizer);
    return load_json(json, dir);
}

/* prefix, then n copies of 'a'. */
static char *a_run(const char *prefix, size_t n, size_t *len) {
    size_t p = strlen(prefix);
    char *s = malloc(p + n + 1);
    ck_assert_ptr_nonnull(s);
    memcpy(s, prefix, p);
    memset(s + p, 'a', n);
    s[p + n] = '\0';
    *len = p + n;
    return s;
}

/* Encodes text, expecting the bound to stop it within a few seconds (the unbounded match took
 * 14.5 s) with a message containing each of the needles. */
static void expect_gives_up(const exo_tokenizer *tok, const char *text, size_t len,
                            const char *const *needles) {
    int32_t *ids = (int32_t *)&ids;
    size_t n = 99;
    double t0 = now_s();
    exo_status st = exo_tokenizer_encode(tok, text, len, false, &ids, &n);
    double took = now_s() - t0;
    ck_assert_msg(st == EXO_ERR_UNSUPPORTED, "encode gave %d (%s), want EXO_ERR_UNSUPPORTED", st,
                  st ? exo_error_message() : "ok");
    ck_assert_ptr_null(ids);
    ck_assert_uint_eq(n, 0);
    const char *msg = exo_error_message();
    for (size_t i = 0; needles[i]; i++)
        ck_assert_msg(strstr(msg, needles[i]), "message \"%s\" lacks \"%s\"", msg, needles[i]);
    ck_assert_msg(took < 5.0, "gave up after %.2f s", took);
}

/* The pattern of the issue: (a|aa)+c backtracks exponentially on a run of a's without a c. */
START_TEST(test_backtracking_split_pattern_gives_up_naming_pattern_and_byte) {
    char *dir;
    exo_tokenizer *tok = load_steps(
        "null",
        "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(a|aa)+c|\\\\s+|[^\\\\s]\"},"
        "\"behavior\":\"Isolated\",\"invert\":false}",
        &dir);
    size_t len;
    char *text = a_run("hello ", 20000, &len);
    expect_gives_up(tok, text, len,
                    (const char *const[]){"tokenizer.json: Split pre-tokenizer pattern '(a|aa)+c|\\s+|[^\\s]'",
                                          "gave up searching from byte 6 of the input", "match limit", NULL});
    free(text);
    /* After an added token, the position still counts bytes of the whole input. */
    text = a_run("<m>xy", 20000, &len);
    expect_gives_up(tok, text, len, (const char *const[]){"gave up searching from byte 5 of the input", NULL});
    free(text);
    exo_tokenizer_free(tok);
    fixture_remove_dir(dir);
}
END_TEST

/* A long pattern is shown truncated, and a Replace normalizer is bounded the same way; the
 * position then counts bytes of the normalized text. */
START_TEST(test_backtracking_replace_pattern_gives_up) {
    char *dir;
    exo_tokenizer *tok = load_steps(
        "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"__\"},"
        "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"(a|aa)+c|b|(?:a long alternative "
        "that is cut in the message)\"},\"content\":\"x\"}]}",
        "null", &dir);
    size_t len;
    char *text = a_run("b", 20000, &len);
    expect_gives_up(tok, text, len,
                    (const char *const[]){"Replace normalizer pattern '(a|aa)+c|b|(?:a long alternative that is\xE2\x80\xA6'",
                                          "gave up searching from byte 3 of the normalized input", NULL});
    free(text);
    exo_tokenizer_free(tok);
    fixture_remove_dir(dir);
}
END_TEST

/* Each search alone is linear here, but every start position scans the rest of the run: the
 * sum is quadratic, and the budget of the whole call bounds it. "a*b" backtracks nowhere (so
 * PCRE2's match limit never counts it): the bytes scanned are charged. */
static const char *const quadratic[] = {"(?:a|b)*c|a", "a*b|a"};

START_TEST(test_quadratic_split_pattern_gives_up) {
    char *dir, pre[256], needle[64];
    snprintf(pre, sizeof pre,
             "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"%s\"},\"behavior\":\"Isolated\","
             "\"invert\":false}",
             quadratic[_i]);
    snprintf(needle, sizeof needle, "pattern '%s'", quadratic[_i]);
    exo_tokenizer *tok = load_steps("null", pre, &dir);
    size_t len;
    char *text = a_run("", 200000, &len);
    expect_gives_up(tok, text, len, (const char *const[]){needle, NULL});
    free(text);
    exo_tokenizer_free(tok);
    fixture_remove_dir(dir);
}
END_TEST

/* ---------------------------------------------------------------- adversarial text */

typedef struct text {
    char *data;
    size_t len, cap;
} text;

static void put(text *t, const char *s, size_t n) {
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->data = realloc(t->data, t->cap);
        ck_assert_ptr_nonnull(t->data);
    }
    memcpy(t->data + t->len, s, n);
    t->len += n;
    t->data[t->len] = '\0';
}

/* unit repeated until the block has `bytes` bytes. */
static void block(text *t, const char *unit, size_t bytes) {
    size_t n = strlen(unit);
    for (size_t done = 0; done + n <= bytes; done += n) put(t, unit, n);
}

/* About 1 MB: each block is a run that makes some regex backtrack or scan far (a lookahead
 * after a long whitespace run, long letter / digit / punctuation runs, marks without a base),
 * then mixed prose. Deterministic, so the expected ids are fixed. */
static text adversarial_text(void) {
    text t = {0};
    block(&t, " ", 96 << 10);                                   /* one long run of spaces */
    block(&t, "x", 1);
    for (int i = 0; i < 48; i++) {                             /* spaces then a letter */
        block(&t, " ", 2000);
        block(&t, "x", 1);
    }
    block(&t, "0123456789", 96 << 10);                          /* digits */
    block(&t, "\xE4\xB8\xAD\xE6\x96\x87\xE5\xAD\x97", 96 << 10); /* CJK */
    block(&t, "\xF0\x9F\x98\x80\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD", 96 << 10); /* emoji + skin tone */
    block(&t, "e\xCC\x81\xCC\x82", 64 << 10);                   /* letters with marks */
    block(&t, "\xCC\x81", 64 << 10);                            /* marks without a base */
    block(&t, "!?.,;:-", 96 << 10);                             /* punctuation */
    block(&t, " \n \r\n\t\n", 64 << 10);                        /* whitespace with newlines */
    block(&t, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 64 << 10); /* one long word */
    block(&t, "Hello world, it's 2024! Don't panic: 3.14159 \xE2\x82\xAC. ", 128 << 10);
    block(&t, "ab1 !\xE4\xB8\xAD\t'S'LL  \xF0\x9F\x98\x80\n", 96 << 10);
    return t;
}

static uint64_t fnv1a(const int32_t *ids, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)ids[i];
        for (int b = 0; b < 4; b++) {
            h ^= (v >> (8 * b)) & 0xFF;
            h *= 0x100000001b3ull;
        }
    }
    return h;
}

/* The ids of the adversarial text as the tokenizer gave them before the bound existed
 * (count and FNV-1a of the ids): the bound must not change a single one. */
static const struct {
    const char *dir;
    size_t n_ids;
    uint64_t hash;
} expected[] = {
    /* Llama-3's split pattern (every hf-tiny fixture shares its tokenizer.json). */
    {LICENSES, 786231, 0x5fa93c75259cd1b0ull},
    {HF_TINY "/llama3", 875602, 0x776dbf3f3525ecf2ull},
    /* SentencePiece style, built here: Prepend + Replace normalizer, or Metaspace. */
    {"sentencepiece-normalizer", 1060686, 0xe44480085658f93eull},
    {"sentencepiece-metaspace", 1060685, 0x23dc113e449fb51aull},
};

START_TEST(test_real_tokenizers_encode_adversarial_text_unchanged) {
    text t = adversarial_text();
    const char *dir = expected[_i].dir;
    char *scratch = NULL;
    if (!strncmp(dir, "sentencepiece-", 14)) {
        scratch = fixture_make_dir();
        ck_assert_ptr_nonnull(scratch);
        ck_assert(fixture_write_sentencepiece(scratch, !strcmp(dir, "sentencepiece-metaspace")));
    }
    exo_tokenizer *tok = load_ok(scratch ? scratch : dir);
    int32_t *ids = NULL;
    size_t n = 0;
    exo_status st = exo_tokenizer_encode(tok, t.data, t.len, false, &ids, &n);
    ck_assert_msg(st == EXO_OK, "%s: %s", dir, exo_error_message());
    uint64_t h = fnv1a(ids, n);
    ck_assert_msg(n == expected[_i].n_ids && h == expected[_i].hash,
                  "%s: %zu ids, hash 0x%016llx; want %zu, 0x%016llx", dir, n,
                  (unsigned long long)h, expected[_i].n_ids,
                  (unsigned long long)expected[_i].hash);
    /* Metaspace's decoder drops the first space, which the text starts with, as HF's does. */
    if (strcmp(dir, "sentencepiece-metaspace")) {
        char *back = NULL;
        size_t back_len = 0;
        ck_assert_int_eq(exo_tokenizer_decode(tok, ids, n, &back, &back_len), EXO_OK);
        ck_assert_msg(back_len == t.len && !memcmp(back, t.data, t.len), "%s: decode(encode(x)) != x", dir);
        free(back);
    }
    free(ids);
    exo_tokenizer_free(tok);
    if (scratch) fixture_remove_dir(scratch);
    free(t.data);
}
END_TEST

/* The other regex steps a tokenizer.json can declare: a Replace normalizer with a regex,
 * Digits, Whitespace, WhitespaceSplit, the GPT-2 pattern (ByteLevel use_regex), on the same
 * text; the pieces (count and hash of their bytes and bounds) are those of before the bound. */
START_TEST(test_other_regex_steps_pretokenize_adversarial_text_unchanged) {
    char *dir;
    exo_tokenizer *tok = load_json(
        "{\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"Regex\":\" {2,}\"},\"content\":\" \"},"
        "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":["
        "{\"type\":\"Digits\",\"individual_digits\":true},{\"type\":\"Whitespace\"},"
        "{\"type\":\"WhitespaceSplit\"},{\"type\":\"ByteLevel\",\"add_prefix_space\":true,"
        "\"use_regex\":true}]},"
        "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}",
        &dir);
    text t = adversarial_text();
    exo_tok_buf norm = {0};
    exo_regex_budget budget;
    ck_assert_int_eq(exo_regex_budget_init(&budget), EXO_OK);
    exo_status st = exo_tok_normalize(tok, t.data, t.len, &budget, &norm);
    ck_assert_msg(st == EXO_OK, "%s", exo_error_message());
    exo_tok_pieces p = {0};
    st = exo_tok_pretokenize(tok, norm.data, norm.len, true, &budget, &p);
    ck_assert_msg(st == EXO_OK, "%s", exo_error_message());
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < p.text.len; i++) h = (h ^ (uint8_t)p.text.data[i]) * 0x100000001b3ull;
    for (size_t i = 0; i <= p.n; i++) h = (h ^ p.starts[i]) * 0x100000001b3ull;
    ck_assert_uint_eq(norm.len, 880096);
    ck_assert_uint_eq(p.n, 229598);
    ck_assert_uint_eq(h, 0x0bc0301f1abd0a7cull);
    exo_tok_pieces_free(&p);
    exo_regex_budget_free(&budget);
    exo_tok_buf_free(&norm);
    free(t.data);
    exo_tokenizer_free(tok);
    fixture_remove_dir(dir);
}
END_TEST

static Suite *budget_suite(void) {
    Suite *s = suite_create("tokenizer_regex_budget");
    TCase *tc = tcase_create("real");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_real_tokenizers_encode_adversarial_text_unchanged, 0,
                        (int)(sizeof expected / sizeof expected[0]));
    tcase_add_test(tc, test_other_regex_steps_pretokenize_adversarial_text_unchanged);
    suite_add_tcase(s, tc);
    tc = tcase_create("gives_up");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_backtracking_split_pattern_gives_up_naming_pattern_and_byte);
    tcase_add_test(tc, test_backtracking_replace_pattern_gives_up);
    tcase_add_loop_test(tc, test_quadratic_split_pattern_gives_up, 0,
                        (int)(sizeof quadratic / sizeof quadratic[0]));
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return exo_check_run(budget_suite(), CK_FORK_GETENV);
}
