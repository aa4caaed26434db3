/* report.c - the JSON figures on stdout and the CPU window (see report.h). */
#include "report.h"

#include "conn.h"
#include "sysinfo.h"

#include <math.h>
#include <stdio.h>

static int first[8];
static int depth;
static const char *transport = "tcp";

static void key(const char *k)
{
    if (!first[depth])
        fputc(',', stdout);
    first[depth] = 0;
    /* Keys are the bench's own, never user input: no escaping needed. */
    printf("\"%s\":", k);
}

void report_transport(const char *name)
{
    transport = name;
}

void report_begin(void)
{
    depth = 0;
    first[0] = 1;
    fputc('{', stdout);
    report_str("transport", transport);
}

void report_end(void)
{
    fputs("}\n", stdout);
    fflush(stdout);
}

void report_obj_begin(const char *k)
{
    key(k);
    fputc('{', stdout);
    first[++depth] = 1;
}

void report_obj_end(void)
{
    fputc('}', stdout);
    depth--;
}

void report_str(const char *k, const char *value)
{
    key(k);
    fputc('"', stdout);
    for (const char *p = value; *p; p++) {
        if (*p == '"' || *p == '\\')
            fputc('\\', stdout);
        if ((unsigned char)*p >= 0x20)
            fputc(*p, stdout);
    }
    fputc('"', stdout);
}

void report_int(const char *k, long long value)
{
    key(k);
    printf("%lld", value);
}

void report_num(const char *k, double value)
{
    key(k);
    if (!isfinite(value))
        fputs("null", stdout);
    else if (fabs(value) >= 1000)
        printf("%.0f", value);
    else
        printf("%.4g", value);
}

void report_hist_ms(const char *k, const struct hist *h)
{
    static const struct {
        const char *name;
        double q;
    } qs[] = {{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}, {"p999", 0.999}};
    report_obj_begin(k);
    report_int("count", (long long)h->count);
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        key(qs[i].name);
        printf("%.3f", (double)hist_quantile(h, qs[i].q) / 1e6);
    }
    key("max");
    printf("%.3f", (double)h->max / 1e6);
    report_obj_end();
}

void cpu_window_start(const struct bench *b, struct cpu_window *w)
{
    w->t0 = now_ns();
    w->self0 = self_cpu_seconds();
    w->srv0 = b->opt.server_pid > 0 ? proc_cpu_seconds(b->opt.server_pid, &w->srv_sys0) : -1;
    w->srv_threads_ok =
        b->opt.server_pid > 0 && proc_threads_cpu(b->opt.server_pid, &w->srv_threads0) == 0;
    w->db0 = b->opt.db_pid > 0 ? proc_cpu_seconds(b->opt.db_pid, &w->db_sys0) : -1;
    w->db1 = w->db0;
    w->db_sys1 = w->db_sys0;
    w->srv_calls = b->opt.server_pid > 0 ? syscount_open(b->opt.server_pid) : NULL;
    if (w->srv_calls)
        syscount_read(w->srv_calls, &w->srv_calls0);
    w->received0 = conn_bytes_received();
    w->received1 = w->received0;
    w->chatd_ok =
        b->opt.metrics_port > 0 && chatd_counters_read(b->opt.metrics_port, &w->chatd0) == 0;
    w->t1 = w->t0;
    w->self1 = w->self0;
    w->srv1 = w->srv0;
    w->srv_sys1 = w->srv_sys0;
}

void cpu_window_stop(const struct bench *b, struct cpu_window *w)
{
    w->t1 = now_ns();
    w->self1 = self_cpu_seconds();
    w->srv1 = b->opt.server_pid > 0 ? proc_cpu_seconds(b->opt.server_pid, &w->srv_sys1) : -1;
    w->db1 = b->opt.db_pid > 0 ? proc_cpu_seconds(b->opt.db_pid, &w->db_sys1) : -1;
    w->srv_threads_ok = w->srv_threads_ok && b->opt.server_pid > 0 &&
                        proc_threads_cpu(b->opt.server_pid, &w->srv_threads1) == 0;
    w->received1 = conn_bytes_received();
    w->chatd_ok = w->chatd_ok && chatd_counters_read(b->opt.metrics_port, &w->chatd1) == 0;
    if (w->srv_calls) {
        syscount_read(w->srv_calls, &w->srv_calls1);
        syscount_close(w->srv_calls);
        w->srv_calls = NULL;
    }
}

