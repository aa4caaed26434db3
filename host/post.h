/* post.h - the write side of delivery version 2 (docs/architecture.md, "Delivery
 * version 2" and "The cluster"): post() and deliver(), idempotent client_msg_ids, and
 * the group commit that takes the batch's message ids from chatd_counters under its
 * row lock and writes messages and timeline rows in the same transaction, before anyone
 * is sent the message. After each commit it calls stream_push (stream.h) for every
 * recipient, in id order, then the posts' done. Loop thread only. */
#ifndef CHATD_HOST_POST_H
#define CHATD_HOST_POST_H

#include <chatd/plugin.h>
#include <stddef.h>
#include <stdint.h>

struct server;
struct chatd_db;
struct evbuffer;

/* The host table's post (see chatd/plugin.h); `caller` is the plugin calling it. */
int post_message(struct chatd_plugin *caller, const struct chatd_post *post,
                 chatd_post_done_fn done, void *arg);
/* The host table's post_find (post_find.c). */
int post_find(struct chatd_plugin *caller, struct chatd_request *req, const char *sender,
              const char *client_msg_id, chatd_post_done_fn done, void *arg);

/* chatd_messages.flags: the message's "msg_id" is its id. A post's stored body has no
 * "seq" or "msg_id" (they are given at its commit): readers add them from the id;
 * deliver()'s messages keep their own msg_id and have no such flag. */
#define POST_FLAG_MSG_ID (1u << 9)

/* The id of the last message committed (0 before the first): a message committed later
 * has a larger one. */
int64_t post_last_id(struct server *srv);

/* Write timeline rows for `user`, for messages already committed (ids, n of them), with
 * the next commit batch: the messages a session of theirs was pushed but never wrote
 * before it ended. */
void post_store_rows(struct server *srv, const char *user, const int64_t *ids, size_t n);

/* The host table's deliver and deliver_from (ABI 1.2 and 1.3) on top of post: with
 * CHATD_DELIVER_STORE a post without conversation or client_msg_id, without it a live
 * push (post_deliver.c). `sender` may be NULL. */
int post_deliver(struct chatd_plugin *caller, const char *sender, const char *const *users,
                 size_t n_users, json_t *msg, uint32_t flags, int64_t max_stored,
                 int64_t max_per_sender, chatd_deliver_done_fn done, void *arg);

/* Set up srv->post (after the worker pool exists). 0, or -1 out of memory. */
int post_new(struct server *srv);
/* Raise chatd_counters.message_id to MAX(chatd_messages.id) at least (the row is made
 * if missing), so no id is ever given twice, and read it as the last id committed: on
 * db, a connection of the start-up, after the host's migrations. -1 with the reason in
 * err. */
int post_load_counter(struct server *srv, struct chatd_db *db, char *err, size_t errlen);
/* Fail what still waits to be committed (done gets CHATD_ESHUTDOWN) and free
 * everything. Call after pool_free and before the plugins are closed. */
void post_free(struct server *srv);
/* Append the posting counters and gauges to /metrics. */
void post_render_metrics(struct server *srv, struct evbuffer *out);

#endif
