/* sysinfo.c - CPU time, resident memory and the open-file limit (see sysinfo.h). */
#include "sysinfo.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

double self_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* User and system CPU seconds in the stat file at path; -1 if it cannot be read. */
static double stat_cpu_seconds(const char *path, double *system)
{
    char buf[1024];
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name (field 2) may hold spaces; the fields after it start past the
     * last ')'. utime and stime are fields 14 and 15. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long long utime, stime;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return -1;
    double tick = (double)sysconf(_SC_CLK_TCK);
    if (system)
        *system = (double)stime / tick;
    return (double)(utime + stime) / tick;
}

double proc_cpu_seconds(pid_t pid, double *system)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    return stat_cpu_seconds(path, system);
}

enum thread_role thread_role_of(pid_t pid, pid_t tid)
{
    char path[64], comm[32] = "";
    snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", (int)pid, (int)tid);
    FILE *f = fopen(path, "r");
    if (f) {
        if (!fgets(comm, sizeof(comm), f))
            comm[0] = '\0';
        fclose(f);
    }
    if (strncmp(comm, "chatd-io", 8) == 0)
        return THREAD_IO;
    return strncmp(comm, "chatd-", 6) == 0 ? THREAD_WORKER : THREAD_LOOP;
}

int proc_threads_cpu(pid_t pid, struct thread_cpu *out)
{
    char dir[64];
    snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
    DIR *tasks = opendir(dir);
    if (!tasks)
        return -1;
    *out = (struct thread_cpu){0};
    for (struct dirent *e; (e = readdir(tasks)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s/stat", dir, e->d_name);
        double cpu = stat_cpu_seconds(path, NULL);
        if (cpu < 0) /* the thread ended meanwhile */
            continue;
        switch (thread_role_of(pid, (pid_t)atoi(e->d_name))) {
        case THREAD_IO:
            out->io += cpu;
            break;
        case THREAD_WORKER:
            out->workers += cpu;
            break;
        case THREAD_LOOP:
            out->loop += cpu;
            break;
        }
    }
    closedir(tasks);
    return 0;
}

long long proc_rss_bytes(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long long kib = -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtoll(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib < 0 ? -1 : kib * 1024;
}

long long raise_nofile_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -1;
    if (rl.rlim_cur != rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur == RLIM_INFINITY ? (long long)1 << 40 : (long long)rl.rlim_cur;
}
