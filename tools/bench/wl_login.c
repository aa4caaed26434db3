/* wl_login.c - workload "login": a login storm. N users are registered during setup;
 * then K connections at a time (--concurrency) each connect, log in as the next user
 * (round robin), and close, over and over for T seconds (or until --count logins).
 * Run it at the server's real password cost: Argon2id is what it measures. */
#include "bench.h"
#include "proto.h"
#include "report.h"
#include "setup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct storm {
    struct bench *b;
    struct conn *slots;
    int k;
    int running;   /* new connections are started */
    int in_window; /* the measured window is open */
    int busy;      /* slots with a connection open */
    int next_user;
    long long started, connects, logins, failures;
    long long connects_window, logins_window;
    struct hist connect_lat, login_lat;
    struct cpu_window cpu;
    int64_t t0;
    long long last_logins, last_connects;
    char failure[160];
};

static struct storm *current;

static void storm_start(struct storm *s, struct conn *c);

static void storm_connected(struct conn *c)
{
    struct storm *s = current;
    struct bench *b = s->b;
    int64_t t = now_ns();
    hist_record(&s->connect_lat, t - c->connect_start_ns);
    s->connects++;
    s->connects_window += s->in_window;
    int user = s->next_user;
    s->next_user = (s->next_user + 1) % b->opt.users;
    char *out = conn_reserve(c, 100 + strlen(b->opt.password));
    size_t len = (size_t)sprintf(out, "{\"cmd\":\"login\",\"user\":\"");
    len += user_name(b, user, out + len);
    len += (size_t)sprintf(out + len, "\",\"passwd\":\"%s\"}\n", b->opt.password);
    conn_commit(c, len);
    c->connect_start_ns = t;
}

static void storm_line(struct conn *c, char *line, size_t len)
{
    struct storm *s = current;
    size_t n;
    const char *cmd = proto_cmd(line, len, &n);
    if (!proto_cmd_is(cmd, n, "login_reply"))
        return;
    if (proto_result_is(line, len, "success")) {
        s->logins++;
        s->logins_window += s->in_window;
        if (s->in_window)
            hist_record(&s->login_lat, now_ns() - c->connect_start_ns);
    } else if (s->failures++ == 0) {
        snprintf(s->failure, sizeof(s->failure), "%.*s", (int)len, line);
    }
    conn_close(c);
    s->busy--;
    storm_start(s, c);
}

static void storm_closed(struct conn *c, const char *why)
{
    struct storm *s = current;
    if (s->failures++ == 0)
        snprintf(s->failure, sizeof(s->failure), "connection closed: %s", why);
    s->busy--;
    storm_start(s, c);
}

static const struct conn_ops storm_ops = {storm_connected, storm_line, storm_closed};

static void close_window(struct storm *s)
{
    if (!s->in_window)
        return;
    s->in_window = 0;
    cpu_window_stop(s->b, &s->cpu);
}

/* No new logins. A timed storm's window ends now; a counted one's when the last of
 * its logins is answered. */
static void storm_stop(struct storm *s)
{
    if (!s->running)
        return;
    s->running = 0;
    if (s->b->opt.count == 0)
        close_window(s);
    fprintf(stderr, "storm over after %.1f s; waiting for %d logins in progress\n",
            (double)(now_ns() - s->t0) / 1e9, s->busy);
}

static void storm_start(struct storm *s, struct conn *c)
{
    if (s->running && s->b->opt.count > 0 && s->started >= s->b->opt.count)
        storm_stop(s);
    if (!s->running) {
        if (s->busy == 0) {
            close_window(s);
            event_base_loopbreak(s->b->base);
        }
        return;
    }
    if (conn_open(c, &s->b->addr, &storm_ops, s) < 0)
        die("cannot open a connection: %s", strerror(errno));
    s->started++;
    s->busy++;
}

static void storm_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct storm *s = arg;
    fprintf(stderr, "%5.1f s  %6lld logins/s  %6lld connects/s  logins %lld  failures %lld\n",
            (double)(now_ns() - s->t0) / 1e9, s->logins - s->last_logins,
            s->connects - s->last_connects, s->logins, s->failures);
    s->last_logins = s->logins;
    s->last_connects = s->connects;
}

static void storm_end(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct storm *s = arg;
    storm_stop(s);
    if (s->busy == 0) {
        close_window(s);
        event_base_loopbreak(s->b->base);
    }
}

int workload_login(struct bench *b)
{
    struct setup_figures *f = calloc(1, sizeof(*f));
    struct storm *s = calloc(1, sizeof(*s));
    int k = b->opt.concurrency;
    if (!f || !s)
        die("out of memory");
    s->b = b;
    s->k = k;
    s->slots = calloc((size_t)k, sizeof(*s->slots));
    if (!s->slots)
        die("out of memory");
    current = s;
    setup_register(b, 0, b->opt.users, f);

    if (b->opt.count > 0)
        fprintf(stderr, "login storm: %ld logins, %d at a time\n", b->opt.count, k);
    else
        fprintf(stderr, "login storm: %.1f s, %d at a time\n", b->opt.seconds, k);
    struct event *tick = event_new(b->base, -1, EV_PERSIST, storm_tick, s);
    struct event *end = event_new(b->base, -1, 0, storm_end, s);
    struct timeval second = {1, 0};
    event_add(tick, &second);
    if (b->opt.count == 0) {
        struct timeval tv = {
            (time_t)b->opt.seconds,
            (suseconds_t)((b->opt.seconds - (double)(time_t)b->opt.seconds) * 1e6)};
        event_add(end, &tv);
    }
    cpu_window_start(b, &s->cpu);
    s->t0 = s->cpu.t0;
    s->running = 1;
    s->in_window = 1;
    for (int i = 0; i < k; i++) {
        conn_init(&s->slots[i]);
        storm_start(s, &s->slots[i]);
    }
    event_base_dispatch(b->base);
    storm_stop(s);
    close_window(s);
    event_free(tick);
    event_free(end);

    double secs = cpu_window_seconds(&s->cpu);
    report_begin();
    report_str("workload", "login");
    report_int("users", b->opt.users);
    report_int("concurrency", k);
    report_num("seconds", secs);
    report_num("logins_per_s", secs > 0 ? (double)s->logins_window / secs : 0);
    report_num("connects_per_s", secs > 0 ? (double)s->connects_window / secs : 0);
    report_hist_ms("login_latency_ms", &s->login_lat);
    report_hist_ms("connect_latency_ms", &s->connect_lat);
    report_int("logins", s->logins);
    report_int("failures", s->failures);
    if (s->failures)
        report_str("first_failure", s->failure);
    report_setup(f);
    report_cpu(&s->cpu, (uint64_t)s->logins_window, "login");
    report_end();

    for (int i = 0; i < k; i++)
        conn_free(&s->slots[i]);
    free(s->slots);
    int failed = s->failures > 0;
    free(s);
    free(f);
    return failed;
}
