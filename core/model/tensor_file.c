/* The public view of one safetensors file (exo_tensor_file_*), over model/safetensors.c. */
#include "base/error.h"
#include "exo.h"
#include "model/safetensors.h"

struct exo_tensor_file; /* is an exo_st_file */

exo_status exo_tensor_file_open(const char *path, exo_tensor_file **out) {
    exo_error_clear();
    if (!path || !out) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_tensor_file_open: NULL argument");
    return exo_st_file_open(path, (exo_st_file **)out);
}

void exo_tensor_file_destroy(exo_tensor_file *file) { exo_st_file_close((exo_st_file *)file); }

exo_status exo_tensor_file_get(const exo_tensor_file *file, const char *name, exo_tensor_view *out) {
    if (!file || !name || !out) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_tensor_file_get: NULL argument");
    const exo_st_tensor *t = exo_st_file_find((const exo_st_file *)file, name);
    if (!t) return exo_errorf(EXO_ERR_NOT_FOUND, "tensor '%s' not found", name);
    if (t->dtype == EXO_ST_DTYPE_U32)
        return exo_errorf(EXO_ERR_UNSUPPORTED, "tensor '%s' is U32 (packed quantized weights), which has no "
                          "exo_dtype", name);
    /* Typed reads of `data` need it aligned to the element; safetensors writers pad the header
     * to 8 bytes so every tensor is. A file that is not padded is refused rather than handed
     * out as a misaligned pointer. */
    uint32_t elem = exo_dtype_size(t->dtype);
    if (elem > 1 && (uintptr_t)t->data % elem != 0)
        return exo_errorf(EXO_ERR_FORMAT, "tensor '%s': data is not aligned to its %u-byte elements (the "
                          "file's header is not padded to 8 bytes as safetensors writers do)", name, elem);
    out->dtype = t->dtype;
    out->n_dims = t->n_dims;
    for (uint32_t i = 0; i < 4; i++) out->shape[i] = i < t->n_dims ? t->shape[i] : 1;
    out->data = t->data;
    out->nbytes = t->nbytes;
    return EXO_OK;
}
