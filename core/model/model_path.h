/* The one rule for which files a model directory may name, and how they are opened.
 *
 * A file of a model (weights, index, config, generation config, tokenizer files) is read only if
 * its final target lies inside the model directory. Symbolic links are followed, and allowed
 * when they resolve inside the directory, or — when the directory is a Hugging Face hub
 * snapshot (…/models--ORG--NAME/snapshots/REV) — inside that same hub repository
 * (…/models--ORG--NAME/, whose blobs/ hold every snapshot file's bytes). Anything else is
 * refused with an error naming the file and where it points; the target is never opened, so
 * its bytes never reach a message. */
#ifndef EXO_MODEL_MODEL_PATH_H
#define EXO_MODEL_MODEL_PATH_H

#include <sys/stat.h>

#include "exo_plugin.h"

/* Opens dir/name read-only under the rule above. name is relative, without ".." components.
 * On success *fd is an open descriptor of a regular file and *sb its fstat. EXO_ERR_NOT_FOUND
 * (with a message) when nothing exists at dir/name; EXO_ERR_FORMAT when the rule refuses it;
 * EXO_ERR_IO for other failures. The descriptor's inode is checked against the resolved target,
 * so a link swapped between the check and the open is caught. */
exo_status exo_model_path_open(const char *dir, const char *name, int *fd, struct stat *sb);

/* Only the check: dir/name resolves to a regular file the rule accepts (*sb: its stat). */
exo_status exo_model_path_check(const char *dir, const char *name, struct stat *sb);

/* Whether a name as written in an index may name a file of the directory: relative, not empty,
 * and with no ".." component. */
int exo_model_path_name_ok(const char *name);

#endif
