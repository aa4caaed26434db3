/* cluster_route.h - cross-node delivery ([cluster] only; docs/architecture.md, "The
 * cluster: decisions and reasons"): after each commit batch, one announcement to every
 * other node (its id range, and the messages with recipients online there); live pushes
 * to the nodes where their users are; what this node receives of both; and the logout
 * side of users lost with a node that died. Without [cluster] (srv->cluster_route NULL)
 * nothing here runs but cluster_route_push_live's local pushes. Loop thread only. */
#ifndef CHATD_HOST_CLUSTER_ROUTE_H
#define CHATD_HOST_CLUSTER_ROUTE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct server;
struct evbuffer;
struct cluster_route_batch;

/* With [cluster]: the merge (cluster_order.h), the receiver and the presence listener.
 * -1 out of memory. Nothing without [cluster]. */
int cluster_route_start(struct server *srv);
/* After the pool's last done callbacks (with the merge). */
void cluster_route_free(struct server *srv);

/* post.c, after a batch committed new ids lo..hi: NULL without [cluster] (push as on one
 * node), or out of memory (then the other nodes read the range as a gap). */
struct cluster_route_batch *cluster_route_batch_begin(struct server *srv, int64_t lo, int64_t hi);
/* Whether the batch's pushes wait in the merge (an id below lo is not known yet): then
 * cluster_route_batch_message puts them there, else the caller pushes them now. */
int cluster_route_batch_waits(const struct cluster_route_batch *rb);
/* Whether its recipients here need timeline rows however they are online: it waits, or
 * a gap read went past lo first (this node's commit came back after gap_wait_ms). */
int cluster_route_batch_unsure(const struct cluster_route_batch *rb);
/* One committed message of the batch, in id order: msg (borrowed) is its push. Goes into
 * the announcement of every node where one of `users` is online, and, when the batch
 * waits, into the merge for those online here. */
void cluster_route_batch_message(struct cluster_route_batch *rb, int64_t seq, json_t *msg,
                                 char *const *users, size_t n, const char *receipt_sender);
/* Publish the announcements (one per other node), mark lo..hi known (releasing what
 * follows) and free rb. */
void cluster_route_batch_end(struct cluster_route_batch *rb);

/* A push that is not a posted message (presence, receipts, friend_added, deliver()
 * without STORE, push_user when `direct`: not held behind a drain) to each of `users`:
 * to their sessions here, and one publish to each other node where some are online.
 * Returns the sessions it reached in the cluster (here, plus elsewhere as the replica
 * counts them); *online_users (may be NULL) the users among them with one. */
size_t cluster_route_push_live(struct server *srv, const char *const *users, size_t n, json_t *msg,
                               int direct, size_t *online_users);

void cluster_route_render_metrics(const struct server *srv, struct evbuffer *out);

#endif
