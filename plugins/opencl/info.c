/* info.c — reading variable-size OpenCL info strings and matching extension names. */
#include "ocl_plugin.h"

#include <string.h>

/* Both clGet*Info calls share the two-step protocol: ask for the size, then read. The string is
 * re-terminated because some drivers return it without the NUL the spec promises. */
#define OCL_READ_STRING(getter, object, param)                                                   \
    do {                                                                                         \
        *out = NULL;                                                                             \
        size_t size = 0;                                                                         \
        cl_int err = ctx->api.getter(object, param, 0, NULL, &size);                             \
        if (err != CL_SUCCESS) return err;                                                       \
        char *text = ctx->host->alloc(ctx->host->host_ctx, size + 1);                            \
        if (!text) return CL_OUT_OF_HOST_MEMORY;                                                 \
        err = size ? ctx->api.getter(object, param, size, text, NULL) : CL_SUCCESS;              \
        if (err != CL_SUCCESS) {                                                                 \
            ctx->host->free(ctx->host->host_ctx, text);                                          \
            return err;                                                                          \
        }                                                                                        \
        text[size] = '\0';                                                                       \
        *out = text;                                                                             \
        return CL_SUCCESS;                                                                       \
    } while (0)

cl_int ocl_device_string(exo_plugin_ctx *ctx, cl_device_id dev, cl_device_info param, char **out) {
    OCL_READ_STRING(clGetDeviceInfo, dev, param);
}

cl_int ocl_platform_string(exo_plugin_ctx *ctx, cl_platform_id platform, cl_platform_info param,
                           char **out) {
    OCL_READ_STRING(clGetPlatformInfo, platform, param);
}

int ocl_has_extension(const char *extensions, const char *name) {
    if (!extensions || !name || !*name) return 0;
    size_t len = strlen(name);
    for (const char *p = extensions; (p = strstr(p, name)) != NULL; p += len) {
        /* Whole words only: "cl_intel_subgroups" must not match "cl_intel_subgroups_short". */
        int starts = p == extensions || p[-1] == ' ';
        int ends = p[len] == '\0' || p[len] == ' ';
        if (starts && ends) return 1;
    }
    return 0;
}

cl_int ocl_amd_free_memory(exo_plugin_ctx *ctx, cl_device_id dev, uint64_t *free_bytes) {
    /* size_t[2] in KiB: free memory in total, then the largest free block. */
    size_t kib[2] = {0, 0};
    cl_int err = ctx->api.clGetDeviceInfo(dev, CL_DEVICE_GLOBAL_FREE_MEMORY_AMD, sizeof kib, kib, NULL);
    *free_bytes = err == CL_SUCCESS ? (uint64_t)kib[0] * 1024u : 0;
    return err;
}
