/* Tokenizer: a Hugging Face model directory's tokenizer.json (+ tokenizer_config.json,
 * generation_config.json, config.json for BOS/EOS) turned into encode / decode.
 *
 * Supported: BPE models, both flavours found in LLM checkpoints —
 *  - byte-level BPE (GPT-2, Llama-3, Qwen2): Split(regex) + ByteLevel pre-tokenizer, ByteLevel
 *    decoder;
 *  - SentencePiece-style BPE (Llama-2, Mistral, Gemma): Metaspace pre-tokenizer or the
 *    Prepend/Replace(" " -> "\u2581") normalizer, <0xXX> byte-fallback tokens, Replace +
 *    ByteFallback + Fuse + Strip decoder.
 * Added tokens ("added_tokens") are matched in the text before any other processing, like the
 * tokenizers library does (leftmost-longest). Other model types (WordPiece, Unigram, WordLevel)
 * and unknown normalizers / pre-tokenizers / decoders fail at load with EXO_ERR_UNSUPPORTED.
 *
 * A loaded tokenizer is immutable: encode/decode may run from several threads at once. */
#ifndef EXO_TOKENIZER_TOKENIZER_H
#define EXO_TOKENIZER_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "exo_plugin.h"

typedef struct exo_tokenizer exo_tokenizer;

/* Loads model_dir/tokenizer.json and the BOS/EOS facts of the config files next to it.
 * Errors: EXO_ERR_IO (missing/unreadable file), EXO_ERR_FORMAT (malformed JSON or contents),
 * EXO_ERR_UNSUPPORTED (tokenizer type we do not implement); the detail names the file. */
exo_status exo_tokenizer_load(const char *model_dir, exo_tokenizer **out);

/* Same, from an explicit tokenizer.json path; config files are looked up in its directory. */
exo_status exo_tokenizer_load_file(const char *tokenizer_json_path, exo_tokenizer **out);

void exo_tokenizer_free(exo_tokenizer *tok);

/* Encodes UTF-8 text (len bytes; NUL bytes are ordinary characters). *ids is malloc'd, the
 * caller frees it (it may be NULL when *n_ids is 0). add_bos prepends the BOS token when the
 * model has one. Invalid UTF-8 gives EXO_ERR_INVALID_ARG with the byte offset. */
exo_status exo_tokenizer_encode(const exo_tokenizer *tok, const char *text, size_t len,
                                bool add_bos, int32_t **ids, size_t *n_ids);

/* Decodes ids to the exact bytes the tokens stand for (malloc'd, NUL-terminated for
 * convenience, *len excludes the NUL). Special tokens decode to their content. The bytes of a
 * sequence cut inside a UTF-8 character are returned as they are (use the detokenizer for
 * display-safe text). Unknown ids give EXO_ERR_INVALID_ARG. */
exo_status exo_tokenizer_decode(const exo_tokenizer *tok, const int32_t *ids, size_t n,
                                char **text, size_t *len);

/* Number of ids: one more than the largest token id (model vocab and added tokens). */
uint32_t exo_tokenizer_vocab_size(const exo_tokenizer *tok);

/* BOS id, -1 when the model has none. */
int32_t exo_tokenizer_bos(const exo_tokenizer *tok);

/* Whether the model's own tokenizer adds BOS by default (tokenizer_config.json
 * "add_bos_token", else a TemplateProcessing post-processor that starts with it). */
bool exo_tokenizer_adds_bos(const exo_tokenizer *tok);

/* All EOS ids (tokenizer_config eos_token, generation_config / config eos_token_id); *ids stays
 * valid while tok lives. Returns the count (0: none known). */
size_t exo_tokenizer_eos(const exo_tokenizer *tok, const int32_t **ids);

/* True for added tokens marked "special" (BOS, EOS, chat markers). */
bool exo_tokenizer_is_special(const exo_tokenizer *tok, int32_t id);

/* The token's stored string (vocab form, e.g. "\u0120the" for byte-level), NULL for an unknown
 * id. *len (when not NULL) gets its length in bytes. Users: the BOS check at load
 * (tokenizer_special.c) and the fuzz harness's round-trip oracle (tests/fuzz/fuzz_tokenizer.c). */
const char *exo_tokenizer_token_text(const exo_tokenizer *tok, int32_t id, size_t *len);

/* Id of an exact token string (vocab form or added-token content), -1 when absent. */
int32_t exo_tokenizer_token_id(const exo_tokenizer *tok, const char *text, size_t len);

/* ---------------------------------------------------------------- streaming decode */

/* Takes ids one at a time and hands out text that is always complete, valid UTF-8: the bytes of
 * an unfinished UTF-8 character are held back until it completes; bytes that can never form a
 * valid character become U+FFFD. The concatenation of all pieces (plus flush) equals the
 * decode of the whole sequence wherever that is valid UTF-8. */
typedef struct exo_text_stream exo_text_stream;

exo_status exo_text_stream_create(const exo_tokenizer *tok, exo_text_stream **out);

/* Appends one token; *piece / *len get the newly completed text (possibly empty, never NULL).
 * The piece stays valid until the next call on d. */
exo_status exo_text_stream_push(exo_text_stream *d, int32_t id, const char **piece, size_t *len);

/* Ends the stream: held-back bytes of an unfinished character come out as U+FFFD. The
 * detokenizer is then reset and may start a new stream. */
exo_status exo_text_stream_flush(exo_text_stream *d, const char **piece, size_t *len);

void exo_text_stream_free(exo_text_stream *d);

#endif
