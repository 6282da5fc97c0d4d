/* Device-to-device copies through the plugin (ABI 1.9), see peer_copy.h. The plugin decides which
 * pairs it can copy between (Level Zero: two devices of one driver that zeDeviceCanAccessPeer
 * lets reach each other); the core only asks, and holds both devices' locks for a copy. */
#include "run/peer_copy.h"

#include <stdio.h>
#include <string.h>

static void name_of(const exo_runtime *rt, uint32_t device, char *out, size_t cap) {
    const exo_device_rec *d = exo_runtime_device(rt, device);
    snprintf(out, cap, "%s:%u", rt->plugins[d->plugin].name, d->index);
}

bool exo_peer_copy_offered(exo_runtime *rt, uint32_t from, uint32_t to, char *why, size_t why_cap) {
    if (why_cap) why[0] = '\0';
    if (!rt || from >= rt->n_ranked || to >= rt->n_ranked || from == to) {
        snprintf(why, why_cap, "not two different devices");
        return false;
    }
    const exo_device_rec *a = exo_runtime_device(rt, from), *b = exo_runtime_device(rt, to);
    if (a->plugin != b->plugin) {
        snprintf(why, why_cap, "devices of different plugins (%s, %s)", rt->plugins[a->plugin].name,
                 rt->plugins[b->plugin].name);
        return false;
    }
    exo_plugin_rec *p = exo_runtime_device_plugin(rt, from);
    if (!p->api.peer_copy_supported || !p->api.buffer_copy_peer) {
        snprintf(why, why_cap, "plugin %s offers no peer copies (ABI 1.9)", p->name);
        return false;
    }
    /* The plugin's answer goes into `why`, not into the error detail: "no" is a fact of the node
     * here, not a failure. */
    exo_error_clear();
    exo_status st = p->api.peer_copy_supported(p->ctx, a->index, b->index);
    if (st != EXO_OK) snprintf(why, why_cap, "%s", exo_error_message()[0] ? exo_error_message() : exo_status_str(st));
    exo_error_clear();
    return st == EXO_OK;
}

exo_status exo_peer_copy(exo_runtime *rt, uint32_t from, exo_buffer *src, uint64_t src_offset, uint32_t to,
                         exo_buffer *dst, uint64_t dst_offset, uint64_t bytes) {
    exo_plugin_rec *p = exo_runtime_device_plugin(rt, from);
    if (!p->api.buffer_copy_peer || exo_runtime_device(rt, to)->plugin != exo_runtime_device(rt, from)->plugin)
        return exo_errorf(EXO_ERR_INTERNAL, "peer copy between devices that offer none");
    uint32_t first = from < to ? from : to, second = from < to ? to : from;
    exo_runtime_device_lock(rt, first);
    exo_runtime_device_lock(rt, second);
    exo_error_clear();
    exo_status st = p->api.buffer_copy_peer(dst, dst_offset, src, src_offset, bytes);
    exo_runtime_device_unlock(rt, second);
    exo_runtime_device_unlock(rt, first);
    if (st != EXO_OK) {
        char a[96], b[96];
        name_of(rt, from, a, sizeof a);
        name_of(rt, to, b, sizeof b);
        exo_error_wrap(st, "peer copy of %llu bytes from %s to %s", (unsigned long long)bytes, a, b);
    }
    return st;
}
