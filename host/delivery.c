/* delivery.c - deliver() and what it keeps per user: whether their pushes go out at
 * once or wait, the pushes held in order while their inbox drains, and the logins that
 * start a drain.
 *
 * The guarantee, per user: everything deliver() accepted for them reaches their
 * sessions in acceptance order, stored messages included, except where noted below.
 *  - While a login is being answered, and while the inbox drains after it, live pushes
 *    are held in order, and go out after the drain (after the last inbox row).
 *  - The held list is bounded (DELIVERY_HELD_MAX). When it is full, the held pushes
 *    (those given CHATD_DELIVER_STORE; the others are dropped and counted) are moved
 *    into the inbox, in order, followed by the new message, and from then on every
 *    message for the user given CHATD_DELIVER_STORE goes to the inbox ("spilling")
 *    until the drain has read the inbox to its end with no store for the user still in
 *    flight. Stores are written one batch at a time in acceptance order, so inbox order
 *    is acceptance order and the drain sends them in it; nothing can overtake an older
 *    spilled message. Pushes without CHATD_DELIVER_STORE cannot go to the inbox: while
 *    spilling they are held (up to the bound, then dropped), and so go out after the
 *    stored messages accepted after them: the one reordering, between pushes with and
 *    without the flag, and only past a full held list.
 *  - When the user's last session ends, held pushes given CHATD_DELIVER_STORE are
 *    appended to the inbox in order (they are newer than anything in it).
 *  Exceptions: a drain that gives up after its retries (database down) lets held pushes
 *  out ahead of rows still stored; a store that fails loses its message (its done says
 *  so, or the log for held pushes written back); plugins' own push_user/push_session
 *  bypass all of this. */
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
static int hold(struct delivery *d, struct dl_user *u, json_t *msg, int store)
{
    if (u->n_held == u->cap_held) {
        size_t cap = u->cap_held ? u->cap_held * 2 : 16;
        struct held_push *more = realloc(u->held, cap * sizeof(*more));
        if (!more)
            return -1;
        u->held = more;
        u->cap_held = cap;
    }
    u->held[u->n_held++] = (struct held_push){json_incref(msg), store};
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
        json_t *msg = u->held[i].msg;
        size_t len = session_format_line(d->srv, msg);
        if (!u->held[i].store) {
            users_push_line(d->srv, su, d->srv->out.data, len);
            continue;
        }
        if (len > 0 && unsent_push_line(d->srv, su, d->srv->out.data, len, msg) == 0) {
            /* Every session is closing: it waits in the inbox instead. */
            struct store_item *item = inbox_store_item(d->srv->out.data, len - 1, u->name);
            if (item)
                inbox_store_add(d, item);
            else
                log_error("a message for %s is lost: out of memory", u->name);
        }
    }
    for (size_t i = 0; i < u->n_held; i++)
        json_decref(u->held[i].msg);
    held_clear(d, u);
}

/* Append u's held pushes to the inbox, in order; those without CHATD_DELIVER_STORE
 * cannot wait there and stay held, as do those that ran out of memory on the way. */
static void spill_held(struct delivery *d, struct dl_user *u)
{
    /* Pushes that may not be stored (presence and the like) stay held, in their order. */
    size_t kept = 0, nomem = 0;
    for (size_t i = 0; i < u->n_held; i++) {
        if (!u->held[i].store) {
            u->held[kept++] = u->held[i];
            continue;
        }
        json_t *msg = u->held[i].msg;
        char *body = json_dumps(msg, JSON_COMPACT);
        struct store_item *item = body ? inbox_store_item(body, strlen(body), u->name) : NULL;
        free(body);
        if (!item) {
            /* Not lost: it stays held (sent after the drain, or spilled again). */
            if (!nomem++)
                log_error("held messages for %s stay in memory: out of memory", u->name);
            u->held[kept++] = u->held[i];
            continue;
        }
        inbox_store_add(d, item);
        json_decref(msg);
    }
    d->stats.held -= u->n_held - kept;
    u->n_held = kept;
}

/* A name the inbox can keep: 1 to DELIVERY_NAME_MAX printable ASCII bytes. */
static int storable_name(const char *name)
{
    size_t n = 0;
    for (; name[n]; n++)
        if (n >= DELIVERY_NAME_MAX || (unsigned char)name[n] <= ' ' || (unsigned char)name[n] > '~')
            return 0;
    return n > 0;
}

/* The item that will store msg, made on first need with room for every user. */
static struct store_item *item_for(struct store_item **item, size_t n_users)
{
    if (!*item) {
        *item = calloc(1, sizeof(**item));
        if (*item && !((*item)->users = calloc(n_users, sizeof(char *)))) {
            free(*item);
            *item = NULL;
        }
    }
    return *item;
}

/* Send or hold msg for one user; returns 1 when it still has to be stored for them (the
 * caller stores only with CHATD_DELIVER_STORE), 0 when it went out, waits, or was
 * dropped; *online counts the users it went out or waits for. */
static int deliver_one(struct delivery *d, const char *name, json_t *msg, int store, char **line,
                       size_t *len, size_t *online)
{
    struct user *su = users_find(d->srv, name);
    if (!su)
        return 1;
    struct dl_user *u = delivery_user(d, name, 0);
    if (!u || (!u->draining && !u->logins_pending)) {
        if (!*line) {
            /* Serialised once for all the users who get it now. */
            size_t n = session_format_line(d->srv, msg);
            if (n && (*line = malloc(n))) {
                memcpy(*line, d->srv->out.data, n);
                *len = n;
            } else {
                log_error("a message for %s could not be sent: out of memory%s", name,
                          store ? "; it is stored" : "");
            }
        }
        size_t took = !*line  ? 0
                      : store ? unsent_push_line(d->srv, su, *line, *len, msg)
                              : users_push_line(d->srv, su, *line, *len);
        if (took > 0) {
            (*online)++;
            return 0;
        }
        return 1; /* every session is closing */
    }
    /* While spilling, only what cannot be stored waits in memory. */
    if ((!u->spilling || !store) && u->n_held < DELIVERY_HELD_MAX && hold(d, u, msg, store) == 0) {
        (*online)++;
        return 0;
    }
    if (!store) {
        d->stats.dropped++;
        return 0;
    }
    if (!u->spilling) {
        u->spilling = 1;
        log_info("%zu messages wait for %s while stored ones are sent; more are stored", u->n_held,
                 name);
        spill_held(d, u);
    }
    d->stats.held_overflow++;
    return 1;
}

