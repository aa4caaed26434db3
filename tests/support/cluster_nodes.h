/* cluster_nodes.h - a cluster of real chatd nodes for the tests (issue 13): one fresh
 * database on the test MariaDB ($CHATD_TEST_DB_SOCKET), one private redis-server
 * (redis_proc.h), and N nodes started from the sample config as scripts/run does, each
 * with [cluster] on (its name node<i>, the Redis socket, the lease given), an admin
 * listener, and chat ports of its own that it keeps when it is started again: one for
 * clients, one for HAProxy (PROXY protocol v2).
 *
 * A node can be stopped (SIGTERM), killed (SIGKILL) and started again while the others
 * run, and started with one more setting; Redis can be stopped and started again under
 * the same socket, or be started by the test (a password) or not at all. For the test
 * process's main thread; everything started is tied to the test process. */
#ifndef CHATD_TEST_CLUSTER_NODES_H
#define CHATD_TEST_CLUSTER_NODES_H

#include "../db/db_test_env.h"
#include "chatd_proc.h"
#include "redis_proc.h"

#include <stddef.h>

#define CLUSTER_NODES_MAX 4
/* A deadline for what the nodes do on their own (notice Redis): never a timing check. */
#define CLUSTER_NODES_WAIT_MS 30000

struct cluster_node {
    struct chatd_proc proc; /* proc.pid is 0 while the node does not run */
    char name[32];          /* node<i> */
    int port;               /* the chat port, on 127.0.0.1 */
    int proxy_port;         /* the chat port for HAProxy, which sends a PROXY v2 header */
    int admin_port;
};

struct cluster_nodes {
    struct config_database db;
    struct redis_proc redis;
    int lease_ms;
    size_t n;
    struct cluster_node node[CLUSTER_NODES_MAX];
};

/* Make the database, start Redis, and pick ports for n nodes (none is started).
 * lease_ms is [cluster] lease_ms. Fails the test when something cannot start. */
void cluster_nodes_init(struct cluster_nodes *c, size_t n, int lease_ms);
/* cluster_nodes_init without starting Redis: the test starts it (cluster_redis_start)
 * after setting c->redis.password, or points c->redis.socket where no Redis is. */
void cluster_nodes_init_without_redis(struct cluster_nodes *c, size_t n, int lease_ms);
/* Start node i (again, on its ports) and wait until it answers; fails the test if not. */
void cluster_node_start(struct cluster_nodes *c, size_t i);
/* cluster_node_start with one more --set (NULL: none), e.g. "cluster.required=yes". */
void cluster_node_start_with(struct cluster_nodes *c, size_t i, const char *more_set);
/* cluster_node_start for every node, in order. */
void cluster_nodes_start_all(struct cluster_nodes *c);
/* kill -9 node i and reap it; it must have died of the signal. */
void cluster_node_kill(struct cluster_nodes *c, size_t i);
/* Stop node i with SIGTERM; it must exit 0. */
void cluster_node_stop(struct cluster_nodes *c, size_t i);
/* Stop Redis (its data is gone with it) or start it again on the same socket. */
void cluster_redis_stop(struct cluster_nodes *c);
void cluster_redis_start(struct cluster_nodes *c);
/* Wait until every running node's /healthz says "redis: up" (up) or "redis: down",
 * within a generous deadline; fails the test when one does not. */
void cluster_wait_redis(const struct cluster_nodes *c, int up);
/* A series' value on node's /metrics (-1: not shown). */
double cluster_node_metric(const struct cluster_node *node, const char *name);
/* Wait until node's series `name` is want (or, at_least, want or more) within
 * CLUSTER_NODES_WAIT_MS; fails the test when it is not. */
void cluster_node_wait_metric(const struct cluster_node *node, const char *name, double want);
void cluster_node_wait_metric_at_least(const struct cluster_node *node, const char *name,
                                       double want);
/* node's /healthz response, headers and body (the caller frees it). */
char *cluster_node_healthz(const struct cluster_node *node);
/* The chat ports of the n nodes for a proxy: those taking a PROXY v2 header
 * (haproxy_proc.h sends one), from 127.0.0.1 only. */
void cluster_ports(const struct cluster_nodes *c, int *ports);
/* Stop every node that runs (each must exit 0), remove the nodes' directories, stop
 * Redis, drop the database. */
void cluster_nodes_stop(struct cluster_nodes *c);

#endif
