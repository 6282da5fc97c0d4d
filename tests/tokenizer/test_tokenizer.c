/* Tokenizer tests: the reference ids of Hugging Face tokenizers for the fixtures, round trips,
 * streaming decode, a SentencePiece-style tokenizer built here, and bad input. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"

#include "base/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_internal.h"
#include "tokenizer_fixtures.h"

#define HF_TINY EXO_TEST_DATA "/hf-tiny"
#define LICENSES EXO_TEST_SOURCE_DIR "/models/tiny-llama-licenses"

static const char *const golden_dirs[] = {
    HF_TINY "/gemma",  HF_TINY "/llama", HF_TINY "/llama-bf16", HF_TINY "/llama-f16", HF_TINY "/llama3",
    HF_TINY "/mistral", HF_TINY "/phi3", HF_TINY "/qwen2",      HF_TINY "/qwen3",     LICENSES,
};
#define N_GOLDEN (sizeof golden_dirs / sizeof golden_dirs[0])

static exo_tokenizer *load_ok(const char *dir) {
    exo_tokenizer *tok = NULL;
    exo_status st = exo_tokenizer_load(dir, &tok);
    ck_assert_msg(st == EXO_OK, "load %s: %d %s", dir, st, exo_error_message());
    ck_assert_ptr_nonnull(tok);
    return tok;
}

static void assert_ids(const int32_t *got, size_t n_got, const int32_t *want, size_t n_want,
                       const char *what) {
    char msg[2048];
    size_t o = (size_t)snprintf(msg, sizeof msg, "%s: got", what);
    for (size_t i = 0; i < n_got && o < sizeof msg - 16; i++)
        o += (size_t)snprintf(msg + o, sizeof msg - o, " %d", got[i]);
    ck_assert_msg(n_got == n_want, "%s (length %zu, want %zu)", msg, n_got, n_want);
    for (size_t i = 0; i < n_want; i++)
        ck_assert_msg(got[i] == want[i], "%s (id %zu: %d, want %d)", msg, i, got[i], want[i]);
}

static void encode_expect(const exo_tokenizer *tok, const char *text, bool add_bos,
                          const int32_t *want, size_t n_want) {
    int32_t *ids = NULL;
    size_t n = 0;
    exo_status st = exo_tokenizer_encode(tok, text, strlen(text), add_bos, &ids, &n);
    ck_assert_msg(st == EXO_OK, "encode \"%s\": %s", text, exo_error_message());
    assert_ids(ids, n, want, n_want, text);
    free(ids);
}

static char *decode_ok(const exo_tokenizer *tok, const int32_t *ids, size_t n, size_t *len) {
    char *text = NULL;
    exo_status st = exo_tokenizer_decode(tok, ids, n, &text, len);
    ck_assert_msg(st == EXO_OK, "decode: %s", exo_error_message());
    ck_assert_ptr_nonnull(text);
    return text;
}

/* ---------------------------------------------------------------- reference ids */

START_TEST(test_cases_encode_like_hf) {
    exo_tokenizer *tok = load_ok(HF_TINY "/llama");
    cJSON *cases = fixture_read_json(HF_TINY "/tokenizer_cases.json");
    ck_assert_ptr_nonnull(cases);
    ck_assert_int_gt(cJSON_GetArraySize(cases), 0);
    for (const cJSON *c = cases->child; c; c = c->next) {
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(c, "text");
        int32_t *want;
        size_t n_want;
        ck_assert(cJSON_IsString(text));
        ck_assert(fixture_ids(cJSON_GetObjectItemCaseSensitive(c, "ids"), &want, &n_want));
        encode_expect(tok, text->valuestring, false, want, n_want);
        free(want);
    }
    cJSON_Delete(cases);
    exo_tokenizer_free(tok);
}
END_TEST

START_TEST(test_cases_decode_like_hf) {
    exo_tokenizer *tok = load_ok(HF_TINY "/llama");
    cJSON *cases = fixture_read_json(HF_TINY "/tokenizer_cases.json");
    ck_assert_ptr_nonnull(cases);
    for (const cJSON *c = cases->child; c; c = c->next) {
        const cJSON *decoded = cJSON_GetObjectItemCaseSensitive(c, "decoded");
        int32_t *ids;
        size_t n, len;
        ck_assert(cJSON_IsString(decoded));
        ck_assert(fixture_ids(cJSON_GetObjectItemCaseSensitive(c, "ids"), &ids, &n));
        char *text = decode_ok(tok, ids, n, &len);
        ck_assert_uint_eq(len, strlen(decoded->valuestring));
        ck_assert_str_eq(text, decoded->valuestring);
        free(text);
        free(ids);
    }
    cJSON_Delete(cases);
    exo_tokenizer_free(tok);
}
END_TEST

