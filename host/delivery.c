/* delivery.c - what delivery keeps per user on the read side: whether pushes go out at
 * once or wait, the pushes held in order while their stored messages (timeline rows)
 * drain after a login, and the logins that start a drain. Messages are written by
 * post.c; this file only pushes them (delivery_push, through stream_interim.c until
 * the read side of delivery version 2 replaces it).
 *
 * Per user: while a login is being answered, and while the drain runs after it, live
 * pushes are held in order and go out after the drain. The held list is bounded
 * (DELIVERY_HELD_MAX); past it pushes are dropped (counted). When the user's last
 * session ends, held pushes are dropped: posted messages were given timeline rows when
 * the user had no session. Plugins' own push_user/push_session bypass all of this. */
#include "delivery_internal.h"

#include "log.h"
#include "migrations.h"
#include "server.h"
#include "session.h"
#include "users.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

struct dl_user *delivery_user(struct delivery *d, const char *name, int create)
{
    struct dl_user *u;
    HASH_FIND_STR(d->users, name, u);
    if (u || !create)
        return u;
    u = calloc(1, sizeof(*u));
    if (!u || !(u->name = strdup(name))) {
        free(u);
        return NULL;
    }
    HASH_ADD_KEYPTR(hh, d->users, u->name, strlen(u->name), u);
    return u;
}

static void user_free(struct delivery *d, struct dl_user *u)
{
    HASH_DEL(d->users, u);
    for (size_t i = 0; i < u->n_held; i++)
        json_decref(u->held[i].msg);
    d->stats.held -= u->n_held;
    free(u->held);
    free(u->name);
    free(u);
}

void delivery_user_release(struct delivery *d, struct dl_user *u)
{
    if (!u->online && !u->logins_pending && !u->stores && !u->acks && !u->drain && !u->n_held)
        user_free(d, u);
}

/* Hold msg (a reference is taken) for u. 0, or -1 out of memory. */
static int hold(struct delivery *d, struct dl_user *u, json_t *msg)
{
    if (u->n_held == u->cap_held) {
        size_t cap = u->cap_held ? u->cap_held * 2 : 16;
        struct held_push *more = realloc(u->held, cap * sizeof(*more));
        if (!more)
            return -1;
        u->held = more;
        u->cap_held = cap;
    }
    u->held[u->n_held++] = (struct held_push){json_incref(msg)};
    d->stats.held++;
    return 0;
}

static void held_clear(struct delivery *d, struct dl_user *u)
{
    d->stats.held -= u->n_held;
    u->n_held = 0;
    free(u->held);
    u->held = NULL;
    u->cap_held = 0;
}

void delivery_release_held(struct delivery *d, struct dl_user *u)
{
    if (u->draining || u->logins_pending)
        return; /* still holding: a login's reply or its drain is ahead */
    struct user *su = users_find(d->srv, u->name);
    for (size_t i = 0; su && i < u->n_held; i++) {
        size_t len = session_format_line(d->srv, u->held[i].msg);
        users_push_line(d->srv, su, d->srv->out.data, len);
    }
    for (size_t i = 0; i < u->n_held; i++)
        json_decref(u->held[i].msg);
    held_clear(d, u);
}

/* Send or hold msg for one user: 1 when it went out or waits, 0 when the user has no
 * session or the held list is full (dropped; a posted message has its timeline row). */
static int push_one(struct delivery *d, const char *name, json_t *msg)
{
    struct user *su = users_find(d->srv, name);
    if (!su)
        return 0;
    struct dl_user *u = delivery_user(d, name, 0);
    if (!u || (!u->draining && !u->logins_pending)) {
        size_t len = session_format_line(d->srv, msg);
        return len > 0 && users_push_line(d->srv, su, d->srv->out.data, len) > 0;
    }
    if (u->n_held < DELIVERY_HELD_MAX && hold(d, u, msg) == 0)
        return 1;
    d->stats.dropped++;
    return 0;
}

