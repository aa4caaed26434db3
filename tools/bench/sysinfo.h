/* sysinfo.h - what the bench reads about processes: its own CPU time, the server's CPU
 * time and resident memory from /proc, and the open-file limit. */
#ifndef CHATD_BENCH_SYSINFO_H
#define CHATD_BENCH_SYSINFO_H

#include <sys/types.h>

/* User + system CPU seconds of this process so far. */
double self_cpu_seconds(void);

/* User + system CPU seconds of process pid (all its threads), or -1 if it cannot be
 * read; *system (if not NULL) gets the system part, the time spent in the kernel. */
double proc_cpu_seconds(pid_t pid, double *system);

/* Resident memory of process pid in bytes (VmRSS), or -1 if it cannot be read. */
long long proc_rss_bytes(pid_t pid);

/* Raise this process's soft RLIMIT_NOFILE to its hard limit. Returns the limit now in
 * force. */
long long raise_nofile_limit(void);

#endif
