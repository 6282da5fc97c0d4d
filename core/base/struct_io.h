/* The two helpers every versioned struct crossing the public API goes through (DESIGN §2): a
 * reader touches only what the writer's size covers, a writer fills only what the reader's
 * size covers. Both start after the {size, version} header, which each side keeps. */
#ifndef EXO_BASE_STRUCT_IO_H
#define EXO_BASE_STRUCT_IO_H

#include <stddef.h>
#include <string.h>

#include "exo_plugin.h"

/* Writing out is exo_struct_copy_out from exo_plugin.h: the one helper plugins use too, so the
 * core and every plugin agree on what a copy touches (never the header). */

/* Copies a caller's struct into a full struct of ours (`mine`, `size` bytes, already holding
 * defaults): members the caller's older layout lacks keep their defaults. */
static inline void exo_struct_copy_in(void *mine, size_t size, const void *caller) {
    const exo_struct_header *h = caller;
    size_t n = h->size < size ? h->size : size;
    if (n > sizeof *h) memcpy((char *)mine + sizeof *h, (const char *)caller + sizeof *h, n - sizeof *h);
}

#endif
