/* A host table for tests that drive a plugin directly (without the core registry): it keeps
 * the log lines and the last error so tests can assert on them. */
#ifndef EXO_TEST_HOST_H
#define EXO_TEST_HOST_H

#include "exo_plugin.h"

typedef struct exo_test_host {
    exo_host_api api;
    exo_status last_status;
    char last_error[1024];
    char log[16384];     /* every log line, "level component message\n" */
    uint32_t threads;    /* answer of cpu_threads (0: all cores) */
    void *dl;            /* dlopen handle of a loaded plugin */
} exo_test_host;

void exo_test_host_init(exo_test_host *host);

/* dlopens dir/libexo-plugin-<name>.so, calls its entry and init. Returns EXO_OK and fills
 * *api and *ctx, or an error with host->last_error set. */
exo_status exo_test_plugin_load(exo_test_host *host, const char *dir, const char *name,
                                exo_plugin_api *api, exo_plugin_ctx **ctx);
void exo_test_plugin_unload(exo_test_host *host, exo_plugin_api *api, exo_plugin_ctx *ctx);

#endif
