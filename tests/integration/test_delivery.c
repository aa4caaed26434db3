/* test_delivery.c - black-box tests of the host's delivery facility (deliver(), the
 * inbox and the drain after login) through the fixture plugin `deliverer`, which logs
 * sessions in (it is the authenticator) and calls deliver() for its `send` command.
 * Each test starts chatd on a fresh database of the test MariaDB.
 *
 * Ordering without timing: a push caused by a request is queued to its recipients
 * before the sender gets its reply, and live pushes to a user whose stored messages are
 * being sent wait behind them. So after the expected lines, a live "end" marker sent to
 * the user must be the very next line: nothing else (no repeat, nothing left over) came
 * before it. */
#include "chatd_proc.h"
#include "client.h"
#include "../db/db_test_env.h"
#include "db.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct config_database cfg;
static struct chatd_proc srv;
static struct test_client *sender; /* an anonymous session that sends */
static int admin_port;

static void launch(void)
{
    char extra[2048];
    admin_port = test_free_port("127.0.0.1");
    snprintf(extra, sizeof(extra),
             "authenticator = deliverer\n"
             "[database]\nenable = yes\nsocket = %s\nuser = %s\nname = %s\nworkers = 4\n"
             "[admin]\nenable = yes\nlisten = 127.0.0.1:%d\n",
             cfg.socket, cfg.user, cfg.name, admin_port);
    struct chatd_proc_options opts = {
        .enable = "ping, deliverer", .plugin_dir = CHATD_FIXTURE_DIR, .extra_conf = extra};
    ck_assert_msg(chatd_proc_start(&srv, &opts) == 0, "chatd did not start");
    sender = test_client_connect(srv.host, srv.port, 0);
    ck_assert(sender != NULL);
}

static void start(void)
{
    db_test_config(&cfg);
    launch();
}

static void stop_server(void)
{
    test_client_close(sender);
    sender = NULL;
    int rc = chatd_proc_stop(&srv, CHATD_PROC_STOP_TIMEOUT_MS);
    chatd_proc_cleanup(&srv);
    ck_assert_msg(rc == 0, "chatd exited with %d after SIGTERM, want 0", rc);
}

static void stop(void)
{
    stop_server();
    db_test_cleanup(&cfg);
}

static struct test_client *connect_rcvbuf(int rcvbuf)
{
    struct test_client *c = test_client_connect(srv.host, srv.port, rcvbuf);
    ck_assert_msg(c != NULL, "cannot connect to chatd");
    return c;
}

static json_t *read_msg(struct test_client *c)
{
    json_t *msg = test_client_read_json(c, 15000);
    ck_assert_msg(msg != NULL, "no line from chatd");
    return msg;
}

static const char *str(const json_t *msg, const char *key)
{
    const char *s = json_string_value(json_object_get(msg, key));
    return s ? s : "";
}

static void send_json(struct test_client *c, json_t *msg)
{
    ck_assert_msg(test_client_send_json(c, msg) == 0, "send failed: %s", strerror(errno));
    json_decref(msg);
}

/* Log c in as user (the reply is not read). */
static void login_request(struct test_client *c, const char *user, int delay_ms)
{
    send_json(c, json_pack("{sssssi}", "cmd", "login", "user", user, "delay_ms", delay_ms));
}

static void expect_login_reply(struct test_client *c)
{
    json_t *r = read_msg(c);
    ck_assert_str_eq(str(r, "cmd"), "login_reply");
    ck_assert_str_eq(str(r, "result"), "success");
    json_decref(r);
}

static struct test_client *login(const char *user, int rcvbuf)
{
    struct test_client *c = connect_rcvbuf(rcvbuf);
    login_request(c, user, 0);
    expect_login_reply(c);
    return c;
}

/* Send text to one user from the sender; the reply's result, online and stored. */
struct sent {
    char result[32];
    long long online, stored;
};

static struct sent send_to(const char *to, const char *text, int store, int max_stored)
{
    send_json(sender, json_pack("{sss[s]sssbsi}", "cmd", "send", "to", to, "text", text, "store",
                                store, "max_stored", max_stored));
    json_t *r = read_msg(sender);
    ck_assert_str_eq(str(r, "cmd"), "send_reply");
    struct sent s;
    snprintf(s.result, sizeof(s.result), "%s", str(r, "result"));
    s.online = json_integer_value(json_object_get(r, "online"));
    s.stored = json_integer_value(json_object_get(r, "stored"));
    json_decref(r);
    return s;
}