int delivery_deliver(struct chatd_plugin *caller, const char *const *users, size_t n_users,
                     json_t *msg, uint32_t flags, int64_t max_stored,
                     const struct delivery_sender *sender, chatd_deliver_done_fn done, void *arg)
{
    struct server *srv = caller->server;
    struct delivery *d = srv->delivery;
    int store = (flags & CHATD_DELIVER_STORE) != 0;
    int rc = 0;
    if (!json_is_object(msg) || (n_users > 0 && !users) || max_stored < 0 || !d ||
        sender->max_per_sender < 0 || (sender->name && !storable_name(sender->name)))
        rc = CHATD_EINVAL;
    for (size_t i = 0; rc == 0 && i < n_users; i++)
        if (!users[i] || (store && !storable_name(users[i])))
            rc = CHATD_EINVAL;
    if (rc == 0 && store && (!srv->cfg->db.enable || srv->check_only))
        rc = CHATD_ENOSYS;
    if (rc != 0) {
        json_decref(msg);
        return rc;
    }
    json_object_del(msg, "id");
    json_object_del(msg, "offline");
    char *line = NULL;
    size_t len = 0, online = 0;
    struct store_item *item = NULL;
    int status = 0;
    for (size_t i = 0; i < n_users; i++) {
        if (!deliver_one(d, users[i], msg, store, &line, &len, &online) || !store)
            continue;
        if (!item_for(&item, n_users) || !(item->users[item->n_users] = strdup(users[i]))) {
            status = CHATD_ENOMEM;
            break;
        }
        item->n_users++;
    }
    free(line);
    if (status == 0 && item && !(item->body = json_dumps(msg, JSON_COMPACT)))
        status = CHATD_ENOMEM;
    if (status == 0 && item && sender->name && !(item->sender = strdup(sender->name)))
        status = CHATD_ENOMEM;
    json_decref(msg);
    if (status != 0)
        log_error("a message could not be stored: out of memory");
    if (status != 0 || !item) {
        if (item)
            inbox_store_item_free(item);
        if (done)
            done(status, online, 0, arg);
        return 0;
    }
    item->len = strlen(item->body);
    item->max_stored = n_users == 1 ? max_stored : 0;
    item->max_per_sender = n_users == 1 && item->sender ? sender->max_per_sender : 0;
    item->done = done;
    item->arg = arg;
    item->online = online;
    item->caller = caller;
    caller->pending_jobs++;
    inbox_store_add(d, item);
    return 0;
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
        delivery_release_held(d, u); /* nothing can be stored without a database */
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
    spill_held(d, u);
    /* Nobody is left to push to: what could not wait in the inbox (presence and the
     * like, stale by the next login) goes, so the user's record can go too. */
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
    d->queue_tail = &d->queue_head;
    d->stats.inbox_rows = -1;
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

void delivery_start(struct server *srv)
{
    if (srv->delivery && srv->cfg->db.enable && !srv->check_only)
        inbox_store_count_all(srv->delivery);
}

void delivery_free(struct server *srv)
{
    struct delivery *d = srv->delivery;
    if (!d)
        return;
    inbox_store_free(d);
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
    if (s->inbox_rows >= 0)
        metrics_gauge(out, "chatd_delivery_inbox_messages",
                      "Stored messages waiting in the inbox (rows of chatd_inbox).",
                      (double)s->inbox_rows);
    metrics_gauge(out, "chatd_delivery_held", "Live pushes held while stored messages drain.",
                  (double)s->held);
    metrics_gauge(out, "chatd_delivery_store_queue", "Messages waiting to be stored.",
                  (double)d->queued);
    metrics_counter(out, "chatd_delivery_stored_total", "Inbox rows stored.", s->stored);
    metrics_counter(out, "chatd_delivery_store_refused_total",
                    "Stores refused because the recipient's inbox was full.", s->refused);
    metrics_counter(out, "chatd_delivery_store_refused_sender_total",
                    "Stores refused because the sender already had max_per_sender messages "
                    "stored for the recipient.",
                    s->refused_sender);
    metrics_counter(out, "chatd_delivery_store_failed_total", "Messages whose store failed.",
                    s->store_failed);
    metrics_counter(out, "chatd_delivery_drains_total", "Drains of a user's inbox started.",
                    s->drains);
    metrics_counter(out, "chatd_delivery_drain_failures_total",
                    "Drains given up after their retries.", s->drain_failures);
    metrics_counter(out, "chatd_delivery_drained_total", "Stored messages pushed by drains.",
                    s->drained);
    metrics_counter(out, "chatd_delivery_held_overflow_total",
                    "Messages stored because the held list of an online user was full.",
                    s->held_overflow);
    metrics_counter(out, "chatd_delivery_unsent_stored_total",
                    "Messages stored because the session they were pushed to ended before "
                    "writing them.",
                    s->unsent_stored);
    metrics_counter(out, "chatd_delivery_dropped_total",
                    "Pushes without CHATD_DELIVER_STORE that could not wait and were dropped.",
                    s->dropped);
}
