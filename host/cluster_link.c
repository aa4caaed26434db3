/* cluster_link.c - the two hiredis connections to Redis (commands; subscriptions) on
 * chatd's loop, with AUTH, a connect timeout and reconnection with backoff.
 *
 * hiredis (0.14) frees a context itself after a failed connect or a lost connection,
 * and must not be asked to free one from inside its connect callback: so every
 * connection this file gives up is freed from an event of its own (teardown_ev), and a
 * context hiredis freed is forgotten in the callback that says so. */
#include "cluster_link.h"

#include "config.h"
#include "log.h"
#include "secret_file.h"

#include <event2/event.h>
#include <event2/util.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS   5000
#define PASSWORD_MAX     512

struct conn {
    struct cluster_link *link;
    redisAsyncContext *ac; /* NULL: none (or hiredis freed it) */
    int ready;
    size_t subscribed; /* channels confirmed (the subscription connection) */
};

enum link_state { LINK_WAITING, LINK_CONNECTING, LINK_UP };

struct cluster_link {
    struct event_base *base;
    struct config_redis where;
    char address[PATH_MAX + 8];
    char *password; /* NULL: no AUTH */
    char **channels;
    size_t n_channels;
    struct cluster_link_handlers handlers;
    int64_t connect_timeout_ms;
    struct conn cmd, sub;
    enum link_state state;
    int64_t backoff_ms;
    int was_up;
    int outage_logged; /* the warning for this outage is out */
    struct event *retry_ev, *timeout_ev, *teardown_ev;
    struct cluster_link_stats stats;
};

/* A command's callback and its argument, until hiredis answers it. */
struct pending {
    cluster_reply_fn done;
    void *arg;
};

static void ms_timeval(int64_t ms, struct timeval *tv)
{
    tv->tv_sec = (time_t)(ms / 1000);
    tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}

void cluster_link_fail(struct cluster_link *link, const char *why)
{
    if (link->state == LINK_WAITING)
        return;
    int was_up = link->state == LINK_UP;
    link->state = LINK_WAITING;
    link->stats.up = 0;
    evtimer_del(link->timeout_ev);
    if (!link->outage_logged) {
        log_warn("cluster: Redis at %s %s: %s; reconnecting with backoff", link->address,
                 was_up ? "lost" : "unreachable", why);
        link->outage_logged = 1;
    } else {
        log_debug("cluster: Redis at %s: %s", link->address, why);
    }
    if (!was_up)
        link->stats.connect_failures++;
    /* Equal jitter: half the delay fixed, half random, so nodes that lost Redis together
     * do not all come back at the same instant. */
    int64_t half = link->backoff_ms / 2;
    uint32_t dice = 0;
    evutil_secure_rng_get_bytes(&dice, sizeof(dice));
    struct timeval tv;
    ms_timeval(half + (int64_t)(dice % (uint32_t)(half + 1)), &tv);
    link->backoff_ms =
        link->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : link->backoff_ms * 2;
    evtimer_add(link->retry_ev, &tv);
    event_active(link->teardown_ev, EV_TIMEOUT, 0);
    if (was_up && link->handlers.down)
        link->handlers.down(link->handlers.arg);
}

/* Free what is left of both connections: their commands are answered NULL. */
static void close_conns(struct cluster_link *link)
{
    struct conn *conns[] = {&link->cmd, &link->sub};
    for (size_t i = 0; i < 2; i++) {
        redisAsyncContext *ac = conns[i]->ac;
        conns[i]->ac = NULL;
        conns[i]->ready = 0;
        conns[i]->subscribed = 0;
        if (ac)
            redisAsyncFree(ac);
    }
}

static void on_teardown(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    close_conns(arg);
}

static void maybe_up(struct cluster_link *link)
{
    if (link->state != LINK_CONNECTING || !link->cmd.ready || !link->sub.ready)
        return;
    link->state = LINK_UP;
    link->stats.up = 1;
    evtimer_del(link->timeout_ev);
    link->backoff_ms = BACKOFF_FIRST_MS;
    if (link->was_up)
        link->stats.reconnects++;
    link->was_up = 1;
    link->outage_logged = 0;
    log_info("cluster: Redis link up (%s)", link->address);
    if (link->handlers.up)
        link->handlers.up(link->handlers.arg);
}

