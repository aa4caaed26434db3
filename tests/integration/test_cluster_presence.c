/* test_cluster_presence.c - presence pushes across nodes where the node of the change
 * could not know whom to tell ([cluster], host/cluster_presence.c): a user's last two
 * sessions ending at the same moment on two nodes, and changes made while Redis was
 * down. Real nodes on one MariaDB and one private redis-server (cluster_suite.h); Redis
 * is held with SIGSTOP to make two changes cross, never with a sleep. Waits poll with
 * generous deadlines; no timing is asserted. */
#include "cluster_suite.h"

#include "chatd_proc.h"
#include "client.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Long enough that Redis held for a moment does not cost a node its lease. */
#define PRESENCE_LEASE_MS 10000

static void presence_cluster_up(size_t n)
{
    cluster_nodes_init(cluster(), n, PRESENCE_LEASE_MS);
    cluster_nodes_start_all(cluster());
}

static double metric(size_t node, const char *name)
{
    return cluster_node_metric(&cluster()->node[node], name);
}

static void wait_metric(size_t node, const char *name, double want)
{
    cluster_node_wait_metric(&cluster()->node[node], name, want);
}

static void redis_hold(int hold)
{
    ck_assert_int_eq(kill(cluster()->redis.pid, hold ? SIGSTOP : SIGCONT), 0);
}

/* x's last sessions, on node 0 and node 1, end while Redis holds both changes: each node
 * sees the other's session still there. One of the two (the one whose change Redis took
 * last) tells friend f, on node 2, once. */
START_TEST(last_sessions_ending_at_once_on_two_nodes_tell_friends_once)
{
    presence_cluster_up(3);
    const char *const users[] = {"cross_x", "cross_f", NULL};
    register_users(users);
    befriend_all(users);
    struct peer *f = login_on(2, "cross_f");
    struct peer *x0 = login_on(0, "cross_x");
    expect_presence(f, "cross_x", "online");
    struct peer *x1 = login_on(1, "cross_x");
    /* Each of node 0 and 1 counts the other's session of x (and f). */
    wait_metric(0, "chatd_cluster_remote_users", 2);
    wait_metric(1, "chatd_cluster_remote_users", 2);

    redis_hold(1);
    peer_close(x0);
    peer_close(x1);
    wait_metric(0, "chatd_sessions_logged_in", 0);
    wait_metric(1, "chatd_sessions_logged_in", 0);
    redis_hold(0);

    expect_presence(f, "cross_x", "offline");
    /* Both nodes applied the other's change: each raised the logout or did not. */
    wait_metric(0, "chatd_cluster_remote_users", 1);
    wait_metric(1, "chatd_cluster_remote_users", 1);
    double raised = metric(0, "chatd_cluster_crossed_logouts_total") +
                    metric(1, "chatd_cluster_crossed_logouts_total");
    printf("crossed last logouts: node 0 raised %g, node 1 %g\n",
           metric(0, "chatd_cluster_crossed_logouts_total"),
           metric(1, "chatd_cluster_crossed_logouts_total"));
    ck_assert_double_eq(raised, 1);
    wait_friend_online(f, "cross_x", 0);
    peer_drain(f, 0);
    ck_assert_msg(!peer_has_push(f, "presence", "user", "cross_x"),
                  "cross_f was told of cross_x twice");
    peer_close(f);
    cluster_down();
}
END_TEST

/* While Redis is down, x logs out and y logs in on node 0: friend f, on node 1, cannot be
 * told then. A lease after Redis is back (every node wrote its users again), node 0
 * raises both changes and f is told. */
START_TEST(changes_made_while_redis_is_down_reach_friends_elsewhere_once_it_is_back)
{
    presence_cluster_up(2);
    const char *const users[] = {"out_x", "out_y", "out_f", NULL};
    register_users(users);
    befriend_all(users);
    struct peer *f = login_on(1, "out_f");
    struct peer *x = login_on(0, "out_x");
    expect_presence(f, "out_x", "online");

    cluster_redis_stop(cluster());
    cluster_wait_redis(cluster(), 0);
    peer_close(x);
    struct peer *y = login_on(0, "out_y");
    wait_metric(0, "chatd_sessions_logged_in", 1);
    cluster_redis_start(cluster());
    cluster_wait_redis(cluster(), 1);

    expect_presence(f, "out_x", "offline");
    expect_presence(f, "out_y", "online");
    ck_assert_double_eq(metric(0, "chatd_cluster_outage_presence_total"), 2);
    ck_assert_double_eq(metric(1, "chatd_cluster_outage_presence_total"), 0);
    wait_friend_online(f, "out_x", 0);
    wait_friend_online(f, "out_y", 1);
    peer_close(y);
    peer_close(f);
    cluster_down();
}
END_TEST

static Suite *presence_suite(void)
{
    Suite *s = suite_create("cluster_presence");
    TCase *tc = tcase_create("presence");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, last_sessions_ending_at_once_on_two_nodes_tell_friends_once);
    tcase_add_test(tc, changes_made_while_redis_is_down_reach_friends_elsewhere_once_it_is_back);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cluster_suite_main(presence_suite(), 0);
}
