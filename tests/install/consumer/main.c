/* A program built against an installed exo-ipex, as a third party would. */
#include <stdio.h>

#include <exo.h>

int main(void) {
    exo_runtime *rt = NULL;
    exo_status st = exo_runtime_create(NULL, &rt);
    if (st != EXO_OK) {
        fprintf(stderr, "%s: %s\n", exo_status_name(st), exo_last_error());
        return 1;
    }
    uint32_t selected = 0;
    int rc = exo_device_selected(rt, &selected, NULL) == EXO_OK ? 0 : 1;
    printf("plugins %u devices %u selected %u\n", exo_plugin_count(rt), exo_device_count(rt), selected);
    exo_runtime_destroy(rt);
    return rc;
}
