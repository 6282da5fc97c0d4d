/* A small, valid byte-level BPE tokenizer in the Llama 3 layout, padded to the model's vocab:
 *
 *   ids 0..2      <|begin_of_text|>, <|end_of_text|>, <|pad|>   (added, special)
 *   ids 3..258    the 256 bytes, as GPT-2's byte-to-unicode characters
 *   then          merges that spell common English words (" the", "ing", ...), one token each
 *   then          <|unused_N|> up to vocab_size (reachable by no merge, so never produced)
 *
 * Synthetic weights make the text meaningless; the tokenizer only has to be real enough that
 * every code path (encode, decode, BOS, EOS) works as it does for a downloaded model. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synth.h"

#define TOKEN_CAP 64

static const char *const special_names[SYNTH_N_SPECIAL] = {"<|begin_of_text|>", "<|end_of_text|>", "<|pad|>"};

/* Words whose prefixes become merges, in priority order (space-led words as in GPT-2). */
static const char *const merge_words[] = {
    " the", " of", " and", " to", " in", " is", " that", " for", " it", " with", " as", " was", " on",
    "ing", "er", "ed", "es", " be", " at", " by", " this", " have", " from", " or", " an", " are",
    " not", " which", " you", " all", " any", " person", " software", " permission", " granted",
    " free", " charge", " hereby", " copy", " copies", " notice", " conditions", " without",
    " limitation", " rights", " use", " modify", " merge", " publish", " distribute", " sell",
    " license", " provided", " shall", " included", " substantial", " portions", " warranty",
    " express", " implied", " including", " but", " limited", " fitness", " particular", " purpose",
    " authors", " holders", " liable", " claim", " damages", " other", " liability", " whether",
    " action", " contract", " tort", " otherwise", " arising", " connection", " dealings",
    " The", " A", " In", " It", " We", " model", " token", " memory", " bandwidth", " speed",
    "\n", "\n\n", "  ", "    ", ".", ",", " (", ")", "'s", "ly", "tion", "ment", "al", "re", "en",
};

/* GPT-2's byte-to-unicode table: printable Latin-1 bytes stand for themselves, the other 68
 * bytes take code points 256 and up, in byte order. Written as UTF-8. */
static void byte_token(unsigned byte, char out[4]) {
    unsigned cp;
    if ((byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || (byte >= 174 && byte <= 255)) {
        cp = byte;
    } else {
        unsigned n = 0;
        for (unsigned b = 0; b < byte; b++)
            if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))) n++;
        cp = 256 + n;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = '\0';
    } else {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        out[2] = '\0';
    }
}

typedef struct token_list {
    char (*text)[TOKEN_CAP];
    uint32_t n, cap;
} token_list;

static bool token_known(const token_list *t, const char *s) {
    for (uint32_t i = 0; i < t->n; i++)
        if (strcmp(t->text[i], s) == 0) return true;
    return false;
}

/* Adds the merges that build `word` left to right: (w[0..k), w[k]) -> w[0..k]. Each merged piece
 * becomes a token; a merge whose result exists already is skipped. Stops when the list is full. */
static void add_word_merges(token_list *merged, cJSON *merges, const char *word) {
    char piece[TOKEN_CAP] = "", next[TOKEN_CAP];
    size_t len = strlen(word);
    for (size_t k = 0; k < len && merged->n < merged->cap; k++) {
        char ch[4];
        byte_token((unsigned char)word[k], ch);
        snprintf(next, sizeof next, "%s%s", piece, ch);
        if (k > 0 && !token_known(merged, next)) {
            snprintf(merged->text[merged->n++], TOKEN_CAP, "%s", next);
            cJSON *pair = cJSON_CreateArray();
            cJSON_AddItemToArray(pair, cJSON_CreateString(piece));
            cJSON_AddItemToArray(pair, cJSON_CreateString(ch));
            cJSON_AddItemToArray(merges, pair);
        }
        snprintf(piece, sizeof piece, "%s", next);
    }
}

