/* exo_shard_read_bandwidth: the read bandwidth of the device a shard runs on, measured by its
 * plugin (ABI 1.8 device_read_bandwidth), so a benchmark can put decode's bytes per second
 * against the device's own limit measured in the same run (exo-bench). */
#include "model_internal.h"

exo_status exo_shard_read_bandwidth(exo_shard *sh, uint64_t bytes, uint32_t passes, double *best_gbps) {
    exo_error_clear();
    if (!sh || !best_gbps) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_shard_read_bandwidth: shard or result is NULL");
    *best_gbps = 0;
    exo_plugin_rec *p = sh->plugin;
    exo_status st;
    if (!p->api.device_read_bandwidth)
        st = exo_errorf(EXO_ERR_UNSUPPORTED, "plugin %s does not measure its devices' read bandwidth (ABI 1.8)", p->name);
    else {
        exo_registry_plugin_error_clear();
        /* The sweep launches kernels like an execution: serialised with the device's other calls
         * (the ABI's threading rule for buffer, compile and execute calls). */
        exo_runtime_device_lock(sh->model->rt, sh->device);
        st = p->api.device_read_bandwidth(p->ctx, exo_runtime_device(sh->model->rt, sh->device)->index, bytes,
                                          passes, best_gbps);
        exo_runtime_device_unlock(sh->model->rt, sh->device);
        if (st != EXO_OK)
            st = exo_errorf(st, "%s: measuring the read bandwidth: %s", p->name,
                            exo_registry_plugin_error(p, exo_status_str(st)));
    }
    return exo_error_keep(&sh->error, st);
}
