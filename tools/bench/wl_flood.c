/* wl_flood.c - workload "flood": what a login flood does to users already logged in.
 * U users (--users) log in, then each keeps one database command in flight, join_group
 * and leave_group of one group in turn (a database write each), for T seconds
 * (--seconds): the quiet window. Then F connections (--flooders) start looping logins with a wrong
 * password for one existing name, each sending the next as soon as the last is answered, and the
 * users go on for T seconds more: the flood window. The figures are the users' reply
 * latency in each window, and what the flood's logins were answered. Run chatd at its
 * real password cost: the flood is Argon2id work. */
#include "bench.h"
#include "conn.h"
#include "peer.h"
#include "proto.h"
#include "report.h"
#include "setup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct flood {
    struct bench *b;
    struct peer *users;
    int n_users;
    char group[40], victim[40];
    struct conn *flooders;
    int flooding;
    int window; /* 0 quiet, 1 flood, 2 over */
    struct hist lat[2];
    long long replies[2], failures;
    long long flood_busy, flood_wrong, flood_other;
    char failure[200];
};

static struct flood *current;

/* The user's next command: create_group first (the first user's succeeds, the others'
 * find it taken), then join_group and leave_group in turn. */
static void send_next(struct flood *fl, struct peer *p)
{
    static const char *const cmds[] = {"create_group", "join_group", "leave_group"};
    const char *cmd = cmds[p->next_seq == 0 ? 0 : 1 + (p->next_seq - 1) % 2];
    p->next_seq++;
    char *out = conn_reserve(&p->c, 160);
    int len = sprintf(out, "{\"cmd\":\"%s\",\"group\":\"%s\"}\n", cmd, fl->group);
    conn_commit(&p->c, (size_t)len);
    p->c.connect_start_ns = now_ns();
}
static void user_connected(struct conn *c)
{
    (void)c;
}

static void user_line(struct conn *c, char *line, size_t len)
{
    struct flood *fl = current;
    size_t n;
    const char *cmd = proto_cmd(line, len, &n);
    struct peer *p = (struct peer *)c;
    int created = proto_cmd_is(cmd, n, "create_group_reply");
    if (!created && !proto_cmd_is(cmd, n, "join_group_reply") &&
        !proto_cmd_is(cmd, n, "leave_group_reply"))
        return;
    if (created) {
        send_next(fl, p); /* setting up: success for one user, failure (taken) for the rest */
    } else if (fl->window < 2) {
        /* The group's creator is already a member at its first join: any answer from
         * the database counts; busy and internal are failures. */
        if (!proto_result_is(line, len, "busy") && !proto_result_is(line, len, "internal")) {
            hist_record(&fl->lat[fl->window], now_ns() - c->connect_start_ns);
            fl->replies[fl->window]++;
        } else if (fl->failures++ == 0) {
            snprintf(fl->failure, sizeof(fl->failure), "%.*s", (int)len, line);
        }
        send_next(fl, p);
    }
}

static void user_closed(struct conn *c, const char *why)
{
    (void)c;
    die("a logged-in user's connection closed: %s", why);
}

static const struct conn_ops user_ops = {user_connected, user_line, user_closed};

static void send_wrong_login(struct flood *fl, struct conn *c)
{
    char *out = conn_reserve(c, 100 + strlen(fl->victim) + strlen(fl->b->opt.password));
    int len = sprintf(out, "{\"cmd\":\"login\",\"user\":\"%s\",\"passwd\":\"not-%s\"}\n",
                      fl->victim, fl->b->opt.password);
    conn_commit(c, (size_t)len);
}

static void flooder_connected(struct conn *c)
{
    send_wrong_login(current, c);
}

static void flooder_line(struct conn *c, char *line, size_t len)
{
    struct flood *fl = current;
    if (proto_result_is(line, len, "busy"))
        fl->flood_busy++;
    else if (proto_result_is(line, len, "passwd_error"))
        fl->flood_wrong++;
    else
        fl->flood_other++;
    if (fl->flooding)
        send_wrong_login(fl, c);
    else
        conn_close(c);
}

static void flooder_closed(struct conn *c, const char *why)
{
    (void)c;
    (void)why;
    current->flood_other++;
}

static const struct conn_ops flooder_ops = {flooder_connected, flooder_line, flooder_closed};

static void next_window(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct flood *fl = arg;
    fl->window++;
    if (fl->window == 1) {
        fprintf(stderr, "quiet window over: %lld replies; flooding with %d connections\n",
                fl->replies[0], fl->b->opt.flooders);
        fl->flooding = 1;
        for (int i = 0; i < fl->b->opt.flooders; i++)
            if (conn_open(&fl->flooders[i], &fl->b->addr, &flooder_ops, fl) < 0)
                die("cannot open a connection: %s", strerror(errno));
        return;
    }
    fprintf(stderr,
            "flood window over: %lld replies; flood answered busy %lld, "
            "passwd_error %lld, other %lld\n",
            fl->replies[1], fl->flood_busy, fl->flood_wrong, fl->flood_other);
    fl->flooding = 0;
    event_base_loopbreak(fl->b->base);
}

int workload_flood(struct bench *b)
{
    struct flood *fl = calloc(1, sizeof(*fl));
    struct setup_figures *f = calloc(1, sizeof(*f));
    int u = b->opt.users;
    if (!fl || !f)
        die("out of memory");
    current = fl;
    fl->b = b;
    fl->n_users = u;
    fl->users = calloc((size_t)u, sizeof(*fl->users));
    fl->flooders = calloc((size_t)b->opt.flooders, sizeof(*fl->flooders));
    if (!fl->users || !fl->flooders)
        die("out of memory");
    snprintf(fl->group, sizeof(fl->group), "%sg", b->prefix);
    user_name(b, u, fl->victim);
    peers_init(fl->users, u, 0);
    for (int i = 0; i < b->opt.flooders; i++)
        conn_init(&fl->flooders[i]);
    setup_register(b, 0, u + 1, f);
    setup_login(b, fl->users, u, &user_ops, f);

    struct event *switch_ev = event_new(b->base, -1, EV_PERSIST, next_window, fl);
    struct timeval tv = {(time_t)b->opt.seconds,
                         (suseconds_t)((b->opt.seconds - (double)(time_t)b->opt.seconds) * 1e6)};
    event_add(switch_ev, &tv);
    for (int i = 0; i < u; i++)
        send_next(fl, &fl->users[i]);
    event_base_dispatch(b->base);
    event_free(switch_ev);

    report_begin();
    report_str("workload", "flood");
    report_int("users", u);
    report_int("flooders", b->opt.flooders);
    report_num("window_s", b->opt.seconds);
    report_hist_ms("quiet_reply_latency_ms", &fl->lat[0]);
    report_hist_ms("flood_reply_latency_ms", &fl->lat[1]);
    report_int("user_failures", fl->failures);
    if (fl->failures)
        report_str("first_failure", fl->failure);
    report_obj_begin("flood_logins");
    report_int("busy", fl->flood_busy);
    report_int("passwd_error", fl->flood_wrong);
    report_int("other", fl->flood_other);
    report_obj_end();
    report_setup(f);
    report_end();

    for (int i = 0; i < b->opt.flooders; i++) {
        conn_free(&fl->flooders[i]);
    }
    peers_free(fl->users, u);
    int failed = fl->failures > 0;
    free(fl->users);
    free(fl->flooders);
    free(fl);
    free(f);
    return failed;
}
