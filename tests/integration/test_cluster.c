/* test_cluster.c - nodes joined through Redis ([cluster], host/cluster*.c): two real
 * chatd nodes on one MariaDB and one private redis-server (tests/support/cluster_nodes.h).
 *
 * Who is online elsewhere is observed through the friends command, whose "online" flag
 * is the host's user_session_count (local sessions plus the other nodes'), and through
 * /metrics (chatd_cluster_remote_users). Waits poll with generous deadlines; the times
 * they took are printed, never asserted. */
#include "client.h"
#include "cluster_nodes.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define LEASE_MS 1000
/* A deadline for what should take about a lease: far above it, never a timing check. */
#define WAIT_MS 20000

/* Nodes node0 and node1 (a and b); Redis is started by each test, if at all. */
static struct cluster_nodes nodes;
static struct cluster_node *const a = &nodes.node[0], *const b = &nodes.node[1];

/* Send `request` (a JSON object's text without "id") and return the reply to it,
 * skipping pushes. */
static json_t *ask(struct test_client *c, const char *request)
{
    static int next_id = 1;
    json_t *msg = json_loads(request, 0, NULL);
    ck_assert_ptr_nonnull(msg);
    int id = next_id++;
    json_object_set_new(msg, "id", json_integer(id));
    ck_assert_int_eq(test_client_send_json(c, msg), 0);
    json_decref(msg);
    for (;;) {
        json_t *line = test_client_read_json(c, 10000);
        ck_assert_msg(line != NULL, "no reply to %s", request);
        if (json_integer_value(json_object_get(line, "id")) == id)
            return line;
        json_decref(line);
    }
}

static void expect_result(struct test_client *c, const char *request, const char *result)
{
    json_t *reply = ask(c, request);
    ck_assert_msg(strcmp(chatd_json_str(reply, "result"), result) == 0, "%s answered %s", request,
                  json_dumps(reply, 0));
    json_decref(reply);
}

/* A connection to n, logged in as user (registered first). */
static struct test_client *user_on(struct cluster_node *n, const char *user)
{
    struct test_client *c = chatd_proc_connect(&n->proc);
    char request[160];
    snprintf(request, sizeof(request),
             "{\"cmd\":\"register\",\"user\":\"%s\",\"passwd\":\"pass word\"}", user);
    json_decref(ask(c, request)); /* success, or user_exist from an earlier test step */
    snprintf(request, sizeof(request),
             "{\"cmd\":\"login\",\"user\":\"%s\",\"passwd\":\"pass word\"}", user);
    expect_result(c, request, "success");
    return c;
}

/* The "online" flag friend has in c's friends list (-1: not listed). */
static int friend_online(struct test_client *c, const char *friend)
{
    json_t *reply = ask(c, "{\"cmd\":\"friends\"}");
    int online = -1;
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(reply, "friends"), i,
                       f) if (strcmp(chatd_json_str(f, "user"), friend) == 0) online =
        json_is_true(json_object_get(f, "online"));
    json_decref(reply);
    return online;
}

/* Wait until friend shows `online` to c; returns the milliseconds it took. */
static long long wait_friend(struct test_client *c, const char *friend, int online)
{
    long long start = chatd_now_ms();
    while (friend_online(c, friend) != online) {
        ck_assert_msg(chatd_now_ms() - start < WAIT_MS, "%s never showed %s", friend,
                      online ? "online" : "offline");
        chatd_sleep_ms(20);
    }
    return chatd_now_ms() - start;
}

/* Redis and both nodes up, alice logged in on node a and bob on node b, bob alice's
 * friend; returns how long she took to show online to him. */
static long long alice_on_a_befriended_by_bob_on_b(struct test_client **alice,
                                                   struct test_client **bob)
{
    cluster_redis_start(&nodes);
    cluster_nodes_start_all(&nodes);
    *alice = user_on(a, "alice");
    *bob = user_on(b, "bob");
    expect_result(*bob, "{\"cmd\":\"add_friend\",\"friend\":\"alice\"}", "success");
    return wait_friend(*bob, "alice", 1);
}

/* node's /healthz has `status` (e.g. " 200 ") and a body that begins with `body`. */
static void expect_healthz(const struct cluster_node *node, const char *status, const char *body)
{
    char *text = cluster_node_healthz(node), want[64];
    snprintf(want, sizeof(want), "\r\n\r\n%s", body);
    ck_assert_msg(strstr(text, status) && strstr(text, want), "%s: want %s and %s, got %s",
                  node->name, status, body, text);
    free(text);
}

