/* report.h - the one JSON object of figures a run prints on stdout, and the CPU time
 * of the bench and of the server over the measured window. */
#ifndef CHATD_BENCH_REPORT_H
#define CHATD_BENCH_REPORT_H

#include "bench.h"
#include "hist.h"
#include "syscount.h"
#include "scrape.h"
#include "sysinfo.h"

#include <stdint.h>

/* The transport every object names first ("transport": "tcp", "tls", "ws" or "wss"). */
void report_transport(const char *name);

/* Writing the object: keys in the order called; objects may nest. */
void report_begin(void);
void report_end(void);
void report_obj_begin(const char *key);
void report_obj_end(void);
void report_str(const char *key, const char *value);
void report_int(const char *key, long long value);
void report_num(const char *key, double value);
/* {"count":N,"p50":ms,"p90":ms,"p99":ms,"p999":ms,"max":ms} */
void report_hist_ms(const char *key, const struct hist *h);

/* CPU seconds of the bench (and of the server, when its pid is known) between start
 * and stop. */
struct cpu_window {
    int64_t t0, t1;
    double self0, self1;
    double srv0, srv1;                            /* < 0: unknown */
    double srv_sys0, srv_sys1;                    /* the system part of srv0 and srv1 */
    double db0, db1, db_sys0, db_sys1;            /* the same of --db-pid; < 0: unknown */
    struct thread_cpu srv_threads0, srv_threads1; /* by thread (sysinfo.h) */
    int srv_threads_ok;
    struct syscount *srv_calls; /* NULL: the server's calls are not counted */
    struct syscall_counts srv_calls0, srv_calls1;
    uint64_t received0, received1;        /* bytes the bench received (conn.h) */
    struct chatd_counters chatd0, chatd1; /* with --metrics-port (scrape.h) */
    int chatd_ok;
};

void cpu_window_start(const struct bench *b, struct cpu_window *w);
void cpu_window_stop(const struct bench *b, struct cpu_window *w);
double cpu_window_seconds(const struct cpu_window *w);

/* "bench_cpu" and "server_cpu": seconds, fraction of the window's wall time, and
 * microseconds per unit (e.g. per delivery) when units > 0; the server's also
 * "kernel_fraction", the part of its CPU time spent in the kernel ("kernel_us_per_UNIT"
 * and "user_us_per_UNIT" the same in microseconds per unit), and its microseconds
 * per unit by thread: "loop_us_per_UNIT", "io_us_per_UNIT", "workers_us_per_UNIT". */
/* With --db-pid also "db_cpu", the same figures of the database server (no threads).
 * With units > 0 also "server_io", per unit: the bytes the bench received
 * ("bytes_received_per_UNIT": what the server wrote to its clients) and, where the
 * server's system calls can be counted (syscount.h), their number by kind
 * ("syscalls_per_UNIT", "reads_per_UNIT", "writes_per_UNIT", "waits_per_UNIT",
 * "futex_per_UNIT"; chatd's include its calls to MariaDB, which its workers make:
 * "workers_syscalls_per_UNIT" of all). * With --metrics-port also "chatd_counters": the commit
 * batches over the window, their "messages_per_batch" and the "request_ms_mean" from a request's
 * arrival to its reply. */
void report_cpu(const struct cpu_window *w, uint64_t units, const char *unit);

#endif
