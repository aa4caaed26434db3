/* stream.h - the read side of delivery version 2 (docs/architecture.md, "Delivery
 * version 2"): what each logged-in session of a user is sent, and from where. Sessions
 * carry a position (their device's acknowledged seq, the login's since, or the user's
 * version 1 position); after login_reply a session is sent the user's timeline rows
 * after its position, then live pushes, each seq once. Also: the devices and their
 * positions, `ack`, receipts, read marks and the hourly prune.
 *
 * The write side (post.h: posting, group commit) calls the two functions below for
 * every committed message, in seq order. Loop thread only. */
#ifndef CHATD_HOST_STREAM_H
#define CHATD_HOST_STREAM_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct server;
struct chatd_value;

struct stream_user;

/* The stream's record of `user`, held until stream_release: it stays (the same one for
 * every session of theirs that logs in meanwhile) however their sessions come and go;
 * NULL when there is none (no session of theirs is bound here, and nothing else keeps
 * it): nothing is held then. The write side holds each recipient of a post from its
 * acceptance to its push, so that the name is looked up once per recipient. */
struct stream_user *stream_hold(struct server *srv, const char *user);
void stream_release(struct server *srv, struct stream_user *u);
/* How many sessions are bound to u here. */
size_t stream_sessions(const struct stream_user *u);

/* Whether a message for `user` accepted now must get a chatd_timeline row: no session
 * of theirs is online, or they have a registered device (an acknowledging login ever),
 * or one of their sessions is still being sent its stored messages. u: their record
 * (stream_hold), or NULL when they have none. */
int stream_needs_row(struct server *srv, const char *user, const struct stream_user *u);

/* Send a committed message to every session of `user`: msg (borrowed) is the push
 * with "msg_id", "seq" and "ts" set; `seq` is its seq. A session still being sent its
 * stored messages holds it (and skips it if the timeline already gave it that seq).
 * `receipt_sender`: for a private message (CHATD_POST_PRIVATE), its sender, who gets a
 * "delivered" receipt when a device of `user` acknowledges it; NULL otherwise. Returns
 * how many sessions took it: 0 when the user has no session (then the caller writes
 * the user's timeline row, unless it wrote one already). */
size_t stream_push(struct server *srv, const char *user, json_t *msg, int64_t seq,
                   const char *receipt_sender);
/* The same to the user whose record u is (held with stream_hold). */
size_t stream_push_held(struct server *srv, struct stream_user *u, json_t *msg, int64_t seq,
                        const char *receipt_sender);

/* msg, a posted message's push whose stored text (post.h) is `stored` (len bytes), has
 * had "seq" (and "msg_id" when with_msg_id) added after its stored members: keep that
 * text with them added as msg's line for seq, so that the pushes of msg that follow
 * write it without serialising msg again. Nothing is kept for a text that is not an
 * object with members. */
void stream_line_from_stored(struct server *srv, json_t *msg, int64_t seq, const char *stored,
                             size_t len, int with_msg_id);

/* Send a push that is not a posted message (presence, friend_added, deliver() without
 * CHATD_DELIVER_STORE): to every session of `user`, behind what a draining session is
 * still being sent. msg is borrowed. Returns how many sessions took it. */
size_t stream_push_live(struct server *srv, const char *user, json_t *msg);

/* The columns of chatd_messages a push is built from (chatd_messages as m), in the order
 * stream_row_message reads them. */
#define STREAM_MESSAGE_COLUMNS "m.id, m.body, m.conversation IS NOT NULL, m.ts, m.flags, m.sender"
/* The push of one message read with STREAM_MESSAGE_COLUMNS (c: those 6 values): its
 * body with "seq", "ts" and "msg_id" as stream_push expects them, and "offline":true
 * when `offline`. *receipt_sender: for a private message its sender (pointing into c),
 * else NULL. NULL when the body is not a JSON object (or out of memory). Any thread. */
json_t *stream_row_message(const struct chatd_value *c, int offline, const char **receipt_sender);

#endif
