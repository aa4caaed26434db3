/* test_cluster_blackbox_failures.c - issue 13's failure drills as tests, driven from
 * outside like any client: a node killed with kill -9 while messages flow to its users,
 * who reconnect through HAProxy to another node; Redis restarted under traffic; a node
 * that starts while the others run. Counted: every message acknowledged to a sender
 * reaches each recipient exactly once, nothing else does. Written against
 * docs/protocol.md and docs/architecture.md ("The cluster: decisions and reasons"); see
 * cluster_suite.h. */
#include "cluster_suite.h"

#include "chatd_proc.h"
#include "haproxy_proc.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rounds of traffic in a drill, and when things happen in it. */
#define ROUNDS 36

/* How the drills' private messages were answered, printed to show what a drill did. */
static unsigned answered_success, answered_offline;

/* Say that a send was not accepted (busy, internal: nothing was stored, so nothing is
 * counted); the drills go on. */
static void print_not_accepted(const char *from, const char *to, const json_t *reply)
{
    char *text = json_dumps(reply, JSON_COMPACT);
    printf("%s to %s not accepted: %s\n", from, to, text ? text : "");
    free(text);
}

/* One round: each sender sends one private message to each of its recipients, all in
 * flight at once, then every reply is read and counted. A reply that did not accept the
 * message (busy, internal) is not counted: nothing was stored. */
static void round_of_sends(json_t *ledger, struct peer *const *senders, size_t ns,
                           const char *const *recipients, size_t nr, int k)
{
    long long id[8][8];
    char text[8][64];
    ck_assert(ns <= 8 && nr <= 8);
    for (size_t i = 0; i < ns; i++) {
        numbered(text[i], senders[i]->user, k);
        for (size_t j = 0; j < nr; j++)
            id[i][j] = peer_send(senders[i], "{s:s, s:s, s:s}", "cmd", "private_chat", "user_to",
                                 recipients[j], "text", text[i]);
    }
    for (size_t i = 0; i < ns; i++)
        for (size_t j = 0; j < nr; j++) {
            json_t *reply = peer_reply(senders[i], id[i][j]);
            const char *const to[] = {recipients[j], NULL};
            answered_success += strcmp(chatd_json_str(reply, "result"), "success") == 0;
            answered_offline += strcmp(chatd_json_str(reply, "result"), "offline") == 0;
            if (!ledger_count(ledger, reply, to, text[i]))
                print_not_accepted(senders[i]->user, recipients[j], reply);
            json_decref(reply);
        }
}

/* Read what reached an acknowledging session and acknowledge it, as a client does. */
static void read_and_ack(struct peer *p)
{
    peer_drain(p, 0);
    if (!p->eof && p->last_seq > p->acked) {
        peer_send(p, "{s:s, s:I}", "cmd", "ack", "seq", (json_int_t)p->last_seq);
        p->acked = p->last_seq;
    }
}

/* The msg_ids seen on one connection, with their seq (an object msg_id -> seq). */
static json_t *seen_on(const struct peer *p)
{
    json_t *seen = json_object();
    size_t i;
    json_t *msg;
    json_array_foreach(p->messages, i, msg)
    {
        json_object_set(seen, chatd_json_str(msg, "msg_id"), json_object_get(msg, "seq"));
    }
    return seen;
}

/* `now` resumed from its device's acknowledged position (no "since") after `old`'s node
 * was killed: every message acknowledged to its sender came, and only those; one that
 * `old` got but never acknowledged came again; one it acknowledged may come again (its
 * position is saved within a second, docs/protocol.md "Delivery guarantees"), at most
 * once; one it never got came exactly once. */
