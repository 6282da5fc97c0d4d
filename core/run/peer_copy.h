/* peer_copy.h — copies from one device's buffer into another's without host memory, where the
 * plugin offers them (ABI 1.9 peer_copy_supported / buffer_copy_peer: two devices of one plugin
 * context that its driver lets reach each other's memory). The pipeline's hand-over between
 * parts and the link benchmark use them; everything else, and every pair a plugin does not
 * offer, goes through host memory (buffer_read, then buffer_write). */
#ifndef EXO_RUN_PEER_COPY_H
#define EXO_RUN_PEER_COPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "registry/runtime.h"

/* True when `from` can copy into `to` directly: two different opened devices (public indices) of
 * one plugin whose table has both 1.9 members, and the plugin says yes for the pair. Otherwise
 * false, with why (one line: "different plugins", "plugin opencl offers no peer copies (ABI
 * 1.9)", or the plugin's reason) in `why`. Clears this thread's error detail. */
bool exo_peer_copy_offered(exo_runtime *rt, uint32_t from, uint32_t to, char *why, size_t why_cap);

/* Copies `bytes` from `src` (a buffer of device `from`) at src_offset into `dst` (of device `to`)
 * at dst_offset through the plugin's buffer_copy_peer, holding both devices' locks (taken in
 * device order, so two copies in opposite directions cannot deadlock). The pair must be one that
 * exo_peer_copy_offered accepted. A failure is this thread's error: the plugin's detail after
 * "peer copy of N bytes from A to B". */
exo_status exo_peer_copy(exo_runtime *rt, uint32_t from, exo_buffer *src, uint64_t src_offset, uint32_t to,
                         exo_buffer *dst, uint64_t dst_offset, uint64_t bytes);

#endif
