/* cluster.h - what the rest of the host asks of the cluster ([cluster], issue 13): the
 * other nodes' users, publishing to a node, and being told of messages and presence.
 * With [cluster] enable = no (srv->cluster is NULL) every function here is a no-op and
 * answers as a lone node would: no remote sessions, nothing published. Loop thread only.
 *
 * What Redis holds (docs/architecture.md, "The cluster: decisions and reasons"):
 *   chatd:node:<name>   this node's lease: its incarnation, with a time to live of
 *                       [cluster] lease_ms, renewed every third of it
 *   chatd:users:<name>  a hash: user -> session count on that node, and under the
 *                       empty field the node's change counter (see cluster_presence.c)
 *   chatd:nodes         the set of node names with a hash
 * and the channels chatd:all (presence changes, "a node is gone") and
 * chatd:node:<name> (messages for that node: cluster_publish). */
#ifndef CHATD_HOST_CLUSTER_H
#define CHATD_HOST_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

struct server;
struct evbuffer;

/* Start the link to Redis and the node's lease (nothing with enable = no). Reads the
 * password file; -1 with the reason in err. The link connects on the loop, later. */
int cluster_start(struct server *srv, char *err, size_t errlen);
/* Close the link (the lease lapses on its own) and free the replica. */
void cluster_stop(struct server *srv);

/* users.c: `user` now has `local` sessions on this node (after a login or logout). */
void cluster_local_sessions(struct server *srv, const char *user, size_t local);

/* Sessions `user` has on other nodes, as this node's replica knows them: 0 with no
 * cluster or while Redis is down. */
size_t cluster_remote_sessions(const struct server *srv, const char *user);
/* The names of the other nodes where `user` has a session, at most cap of them, into
 * nodes (valid until the loop turns). Returns how many there are (may exceed cap). */
size_t cluster_user_nodes(const struct server *srv, const char *user, const char **nodes,
                          size_t cap);

/* The names of the other nodes in the replica, at most cap of them, into nodes (valid
 * until the loop turns). Returns how many there are (may exceed cap). */
size_t cluster_nodes(const struct server *srv, const char **nodes, size_t cap);

/* This node's change counter: the seq of its last change of its users (a login's, once
 * cluster_local_sessions returned). 0 with no cluster. */
uint64_t cluster_change_seq(const struct server *srv);
/* The highest change counter of `node`'s that this node applied to its replica: every
 * login there up to it is known here. 0 when it is not in the replica. */
uint64_t cluster_node_applied(const struct server *srv, const char *node);

/* Publish `payload` (any bytes) on node's channel chatd:node:<node>. -1 with no cluster,
 * while Redis is down, or out of memory: the caller treats the node as unreachable.
 * Redis drops a publish no node listens to; nothing confirms delivery. */
int cluster_publish(struct server *srv, const char *node, const char *payload, size_t len);

/* A message published to this node's channel, as it was published. */
typedef void (*cluster_receive_fn)(struct server *srv, const char *payload, size_t len, void *arg);
/* Set the one receiver (NULL: none; messages are then dropped). */
void cluster_on_receive(struct server *srv, cluster_receive_fn fn, void *arg);

/* Who raises the logout of a user now offline everywhere, when the node of their last
 * session did not (cluster_presence.c): */
enum cluster_raise {
    CLUSTER_RAISE_NONE,
    /* this node's check dropped the dead node that held their last session */
    CLUSTER_RAISE_NODE_LOST,
    /* their last sessions here and on another node ended at the same moment, each node
     * seeing the other's still there; this one's change reached Redis last */
    CLUSTER_RAISE_CROSSED,
    /* it changed here while Redis was down (told to this node's sessions only), and is
     * still changed now that every node's users are known again; or this node's lease
     * had lapsed (the others dropped its users) and it is back */
    CLUSTER_RAISE_OUTAGE,
};

/* A user's presence in the cluster changed through another node (their first session
 * anywhere began, or their last one ended, a node's loss included). Changes made by
 * this node's own sessions are users.c's and are not reported here, except with
 * CLUSTER_RAISE_OUTAGE. `raise` says this node is the one to raise the change, once in
 * the cluster. */
typedef void (*cluster_presence_fn)(struct server *srv, const char *user, int online,
                                    enum cluster_raise raise, void *arg);
/* Set the one listener (NULL: none). */
void cluster_on_presence(struct server *srv, cluster_presence_fn fn, void *arg);

/* 1 with no cluster or while Redis is up, else 0 (/healthz). */
int cluster_redis_up(const struct server *srv);
/* 1 with no cluster, or when the replica can be trusted to know every other node's
 * sessions: Redis has been up for a lease. Right after a (re)connect the replica is
 * still being read, and after a Redis restart the other nodes write their hashes again
 * only at their own reconnect or next lease renewal (a third of a lease). */
int cluster_presence_known(const struct server *srv);
/* The cluster's series for /metrics (nothing with no cluster). */
void cluster_render_metrics(const struct server *srv, struct evbuffer *out);

#endif
