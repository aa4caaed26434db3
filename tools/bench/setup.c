/* setup.c - registering users and logging sessions in before a run (see setup.h). */
#include "setup.h"
#include "proto.h"
#include "report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- progress while a step runs ---- */

struct step {
    struct bench *b;
    const char *what;
    long long done, total;
    struct event *tick;
    int64_t t0;
};

static void step_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct step *s = arg;
    fprintf(stderr, "setup: %s %lld/%lld (%.1f s)\n", s->what, s->done, s->total,
            (double)(now_ns() - s->t0) / 1e9);
}

static void step_begin(struct step *s, struct bench *b, const char *what, long long total)
{
    s->b = b;
    s->what = what;
    s->done = 0;
    s->total = total;
    s->t0 = now_ns();
    s->tick = event_new(b->base, -1, EV_PERSIST, step_tick, s);
    struct timeval second = {1, 0};
    event_add(s->tick, &second);
}

static void step_run(struct step *s)
{
    if (s->done < s->total)
        event_base_dispatch(s->b->base);
    event_free(s->tick);
}

static void step_one_done(struct step *s)
{
    if (++s->done == s->total)
        event_base_loopbreak(s->b->base);
}

static void open_on(struct bench *b, const struct sockaddr_in *addr, struct conn *c,
                    const struct conn_ops *ops, void *owner)
{
    if (conn_open(c, addr, ops, owner) < 0)
        die("cannot open a connection to %s:%d: %s%s", b->opt.host, b->opt.port, strerror(errno),
            errno == EMFILE ? " (the open-file limit is reached; see ulimit -n)" : "");
}

static void setup_closed(struct conn *c, const char *why)
{
    (void)c;
    die("a connection was closed during setup: %s", why);
}

/* ---- registration ---- */

struct registrar {
    struct conn c;
    struct step *step;
    struct setup_figures *f;
};

static void register_line(struct conn *c, char *line, size_t len)
{
    struct registrar *r = c->owner;
    size_t n;
    const char *cmd = proto_cmd(line, len, &n);
    if (!proto_cmd_is(cmd, n, "register_reply"))
        return;
    if (proto_result_is(line, len, "success"))
        r->f->registered++;
    else if (proto_has(line, len, "that name is taken"))
        r->f->name_taken++;
    else
        die("register failed: %s", line);
    step_one_done(r->step);
}

static const struct conn_ops register_ops = {NULL, register_line, setup_closed};

void setup_register(struct bench *b, int first, int n, struct setup_figures *f)
{
    if (n <= 0)
        return;
    int k = b->opt.concurrency < n ? b->opt.concurrency : n;
    struct registrar *regs = calloc((size_t)k, sizeof(*regs));
    if (!regs)
        die("out of memory");
    struct step step;
    step_begin(&step, b, "registering", n);
    for (int i = 0; i < k; i++) {
        conn_init(&regs[i].c);
        regs[i].step = &step;
        regs[i].f = f;
        open_on(b, &b->addr, &regs[i].c, &register_ops, &regs[i]);
    }
    /* Every registrar gets its share at once: the server takes them one at a time per
     * connection, so k is also how many hashes it is asked for at a time. */
    size_t plen = strlen(b->opt.password);
    for (int i = 0; i < n; i++) {
        struct conn *c = &regs[i % k].c;
        char *out = conn_reserve(c, 100 + plen);
        size_t len = (size_t)sprintf(out, "{\"cmd\":\"register\",\"user\":\"");
        len += user_name(b, first + i, out + len);
        len += (size_t)sprintf(out + len, "\",\"passwd\":\"%s\"}\n", b->opt.password);
        conn_commit(c, len);
    }
    step_run(&step);
    f->register_s = (double)(now_ns() - step.t0) / 1e9;
    fprintf(stderr, "setup: %d users registered (%lld new, %lld existed) in %.1f s\n", n,
            f->registered, f->name_taken, f->register_s);
    for (int i = 0; i < k; i++)
        conn_free(&regs[i].c);
    free(regs);
}

/* ---- login ---- */

/* Two passes, so each rate is measured on its own: connect every session (at most
 * `concurrency` connects pending at once), then send the step's request (at most
 * `concurrency` waiting for their answer at once). */
struct login_run {
    struct bench *b;
    struct peer *peers;
    int n, next;
    const struct setup_step *proto;
    const struct conn_ops *after;
    struct setup_figures *f;
    struct step step;
};

static struct login_run *current_login;

static void connect_next(struct login_run *r);
static void login_next(struct login_run *r);

static void login_connected(struct conn *c)
{
    struct login_run *r = current_login;
    hist_record(&r->f->connect_lat, now_ns() - c->connect_start_ns);
    r->f->connects++;
    step_one_done(&r->step);
    connect_next(r);
}

