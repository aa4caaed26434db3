/* cluster_nodes.c - N chatd nodes on one MariaDB and one Redis (cluster_nodes.h). */
#include "cluster_nodes.h"

#include "client.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

void cluster_nodes_init_without_redis(struct cluster_nodes *c, size_t n, int lease_ms)
{
    ck_assert_uint_le(n, CLUSTER_NODES_MAX);
    memset(c, 0, sizeof(*c));
    c->n = n;
    c->lease_ms = lease_ms;
    db_test_config(&c->db);
    for (size_t i = 0; i < n; i++) {
        struct cluster_node *node = &c->node[i];
        snprintf(node->name, sizeof(node->name), "node%zu", i);
        node->port = test_free_port("127.0.0.1");
        node->admin_port = test_free_port("127.0.0.1");
        node->proxy_port = test_free_port("127.0.0.1");
        ck_assert_msg(node->port > 0 && node->admin_port > 0 && node->proxy_port > 0 &&
                          node->port != node->admin_port && node->proxy_port != node->port &&
                          node->proxy_port != node->admin_port,
                      "no free ports for %s", node->name);
    }
}

void cluster_nodes_init(struct cluster_nodes *c, size_t n, int lease_ms)
{
    cluster_nodes_init_without_redis(c, n, lease_ms);
    ck_assert_msg(redis_proc_start(&c->redis) == 0, "redis-server did not start");
}

void cluster_node_start_with(struct cluster_nodes *c, size_t i, const char *more_set)
{
    struct cluster_node *node = &c->node[i];
    ck_assert_msg(node->proc.pid == 0, "%s runs already", node->name);
    chatd_proc_cleanup(&node->proc); /* the directory of its last run */
    char name[64], redis[sizeof(c->redis.socket) + 32], lease[64], admin[64];
    snprintf(name, sizeof(name), "cluster.node=%s", node->name);
    snprintf(redis, sizeof(redis), "cluster.redis=unix:%s", c->redis.socket);
    snprintf(lease, sizeof(lease), "cluster.lease_ms=%d", c->lease_ms);
    snprintf(admin, sizeof(admin), "admin.listen=127.0.0.1:%d", node->admin_port);
    const char *sets[] = {"cluster.enable=yes",
                          name,
                          redis,
                          lease,
                          "admin.enable=yes",
                          admin,
                          "server.proxy_protocol=v2",
                          "server.proxy_from=127.0.0.1",
                          more_set,
                          NULL};
    ck_assert_msg(
        db_test_start_sample_proxied(&node->proc, &c->db, sets, node->port, node->proxy_port) == 0,
        "%s did not start on port %d", node->name, node->port);
}

void cluster_node_start(struct cluster_nodes *c, size_t i)
{
    cluster_node_start_with(c, i, NULL);
}

void cluster_nodes_start_all(struct cluster_nodes *c)
{
    for (size_t i = 0; i < c->n; i++)
        cluster_node_start(c, i);
}

void cluster_node_kill(struct cluster_nodes *c, size_t i)
{
    struct cluster_node *node = &c->node[i];
    pid_t pid = node->proc.pid;
    ck_assert_msg(chatd_proc_signal(&node->proc, SIGKILL) == 0, "%s does not run", node->name);
    /* Reaped here rather than by chatd_proc_wait, which would print the log of a node
     * that did exactly what it was made to. */
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                  "%s ended with status %d before the kill", node->name, status);
    node->proc.pid = 0;
}

void cluster_node_stop(struct cluster_nodes *c, size_t i)
{
    struct cluster_node *node = &c->node[i];
    int rc = chatd_proc_stop(&node->proc, CHATD_PROC_STOP_TIMEOUT_MS);
    ck_assert_msg(rc == 0, "%s exited with %d after SIGTERM, want 0", node->name, rc);
}

void cluster_redis_stop(struct cluster_nodes *c)
{
    redis_proc_stop(&c->redis);
}

void cluster_redis_start(struct cluster_nodes *c)
{
    ck_assert_msg(redis_proc_start(&c->redis) == 0, "redis-server did not start again");
}

/* node's page `path` on its admin listener (the caller frees it). */
static char *admin_get(const struct cluster_node *node, const char *path)
{
    char *text = test_http_get(node->admin_port, path);
    ck_assert_msg(text != NULL, "%s: no answer on its admin port %d", node->name, node->admin_port);
    return text;
}

char *cluster_node_healthz(const struct cluster_node *node)
{
    return admin_get(node, "/healthz");
}

double cluster_node_metric(const struct cluster_node *node, const char *name)
{
    return test_metric(node->admin_port, name);
}

static void wait_metric(const struct cluster_node *node, const char *name, double want,
                        int at_least)
{
    long long deadline = chatd_now_ms() + CLUSTER_NODES_WAIT_MS;
    for (double v; (v = cluster_node_metric(node, name)) != want && !(at_least && v > want);) {
        ck_assert_msg(chatd_now_ms() < deadline, "%s: %s never became %s%g (is %g)", node->name,
                      name, at_least ? "at least " : "", want, v);
        chatd_sleep_ms(20);
    }
}

void cluster_node_wait_metric(const struct cluster_node *node, const char *name, double want)
{
    wait_metric(node, name, want, 0);
}

void cluster_node_wait_metric_at_least(const struct cluster_node *node, const char *name,
                                       double want)
{
    wait_metric(node, name, want, 1);
}

/* Whether node's /healthz has the line `line`. */
static int healthz_says(const struct cluster_node *node, const char *line)
{
    char *text = cluster_node_healthz(node);
    int says = strstr(text, line) != NULL;
    free(text);
    return says;
}

void cluster_wait_redis(const struct cluster_nodes *c, int up)
{
    const char *line = up ? "redis: up" : "redis: down";
    long long deadline = chatd_now_ms() + CLUSTER_NODES_WAIT_MS;
    for (size_t i = 0; i < c->n; i++)
        while (c->node[i].proc.pid > 0 && !healthz_says(&c->node[i], line)) {
            ck_assert_msg(chatd_now_ms() < deadline, "%s's /healthz never said %s", c->node[i].name,
                          line);
            chatd_sleep_ms(20);
        }
}

void cluster_ports(const struct cluster_nodes *c, int *ports)
{
    for (size_t i = 0; i < c->n; i++)
        ports[i] = c->node[i].proxy_port;
}

void cluster_nodes_stop(struct cluster_nodes *c)
{
    for (size_t i = 0; i < c->n; i++) {
        if (c->node[i].proc.pid > 0)
            cluster_node_stop(c, i);
        chatd_proc_cleanup(&c->node[i].proc);
    }
    redis_proc_cleanup(&c->redis);
    db_test_cleanup(&c->db);
}