/* A reply that says the connection is no good: an error, or nothing where an answer
 * was due. NULL replies come from a connection being freed: nothing to do. */
static int refused(struct conn *c, const redisReply *r, const char *what)
{
    if (r->type != REDIS_REPLY_ERROR)
        return 0;
    char why[256];
    snprintf(why, sizeof(why), "%s refused: %.200s", what, r->str);
    cluster_link_fail(c->link, why);
    return 1;
}

static void on_auth(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    if (reply)
        refused(privdata, reply, "AUTH");
}

static void on_ping(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    struct conn *c = privdata;
    if (!reply || refused(c, reply, "PING") || c->ac != ac)
        return;
    c->ready = 1;
    maybe_up(c->link);
}

static void on_subscribed(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct conn *c = privdata;
    struct cluster_link *link = c->link;
    const redisReply *r = reply;
    if (!r || c->ac != ac || r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return;
    if (strcmp(r->element[0]->str, "subscribe") == 0) {
        if (++c->subscribed == link->n_channels) {
            c->ready = 1;
            maybe_up(link);
        }
        return;
    }
    if (strcmp(r->element[0]->str, "message") != 0 || link->state != LINK_UP ||
        r->element[2]->type != REDIS_REPLY_STRING || !link->handlers.message)
        return;
    link->handlers.message(link->handlers.arg, r->element[1]->str, r->element[1]->len,
                           r->element[2]->str, r->element[2]->len);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct conn *c = ac->data;
    if (status == REDIS_OK || c->ac != ac)
        return;
    c->ac = NULL; /* hiredis frees it on return */
    cluster_link_fail(c->link, ac->errstr ? ac->errstr : "cannot connect");
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    struct conn *c = ac->data;
    if (c->ac != ac)
        return; /* freed by close_conns */
    c->ac = NULL;
    cluster_link_fail(c->link, ac->errstr && ac->err ? ac->errstr : "connection closed");
}

/* Start one connection and queue what makes it ready: AUTH, then PING (commands) or
 * SUBSCRIBE (subscriptions). hiredis sends them once connected. */
static int open_conn(struct cluster_link *link, struct conn *c, int subscriber)
{
    redisAsyncContext *ac = link->where.unix_path
                                ? redisAsyncConnectUnix(link->where.unix_path)
                                : redisAsyncConnect(link->where.host, link->where.port);
    if (!ac || ac->err) {
        char why[256];
        snprintf(why, sizeof(why), "%s", ac && ac->errstr ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        cluster_link_fail(link, why);
        return -1;
    }
    c->ac = ac;
    ac->data = c;
    if (redisLibeventAttach(ac, link->base) != REDIS_OK) {
        cluster_link_fail(link, "cannot watch the connection");
        return -1;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    if (link->password) {
        const char *argv[] = {"AUTH", link->password};
        const size_t lens[] = {4, strlen(link->password)};
        redisAsyncCommandArgv(ac, on_auth, c, 2, argv, lens);
    }
    if (!subscriber)
        return redisAsyncCommand(ac, on_ping, c, "PING") == REDIS_OK ? 0 : -1;
    const char *argv[1 + 8];
    size_t lens[1 + 8];
    argv[0] = "SUBSCRIBE";
    lens[0] = 9;
    for (size_t i = 0; i < link->n_channels; i++) {
        argv[1 + i] = link->channels[i];
        lens[1 + i] = strlen(link->channels[i]);
    }
    return redisAsyncCommandArgv(ac, on_subscribed, c, (int)(1 + link->n_channels), argv, lens) ==
                   REDIS_OK
               ? 0
               : -1;
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cluster_link *link = arg;
    close_conns(link); /* what the teardown has not freed yet */
    link->state = LINK_CONNECTING;
    struct timeval tv;
    ms_timeval(link->connect_timeout_ms, &tv);
    evtimer_add(link->timeout_ev, &tv);
    if (open_conn(link, &link->cmd, 0) == 0 && link->state == LINK_CONNECTING)
        open_conn(link, &link->sub, 1);
}

static void on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cluster_link *link = arg;
    char why[96];
    snprintf(why, sizeof(why), "not ready within connect_timeout_ms (%lld)",
             (long long)link->connect_timeout_ms);
    cluster_link_fail(link, why);
}

struct cluster_link *cluster_link_new(struct event_base *base, const struct config_cluster *cfg,
                                      const char *const *channels, size_t n_channels,
                                      const struct cluster_link_handlers *handlers, char *err,
                                      size_t errlen)
{
    if (n_channels == 0 || n_channels > 8) {
        snprintf(err, errlen, "cluster: 1 to 8 channels");
        return NULL;
    }
    struct cluster_link *link = calloc(1, sizeof(*link));
    if (!link || !(link->channels = calloc(n_channels, sizeof(char *)))) {
        free(link);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    link->base = base;
    link->handlers = *handlers;
    link->connect_timeout_ms = cfg->connect_timeout_ms;
    link->backoff_ms = BACKOFF_FIRST_MS;
    link->cmd.link = link->sub.link = link;
    link->n_channels = n_channels;
    snprintf(link->address, sizeof(link->address), "%s", cfg->redis);
    int ok = config_parse_redis(cfg->redis, &link->where, err, errlen) == 0;
    for (size_t i = 0; ok && i < n_channels; i++)
        ok = (link->channels[i] = strdup(channels[i])) != NULL;
    if (ok && cfg->redis_password_file[0]) {
        char line[PASSWORD_MAX + 2];
        ok = secret_file_first_line("[cluster] redis_password_file", cfg->redis_password_file, line,
                                    sizeof(line), err, errlen) == 0;
        if (ok && !(link->password = strdup(line)))
            ok = 0;
    }
    link->retry_ev = evtimer_new(base, on_retry, link);
    link->timeout_ev = evtimer_new(base, on_connect_timeout, link);
    link->teardown_ev = event_new(base, -1, 0, on_teardown, link);
    if (!ok || !link->retry_ev || !link->timeout_ev || !link->teardown_ev) {
        if (ok)
            snprintf(err, errlen, "out of memory");
        cluster_link_free(link);
        return NULL;
    }
    /* The first attempt on the loop, like every later one. */
    link->state = LINK_WAITING;
    struct timeval now = {0, 0};
    evtimer_add(link->retry_ev, &now);
    return link;
}

void cluster_link_free(struct cluster_link *link)
{
    if (!link)
        return;
    link->state = LINK_WAITING;
    link->handlers = (struct cluster_link_handlers){0};
    close_conns(link);
    struct event *events[] = {link->retry_ev, link->timeout_ev, link->teardown_ev};
    for (size_t i = 0; i < 3; i++)
        if (events[i])
            event_free(events[i]);
    for (size_t i = 0; i < link->n_channels; i++)
        free(link->channels[i]);
    free(link->channels);
    if (link->password) {
        memset(link->password, 0, strlen(link->password));
        free(link->password);
    }
    config_redis_free(&link->where);
    free(link);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    struct pending *p = privdata;
    if (p->done)
        p->done(reply, p->arg);
    free(p);
}

int cluster_link_command(struct cluster_link *link, cluster_reply_fn done, void *arg, int argc,
                         const char **argv, const size_t *argvlen)
{
    if (link->state != LINK_UP || !link->cmd.ac)
        return -1;
    struct pending *p = malloc(sizeof(*p));
    if (!p)
        return -1;
    *p = (struct pending){.done = done, .arg = arg};
    if (redisAsyncCommandArgv(link->cmd.ac, on_reply, p, argc, argv, argvlen) != REDIS_OK) {
        free(p);
        return -1;
    }
    return 0;
}

void cluster_link_get_stats(const struct cluster_link *link, struct cluster_link_stats *out)
{
    *out = link->stats;
}

const char *cluster_link_address(const struct cluster_link *link)
{
    return link->address;
}
