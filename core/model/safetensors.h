/* safetensors files, mmap'd, and a model directory's weights (one file or indexed shards).
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
 * then the data. Offsets are relative to the end of the header. Every structural problem is an
 * error naming the file and the tensor. */
#ifndef EXO_MODEL_SAFETENSORS_H
#define EXO_MODEL_SAFETENSORS_H

#include <stdint.h>
#include <sys/types.h>

#include "exo_plugin.h"

#define EXO_ST_MAX_DIMS 4

/* U32: the packed words of MLX-quantized weights. A file-level dtype of the core only: it never
 * reaches the IR (the builder turns such a tensor with its scales and biases into an
 * EXO_DTYPE_MLX_AFFINE weight) and is refused wherever a float or I32 is expected. */
#define EXO_ST_DTYPE_U32 ((exo_dtype)0x100)

static inline const char *exo_st_dtype_name(exo_dtype d) { return d == EXO_ST_DTYPE_U32 ? "U32" : exo_dtype_name(d); }
static inline uint32_t exo_st_dtype_size(exo_dtype d) { return d == EXO_ST_DTYPE_U32 ? 4 : exo_dtype_size(d); }

typedef struct exo_st_tensor {
    const char *name;
    exo_dtype dtype;                 /* F32, F16, BF16, I32 or EXO_ST_DTYPE_U32 */
    uint32_t n_dims;
    int64_t shape[EXO_ST_MAX_DIMS];  /* outermost first, as written in the file */
    uint64_t nbytes;
    const void *data;                /* inside the mapping; NULL until the file is mapped */
    const char *file;                /* path of the file holding it */
} exo_st_tensor;

/* ---- one file */
typedef struct exo_st_file exo_st_file;

/* Opens, maps and validates one safetensors file. */
exo_status exo_st_file_open(const char *path, exo_st_file **out);
/* The same over an open descriptor (taken over, closed on failure too); path is for messages.
 * The model directory's files come here, opened under the path rule (model_path.h). */
exo_status exo_st_file_open_fd(int fd, const char *path, exo_st_file **out);
void exo_st_file_close(exo_st_file *file);
uint32_t exo_st_file_count(const exo_st_file *file);
const exo_st_tensor *exo_st_file_tensor(const exo_st_file *file, uint32_t index);
/* NULL when absent (no error recorded). */
const exo_st_tensor *exo_st_file_find(const exo_st_file *file, const char *name);
/* Bytes of the file's mapping (the whole file). */
uint64_t exo_st_file_mapped_bytes(const exo_st_file *file);

/* ---- truncation guards. The data is read straight from a MAP_PRIVATE mapping: a file
 * truncated in place (not replaced by rename, which keeps the mapped inode) makes reads past its
 * new end raise SIGBUS. These turn that into an error naming the file before bytes are used. */

/* Reads [addr, addr + n) of the file's mapping in (MADV_POPULATE_READ), or, where the kernel
 * lacks that, checks the file still covers it; `what` names the bytes in the message
 * ("tensor 'x'"). EXO_ERR_IO when they can no longer be read. */
exo_status exo_st_populate(const exo_st_file *file, const char *what, const void *addr, size_t n);
/* EXO_ERR_IO unless the file (the mapped inode) still holds `end` bytes. */
exo_status exo_st_file_check_extent(const exo_st_file *file, const char *what, uint64_t end);
/* The file still covers its header and every tensor. */
exo_status exo_st_file_revalidate(const exo_st_file *file);
/* Start of the mapping (whitebox tests). */
const void *exo_st_file_map(const exo_st_file *file);

/* ---- a model directory: model.safetensors, or model.safetensors.index.json + shards.
 * Shard files are opened and mapped only when one of their tensors is first requested, so a
 * pipeline shard touches only the files it needs. */
typedef struct exo_weights exo_weights;

exo_status exo_weights_open(const char *dir, exo_weights **out);
void exo_weights_close(exo_weights *w);
/* Looks a tensor up, mapping its file when needed. EXO_ERR_NOT_FOUND (naming the tensor and
 * the directory) when absent; EXO_ERR_IO / EXO_ERR_FORMAT when its file is bad. Its bytes have
 * been read in (or, past the read-ahead budget, the file checked to still hold them), so a
 * file truncated since mapping is EXO_ERR_IO here, not SIGBUS at the caller's first read. */
exo_status exo_weights_get(exo_weights *w, const char *name, const exo_st_tensor **out);
/* Before a shard load uses the weights: every shard file still passes the path rule and is
 * still the inode opened (or seen) at exo_weights_open, and every mapped file still holds all of
 * its tensors (not truncated). Also refreshes the read-ahead budget of exo_weights_get. Errors
 * name the file. */
exo_status exo_weights_load_begin(exo_weights *w);
/* True when the tensor exists (does not map anything). */
int exo_weights_has(const exo_weights *w, const char *name);
/* Total bytes of the mapped files (for load reports). */
uint64_t exo_weights_mapped_bytes(const exo_weights *w);

#endif