static void store_for(const char *to, const char *text)
{
    struct sent s = send_to(to, text, 1, 0);
    ck_assert_str_eq(s.result, "success");
    ck_assert_int_eq(s.stored, 1);
    ck_assert_int_eq(s.online, 0);
}

/* The next line must be recv of `text`, offline (1), live (0) or either (-1). */
static void expect_recv(struct test_client *c, const char *text, int offline)
{
    json_t *m = read_msg(c);
    ck_assert_str_eq(str(m, "cmd"), "recv");
    ck_assert_str_eq(str(m, "text"), text);
    if (offline >= 0)
        ck_assert_int_eq(json_is_true(json_object_get(m, "offline")), offline);
    ck_assert_ptr_null(json_object_get(m, "id"));
    json_decref(m);
}

/* Nothing more for `user` on c: a live marker is the next line. */
static void expect_end(struct test_client *c, const char *user)
{
    struct sent s = send_to(user, "end", 0, 0);
    ck_assert_int_eq(s.online, 1);
    expect_recv(c, "end", 0);
}

/* A text of about `size` bytes that says which message it is. */
static char *big_text(const char *prefix, int i, size_t size)
{
    char *t = malloc(size + 1);
    ck_assert(t != NULL);
    int n = snprintf(t, size + 1, "%s%d:", prefix, i);
    memset(t + n, 'x', size - (size_t)n);
    t[size] = '\0';
    return t;
}

/* The index in a text made by big_text (or "<prefix><i>"). */
static int text_index(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(text, prefix, n) == 0 ? atoi(text + n) : -1;
}

/* Store "<prefix>0" .. "<prefix><n-1>" for user; or expect them, stored, on c. */
static void numbered(struct test_client *c, const char *user, const char *prefix, int n)
{
    for (int i = 0; i < n; i++) {
        char text[32];
        snprintf(text, sizeof(text), "%s%d", prefix, i);
        if (c)
            expect_recv(c, text, 1);
        else
            store_for(user, text);
    }
}

START_TEST(stored_messages_come_after_login_reply_oldest_first)
{
    start();
    numbered(NULL, "bob", "m", 3);
    struct test_client *bob = login("bob", 0);
    numbered(bob, "bob", "m", 3);
    expect_end(bob, "bob");
    char *metrics = test_http_get(admin_port, "/metrics");
    ck_assert_ptr_nonnull(metrics);
    ck_assert_ptr_nonnull(strstr(metrics, "chatd_post_timeline_rows_total 3\n"));
    ck_assert_ptr_nonnull(strstr(metrics, "chatd_delivery_drained_total 3\n"));
    free(metrics);
    test_client_close(bob);
    stop();
}
END_TEST

START_TEST(nothing_comes_before_the_login_reply)
{
    start();
    store_for("bob", "s0");
    store_for("bob", "s1");
    struct test_client *bob = connect_rcvbuf(0);
    /* The reply comes 400 ms after the session is bound; a message sent meanwhile
     * waits for it and for the stored ones. */
    login_request(bob, "bob", 400);
    ck_assert_int_eq(test_client_wait_peer_read(bob, 5000), 0);
    chatd_sleep_ms(50);
    struct sent s = send_to("bob", "live", 1, 0);
    ck_assert_int_eq(s.online + s.stored, 1);
    expect_login_reply(bob);
    expect_recv(bob, "s0", 1);
    expect_recv(bob, "s1", 1);
    expect_recv(bob, "live", -1);
    expect_end(bob, "bob");
    test_client_close(bob);
    stop();
}
END_TEST

START_TEST(online_users_get_pushes_at_once)
{
    start();
    struct test_client *bob = login("bob", 0);
    struct sent s = send_to("bob", "hello", 0, 0);
    ck_assert_str_eq(s.result, "success");
    ck_assert_int_eq(s.online, 1);
    ck_assert_int_eq(s.stored, 0);
    expect_recv(bob, "hello", 0);
    /* Without store, nobody online: nothing happens. */
    s = send_to("carol", "lost", 0, 0);
    ck_assert_int_eq(s.online, 0);
    ck_assert_int_eq(s.stored, 0);
    /* Several users at once: one online, one stored. */
    send_json(sender, json_pack("{sss[ss]sssb}", "cmd", "send", "to", "bob", "carol", "text",
                                "both", "store", 1));
    json_t *r = read_msg(sender);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "online")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "stored")), 1);
    json_decref(r);
    expect_recv(bob, "both", 0);
    struct test_client *carol = login("carol", 0);
    expect_recv(carol, "both", 1);
    expect_end(carol, "carol");
    /* A name the inbox cannot keep is refused before anything is sent. */
    s = send_to("this name is far too long for the inbox, sorry", "x", 1, 0);
    ck_assert_str_eq(s.result, "refused");
    test_client_close(carol);
    test_client_close(bob);
    stop();
}
END_TEST