/* Every fixture's prompts, with BOS (id 0) first, as the goldens were made. */
START_TEST(test_golden_prompts_encode_like_hf) {
    for (size_t d = 0; d < N_GOLDEN; d++) {
        exo_tokenizer *tok = load_ok(golden_dirs[d]);
        char path[4096];
        snprintf(path, sizeof path, "%s/golden.json", golden_dirs[d]);
        cJSON *golden = fixture_read_json(path);
        ck_assert_ptr_nonnull(golden);
        const cJSON *prompts = cJSON_GetObjectItemCaseSensitive(golden, "prompts");
        ck_assert_int_gt(cJSON_GetArraySize(prompts), 0);
        for (const cJSON *p = prompts->child; p; p = p->next) {
            const cJSON *text = cJSON_GetObjectItemCaseSensitive(p, "text");
            int32_t *want;
            size_t n_want;
            ck_assert(fixture_ids(cJSON_GetObjectItemCaseSensitive(p, "ids"), &want, &n_want));
            ck_assert_int_eq(want[0], exo_tokenizer_bos(tok));
            encode_expect(tok, text->valuestring, true, want, n_want);
            free(want);
        }
        cJSON_Delete(golden);
        exo_tokenizer_free(tok);
    }
}
END_TEST

/* Pushes all ids through a detokenizer and flushes; returns the concatenated pieces. */
static char *stream_all(const exo_tokenizer *tok, const int32_t *ids, size_t n) {
    exo_text_stream *d;
    ck_assert_int_eq(exo_text_stream_create(tok, &d), EXO_OK);
    size_t cap = 256, o = 0;
    char *out = malloc(cap);
    for (size_t i = 0; i <= n; i++) {
        const char *piece;
        size_t len;
        if (i < n) ck_assert_int_eq(exo_text_stream_push(d, ids[i], &piece, &len), EXO_OK);
        else ck_assert_int_eq(exo_text_stream_flush(d, &piece, &len), EXO_OK);
        while (o + len + 1 > cap) out = realloc(out, cap *= 2);
        memcpy(out + o, piece, len);
        o += len;
    }
    out[o] = '\0';
    exo_text_stream_free(d);
    return out;
}

/* The greedy continuations decode to the text transformers printed for them. */
START_TEST(test_golden_greedy_decodes_like_hf) {
    for (size_t d = 0; d < N_GOLDEN; d++) {
        exo_tokenizer *tok = load_ok(golden_dirs[d]);
        char path[4096];
        snprintf(path, sizeof path, "%s/golden.json", golden_dirs[d]);
        cJSON *golden = fixture_read_json(path);
        ck_assert_ptr_nonnull(golden);
        const cJSON *prompts = cJSON_GetObjectItemCaseSensitive(golden, "prompts");
        for (const cJSON *p = prompts->child; p; p = p->next) {
            const cJSON *want = cJSON_GetObjectItemCaseSensitive(p, "greedy_text");
            int32_t *ids;
            size_t n, len;
            ck_assert(cJSON_IsString(want));
            ck_assert(fixture_ids(cJSON_GetObjectItemCaseSensitive(p, "greedy"), &ids, &n));
            char *text = decode_ok(tok, ids, n, &len);
            /* decode gives the exact bytes; HF's text replaces invalid UTF-8 by U+FFFD. */
            if (exo_utf8_check((const uint8_t *)text, len) == len)
                ck_assert_msg(strcmp(text, want->valuestring) == 0, "%s: decoded \"%s\", want \"%s\"",
                              golden_dirs[d], text, want->valuestring);
            free(text);
            /* The detokenizer's pieces add up to HF's text, U+FFFD included. */
            char *streamed = stream_all(tok, ids, n);
            ck_assert_msg(strcmp(streamed, want->valuestring) == 0, "%s: streamed \"%s\", want \"%s\"",
                          golden_dirs[d], streamed, want->valuestring);
            free(streamed);
            free(ids);
        }
        cJSON_Delete(golden);
        exo_tokenizer_free(tok);
    }
}
END_TEST

