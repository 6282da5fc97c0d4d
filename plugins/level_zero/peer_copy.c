/* peer_copy.c — copies from one device's USM memory into another's (ABI 1.9 peer_copy_supported,
 * buffer_copy_peer), so the core hands hidden states between two GPUs of one driver without
 * passing through host memory. Level Zero allows a copy on a command list only between memory of
 * the list's context that its device can reach (ze_api.h, zeCommandListAppendMemoryCopy): the
 * driver's devices share one context (device_open.c), and the driver says which pairs reach each
 * other (zeDeviceCanAccessPeer; zeDeviceGetP2PProperties' ACCESS flag: the same fact, asked too
 * where the driver answers it). The copy runs on the source device's synchronous immediate list,
 * so it returns with the bytes in place; the source device accesses the peer's memory. */
#include "l0_internal.h"

#include <stdio.h>

exo_status l0_peer_copy_supported(exo_plugin_ctx *ctx, uint32_t src, uint32_t dst) {
    if (!ctx) return EXO_ERR_INVALID_ARG;
    l0_device *a, *b;
    exo_status st = l0_opened_device(ctx, src, "peer_copy_supported", &a);
    if (st == EXO_OK) st = l0_opened_device(ctx, dst, "peer_copy_supported", &b);
    if (st != EXO_OK) return st;
    if (a == b) return l0_error(ctx, a, EXO_ERR_INVALID_ARG, "peer_copy_supported: a device is no peer of itself");
    if (a->driver != b->driver || a->exec.context != b->exec.context)
        return l0_error(ctx, a, EXO_ERR_UNSUPPORTED, "no peer copies to level_zero:%u: the devices belong to "
                        "different Level Zero drivers", b->index);
    const l0_loader *ze = ctx->ze;
    if (!ze->zeDeviceCanAccessPeer)
        return l0_error(ctx, a, EXO_ERR_UNSUPPORTED, "no peer copies: the loader %s has no zeDeviceCanAccessPeer",
                        ze->name);
    ze_bool_t can = 0;
    ze_result_t r = ze->zeDeviceCanAccessPeer(a->handle, b->handle, &can);
    if (r != ZE_RESULT_SUCCESS) {
        if (l0_result_is_unavailable(r))
            return l0_error(ctx, a, EXO_ERR_UNSUPPORTED, "no peer copies to level_zero:%u: zeDeviceCanAccessPeer: "
                            "%s", b->index, ze_result_name(r));
        return l0_fail(ctx, a, r, "zeDeviceCanAccessPeer", "asking for peer access to level_zero:%u", b->index);
    }
    if (!can)
        return l0_error(ctx, a, EXO_ERR_UNSUPPORTED, "no peer copies to level_zero:%u: zeDeviceCanAccessPeer says "
                        "the device cannot reach its memory", b->index);
    if (ze->zeDeviceGetP2PProperties) {
        ze_device_p2p_properties_t p2p = {.stype = ZE_STRUCTURE_TYPE_DEVICE_P2P_PROPERTIES};
        r = ze->zeDeviceGetP2PProperties(a->handle, b->handle, &p2p);
        if (r == ZE_RESULT_SUCCESS && !(p2p.flags & ZE_DEVICE_P2P_PROPERTY_FLAG_ACCESS))
            return l0_error(ctx, a, EXO_ERR_UNSUPPORTED, "no peer copies to level_zero:%u: zeDeviceGetP2PProperties "
                            "reports no ACCESS between the devices", b->index);
        if (r != ZE_RESULT_SUCCESS && !l0_result_is_unavailable(r))
            return l0_fail(ctx, a, r, "zeDeviceGetP2PProperties", "asking for peer access to level_zero:%u",
                           b->index);
    }
    return EXO_OK;
}

static bool buffer_valid(const exo_buffer *buf) { return buf && buf->magic == L0_BUFFER_MAGIC; }

exo_status l0_buffer_copy_peer(exo_buffer *dst, uint64_t dst_offset, exo_buffer *src, uint64_t src_offset,
                               uint64_t size) {
    if (!buffer_valid(dst) || !buffer_valid(src) || dst->ctx != src->ctx) return EXO_ERR_INVALID_ARG;
    exo_plugin_ctx *ctx = src->ctx;
    if (dst->dev == src->dev)
        return l0_error(ctx, src->dev, EXO_ERR_INVALID_ARG, "buffer_copy_peer: both buffers are on the same device");
    const exo_buffer *outside = src_offset > src->mem.size || size > src->mem.size - src_offset ? src
                                : dst_offset > dst->mem.size || size > dst->mem.size - dst_offset ? dst
                                                                                                   : NULL;
    if (outside)
        return l0_error(ctx, outside->dev, EXO_ERR_INVALID_ARG, "buffer_copy_peer: bytes [%llu, %llu) lie outside "
                        "the %llu-byte buffer",
                        (unsigned long long)(outside == src ? src_offset : dst_offset),
                        (unsigned long long)((outside == src ? src_offset : dst_offset) + size),
                        (unsigned long long)outside->mem.size);
    exo_status st = l0_check_not_lost(ctx, dst->dev);
    if (st != EXO_OK) return st;
    char what[64];
    snprintf(what, sizeof what, "a peer copy to level_zero:%u", dst->dev->index);
    return l0_copy(ctx, src->dev, (char *)dst->mem.ptr + dst_offset, (const char *)src->mem.ptr + src_offset, size,
                   what);
}
