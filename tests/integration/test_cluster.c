/* test_cluster.c - nodes joined through Redis ([cluster], host/cluster*.c): two real
 * chatd nodes on one MariaDB and one private redis-server (tests/support/redis_proc.h).
 *
 * Who is online elsewhere is observed through the friends command, whose "online" flag
 * is the host's user_session_count (local sessions plus the other nodes'), and through
 * /metrics (chatd_cluster_remote_users). Waits poll with generous deadlines; the times
 * they took are printed, never asserted. */
#include "chatd_proc.h"
#include "client.h"
#include "../db/db_test_env.h"
#include "redis_proc.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define LEASE_MS "1000"
/* A deadline for what should take about a lease: far above it, never a timing check. */
#define WAIT_MS 20000

struct node {
    struct chatd_proc proc;
    int admin_port;
};

static struct config_database db;
static struct redis_proc redis;

static void start_redis(void)
{
    ck_assert_int_eq(redis_proc_start(&redis), 0);
}

static void start_node(struct node *n, const char *name, const char *more)
{
    n->admin_port = test_free_port("127.0.0.1");
    ck_assert_int_gt(n->admin_port, 0);
    char node[64], where[sizeof(redis.socket) + 32], admin[64];
    snprintf(node, sizeof(node), "cluster.node=%s", name);
    snprintf(where, sizeof(where), "cluster.redis=unix:%s", redis.socket);
    snprintf(admin, sizeof(admin), "admin.listen=127.0.0.1:%d", n->admin_port);
    const char *sets[] = {"cluster.enable=yes", node,  where, "cluster.lease_ms=" LEASE_MS,
                          "admin.enable=yes",   admin, more,  NULL};
    ck_assert_int_eq(db_test_start_sample(&n->proc, &db, sets), 0);
}

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
static struct test_client *user_on(struct node *n, const char *user)
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

/* A series' value on n's /metrics (-1: not shown). */
static double metric(const struct node *n, const char *name)
{
    char *text = test_http_get(n->admin_port, "/metrics");
    ck_assert_msg(text != NULL, "cannot reach the admin listener");
    char line[128];
    snprintf(line, sizeof(line), "\n%s ", name);
    const char *at = strstr(text, line);
    double value = at ? strtod(at + strlen(line), NULL) : -1;
    free(text);
    return value;
}

/* Wait until name is `want` (or at least want, with at_least). */
static void wait_metric_is(const struct node *n, const char *name, double want, int at_least)
{
    long long start = chatd_now_ms();
    for (double v; (v = metric(n, name)) != want && !(at_least && v > want);) {
        ck_assert_msg(chatd_now_ms() - start < WAIT_MS, "%s never became %g (is %g)", name, want,
                      v);
        chatd_sleep_ms(20);
    }
}

static void wait_metric(const struct node *n, const char *name, double want)
{
    wait_metric_is(n, name, want, 0);
}

/* n's /healthz response, headers and body (caller frees). */
static char *healthz(const struct node *n)
{
    char *text = test_http_get(n->admin_port, "/healthz");
    ck_assert_msg(text != NULL, "cannot reach the admin listener");
    return text;
}

static void setup(void)
{
    db_test_config(&db);
    memset(&redis, 0, sizeof(redis));
}

static void teardown(void)
{
    redis_proc_cleanup(&redis);
    db_test_cleanup(&db);
}

START_TEST(a_user_on_one_node_is_online_on_the_other)
{
    start_redis();
    struct node a, b;
    start_node(&a, "a", NULL);
    start_node(&b, "b", NULL);
    struct test_client *alice = user_on(&a, "alice");
    struct test_client *bob = user_on(&b, "bob");
    expect_result(bob, "{\"cmd\":\"add_friend\",\"friend\":\"alice\"}", "success");
    printf("alice on node a showed online to bob on node b after %lld ms\n",
           wait_friend(bob, "alice", 1));
    wait_metric(&b, "chatd_cluster_remote_users", 1);
    ck_assert_double_eq(metric(&b, "chatd_cluster_nodes"), 1);
    ck_assert_int_eq(friend_online(alice, "bob"), 1);

    /* A second session elsewhere keeps her online when the first logs out. It gets
     * her friends in its login reply: the login events' first_or_last stay this
     * node's, which the friends plugin keeps its lists on. */
    struct test_client *alice2 = chatd_proc_connect(&b.proc);
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
    wait_metric(&b, "chatd_cluster_remote_users", 0);

    char reply[64];
    ck_assert_int_eq(redis_proc_query(&redis, "HEXISTS chatd:users:a alice", reply, sizeof(reply)),
                     0);
    ck_assert_str_eq(reply, ":0");
    test_client_close(alice);
    test_client_close(alice2);
    test_client_close(bob);
    ck_assert_int_eq(chatd_proc_stop(&a.proc, CHATD_PROC_STOP_TIMEOUT_MS), 0);
    ck_assert_int_eq(chatd_proc_stop(&b.proc, CHATD_PROC_STOP_TIMEOUT_MS), 0);
    chatd_proc_cleanup(&a.proc);
    chatd_proc_cleanup(&b.proc);
}
END_TEST