START_TEST(test_explicit_add_bos_token_wins) {
    char dir[] = "/tmp/exo-tok-bos-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp %s/llama/tokenizer.json %s/ && printf '%%s' "
             "'{\"bos_token\": \"<|begin_of_text|>\", \"add_bos_token\": false}' > %s/tokenizer_config.json",
             HF_TINY, dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    exo_tokenizer *tok = load_ok(dir);
    ck_assert(!exo_tokenizer_adds_bos(tok));
    exo_tokenizer_free(tok);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(test_special_ids_from_config) {
    exo_tokenizer *tok = load_ok(HF_TINY "/llama");
    const int32_t *eos;
    ck_assert_int_eq(exo_tokenizer_bos(tok), 0);
    ck_assert_uint_eq(exo_tokenizer_eos(tok, &eos), 1);
    ck_assert_int_eq(eos[0], 1);
    ck_assert_uint_eq(exo_tokenizer_vocab_size(tok), 512);
    ck_assert(exo_tokenizer_is_special(tok, 0));
    ck_assert(exo_tokenizer_is_special(tok, 2));
    ck_assert(!exo_tokenizer_is_special(tok, 3));
    ck_assert(!exo_tokenizer_is_special(tok, 512));
    /* Neither tokenizer_config nor the post-processor says; tokenizer_config names a BOS, and
     * the references were made with it first. */
    ck_assert(exo_tokenizer_adds_bos(tok));
    ck_assert_int_eq(exo_tokenizer_token_id(tok, "<|end_of_text|>", 15), 1);
    exo_tokenizer_free(tok);
}
END_TEST

/* Qwen-style configs: "bos_token": null means no BOS even though config.json has an id;
 * generation_config's EOS list is taken whole, config.json's EOS only without it. */
START_TEST(test_special_ids_qwen_style) {
    char *dir = fixture_make_dir();
    ck_assert(fixture_write_sentencepiece(dir, true));
    ck_assert(fixture_write(dir, "tokenizer_config.json", "{\"bos_token\": null, \"eos_token\": \"</s>\"}"));
    ck_assert(fixture_write(dir, "generation_config.json", "{\"bos_token_id\": 1, \"eos_token_id\": [2, 0]}"));
    ck_assert(fixture_write(dir, "config.json", "{\"bos_token_id\": 1, \"eos_token_id\": 5}"));
    exo_tokenizer *tok = load_ok(dir);
    const int32_t *eos;
    ck_assert_int_eq(exo_tokenizer_bos(tok), -1);
    ck_assert(!exo_tokenizer_adds_bos(tok));
    ck_assert_uint_eq(exo_tokenizer_eos(tok, &eos), 2);
    ck_assert_int_eq(eos[0], SP_EOS);
    ck_assert_int_eq(eos[1], SP_UNK);
    /* add_bos has nothing to add. */
    encode_expect(tok, "hello", true, (int32_t[]){SP_SPACE_HELLO}, 1);
    exo_tokenizer_free(tok);
    fixture_remove_dir(dir);
}
END_TEST

/* A BOS id inside the vocab's range but naming no token (found by fuzz_tokenizer): every prompt
 * would start with an id no decode can spell, so the load refuses it and names the key. */
START_TEST(test_bos_id_in_a_vocab_hole_is_refused) {
    char *dir = fixture_make_dir();
    ck_assert(fixture_write(dir, "tokenizer.json",
                            "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 2}, \"merges\": []}}"));
    ck_assert(fixture_write(dir, "config.json", "{\"bos_token_id\": 1}"));
    exo_tokenizer *tok = NULL;
    ck_assert_int_eq(exo_tokenizer_load(dir, &tok), EXO_ERR_FORMAT);
    ck_assert_ptr_null(tok);
    ck_assert_msg(strstr(exo_error_message(), "bos_token_id") && strstr(exo_error_message(), "config.json"),
                  "%s", exo_error_message());
    fixture_remove_dir(dir);
}
END_TEST

/* ---------------------------------------------------------------- round trips */

static const char *const roundtrip_texts[] = {
    "Hello, world!",
    "ünïcödé façade naïve Ελληνικά русский עברית العربية",
    "日本語のテキストと中文字符，한국어도。",
    "emoji 🙂🚀 family 👨‍👩‍👧‍👦 flags 🇫🇷 skin 👍🏽",
    "windows\r\nline\r\n\r\nendings\r\n",
    "runs    of     spaces\t\t tabs \n\n\n  ",
    "<|begin_of_text|>literal <|pad|>special<|end_of_text|> tokens",
    "   ",
    "x",
    "1234567890 3.14159 -42 1e10 0x7f",
    "don't I'LL we'Re they've",
    "\xF0\x9F\x98\x80\xE2\x82\xAC\xC2\xA2$",
};
#define N_ROUNDTRIP (sizeof roundtrip_texts / sizeof roundtrip_texts[0])

static void roundtrip(const exo_tokenizer *tok, const char *s) {
    int32_t *ids;
    size_t n, len;
    ck_assert_int_eq(exo_tokenizer_encode(tok, s, strlen(s), false, &ids, &n), EXO_OK);
    char *back = decode_ok(tok, ids, n, &len);
    ck_assert_uint_eq(len, strlen(s));
    ck_assert_msg(memcmp(back, s, len) == 0, "round trip of \"%s\" gave \"%s\"", s, back);
    free(back);
    free(ids);
}

START_TEST(test_roundtrip_bytelevel) {
    exo_tokenizer *tok = load_ok(HF_TINY "/llama");
    for (size_t i = 0; i < N_ROUNDTRIP; i++) roundtrip(tok, roundtrip_texts[i]);
    exo_tokenizer_free(tok);
}
END_TEST

START_TEST(test_roundtrip_larger_vocab) {
    exo_tokenizer *tok = load_ok(LICENSES);
    for (size_t i = 0; i < N_ROUNDTRIP; i++) roundtrip(tok, roundtrip_texts[i]);
    exo_tokenizer_free(tok);
}
END_TEST

/* Added tokens written in the text become their ids, however they touch the words around. */
START_TEST(test_literal_special_tokens_match) {
    exo_tokenizer *tok = load_ok(HF_TINY "/llama");
    int32_t *ids, *plain;
    size_t n, n_plain;
    const char *s = "<|begin_of_text|>hi<|end_of_text|><|pad|>";
    ck_assert_int_eq(exo_tokenizer_encode(tok, s, strlen(s), false, &ids, &n), EXO_OK);
    ck_assert_int_eq(exo_tokenizer_encode(tok, "hi", 2, false, &plain, &n_plain), EXO_OK);
    ck_assert_uint_eq(n, n_plain + 3);
    ck_assert_int_eq(ids[0], 0);
    for (size_t i = 0; i < n_plain; i++) ck_assert_int_eq(ids[1 + i], plain[i]);
    ck_assert_int_eq(ids[n - 2], 1);
    ck_assert_int_eq(ids[n - 1], 2);
    free(ids);
    free(plain);
    /* A near miss is ordinary text. */
    const char *miss = "<|begin_of_tex|>";
    ck_assert_int_eq(exo_tokenizer_encode(tok, miss, strlen(miss), false, &ids, &n), EXO_OK);
    for (size_t i = 0; i < n; i++) ck_assert(!exo_tokenizer_is_special(tok, ids[i]));
    free(ids);
    exo_tokenizer_free(tok);
}
END_TEST

START_TEST(test_add_bos_prepends_once) {
    exo_tokenizer *tok = load_ok(HF_TINY "/qwen2");
    int32_t *ids;
    size_t n;
    ck_assert_int_eq(exo_tokenizer_encode(tok, "", 0, true, &ids, &n), EXO_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(ids[0], 0);
    free(ids);
    ck_assert_int_eq(exo_tokenizer_encode(tok, "", 0, false, &ids, &n), EXO_OK);
    ck_assert_uint_eq(n, 0);
    free(ids);
    exo_tokenizer_free(tok);
}
END_TEST

/* ---------------------------------------------------------------- streaming */

static bool valid_utf8(const char *s, size_t n) { return exo_utf8_check((const uint8_t *)s, n) == n; }

/* Streams ids one by one; every piece must be valid UTF-8 and the pieces must add up to the
 * whole decode. Returns how many pushes gave an empty piece. */
static size_t stream_and_check(const exo_tokenizer *tok, const int32_t *ids, size_t n) {
    exo_text_stream *d;
    ck_assert_int_eq(exo_text_stream_create(tok, &d), EXO_OK);
    size_t whole_len, empty = 0;
    char *whole = decode_ok(tok, ids, n, &whole_len);
    char *joined = calloc(whole_len * 3 + 16, 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        const char *piece;
        size_t len;
        ck_assert_int_eq(exo_text_stream_push(d, ids[i], &piece, &len), EXO_OK);
        ck_assert_msg(valid_utf8(piece, len), "piece %zu is not valid UTF-8", i);
        if (len == 0) empty++;
        memcpy(joined + o, piece, len);
        o += len;
    }
    const char *piece;
    size_t len;
    ck_assert_int_eq(exo_text_stream_flush(d, &piece, &len), EXO_OK);
    ck_assert_uint_eq(len, 0); /* the whole sequence was valid */
    ck_assert_uint_eq(o, whole_len);
    ck_assert(memcmp(joined, whole, o) == 0);
    free(joined);
    free(whole);
    exo_text_stream_free(d);
    return empty;
}

START_TEST(test_stream_never_splits_characters) {
    exo_tokenizer *tok = load_ok(HF_TINY "/llama");
    size_t held = 0;
    for (size_t i = 0; i < N_ROUNDTRIP; i++) {
        const char *s = roundtrip_texts[i];
        int32_t *ids;
        size_t n;
        ck_assert_int_eq(exo_tokenizer_encode(tok, s, strlen(s), false, &ids, &n), EXO_OK);
        held += stream_and_check(tok, ids, n);
        free(ids);
    }
    /* The tiny vocab spells emoji and CJK byte by byte, so some pushes had to hold back. */
    ck_assert_uint_gt(held, 0);
    exo_tokenizer_free(tok);
}
END_TEST

/* An emoji cut short: nothing comes out until flush, which gives U+FFFD; the stream then
 * starts afresh. */
START_TEST(test_stream_flush_replaces_unfinished) {
    exo_tokenizer *tok = load_ok(HF_TINY "/llama");
    int32_t *ids;
    size_t n;
    const char *emoji = "\xF0\x9F\x99\x82"; /* 🙂 */
    ck_assert_int_eq(exo_tokenizer_encode(tok, emoji, 4, false, &ids, &n), EXO_OK);
    ck_assert_uint_ge(n, 2);
    exo_text_stream *d;
    ck_assert_int_eq(exo_text_stream_create(tok, &d), EXO_OK);
    const char *piece;
    size_t len;
    for (size_t i = 0; i + 1 < n; i++) {
        ck_assert_int_eq(exo_text_stream_push(d, ids[i], &piece, &len), EXO_OK);
        ck_assert_uint_eq(len, 0);
    }
    ck_assert_int_eq(exo_text_stream_flush(d, &piece, &len), EXO_OK);
    ck_assert_uint_eq(len, 3);
    ck_assert(memcmp(piece, "\xEF\xBF\xBD", 3) == 0);
    /* After flush the full emoji streams cleanly. */
    for (size_t i = 0; i < n; i++) ck_assert_int_eq(exo_text_stream_push(d, ids[i], &piece, &len), EXO_OK);
    ck_assert_uint_eq(len, 4);
    ck_assert(memcmp(piece, emoji, 4) == 0);
    free(ids);
    exo_text_stream_free(d);
    exo_tokenizer_free(tok);
}
END_TEST

/* A byte that can never start a character is replaced at once, not held. */
START_TEST(test_stream_replaces_invalid_bytes) {
    exo_tokenizer *tok = load_ok(HF_TINY "/llama");
    /* The byte-level token for 0xFF stands alone: invalid in UTF-8 wherever it appears. */
    const exo_bytelevel_char *table = exo_bytelevel_table();
    int32_t ff = exo_tokenizer_token_id(tok, table[0xFF].utf8, table[0xFF].len);
    int32_t a = exo_tokenizer_token_id(tok, "a", 1);
    ck_assert_int_ge(ff, 0);
    ck_assert_int_ge(a, 0);
    exo_text_stream *d;
    ck_assert_int_eq(exo_text_stream_create(tok, &d), EXO_OK);
    const char *piece;
    size_t len;
    ck_assert_int_eq(exo_text_stream_push(d, a, &piece, &len), EXO_OK);
    ck_assert_uint_eq(len, 1);
    ck_assert_int_eq(exo_text_stream_push(d, ff, &piece, &len), EXO_OK);
    ck_assert_uint_eq(len, 3);
    ck_assert(memcmp(piece, "\xEF\xBF\xBD", 3) == 0);
    ck_assert_int_eq(exo_text_stream_push(d, 1 << 20, &piece, &len), EXO_ERR_INVALID_ARG);
    exo_text_stream_free(d);
    exo_tokenizer_free(tok);
}
END_TEST

/* ---------------------------------------------------------------- SentencePiece style */

static exo_tokenizer *load_sentencepiece(bool metaspace, char **dir) {
    *dir = fixture_make_dir();
    ck_assert_ptr_nonnull(*dir);
    ck_assert(fixture_write_sentencepiece(*dir, metaspace));
    return load_ok(*dir);
}

START_TEST(test_sentencepiece_normalizer_encode) {
    char *dir;
    exo_tokenizer *tok = load_sentencepiece(false, &dir);
    encode_expect(tok, "hello world", false, (int32_t[]){SP_SPACE_HELLO, SP_SPACE_WORLD}, 2);
    encode_expect(tok, "hello world", true, (int32_t[]){SP_BOS, SP_SPACE_HELLO, SP_SPACE_WORLD}, 3);
    encode_expect(tok, "hello  world", false,
                  (int32_t[]){SP_SPACE_HELLO, SP_SPACE, SP_SPACE_WORLD}, 3);
    /* é is not in the vocab: its two UTF-8 bytes fall back to <0xC3> <0xA9>. */
    encode_expect(tok, "h\xC3\xA9", false,
                  (int32_t[]){SP_SPACE_H, SP_BYTE0 + 0xC3, SP_BYTE0 + 0xA9}, 3);
    /* The Prepend normalizer runs on each stretch between added tokens. */
    encode_expect(tok, "<s>hello</s>", false, (int32_t[]){SP_BOS, SP_SPACE_HELLO, SP_EOS}, 3);
    ck_assert_int_eq(exo_tokenizer_bos(tok), SP_BOS);
    ck_assert(exo_tokenizer_adds_bos(tok)); /* from the TemplateProcessing post-processor */
    const int32_t *eos;
    ck_assert_uint_eq(exo_tokenizer_eos(tok, &eos), 1);
    ck_assert_int_eq(eos[0], SP_EOS);
    exo_tokenizer_free(tok);
    fixture_remove_dir(dir);
}
END_TEST

static void decode_expect(const exo_tokenizer *tok, const int32_t *ids, size_t n, const char *want) {
    size_t len;
    char *text = decode_ok(tok, ids, n, &len);
    ck_assert_msg(strcmp(text, want) == 0, "decoded \"%s\", want \"%s\"", text, want);
    ck_assert_uint_eq(len, strlen(want));
    free(text);
}

START_TEST(test_sentencepiece_normalizer_decode) {
    char *dir;
    exo_tokenizer *tok = load_sentencepiece(false, &dir);
    /* Replace ▁ -> " ", byte fallback, Fuse, then Strip removes the one leading space. */
    decode_expect(tok, (int32_t[]){SP_SPACE_HELLO, SP_SPACE_WORLD}, 2, "hello world");
    decode_expect(tok, (int32_t[]){SP_SPACE_H, SP_BYTE0 + 0xC3, SP_BYTE0 + 0xA9}, 3, "h\xC3\xA9");
    decode_expect(tok, (int32_t[]){SP_SPACE, SP_SPACE, SP_SPACE_HELLO}, 3, "  hello");
    /* Special tokens keep their content; the space after them stays (as HF: "<s> hello"). */
    decode_expect(tok, (int32_t[]){SP_BOS, SP_SPACE_HELLO}, 2, "<s> hello");
    for (size_t i = 0; i < N_ROUNDTRIP; i++) {
        if (strstr(roundtrip_texts[i], "<|")) continue;
        /* Leading spaces are the one thing SentencePiece's decoder cannot give back. */
        if (roundtrip_texts[i][0] == ' ') continue;
        roundtrip(tok, roundtrip_texts[i]);
    }
    exo_tokenizer_free(tok);
    fixture_remove_dir(dir);
}
END_TEST

START_TEST(test_sentencepiece_metaspace) {
    char *dir;
    exo_tokenizer *tok = load_sentencepiece(true, &dir);
    encode_expect(tok, "hello world", false, (int32_t[]){SP_SPACE_HELLO, SP_SPACE_WORLD}, 2);
    /* prepend_scheme "first": only the text's first stretch gets the ▁ prefix. */
    encode_expect(tok, "<s>hello", false, (int32_t[]){SP_BOS, SP_H, SP_E, SP_LLO}, 4);
    decode_expect(tok, (int32_t[]){SP_SPACE_HELLO, SP_SPACE_WORLD}, 2, "hello world");
    ck_assert(!exo_tokenizer_adds_bos(tok)); /* add_bos_token: false */
    /* Streaming agrees with the whole decode. */
    int32_t *ids;
    size_t n;
    const char *s = "hello world h\xC3\xA9llo";
    ck_assert_int_eq(exo_tokenizer_encode(tok, s, strlen(s), false, &ids, &n), EXO_OK);
    stream_and_check(tok, ids, n);
    free(ids);
    exo_tokenizer_free(tok);
    fixture_remove_dir(dir);
}
END_TEST

/* ---------------------------------------------------------------- errors */

static void expect_load_error(const char *json, exo_status want, const char *needle) {
    char *dir = fixture_make_dir();
    ck_assert_ptr_nonnull(dir);
    ck_assert(fixture_write(dir, "tokenizer.json", json));
    exo_tokenizer *tok = (exo_tokenizer *)&tok;
    exo_error_clear();
    exo_status st = exo_tokenizer_load(dir, &tok);
    ck_assert_int_eq(st, want);
    ck_assert_ptr_null(tok);
    const char *msg = exo_error_message();
    ck_assert_msg(strstr(msg, dir) && strstr(msg, "tokenizer.json"), "message \"%s\" must name the file", msg);
    ck_assert_msg(strstr(msg, needle), "message \"%s\" must mention \"%s\"", msg, needle);
    fixture_remove_dir(dir);
}

START_TEST(test_unsupported_model_types) {
    expect_load_error("{\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"a\":0},\"unk_token\":\"a\"}}",
                      EXO_ERR_UNSUPPORTED, "WordPiece");
    expect_load_error("{\"model\":{\"type\":\"Unigram\",\"vocab\":[[\"a\",0.0]]}}", EXO_ERR_UNSUPPORTED,
                      "Unigram");
    expect_load_error("{\"pre_tokenizer\":{\"type\":\"BertPreTokenizer\"},"
                      "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}",
                      EXO_ERR_UNSUPPORTED, "BertPreTokenizer");
    expect_load_error("{\"normalizer\":{\"type\":\"Lowercase\"},"
                      "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}",
                      EXO_ERR_UNSUPPORTED, "Lowercase");
}
END_TEST

START_TEST(test_malformed_files) {
    expect_load_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0,}", EXO_ERR_FORMAT, "JSON");
    expect_load_error("[1, 2, 3]", EXO_ERR_FORMAT, "object");
    expect_load_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-3},\"merges\":[]}}", EXO_ERR_FORMAT,
                      "vocab");
    expect_load_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"a b\"]}}",
                      EXO_ERR_FORMAT, "merges[0]");
    expect_load_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[[\"a\",\"zz\"]]}}",
                      EXO_ERR_FORMAT, "zz");
    expect_load_error("{\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(unclosed\"},"
                      "\"behavior\":\"Isolated\"},\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}",
                      EXO_ERR_FORMAT, "regex");
}
END_TEST

