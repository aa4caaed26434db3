/* wl_relogin.c - workload "relogin": users coming back with their login tokens, as
 * after a restart.
 *
 * With --save, N users (--users) are registered and logged in by password, K at a time
 * (--concurrency), and each one's name and token go to --tokens FILE, a line each. Run
 * that against a chatd with a cheap password cost: tokens do not depend on it.
 * Without --save, every user of FILE logs in with its token, K at a time, on a new
 * connection each, and the figure is how long until all are in. A token login costs no
 * password hash, so run this against chatd at its default cost: tools/bench-relogin
 * does both steps, with a restart in between. */
#include "bench.h"
#include "conn.h"
#include "proto.h"
#include "report.h"
#include "setup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_MAX 128

struct account {
    char name[40];
    char token[TOKEN_MAX];
};

struct relogin {
    struct bench *b;
    struct account *accounts;
    int n;
    struct conn *slots;
    int *slot_user; /* the account each slot is logging in */
    int next, busy;
    long long logins, failures;
    struct hist lat;
    int64_t t0, last_in;
    char failure[200];
};

static struct relogin *current;

static void next_login(struct relogin *r, int slot);

static void relogin_connected(struct conn *c)
{
    struct relogin *r = current;
    const struct account *a = &r->accounts[r->slot_user[c - r->slots]];
    char *out = conn_reserve(c, 200 + TOKEN_MAX + strlen(r->b->opt.password));
    int len = r->b->opt.save
                  ? sprintf(out, "{\"cmd\":\"login\",\"user\":\"%s\",\"passwd\":\"%s\"}\n", a->name,
                            r->b->opt.password)
                  : sprintf(out, "{\"cmd\":\"login\",\"user\":\"%s\",\"token\":\"%s\"}\n", a->name,
                            a->token);
    conn_commit(c, (size_t)len);
}

/* The token of a login_reply (success) into out; -1 when it has none. */
static int reply_token(const char *line, size_t len, char out[TOKEN_MAX])
{
    static const char key[] = "\"token\":\"";
    const char *end = line + len;
    for (const char *p = line; p + sizeof(key) - 1 < end; p++) {
        if (memcmp(p, key, sizeof(key) - 1) != 0)
            continue;
        p += sizeof(key) - 1;
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (!q || q - p >= TOKEN_MAX)
            return -1;
        memcpy(out, p, (size_t)(q - p));
        out[q - p] = '\0';
        return 0;
    }
    return -1;
}

static void relogin_line(struct conn *c, char *line, size_t len)
{
    struct relogin *r = current;
    size_t n;
    const char *cmd = proto_cmd(line, len, &n);
    if (!proto_cmd_is(cmd, n, "login_reply"))
        return; /* stored messages and presence pushes */
    struct account *a = &r->accounts[r->slot_user[c - r->slots]];
    int ok = proto_result_is(line, len, "success");
    if (ok && r->b->opt.save && reply_token(line, len, a->token) < 0)
        ok = 0;
    if (ok) {
        r->logins++;
        r->last_in = now_ns();
        hist_record(&r->lat, r->last_in - c->connect_start_ns);
    } else if (r->failures++ == 0) {
        snprintf(r->failure, sizeof(r->failure), "%s: %.*s", a->name, (int)len, line);
    }
    conn_close(c);
    r->busy--;
    next_login(r, (int)(c - r->slots));
}

static void relogin_closed(struct conn *c, const char *why)
{
    struct relogin *r = current;
    if (r->failures++ == 0)
        snprintf(r->failure, sizeof(r->failure), "connection closed: %s", why);
    r->busy--;
    next_login(r, (int)(c - r->slots));
}

static const struct conn_ops relogin_ops = {relogin_connected, relogin_line, relogin_closed};

static void next_login(struct relogin *r, int slot)
{
    if (r->next >= r->n) {
        if (r->busy == 0)
            event_base_loopbreak(r->b->base);
        return;
    }
    r->slot_user[slot] = r->next++;
    struct conn *c = &r->slots[slot];
    c->connect_start_ns = now_ns();
    if (conn_open(c, &r->b->addr, &relogin_ops, r) < 0)
        die("cannot open a connection: %s", strerror(errno));
    r->busy++;
}

