/* test_cluster_route.c - cross-node delivery ([cluster], host/cluster_route.c and
 * host/cluster_order.c): real chatd nodes on one MariaDB and one private redis-server
 * (tests/support/cluster_nodes.h).
 *
 * Every message is counted: what a sender was answered (success or offline, with its
 * seq) against what each recipient's sessions received, so nothing lost or duplicated
 * is an equality, and order is each session's seq increasing. Waits poll with generous
 * deadlines; the times are printed, never asserted. */
#include "client.h"
#include "cluster_nodes.h"
#include "db.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEASE_MS 1000
#define WAIT_MS  30000
#define MAX_MSGS 2000

/* Up to three nodes, node0 to node2 (a, b, c), on one database and one Redis. */
static struct cluster_nodes nodes;
static struct cluster_node *const a = &nodes.node[0], *const b = &nodes.node[1];

/* Take a message id that no node announces: what a node killed between its commit and
 * its publish leaves. Every node's W waits below it until a gap read. */
static void take_an_id(void)
{
    struct chatd_db conn = {0};
    char err[512];
    ck_assert_msg(db_open(&conn, &nodes.db, "", err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(db_exec(&conn,
                             "UPDATE chatd_counters SET value = value + 1 "
                             "WHERE name = 'message_id'",
                             NULL, 0, NULL, NULL),
                     0);
    db_close(&conn);
}

static int next_id = 1;

static int send_request(struct test_client *c, const char *request)
{
    json_t *msg = json_loads(request, 0, NULL);
    ck_assert_ptr_nonnull(msg);
    int id = next_id++;
    json_object_set_new(msg, "id", json_integer(id));
    ck_assert_int_eq(test_client_send_json(c, msg), 0);
    json_decref(msg);
    return id;
}

/* What one session received of the messages counted: seqs in arrival order. */
struct inbox {
    long long seq[MAX_MSGS];
    size_t n;
    json_t *pushes; /* other pushes (presence), kept */
};

static void inbox_take(struct inbox *in, json_t *line, const char *cmd)
{
    if (strcmp(chatd_json_str(line, "cmd"), cmd) == 0) {
        ck_assert_uint_lt(in->n, MAX_MSGS);
        in->seq[in->n++] = json_integer_value(json_object_get(line, "seq"));
        json_decref(line);
        return;
    }
    if (!in->pushes)
        in->pushes = json_array();
    json_array_append_new(in->pushes, line);
}

/* The reply to request id, keeping pushes of `cmd` in `in` (may be NULL). */
static json_t *reply_to(struct test_client *c, int id, struct inbox *in, const char *cmd)
{
    for (;;) {
        json_t *line = test_client_read_json(c, 15000);
        ck_assert_msg(line != NULL, "no reply to request %d", id);
        if (json_integer_value(json_object_get(line, "id")) == id)
            return line;
        if (in)
            inbox_take(in, line, cmd);
        else
            json_decref(line);
    }
}

static json_t *ask(struct test_client *c, const char *request)
{
    return reply_to(c, send_request(c, request), NULL, NULL);
}

static void expect_result(struct test_client *c, const char *request, const char *result)
{
    json_t *reply = ask(c, request);
    ck_assert_msg(strcmp(chatd_json_str(reply, "result"), result) == 0, "%s answered %s", request,
                  json_dumps(reply, 0));
    json_decref(reply);
}

/* A connection to n logged in as user (registered first); `login_extra` adds fields
 * to the login (e.g. ",\"ack\":true"). */
static struct test_client *login_on(struct cluster_node *n, const char *user,
                                    const char *login_extra)
{
    struct test_client *c = chatd_proc_connect(&n->proc);
    char request[256];
    snprintf(request, sizeof(request),
             "{\"cmd\":\"register\",\"user\":\"%s\",\"passwd\":\"pass word\"}", user);
    json_decref(ask(c, request));
    snprintf(request, sizeof(request),
             "{\"cmd\":\"login\",\"user\":\"%s\",\"passwd\":\"pass word\"%s}", user,
             login_extra ? login_extra : "");
    expect_result(c, request, "success");
    return c;
}

/* Everything c has been sent up to now, into in: a ping's reply comes after it. */
static void drain_into(struct test_client *c, struct inbox *in, const char *cmd)
{
    json_decref(reply_to(c, send_request(c, "{\"cmd\":\"ping\"}"), in, cmd));
}

/* Read c into in until it holds `want` messages (or the deadline fails the test). */
static void wait_inbox(struct test_client *c, struct inbox *in, const char *cmd, size_t want)
{
    long long start = chatd_now_ms();
    while (in->n < want) {
        ck_assert_msg(chatd_now_ms() - start < WAIT_MS, "got %zu of %zu %s", in->n, want, cmd);
        json_t *line = test_client_read_json(c, 500);
        if (line)
            inbox_take(in, line, cmd);
    }
}

/* Send `count` private messages from c to `to` in one write (pipelined), and collect
 * the seqs they were answered with (success or offline) into answered. */
static void send_private(struct test_client *c, const char *to, int count, long long *answered,
                         size_t *n_answered, int *online_answers)
{
    char *batch = malloc((size_t)count * 160 + 1);
    ck_assert_ptr_nonnull(batch);
    size_t len = 0;
    int first = next_id;
    for (int i = 0; i < count; i++)
        len += (size_t)sprintf(batch + len,
                               "{\"cmd\":\"private_chat\",\"id\":%d,\"user_to\":\"%s\","
                               "\"text\":\"n%d\"}\n",
                               next_id++, to, i);
    ck_assert_int_eq(test_client_send(c, batch, len, 10000), 0);
    free(batch);
    for (int i = 0; i < count; i++) {
        json_t *r = reply_to(c, first + i, NULL, NULL);
        const char *result = chatd_json_str(r, "result");
        ck_assert_msg(strcmp(result, "success") == 0 || strcmp(result, "offline") == 0,
                      "private_chat answered %s", json_dumps(r, 0));
        if (online_answers)
            *online_answers += strcmp(result, "success") == 0;
        answered[(*n_answered)++] = json_integer_value(json_object_get(r, "seq"));
        json_decref(r);
    }
}

static void check_increasing(const struct inbox *in, const char *who)
{
    for (size_t i = 1; i < in->n; i++)
        ck_assert_msg(in->seq[i] > in->seq[i - 1], "%s got seq %lld after %lld", who, in->seq[i],
                      in->seq[i - 1]);
}

/* got (increasing) holds exactly the seqs of want (increasing too: one sender). */
static void check_same(const long long *want, size_t n_want, const struct inbox *got,
                       const char *who)
{
    ck_assert_msg(got->n == n_want, "%s got %zu messages of %zu", who, got->n, n_want);
    for (size_t i = 0; i < n_want; i++)
        ck_assert_msg(got->seq[i] == want[i], "%s: message %zu is seq %lld, want %lld", who, i,
                      got->seq[i], want[i]);
}

/* A zeroed inbox; inbox_free frees it with the pushes it kept. */
static struct inbox *inbox_new(void)
{
    struct inbox *in = calloc(1, sizeof(*in));
    ck_assert_ptr_nonnull(in);
    return in;
}

static void inbox_free(struct inbox *in)
{
    json_decref(in->pushes);
    free(in);
}

/* c receives the n private messages answered, each once and in order, and nothing more
 * (up to a ping's reply). */
static void expect_received(struct test_client *c, struct inbox *got, const long long *answered,
                            size_t n, const char *who)
{
    wait_inbox(c, got, "private_chat_recv", n);
    drain_into(c, got, "private_chat_recv");
    check_increasing(got, who);
    check_same(answered, n, got, who);
}

/* Start nodes a and b, each with one more --set (NULL: none). */
static void start_a_and_b(const char *more_set)
{
    cluster_node_start_with(&nodes, 0, more_set);
    cluster_node_start_with(&nodes, 1, more_set);
}

/* Stop nodes a and b; each must exit 0. */
static void stop_a_and_b(void)
{
    cluster_node_stop(&nodes, 0);
    cluster_node_stop(&nodes, 1);
}

/* `recipient` logs in on node b (login_extra as for login_on), then `sender` on node a,
 * which waits until it knows of the recipient's login (before, it would take him for
 * offline). Returns the sender's session; the recipient's is *to. */
static struct test_client *login_pair(const char *sender, const char *recipient,
                                      const char *login_extra, struct test_client **to)
{
    *to = login_on(b, recipient, login_extra);
    struct test_client *c = login_on(a, sender, NULL);
    cluster_node_wait_metric_at_least(a, "chatd_cluster_remote_users", 1);
    return c;
}

/* Register user on node n, on a connection of its own, without logging in. */
static void register_on(struct cluster_node *n, const char *user)
{
    struct test_client *c = chatd_proc_connect(&n->proc);
    char request[160];
    snprintf(request, sizeof(request),
             "{\"cmd\":\"register\",\"user\":\"%s\",\"passwd\":\"pass word\"}", user);
    json_decref(ask(c, request));
    test_client_close(c);
}

static void setup(void)
{
    cluster_nodes_init(&nodes, 3, LEASE_MS);
}

static void teardown(void)
{
    cluster_nodes_stop(&nodes);
}

START_TEST(a_private_message_to_another_node_is_success_and_received_once_in_order)
{
    start_a_and_b(NULL);
    struct test_client *bob, *alice = login_pair("alice", "bob", NULL, &bob);

    static long long answered[MAX_MSGS];
    size_t n = 0;
    int online = 0;
    for (int round = 0; round < 5; round++)
        send_private(alice, "bob", 40, answered, &n, &online);
    ck_assert_int_eq(online, 200); /* bob is online, on the other node */
    struct inbox *got = inbox_new();
    expect_received(bob, got, answered, n, "bob");
    printf("200 private messages node a -> node b: %g announcements published by a, %g gap "
           "reads on b\n",
           cluster_node_metric(a, "chatd_cluster_announcements_published_total"),
           cluster_node_metric(b, "chatd_cluster_gap_reads_total"));
    ck_assert_double_ge(cluster_node_metric(b, "chatd_cluster_announcements_received_total"), 1);
    test_client_close(alice);
    test_client_close(bob);
    inbox_free(got);
    stop_a_and_b();
}
END_TEST

START_TEST(a_group_on_three_nodes_gets_each_message_once_with_one_publish_per_node_and_batch)
{
    cluster_nodes_start_all(&nodes);
    const char *names[] = {"gm0", "gm1", "gm2", "gm3", "gm4"};
    const int where[] = {0, 1, 1, 2, 2}; /* two members on b and on c */
    struct test_client *m[5];
    for (int i = 0; i < 5; i++)
        m[i] = login_on(&nodes.node[where[i]], names[i], NULL);
    expect_result(m[0], "{\"cmd\":\"create_group\",\"group\":\"gr\"}", "success");
    for (int i = 1; i < 5; i++)
        expect_result(m[i], "{\"cmd\":\"join_group\",\"group\":\"gr\"}", "success");
    cluster_node_wait_metric_at_least(a, "chatd_cluster_remote_users", 4);

    /* group_members' online flags are the cluster's. */
    json_t *reply = ask(m[1], "{\"cmd\":\"group_members\",\"group\":\"gr\"}");
    size_t i;
    json_t *member;
    json_array_foreach(json_object_get(reply, "members"), i, member)
        ck_assert_msg(json_is_true(json_object_get(member, "online")), "%s shows offline",
                      chatd_json_str(member, "user"));
    ck_assert_uint_eq(json_array_size(json_object_get(reply, "members")), 5);
    json_decref(reply);

    double published0 = cluster_node_metric(a, "chatd_cluster_announcements_published_total");
    double batches0 = cluster_node_metric(a, "chatd_post_batches_total");
    /* Two senders on different nodes, pipelined, at the same time. */
    static long long sent0[MAX_MSGS], sent3[MAX_MSGS];
    size_t n0 = 0, n3 = 0;
    char *batch = malloc(100 * 120);
    for (int s = 0; s < 2; s++) {
        struct test_client *c = s == 0 ? m[0] : m[3];
        size_t len = 0;
        for (int k = 0; k < 50; k++)
            len += (size_t)sprintf(batch + len,
                                   "{\"cmd\":\"group_chat\",\"id\":%d,\"group\":\"gr\","
                                   "\"text\":\"g%d\"}\n",
                                   next_id + s * 50 + k, k);
        ck_assert_int_eq(test_client_send(c, batch, len, 10000), 0);
    }
    free(batch);
    int first = next_id;
    next_id += 100;
    static struct inbox got[5];
    memset(got, 0, sizeof(got));
    for (int s = 0; s < 2; s++) {
        for (int k = 0; k < 50; k++) {
            int sender = s == 0 ? 0 : 3;
            json_t *r = reply_to(m[sender], first + s * 50 + k, &got[sender], "group_chat_recv");
            ck_assert_str_eq(chatd_json_str(r, "result"), "success");
            long long seq = json_integer_value(json_object_get(r, "seq"));
            if (s == 0)
                sent0[n0++] = seq;
            else
                sent3[n3++] = seq;
            json_decref(r);
        }
    }
    for (int k = 0; k < 5; k++) {
        wait_inbox(m[k], &got[k], "group_chat_recv", k == 0 || k == 3 ? 50 : 100);
        drain_into(m[k], &got[k], "group_chat_recv");
        check_increasing(&got[k], names[k]);
        size_t want = k == 0 || k == 3 ? 50 : 100;
        ck_assert_msg(got[k].n == want, "%s got %zu of %zu", names[k], got[k].n, want);
        /* Each of a sender's messages once, and only those (no others). */
        size_t from0 = 0, from3 = 0;
        for (size_t j = 0; j < got[k].n; j++) {
            if (from0 < n0 && got[k].seq[j] == sent0[from0])
                from0++;
            else if (from3 < n3 && got[k].seq[j] == sent3[from3])
                from3++;
            else
                ck_abort_msg("%s got seq %lld out of either sender's order", names[k],
                             got[k].seq[j]);
        }
        ck_assert_uint_eq(from0, k == 0 ? 0 : 50);
        ck_assert_uint_eq(from3, k == 3 ? 0 : 50);
    }
    double published =
        cluster_node_metric(a, "chatd_cluster_announcements_published_total") - published0;
    double batches = cluster_node_metric(a, "chatd_post_batches_total") - batches0;
    printf("50 group messages from node a to members on b and c: %g commit batches, %g "
           "announcements published (two nodes per batch, not one per member)\n",
           batches, published);
    ck_assert_double_ge(published, 2);
    ck_assert_double_le(published, 2 * batches);
    for (int k = 0; k < 3; k++)
        printf("node %c: %g batches waited for a lower id, %g gap reads\n", 'a' + k,
               cluster_node_metric(&nodes.node[k], "chatd_cluster_batches_waited_total"),
               cluster_node_metric(&nodes.node[k], "chatd_cluster_gap_reads_total"));
    for (int k = 0; k < 5; k++) {
        json_decref(got[k].pushes);
        test_client_close(m[k]);
    }
    for (size_t k = 0; k < 3; k++)
        cluster_node_stop(&nodes, k);
}
END_TEST

/* The presence push `user` `status` in in's other pushes, reading c more until it comes. */
static void wait_presence(struct test_client *c, struct inbox *in, const char *user,
                          const char *status)
{
    long long start = chatd_now_ms();
    for (;;) {
        size_t i;
        json_t *p;
        json_array_foreach(in->pushes, i, p)
        {
            if (strcmp(chatd_json_str(p, "cmd"), "presence") == 0 &&
                strcmp(chatd_json_str(p, "user"), user) == 0 &&
                strcmp(chatd_json_str(p, "status"), status) == 0) {
                json_array_remove(in->pushes, i);
                return;
            }
        }
        ck_assert_msg(chatd_now_ms() - start < WAIT_MS, "no presence %s %s", user, status);
        json_t *line = test_client_read_json(c, 500);
        if (line)
            inbox_take(in, line, "-");
    }
}

START_TEST(presence_and_friend_lists_are_right_across_nodes_and_a_dead_node_s_users_go_offline)
{
    start_a_and_b(NULL);
    struct test_client *bob = login_on(b, "pbob", NULL);
    struct test_client *alice = login_on(a, "palice", NULL);
    expect_result(alice, "{\"cmd\":\"add_friend\",\"friend\":\"pbob\"}", "success");
    /* Node b read pbob's friends before node a made the friendship: his logout tells
     * palice all the same. */
    struct inbox *alice_in = inbox_new();
    test_client_close(bob);
    wait_presence(alice, alice_in, "pbob", "offline");
    inbox_free(alice_in);
    bob = login_on(b, "pbob", NULL);
    /* A login reaches the other nodes a Redis round trip later; a presence change there
     * before that does not know of it (docs/operations.md, "Running several nodes"). */
    cluster_node_wait_metric_at_least(a, "chatd_cluster_remote_users", 1);
    struct inbox *bob_in = inbox_new();
    test_client_close(alice);
    wait_presence(bob, bob_in, "palice", "offline");
    alice = login_on(a, "palice", NULL);
    wait_presence(bob, bob_in, "palice", "online");

    /* A second session on the other node: its login gets the friend list too, and no
     * presence change goes out. */
    struct test_client *c = chatd_proc_connect(&b->proc);
    json_t *login = ask(c, "{\"cmd\":\"login\",\"user\":\"palice\",\"passwd\":\"pass word\"}");
    ck_assert_str_eq(chatd_json_str(login, "result"), "success");
    json_t *fri = json_object_get(login, "fri");
    ck_assert_uint_eq(json_array_size(fri), 1);
    ck_assert_str_eq(json_string_value(json_array_get(fri, 0)), "pbob");
    json_decref(login);

    /* Node a dies with palice's first session: she stays online (node b), then goes
     * offline when her session there ends. */
    cluster_node_kill(&nodes, 0);
    test_client_close(alice);
    cluster_node_wait_metric_at_least(b, "chatd_cluster_nodes_dropped_total", 1);
    test_client_close(c);
    wait_presence(bob, bob_in, "palice", "offline");

    /* Now her only session is on node a, which is killed: node b, which finds a dead,
     * tells pbob. */
    cluster_node_start(&nodes, 0);
    cluster_node_wait_metric_at_least(a, "chatd_cluster_remote_users", 1);
    alice = login_on(a, "palice", NULL);
    wait_presence(bob, bob_in, "palice", "online");
    cluster_node_kill(&nodes, 0);
    long long start = chatd_now_ms();
    wait_presence(bob, bob_in, "palice", "offline");
    printf("palice's node killed: pbob on node b was told she is offline after %lld ms\n",
           chatd_now_ms() - start);
    ck_assert_double_eq(cluster_node_metric(b, "chatd_cluster_users_lost_total"), 1);
    test_client_close(alice);
    inbox_free(bob_in);
    test_client_close(bob);
    cluster_node_stop(&nodes, 1);
}
END_TEST

/* Read everything `c` gets for ack_ms and acknowledge each message as it comes. */
static void read_acking(struct test_client *c, struct inbox *in, int ms)
{
    long long start = chatd_now_ms();
    while (chatd_now_ms() - start < ms) {
        json_t *line = test_client_read_json(c, 100);
        if (!line)
            continue;
        long long seq = json_integer_value(json_object_get(line, "seq"));
        int is_msg = strcmp(chatd_json_str(line, "cmd"), "private_chat_recv") == 0;
        inbox_take(in, line, "private_chat_recv");
        if (is_msg) {
            char ack[64];
            snprintf(ack, sizeof(ack), "{\"cmd\":\"ack\",\"seq\":%lld}\n", seq);
            test_client_send_str(c, ack); /* fails once its node is killed: nothing to ack */
        }
    }
}

START_TEST(a_killed_node_s_users_get_every_message_once_on_another_node)
{
    start_a_and_b(NULL);
    struct test_client *bob,
        *alice = login_pair("kalice", "kbob", ",\"ack\":true,\"device\":\"phone\"", &bob);
    static long long answered[MAX_MSGS];
    size_t n = 0;
    struct inbox *first = inbox_new(), *second = inbox_new();
    send_private(alice, "kbob", 50, answered, &n, NULL);
    read_acking(bob, first, 500);
    /* Node b dies while messages flow to kbob. */
    send_private(alice, "kbob", 30, answered, &n, NULL);
    cluster_node_kill(&nodes, 1);
    read_acking(bob, first, 200); /* what reached the socket before the kill */
    send_private(alice, "kbob", 30, answered, &n, NULL);
    /* kbob logs in on node a, from the last message he acknowledged. */
    long long since = first->n ? first->seq[first->n - 1] : 0;
    char extra[96];
    snprintf(extra, sizeof(extra), ",\"ack\":true,\"device\":\"phone\",\"since\":%lld", since);
    test_client_close(bob);
    bob = login_on(a, "kbob", extra);
    send_private(alice, "kbob", 20, answered, &n, NULL);
    long long start = chatd_now_ms();
    while (first->n + second->n < n && chatd_now_ms() - start < WAIT_MS)
        read_acking(bob, second, 200);
    drain_into(bob, second, "private_chat_recv");
    check_increasing(first, "kbob on node b");
    check_increasing(second, "kbob on node a");
    /* Everything answered, exactly once over his two sessions. */
    struct inbox *all = inbox_new();
    memcpy(all->seq, first->seq, first->n * sizeof(*first->seq));
    memcpy(all->seq + first->n, second->seq, second->n * sizeof(*second->seq));
    all->n = first->n + second->n;
    check_increasing(all, "kbob over both sessions");
    check_same(answered, n, all, "kbob");
    printf("node b killed after kbob was sent %zu of %zu; node a sent him the other %zu\n",
           first->n, n, second->n);
    test_client_close(alice);
    test_client_close(bob);
    inbox_free(first);
    inbox_free(second);
    inbox_free(all);
    cluster_node_stop(&nodes, 0);
}
END_TEST

/* After Redis comes back empty, a node's replica knows no other node until they
 * register again: node a must not take carol, online on a and b, for online on a alone
 * (no timeline row, no announcement to b). Node b is held stopped while a reconnects and
 * posts, so b registers only after; its gap read then finds the rows. */
START_TEST(after_redis_comes_back_a_recipient_also_online_elsewhere_gets_a_row)
{
    start_a_and_b(NULL);
    struct test_client *carol_a = login_on(a, "bcarol", NULL);
    struct test_client *carol_b, *alice = login_pair("balice", "bcarol", NULL, &carol_b);
    cluster_redis_stop(&nodes);
    cluster_node_wait_metric(a, "chatd_cluster_redis_up", 0);
    cluster_node_wait_metric(b, "chatd_cluster_redis_up", 0);
    ck_assert_int_eq(chatd_proc_signal(&b->proc, SIGSTOP), 0);
    cluster_redis_start(&nodes);
    cluster_node_wait_metric(a, "chatd_cluster_redis_up", 1);
    static long long answered[MAX_MSGS];
    size_t n = 0;
    send_private(alice, "bcarol", 10, answered, &n, NULL);
    ck_assert_int_eq(chatd_proc_signal(&b->proc, SIGCONT), 0);
    struct inbox *got_a = inbox_new(), *got_b = inbox_new();
    wait_inbox(carol_a, got_a, "private_chat_recv", n);
    expect_received(carol_b, got_b, answered, n, "bcarol on b");
    test_client_close(alice);
    test_client_close(carol_a);
    test_client_close(carol_b);
    inbox_free(got_a);
    inbox_free(got_b);
    stop_a_and_b();
}
END_TEST

/* The "" position is moved by pushes on any node, so it says nothing of what the user's
 * sessions elsewhere were sent: with [cluster] neither a logout nor the prune (the first
 * runs 5 s after start) deletes timeline rows of the last day below it. Here carol's
 * session on a moves it past alice's messages and logs out; a new device of carol's on b
 * asking for everything still gets them all. */
START_TEST(rows_below_a_position_moved_on_one_node_stay_for_the_others)
{
    start_a_and_b(NULL);
    struct test_client *carol_a = login_on(a, "carol", NULL);
    struct test_client *carol_b, *alice = login_pair("alice", "carol", NULL, &carol_b);

    static long long answered[MAX_MSGS];
    size_t n = 0;
    send_private(alice, "carol", 20, answered, &n, NULL);
    struct inbox *got_a = inbox_new(), *got_b = inbox_new(), *got_new = inbox_new();
    wait_inbox(carol_a, got_a, "private_chat_recv", n);
    wait_inbox(carol_b, got_b, "private_chat_recv", n);
    double written = cluster_node_metric(a, "chatd_stream_positions_written_total");
    test_client_close(carol_a); /* a writes "" at the last message, at this logout */
    cluster_node_wait_metric_at_least(a, "chatd_stream_positions_written_total", written + 1);
    cluster_node_wait_metric_at_least(a, "chatd_prune_runs_total", 1);
    cluster_node_wait_metric_at_least(b, "chatd_prune_runs_total", 1);
    ck_assert_double_eq(cluster_node_metric(a, "chatd_stream_timeline_deleted_at_logout_total"), 0);

    struct test_client *phone =
        login_on(b, "carol", ",\"device\":\"phone\",\"ack\":true,\"since\":0");
    expect_received(phone, got_new, answered, n, "carol's new device on b");
    inbox_free(got_a);
    inbox_free(got_b);
    inbox_free(got_new);
    test_client_close(phone);
    test_client_close(carol_b);
    test_client_close(alice);
    stop_a_and_b();
}
END_TEST

START_TEST(redis_stopped_under_traffic_loses_and_duplicates_nothing)
{
    start_a_and_b(NULL);
    struct test_client *bob, *alice = login_pair("ralice", "rbob", NULL, &bob);
    static long long answered[MAX_MSGS];
    size_t n = 0;
    int online = 0;
    send_private(alice, "rbob", 40, answered, &n, &online);
    cluster_redis_stop(&nodes);
    send_private(alice, "rbob", 40, answered, &n, &online);
    cluster_node_wait_metric(a, "chatd_cluster_redis_up", 0);
    cluster_node_wait_metric(b, "chatd_cluster_redis_up", 0);
    int online_before_down = online;
    send_private(alice, "rbob", 40, answered, &n, &online);
    /* Node b's own commits now wait for node a's ids below them, which it learns of
     * from the counter and reads. */
    struct test_client *carol = login_on(b, "rcarol", NULL);
    for (int i = 0; i < 10; i++) {
        send_private(alice, "rbob", 1, answered, &n, &online);
        send_private(carol, "rbob", 1, answered, &n, NULL);
    }
    struct inbox *got = inbox_new();
    wait_inbox(bob, got, "private_chat_recv", n);
    ck_assert_double_ge(cluster_node_metric(b, "chatd_cluster_batches_waited_total"), 1);
    printf("Redis down: %d of node a's last 50 answered success (rbob counts as offline); rbob "
           "got all %zu, through %g gap reads, node b's own batches waiting %g times\n",
           online - online_before_down, n, cluster_node_metric(b, "chatd_cluster_gap_reads_total"),
           cluster_node_metric(b, "chatd_cluster_batches_waited_total"));
    ck_assert_int_eq(online - online_before_down, 0);
    ck_assert_double_ge(cluster_node_metric(b, "chatd_cluster_gap_reads_total"), 1);
    cluster_redis_start(&nodes);
    cluster_node_wait_metric_at_least(a, "chatd_cluster_remote_users", 1);
    online = 0;
    send_private(alice, "rbob", 40, answered, &n, &online);
    ck_assert_int_eq(online, 40);
    expect_received(bob, got, answered, n, "rbob");
    test_client_close(alice);
    test_client_close(bob);
    test_client_close(carol);
    inbox_free(got);
    stop_a_and_b();
}
END_TEST

/* Node b knows of dbob's messages above a gap before dbob logs in there: they name
 * nobody on b (dbob was offline), and his drain stops at W, below them. */
START_TEST(a_first_login_below_known_ids_gets_them_before_the_gap_is_read)
{
    /* Time for dbob to log in while the gap is open. */
    start_a_and_b("cluster.gap_wait_ms=2000");
    register_on(b, "dbob");
    struct test_client *alice = login_on(a, "dalice", NULL);
    take_an_id();
    static long long answered[MAX_MSGS];
    size_t n = 0;
    send_private(alice, "dbob", 5, answered, &n, NULL);
    cluster_node_wait_metric_at_least(b, "chatd_cluster_waiting_ranges", 1);
    struct test_client *bob = login_on(b, "dbob", ",\"ack\":true,\"device\":\"phone\"");
    send_private(alice, "dbob", 5, answered, &n, NULL);
    struct inbox *got = inbox_new();
    expect_received(bob, got, answered, n, "dbob");
    test_client_close(alice);
    test_client_close(bob);
    inbox_free(got);
    stop_a_and_b();
}
END_TEST

/* The same, but dsbob's device has those messages already (since): they are not sent
 * again, though they are above node b's W. */
START_TEST(a_first_login_since_ids_above_the_gap_is_not_sent_them_again)
{
    start_a_and_b("cluster.gap_wait_ms=2000");
    register_on(b, "dsbob");
    struct test_client *alice = login_on(a, "dsalice", NULL);
    take_an_id();
    static long long had[MAX_MSGS], answered[MAX_MSGS];
    size_t n_had = 0, n = 0;
    send_private(alice, "dsbob", 5, had, &n_had, NULL);
    cluster_node_wait_metric_at_least(b, "chatd_cluster_waiting_ranges", 1);
    char extra[96];
    snprintf(extra, sizeof(extra), ",\"ack\":true,\"device\":\"phone\",\"since\":%lld",
             had[n_had - 1]);
    struct test_client *bob = login_on(b, "dsbob", extra);
    send_private(alice, "dsbob", 5, answered, &n, NULL);
    struct inbox *got = inbox_new();
    wait_inbox(bob, got, "private_chat_recv", n);
    cluster_node_wait_metric(b, "chatd_cluster_waiting_ranges", 0); /* the gap was read */
    expect_received(bob, got, answered, n, "dsbob");
    test_client_close(alice);
    test_client_close(bob);
    inbox_free(got);
    stop_a_and_b();
}
END_TEST

/* Many gaps at once (a node died between commit and publish again and again, or Redis
 * was away while the others committed): one gap read takes them all, not one a tick. */
START_TEST(many_gaps_are_read_together_not_one_per_gap_wait)
{
    /* 20 gaps one per tick: 60 s, past WAIT_MS. */
    start_a_and_b("cluster.gap_wait_ms=3000");
    struct test_client *bob, *alice = login_pair("galice", "gbob", NULL, &bob);
    static long long answered[MAX_MSGS];
    size_t n = 0;
    for (int i = 0; i < 20; i++) {
        take_an_id();
        send_private(alice, "gbob", 1, answered, &n, NULL);
    }
    struct inbox *got = inbox_new();
    expect_received(bob, got, answered, n, "gbob");
    printf("20 gaps between node a's batches: node b read them in %g gap reads\n",
           cluster_node_metric(b, "chatd_cluster_gap_reads_total"));
    test_client_close(alice);
    test_client_close(bob);
    inbox_free(got);
    stop_a_and_b();
}
END_TEST

/* A peer announces ids nobody committed (garbage, or another cluster's node on the same
 * Redis): node b's gap reads must not carry W past the real ids, or it pushes nothing. */
START_TEST(an_announcement_of_ids_nobody_committed_does_not_stop_delivery)
{
    start_a_and_b(NULL);
    struct test_client *bob, *alice = login_pair("falice", "fbob", NULL, &bob);
    char out[64];
    ck_assert_int_eq(redis_proc_query(&nodes.redis,
                                      "PUBLISH chatd:node:node1 \"{\\\"k\\\":\\\"b\\\",\\\"lo\\\":"
                                      "1000000000000,\\\"hi\\\":1000000000000,\\\"m\\\":[]}\"",
                                      out, sizeof(out)),
                     0);
    ck_assert_str_eq(out, ":1");
    cluster_node_wait_metric_at_least(b, "chatd_cluster_announcements_received_total", 1);
    /* Ticks pass: each one used to move W on by up to 2,000 ids that do not exist. */
    cluster_node_wait_metric_at_least(b, "chatd_cluster_counter_reads_total",
                                      cluster_node_metric(b, "chatd_cluster_counter_reads_total") +
                                          5);
    static long long answered[MAX_MSGS];
    size_t n = 0;
    send_private(alice, "fbob", 10, answered, &n, NULL);
    struct inbox *got = inbox_new();
    expect_received(bob, got, answered, n, "fbob");
    ck_assert_double_lt(cluster_node_metric(b, "chatd_cluster_released_id"), 1000000);
    test_client_close(alice);
    test_client_close(bob);
    inbox_free(got);
    stop_a_and_b();
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cluster_route");
    TCase *tc = tcase_create("route");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, a_private_message_to_another_node_is_success_and_received_once_in_order);
    tcase_add_test(
        tc, a_group_on_three_nodes_gets_each_message_once_with_one_publish_per_node_and_batch);
    tcase_add_test(
        tc, presence_and_friend_lists_are_right_across_nodes_and_a_dead_node_s_users_go_offline);
    tcase_add_test(tc, a_killed_node_s_users_get_every_message_once_on_another_node);
    tcase_add_test(tc, redis_stopped_under_traffic_loses_and_duplicates_nothing);
    tcase_add_test(tc, a_first_login_below_known_ids_gets_them_before_the_gap_is_read);
    tcase_add_test(tc, a_first_login_since_ids_above_the_gap_is_not_sent_them_again);
    tcase_add_test(tc, many_gaps_are_read_together_not_one_per_gap_wait);
    tcase_add_test(tc, an_announcement_of_ids_nobody_committed_does_not_stop_delivery);
    tcase_add_test(tc, rows_below_a_position_moved_on_one_node_stay_for_the_others);
    tcase_add_test(tc, after_redis_comes_back_a_recipient_also_online_elsewhere_gets_a_row);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(suite());
}