static void assert_resumed_from_device(json_t *ledger, struct peer *old, struct peer *now)
{
    json_t *mine = json_object_get(ledger, now->user);
    struct peer *both[] = {old, now};
    for (size_t k = 0; k < 2; k++) {
        size_t i;
        json_t *msg;
        json_array_foreach(both[k]->messages, i, msg)
        {
            ck_assert_msg(json_object_get(mine, chatd_json_str(msg, "msg_id")),
                          "%s got a message nobody was answered for: %s", now->user,
                          json_dumps(msg, JSON_COMPACT));
        }
    }
    json_t *before = seen_on(old), *after = seen_on(now);
    size_t again = 0;
    const char *msg_id;
    json_t *text;
    json_object_foreach(mine, msg_id, text)
    {
        const json_t *seq = json_object_get(before, msg_id);
        int came = json_object_get(after, msg_id) != NULL;
        if (!seq || json_integer_value(seq) > old->acked)
            ck_assert_msg(came, "%s: message %s (\"%s\") %s, and was not sent again", now->user,
                          msg_id, json_string_value(text),
                          seq ? "was never acknowledged" : "never came");
        again += seq && came;
    }
    printf("%s: %zu messages acknowledged to senders; %zu before the kill (acknowledged up to "
           "seq %lld), %zu after, %zu of them again\n",
           now->user, json_object_size(mine), json_object_size(before), old->acked,
           json_object_size(after), again);
    json_decref(before);
    json_decref(after);
}

/* kill -9 of the node of r0 and r1 while two other nodes send to them; they reconnect
 * through HAProxy (to a node alive) with their device, r0 with "since" = the last seq it
 * has and getting every message acknowledged to its sender exactly once, r1 from its
 * device's acknowledged position. Then the node starts again under its name and its
 * users chat as before. */
START_TEST(test_killed_node_users_reconnect_through_haproxy)
{
    cluster_up(3);
    int ports[3];
    cluster_ports(cluster(), ports);
    struct haproxy_proc proxy;
    ck_assert_int_eq(haproxy_proc_start(&proxy, ports, 3), 0);

    const char *const users[] = {"r0", "r1", "s1", "s2", "s0", NULL};
    register_users(users);
    befriend_all(users);
    const char *const recipients[] = {"r0", "r1"};
    struct peer *r[2], *old[2];
    for (size_t j = 0; j < 2; j++)
        r[j] = login_device_at(cluster()->node[0].port, recipients[j], "phone", -1);
    struct peer *s[2] = {login_on(1, "s1"), login_on(2, "s2")};
    for (size_t i = 0; i < 2; i++)
        for (size_t j = 0; j < 2; j++)
            wait_friend_online(s[i], recipients[j], 1);

    json_t *ledger = ledger_new();
    for (int k = 0; k < ROUNDS; k++) {
        if (k == ROUNDS / 3) {
            cluster_node_kill(cluster(), 0);
            for (size_t j = 0; j < 2; j++) {
                peer_read_to_eof(r[j]);
                old[j] = r[j];
                r[j] = NULL;
            }
        }
        /* Sent to a dead node's users: first while they still count as online there,
         * then once the lease ran out and the senders see them offline. */
        if (k == ROUNDS / 3 + 3)
            for (size_t i = 0; i < 2; i++)
                for (size_t j = 0; j < 2; j++)
                    wait_friend_online(s[i], recipients[j], 0);
        if (k == ROUNDS / 2 + 3)
            for (size_t j = 0; j < 2; j++)
                r[j] = login_device_at(proxy.port, recipients[j], "phone",
                                       j == 0 ? old[j]->last_seq : -1);
        round_of_sends(ledger, s, 2, recipients, 2, k);
        for (size_t j = 0; j < 2; j++)
            if (r[j])
                read_and_ack(r[j]);
    }
    settle_and_count(ledger, s[0], r[0], &old[0], 1);
    settle(ledger, s[1], r[1], &old[1], 1);
    assert_resumed_from_device(ledger, old[1], r[1]);
    /* Each sender's messages in the order sent: r0's across both connections, r1's
     * (which may get some again) on each. */
    struct peer *r0_both[] = {old[0], r[0]};
    for (size_t i = 0; i < 2; i++) {
        assert_sender_order(r0_both, 2, s[i]->user);
        assert_sender_order(&old[1], 1, s[i]->user);
        assert_sender_order(&r[1], 1, s[i]->user);
    }

    printf("kill drill: private messages answered success %u, offline %u\n", answered_success,
           answered_offline);
    /* The node starts again with the same name; a user on it reaches r0 wherever r0 is. */
    cluster_node_start(cluster(), 0);
    struct peer *s0 = login_on(0, "s0");
    wait_friend_online(s0, "r0", 1);
    const char *msg_id = send_counted(ledger, s0, "r0", "from the restarted node");
    peer_wait_message(r[0], msg_id);
    settle_and_count(ledger, s0, r[0], &old[0], 1);

    json_decref(ledger);
    for (size_t j = 0; j < 2; j++) {
        peer_close(r[j]);
        peer_close(old[j]);
        peer_close(s[j]);
    }
    peer_close(s0);
    haproxy_proc_cleanup(&proxy);
    cluster_down();
}
END_TEST