size_t delivery_push(struct server *srv, const char *user, json_t *msg)
{
    return srv->delivery ? (size_t)push_one(srv->delivery, user, msg) : 0;
}

uint64_t delivery_login_begin(struct server *srv, const char *user)
{
    struct delivery *d = srv->delivery;
    struct dl_user *u = d ? delivery_user(d, user, 1) : NULL;
    if (!u)
        return 0;
    u->online = 1;
    u->logins_pending++;
    return u->generation;
}

void delivery_login_replied(struct server *srv, const char *user, uint64_t generation, int success)
{
    struct delivery *d = srv->delivery;
    struct dl_user *u = d ? delivery_user(d, user, 0) : NULL;
    if (!u || u->generation != generation || u->logins_pending == 0)
        return;
    u->logins_pending--;
    if (!users_find(srv, user)) {
        /* The login did not bind after all (or its session is gone). */
        if (u->logins_pending == 0)
            delivery_user_gone(srv, user);
        return;
    }
    if (!success || !srv->cfg->db.enable || srv->check_only) {
        delivery_release_held(d, u); /* nothing is stored without a database */
        return;
    }
    if (u->draining) {
        u->drain_again = 1;
        return;
    }
    u->draining = 1;
    drain_start(d, u);
}

void delivery_user_gone(struct server *srv, const char *user)
{
    struct delivery *d = srv->delivery;
    struct dl_user *u = d ? delivery_user(d, user, 0) : NULL;
    if (!u)
        return;
    u->online = 0;
    u->generation++;
    u->logins_pending = 0;
    drain_abandon(d, u);
    u->draining = 0;
    u->drain_again = 0;
    u->spilling = 0;
    /* Nobody is left to push to: held messages have their timeline rows, the rest
     * (presence and the like) is stale by the next login. */
    d->stats.dropped += u->n_held;
    for (size_t i = 0; i < u->n_held; i++)
        json_decref(u->held[i].msg);
    held_clear(d, u);
    delivery_user_release(d, u);
}

int delivery_new(struct server *srv)
{
    struct delivery *d = calloc(1, sizeof(*d));
    if (!d || !(d->self.name = strdup(delivery_descriptor.name))) {
        free(d);
        return -1;
    }
    d->srv = srv;
    d->self.desc = &delivery_descriptor;
    d->self.state = PLUGIN_RUNNING;
    d->self.server = srv;
    srv->delivery = d;
    return 0;
}

int delivery_migrate(struct server *srv, struct chatd_db *db, char *err, size_t errlen)
{
    char why[768];
    if (migrations_apply(db, &srv->delivery->self, why, sizeof(why)) == 0)
        return 0;
    snprintf(err, errlen, "chatd's own tables: %s", why);
    return -1;
}

void delivery_free(struct server *srv)
{
    struct delivery *d = srv->delivery;
    if (!d)
        return;
    struct dl_user *u, *tmp;
    HASH_ITER (hh, d->users, u, tmp) {
        if (u->drain)
            drain_free_at_exit(u->drain);
        user_free(d, u);
    }
    free(d->self.name);
    free(d);
    srv->delivery = NULL;
}

void delivery_render_metrics(struct server *srv, struct evbuffer *out)
{
    const struct delivery *d = srv->delivery;
    if (!d)
        return;
    const struct delivery_stats *s = &d->stats;
    metrics_gauge(out, "chatd_delivery_held", "Live pushes held while stored messages drain.",
                  (double)s->held);
    metrics_counter(out, "chatd_delivery_drains_total", "Drains of a user's inbox started.",
                    s->drains);
    metrics_counter(out, "chatd_delivery_drain_failures_total",
                    "Drains given up after their retries.", s->drain_failures);
    metrics_counter(out, "chatd_delivery_drained_total", "Stored messages pushed by drains.",
                    s->drained);
    metrics_counter(out, "chatd_delivery_dropped_total",
                    "Pushes dropped: the held list was full, or the user left.", s->dropped);
}
