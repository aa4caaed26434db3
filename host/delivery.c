/* delivery.c - deliver() (ABI 1.2) until the write side of delivery version 2 (post.h)
 * takes it over: pushes go to the user's sessions through the stream (stream.h), and
 * users with none get it stored in chatd's inbox (inbox_store.c). */
#include "delivery_internal.h"

#include "log.h"
#include "migrations.h"
#include "server.h"
#include "stream.h"

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
    free(u->name);
    free(u);
}

void delivery_user_release(struct delivery *d, struct dl_user *u)
{
    if (!u->stores)
        user_free(d, u);
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

/* Push msg to the user's sessions; returns 1 when it still has to be stored for them
 * (the caller stores only with CHATD_DELIVER_STORE), 0 when a session took it;
 * *online counts the users who got it. */
static int deliver_one(struct delivery *d, const char *name, json_t *msg, size_t *online)
{
    if (stream_push_live(d->srv, name, msg) == 0)
        return 1;
    (*online)++;
    return 0;
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
    size_t online = 0;
    struct store_item *item = NULL;
    int status = 0;
    for (size_t i = 0; i < n_users; i++) {
        if (!deliver_one(d, users[i], msg, &online) || !store)
            continue;
        if (!item_for(&item, n_users) || !(item->users[item->n_users] = strdup(users[i]))) {
            status = CHATD_ENOMEM;
            break;
        }
        item->n_users++;
    }
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
    HASH_ITER (hh, d->users, u, tmp)
        user_free(d, u);
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
}