/* Redis stopped and started again while every node sends to users on the other nodes,
 * privately and to a group: nothing acknowledged is lost or duplicated, on every session
 * (x1 has one on node 1 and one on node 0, where y0 sends from), and delivery across
 * nodes resumes (a user online elsewhere is answered success again). */
START_TEST(test_redis_restart_under_traffic)
{
    cluster_up(3);
    const char *const users[] = {"x0", "x1", "x2", "y0", "y1", "y2", NULL};
    register_users(users);
    befriend_all(users);
    struct peer *x[3], *y[3];
    for (size_t i = 0; i < 3; i++) {
        x[i] = login_on(i, users[i]);
        y[i] = login_on(i, users[3 + i]);
    }
    struct peer *x1_too = login_on(0, "x1");
    json_decref(peer_call(x[0], "success", "{s:s, s:s}", "cmd", "create_group", "group", "rg"));
    for (size_t i = 1; i < 3; i++)
        json_decref(peer_call(x[i], "success", "{s:s, s:s}", "cmd", "join_group", "group", "rg"));
    json_decref(peer_call(y[0], "success", "{s:s, s:s}", "cmd", "join_group", "group", "rg"));
    for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < 3; j++)
            if (i != j)
                wait_friend_online(y[i], users[j], 1);

    json_t *ledger = ledger_new();
    const char *const group_to[] = {"x0", "x1", "x2", NULL};
    for (int k = 0; k < ROUNDS; k++) {
        /* Redis goes away; once every node says so, traffic goes on without it for a
         * third of the rounds; then Redis is back (empty: no persistence). */
        if (k == ROUNDS / 3)
            cluster_redis_stop(cluster());
        if (k == ROUNDS / 3 + 1)
            cluster_wait_redis(cluster(), 0);
        if (k == 2 * ROUNDS / 3)
            cluster_redis_start(cluster());
        /* y<i> sends to the x on the two other nodes, y0 to the group as well (numbered
         * 2k, its private messages 2k+1, so y0's texts rise in the order sent). */
        char text[64];
        long long group_id = peer_send(y[0], "{s:s, s:s, s:s}", "cmd", "group_chat", "group", "rg",
                                       "text", numbered(text, "y0", 2 * k));
        json_t *reply = peer_reply(y[0], group_id);
        if (!ledger_count(ledger, reply, group_to, text))
            print_not_accepted("y0", "rg", reply);
        json_decref(reply);
        for (size_t i = 0; i < 3; i++) {
            const char *const to[] = {users[(i + 1) % 3], users[(i + 2) % 3]};
            round_of_sends(ledger, &y[i], 1, to, 2, 2 * k + 1);
        }
        for (size_t i = 0; i < 3; i++)
            peer_drain(x[i], 0);
        peer_drain(x1_too, 0);
    }

    printf("Redis drill: private messages answered success %u, offline %u\n", answered_success,
           answered_offline);
    /* Delivery across nodes resumes: y1 is answered success for x2 (node 2) again. */
    cluster_wait_redis(cluster(), 1);
    long long deadline = chatd_now_ms() + CLUSTER_WAIT_MS;
    for (int k = 0;; k++) {
        char text[64];
        snprintf(text, sizeof(text), "resumed? %d", k);
        json_t *reply = peer_call(y[1], NULL, "{s:s, s:s, s:s}", "cmd", "private_chat", "user_to",
                                  "x2", "text", text);
        const char *const to[] = {"x2", NULL};
        ck_assert_msg(ledger_count(ledger, reply, to, text), "%s", json_dumps(reply, JSON_COMPACT));
        int success = strcmp(chatd_json_str(reply, "result"), "success") == 0;
        json_decref(reply);
        if (success)
            break;
        ck_assert_msg(chatd_now_ms() < deadline, "x2 never counted as online again for y1");
        chatd_sleep_ms(100);
    }
    for (size_t i = 0; i < 3; i++) {
        settle_and_count(ledger, y[(i + 1) % 3], x[i], NULL, 0);
        for (size_t j = 0; j < 3; j++)
            assert_sender_order(&x[i], 1, users[3 + j]);
    }
    settle_and_count(ledger, y[2], x1_too, NULL, 0);
    for (size_t j = 0; j < 3; j++)
        assert_sender_order(&x1_too, 1, users[3 + j]);
    peer_close(x1_too);
    json_decref(ledger);
    for (size_t i = 0; i < 3; i++) {
        peer_close(x[i]);
        peer_close(y[i]);
    }
    cluster_down();
}
END_TEST

