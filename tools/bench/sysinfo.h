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

/* CPU seconds of process pid's threads by what they do, told apart by chatd's thread
 * names: I/O threads ("chatd-io"), its other threads ("chatd-db", "chatd-cpu",
 * "chatd-watchdog": the workers), and the rest, which is the loop thread (named as the
 * process; every thread of a server that names none). */
struct thread_cpu {
    double loop, io, workers;
};
enum thread_role { THREAD_LOOP, THREAD_IO, THREAD_WORKER };
/* What thread tid of process pid does, by its name (THREAD_LOOP if it cannot be read). */
enum thread_role thread_role_of(pid_t pid, pid_t tid);
/* 0, or -1 if the threads cannot be read. */
int proc_threads_cpu(pid_t pid, struct thread_cpu *out);

/* Resident memory of process pid in bytes (VmRSS), or -1 if it cannot be read. */
long long proc_rss_bytes(pid_t pid);

/* Raise this process's soft RLIMIT_NOFILE to its hard limit. Returns the limit now in
 * force. */
long long raise_nofile_limit(void);

#endif
