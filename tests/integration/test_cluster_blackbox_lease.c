/* test_cluster_blackbox_lease.c - a node's lease in Redis belongs to one running chatd:
 * a second chatd started under a running node's name stays out of the cluster instead
 * of wiping that node's users, and a node killed and started again within its lease
 * lets its old users go offline everywhere (their friends are told) before it writes
 * its new state; a node that stalled past its lease tells them its users are back. Driven from
 * outside like any client; see cluster_suite.h. */
#include "cluster_suite.h"

#include "chatd_proc.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

/* Two users on two nodes, friends: a on node 0, b on node 1, each shown online to the
 * other once their presence came across. */
static void friends_on_two_nodes(struct peer **a, struct peer **b)
{
    const char *const users[] = {"a", "b", NULL};
    register_users(users);
    befriend_all(users);
    *a = login_on(0, "a");
    *b = login_on(1, "b");
    wait_friend_online(*b, "a", 1);
    wait_friend_online(*a, "b", 1);
}

START_TEST(test_second_chatd_under_a_running_nodes_name_stays_out)
{
    /* Ports for three nodes; two start. */
    struct cluster_nodes *c = cluster();
    cluster_nodes_init(c, 3, CLUSTER_LEASE_MS);
    cluster_node_start(c, 0);
    cluster_node_start(c, 1);
    struct peer *a, *b;
    friends_on_two_nodes(&a, &b);

    /* Node 2 is started under node 0's name. */
    snprintf(c->node[2].name, sizeof(c->node[2].name), "%s", c->node[0].name);
    cluster_node_start(c, 2);
    chatd_proc_wait_log(&c->node[2].proc, "is held by another incarnation", 1, CLUSTER_WAIT_MS);
    /* Let it try again past a whole lease: it must keep out, and say why. */
    chatd_proc_wait_log(&c->node[2].proc, "another chatd is running as node", 1, CLUSTER_WAIT_MS);

    /* Node 0's user is still online for node 1, and a message to them still arrives
     * live. */
    ck_assert_int_eq(friend_online(b, "a"), 1);
    json_t *reply = peer_call(b, "success", "{s:s, s:s, s:s}", "cmd", "private_chat", "user_to",
                              "a", "text", "still here");
    const char *msg_id = chatd_json_str(reply, "msg_id");
    ck_assert_ptr_nonnull(peer_wait_message(a, msg_id));
    json_decref(reply);
    ck_assert_msg(!peer_has_push(b, "presence", "status", "offline"), "b was sent %s",
                  json_dumps(b->pushes, JSON_COMPACT));

    cluster_node_stop(c, 2);
    peer_close(a);
    peer_close(b);
    cluster_down();
}
END_TEST

START_TEST(test_node_restarted_within_its_lease_tells_friends_its_users_left)
{
    cluster_up(2);
    struct peer *a, *b;
    friends_on_two_nodes(&a, &b);

    expect_presence(a, "b", "online");

    /* Node 1 dies with b on it and is back at once, well within its lease. */
    cluster_node_kill(cluster(), 1);
    peer_read_to_eof(b);
    cluster_node_start(cluster(), 1);

    /* a is told b went offline, and b is offline in a's list. */
    expect_presence(a, "b", "offline");
    wait_friend_online(a, "b", 0);

    /* b comes back on the restarted node: a sees it online again. */
    struct peer *b2 = login_on(1, "b");
    expect_presence(a, "b", "online");
    wait_friend_online(a, "b", 1);

    peer_close(a);
    peer_close(b);
    peer_close(b2);
    cluster_down();
}
END_TEST

START_TEST(test_node_back_after_its_lease_lapsed_tells_friends_its_users_are_online)
{
    cluster_up(2);
    struct peer *a, *b;
    friends_on_two_nodes(&a, &b);
    expect_presence(a, "b", "online");

    /* Node 1 stalls past its lease (stopped, not killed): node 0 drops it. */
    ck_assert_int_eq(chatd_proc_signal(&cluster()->node[1].proc, SIGSTOP), 0);
    expect_presence(a, "b", "offline");

    /* It runs again with b still connected: b is online again for a. */
    ck_assert_int_eq(chatd_proc_signal(&cluster()->node[1].proc, SIGCONT), 0);
    expect_presence(a, "b", "online");
    wait_friend_online(a, "b", 1);

    peer_close(a);
    peer_close(b);
    cluster_down();
}
END_TEST

static Suite *cluster_lease_suite(void)
{
    Suite *s = suite_create("cluster_blackbox_lease");
    TCase *tc = tcase_create("lease");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_second_chatd_under_a_running_nodes_name_stays_out);
    tcase_add_test(tc, test_node_restarted_within_its_lease_tells_friends_its_users_left);
    tcase_add_test(tc, test_node_back_after_its_lease_lapsed_tells_friends_its_users_are_online);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cluster_suite_main(cluster_lease_suite(), 0);
}