static cJSON *added_token(uint32_t id, const char *content) {
    cJSON *a = cJSON_CreateObject();
    cJSON_AddNumberToObject(a, "id", id);
    cJSON_AddStringToObject(a, "content", content);
    cJSON_AddBoolToObject(a, "single_word", false);
    cJSON_AddBoolToObject(a, "lstrip", false);
    cJSON_AddBoolToObject(a, "rstrip", false);
    cJSON_AddBoolToObject(a, "normalized", false);
    cJSON_AddBoolToObject(a, "special", true);
    return a;
}

/* Llama 3's pre-tokenizer: its split regex, then byte-level mapping without a second regex. */
static cJSON *pre_tokenizer(void) {
    cJSON *seq = cJSON_CreateObject();
    cJSON_AddStringToObject(seq, "type", "Sequence");
    cJSON *list = cJSON_AddArrayToObject(seq, "pretokenizers");
    cJSON *split = cJSON_CreateObject();
    cJSON_AddStringToObject(split, "type", "Split");
    cJSON *pattern = cJSON_AddObjectToObject(split, "pattern");
    cJSON_AddStringToObject(pattern, "Regex",
                            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+"
                            "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+");
    cJSON_AddStringToObject(split, "behavior", "Isolated");
    cJSON_AddBoolToObject(split, "invert", false);
    cJSON_AddItemToArray(list, split);
    cJSON *bl = cJSON_CreateObject();
    cJSON_AddStringToObject(bl, "type", "ByteLevel");
    cJSON_AddBoolToObject(bl, "add_prefix_space", false);
    cJSON_AddBoolToObject(bl, "trim_offsets", true);
    cJSON_AddBoolToObject(bl, "use_regex", false);
    cJSON_AddItemToArray(list, bl);
    return seq;
}

/* BOS first, as Llama 3's TemplateProcessing does. */
static cJSON *post_processor(void) {
    cJSON *pp = cJSON_CreateObject();
    cJSON_AddStringToObject(pp, "type", "TemplateProcessing");
    cJSON *single = cJSON_AddArrayToObject(pp, "single");
    cJSON *bos = cJSON_CreateObject();
    cJSON *st = cJSON_AddObjectToObject(bos, "SpecialToken");
    cJSON_AddStringToObject(st, "id", special_names[SYNTH_BOS_ID]);
    cJSON_AddNumberToObject(st, "type_id", 0);
    cJSON_AddItemToArray(single, bos);
    cJSON *seq = cJSON_CreateObject();
    cJSON *sa = cJSON_AddObjectToObject(seq, "Sequence");
    cJSON_AddStringToObject(sa, "id", "A");
    cJSON_AddNumberToObject(sa, "type_id", 0);
    cJSON_AddItemToArray(single, seq);
    cJSON *specials = cJSON_AddObjectToObject(pp, "special_tokens");
    cJSON *b = cJSON_AddObjectToObject(specials, special_names[SYNTH_BOS_ID]);
    cJSON_AddStringToObject(b, "id", special_names[SYNTH_BOS_ID]);
    cJSON *ids = cJSON_AddArrayToObject(b, "ids");
    cJSON_AddItemToArray(ids, cJSON_CreateNumber(SYNTH_BOS_ID));
    cJSON *toks = cJSON_AddArrayToObject(b, "tokens");
    cJSON_AddItemToArray(toks, cJSON_CreateString(special_names[SYNTH_BOS_ID]));
    return pp;
}

