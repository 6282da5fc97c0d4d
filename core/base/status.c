/* Status codes: static names and messages (libuv's uv_err_name / uv_strerror). */
#include "exo.h"

#define EXO_STATUS_TABLE(X)                                                  \
    X(EXO_OK, "EXO_OK", "success")                                           \
    X(EXO_NOT_READY, "EXO_NOT_READY", "not ready yet")                       \
    X(EXO_ERR_INVALID_ARG, "EXO_ERR_INVALID_ARG", "invalid argument")        \
    X(EXO_ERR_NO_MEMORY, "EXO_ERR_NO_MEMORY", "out of host memory")          \
    X(EXO_ERR_DEVICE_OOM, "EXO_ERR_DEVICE_OOM", "out of device memory")      \
    X(EXO_ERR_UNSUPPORTED, "EXO_ERR_UNSUPPORTED", "not supported")           \
    X(EXO_ERR_ABI_MISMATCH, "EXO_ERR_ABI_MISMATCH", "plugin ABI mismatch")   \
    X(EXO_ERR_PLUGIN_LOAD, "EXO_ERR_PLUGIN_LOAD", "plugin failed to load")   \
    X(EXO_ERR_NO_DEVICE, "EXO_ERR_NO_DEVICE", "no usable device")            \
    X(EXO_ERR_DEVICE_LOST, "EXO_ERR_DEVICE_LOST", "device lost")             \
    X(EXO_ERR_BACKEND, "EXO_ERR_BACKEND", "device backend error")            \
    X(EXO_ERR_TIMEOUT, "EXO_ERR_TIMEOUT", "timed out")                       \
    X(EXO_ERR_ABORTED, "EXO_ERR_ABORTED", "cancelled")                       \
    X(EXO_ERR_INTERNAL, "EXO_ERR_INTERNAL", "internal error")                \
    X(EXO_ERR_IO, "EXO_ERR_IO", "input/output error")                        \
    X(EXO_ERR_FORMAT, "EXO_ERR_FORMAT", "malformed data")                    \
    X(EXO_ERR_NOT_FOUND, "EXO_ERR_NOT_FOUND", "not found")                   \
    X(EXO_ERR_BUFFER_TOO_SMALL, "EXO_ERR_BUFFER_TOO_SMALL", "output buffer too small")

const char *exo_status_name(exo_status status) {
    switch (status) {
#define X(code, name, text) \
    case code:              \
        return name;
        EXO_STATUS_TABLE(X)
#undef X
    default:
        return "EXO_ERR_UNKNOWN";
    }
}

const char *exo_status_str(exo_status status) {
    switch (status) {
#define X(code, name, text) \
    case code:              \
        return text;
        EXO_STATUS_TABLE(X)
#undef X
    default:
        return "unknown status code";
    }
}
