/* A per-process scratch directory for harnesses whose parser reads files by path (safetensors,
 * the weights index, tokenizer.json and its config files). Each fuzzing process (libFuzzer's
 * -jobs/-fork workers are separate processes) gets its own directory, on tmpfs when /dev/shm
 * is writable so that millions of rewrites cost no disk I/O; it is removed at exit. */
#ifndef EXO_FUZZ_SCRATCH_H
#define EXO_FUZZ_SCRATCH_H

#include <stddef.h>

/* The directory (created on first use). A harness environment failure (no writable temporary
 * directory) aborts the harness with a message: it is not a finding about the parser. */
const char *fuzz_scratch_dir(void);

/* Writes `n` bytes as dir/name, replacing any earlier content. */
void fuzz_scratch_write(const char *name, const void *data, size_t n);

/* Removes dir/name if it exists (so a parser sees an optional file as absent). */
void fuzz_scratch_remove(const char *name);

/* dir/name in a static buffer (valid until the next call). */
const char *fuzz_scratch_path(const char *name);

/* Aborts the harness (a finding) when `status` is an error but the thread's error detail is
 * empty or does not mention `must_name` (the file or directory the parser was given): every
 * parser error must say what failed and name the file. */
void fuzz_check_error_detail(int status, const char *must_name);

#endif