START_TEST(a_killed_node_s_users_go_offline_within_its_lease)
{
    start_redis();
    struct node a, b;
    start_node(&a, "a", NULL);
    start_node(&b, "b", NULL);
    struct test_client *alice = user_on(&a, "alice");
    struct test_client *bob = user_on(&b, "bob");
    expect_result(bob, "{\"cmd\":\"add_friend\",\"friend\":\"alice\"}", "success");
    wait_friend(bob, "alice", 1);

    chatd_proc_signal(&a.proc, SIGKILL);
    ck_assert_int_eq(chatd_proc_wait(&a.proc, CHATD_PROC_STOP_TIMEOUT_MS), 128 + SIGKILL);
    printf("node a killed: alice showed offline on node b after %lld ms (lease %s ms)\n",
           wait_friend(bob, "alice", 0), LEASE_MS);
    ck_assert_double_eq(metric(&b, "chatd_cluster_nodes_dropped_total"), 1);
    ck_assert_double_eq(metric(&b, "chatd_cluster_nodes"), 0);
    char reply[64];
    ck_assert_int_eq(redis_proc_query(&redis, "EXISTS chatd:users:a", reply, sizeof(reply)), 0);
    ck_assert_str_eq(reply, ":0");
    ck_assert_int_eq(redis_proc_query(&redis, "SISMEMBER chatd:nodes a", reply, sizeof(reply)), 0);
    ck_assert_str_eq(reply, ":0");

    /* Node a comes back under its name: alice logs in there again and is seen. */
    test_client_close(alice);
    start_node(&a, "a", NULL);
    alice = user_on(&a, "alice");
    wait_friend(bob, "alice", 1);
    test_client_close(alice);
    test_client_close(bob);
    chatd_proc_cleanup(&a.proc);
    chatd_proc_cleanup(&b.proc);
}
END_TEST

START_TEST(nodes_serve_their_own_users_while_redis_is_down_and_rebuild_after)
{
    start_redis();
    struct node a, b;
    start_node(&a, "a", NULL);
    start_node(&b, "b", NULL);
    struct test_client *alice = user_on(&a, "alice");
    struct test_client *bob = user_on(&b, "bob");
    expect_result(bob, "{\"cmd\":\"add_friend\",\"friend\":\"alice\"}", "success");
    wait_friend(bob, "alice", 1);
    ck_assert_double_eq(metric(&b, "chatd_cluster_reconnects_total"), 0);

    redis_proc_stop(&redis);
    wait_metric(&b, "chatd_cluster_redis_up", 0);
    wait_metric(&a, "chatd_cluster_redis_up", 0);
    char *health = healthz(&b);
    ck_assert_msg(strstr(health, " 200 ") && strstr(health, "\r\n\r\nok\nredis: down\n"), "%s",
                  health);
    free(health);
    /* Both nodes serve their own users; the other node's users count as offline. */
    expect_result(alice, "{\"cmd\":\"ping\"}", "success");
    ck_assert_int_eq(friend_online(bob, "alice"), 0);
    ck_assert_int_eq(friend_online(alice, "bob"), 0);
    struct test_client *carol = user_on(&a, "carol"); /* a login while Redis is down */

    start_redis();
    wait_metric(&b, "chatd_cluster_redis_up", 1);
    wait_metric(&a, "chatd_cluster_redis_up", 1);
    ck_assert_double_eq(metric(&b, "chatd_cluster_reconnects_total"), 1);
    printf("Redis back: alice showed online on node b again after %lld ms\n",
           wait_friend(bob, "alice", 1));
    /* The new Redis learnt node a's users from node a: carol too. */
    wait_metric(&b, "chatd_cluster_remote_users", 2);
    health = healthz(&b);
    ck_assert_msg(strstr(health, "\r\n\r\nok\nredis: up\n"), "%s", health);
    free(health);
    test_client_close(alice);
    test_client_close(bob);
    test_client_close(carol);
    ck_assert_int_eq(chatd_proc_stop(&a.proc, CHATD_PROC_STOP_TIMEOUT_MS), 0);
    ck_assert_int_eq(chatd_proc_stop(&b.proc, CHATD_PROC_STOP_TIMEOUT_MS), 0);
    chatd_proc_cleanup(&a.proc);
    chatd_proc_cleanup(&b.proc);
}
END_TEST