static void login_line(struct conn *c, char *line, size_t len)
{
    struct login_run *r = current_login;
    if (!r->proto->answer(c->owner, line, len))
        return;
    hist_record(&r->f->login_lat, now_ns() - c->connect_start_ns);
    r->f->logins++;
    c->ops = r->after;
    step_one_done(&r->step);
    login_next(r);
}

static const struct conn_ops login_ops = {login_connected, login_line, setup_closed};

static void connect_next(struct login_run *r)
{
    if (r->next < r->n) {
        struct peer *p = &r->peers[r->next++];
        /* --port2: odd-numbered users on the other node. */
        open_on(r->b, p->user % 2 ? &r->b->addr2 : &r->b->addr, &p->c, &login_ops, p);
    }
}

static void login_next(struct login_run *r)
{
    if (r->next >= r->n)
        return;
    struct peer *p = &r->peers[r->next++];
    r->proto->request(r->b, p);
    p->c.connect_start_ns = now_ns(); /* from here on: the login's start */
}

void setup_sessions(struct bench *b, struct peer *peers, int n, const struct setup_step *step,
                    const struct conn_ops *after, struct setup_figures *f)
{
    struct login_run r = {.b = b, .peers = peers, .n = n, .proto = step, .after = after, .f = f};
    current_login = &r;
    step_begin(&r.step, b, "connected", n);
    for (int i = 0; i < b->opt.concurrency && i < n; i++)
        connect_next(&r);
    step_run(&r.step);
    f->connect_s = (double)(now_ns() - r.step.t0) / 1e9;
    r.next = 0;
    step_begin(&r.step, b, step->what, n);
    for (int i = 0; i < b->opt.concurrency && i < n; i++)
        login_next(&r);
    step_run(&r.step);
    f->login_s = (double)(now_ns() - r.step.t0) / 1e9;
    fprintf(stderr, "setup: %d sessions connected in %.2f s, %s in %.2f s\n", n, f->connect_s,
            step->what, f->login_s);
    current_login = NULL;
}

/* ---- chatd's login ---- */

static void chatd_login_request(struct bench *b, struct peer *p)
{
    struct conn *c = &p->c;
    char *out = conn_reserve(c, 100 + strlen(b->opt.password));
    size_t len = (size_t)sprintf(out, "{\"cmd\":\"login\",\"user\":\"");
    len += user_name(b, p->user, out + len);
    len += (size_t)sprintf(out + len, "\",\"passwd\":\"%s\"}\n", b->opt.password);
    conn_commit(c, len);
}

static int chatd_login_answer(struct peer *p, char *line, size_t len)
{
    (void)p;
    size_t n;
    const char *cmd = proto_cmd(line, len, &n);
    if (!proto_cmd_is(cmd, n, "login_reply"))
        return 0;
    if (!proto_result_is(line, len, "success"))
        die("login failed: %s", line);
    return 1;
}

const struct setup_step setup_chatd_login = {"logged in", chatd_login_request, chatd_login_answer};

void setup_login(struct bench *b, struct peer *peers, int n, const struct conn_ops *after,
                 struct setup_figures *f)
{
    setup_sessions(b, peers, n, &setup_chatd_login, after, f);
}

/* ---- one request on each peer ---- */

struct each_run {
    const struct setup_step *proto;
    struct step step;
};

static struct each_run *current_each;

static void each_line(struct conn *c, char *line, size_t len)
{
    struct each_run *r = current_each;
    if (r->proto->answer(c->owner, line, len))
        step_one_done(&r->step);
}

static const struct conn_ops each_ops = {NULL, each_line, setup_closed};

void setup_each(struct bench *b, struct peer *peers, int n, const struct setup_step *step,
                const struct conn_ops *after)
{
    struct each_run r = {.proto = step};
    current_each = &r;
    step_begin(&r.step, b, step->what, n);
    for (int i = 0; i < n; i++) {
        peers[i].c.ops = &each_ops;
        step->request(b, &peers[i]);
    }
    step_run(&r.step);
    for (int i = 0; i < n; i++)
        peers[i].c.ops = after;
    current_each = NULL;
}

void report_setup(const struct setup_figures *f)
{
    report_obj_begin("setup");
    report_int("registered", f->registered);
    report_int("names_reused", f->name_taken);
    if (f->registered + f->name_taken > 0)
        report_num("registers_per_s",
                   f->register_s > 0 ? (double)(f->registered + f->name_taken) / f->register_s : 0);
    report_int("sessions", f->logins);
    if (f->connects > 0) {
        report_num("connects_per_s", f->connect_s > 0 ? (double)f->connects / f->connect_s : 0);
        report_num("logins_per_s", f->login_s > 0 ? (double)f->logins / f->login_s : 0);
        report_hist_ms("connect_latency_ms", &f->connect_lat);
        report_hist_ms("login_latency_ms", &f->login_lat);
    }
    report_obj_end();
}
