/* Every JSON file the core reads from a model directory, read and parsed in one place: the
 * model-file path rule (model_path.h), a size limit per file from what real files need, and a
 * check that the parse fits in memory before it starts. */
#ifndef EXO_MODEL_JSON_FILE_H
#define EXO_MODEL_JSON_FILE_H

#include <stdint.h>

#include "exo_plugin.h"

struct cJSON;

/* cJSON's worst case, measured (tests/model/test_json_file.c checks it): 40 heap bytes per input
 * byte for "[0,0,0,...]" (a 64-byte node and its malloc header per two bytes), plus the text
 * itself while it parses. */
#define EXO_JSON_PARSE_BYTES_PER_BYTE 41u

/* The largest file of this name the core reads (by its base name: config.json,
 * generation_config.json, tokenizer.json, tokenizer_config.json, model.safetensors.index.json;
 * anything else gets the config limit). */
uint64_t exo_json_file_limit(const char *name);

/* EXO_OK when parsing `bytes` of JSON fits in `available` bytes of memory; else
 * EXO_ERR_NO_MEMORY naming the file and both sizes. */
exo_status exo_json_parse_fits(const char *path, uint64_t bytes, uint64_t available);

/* Reads and parses dir/name (a JSON value, whitespace around it allowed) into *out (free with
 * cJSON_Delete). EXO_ERR_NOT_FOUND when the file does not exist (optional files); every other
 * failure names the file: refused link, too large, no memory for the parse, malformed JSON
 * (with line and column). */
exo_status exo_json_file_load(const char *dir, const char *name, struct cJSON **out);

/* The same for a path: its directory is the model directory, its last component the name. */
exo_status exo_json_file_load_path(const char *path, struct cJSON **out);

#endif
