/* cluster_order.h - the merge that releases committed messages to this node's sessions
 * in seq order ([cluster] only; docs/architecture.md, "The cluster: decisions and
 * reasons"). Every id at or below the released mark W is known here: committed by this
 * node, announced by another (cluster_route.h), or read from the database. A message is
 * pushed (stream_push) only once every id below it is known, so each session still sees
 * seq increase across nodes. A range of ids nobody announced within [cluster]
 * gap_wait_ms is read from the database (the timeline rows of this node's users in it),
 * and the counter is read every gap_wait_ms, so that a node learns of other nodes'
 * commits even without Redis. Loop thread only. */
#ifndef CHATD_HOST_CLUSTER_ORDER_H
#define CHATD_HOST_CLUSTER_ORDER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct server;
struct evbuffer;

/* Messages waiting in the merge, and known ranges above W; an announcement that would
 * pass either is dropped whole, and its range is read from the database as a lost one
 * (every message it carried has timeline rows). */
#define CLUSTER_ORDER_PENDING_MAX 100000
#define CLUSTER_ORDER_RANGES_MAX  4096
/* Ids one gap read covers; a longer gap takes several. */
#define CLUSTER_ORDER_GAP_IDS 2000

/* Start the merge with W at the counter read at start (post_last_id). -1 out of memory. */
int cluster_order_start(struct server *srv);
/* After the pool's last done callbacks. */
void cluster_order_free(struct server *srv);

/* W: every id at or below it is known and was released. */
int64_t cluster_order_released(const struct server *srv);
/* The highest id known to be committed (W when nothing is above it). */
int64_t cluster_order_top(const struct server *srv);
/* Whether a batch whose first id is lo must wait: some id below it is not known yet. */
int cluster_order_waits(const struct server *srv, int64_t lo);
/* Whether an announcement of n messages fits within the bounds. */
int cluster_order_room(const struct server *srv, size_t n);
/* A committed message (msg borrowed: the push with seq, msg_id and ts) for `users` of
 * this node, to be pushed once every id below seq is known; nothing when seq is at or
 * below W (it went already). `receipt_sender` as stream_push's. -1 out of memory. */
int cluster_order_add(struct server *srv, int64_t seq, json_t *msg, const char *const *users,
                      size_t n, const char *receipt_sender);
/* Ids lo..hi are all known: release every message that may go now. -1 past the ranges'
 * bound or out of memory (the range is then read as a gap). */
int cluster_order_known(struct server *srv, int64_t lo, int64_t hi);

/* users.c: `user`'s first session here began; `seq` is the change counter its presence
 * goes out with (cluster_change_seq; the next one while Redis is down, since the whole
 * hash is written again with it). */
void cluster_order_login(struct server *srv, const char *user, uint64_t seq);
/* Another node announced ids lo..hi, having applied this node's presence changes up to
 * `applied`: they are known once the users who logged in here after that had the range
 * read from the database for them (at once when there are none). -1 when that read
 * cannot start (the range is then read as a gap). */
int cluster_order_announced(struct server *srv, int64_t lo, int64_t hi, uint64_t applied);

void cluster_order_render_metrics(const struct server *srv, struct evbuffer *out);

#endif