static int write_tokenizer_json(const char *dir, const synth_preset *p) {
    uint32_t base = SYNTH_N_SPECIAL + 256;
    if (p->vocab_size < base) {
        fprintf(stderr, "exo-synth: %s: vocab_size %u is below the %u tokens a byte-level tokenizer needs\n", dir,
                p->vocab_size, base);
        return -1;
    }
    token_list merged = {0};
    merged.cap = p->vocab_size - base < 4096 ? p->vocab_size - base : 4096;
    merged.text = calloc(merged.cap ? merged.cap : 1, TOKEN_CAP);
    if (!merged.text) {
        fprintf(stderr, "exo-synth: out of memory for the tokenizer\n");
        return -1;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON_AddNullToObject(root, "truncation");
    cJSON_AddNullToObject(root, "padding");
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    for (uint32_t i = 0; i < SYNTH_N_SPECIAL; i++) cJSON_AddItemToArray(added, added_token(i, special_names[i]));
    cJSON_AddNullToObject(root, "normalizer");
    cJSON_AddItemToObject(root, "pre_tokenizer", pre_tokenizer());
    cJSON_AddItemToObject(root, "post_processor", post_processor());
    cJSON *dec = cJSON_AddObjectToObject(root, "decoder");
    cJSON_AddStringToObject(dec, "type", "ByteLevel");
    cJSON_AddBoolToObject(dec, "add_prefix_space", true);
    cJSON_AddBoolToObject(dec, "trim_offsets", true);
    cJSON_AddBoolToObject(dec, "use_regex", true);

    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    cJSON_AddNullToObject(model, "unk_token");
    cJSON_AddNullToObject(model, "continuing_subword_prefix");
    cJSON_AddNullToObject(model, "end_of_word_suffix");
    cJSON_AddBoolToObject(model, "fuse_unk", false);
    cJSON_AddBoolToObject(model, "byte_fallback", false);
    cJSON_AddBoolToObject(model, "ignore_merges", false);
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    cJSON *merges = cJSON_CreateArray();
    uint32_t id = 0;
    for (; id < SYNTH_N_SPECIAL; id++) cJSON_AddNumberToObject(vocab, special_names[id], id);
    for (unsigned b = 0; b < 256; b++) {
        char ch[4];
        byte_token(b, ch);
        cJSON_AddNumberToObject(vocab, ch, id++);
    }
    for (size_t w = 0; w < sizeof merge_words / sizeof merge_words[0]; w++) add_word_merges(&merged, merges, merge_words[w]);
    for (uint32_t i = 0; i < merged.n; i++) cJSON_AddNumberToObject(vocab, merged.text[i], id++);
    char name[48];
    for (uint32_t k = 0; id < p->vocab_size; k++) {
        snprintf(name, sizeof name, "<|unused_%u|>", k);
        cJSON_AddNumberToObject(vocab, name, id++);
    }
    cJSON_AddItemToObject(model, "merges", merges);
    free(merged.text);

    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) {
        fprintf(stderr, "exo-synth: %s: out of memory writing tokenizer.json\n", dir);
        return -1;
    }
    int rc = synth_write_text_file(dir, "tokenizer.json", text);
    free(text);
    return rc;
}

static int write_tokenizer_config(const char *dir) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddBoolToObject(c, "add_bos_token", true);
    cJSON_AddStringToObject(c, "bos_token", special_names[SYNTH_BOS_ID]);
    cJSON_AddStringToObject(c, "eos_token", special_names[SYNTH_EOS_ID]);
    cJSON_AddStringToObject(c, "pad_token", special_names[SYNTH_PAD_ID]);
    cJSON_AddBoolToObject(c, "clean_up_tokenization_spaces", false);
    cJSON_AddNumberToObject(c, "model_max_length", 131072);
    cJSON_AddStringToObject(c, "tokenizer_class", "PreTrainedTokenizerFast");
    char *text = cJSON_Print(c);
    cJSON_Delete(c);
    if (!text) {
        fprintf(stderr, "exo-synth: %s: out of memory writing tokenizer_config.json\n", dir);
        return -1;
    }
    int rc = synth_write_text_file(dir, "tokenizer_config.json", text);
    free(text);
    return rc;
}

int synth_write_tokenizer(const char *dir, const synth_preset *p) {
    return write_tokenizer_json(dir, p) || write_tokenizer_config(dir) ? -1 : 0;
}
