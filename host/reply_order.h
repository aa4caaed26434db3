/* reply_order.h - the requests a session has in flight, oldest first: with pipelined
 * commands (CHATD_CMD_PIPELINED) a session runs several at once, and this keeps their
 * replies, and the posts made for them, in the order the requests arrived. A request
 * is "settled" once it has posted (chatd_post.req) or been answered; a post waits until
 * every earlier request of its session is settled. Loop thread only. */
#ifndef CHATD_HOST_REPLY_ORDER_H
#define CHATD_HOST_REPLY_ORDER_H

#include <stddef.h>

struct session;
struct chatd_request;

/* Put req at the end of s's requests in flight. 0, or -1 out of memory. */
int reply_order_add(struct session *s, struct chatd_request *req);

/* Send req's reply line now if every earlier request's reply has gone out (and then
 * the replies of later requests that were waiting for it), else keep a copy until
 * then; line NULL: req is answered without a reply (ack). Settles req. 0, or -1 out of
 * memory (nothing kept: the caller closes s). */
int reply_order_send(struct session *s, struct chatd_request *req, const char *line, size_t len);

/* Call fn(arg, 0) once every request of req's session that arrived before req is
 * settled (at once when they are, or req has no session any more), and settle req then
 * (settles: a post) or only when it is answered (0: a look-up whose answer the later
 * requests must not overtake); or fn(arg, 1) when the session closes first. 0, or -1
 * out of memory (fn not called). */
typedef void (*reply_order_fn)(void *arg, int cancelled);
int reply_order_when_turn(struct chatd_request *req, reply_order_fn fn, void *arg, int settles);

/* req is freed: it is no longer in flight. */
void reply_order_remove(struct chatd_request *req);

/* s closes: mark every request in flight gone, cancel the waiting posts, send nothing
 * more. */
void reply_order_close(struct session *s);

#endif
