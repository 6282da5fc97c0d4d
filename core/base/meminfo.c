/* Available memory (see meminfo.h). Read fresh on every call: loads are rare and the answer
 * changes as other processes come and go. */
#include "base/meminfo.h"

#include <stdio.h>
#include <string.h>

/* The first unsigned number in a small file, or 0 with *ok false ("max" is not a number). */
static uint64_t mi_read_number(const char *path, int *ok) {
    *ok = 0;
    FILE *fp = fopen(path, "re");
    if (!fp) return 0;
    unsigned long long v = 0;
    *ok = fscanf(fp, "%llu", &v) == 1;
    fclose(fp);
    return v;
}

uint64_t exo_mem_available(void) {
    uint64_t avail = UINT64_MAX;
    FILE *fp = fopen("/proc/meminfo", "re");
    if (fp) {
        char line[256];
        unsigned long long kb;
        while (fgets(line, sizeof line, fp))
            if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
                avail = (uint64_t)kb * 1024u;
                break;
            }
        fclose(fp);
    }
    /* cgroup v2: the process's own group (the unified hierarchy's single "0::/path" line). */
    char group[512] = "";
    fp = fopen("/proc/self/cgroup", "re");
    if (fp) {
        char line[600];
        while (fgets(line, sizeof line, fp))
            if (strncmp(line, "0::", 3) == 0) {
                snprintf(group, sizeof group, "%s", line + 3);
                group[strcspn(group, "\n")] = '\0';
                break;
            }
        fclose(fp);
    }
    if (group[0]) {
        char path[700];
        int ok_max, ok_cur;
        snprintf(path, sizeof path, "/sys/fs/cgroup%s/memory.max", strcmp(group, "/") ? group : "");
        uint64_t max = mi_read_number(path, &ok_max);
        snprintf(path, sizeof path, "/sys/fs/cgroup%s/memory.current", strcmp(group, "/") ? group : "");
        uint64_t cur = mi_read_number(path, &ok_cur);
        if (ok_max && ok_cur) {
            /* memory.current counts the page cache, which the kernel reclaims on demand (a model
             * just read fills it): that part is still available. */
            snprintf(path, sizeof path, "/sys/fs/cgroup%s/memory.stat", strcmp(group, "/") ? group : "");
            fp = fopen(path, "re");
            if (fp) {
                char line[256];
                unsigned long long file = 0;
                while (fgets(line, sizeof line, fp))
                    if (sscanf(line, "file %llu", &file) == 1) break;
                fclose(fp);
                cur = cur > file ? cur - file : 0;
            }
            uint64_t room = max > cur ? max - cur : 0;
            if (room < avail) avail = room;
        }
    }
    return avail;
}