/* Redis answers `command` with `want` (its reply's first line). */
static void expect_redis(const char *command, const char *want)
{
    char reply[64];
    ck_assert_msg(redis_proc_query(&nodes.redis, command, reply, sizeof(reply)) == 0,
                  "Redis did not answer %s", command);
    ck_assert_msg(strcmp(reply, want) == 0, "%s: %s, want %s", command, reply, want);
}

static void setup(void)
{
    cluster_nodes_init_without_redis(&nodes, 2, LEASE_MS);
}

static void teardown(void)
{
    cluster_nodes_stop(&nodes);
}

START_TEST(a_user_on_one_node_is_online_on_the_other)
{
    struct test_client *alice, *bob;
    printf("alice on node a showed online to bob on node b after %lld ms\n",
           alice_on_a_befriended_by_bob_on_b(&alice, &bob));
    cluster_node_wait_metric(b, "chatd_cluster_remote_users", 1);
    ck_assert_double_eq(cluster_node_metric(b, "chatd_cluster_nodes"), 1);
    ck_assert_int_eq(friend_online(alice, "bob"), 1);

    /* A second session elsewhere keeps her online when the first logs out. It gets
     * her friends in its login reply: the login events' first_or_last stay this
     * node's, which the friends plugin keeps its lists on. */
    struct test_client *alice2 = chatd_proc_connect(&b->proc);
    json_t *login = ask(alice2, "{\"cmd\":\"login\",\"user\":\"alice\",\"passwd\":\"pass word\"}");
    ck_assert_str_eq(chatd_json_str(login, "result"), "success");
    json_t *fri = json_object_get(login, "fri");
    ck_assert_msg(json_array_size(fri) == 1 &&
                      strcmp(json_string_value(json_array_get(fri, 0)), "bob") == 0,
                  "fri: %s", json_dumps(login, 0));
    json_decref(login);
    expect_result(alice, "{\"cmd\":\"logout\"}", "success");
    ck_assert_int_eq(friend_online(bob, "alice"), 1);
    expect_result(alice2, "{\"cmd\":\"logout\"}", "success");
    wait_friend(bob, "alice", 0);
    cluster_node_wait_metric(b, "chatd_cluster_remote_users", 0);

    expect_redis("HEXISTS chatd:users:node0 alice", ":0");
    test_client_close(alice);
    test_client_close(alice2);
    test_client_close(bob);
}
END_TEST

START_TEST(a_killed_node_s_users_go_offline_within_its_lease)
{
    struct test_client *alice, *bob;
    alice_on_a_befriended_by_bob_on_b(&alice, &bob);

    cluster_node_kill(&nodes, 0);
    printf("node a killed: alice showed offline on node b after %lld ms (lease %d ms)\n",
           wait_friend(bob, "alice", 0), LEASE_MS);
    ck_assert_double_eq(cluster_node_metric(b, "chatd_cluster_nodes_dropped_total"), 1);
    ck_assert_double_eq(cluster_node_metric(b, "chatd_cluster_nodes"), 0);
    expect_redis("EXISTS chatd:users:node0", ":0");
    expect_redis("SISMEMBER chatd:nodes node0", ":0");

    /* Node a comes back under its name: alice logs in there again and is seen. */
    test_client_close(alice);
    cluster_node_start(&nodes, 0);
    alice = user_on(a, "alice");
    wait_friend(bob, "alice", 1);
    test_client_close(alice);
    test_client_close(bob);
}
END_TEST

START_TEST(nodes_serve_their_own_users_while_redis_is_down_and_rebuild_after)
{
    struct test_client *alice, *bob;
    alice_on_a_befriended_by_bob_on_b(&alice, &bob);
    ck_assert_double_eq(cluster_node_metric(b, "chatd_cluster_reconnects_total"), 0);

    cluster_redis_stop(&nodes);
    cluster_wait_redis(&nodes, 0);
    expect_healthz(b, " 200 ", "ok\nredis: down\n");
    /* Both nodes serve their own users; the other node's users count as offline. */
    expect_result(alice, "{\"cmd\":\"ping\"}", "success");
    ck_assert_int_eq(friend_online(bob, "alice"), 0);
    ck_assert_int_eq(friend_online(alice, "bob"), 0);
    struct test_client *carol = user_on(a, "carol"); /* a login while Redis is down */

    cluster_redis_start(&nodes);
    cluster_wait_redis(&nodes, 1);
    ck_assert_double_eq(cluster_node_metric(b, "chatd_cluster_reconnects_total"), 1);
    printf("Redis back: alice showed online on node b again after %lld ms\n",
           wait_friend(bob, "alice", 1));
    /* The new Redis learnt node a's users from node a: carol too. */
    cluster_node_wait_metric(b, "chatd_cluster_remote_users", 2);
    expect_healthz(b, "", "ok\nredis: up\n");
    test_client_close(alice);
    test_client_close(bob);
    test_client_close(carol);
}
END_TEST

