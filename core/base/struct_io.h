/* The two helpers every versioned struct crossing the public API goes through (DESIGN §2): a
 * reader touches only what the writer's size covers, a writer fills only what the reader's
 * size covers. Both start after the {size, version} header, which each side keeps. */
#ifndef EXO_BASE_STRUCT_IO_H
#define EXO_BASE_STRUCT_IO_H

#include <stddef.h>
#include <string.h>

#include "exo_plugin.h"

/* Copies a full struct of ours (`mine`, `size` bytes) into a caller's struct whose header says
 * how much room it has. */
static inline void exo_struct_copy_out(void *caller, const void *mine, size_t size) {
    exo_struct_header *h = caller;
    size_t n = h->size < size ? h->size : size;
    if (n > sizeof *h) memcpy((char *)caller + sizeof *h, (const char *)mine + sizeof *h, n - sizeof *h);
}

/* Copies a caller's struct into a full struct of ours (`mine`, `size` bytes, already holding
 * defaults): members the caller's older layout lacks keep their defaults. */
static inline void exo_struct_copy_in(void *mine, size_t size, const void *caller) {
    const exo_struct_header *h = caller;
    size_t n = h->size < size ? h->size : size;
    if (n > sizeof *h) memcpy((char *)mine + sizeof *h, (const char *)caller + sizeof *h, n - sizeof *h);
}

#endif