START_TEST(test_missing_file) {
    exo_tokenizer *tok = NULL;
    ck_assert_int_eq(exo_tokenizer_load("/nonexistent/exo-model", &tok), EXO_ERR_IO);
    ck_assert_ptr_null(tok);
    ck_assert_ptr_nonnull(strstr(exo_error_message(), "/nonexistent/exo-model/tokenizer.json"));
}
END_TEST

/* A config file that exists but is broken is an error naming it. */
START_TEST(test_malformed_config) {
    char *dir = fixture_make_dir();
    ck_assert(fixture_write_sentencepiece(dir, false));
    ck_assert(fixture_write(dir, "generation_config.json", "{\"eos_token_id\": [2, 99999]}"));
    exo_tokenizer *tok = NULL;
    ck_assert_int_eq(exo_tokenizer_load(dir, &tok), EXO_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(exo_error_message(), "generation_config.json"));
    ck_assert(fixture_write(dir, "generation_config.json", "{\"eos_token_id\": [2, 1"));
    ck_assert_int_eq(exo_tokenizer_load(dir, &tok), EXO_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(exo_error_message(), "generation_config.json"));
    fixture_remove_dir(dir);
}
END_TEST

START_TEST(test_bad_utf8_rejected) {
    exo_tokenizer *tok = load_ok(HF_TINY "/llama");
    static const char *const bad[] = {
        "abc\x80",           /* lone continuation */
        "\xC0\x80",          /* overlong NUL */
        "\xE0\x80\xAF",      /* overlong */
        "\xED\xA0\x80",      /* surrogate */
        "ok \xE2\x82",       /* truncated */
        "\xF5\x80\x80\x80",  /* beyond U+10FFFF */
        "\xF4\x90\x80\x80",  /* beyond U+10FFFF */
        "\xFF",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int32_t *ids = (int32_t *)&ids;
        size_t n = 7;
        ck_assert_int_eq(exo_tokenizer_encode(tok, bad[i], strlen(bad[i]), false, &ids, &n),
                         EXO_ERR_INVALID_ARG);
        ck_assert_ptr_null(ids);
        ck_assert_uint_eq(n, 0);
        ck_assert_ptr_nonnull(strstr(exo_error_message(), "UTF-8"));
    }
    exo_tokenizer_free(tok);
}
END_TEST

