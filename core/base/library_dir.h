/* Where libexocore itself lies: the anchor of the "next to the library" searches (plugins in
 * DIR/exo/plugins, the default model in DIR/../share/exo-ipex/models). */
#ifndef EXO_BASE_LIBRARY_DIR_H
#define EXO_BASE_LIBRARY_DIR_H

#include <stdbool.h>
#include <stddef.h>

/* The absolute directory of the loaded libexocore into out (size bytes); false when it cannot be
 * told (then nothing is searched beside it). */
bool exo_library_dir(char *out, size_t size);

#endif