double cpu_window_seconds(const struct cpu_window *w)
{
    return (double)(w->t1 - w->t0) / 1e9;
}

/* key "<what>us_per_<unit>": seconds * 1e6 / units. */
static void per_unit(const char *what, double seconds, uint64_t units, const char *unit)
{
    char key[64];
    snprintf(key, sizeof(key), "%sus_per_%s", what, unit);
    report_num(key, seconds * 1e6 / (double)units);
}

/* One process's CPU figures; `sys` < 0: the kernel's part is not known; `threads`
 * (NULL: unknown) the CPU seconds by thread. */
static void one_cpu(const char *name, double cpu, double sys, const struct thread_cpu *threads,
                    double wall, uint64_t units, const char *unit)
{
    report_obj_begin(name);
    report_num("seconds", cpu);
    report_num("fraction", wall > 0 ? cpu / wall : 0);
    if (sys >= 0)
        report_num("kernel_fraction", cpu > 0 ? sys / cpu : 0);
    if (units > 0) {
        per_unit("", cpu, units, unit);
        if (sys >= 0) {
            per_unit("kernel_", sys, units, unit);
            per_unit("user_", cpu - sys, units, unit);
        }
        if (threads) {
            per_unit("loop_", threads->loop, units, unit);
            per_unit("io_", threads->io, units, unit);
            per_unit("workers_", threads->workers, units, unit);
        }
    }
    report_obj_end();
}

/* key "<what>_per_<unit>": count / units. */
static void count_per_unit(const char *what, uint64_t count, uint64_t units, const char *unit)
{
    char key[64];
    snprintf(key, sizeof(key), "%s_per_%s", what, unit);
    report_num(key, (double)count / (double)units);
}

static void report_server_io(const struct cpu_window *w, uint64_t units, const char *unit)
{
    if (units == 0)
        return;
    report_obj_begin("server_io");
    count_per_unit("bytes_received", w->received1 - w->received0, units, unit);
    const struct syscall_counts *a = &w->srv_calls0, *z = &w->srv_calls1;
    if (z->all > 0) {
        count_per_unit("syscalls", z->all - a->all, units, unit);
        count_per_unit("reads", z->reads - a->reads, units, unit);
        count_per_unit("writes", z->writes - a->writes, units, unit);
        count_per_unit("waits", z->waits - a->waits, units, unit);
        count_per_unit("futex", z->futex - a->futex, units, unit);
        count_per_unit("workers_syscalls", z->workers_all - a->workers_all, units, unit);
    }
    report_obj_end();
}

/* "chatd_counters": over the window, the messages per commit batch and the mean time
 * from a request's arrival to its reply, from chatd's own counters. */
static void report_chatd_counters(const struct cpu_window *w)
{
    if (!w->chatd_ok)
        return;
    double batches = w->chatd1.batches - w->chatd0.batches;
    double requests = w->chatd1.requests - w->chatd0.requests;
    report_obj_begin("chatd_counters");
    report_num("batches", batches);
    report_num("messages_per_batch",
               batches > 0 ? (w->chatd1.committed - w->chatd0.committed) / batches : 0);
    report_num("request_ms_mean",
               requests > 0
                   ? (w->chatd1.request_seconds - w->chatd0.request_seconds) * 1e3 / requests
                   : 0);
    report_obj_end();
}

void report_cpu(const struct cpu_window *w, uint64_t units, const char *unit)
{
    double wall = cpu_window_seconds(w);
    one_cpu("bench_cpu", w->self1 - w->self0, -1, NULL, wall, units, unit);
    /* Threads that ended within the window take their time with them: by thread, the
     * figures are those of the threads there at both ends. */
    const struct thread_cpu threads = {
        w->srv_threads1.loop - w->srv_threads0.loop,
        w->srv_threads1.io - w->srv_threads0.io,
        w->srv_threads1.workers - w->srv_threads0.workers,
    };
    if (w->srv0 >= 0 && w->srv1 >= 0)
        one_cpu("server_cpu", w->srv1 - w->srv0, w->srv_sys1 - w->srv_sys0,
                w->srv_threads_ok ? &threads : NULL, wall, units, unit);
    if (w->db0 >= 0 && w->db1 >= 0)
        one_cpu("db_cpu", w->db1 - w->db0, w->db_sys1 - w->db_sys0, NULL, wall, units, unit);
    report_server_io(w, units, unit);
    report_chatd_counters(w);
}