START_TEST(test_decode_unknown_id) {
    exo_tokenizer *tok = load_ok(HF_TINY "/llama");
    char *text = NULL;
    size_t len;
    ck_assert_int_eq(exo_tokenizer_decode(tok, (int32_t[]){3, 512}, 2, &text, &len), EXO_ERR_INVALID_ARG);
    ck_assert_ptr_null(text);
    ck_assert_int_eq(exo_tokenizer_decode(tok, (int32_t[]){-1}, 1, &text, &len), EXO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(exo_error_message(), "-1"));
    exo_tokenizer_free(tok);
}
END_TEST

/* A regex that backtracks over a long run of spaces still works (JIT stack fallback). */
START_TEST(test_long_whitespace_run) {
    exo_tokenizer *tok = load_ok(HF_TINY "/llama");
    size_t n = 200000;
    char *s = malloc(n + 2);
    memset(s, ' ', n);
    s[n] = 'x';
    s[n + 1] = '\0';
    roundtrip(tok, s);
    free(s);
    exo_tokenizer_free(tok);
}
END_TEST

/* ---------------------------------------------------------------- pipeline pieces */

static exo_tokenizer *load_json(const char *json, char **dir) {
    *dir = fixture_make_dir();
    ck_assert_ptr_nonnull(*dir);
    ck_assert(fixture_write(*dir, "tokenizer.json", json));
    return load_ok(*dir);
}