/* Stores n big messages for bob, then logs bob in on a connection with a small receive
 * buffer, so the drain waits for the network while the test sends live messages. */
static struct test_client *backlog_and_login(int n)
{
    for (int i = 0; i < n; i++) {
        char *t = big_text("s", i, 4096);
        store_for("bob", t);
        free(t);
    }
    return login("bob", 4096);
}

/* Read bob's lines until the "end" marker: stored s0..s(n-1), then live l0..l(m-1),
 * each once and in order. */
static void expect_stream(struct test_client *bob, int n, int m)
{
    for (int i = 0; i < n; i++) {
        json_t *msg = read_msg(bob);
        ck_assert_int_eq(text_index(str(msg, "text"), "s"), i);
        ck_assert(json_is_true(json_object_get(msg, "offline")));
        json_decref(msg);
    }
    for (int i = 0; i < m; i++) {
        json_t *msg = read_msg(bob);
        ck_assert_msg(text_index(str(msg, "text"), "l") == i, "want l%d, got %.40s", i,
                      str(msg, "text"));
        json_decref(msg);
    }
    expect_end(bob, "bob");
}

START_TEST(live_messages_wait_behind_a_draining_backlog)
{
    start();
    struct test_client *bob = backlog_and_login(600);
    for (int i = 0; i < 50; i++) {
        char text[16];
        snprintf(text, sizeof(text), "l%d", i);
        struct sent s = send_to("bob", text, 1, 0);
        ck_assert_int_eq(s.online, 1);
    }
    expect_stream(bob, 600, 50);
    test_client_close(bob);
    stop();
}
END_TEST

START_TEST(a_full_held_list_moves_to_the_inbox_in_order)
{
    start();
    for (int i = 0; i < 10; i++) {
        char *t = big_text("s", i, 100);
        store_for("bob", t);
        free(t);
    }
    /* Bound 10 s before its reply: everything sent meanwhile waits, 1000 at most in
     * memory; then the held ones and the rest go to the inbox behind s0..s9. */
    struct test_client *bob = connect_rcvbuf(0);
    login_request(bob, "bob", 10000);
    ck_assert_int_eq(test_client_wait_peer_read(bob, 5000), 0);
    chatd_sleep_ms(50);
    long long stored = 0;
    for (int i = 0; i < 1100; i++) {
        char text[16];
        snprintf(text, sizeof(text), "l%d", i);
        struct sent s = send_to("bob", text, 1, 0);
        ck_assert_int_eq(s.online + s.stored, 1);
        stored += s.stored;
    }
    ck_assert_int_gt(stored, 0);
    expect_login_reply(bob);
    expect_stream(bob, 10, 1100);
    char *metrics = test_http_get(admin_port, "/metrics");
    ck_assert_ptr_nonnull(metrics);
    ck_assert_ptr_null(strstr(metrics, "chatd_delivery_held_overflow_total 0\n"));
    ck_assert_ptr_nonnull(strstr(metrics, "chatd_delivery_held 0\n"));
    free(metrics);
    test_client_close(bob);
    stop();
}
END_TEST

/* Read stored lines on c until the server closes it; they must continue from *next in
 * order. Returns how many came. */
static int read_until_closed(struct test_client *c, int *next)
{
    int n = 0;
    char line[TEST_CLIENT_BUF_SIZE];
    for (;;) {
        ssize_t len = test_client_read_line(c, line, sizeof(line), 15000);
        if (len == TEST_CLIENT_EOF)
            return n;
        ck_assert_int_gt(len, 0);
        json_t *msg = json_loads(line, 0, NULL);
        ck_assert_ptr_nonnull(msg);
        ck_assert_int_eq(text_index(str(msg, "text"), "s"), *next);
        json_decref(msg);
        (*next)++;
        n++;
    }
}