START_TEST(a_node_starts_without_redis_and_healthz_follows_required)
{
    /* No redis-server at all: the socket does not exist. */
    struct redis_proc *redis = &nodes.redis;
    ck_assert_int_eq(chatd_tmpdir_make(redis->dir, sizeof(redis->dir)), 0);
    snprintf(redis->socket, sizeof(redis->socket), "%s/none.sock", redis->dir);
    cluster_node_start(&nodes, 0);
    cluster_node_start_with(&nodes, 1, "cluster.required=yes");
    struct test_client *alice = user_on(a, "alice");
    expect_result(alice, "{\"cmd\":\"ping\"}", "success");
    cluster_node_wait_metric_at_least(a, "chatd_cluster_connect_failures_total", 2);
    expect_healthz(a, " 200 ", "ok\nredis: down\n");
    expect_healthz(b, " 503 ", "ok\nredis: down\n");

    /* enable = no: no Redis line, no cluster series. */
    struct cluster_node plain = {.name = "plain", .admin_port = test_free_port("127.0.0.1")};
    char admin[64];
    snprintf(admin, sizeof(admin), "admin.listen=127.0.0.1:%d", plain.admin_port);
    const char *sets[] = {"admin.enable=yes", admin, NULL};
    ck_assert_int_eq(db_test_start_sample(&plain.proc, &nodes.db, sets), 0);
    char *health = cluster_node_healthz(&plain);
    ck_assert_msg(strstr(health, " 200 ") && strstr(health, "\r\n\r\nok\n") &&
                      !strstr(health, "redis"),
                  "%s", health);
    free(health);
    ck_assert_double_eq(cluster_node_metric(&plain, "chatd_cluster_redis_up"), -1);
    test_client_close(alice);
    chatd_proc_cleanup(&plain.proc);
}
END_TEST

START_TEST(the_redis_password_file_is_used_and_checked)
{
    struct redis_proc *redis = &nodes.redis;
    snprintf(redis->password, sizeof(redis->password), "a-redis-password");
    cluster_redis_start(&nodes);
    char dir[PATH_MAX], file[PATH_MAX + 32], set[sizeof(file) + 64];
    ck_assert_int_eq(chatd_tmpdir_make(dir, sizeof(dir)), 0);
    ck_assert_int_eq(
        chatd_file_write(dir, "redis.password", "a-redis-password\n", file, sizeof(file)), 0);
    ck_assert_int_eq(chmod(file, 0600), 0);
    snprintf(set, sizeof(set), "cluster.redis_password_file=%s", file);
    cluster_node_start_with(&nodes, 0, set);
    cluster_node_wait_metric(a, "chatd_cluster_redis_up", 1);
    cluster_node_stop(&nodes, 0);

    /* Readable by others: refused at start, like [admin] token_file. */
    ck_assert_int_eq(chmod(file, 0644), 0);
    char conf[PATH_MAX + 32], text[sizeof(redis->socket) + sizeof(file) + 256];
    snprintf(text, sizeof(text),
             "[server]\nlisten = 127.0.0.1:%d\n[cluster]\nenable = yes\nredis = unix:%s\n"
             "redis_password_file = %s\n",
             test_free_port("127.0.0.1"), redis->socket, file);
    ck_assert_int_eq(chatd_file_write(dir, "chatd.conf", text, conf, sizeof(conf)), 0);
    const char *args[] = {"-c", conf, NULL};
    struct chatd_run_result r;
    ck_assert_int_eq(chatd_run(args, 10000, &r), 0);
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strstr(r.err, "[cluster] redis_password_file") &&
                      strstr(r.err, "other users can read or write it"),
                  "%s", r.err);
    chatd_run_result_free(&r);
    chatd_tmpdir_remove(dir);
}
END_TEST

static Suite *cluster_suite(void)
{
    Suite *s = suite_create("cluster");
    TCase *tc = tcase_create("two nodes");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_user_on_one_node_is_online_on_the_other);
    tcase_add_test(tc, a_killed_node_s_users_go_offline_within_its_lease);
    tcase_add_test(tc, nodes_serve_their_own_users_while_redis_is_down_and_rebuild_after);
    tcase_add_test(tc, a_node_starts_without_redis_and_healthz_follows_required);
    tcase_add_test(tc, the_redis_password_file_is_used_and_checked);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(cluster_suite());
}