/* Pre-tokenizes text and compares the pieces with want (a NULL-terminated list). */
static void expect_pieces(const exo_tokenizer *tok, const char *text, const char *const *want) {
    exo_regex_budget budget;
    ck_assert_int_eq(exo_regex_budget_init(&budget), EXO_OK);
    exo_tok_pieces p = {0};
    ck_assert_int_eq(exo_tok_pretokenize(tok, text, strlen(text), true, &budget, &p), EXO_OK);
    size_t n_want = 0;
    while (want[n_want]) n_want++;
    ck_assert_msg(p.n == n_want, "\"%s\": %zu pieces, want %zu", text, p.n, n_want);
    for (size_t i = 0; i < n_want; i++) {
        size_t len = p.starts[i + 1] - p.starts[i];
        ck_assert_msg(len == strlen(want[i]) && !memcmp(p.text.data + p.starts[i], want[i], len),
                      "\"%s\": piece %zu is \"%.*s\", want \"%s\"", text, i, (int)len,
                      p.text.data + p.starts[i], want[i]);
    }
    exo_tok_pieces_free(&p);
    exo_regex_budget_free(&budget);
}

START_TEST(test_split_behaviors) {
    static const char *const behaviors[] = {"Isolated", "Removed", "MergedWithPrevious",
                                            "MergedWithNext", "Contiguous"};
    static const char *const want[][7] = {
        {"a", "-", "b", "-", "-", "c", NULL},
        {"a", "b", "c", NULL},
        {"a-", "b-", "-", "c", NULL},
        {"a", "-b", "-", "-c", NULL},
        {"a", "-", "b", "--", "c", NULL},
    };
    for (size_t i = 0; i < 5; i++) {
        char json[512];
        snprintf(json, sizeof json,
                 "{\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"String\":\"-\"},"
                 "\"behavior\":\"%s\",\"invert\":false},"
                 "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}",
                 behaviors[i]);
        char *dir;
        exo_tokenizer *tok = load_json(json, &dir);
        expect_pieces(tok, "a-b--c", want[i]);
        exo_tokenizer_free(tok);
        fixture_remove_dir(dir);
    }
}
END_TEST