START_TEST(a_disconnect_mid_drain_loses_nothing)
{
    start();
    struct test_client *bob = backlog_and_login(600);
    int next = 0;
    for (; next < 200; next++) {
        json_t *msg = read_msg(bob);
        ck_assert_int_eq(text_index(str(msg, "text"), "s"), next);
        json_decref(msg);
    }
    /* Leave mid-drain, reading everything chatd wrote until it closes. */
    ck_assert_int_eq(test_client_shutdown_write(bob), 0);
    read_until_closed(bob, &next);
    test_client_close(bob);
    ck_assert_int_lt(next, 600);
    chatd_sleep_ms(300); /* let chatd see the close: bob is offline again */
    bob = login("bob", 0);
    json_t *msg = read_msg(bob);
    int first = text_index(str(msg, "text"), "s");
    json_decref(msg);
    /* At least once: nothing is skipped (a batch written but not yet acknowledged comes
     * again), and what was acknowledged is not sent again. */
    ck_assert_int_le(first, next);
    ck_assert_int_gt(first, 0);
    for (int i = first + 1; i < 600; i++) {
        msg = read_msg(bob);
        ck_assert_int_eq(text_index(str(msg, "text"), "s"), i);
        json_decref(msg);
    }
    expect_end(bob, "bob");
    test_client_close(bob);
    stop();
}
END_TEST

START_TEST(max_stored_refuses_with_overflow)
{
    start();
    for (int i = 0; i < 3; i++) {
        struct sent s = send_to("bob", "fits", 1, 3);
        ck_assert_str_eq(s.result, "success");
        ck_assert_int_eq(s.stored, 1);
    }
    struct sent s = send_to("bob", "too many", 1, 3);
    ck_assert_str_eq(s.result, "overflow");
    ck_assert_int_eq(s.stored, 0);
    struct test_client *bob = login("bob", 0);
    for (int i = 0; i < 3; i++)
        expect_recv(bob, "fits", 1);
    expect_end(bob, "bob");
    test_client_close(bob);
    /* Delivered messages left the inbox: there is room again. */
    chatd_sleep_ms(300);
    s = send_to("bob", "fits again", 1, 3);
    ck_assert_str_eq(s.result, "success");
    stop();
}
END_TEST

START_TEST(stored_messages_survive_a_restart)
{
    start();
    numbered(NULL, "bob", "r", 5);
    stop_server();
    launch();
    struct test_client *bob = login("bob", 0);
    numbered(bob, "bob", "r", 5);
    expect_end(bob, "bob");
    test_client_close(bob);
    stop();
}
END_TEST

START_TEST(a_second_session_does_not_get_what_the_first_got)
{
    start();
    store_for("bob", "once");
    struct test_client *a = login("bob", 0);
    expect_recv(a, "once", 1);
    expect_end(a, "bob");
    struct test_client *b = login("bob", 0);
    /* The marker reaches both sessions, and is the first thing b gets. */
    struct sent s = send_to("bob", "end", 0, 0);
    ck_assert_int_eq(s.online, 1);
    expect_recv(a, "end", 0);
    expect_recv(b, "end", 0);
    /* Logging out one keeps the user online. */
    send_json(a, json_pack("{ss}", "cmd", "logout"));
    json_t *r = read_msg(a);
    ck_assert_str_eq(str(r, "result"), "success");
    json_decref(r);
    s = send_to("bob", "to b", 1, 0);
    ck_assert_int_eq(s.online, 1);
    expect_recv(b, "to b", 0);
    test_client_close(a);
    test_client_close(b);
    stop();
}
END_TEST

