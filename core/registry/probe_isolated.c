/* Probing a plugin in a child process (GStreamer's plugin scanner): a driver that crashes or
 * hangs inside its probe takes down only the child. The child loads and probes the plugin and
 * writes what it found through a pipe; the parent waits with a timeout. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/clock.h"
#include "runtime.h"

typedef struct isolated_result {
    int32_t state;
    int32_t status;
    uint32_t class_rank;
    uint32_t abi_version;
    uint32_t runs_graphs;
    uint32_t n_devices;
    char reason[EXO_ERROR_MAX];
    char version[64];
    char build_info[640];
} isolated_result;

static void write_all(int fd, const void *data, size_t size) {
    const char *p = data;
    while (size) {
        ssize_t n = write(fd, p, size);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        p += n;
        size -= (size_t)n;
    }
}

static void child_probe(exo_runtime *rt, exo_plugin_rec *p, int fd) {
    exo_registry_load(rt, p);
    if (p->state != EXO_PLUGIN_FAILED) exo_registry_probe(rt, p);
    isolated_result r;
    memset(&r, 0, sizeof r);
    r.state = p->state;
    r.status = p->status;
    r.class_rank = p->class_rank;
    r.abi_version = p->abi_version;
    r.runs_graphs = p->runs_graphs;
    r.n_devices = p->state == EXO_PLUGIN_FAILED ? 0 : p->n_devices;
    memcpy(r.reason, p->reason, sizeof r.reason);
    memcpy(r.version, p->version, sizeof r.version);
    memcpy(r.build_info, p->build_info, sizeof r.build_info);
    write_all(fd, &r, sizeof r);
    if (r.n_devices) write_all(fd, p->reports, r.n_devices * sizeof *p->reports);
}

/* Reads until EOF or the deadline. Returns bytes read, or -1 on timeout. */
static ssize_t read_until(int fd, char *buf, size_t cap, uint64_t deadline) {
    size_t got = 0;
    for (;;) {
        uint64_t now = exo_now_ms();
        if (now >= deadline) return -1;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int ready = poll(&pfd, 1, (int)(deadline - now));
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) return -1;
        if (got == cap) { /* more than any valid answer: drain and ignore */
            char sink[4096];
            ssize_t n = read(fd, sink, sizeof sink);
            if (n <= 0) return (ssize_t)got;
            continue;
        }
        ssize_t n = read(fd, buf + got, cap - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return (ssize_t)got;
        got += (size_t)n;
        /* A complete answer ends the wait even if something else keeps the pipe open. */
        if (got >= sizeof(isolated_result)) {
            uint32_t n_devices;
            memcpy(&n_devices, buf + offsetof(isolated_result, n_devices), sizeof n_devices);
            if (n_devices <= 64 && got >= sizeof(isolated_result) + n_devices * sizeof(exo_device_report))
                return (ssize_t)got;
        }
    }
}

static void mark_failed(exo_runtime *rt, exo_plugin_rec *p, exo_status status, const char *why) {
    p->state = EXO_PLUGIN_FAILED;
    p->status = status;
    snprintf(p->reason, sizeof p->reason, "%s", why);
    exo_logf(&rt->logger, EXO_LOG_WARN, "registry", "plugin %s (%s) skipped: %s", p->name, p->path, why);
}

void exo_registry_probe_isolated(exo_runtime *rt, exo_plugin_rec *p) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) { /* no exec'd process of another thread inherits it */
        mark_failed(rt, p, EXO_ERR_INTERNAL, "isolated probe: pipe() failed");
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        mark_failed(rt, p, EXO_ERR_INTERNAL, "isolated probe: fork() failed");
        return;
    }
    if (pid == 0) {
        close(fds[0]);
        /* The embedder's log callback may need locks another thread held at fork (Python's
         * GIL): the child logs to stderr only. */
        rt->logger.fn = NULL;
        child_probe(rt, p, fds[1]);
        close(fds[1]);
        _exit(0); /* no atexit handlers: they belong to the parent's state */
    }
    close(fds[1]);
    size_t cap = sizeof(isolated_result) + 64 * sizeof(exo_device_report);
    char *buf = malloc(cap);
    uint32_t timeout = rt->probe_timeout_ms ? rt->probe_timeout_ms : 10000;
    ssize_t got = buf ? read_until(fds[0], buf, cap, exo_now_ms() + timeout) : -1;
    close(fds[0]);
    int wstatus = 0;
    if (got < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &wstatus, 0);
        char why[128];
        snprintf(why, sizeof why, "probe did not finish within %u ms (killed)", timeout);
        mark_failed(rt, p, buf ? EXO_ERR_TIMEOUT : EXO_ERR_NO_MEMORY, why);
        free(buf);
        return;
    }
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {}
    if (WIFSIGNALED(wstatus)) {
        char why[128];
        snprintf(why, sizeof why, "probe crashed in the isolated child (signal %d, %s)",
                 WTERMSIG(wstatus), strsignal(WTERMSIG(wstatus)));
        mark_failed(rt, p, EXO_ERR_PLUGIN_LOAD, why);
        free(buf);
        return;
    }
    isolated_result r;
    if ((size_t)got < sizeof r) {
        /* A crash handler (a sanitizer's, a driver's) may turn the signal into an exit status. */
        char why[160];
        snprintf(why, sizeof why, "probe crashed or exited in the isolated child without an answer (exit status %d)",
                 WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1);
        mark_failed(rt, p, EXO_ERR_PLUGIN_LOAD, why);
        free(buf);
        return;
    }
    memcpy(&r, buf, sizeof r);
    r.reason[sizeof r.reason - 1] = r.version[sizeof r.version - 1] = r.build_info[sizeof r.build_info - 1] = 0;
    if (r.n_devices > 64 || (size_t)got < sizeof r + r.n_devices * sizeof(exo_device_report)) {
        mark_failed(rt, p, EXO_ERR_PLUGIN_LOAD, "isolated probe answer truncated");
        free(buf);
        return;
    }
    p->state = r.state;
    p->status = r.status;
    p->class_rank = r.class_rank;
    p->abi_version = r.abi_version;
    p->runs_graphs = r.runs_graphs != 0;
    memcpy(p->reason, r.reason, sizeof p->reason);
    memcpy(p->version, r.version, sizeof p->version);
    memcpy(p->build_info, r.build_info, sizeof p->build_info);
    p->n_devices = r.n_devices;
    p->reports = calloc(r.n_devices ? r.n_devices : 1, sizeof *p->reports);
    p->opened = calloc(r.n_devices ? r.n_devices : 1, sizeof *p->opened);
    if (!p->reports || !p->opened) {
        mark_failed(rt, p, EXO_ERR_NO_MEMORY, "out of memory reading the isolated probe's answer");
        p->n_devices = 0;
    } else if (r.n_devices) {
        memcpy(p->reports, buf + sizeof r, r.n_devices * sizeof *p->reports);
    }
    free(buf);
}