/* The Llama-3 regex with "Isolated": matches and the gaps between them are pieces. */
START_TEST(test_llama3_regex_pieces) {
    exo_tokenizer *tok = load_ok(HF_TINY "/llama3");
    expect_pieces(tok, "  leading spaces", (const char *const[]){" ", " leading", " spaces", NULL});
    expect_pieces(tok, "It's 1234567!\r\n\n x",
                  (const char *const[]){"It", "'s", " ", "123", "456", "7", "!\r\n\n", " x", NULL});
    expect_pieces(tok, "\xC3\xBC" "ber  \xE6\x97\xA5\xE6\x9C\xAC",
                  (const char *const[]){"\xC3\xBC" "ber", " ", " \xE6\x97\xA5\xE6\x9C\xAC", NULL});
    exo_tokenizer_free(tok);
}
END_TEST

/* lstrip / rstrip added tokens swallow the whitespace around them. */
START_TEST(test_added_token_strip) {
    char *dir;
    exo_tokenizer *tok = load_json(
        "{\"added_tokens\":[{\"id\":1,\"content\":\"<m>\",\"lstrip\":true,\"rstrip\":true,"
        "\"special\":true,\"normalized\":false},{\"id\":2,\"content\":\"<mm>\",\"special\":true,"
        "\"normalized\":false}],"
        "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\" \":3},\"merges\":[]}}",
        &dir);
    exo_tok_segments seg = {0};
    const char *text = "a  <m>\t a<mm> a";
    exo_regex_budget budget;
    ck_assert_int_eq(exo_regex_budget_init(&budget), EXO_OK);
    ck_assert_int_eq(exo_tok_split_added(tok, text, strlen(text), false, &budget, &seg), EXO_OK);
    exo_regex_budget_free(&budget);
    ck_assert_uint_eq(seg.len, 5);
    ck_assert_int_eq(seg.data[0].added_id, -1); /* "a" */
    ck_assert_uint_eq(seg.data[0].len, 1);
    ck_assert_int_eq(seg.data[1].added_id, 1); /* "  <m>\t " */
    ck_assert_uint_eq(seg.data[1].start, 1);
    ck_assert_uint_eq(seg.data[1].len, 7);
    ck_assert_int_eq(seg.data[2].added_id, -1); /* "a" */
    ck_assert_int_eq(seg.data[3].added_id, 2);  /* "<mm>": no strip */
    ck_assert_int_eq(seg.data[4].added_id, -1); /* " a" */
    ck_assert_uint_eq(seg.data[4].len, 2);
    free(seg.data);
    /* Without a pre-tokenizer the spaces become their own token. */
    encode_expect(tok, text, false, (int32_t[]){0, 1, 0, 2, 3, 0}, 6);
    exo_tokenizer_free(tok);
    fixture_remove_dir(dir);
}
END_TEST

