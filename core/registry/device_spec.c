/* Parsing "plugin[:index]". strtol/strtoul accept leading spaces and signs and wrap or saturate
 * silently, and a uint32_t cast of 4294967296 is device 0, so the index is read with strtoull
 * after checking that it is plain digits, then range-checked. */
#include "device_spec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

#define EXPECTED "expected plugin[:index], e.g. cpu_amx or opencl:1, index 0..65535"

static int plugin_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.';
}

exo_status exo_device_spec_parse(const char *text, exo_device_spec *out) {
    if (!text || !out) return exo_errorf(EXO_ERR_INVALID_ARG, "device spec: NULL argument");
    memset(out, 0, sizeof *out);
    const char *colon = strchr(text, ':');
    size_t name_len = colon ? (size_t)(colon - text) : strlen(text);
    if (name_len == 0) return exo_errorf(EXO_ERR_INVALID_ARG, "device '%s': no plugin name (" EXPECTED ")", text);
    if (name_len >= sizeof out->plugin)
        return exo_errorf(EXO_ERR_INVALID_ARG, "device '%.80s...': the plugin name is longer than %zu bytes (" EXPECTED ")",
                          text, sizeof out->plugin - 1);
    for (size_t i = 0; i < name_len; i++)
        if (!plugin_char(text[i]))
            return exo_errorf(EXO_ERR_INVALID_ARG, "device '%s': character %zu of the plugin name is not allowed (" EXPECTED ")",
                              text, i + 1);
    memcpy(out->plugin, text, name_len);
    out->plugin[name_len] = '\0';
    if (!colon) return EXO_OK;

    const char *digits = colon + 1;
    if (!*digits) return exo_errorf(EXO_ERR_INVALID_ARG, "device '%s': the index after ':' is empty (" EXPECTED ")", text);
    for (const char *c = digits; *c; c++)
        if (*c < '0' || *c > '9')
            return exo_errorf(EXO_ERR_INVALID_ARG, "device '%s': the index '%s' is not a plain decimal number (" EXPECTED ")",
                              text, digits);
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(digits, &end, 10);
    if (errno == ERANGE || v > EXO_DEVICE_SPEC_MAX_INDEX)
        return exo_errorf(EXO_ERR_INVALID_ARG, "device '%s': the index %s is out of range (" EXPECTED ")", text, digits);
    out->index = (uint32_t)v;
    return EXO_OK;
}
