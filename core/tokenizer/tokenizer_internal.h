/* Internals shared by the tokenizer's files: the loaded tokenizer, its lookup tables, and the
 * steps of the tokenizers-library pipeline (normalizer -> pre-tokenizer -> BPE model ->
 * decoder) read from tokenizer.json. One file per concept:
 *   tokenizer_utf8.c        growable byte buffers (UTF-8 itself: core/base/utf8.c)
 *   tokenizer_maps.c        string -> id and (id, id) -> merge hash maps
 *   tokenizer_bytelevel.c   the GPT-2 byte <-> unicode mapping
 *   tokenizer_load.c        tokenizer.json: model, vocab, merges, added tokens
 *   tokenizer_pipeline.c    tokenizer.json: normalizer / pre-tokenizer / decoder sections
 *   tokenizer_special.c     BOS / EOS from tokenizer_config, generation_config, config
 *   tokenizer_added.c       matching added tokens in text
 *   tokenizer_normalize.c   normalizers
 *   tokenizer_pretokenize.c pre-tokenizers (regex splits, Metaspace)
 *   tokenizer_regex.c       regex matching under a work bound per encode call
 *   tokenizer_bpe.c         the rank-ordered merge loop over one word
 *   tokenizer_encode.c      the encode pipeline
 *   tokenizer_decode.c      decode and the streaming detokenizer */
#ifndef EXO_TOKENIZER_TOKENIZER_INTERNAL_H
#define EXO_TOKENIZER_TOKENIZER_INTERNAL_H

#include <stdlib.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "base/utf8.h"
#include "tokenizer/tokenizer.h"

/* ---------------------------------------------------------------- output buffers (UTF-8: base/utf8.h) */

typedef struct exo_tok_buf {
    char *data;
    size_t len, cap;
} exo_tok_buf;

