/* test_delivery.c - black-box tests of the host's message stream (deliver() and post(),
 * the timeline sent after login, devices, `ack`, since, receipts, the prune) through the
 * fixture plugin `deliverer`, which logs sessions in (it is the authenticator; the host
 * reads the login's device, ack and since), calls deliver() for its `send` command,
 * post() for `post` (a private message) and read_mark() for `read`. Each test starts
 * chatd on a fresh database of the test MariaDB.
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
static const char *more_conf = ""; /* extra config lines (sections) for the next launch */

static void launch(void)
{
    char extra[2048];
    admin_port = test_free_port("127.0.0.1");
    snprintf(extra, sizeof(extra),
             "authenticator = deliverer\n"
             "[database]\nenable = yes\nsocket = %s\nuser = %s\nname = %s\nworkers = 4\n"
             "[admin]\nenable = yes\nlisten = 127.0.0.1:%d\n%s",
             cfg.socket, cfg.user, cfg.name, admin_port, more_conf);
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
    more_conf = "";
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
    ck_assert_ptr_nonnull(strstr(metrics, "chatd_stream_drains_total 1\n"));
    ck_assert_ptr_nonnull(strstr(metrics, "chatd_stream_drained_total 3\n"));
    ck_assert_ptr_nonnull(strstr(metrics, "chatd_stream_held 0\n"));
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

/* A message pushed live to one user and then read from the timeline for another is
 * "offline":true for the second: the line formatted for the live push is not reused for
 * a drained copy that happens to get the freed push's address (it did, now and then). */
START_TEST(a_drained_copy_of_a_live_push_is_offline)
{
    start();
    struct test_client *bob = login("bob", 0);
    for (int i = 0; i < 40; i++) {
        char carol[16], text[16];
        snprintf(carol, sizeof(carol), "carol%d", i);
        snprintf(text, sizeof(text), "both%d", i);
        send_json(sender, json_pack("{sss[ss]sssb}", "cmd", "send", "to", "bob", carol, "text",
                                    text, "store", 1));
        json_t *r = read_msg(sender);
        ck_assert_int_eq(json_integer_value(json_object_get(r, "stored")), 1);
        json_decref(r);
        expect_recv(bob, text, 0);
        struct test_client *c = login(carol, 0);
        expect_recv(c, text, 1);
        test_client_close(c);
    }
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

START_TEST(a_full_held_list_is_read_again_from_the_timeline_in_order)
{
    start();
    for (int i = 0; i < 10; i++) {
        char *t = big_text("s", i, 100);
        store_for("bob", t);
        free(t);
    }
    /* Bound 10 s before its reply: everything sent meanwhile waits, 1000 at most in
     * memory; past that the held messages are dropped and read from the timeline
     * instead, behind s0..s9, in order. */
    struct test_client *bob = connect_rcvbuf(0);
    login_request(bob, "bob", 10000);
    ck_assert_int_eq(test_client_wait_peer_read(bob, 5000), 0);
    chatd_sleep_ms(50);
    for (int i = 0; i < 1100; i++) {
        char text[16];
        snprintf(text, sizeof(text), "l%d", i);
        struct sent s = send_to("bob", text, 1, 0);
        ck_assert_str_eq(s.result, "success");
    }
    expect_login_reply(bob);
    expect_stream(bob, 10, 1100);
    char *metrics = test_http_get(admin_port, "/metrics");
    ck_assert_ptr_nonnull(metrics);
    ck_assert_ptr_null(strstr(metrics, "chatd_stream_held_dropped_total 0\n"));
    ck_assert_ptr_nonnull(strstr(metrics, "chatd_stream_held 0\n"));
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
    /* A version 1 session: at least once. Nothing is skipped (what was pushed and not
     * written comes again), and what was written before the last page is not sent
     * again. */
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
    /* Below bob's position after his logout: the rows are gone, there is room again. */
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

/* ---- devices, ack, since, receipts (delivery version 2) ---------------------------- */

/* Log in as user with a login body's extra members (device, ack, since); the reply's
 * result. */
static struct test_client *login_with(const char *user, json_t *extra, const char *want)
{
    struct test_client *c = connect_rcvbuf(0);
    json_t *req = json_pack("{ssss}", "cmd", "login", "user", user);
    json_object_update(req, extra);
    json_decref(extra);
    send_json(c, req);
    json_t *r = read_msg(c);
    ck_assert_str_eq(str(r, "cmd"), "login_reply");
    ck_assert_str_eq(str(r, "result"), want);
    json_decref(r);
    return c;
}

/* A session of user's device `device` that acknowledges; since < 0: none. */
static struct test_client *login_device(const char *user, const char *device, long long since)
{
    json_t *extra = json_pack("{sssb}", "device", device, "ack", 1);
    if (since >= 0)
        json_object_set_new(extra, "since", json_integer(since));
    return login_with(user, extra, "success");
}

/* Post a private message from `from` to `to`; its seq. */
static long long post(const char *from, const char *to, const char *text)
{
    send_json(sender, json_pack("{ssssssss}", "cmd", "post", "from", from, "to", to, "text", text));
    json_t *r = read_msg(sender);
    ck_assert_str_eq(str(r, "cmd"), "post_reply");
    ck_assert_str_eq(str(r, "result"), "success");
    long long seq = json_integer_value(json_object_get(r, "seq"));
    ck_assert_int_gt(seq, 0);
    json_decref(r);
    return seq;
}

/* The next line is recv of `text` with `seq` (offline as in expect_recv). */
static void expect_seq(struct test_client *c, const char *text, long long seq, int offline)
{
    json_t *m = read_msg(c);
    ck_assert_str_eq(str(m, "cmd"), "recv");
    ck_assert_str_eq(str(m, "text"), text);
    ck_assert_int_eq(json_integer_value(json_object_get(m, "seq")), seq);
    char id[24];
    snprintf(id, sizeof(id), "%lld", seq);
    ck_assert_str_eq(str(m, "msg_id"), id);
    ck_assert_int_gt(json_integer_value(json_object_get(m, "ts")), 0);
    if (offline >= 0)
        ck_assert_int_eq(json_is_true(json_object_get(m, "offline")), offline);
    json_decref(m);
}

/* Nothing more for `user` on either of two sessions of theirs. */
static void expect_end2(struct test_client *a, struct test_client *b, const char *user)
{
    struct sent s = send_to(user, "end", 0, 0);
    ck_assert_int_eq(s.online, 1);
    expect_recv(a, "end", 0);
    expect_recv(b, "end", 0);
}

static void ack(struct test_client *c, long long seq)
{
    send_json(c, json_pack("{sssI}", "cmd", "ack", "seq", (json_int_t)seq));
}

/* A request c sends is answered (with `result`): everything c sent before was taken. */
static void expect_reply(struct test_client *c, json_t *req, const char *cmd, const char *result)
{
    send_json(c, req);
    json_t *r = read_msg(c);
    ck_assert_str_eq(str(r, "cmd"), cmd);
    ck_assert_str_eq(str(r, "result"), result);
    json_decref(r);
}

static void sync_with(struct test_client *c)
{
    expect_reply(c, json_pack("{ss}", "cmd", "ping"), "ping_reply", "success");
}

/* Close c and give chatd time to see it (its user may go offline). */
static void leave(struct test_client *c)
{
    test_client_close(c);
    chatd_sleep_ms(300);
}

static void expect_receipt(struct test_client *c, long long seq, const char *user,
                           const char *status)
{
    json_t *m = read_msg(c);
    ck_assert_str_eq(str(m, "cmd"), "receipt");
    char id[24];
    snprintf(id, sizeof(id), "%lld", seq);
    ck_assert_str_eq(str(m, "msg_id"), id);
    ck_assert_str_eq(str(m, "user"), user);
    ck_assert_str_eq(str(m, "status"), status);
    json_decref(m);
}

/* One number from the test database. */
static long long db_number(const char *sql)
{
    struct chatd_db db = {0};
    char err[512];
    ck_assert_msg(db_open(&db, &cfg, "", err, sizeof(err)) == 0, "%s", err);
    int64_t n = -1;
    ck_assert_msg(db_query(&db, sql, NULL, 0, db_read_int64, &n) == 0, "%s", db.last_error);
    db_close(&db);
    return n;
}

static void db_run(const char *sql)
{
    struct chatd_db db = {0};
    char err[512];
    ck_assert_msg(db_open(&db, &cfg, "", err, sizeof(err)) == 0, "%s", err);
    ck_assert_msg(db_simple(&db, sql) == 0, "%s", db.last_error);
    db_close(&db);
}

START_TEST(two_devices_one_offline_both_get_every_message_once_in_order)
{
    start();
    struct test_client *phone = login_device("bob", "phone", -1);
    struct test_client *laptop = login_device("bob", "laptop", -1);
    sync_with(phone);
    leave(phone);
    long long seq[5];
    char text[5][8];
    for (int i = 0; i < 5; i++) {
        snprintf(text[i], sizeof(text[i]), "m%d", i);
        seq[i] = post("alice", "bob", text[i]);
        ck_assert(i == 0 || seq[i] > seq[i - 1]);
    }
    for (int i = 0; i < 5; i++)
        expect_seq(laptop, text[i], seq[i], 0);
    ack(laptop, seq[4]);
    expect_end(laptop, "bob");
    leave(laptop);
    /* The phone was away for all five: it gets them now, once, in order, with the
     * same seqs; the laptop acknowledged them and gets nothing again. */
    phone = login_device("bob", "phone", -1);
    for (int i = 0; i < 5; i++)
        expect_seq(phone, text[i], seq[i], 1);
    expect_end(phone, "bob");
    laptop = login_device("bob", "laptop", -1);
    expect_end2(phone, laptop, "bob");
    /* A message while both are online reaches both, once. */
    long long last = post("alice", "bob", "both");
    expect_seq(phone, "both", last, 0);
    expect_seq(laptop, "both", last, 0);
    expect_end2(phone, laptop, "bob");
    test_client_close(phone);
    test_client_close(laptop);
    stop();
}
END_TEST

START_TEST(a_device_that_acknowledged_before_leaving_gets_nothing_twice)
{
    start();
    long long seq[3];
    for (int i = 0; i < 3; i++)
        seq[i] = post("alice", "bob", "first");
    struct test_client *bob = login_device("bob", "phone", -1);
    for (int i = 0; i < 3; i++)
        expect_seq(bob, "first", seq[i], 1);
    /* Acknowledge and leave at once, without waiting for anything. */
    ack(bob, seq[2]);
    test_client_close(bob);
    chatd_sleep_ms(300);
    bob = login_device("bob", "phone", -1);
    expect_end(bob, "bob");
    /* Two more, read but not acknowledged: they come again (never lost). */
    sync_with(bob);
    leave(bob);
    long long a = post("alice", "bob", "second");
    long long b = post("alice", "bob", "third");
    bob = login_device("bob", "phone", -1);
    expect_seq(bob, "second", a, 1);
    expect_seq(bob, "third", b, 1);
    test_client_close(bob);
    chatd_sleep_ms(300);
    bob = login_device("bob", "phone", -1);
    expect_seq(bob, "second", a, 1);
    expect_seq(bob, "third", b, 1);
    ack(bob, b);
    expect_end(bob, "bob");
    leave(bob);
    /* Positions survive a restart. */
    stop_server();
    launch();
    bob = login_device("bob", "phone", -1);
    expect_end(bob, "bob");
    test_client_close(bob);
    stop();
}
END_TEST

/* A device's first login between a message's acceptance (no row: its user was online
 * on a version 1 session only) and its commit: the device is pushed the message, and
 * if it leaves without acknowledging, the message comes again at its next login. */
START_TEST(a_device_new_during_a_commit_gets_the_message_again)
{
    start();
    struct test_client *v1 = login("bob", 0);
    expect_end(v1, "bob");
    struct chatd_db db = {0};
    char err[512];
    ck_assert_msg(db_open(&db, &cfg, "", err, sizeof(err)) == 0, "%s", err);
    ck_assert_msg(db_simple(&db, "LOCK TABLES chatd_messages WRITE") == 0, "%s", db.last_error);
    send_json(sender,
              json_pack("{ssssssss}", "cmd", "post", "from", "alice", "to", "bob", "text", "m"));
    chatd_sleep_ms(300); /* accepted; its commit waits for the lock */
    struct test_client *phone = login_device("bob", "phone", -1);
    ck_assert_msg(db_simple(&db, "UNLOCK TABLES") == 0, "%s", db.last_error);
    db_close(&db);
    json_t *r = read_msg(sender);
    ck_assert_str_eq(str(r, "result"), "success");
    long long seq = json_integer_value(json_object_get(r, "seq"));
    json_decref(r);
    expect_seq(v1, "m", seq, 0);
    expect_seq(phone, "m", seq, -1);
    leave(phone);
    phone = login_device("bob", "phone", -1);
    expect_seq(phone, "m", seq, 1);
    expect_end2(v1, phone, "bob");
    test_client_close(phone);
    test_client_close(v1);
    stop();
}
END_TEST

START_TEST(since_resumes_after_the_given_seq)
{
    start();
    long long seq[3];
    seq[0] = post("alice", "bob", "s0");
    seq[1] = post("alice", "bob", "s1");
    seq[2] = post("alice", "bob", "s2");
    struct test_client *bob = login_device("bob", "phone", seq[0]);
    expect_seq(bob, "s1", seq[1], 1);
    expect_seq(bob, "s2", seq[2], 1);
    expect_end(bob, "bob");
    /* Another device asks for everything it may still have. */
    struct test_client *tablet = login_device("bob", "tablet", 0);
    expect_seq(tablet, "s0", seq[0], 1);
    expect_seq(tablet, "s1", seq[1], 1);
    expect_seq(tablet, "s2", seq[2], 1);
    expect_end2(bob, tablet, "bob");
    test_client_close(tablet);
    test_client_close(bob);
    stop();
}
END_TEST

/* A since past the newest seq (a client's mistake, or a database restored from a
 * backup) counts as the newest: the messages that come later are not skipped, and an
 * ack cannot move the device past them. */
START_TEST(a_since_past_the_newest_seq_misses_nothing)
{
    start();
    long long s0 = post("alice", "bob", "s0");
    struct test_client *bob = login_device("bob", "phone", s0 + 1000);
    long long s1 = post("alice", "bob", "s1");
    expect_seq(bob, "s1", s1, 0);
    ack(bob, s0 + 1000);
    sync_with(bob);
    leave(bob);
    long long s2 = post("alice", "bob", "s2");
    bob = login_device("bob", "phone", -1);
    expect_seq(bob, "s2", s2, 1);
    expect_end(bob, "bob");
    test_client_close(bob);
    stop();
}
END_TEST

START_TEST(login_refuses_broken_device_ack_and_since)
{
    start();
    json_t *bad[] = {
        json_pack("{ss}", "device", ""),
        json_pack("{ss}", "device", "a b"),
        json_pack("{ss}", "device",
                  "x234567890123456789012345678901234567890123456789012345678901234"
                  "5"),
        json_pack("{si}", "device", 7),
        json_pack("{ss}", "ack", "yes"),
        json_pack("{si}", "since", 3),
        json_pack("{sbsi}", "ack", 0, "since", 3),
        json_pack("{sbsi}", "ack", 1, "since", -1),
        json_pack("{sbss}", "ack", 1, "since", "3"),
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct test_client *c = login_with("bob", bad[i], "bad_request");
        /* Bound to nothing: still anonymous. */
        expect_reply(c, json_pack("{sssI}", "cmd", "ack", "seq", (json_int_t)1), "ack_reply",
                     "not_logged_in");
        test_client_close(c);
    }
    struct test_client *ok = login_with("bob", json_pack("{sb}", "ack", 1), "success");
    test_client_close(ok);
    stop();
}
END_TEST

START_TEST(ack_answers_only_what_it_refuses)
{
    start();
    struct test_client *anon = connect_rcvbuf(0);
    expect_reply(anon, json_pack("{sssI}", "cmd", "ack", "seq", (json_int_t)1), "ack_reply",
                 "not_logged_in");
    test_client_close(anon);
    struct test_client *v1 = login("carol", 0);
    expect_reply(v1, json_pack("{sssI}", "cmd", "ack", "seq", (json_int_t)1), "ack_reply",
                 "bad_request");
    test_client_close(v1);
    long long first = post("alice", "bob", "one");
    struct test_client *bob = login_device("bob", "phone", -1);
    expect_seq(bob, "one", first, 1);
    json_t *bad[] = {
        json_pack("{ss}", "cmd", "ack"),
        json_pack("{ssss}", "cmd", "ack", "seq", "1"),
        json_pack("{sssI}", "cmd", "ack", "seq", (json_int_t)-1),
        json_pack("{sssf}", "cmd", "ack", "seq", 1.5),
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_reply(bob, bad[i], "ack_reply", "bad_request");
    /* Accepted: no reply; past what it was sent counts as all it was sent. */
    ack(bob, 1000000000000LL);
    sync_with(bob);
    leave(bob);
    long long second = post("alice", "bob", "two");
    bob = login_device("bob", "phone", -1);
    expect_seq(bob, "two", second, 1);
    expect_end(bob, "bob");
    test_client_close(bob);
    stop();
}
END_TEST

START_TEST(a_version_1_client_gets_exactly_what_arrived_while_it_was_away)
{
    start();
    struct test_client *bob = login("bob", 0);
    /* Committed while bob's session may still be reading the timeline: then it comes
     * from there, offline, once. */
    long long live = post("alice", "bob", "live");
    expect_seq(bob, "live", live, -1);
    leave(bob);
    long long a = post("alice", "bob", "away1");
    long long b = post("alice", "bob", "away2");
    bob = login("bob", 0);
    expect_seq(bob, "away1", a, 1);
    expect_seq(bob, "away2", b, 1);
    expect_end(bob, "bob");
    /* A second session while the first is online: nothing stored for it. */
    struct test_client *again = login("bob", 0);
    expect_end2(bob, again, "bob");
    test_client_close(again);
    test_client_close(bob);
    chatd_sleep_ms(300);
    bob = login("bob", 0);
    expect_end(bob, "bob");
    test_client_close(bob);
    stop();
}
END_TEST

START_TEST(receipts_come_once_per_message_and_status)
{
    start();
    struct test_client *alice = login("alice", 0);
    struct test_client *phone = login_device("bob", "phone", -1);
    struct test_client *laptop = login_device("bob", "laptop", -1);
    long long seq = post("alice", "bob", "hi");
    expect_seq(phone, "hi", seq, -1);
    expect_seq(laptop, "hi", seq, -1);
    ack(phone, seq);
    expect_receipt(alice, seq, "bob", "delivered");
    /* The second device, and the first again: no second receipt. */
    ack(laptop, seq);
    ack(phone, seq);
    sync_with(laptop);
    sync_with(phone);
    expect_end(alice, "alice");
    /* Read: once; a mark that does not move sends nothing. */
    expect_reply(phone,
                 json_pack("{sssssI}", "cmd", "read", "with", "alice", "msg_id", (json_int_t)seq),
                 "read_reply", "success");
    expect_receipt(alice, seq, "bob", "read");
    expect_reply(laptop,
                 json_pack("{sssssI}", "cmd", "read", "with", "alice", "msg_id", (json_int_t)seq),
                 "read_reply", "success");
    expect_end(alice, "alice");
    /* Not a private message from carol to bob. */
    expect_reply(phone,
                 json_pack("{sssssI}", "cmd", "read", "with", "carol", "msg_id", (json_int_t)seq),
                 "read_reply", "not_found");
    test_client_close(laptop);
    test_client_close(phone);
    test_client_close(alice);
    stop();
}
END_TEST

/* A session's ring of receipts owed grows as it is sent private messages (it starts
 * empty): 100 messages acknowledged at once earn 100 receipts, in order, once each. */
START_TEST(one_ack_for_many_messages_sends_a_receipt_for_each)
{
    start();
    struct test_client *alice = login("alice", 0);
    struct test_client *phone = login_device("bob", "phone", -1);
    long long seqs[100];
    for (int i = 0; i < 100; i++) {
        seqs[i] = post("alice", "bob", "many");
        expect_seq(phone, "many", seqs[i], -1);
    }
    ack(phone, seqs[99]);
    for (int i = 0; i < 100; i++)
        expect_receipt(alice, seqs[i], "bob", "delivered");
    ack(phone, seqs[99]);
    sync_with(phone);
    expect_end(alice, "alice");
    test_client_close(phone);
    test_client_close(alice);
    stop();
}
END_TEST

START_TEST(at_most_max_devices_are_kept_the_least_recently_seen_goes)
{
    more_conf = "[messages]\nmax_devices = 2\n";
    start();
    const char *devices[] = {"d1", "d2", "d3"};
    for (int i = 0; i < 3; i++) {
        struct test_client *c = login_device("bob", devices[i], -1);
        sync_with(c);
        leave(c);
    }
    chatd_sleep_ms(500);
    ck_assert_int_eq(db_number("SELECT COUNT(*) FROM chatd_devices WHERE user = 'bob' AND "
                               "device <> ''"),
                     2);
    ck_assert_int_eq(db_number("SELECT COUNT(*) FROM chatd_devices WHERE device = 'd1'"), 0);
    stop();
}
END_TEST

START_TEST(the_prune_forgets_old_devices_and_old_messages)
{
    more_conf = "[messages]\nretention_count = 2\n";
    start();
    struct test_client *bob = login_device("bob", "old", -1);
    sync_with(bob);
    leave(bob);
    long long seq[4];
    for (int i = 0; i < 4; i++)
        seq[i] = post("alice", "bob", "kept?");
    ck_assert_int_eq(db_number("SELECT COUNT(*) FROM chatd_devices WHERE device = 'old'"), 1);
    /* Seen long ago; the messages two days old (younger than retention_days, but
     * retention_count keeps the newest 2 of a conversation once they are a day old). */
    db_run("UPDATE chatd_devices SET seen_at = 1000 WHERE device = 'old'");
    db_run("UPDATE chatd_messages SET ts = (UNIX_TIMESTAMP() - 2 * 86400) * 1000");
    stop_server();
    launch(); /* the first prune runs a few seconds after start */
    long long devices = 1, messages = 0;
    for (int i = 0; i < 100 && (devices != 0 || messages != 2); i++) {
        chatd_sleep_ms(200);
        devices = db_number("SELECT COUNT(*) FROM chatd_devices WHERE device = 'old'");
        messages = db_number("SELECT COUNT(*) FROM chatd_messages");
    }
    ck_assert_int_eq(devices, 0);
    ck_assert_int_eq(messages, 2);
    ck_assert_int_eq(db_number("SELECT MIN(id) FROM chatd_messages"), seq[2]);
    /* Their timeline rows went with them. */
    long long rows = -1;
    for (int i = 0; i < 50 && rows != 2; i++) {
        chatd_sleep_ms(100);
        rows = db_number("SELECT COUNT(*) FROM chatd_timeline WHERE user = 'bob'");
    }
    ck_assert_int_eq(rows, 2);
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
    tcase_add_test(tc, a_drained_copy_of_a_live_push_is_offline);
    tcase_add_test(tc, live_messages_wait_behind_a_draining_backlog);
    tcase_add_test(tc, a_full_held_list_is_read_again_from_the_timeline_in_order);
    tcase_add_test(tc, a_disconnect_mid_drain_loses_nothing);
    tcase_add_test(tc, max_stored_refuses_with_overflow);
    tcase_add_test(tc, stored_messages_survive_a_restart);
    tcase_add_test(tc, a_second_session_does_not_get_what_the_first_got);
    tcase_add_test(tc, the_chat_plugins_undelivered_messages_are_taken_over_once);
    suite_add_tcase(s, tc);
    TCase *devices = tcase_create("devices");
    tcase_set_timeout(devices, 120);
    tcase_add_test(devices, two_devices_one_offline_both_get_every_message_once_in_order);
    tcase_add_test(devices, a_device_that_acknowledged_before_leaving_gets_nothing_twice);
    tcase_add_test(devices, since_resumes_after_the_given_seq);
    tcase_add_test(devices, a_device_new_during_a_commit_gets_the_message_again);
    tcase_add_test(devices, a_since_past_the_newest_seq_misses_nothing);
    tcase_add_test(devices, login_refuses_broken_device_ack_and_since);
    tcase_add_test(devices, ack_answers_only_what_it_refuses);
    tcase_add_test(devices, a_version_1_client_gets_exactly_what_arrived_while_it_was_away);
    tcase_add_test(devices, receipts_come_once_per_message_and_status);
    tcase_add_test(devices, one_ack_for_many_messages_sends_a_receipt_for_each);
    tcase_add_test(devices, at_most_max_devices_are_kept_the_least_recently_seen_goes);
    tcase_add_test(devices, the_prune_forgets_old_devices_and_old_messages);
    suite_add_tcase(s, devices);
    return chatd_proc_run_suite(s);
}
