/* libFuzzer harness: tokenizer.json loading (core/tokenizer/tokenizer_load.c and the pipeline it
 * builds), encode, decode and the streaming detokenizer.
 *
 * Input layout, split at the first three NUL bytes (JSON text never holds a raw NUL):
 *   tokenizer.json \0 tokenizer_config.json \0 generation_config.json \0 text
 * An empty or missing part means that file is absent. The text may itself hold NULs (they are
 * ordinary characters to the encoder). The files go into a scratch model directory and the
 * tokenizer is loaded as a model's would be; then the text is encoded, the ids decoded, and the
 * same ids streamed through exo_text_stream, whose pieces must concatenate to the decode when
 * that is valid UTF-8 (tokenizer.h's promise). The text's bytes, read as ids, also go to decode
 * and the stream: unknown ids must be refused cleanly. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/utf8.h"
#include "fuzz_scratch.h"
#include "tokenizer/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_RAW_IDS 32

static void finding(const char *what) {
    fprintf(stderr, "fuzz finding: %s\n", what);
    abort();
}

/* Strict UTF-8, as the stream promises to emit (the core's checker: the stream under test is
 * a different component, the detokenizer). */
static bool valid_utf8(const unsigned char *s, size_t n) { return exo_utf8_check(s, n) == n; }

/* Next part up to a NUL (or the end); *rest moves past the NUL. */
static void take_part(const uint8_t **rest, const uint8_t *end, const uint8_t **part, size_t *len) {
    const uint8_t *p = *rest;
    const uint8_t *nul = p < end ? memchr(p, 0, (size_t)(end - p)) : NULL;
    *part = p;
    *len = (size_t)((nul ? nul : end) - p);
    *rest = nul ? nul + 1 : end;
}

static void write_optional(const char *name, const uint8_t *part, size_t len) {
    if (len) fuzz_scratch_write(name, part, len);
    else fuzz_scratch_remove(name);
}

/* Streams ids; returns the concatenated pieces (malloc'd) or NULL when a push failed. A failed
 * push is allowed only for an id decode also refuses (decode_ok false). */
static char *stream_ids(const exo_tokenizer *tok, const int32_t *ids, size_t n, bool decode_ok,
                        size_t *out_len) {
    exo_text_stream *ts = NULL;
    exo_error_clear();
    if (exo_text_stream_create(tok, &ts) != EXO_OK) finding("exo_text_stream_create failed");
    size_t cap = 64, len = 0;
    char *all = malloc(cap);
    if (!all) abort();
    bool failed = false;
    for (size_t i = 0; i < n && !failed; i++) {
        const char *piece = NULL;
        size_t plen = 0;
        exo_error_clear();
        exo_status st = exo_text_stream_push(ts, ids[i], &piece, &plen);
        fuzz_check_error_detail(st, NULL);
        if (st) {
            if (decode_ok) finding("stream push refused an id that decode accepts");
            failed = true;
            break;
        }
        if (!piece) finding("stream push gave a NULL piece");
        if (!valid_utf8((const unsigned char *)piece, plen)) finding("stream piece is not valid UTF-8");
        while (len + plen + 1 > cap) {
            cap *= 2;
            all = realloc(all, cap);
            if (!all) abort();
        }
        memcpy(all + len, piece, plen);
        len += plen;
    }
    if (!failed) {
        const char *piece = NULL;
        size_t plen = 0;
        if (exo_text_stream_flush(ts, &piece, &plen) != EXO_OK) finding("stream flush failed");
        if (!valid_utf8((const unsigned char *)piece, plen)) finding("flushed piece is not valid UTF-8");
        while (len + plen + 1 > cap) {
            cap *= 2;
            all = realloc(all, cap);
            if (!all) abort();
        }
        memcpy(all + len, piece, plen);
        len += plen;
    }
    exo_text_stream_free(ts);
    if (failed) {
        free(all);
        return NULL;
    }
    *out_len = len;
    return all;
}

