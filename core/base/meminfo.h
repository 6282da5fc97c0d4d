/* How much memory this process may still take: the bound every size-driven allocation of the
 * loaders is checked against before it is made. */
#ifndef EXO_BASE_MEMINFO_H
#define EXO_BASE_MEMINFO_H

#include <stdint.h>

/* Bytes available: /proc/meminfo's MemAvailable, lowered to the cgroup v2 limit's headroom
 * (memory.max - memory.current) inside a container. UINT64_MAX when neither can be read (then
 * nothing is refused for want of memory; the allocation itself still reports failure). */
uint64_t exo_mem_available(void);

#endif
