/* wl_idle.c - workload "idle": C sessions log in (as U users, C by default) and are
 * held H seconds without a request. With --server-pid, chatd's resident memory is read
 * before setup, after the registration (before the first session connects), and while
 * all are held; the difference over C is the server's memory per idle session. */
#include "bench.h"
#include "report.h"
#include "setup.h"
#include "sysinfo.h"
#include "target.h"

#include <stdio.h>
#include <stdlib.h>

struct idle_run {
    struct bench *b;
    int sessions;
    long long closed;
    long long rss_max;
    int64_t t0;
    struct event *tick;
};

static struct idle_run *current;

static void idle_line(struct conn *c, char *line, size_t len)
{
    (void)c;
    (void)line;
    (void)len;
}

static void idle_closed(struct conn *c, const char *why)
{
    struct peer *p = c->owner;
    if (current->closed++ == 0)
        fprintf(stderr, "the session of user %d was closed: %s\n", p->user, why);
}

static const struct conn_ops idle_ops = {NULL, idle_line, idle_closed};

static void idle_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct idle_run *r = arg;
    long long rss = r->b->opt.server_pid > 0 ? proc_rss_bytes(r->b->opt.server_pid) : -1;
    if (rss > r->rss_max)
        r->rss_max = rss;
    fprintf(stderr, "%5.1f s  %d sessions held, %lld closed", (double)(now_ns() - r->t0) / 1e9,
            r->sessions - (int)r->closed, r->closed);
    if (rss >= 0)
        fprintf(stderr, "  server RSS %.1f MiB", (double)rss / 1048576.0);
    fputc('\n', stderr);
}

static void idle_end(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct idle_run *r = arg;
    event_base_loopbreak(r->b->base);
}

int workload_idle(struct bench *b)
{
    int c = b->opt.sessions, u = b->opt.users;
    pid_t pid = b->opt.server_pid;
    long long limit = raise_nofile_limit();
    long long need = (long long)c + b->opt.concurrency + 32;
    if (limit < need)
        die("%d sessions need about %lld open files, but the limit is %lld (the hard limit: "
            "raise it with `ulimit -Hn` as root, or run fewer sessions)",
            c, need, limit);
    struct setup_figures *f = calloc(1, sizeof(*f));
    struct peer *peers = calloc((size_t)c, sizeof(*peers));
    if (!f || !peers)
        die("out of memory");
    peers_init(peers, c, 0);
    for (int i = 0; i < c; i++)
        peers[i].user = i % u;

    long long rss_start = pid > 0 ? proc_rss_bytes(pid) : -1;
    if (pid > 0 && rss_start < 0)
        die("cannot read /proc/%d/status (is --server-pid chatd's pid?)", (int)pid);
    const struct target *target = target_of(b);
    if (target->prepare)
        target->prepare(b, u, f);
    long long rss_before = pid > 0 ? proc_rss_bytes(pid) : -1;
    struct idle_run r = {.b = b, .sessions = c, .rss_max = -1};
    current = &r;
    setup_sessions(b, peers, c, target->session, &idle_ops, f);

    fprintf(stderr, "holding %d sessions for %.0f s\n", c, b->opt.hold);
    struct cpu_window cpu;
    cpu_window_start(b, &cpu);
    r.t0 = cpu.t0;
    r.tick = event_new(b->base, -1, EV_PERSIST, idle_tick, &r);
    struct event *end = event_new(b->base, -1, 0, idle_end, &r);
    struct timeval second = {1, 0};
    struct timeval hold = {(time_t)b->opt.hold,
                           (suseconds_t)((b->opt.hold - (double)(time_t)b->opt.hold) * 1e6)};
    event_add(r.tick, &second);
    event_add(end, &hold);
    event_base_dispatch(b->base);
    long long rss_held = pid > 0 ? proc_rss_bytes(pid) : -1;
    cpu_window_stop(b, &cpu);
    event_free(r.tick);
    event_free(end);

    report_begin();
    report_str("workload", "idle");
    report_str("target", target->name);
    report_int("sessions", c);
    report_int("users", u);
    report_num("hold_s", cpu_window_seconds(&cpu));
    report_int("closed_by_server", r.closed);
    if (pid > 0) {
        report_obj_begin("server_rss");
        report_int("before_setup_bytes", rss_start);
        report_int("before_sessions_bytes", rss_before);
        report_int("held_bytes", rss_held);
        report_int("held_max_bytes", r.rss_max > rss_held ? r.rss_max : rss_held);
        report_num("per_session_bytes", (double)(rss_held - rss_before) / (double)c);
        report_obj_end();
    }
    report_setup(f);
    report_cpu(&cpu, 0, "");
    report_end();

    peers_free(peers, c);
    free(peers);
    free(f);
    return r.closed ? 1 : 0;
}