START_TEST(a_node_starts_without_redis_and_healthz_follows_required)
{
    /* No redis-server at all: the socket does not exist. */
    ck_assert_int_eq(chatd_tmpdir_make(redis.dir, sizeof(redis.dir)), 0);
    snprintf(redis.socket, sizeof(redis.socket), "%s/none.sock", redis.dir);
    struct node a, b, c;
    start_node(&a, "a", NULL);
    start_node(&b, "b", "cluster.required=yes");
    struct test_client *alice = user_on(&a, "alice");
    expect_result(alice, "{\"cmd\":\"ping\"}", "success");
    wait_metric_is(&a, "chatd_cluster_connect_failures_total", 2, 1);
    char *health = healthz(&a);
    ck_assert_msg(strstr(health, " 200 ") && strstr(health, "\r\n\r\nok\nredis: down\n"), "%s",
                  health);
    free(health);
    health = healthz(&b);
    ck_assert_msg(strstr(health, " 503 ") && strstr(health, "\r\n\r\nok\nredis: down\n"), "%s",
                  health);
    free(health);

    /* enable = no: no Redis line, no cluster series. */
    const char *sets[] = {"admin.enable=yes", NULL, NULL};
    char admin[64];
    c.admin_port = test_free_port("127.0.0.1");
    snprintf(admin, sizeof(admin), "admin.listen=127.0.0.1:%d", c.admin_port);
    sets[1] = admin;
    ck_assert_int_eq(db_test_start_sample(&c.proc, &db, sets), 0);
    health = healthz(&c);
    ck_assert_msg(strstr(health, " 200 ") && strstr(health, "\r\n\r\nok\n") &&
                      !strstr(health, "redis"),
                  "%s", health);
    free(health);
    ck_assert_double_eq(metric(&c, "chatd_cluster_redis_up"), -1);
    test_client_close(alice);
    chatd_proc_cleanup(&a.proc);
    chatd_proc_cleanup(&b.proc);
    chatd_proc_cleanup(&c.proc);
}
END_TEST

START_TEST(the_redis_password_file_is_used_and_checked)
{
    snprintf(redis.password, sizeof(redis.password), "a-redis-password");
    start_redis();
    char dir[PATH_MAX], file[PATH_MAX + 32], set[sizeof(file) + 64];
    ck_assert_int_eq(chatd_tmpdir_make(dir, sizeof(dir)), 0);
    ck_assert_int_eq(
        chatd_file_write(dir, "redis.password", "a-redis-password\n", file, sizeof(file)), 0);
    ck_assert_int_eq(chmod(file, 0600), 0);
    snprintf(set, sizeof(set), "cluster.redis_password_file=%s", file);
    struct node a;
    start_node(&a, "a", set);
    wait_metric(&a, "chatd_cluster_redis_up", 1);
    chatd_proc_cleanup(&a.proc);

    /* Readable by others: refused at start, like [admin] token_file. */
    ck_assert_int_eq(chmod(file, 0644), 0);
    char conf[PATH_MAX + 32], text[sizeof(redis.socket) + sizeof(file) + 256];
    snprintf(text, sizeof(text),
             "[server]\nlisten = 127.0.0.1:%d\n[cluster]\nenable = yes\nredis = unix:%s\n"
             "redis_password_file = %s\n",
             test_free_port("127.0.0.1"), redis.socket, file);
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
