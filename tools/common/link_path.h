/* link_path.h — how the tools name the path hidden states take between two devices
 * (exo_device_link.path, exo_shard_info.input_path; docs/placement.md 2.1). */
#ifndef EXO_TOOLS_LINK_PATH_H
#define EXO_TOOLS_LINK_PATH_H

#include <stdint.h>

#include "exo.h"

/* "peer" (one device-to-device copy), "host" (through host memory), "" (none: a part 0). */
static inline const char *exo_link_path_name(uint32_t path) {
    return path == EXO_DEVICE_LINK_PEER ? "peer" : path == EXO_DEVICE_LINK_HOST ? "host" : "";
}

#endif