static void progress(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct relogin *r = arg;
    fprintf(stderr, "%5.1f s  logged in %lld of %d  failures %lld\n",
            (double)(now_ns() - r->t0) / 1e9, r->logins, r->n, r->failures);
}

static void read_tokens(struct relogin *r, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        die("cannot read %s: %s", path, strerror(errno));
    int cap = 1024;
    r->accounts = malloc((size_t)cap * sizeof(*r->accounts));
    struct account a;
    while (r->accounts && fscanf(f, "%39s %127s", a.name, a.token) == 2) {
        if (r->n == cap) {
            cap *= 2;
            r->accounts = realloc(r->accounts, (size_t)cap * sizeof(*r->accounts));
            if (!r->accounts)
                break;
        }
        r->accounts[r->n++] = a;
    }
    fclose(f);
    if (!r->accounts)
        die("out of memory");
    if (r->n == 0)
        die("%s holds no tokens: run --save first", path);
}

static void write_tokens(const struct relogin *r, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        die("cannot write %s: %s", path, strerror(errno));
    for (int i = 0; i < r->n; i++)
        fprintf(f, "%s %s\n", r->accounts[i].name, r->accounts[i].token);
    if (fclose(f) != 0)
        die("cannot write %s: %s", path, strerror(errno));
}

int workload_relogin(struct bench *b)
{
    struct relogin *r = calloc(1, sizeof(*r));
    struct setup_figures *f = calloc(1, sizeof(*f));
    if (!r || !f)
        die("out of memory");
    r->b = b;
    current = r;
    if (b->opt.save) {
        r->n = b->opt.users;
        r->accounts = calloc((size_t)r->n, sizeof(*r->accounts));
        if (!r->accounts)
            die("out of memory");
        for (int i = 0; i < r->n; i++)
            user_name(b, i, r->accounts[i].name);
        setup_register(b, 0, r->n, f);
    } else {
        read_tokens(r, b->opt.tokens);
    }
    int k = b->opt.concurrency;
    r->slots = calloc((size_t)k, sizeof(*r->slots));
    r->slot_user = calloc((size_t)k, sizeof(*r->slot_user));
    if (!r->slots || !r->slot_user)
        die("out of memory");
    fprintf(stderr, "%s: %d users, %d at a time\n",
            b->opt.save ? "logging in by password to save tokens" : "logging in by token", r->n, k);
    struct event *tick = event_new(b->base, -1, EV_PERSIST, progress, r);
    struct timeval second = {1, 0};
    event_add(tick, &second);
    struct cpu_window cpu;
    cpu_window_start(b, &cpu);
    r->t0 = cpu.t0;
    for (int i = 0; i < k; i++) {
        conn_init(&r->slots[i]);
        next_login(r, i);
    }
    if (r->busy > 0)
        event_base_dispatch(b->base);
    cpu_window_stop(b, &cpu);
    event_free(tick);
    if (b->opt.save && r->failures == 0)
        write_tokens(r, b->opt.tokens);

    report_begin();
    report_str("workload", b->opt.save ? "relogin_save" : "relogin");
    report_int("users", r->n);
    report_int("concurrency", k);
    report_num("all_in_s", r->logins ? (double)(r->last_in - r->t0) / 1e9 : 0);
    report_num("logins_per_s",
               r->last_in > r->t0 ? (double)r->logins * 1e9 / (double)(r->last_in - r->t0) : 0);
    report_hist_ms("login_latency_ms", &r->lat);
    report_int("logins", r->logins);
    report_int("failures", r->failures);
    if (r->failures)
        report_str("first_failure", r->failure);
    if (b->opt.save)
        report_setup(f);
    report_cpu(&cpu, (uint64_t)r->logins, "login");
    report_end();

    for (int i = 0; i < k; i++)
        conn_free(&r->slots[i]);
    int failed = r->failures > 0;
    free(r->slots);
    free(r->slot_user);
    free(r->accounts);
    free(r);
    free(f);
    return failed;
}
