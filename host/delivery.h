/* delivery.h - the host's delivery facility (ABI 1.2 deliver): one stream of messages
 * per user. Live pushes go out at once, or wait in order while the user's stored
 * messages are being sent; users with no session get messages stored in chatd's inbox
 * (chatd_messages, chatd_inbox), sent with "offline":true after their next successful
 * login. The design and its guarantees: docs/architecture.md, "Offline delivery in the
 * host". Loop thread only. */
#ifndef CHATD_HOST_DELIVERY_H
#define CHATD_HOST_DELIVERY_H

#include <chatd/plugin.h>
#include <stdint.h>

struct server;
struct evbuffer;
struct chatd_db;

/* Set up srv->delivery (after the worker pool exists). 0, or -1 out of memory. */
int delivery_new(struct server *srv);
/* Apply the host's own schema migrations (plugin name "chatd" in chatd_schema) on db, a
 * connection of the start-up; call before any plugin's. -1 with the reason in err. */
int delivery_migrate(struct server *srv, struct chatd_db *db, char *err, size_t errlen);
/* Start background work that needs the pool running (the inbox gauge's first count). */
void delivery_start(struct server *srv);
/* Fail what still waits to be stored (done gets CHATD_ESHUTDOWN) and free everything.
 * Call after pool_free and before the plugins are closed. */
void delivery_free(struct server *srv);

/* Who sent a message, and how many of theirs one recipient's inbox may hold (0: no
 * limit). The sender is passed to the host (ABI 1.3 deliver_from) rather than read out
 * of the message: the push's fields are the plugin's, not the host's. */
struct delivery_sender {
    const char *name; /* NULL: not known (deliver) */
    int64_t max_per_sender;
};

/* The host table's deliver and deliver_from (see chatd/plugin.h); `caller` is the
 * plugin calling it. */
int delivery_deliver(struct chatd_plugin *caller, const char *const *users, size_t n_users,
                     json_t *msg, uint32_t flags, int64_t max_stored,
                     const struct delivery_sender *sender, chatd_deliver_done_fn done, void *arg);

/* Append the delivery counters and gauges to /metrics. */
void delivery_render_metrics(struct server *srv, struct evbuffer *out);

#endif
