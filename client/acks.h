/* acks.h - the client's side of the acknowledged stream (wire contract, "Devices,
 * sequence numbers and acknowledgements"): the login fields (device, "ack":true, and
 * "since" when resuming), the highest seq shown, dropping a push at or below it (so a
 * reconnect never shows a message twice), and one ack after each burst of shown
 * messages, sent after they were printed. */
#ifndef CHAT_ACKS_H
#define CHAT_ACKS_H

#include "conn.h"

#include <event2/event.h>
#include <jansson.h>

/* How long after the first message of a burst is shown its ack goes out: the rest of the
 * burst rides on the same ack. */
#define CHAT_ACK_DELAY_MS 200

struct chat_acks;

/* NULL when out of memory. */
struct chat_acks *chat_acks_new(struct event_base *base);
void chat_acks_free(struct chat_acks *a);

/* The connection acks go out on; NULL while there is none. */
void chat_acks_attach(struct chat_acks *a, struct chat_conn *conn);

/* Add "device", "ack":true and, when `resume` and something was shown already,
 * "since" (the highest seq shown) to the login request `req`. 0, or -1 when out of
 * memory. */
int chat_acks_login_fields(const struct chat_acks *a, json_t *req, const char *device, int resume);

/* Whether the push (a *_recv with an integer seq) was shown already: its seq is at or
 * below the highest shown. Pushes without a seq are never repeats here. */
int chat_acks_is_repeat(const struct chat_acks *a, const json_t *push);

/* The push has been printed: remember its seq and acknowledge it within
 * CHAT_ACK_DELAY_MS, with whatever else is shown meanwhile. */
void chat_acks_shown(struct chat_acks *a, const json_t *push);

/* Send the ack for everything shown now, if one is due. Returns 1 if one was sent. */
int chat_acks_flush(struct chat_acks *a);

/* The server refused an ack (ack_reply with a failure, or unknown_cmd from a server
 * without acks): send no more. Returns 1 the first time, so the caller can say so once. */
int chat_acks_refused(struct chat_acks *a);

/* Whether `push` is the server's answer to an ack: ack_reply, or a generic error about
 * the request "ack". Acks are sent without an id, so such answers come as pushes. */
int chat_acks_is_answer(const json_t *push);

#endif
