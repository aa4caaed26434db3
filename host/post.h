/* post.h - the write side of delivery version 2 (docs/architecture.md, "Delivery
 * version 2"): post() and deliver(), the server's message id counter, idempotent
 * client_msg_ids, and the group commit that writes messages, timeline rows and the
 * counter in one transaction before anyone is sent the message. After each commit it
 * calls stream_push (stream.h) for every recipient, in id order, then the posts' done.
 * Loop thread only. */
#ifndef CHATD_HOST_POST_H
#define CHATD_HOST_POST_H

#include <chatd/plugin.h>
#include <stddef.h>
#include <stdint.h>

struct server;

/* The host table's post (see chatd/plugin.h); `caller` is the plugin calling it. */
int post_message(struct chatd_plugin *caller, const struct chatd_post *post,
                 chatd_post_done_fn done, void *arg);

/* The id of the last message posted (0 before the first). */
int64_t post_last_id(struct server *srv);

/* Write timeline rows for `user`, for messages already committed (ids, n of them), with
 * the next commit batch: the messages a session of theirs was pushed but never wrote
 * before it ended. */
void post_store_rows(struct server *srv, const char *user, const int64_t *ids, size_t n);

#endif