/* A node that starts while two others run joins without disturbing them: their
 * sessions stay open, nobody is shown offline, messages sent across the start all
 * arrive once; then its users chat with theirs. */
START_TEST(test_node_joins_running_cluster)
{
    struct cluster_nodes *c = cluster();
    cluster_nodes_init(c, 3, CLUSTER_LEASE_MS);
    cluster_node_start(c, 0);
    cluster_node_start(c, 1);
    const char *const users[] = {"a", "b", "c", NULL};
    register_users(users);
    befriend_all(users);
    struct peer *a = login_on(0, "a"), *b = login_on(1, "b");
    wait_friend_online(a, "b", 1);
    wait_friend_online(b, "a", 1);

    /* Messages in flight while the node starts. */
    enum { BURST = 20 };
    json_t *ledger = ledger_new();
    long long id[BURST];
    char text[BURST][64];
    for (int k = 0; k < BURST; k++)
        id[k] = peer_send(a, "{s:s, s:s, s:s}", "cmd", "private_chat", "user_to", "b", "text",
                          numbered(text[k], "a", k));
    cluster_node_start(c, 2);
    const char *const to_b[] = {"b", NULL};
    for (int k = 0; k < BURST; k++) {
        json_t *reply = peer_reply(a, id[k]);
        ck_assert_msg(strcmp(chatd_json_str(reply, "result"), "success") == 0,
                      "b is online on node1: %s", json_dumps(reply, JSON_COMPACT));
        ledger_count(ledger, reply, to_b, text[k]);
        json_decref(reply);
    }

    struct peer *cc = login_on(2, "c");
    wait_friend_online(cc, "a", 1);
    wait_friend_online(cc, "b", 1);
    wait_friend_online(a, "c", 1);
    wait_friend_online(b, "c", 1);
    char t[64];
    send_counted(ledger, a, "c", numbered(t, "a", BURST));
    send_counted(ledger, cc, "a", numbered(t, "c", 0));
    send_counted(ledger, cc, "b", numbered(t, "c", 1));
    send_counted(ledger, b, "c", numbered(t, "b", 0));

    settle_and_count(ledger, cc, b, NULL, 0);
    settle_and_count(ledger, b, a, NULL, 0);
    settle_and_count(ledger, a, cc, NULL, 0);
    assert_sender_order(&b, 1, "a");
    /* Nobody was shown offline while the node joined. */
    ck_assert_msg(!peer_has_push(a, "presence", "status", "offline"), "a was sent %s",
                  json_dumps(a->pushes, JSON_COMPACT));
    ck_assert_msg(!peer_has_push(b, "presence", "status", "offline"), "b was sent %s",
                  json_dumps(b->pushes, JSON_COMPACT));
    json_decref(ledger);
    peer_close(a);
    peer_close(b);
    peer_close(cc);
    cluster_down();
}
END_TEST

static Suite *cluster_failures_suite(void)
{
    Suite *s = suite_create("cluster_blackbox_failures");
    TCase *tc = tcase_create("failures");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_killed_node_users_reconnect_through_haproxy);
    tcase_add_test(tc, test_redis_restart_under_traffic);
    tcase_add_test(tc, test_node_joins_running_cluster);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cluster_suite_main(cluster_failures_suite(), 1);
}
