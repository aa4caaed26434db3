/* syscount.h - counting the system calls of another process (the server under load)
 * with the kernel's syscall tracepoints (perf_event_open, counting only: no samples, no
 * slowdown to speak of), by kind: reads (read, readv, recvfrom, recvmsg), writes
 * (write, writev, sendto, sendmsg), waits for events (epoll_wait, epoll_pwait) and
 * futex (threads waking each other). Needs root or perf_event_paranoid <= 1 and the
 * tracing file system; without them there are no counts, and the bench says nothing. */
#ifndef CHATD_BENCH_SYSCOUNT_H
#define CHATD_BENCH_SYSCOUNT_H

#include <stdint.h>
#include <sys/types.h>

struct syscall_counts {
    uint64_t all, reads, writes, waits, futex;
    uint64_t workers_all; /* of `all`, those of chatd's workers (its database calls) */
};

struct syscount;

/* Start counting the calls of every thread process pid has now; NULL when it cannot
 * be done (no permission, no tracepoints, no such process, out of memory). */
struct syscount *syscount_open(pid_t pid);
/* The calls counted since syscount_open. */
void syscount_read(const struct syscount *sc, struct syscall_counts *out);
void syscount_close(struct syscount *sc);

#endif
