/* syscount.c - a process's system calls by kind, from tracepoint counters (see
 * syscount.h). One counter per thread and tracepoint: a counter follows one thread,
 * and threads started later are not counted (chatd and the peers start theirs at
 * start-up). */
/* syscall(): perf_event_open has no C library wrapper. */
#define _GNU_SOURCE
#include "syscount.h"
#include "sysinfo.h"

#include <dirent.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

enum kind { KIND_ALL, KIND_READ, KIND_WRITE, KIND_WAIT, KIND_FUTEX };

static const struct {
    const char *event; /* under the tracing file system's events/ */
    enum kind kind;
} tracepoints[] = {
    {"raw_syscalls/sys_enter", KIND_ALL},          {"syscalls/sys_enter_read", KIND_READ},
    {"syscalls/sys_enter_readv", KIND_READ},       {"syscalls/sys_enter_recvfrom", KIND_READ},
    {"syscalls/sys_enter_recvmsg", KIND_READ},     {"syscalls/sys_enter_write", KIND_WRITE},
    {"syscalls/sys_enter_writev", KIND_WRITE},     {"syscalls/sys_enter_sendto", KIND_WRITE},
    {"syscalls/sys_enter_sendmsg", KIND_WRITE},    {"syscalls/sys_enter_epoll_wait", KIND_WAIT},
    {"syscalls/sys_enter_epoll_pwait", KIND_WAIT}, {"syscalls/sys_enter_futex", KIND_FUTEX},
};
#define NTRACEPOINTS (sizeof(tracepoints) / sizeof(tracepoints[0]))

struct counter {
    int fd;
    enum kind kind;
    int worker; /* counts a worker thread's calls (sysinfo.h: thread_role_of) */
};

struct syscount {
    size_t n;
    struct counter counters[];
};

/* The tracepoint's id, or -1 when it is not there. */
static long tracepoint_id(const char *event)
{
    static const char *const roots[] = {"/sys/kernel/tracing/events",
                                        "/sys/kernel/debug/tracing/events"};
    for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
        char path[256];
        snprintf(path, sizeof(path), "%s/%s/id", roots[i], event);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        long id = -1;
        if (fscanf(f, "%ld", &id) != 1)
            id = -1;
        fclose(f);
        return id;
    }
    return -1;
}

static int open_counter(long id, pid_t tid)
{
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.type = PERF_TYPE_TRACEPOINT;
    attr.size = sizeof(attr);
    attr.config = (uint64_t)id;
    return (int)syscall(SYS_perf_event_open, &attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

/* The ids of process pid's threads, or NULL; *n their number. */
static pid_t *thread_ids(pid_t pid, size_t *n)
{
    char dir[64];
    snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
    DIR *tasks = opendir(dir);
    if (!tasks)
        return NULL;
    pid_t *ids = NULL;
    size_t cap = 0;
    *n = 0;
    for (struct dirent *e; (e = readdir(tasks)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            pid_t *more = realloc(ids, cap * sizeof(*ids));
            if (!more) {
                free(ids);
                closedir(tasks);
                return NULL;
            }
            ids = more;
        }
        ids[(*n)++] = (pid_t)atoi(e->d_name);
    }
    closedir(tasks);
    return ids;
}

struct syscount *syscount_open(pid_t pid)
{
    long ids[NTRACEPOINTS];
    for (size_t t = 0; t < NTRACEPOINTS; t++)
        if ((ids[t] = tracepoint_id(tracepoints[t].event)) < 0)
            return NULL;
    size_t nthreads;
    pid_t *tids = thread_ids(pid, &nthreads);
    if (!tids)
        return NULL;
    struct syscount *sc =
        calloc(1, sizeof(*sc) + nthreads * NTRACEPOINTS * sizeof(sc->counters[0]));
    if (!sc) {
        free(tids);
        return NULL;
    }
    for (size_t i = 0; i < nthreads; i++) {
        int worker = thread_role_of(pid, tids[i]) == THREAD_WORKER;
        for (size_t t = 0; t < NTRACEPOINTS; t++) {
            int fd = open_counter(ids[t], tids[i]);
            if (fd < 0) {
                free(tids);
                syscount_close(sc);
                return NULL;
            }
            sc->counters[sc->n++] = (struct counter){fd, tracepoints[t].kind, worker};
        }
    }
    free(tids);
    return sc;
}

void syscount_read(const struct syscount *sc, struct syscall_counts *out)
{
    *out = (struct syscall_counts){0};
    for (size_t i = 0; i < sc->n; i++) {
        uint64_t v = 0;
        if (read(sc->counters[i].fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
            continue; /* a counter that cannot be read adds nothing */
        switch (sc->counters[i].kind) {
        case KIND_ALL:
            out->all += v;
            if (sc->counters[i].worker)
                out->workers_all += v;
            break;
        case KIND_READ:
            out->reads += v;
            break;
        case KIND_WRITE:
            out->writes += v;
            break;
        case KIND_WAIT:
            out->waits += v;
            break;
        case KIND_FUTEX:
            out->futex += v;
            break;
        }
    }
}

void syscount_close(struct syscount *sc)
{
    if (!sc)
        return;
    for (size_t i = 0; i < sc->n; i++)
        close(sc->counters[i].fd);
    free(sc);
}