/* Random code points from every plane round-trip, random bytes are accepted or rejected
 * cleanly, and streaming never emits broken UTF-8 (deterministic xorshift). */
START_TEST(test_random_text) {
    exo_tokenizer *tok = load_ok(LICENSES);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    char buf[512];
    for (int iter = 0; iter < 300; iter++) {
        size_t n = 0;
        while (n < sizeof buf - 8) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            uint32_t cp;
            switch (x % 4) {
            case 0: cp = 0x20 + (uint32_t)(x >> 8) % 0x5F; break;           /* ASCII */
            case 1: cp = (uint32_t)(x >> 8) % 0x800; break;                  /* 2-byte, controls */
            case 2: cp = 0x3000 + (uint32_t)(x >> 8) % 0x7000; break;        /* CJK-ish */
            default: cp = 0x10000 + (uint32_t)(x >> 8) % 0x100000; break;    /* astral */
            }
            if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF)) continue;
            n += (size_t)exo_utf8_encode(cp, buf + n);
            if ((x >> 40) % 16 == 0) break;
        }
        buf[n] = '\0';
        roundtrip(tok, buf);
        int32_t *ids;
        size_t n_ids;
        ck_assert_int_eq(exo_tokenizer_encode(tok, buf, n, false, &ids, &n_ids), EXO_OK);
        stream_and_check(tok, ids, n_ids);
        free(ids);
        /* The same bytes, scrambled: valid or not, never a crash. */
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[i] = (char)(x >> 24);
        }
        exo_status st = exo_tokenizer_encode(tok, buf, n, false, &ids, &n_ids);
        ck_assert(st == EXO_OK || st == EXO_ERR_INVALID_ARG);
        if (st == EXO_OK) free(ids);
    }
    exo_tokenizer_free(tok);
}
END_TEST

static Suite *tokenizer_suite(void) {
    Suite *s = suite_create("tokenizer");
    TCase *tc = tcase_create("reference");
    tcase_add_test(tc, test_cases_encode_like_hf);
    tcase_add_test(tc, test_cases_decode_like_hf);
    tcase_add_test(tc, test_golden_prompts_encode_like_hf);
    tcase_add_test(tc, test_golden_greedy_decodes_like_hf);
    tcase_add_test(tc, test_special_ids_from_config);
    tcase_add_test(tc, test_explicit_add_bos_token_wins);
    tcase_add_test(tc, test_special_ids_qwen_style);
    tcase_add_test(tc, test_bos_id_in_a_vocab_hole_is_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("roundtrip");
    tcase_add_test(tc, test_roundtrip_bytelevel);
    tcase_add_test(tc, test_roundtrip_larger_vocab);
    tcase_add_test(tc, test_literal_special_tokens_match);
    tcase_add_test(tc, test_add_bos_prepends_once);
    tcase_add_test(tc, test_long_whitespace_run);
    tcase_add_test(tc, test_random_text);
    suite_add_tcase(s, tc);
    tc = tcase_create("stream");
    tcase_add_test(tc, test_stream_never_splits_characters);
    tcase_add_test(tc, test_stream_flush_replaces_unfinished);
    tcase_add_test(tc, test_stream_replaces_invalid_bytes);
    suite_add_tcase(s, tc);
    tc = tcase_create("sentencepiece");
    tcase_add_test(tc, test_sentencepiece_normalizer_encode);
    tcase_add_test(tc, test_sentencepiece_normalizer_decode);
    tcase_add_test(tc, test_sentencepiece_metaspace);
    suite_add_tcase(s, tc);
    tc = tcase_create("pipeline");
    tcase_add_test(tc, test_split_behaviors);
    tcase_add_test(tc, test_llama3_regex_pieces);
    tcase_add_test(tc, test_added_token_strip);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_test(tc, test_unsupported_model_types);
    tcase_add_test(tc, test_malformed_files);
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_malformed_config);
    tcase_add_test(tc, test_bad_utf8_rejected);
    tcase_add_test(tc, test_decode_unknown_id);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return exo_check_run(tokenizer_suite(), CK_FORK_GETENV);
}