exo_status exo_tok_buf_reserve(exo_tok_buf *b, size_t extra);
exo_status exo_tok_buf_append(exo_tok_buf *b, const void *data, size_t n);
static inline void exo_tok_buf_free(exo_tok_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

typedef struct exo_tok_ids {
    int32_t *data;
    size_t len, cap;
} exo_tok_ids;

exo_status exo_tok_ids_push(exo_tok_ids *v, int32_t id);

/* ---------------------------------------------------------------- hash maps */

/* Exact byte string -> id. Keys are not copied: they must outlive the map. */
typedef struct exo_strmap_entry {
    const char *key;
    uint32_t len;
    int32_t value;
} exo_strmap_entry;

typedef struct exo_strmap {
    exo_strmap_entry *slots;
    size_t mask, count;
} exo_strmap;

exo_status exo_strmap_init(exo_strmap *m, size_t expected);
/* Inserts or overwrites. */
exo_status exo_strmap_put(exo_strmap *m, const char *key, size_t len, int32_t value);
/* Returns the value, or -1 when absent. */
int32_t exo_strmap_get(const exo_strmap *m, const char *key, size_t len);
void exo_strmap_free(exo_strmap *m);

/* (left id, right id) -> (rank, merged id). */
typedef struct exo_merge {
    int32_t rank;
    int32_t merged;
} exo_merge;

typedef struct exo_pairmap_entry {
    uint64_t key; /* (left << 32 | right) + 1; 0 marks an empty slot */
    exo_merge merge;
} exo_pairmap_entry;

typedef struct exo_pairmap {
    exo_pairmap_entry *slots;
    size_t mask, count;
} exo_pairmap;

exo_status exo_pairmap_init(exo_pairmap *m, size_t expected);
exo_status exo_pairmap_put(exo_pairmap *m, int32_t left, int32_t right, exo_merge merge);
/* Returns the merge or NULL. */
const exo_merge *exo_pairmap_get(const exo_pairmap *m, int32_t left, int32_t right);
void exo_pairmap_free(exo_pairmap *m);

/* ---------------------------------------------------------------- byte-level mapping */

/* GPT-2's reversible byte -> printable code point mapping, as UTF-8 (1 or 2 bytes). */
typedef struct exo_bytelevel_char {
    char utf8[2];
    uint8_t len;
} exo_bytelevel_char;

const exo_bytelevel_char *exo_bytelevel_table(void);
/* The byte a mapped code point stands for, or -1 when cp is not one of the 256 mapped ones. */
int exo_bytelevel_byte(uint32_t cp);

/* ---------------------------------------------------------------- pipeline steps */

typedef enum exo_split_behavior {
    EXO_SPLIT_REMOVED,
    EXO_SPLIT_ISOLATED,
    EXO_SPLIT_MERGED_WITH_PREVIOUS,
    EXO_SPLIT_MERGED_WITH_NEXT,
    EXO_SPLIT_CONTIGUOUS,
} exo_split_behavior;

typedef struct exo_regex {
    pcre2_code *code;
    char *label; /* "<path>: <step> pattern '<source, truncated>'", for messages */
} exo_regex;

/* The regex work allowed to one encode call (tokenizer_regex.c) and its scratch: match
 * context and match data. origin: the input byte where the text being searched starts, and
 * normalized: whether that offset counts bytes of the normalized text; both only for
 * messages. */
typedef struct exo_regex_budget {
    pcre2_match_context *ctx;
    pcre2_match_data *md;
    uint64_t left; /* PCRE2 match-limit units */
    size_t origin;
    bool normalized;
} exo_regex_budget;

exo_status exo_regex_budget_init(exo_regex_budget *b);
void exo_regex_budget_free(exo_regex_budget *b);

/* The leftmost match in text[at..len) (options: PCRE2_ANCHORED or 0), charged to b. *found
 * false: no match. A pattern that exhausts the budget, or the depth or heap limit, is an error
 * naming the pattern and the position; text is valid UTF-8. */
exo_status exo_regex_search(const exo_regex *re, const char *text, size_t len, size_t at,
                            uint32_t options, exo_regex_budget *b, bool *found, size_t *start,
                            size_t *end);

/* Whether the pattern matches at the start of text; the budget grows by text's length. */
exo_status exo_regex_match_here(const exo_regex *re, const char *text, size_t len,
                                exo_regex_budget *b, bool *matched);

typedef enum exo_norm_kind {
    EXO_NORM_PREPEND, /* text: prepended to every non-empty segment */
    EXO_NORM_REPLACE, /* literal (regex NULL) or regex pattern -> text */
} exo_norm_kind;

typedef struct exo_norm_step {
    exo_norm_kind kind;
    char *pattern; /* literal pattern (REPLACE without regex) */
    size_t pattern_len;
    exo_regex regex; /* REPLACE with a Regex pattern */
    char *text;
    size_t text_len;
} exo_norm_step;

typedef enum exo_pretok_kind {
    EXO_PRETOK_SPLIT,     /* regex split with a behavior */
    EXO_PRETOK_BYTELEVEL, /* optional prefix space (+ GPT-2 regex split as a SPLIT before it) */
    EXO_PRETOK_METASPACE, /* ' ' -> replacement, optional prefix, optional split */
} exo_pretok_kind;

typedef enum exo_prepend_scheme {
    EXO_PREPEND_ALWAYS,
    EXO_PREPEND_FIRST, /* only on the piece that starts the input text */
    EXO_PREPEND_NEVER,
} exo_prepend_scheme;

typedef struct exo_pretok_step {
    exo_pretok_kind kind;
    exo_regex regex;
    exo_split_behavior behavior;
    bool invert;
    bool add_prefix_space; /* BYTELEVEL */
    char replacement[5];   /* METASPACE, UTF-8 of the replacement character */
    uint8_t replacement_len;
    exo_prepend_scheme prepend;
    bool split;
} exo_pretok_step;

typedef enum exo_dec_kind {
    EXO_DEC_REPLACE,      /* literal pattern -> content, per token */
    EXO_DEC_BYTEFALLBACK, /* "<0xXX>" -> that byte */
    EXO_DEC_BYTELEVEL,    /* mapped code points -> bytes */
    EXO_DEC_METASPACE,    /* replacement -> ' ', dropped in the first token */
    EXO_DEC_FUSE,         /* later steps see one string */
    EXO_DEC_STRIP,        /* strip `start` leading / `stop` trailing `content` characters */
} exo_dec_kind;

typedef struct exo_dec_step {
    exo_dec_kind kind;
    char *pattern;
    size_t pattern_len;
    char *content;
    size_t content_len;
    uint32_t start, stop;
    exo_prepend_scheme prepend;
} exo_dec_step;

typedef struct exo_added_token {
    const char *content; /* = the token's text in the id table */
    size_t len;
    int32_t id;
    bool special, lstrip, rstrip, single_word, normalized;
} exo_added_token;

/* ---------------------------------------------------------------- the tokenizer */

struct exo_tokenizer {
    char *path; /* tokenizer.json, for messages */

    /* id -> text; texts live in `arena` */
    uint32_t n_ids;
    const char **id_text;
    uint32_t *id_len;
    uint8_t *id_flags; /* EXO_TOK_* */
    char *arena;

    exo_strmap vocab; /* model vocab: text -> id */
    exo_pairmap merges;
    int32_t unk_id; /* -1: none */
    bool byte_fallback, fuse_unk, ignore_merges;
    int32_t byte_ids[256]; /* "<0xXX>" ids for byte fallback, -1 when absent */

    exo_added_token *added;
    size_t n_added;
    exo_strmap added_map; /* content -> id */
    bool any_normalized_added;
    /* One Unicode word character (the regex crate's \w, which the tokenizers library tests a
     * single_word token's neighbours with); compiled only when some added token is single_word. */
    exo_regex word_char;

    exo_norm_step *norm;
    size_t n_norm;
    bool has_normalizer;
    exo_pretok_step *pretok;
    size_t n_pretok;
    bool byte_level; /* a ByteLevel pre-tokenizer maps bytes before BPE */
    exo_dec_step *dec;
    size_t n_dec;
    bool has_decoder;

    int32_t bos;
    bool adds_bos;
    int32_t *eos;
    size_t n_eos;
};

enum { EXO_TOK_ADDED = 1, EXO_TOK_SPECIAL = 2 };

/* Loading helpers (tokenizer_load.c / tokenizer_pipeline.c / tokenizer_special.c). */

/* Reads and parses a JSON file of a model directory (model/json_file.h); errors name the file. */
struct cJSON;
exo_status exo_tok_read_json(const char *path, struct cJSON **out);

exo_status exo_regex_compile(exo_regex *re, const char *pattern, size_t len, bool literal,
                             const char *path, const char *what);
void exo_regex_free(exo_regex *re);

exo_status exo_tok_parse_normalizer(exo_tokenizer *tok, const struct cJSON *node);
exo_status exo_tok_parse_pretokenizer(exo_tokenizer *tok, const struct cJSON *node);
exo_status exo_tok_parse_decoder(exo_tokenizer *tok, const struct cJSON *node);
/* BOS / EOS / add-BOS default from the post-processor and the config files in dir. */
exo_status exo_tok_load_special(exo_tokenizer *tok, const char *dir,
                                const struct cJSON *post_processor);

/* Encoding stages. */

/* One segment of text between added tokens. */
typedef struct exo_tok_segment {
    size_t start, len; /* in the text being split */
    int32_t added_id;  /* >= 0: this segment is that added token */
} exo_tok_segment;

typedef struct exo_tok_segments {
    exo_tok_segment *data;
    size_t len, cap;
} exo_tok_segments;

/* Splits text at the added tokens whose "normalized" flag equals want_normalized,
 * leftmost-longest, honouring lstrip/rstrip/single_word (a regex, charged to budget). */
exo_status exo_tok_split_added(const exo_tokenizer *tok, const char *text, size_t len,
                               bool want_normalized, exo_regex_budget *budget,
                               exo_tok_segments *out);

/* Applies the normalizer to one segment, appending to out. */
exo_status exo_tok_normalize(const exo_tokenizer *tok, const char *text, size_t len,
                             exo_regex_budget *budget, exo_tok_buf *out);

/* A list of pieces (words) in one buffer: piece i is data[starts[i] .. starts[i + 1]).
 * origins[i]: where piece i began in the text given to the pre-tokenizer (for messages). */
typedef struct exo_tok_pieces {
    exo_tok_buf text;
    size_t *starts;  /* n + 1 entries */
    size_t *origins; /* n entries */
    size_t n, cap;
    size_t open_origin; /* origin of the piece being built */
} exo_tok_pieces;

void exo_tok_pieces_free(exo_tok_pieces *p);

/* Runs the pre-tokenizer over one normalized segment. at_text_start: the segment begins the
 * input (Metaspace "first"). The budget is the caller's (one per encode call); its origin is
 * the input offset of text. */
exo_status exo_tok_pretokenize(const exo_tokenizer *tok, const char *text, size_t len,
                               bool at_text_start, exo_regex_budget *budget, exo_tok_pieces *out);

/* Regex matches [start, end) pairs of one subject; the budget grows by the subject's length. */
exo_status exo_regex_find_all(const exo_regex *re, const char *text, size_t len,
                              exo_regex_budget *b, size_t **spans, size_t *n_spans);

/* BPE over one pre-tokenized word (already byte-level mapped when the model is byte-level),
 * appending ids. */
exo_status exo_tok_bpe_word(const exo_tokenizer *tok, const char *word, size_t len,
                            exo_tok_ids *out);

/* Decoding: the state the decoder chain carries from one token to the next. */
typedef struct exo_decode_state {
    size_t index;        /* tokens seen */
    uint32_t strip_left; /* leading characters a fused Strip may still remove */
    exo_tok_buf a, b;    /* scratch, reused from token to token */
} exo_decode_state;

void exo_decode_state_init(const exo_tokenizer *tok, exo_decode_state *st);
void exo_decode_state_free(exo_decode_state *st);
/* Appends the bytes token `id` contributes at this point of the sequence. */
exo_status exo_decode_token(const exo_tokenizer *tok, exo_decode_state *st, int32_t id,
                            exo_tok_buf *out);

#endif