/* decode(ids) and the stream of the same ids must agree. */
static void decode_and_stream(const exo_tokenizer *tok, const int32_t *ids, size_t n,
                              bool ids_from_encode) {
    char *text = NULL;
    size_t len = 0;
    exo_error_clear();
    exo_status st = exo_tokenizer_decode(tok, ids, n, &text, &len);
    fuzz_check_error_detail(st, NULL);
    if (st && ids_from_encode) finding("decode refused ids that encode produced");
    size_t slen = 0;
    char *streamed = stream_ids(tok, ids, n, st == EXO_OK, &slen);
    if (!st && streamed && valid_utf8((const unsigned char *)text, len) &&
        (slen != len || memcmp(streamed, text, len) != 0))
        finding("the stream's pieces differ from decode of the same ids (valid UTF-8)");
    free(streamed);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *rest = data, *end = data + size;
    const uint8_t *tj, *tc, *gc;
    size_t tj_len, tc_len, gc_len;
    take_part(&rest, end, &tj, &tj_len);
    take_part(&rest, end, &tc, &tc_len);
    take_part(&rest, end, &gc, &gc_len);
    const char *text = (const char *)rest;
    size_t text_len = (size_t)(end - rest);

    fuzz_scratch_write("tokenizer.json", tj, tj_len);
    write_optional("tokenizer_config.json", tc, tc_len);
    write_optional("generation_config.json", gc, gc_len);

    const char *dir = fuzz_scratch_dir();
    exo_tokenizer *tok = NULL;
    exo_error_clear();
    exo_status st = exo_tokenizer_load_file(fuzz_scratch_path("tokenizer.json"), &tok);
    fuzz_check_error_detail(st, dir);
    if (st) return 0;

    uint32_t vocab = exo_tokenizer_vocab_size(tok);
    const int32_t *eos = NULL;
    size_t n_eos = exo_tokenizer_eos(tok, &eos);
    for (size_t i = 0; i < n_eos; i++)
        (void)exo_tokenizer_is_special(tok, eos[i]);
    int32_t bos = exo_tokenizer_bos(tok);
    if (bos >= (int64_t)vocab) finding("BOS id outside the vocabulary");

    int32_t *ids = NULL;
    size_t n_ids = 0;
    exo_error_clear();
    st = exo_tokenizer_encode(tok, text, text_len, exo_tokenizer_adds_bos(tok), &ids, &n_ids);
    fuzz_check_error_detail(st, NULL);
    if (!st) {
        for (size_t i = 0; i < n_ids; i++) {
            if (ids[i] < 0 || (uint32_t)ids[i] >= vocab) finding("encode produced an id outside the vocabulary");
            size_t tlen = 0;
            const char *t = exo_tokenizer_token_text(tok, ids[i], &tlen);
            /* Every id encode emits is a token with a string (the vocab's or an added token's). */
            if (!t) {
                fprintf(stderr, "id %d (of %zu) at index %zu\n", ids[i], n_ids, i);
                finding("encode produced an id with no token text");
            }
            if (exo_tokenizer_token_id(tok, t, tlen) < 0) finding("token_id of a token's own text is -1");
        }
        decode_and_stream(tok, ids, n_ids, true);
    }
    free(ids);

    /* The text's bytes as ids in [-1, vocab]: both ends of the range are unknown ids. */
    int32_t raw[FUZZ_MAX_RAW_IDS];
    size_t n_raw = 0;
    for (size_t i = 0; i + 4 <= text_len && n_raw < FUZZ_MAX_RAW_IDS; i += 4) {
        uint32_t v;
        memcpy(&v, text + i, 4);
        raw[n_raw++] = (int32_t)(v % ((uint64_t)vocab + 2)) - 1;
    }
    decode_and_stream(tok, raw, n_raw, false);

    exo_tokenizer_free(tok);
    return 0;
}
