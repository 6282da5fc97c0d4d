/* Helpers for the tokenizer tests: JSON files in, scratch model directories out. */
#ifndef EXO_TEST_TOKENIZER_FIXTURES_H
#define EXO_TEST_TOKENIZER_FIXTURES_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parses a JSON file; NULL (with a message on stderr) when it cannot. */
cJSON *fixture_read_json(const char *path);

/* A fresh empty directory under $TMPDIR (or /tmp); the caller removes it with
 * fixture_remove_dir. Returns a malloc'd path. */
char *fixture_make_dir(void);
bool fixture_write(const char *dir, const char *name, const char *content);
void fixture_remove_dir(char *dir);

/* A small SentencePiece-style BPE tokenizer.json (vocab: <unk> <s> </s>, <0x00>..<0xFF> at
 * ids 3..258, then the pieces below). metaspace: Metaspace pre-tokenizer and decoder;
 * otherwise the Prepend + Replace normalizer with the Replace/ByteFallback/Fuse/Strip
 * decoder (Llama-2 style). */
enum {
    SP_UNK = 0, SP_BOS = 1, SP_EOS = 2, SP_BYTE0 = 3,
    SP_SPACE = 259, SP_H, SP_E, SP_L, SP_O, SP_W, SP_R, SP_D,
    SP_SPACE_H, SP_LL, SP_SPACE_HE, SP_LLO, SP_SPACE_HELLO, SP_SPACE_W, SP_OR, SP_SPACE_WOR, SP_LD,
    SP_SPACE_WORLD
};
bool fixture_write_sentencepiece(const char *dir, bool metaspace);

/* The ids of a JSON array of integers; false if it is not one. */
bool fixture_ids(const cJSON *array, int32_t **ids, size_t *n);

#endif