/* The chat plugin's tables as its migrations made them (plugins/chat/chat.c). */
static const char *const old_schema[] = {
    /* The host's record of the chat plugin at its last version. */
    "CREATE TABLE chatd_schema (plugin VARCHAR(64) NOT NULL PRIMARY KEY,"
    " version INT UNSIGNED NOT NULL, applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    "INSERT INTO chatd_schema (plugin, version) VALUES ('chat', 7)",
    "CREATE TABLE users (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " name VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
    " password_hash VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
    " created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),"
    " UNIQUE KEY users_name (name)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    "CREATE TABLE chat_groups (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " name VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL, owner_id BIGINT NOT NULL,"
    " created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),"
    " UNIQUE KEY chat_groups_name (name),"
    " CONSTRAINT chat_groups_owner FOREIGN KEY (owner_id) REFERENCES users (id))"
    " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    "CREATE TABLE memberships (group_id BIGINT NOT NULL, user_id BIGINT NOT NULL,"
    " read_pos BIGINT NOT NULL DEFAULT 0,"
    " joined_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),"
    " PRIMARY KEY (group_id, user_id), KEY memberships_user (user_id))"
    " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    "CREATE TABLE private_messages (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " recipient_id BIGINT NOT NULL, sender_id BIGINT NOT NULL,"
    " msg_id VARCHAR(40) CHARACTER SET ascii COLLATE ascii_bin NOT NULL, text TEXT NOT NULL,"
    " ts BIGINT NOT NULL, KEY private_messages_recipient (recipient_id, id))"
    " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    "CREATE TABLE group_messages (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " group_id BIGINT NOT NULL, sender_id BIGINT NOT NULL, text TEXT NOT NULL,"
    " ts BIGINT NOT NULL, KEY group_messages_group (group_id, id))"
    " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    "INSERT INTO users (id, name, password_hash) VALUES (1, 'alice', 'x'), (2, 'bob', 'x'),"
    " (3, 'carol', 'x')",
    "INSERT INTO chat_groups (id, name, owner_id) VALUES (1, 'g1', 1)",
    "INSERT INTO memberships (group_id, user_id, read_pos) VALUES (1, 1, 0), (1, 2, 0),"
    " (1, 3, 2)",
    "INSERT INTO private_messages (recipient_id, sender_id, msg_id, text, ts) VALUES"
    " (2, 1, 'b-1', 'private \"one\" \xc3\xbc', 1000), (2, 3, 'b-2', 'private two', 3000)",
    "INSERT INTO group_messages (id, group_id, sender_id, text, ts) VALUES"
    " (1, 1, 1, 'group one', 2000), (2, 1, 1, 'group two', 4000), (3, 1, 1, 'group three', 5000)",
};

static void expect_old(struct test_client *c, const char *cmd, const char *from, const char *text,
                       long long ts, const char *msg_id)
{
    json_t *m = read_msg(c);
    ck_assert_str_eq(str(m, "cmd"), cmd);
    ck_assert_str_eq(str(m, "user_from"), from);
    ck_assert_str_eq(str(m, "text"), text);
    ck_assert_int_eq(json_integer_value(json_object_get(m, "ts")), ts);
    ck_assert_str_eq(str(m, "msg_id"), msg_id);
    ck_assert(json_is_true(json_object_get(m, "offline")));
    if (strcmp(cmd, "group_chat_recv") == 0)
        ck_assert_str_eq(str(m, "group"), "g1");
    json_decref(m);
}

START_TEST(the_chat_plugins_undelivered_messages_are_taken_over_once)
{
    db_test_config(&cfg);
    struct chatd_db db = {0};
    char err[512];
    ck_assert_msg(db_open(&db, &cfg, "", err, sizeof(err)) == 0, "%s", err);
    for (size_t i = 0; i < sizeof(old_schema) / sizeof(old_schema[0]); i++)
        ck_assert_msg(db_simple(&db, old_schema[i]) == 0, "%s", db.last_error);
    db_close(&db);
    launch();
    struct test_client *bob = login("bob", 0);
    expect_old(bob, "private_chat_recv", "alice", "private \"one\" \xc3\xbc", 1000, "b-1");
    expect_old(bob, "group_chat_recv", "alice", "group one", 2000, "g1");
    expect_old(bob, "private_chat_recv", "carol", "private two", 3000, "b-2");
    expect_old(bob, "group_chat_recv", "alice", "group two", 4000, "g2");
    expect_old(bob, "group_chat_recv", "alice", "group three", 5000, "g3");
    expect_end(bob, "bob");
    struct test_client *carol = login("carol", 0);
    expect_old(carol, "group_chat_recv", "alice", "group three", 5000, "g3");
    expect_end(carol, "carol");
    struct test_client *alice = login("alice", 0);
    expect_end(alice, "alice");
    test_client_close(alice);
    test_client_close(carol);
    test_client_close(bob);
    /* Taken over once: a restart (the old tables unchanged) brings nothing again. */
    stop_server();
    launch();
    bob = login("bob", 0);
    expect_end(bob, "bob");
    test_client_close(bob);
    stop();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("delivery");
    TCase *tc = tcase_create("delivery");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, stored_messages_come_after_login_reply_oldest_first);
    tcase_add_test(tc, nothing_comes_before_the_login_reply);
    tcase_add_test(tc, online_users_get_pushes_at_once);
    tcase_add_test(tc, live_messages_wait_behind_a_draining_backlog);
    tcase_add_test(tc, a_full_held_list_moves_to_the_inbox_in_order);
    tcase_add_test(tc, a_disconnect_mid_drain_loses_nothing);
    tcase_add_test(tc, max_stored_refuses_with_overflow);
    tcase_add_test(tc, stored_messages_survive_a_restart);
    tcase_add_test(tc, a_second_session_does_not_get_what_the_first_got);
    tcase_add_test(tc, the_chat_plugins_undelivered_messages_are_taken_over_once);
    suite_add_tcase(s, tc);
    return chatd_proc_run_suite(s);
}
