/* "plugin[:index]": the one parser of device names, used by EXO_DEVICE, exo_runtime_options.device,
 * exo_shard_options.device and exo_device_find (so the tools, which pass --device through), so that
 * every entry point refuses the same strings with the same message. */
#ifndef EXO_REGISTRY_DEVICE_SPEC_H
#define EXO_REGISTRY_DEVICE_SPEC_H

#include <stdint.h>

#include "exo_plugin.h"

/* Largest device index a spec may name; a plugin never reports more devices than this. */
#define EXO_DEVICE_SPEC_MAX_INDEX 65535u

typedef struct exo_device_spec {
    char plugin[64];
    uint32_t index; /* 0 when the spec names no index */
} exo_device_spec;

/* Parses `text` strictly: a plugin name of letters, digits, '_', '-' or '.', then optionally ':'
 * and a decimal index in [0, EXO_DEVICE_SPEC_MAX_INDEX] — no sign, space, empty index, trailing
 * junk or overflow. On failure records (exo_errorf) "device 'TEXT': PROBLEM (expected
 * plugin[:index] ...)" and returns EXO_ERR_INVALID_ARG. */
exo_status exo_device_spec_parse(const char *text, exo_device_spec *out);

#endif
