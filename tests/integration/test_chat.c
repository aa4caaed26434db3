/* test_chat.c - black-box tests of the chat plugin against the wire contract: every
 * command and result word, the pushes, offline delivery (private and group), pipelining,
 * several devices, presence, user_from spoofing, hostile text and names, a restart, and
 * the text size limit. Each test starts its own chatd with the chat plugin on a fresh
 * database of the test MariaDB ($CHATD_TEST_DB_SOCKET) and talks to it over TCP.
 *
 * Ordering without timing: a push caused by a request is queued to the target's sessions
 * before the requester gets its reply, and a live push to a user whose stored messages
 * are being delivered is held until they are out. So a private message from a helper
 * user ("postman", nobody's friend, in no group) is a marker: once it arrives, everything
 * pushed to that user before it, stored messages included, has arrived too. A ping is
 * the marker for a connection whose user is not being delivered stored messages. */
#include "chatd_proc.h"
#include "client.h"
#include "../db/db_test_env.h"

#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PASSWD "s3cret pass"

/* The server under test and its database; each test runs in its own forked process. */
static struct config_database cfg;
static struct chatd_proc srv;
static long long test_start_ms; /* wall clock when the test began, for ts checks */
static long long next_id = 1;   /* request ids: odd ones are integers, even ones strings */
static unsigned next_marker;
static struct test_client *postman;
static int postman_registered;

/* Hostile text: SQL metacharacters, quotes, backslashes, control characters, Unicode. */
static const char *const hostile_texts[] = {
    "Robert'); DROP TABLE users; -- \\\" \xc3\xbcn\xc3\xaf"
    "c\xc3\xb8"
    "d\xc3\xa9 \xf0\x9f\x98\x80",
    "' OR '1'='1",
    "\\'; DELETE FROM private_messages; --\\",
    "%_\\%\\_ `backtick` \"double\" 'single' \\\\ \\0 \\n",
    "tab\there\nnewline\r\nand a line separator \xe2\x80\xa8 too",
    "\xe4\xbd\xa0\xe5\xa5\xbd, \xd0\xbc\xd0\xb8\xd1\x80, \xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7",
    "0x27 \\x27 \\u0027 CHAR(39) \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd",
};
#define N_HOSTILE (sizeof(hostile_texts) / sizeof(hostile_texts[0]))

/* Names a chat server must refuse; the SQL ones must never reach a query as SQL. */
static const char *const bad_names[] = {
    "Robert'); DROP TABLE users; --",
    "x' OR '1'='1",
    "alice' -- ",
    "a;b",
    "g`1",
    "bob\\",
    "\"quoted\"",
};
#define N_BAD_NAMES (sizeof(bad_names) / sizeof(bad_names[0]))

/* ---- the server ---- */

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Start chatd with the sample config, config/chatd.conf, as scripts/run does: only the
 * database (the test's own), a cheap password hash, and `chat_set` (one more --set,
 * e.g. "plugin.accounts.register=no", or NULL) come from the command line. */
static void launch_with(const char *const *more_sets);

static void launch(const char *chat_set)
{
    const char *const more[] = {chat_set, NULL};
    launch_with(more);
}

/* launch with any number of extra --set values (NULL-terminated). */
static void launch_with(const char *const *more_sets)
{
    ck_assert_msg(db_test_start_sample(&srv, &cfg, more_sets) == 0,
                  "chatd did not start with the chat plugin");
}

static void start_chat(const char *chat_options)
{
    test_start_ms = wall_ms();
    db_test_config(&cfg);
    launch(chat_options);
}

/* Stop chatd with SIGTERM: it must exit 0 (under sanitizers, also leak-free). */
static void stop_server(void)
{
    if (postman) {
        test_client_close(postman);
        postman = NULL;
    }
    int rc = chatd_proc_stop(&srv, CHATD_PROC_STOP_TIMEOUT_MS);
    chatd_proc_cleanup(&srv);
    ck_assert_msg(rc == 0, "chatd exited with %d after SIGTERM, want 0", rc);
}

static void stop_chat(void)
{
    stop_server();
    db_test_cleanup(&cfg);
}

/* ---- reading and checking messages ---- */

/* For failure messages only: the test process ends right after, so it is not freed.
 * Cut short, since Check cannot carry a very long failure message. */
static char *dump(const json_t *msg)
{
    static char nothing[] = "(nothing)";
    char *text = msg ? json_dumps(msg, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (text && strlen(text) > 1500)
        strcpy(text + 1480, " ... (cut short)");
    return text ? text : nothing;
}

static struct test_client *connect_client(void)
{
    struct test_client *c = test_client_connect(srv.host, srv.port, 0);
    ck_assert_msg(c != NULL, "cannot connect to chatd on port %d", srv.port);
    return c;
}

static void send_bytes(struct test_client *c, const char *data, size_t len)
{
    ck_assert_msg(test_client_send(c, data, len, TEST_CLIENT_TIMEOUT_MS) == 0, "send failed: %s",
                  strerror(errno));
}

static json_t *read_msg(struct test_client *c)
{
    json_t *msg = test_client_read_json(c, TEST_CLIENT_TIMEOUT_MS);
    ck_assert_msg(msg != NULL, "no line (a JSON object) from chatd");
    return msg;
}

static int str_is(const json_t *msg, const char *key, const char *want)
{
    const json_t *v = json_object_get(msg, key);
    return json_is_string(v) && strcmp(json_string_value(v), want) == 0;
}

static void assert_str(const json_t *msg, const char *key, const char *want)
{
    if (!str_is(msg, key, want))
        ck_abort_msg("want \"%s\":\"%s\" in %s", key, want, dump(msg));
}

static void assert_no_key(const json_t *msg, const char *key)
{
    if (json_object_get(msg, key))
        ck_abort_msg("want no \"%s\" in %s", key, dump(msg));
}

/* ts is the server's time of acceptance in Unix milliseconds: during this test. */
static void assert_ts_recent(const json_t *msg)
{
    const json_t *ts = json_object_get(msg, "ts");
    long long now = wall_ms();
    if (!json_is_integer(ts) || json_integer_value(ts) < test_start_ms - 1000 ||
        json_integer_value(ts) > now + 1000)
        ck_abort_msg("want \"ts\": Unix ms between %lld and %lld in %s", test_start_ms, now,
                     dump(msg));
}

static void assert_msg_id(const json_t *msg)
{
    const json_t *id = json_object_get(msg, "msg_id");
    if (!json_is_integer(id) && !(json_is_string(id) && json_string_length(id) > 0))
        ck_abort_msg("want \"msg_id\" (a string or an integer) in %s", dump(msg));
}

static void assert_offline_flag(const json_t *msg, int offline)
{
    const json_t *v = json_object_get(msg, "offline");
    if (offline ? !json_is_true(v) : (v && !json_is_false(v)))
        ck_abort_msg("want %s in %s", offline ? "\"offline\":true" : "no \"offline\":true",
                     dump(msg));
}

static void check_private(const json_t *msg, const char *from, const char *text, int offline)
{
    assert_str(msg, "cmd", "private_chat_recv");
    assert_str(msg, "user_from", from);
    assert_str(msg, "text", text);
    assert_no_key(msg, "id");
    assert_ts_recent(msg);
    assert_msg_id(msg);
    assert_offline_flag(msg, offline);
}

static void check_group(const json_t *msg, const char *group, const char *from, const char *text,
                        int offline)
{
    assert_str(msg, "cmd", "group_chat_recv");
    assert_str(msg, "group", group);
    assert_str(msg, "user_from", from);
    assert_str(msg, "text", text);
    assert_no_key(msg, "id");
    assert_ts_recent(msg);
    assert_msg_id(msg);
    assert_offline_flag(msg, offline);
}

/* The next line must be a push (no id) with this cmd. The caller frees it. */
static json_t *read_push(struct test_client *c, const char *cmd)
{
    json_t *msg = read_msg(c);
    assert_str(msg, "cmd", cmd);
    assert_no_key(msg, "id");
    return msg;
}

static void expect_private(struct test_client *c, const char *from, const char *text, int offline)
{
    json_t *msg = read_msg(c);
    check_private(msg, from, text, offline);
    json_decref(msg);
}

static void expect_group(struct test_client *c, const char *group, const char *from,
                         const char *text, int offline)
{
    json_t *msg = read_msg(c);
    check_group(msg, group, from, text, offline);
    json_decref(msg);
}

static void expect_presence(struct test_client *c, const char *user, const char *status)
{
    json_t *msg = read_push(c, "presence");
    assert_str(msg, "user", user);
    assert_str(msg, "status", status);
    json_decref(msg);
}

static void expect_friend_added(struct test_client *c, const char *from)
{
    json_t *msg = read_push(c, "friend_added");
    assert_str(msg, "user_from", from);
    json_decref(msg);
}

/* msg[key] is an array holding exactly the n names given, in any order. */
static void assert_names(const json_t *msg, const char *key, size_t n, ...)
{
    const json_t *a = json_object_get(msg, key);
    int ok = json_is_array(a) && json_array_size(a) == n;
    for (size_t i = 0; ok && i < json_array_size(a); i++)
        ok = json_is_string(json_array_get(a, i));
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; ok && i < n; i++) {
        const char *want = va_arg(ap, const char *);
        int found = 0;
        for (size_t j = 0; !found && j < json_array_size(a); j++)
            found = strcmp(json_string_value(json_array_get(a, j)), want) == 0;
        ok = found;
    }
    va_end(ap);
    if (!ok)
        ck_abort_msg("want \"%s\" to be an array of %zu names as given, got %s", key, n, dump(msg));
}

/* ---- requests ---- */

/* Send the request json_pack(fmt, ...) makes, with an "id" added, and read the next line:
 * it must be {"cmd":"<cmd>_reply","result":<result>,"id":<the same id>}. Returns the
 * reply; the caller frees it. */
static json_t *vcall(struct test_client *c, const char *result, const char *fmt, va_list ap)
{
    json_error_t error;
    json_t *req = json_vpack_ex(&error, 0, fmt, ap);
    ck_assert_msg(req != NULL, "cannot build a request from %s: %s", fmt, error.text);
    long long n = next_id++;
    json_t *id;
    if (n % 2) {
        id = json_integer(n);
    } else {
        char text[32];
        snprintf(text, sizeof(text), "req-%lld", n);
        id = json_string(text);
    }
    json_object_set(req, "id", id);
    char want_cmd[64];
    snprintf(want_cmd, sizeof(want_cmd), "%s_reply",
             json_string_value(json_object_get(req, "cmd")));
    char *text = json_dumps(req, JSON_COMPACT);
    ck_assert_ptr_nonnull(text);
    ck_assert_msg(test_client_send_str(c, text) == 0, "cannot send %s: %s", text, strerror(errno));
    json_t *reply = test_client_read_json(c, TEST_CLIENT_TIMEOUT_MS);
    if (!reply || !str_is(reply, "cmd", want_cmd) || !str_is(reply, "result", result) ||
        !json_equal(json_object_get(reply, "id"), id))
        ck_abort_msg("sent %s\nwant {\"cmd\":\"%s\",\"result\":\"%s\",\"id\":%s} as the next line"
                     "\ngot  %s",
                     text, want_cmd, result, dump(id), dump(reply));
    const json_t *reason = json_object_get(reply, "reason");
    if (reason && !json_is_string(reason))
        ck_abort_msg("\"reason\" must be a string in %s", dump(reply));
    free(text);
    json_decref(id);
    json_decref(req);
    return reply;
}

static json_t *call(struct test_client *c, const char *result, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_t *reply = vcall(c, result, fmt, ap);
    va_end(ap);
    return reply;
}

static void expect(struct test_client *c, const char *result, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_decref(vcall(c, result, fmt, ap));
    va_end(ap);
}

/* A failure whose reply must say why. */
static void expect_failure_with_reason(struct test_client *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_t *reply = vcall(c, "failure", fmt, ap);
    va_end(ap);
    if (!json_is_string(json_object_get(reply, "reason")))
        ck_abort_msg("want a \"reason\" with the failure in %s", dump(reply));
    json_decref(reply);
}

static void do_register(struct test_client *c, const char *user, const char *passwd,
                        const char *result)
{
    expect(c, result, "{ssssss}", "cmd", "register", "user", user, "passwd", passwd);
}

static json_t *do_login(struct test_client *c, const char *user, const char *passwd,
                        const char *result)
{
    return call(c, result, "{ssssss}", "cmd", "login", "user", user, "passwd", passwd);
}

static void logout(struct test_client *c)
{
    expect(c, "success", "{ss}", "cmd", "logout");
}

static void send_private(struct test_client *c, const char *to, const char *text,
                         const char *result)
{
    expect(c, result, "{ssssss}", "cmd", "private_chat", "user_to", to, "text", text);
}

static void send_group(struct test_client *c, const char *group, const char *text,
                       const char *result)
{
    expect(c, result, "{ssssss}", "cmd", "group_chat", "group", group, "text", text);
}

static void group_cmd(struct test_client *c, const char *cmd, const char *group, const char *result)
{
    expect(c, result, "{ssss}", "cmd", cmd, "group", group);
}

static void add_friend(struct test_client *c, const char *name, const char *result)
{
    expect(c, result, "{ssss}", "cmd", "add_friend", "friend", name);
}

/* Nothing is waiting for this connection: the reply to a ping is the next line. Valid
 * for pushes queued before the last reply someone else got (see the top comment). */
static void expect_quiet(struct test_client *c)
{
    expect(c, "success", "{ss}", "cmd", "ping");
}

/* ---- users and markers ---- */

static struct test_client *postman_session(void)
{
    if (!postman) {
        postman = connect_client();
        if (!postman_registered)
            do_register(postman, "postman", PASSWD, "success");
        postman_registered = 1;
        json_decref(do_login(postman, "postman", PASSWD, "success"));
    }
    return postman;
}

/* Send a marker to `user` (online on the n sessions cs) and read each session up to it.
 * Every session must have received the same messages before it. Returns them (from the
 * first session) as an array the caller frees. */
static json_t *settle_all(struct test_client *const *cs, size_t n, const char *user)
{
    char marker[64];
    snprintf(marker, sizeof(marker), "mark %u", ++next_marker); /* fits max_text_bytes = 16 */
    send_private(postman_session(), user, marker, "success");
    json_t *first = NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *before = json_array();
        for (;;) {
            json_t *msg = read_msg(cs[i]);
            if (str_is(msg, "cmd", "private_chat_recv") && str_is(msg, "user_from", "postman") &&
                str_is(msg, "text", marker)) {
                check_private(msg, "postman", marker, 0);
                json_decref(msg);
                break;
            }
            json_array_append_new(before, msg);
        }
        if (i == 0) {
            first = before;
            continue;
        }
        if (!json_equal(first, before))
            ck_abort_msg("session 1 of %s got %s, session %zu got %s", user, dump(first), i + 1,
                         dump(before));
        json_decref(before);
    }
    return first;
}

static json_t *settle(struct test_client *c, const char *user)
{
    return settle_all(&c, 1, user);
}

static void assert_nothing_pending(json_t *got, const char *user)
{
    if (json_array_size(got) != 0)
        ck_abort_msg("want nothing for %s, got %zu messages: %s", user, json_array_size(got),
                     dump(got));
    json_decref(got);
}

/* Log in (success) and return what was delivered after the reply (see settle). */
static json_t *login_settled(struct test_client *c, const char *user)
{
    json_decref(do_login(c, user, PASSWD, "success"));
    return settle(c, user);
}

/* A new connection, logged in as `user`, which is registered first if `reg`. Nothing
 * may be delivered after the login. */
static struct test_client *session_as(const char *user, int reg)
{
    struct test_client *c = connect_client();
    if (reg)
        do_register(c, user, PASSWD, "success");
    assert_nothing_pending(login_settled(c, user), user);
    return c;
}

static struct test_client *new_user(const char *user)
{
    return session_as(user, 1);
}

static void register_only(const char *user)
{
    struct test_client *c = connect_client();
    do_register(c, user, PASSWD, "success");
    test_client_close(c);
}

/* `arr` holds `n` private messages with these texts, in this order. */
static void assert_privates(const json_t *arr, const char *from, const char *const *texts, size_t n,
                            int offline)
{
    if (json_array_size(arr) != n)
        ck_abort_msg("want %zu private messages from %s, got %zu: %s", n, from,
                     json_array_size(arr), dump(arr));
    for (size_t i = 0; i < n; i++)
        check_private(json_array_get(arr, i), from, texts[i], offline);
}

static void assert_groups(const json_t *arr, const char *group, const char *from,
                          const char *const *texts, size_t n, int offline)
{
    if (json_array_size(arr) != n)
        ck_abort_msg("want %zu messages of group %s, got %zu: %s", n, group, json_array_size(arr),
                     dump(arr));
    for (size_t i = 0; i < n; i++)
        check_group(json_array_get(arr, i), group, from, texts[i], offline);
}

/* No two of these messages share a msg_id. */
static void assert_distinct_msg_ids(const json_t *arr)
{
    for (size_t i = 0; i < json_array_size(arr); i++)
        for (size_t j = i + 1; j < json_array_size(arr); j++)
            if (json_equal(json_object_get(json_array_get(arr, i), "msg_id"),
                           json_object_get(json_array_get(arr, j), "msg_id")))
                ck_abort_msg("messages %zu and %zu share a msg_id: %s and %s", i, j,
                             dump(json_array_get(arr, i)), dump(json_array_get(arr, j)));
}

/* ---- register and login ---- */

START_TEST(register_accepts_letters_digits_underscore_1_to_32)
{
    start_chat(NULL);
    struct test_client *c = connect_client();
    do_register(c, "LiHua", "11111", "success");
    do_register(c, "a", PASSWD, "success");
    do_register(c, "A234567890_b234567890_c234567890", PASSWD, "success");
    do_register(c, "_under_score_9", PASSWD, "success");
    json_t *reply = do_login(c, "LiHua", "11111", "success");
    assert_names(reply, "fri", 0);
    assert_names(reply, "group", 0);
    json_decref(reply);
    test_client_close(c);
    stop_chat();
}
END_TEST

START_TEST(register_refuses_a_taken_name_and_keeps_the_first_password)
{
    start_chat(NULL);
    struct test_client *c = connect_client();
    do_register(c, "bob", "first", "success");
    expect_failure_with_reason(c, "{ssssss}", "cmd", "register", "user", "bob", "passwd", "second");
    json_decref(do_login(c, "bob", "second", "passwd_error"));
    json_decref(do_login(c, "bob", "first", "success"));
    test_client_close(c);
    stop_chat();
}
END_TEST

START_TEST(register_refuses_invalid_names)
{
    static const char *const names[] = {
        "bad name!", "abcdefghijabcdefghijabcdefghij123", "d\xc3\xa9j\xc3\xa0", "a-b", "a.b",
        " alice",
    };
    start_chat(NULL);
    struct test_client *c = connect_client();
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        expect_failure_with_reason(c, "{ssssss}", "cmd", "register", "user", names[i], "passwd",
                                   PASSWD);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        json_decref(do_login(c, names[i], PASSWD, "user_not_exist"));
    test_client_close(c);
    stop_chat();
}
END_TEST

START_TEST(register_refuses_an_empty_password)
{
    start_chat(NULL);
    struct test_client *c = connect_client();
    expect_failure_with_reason(c, "{ssssss}", "cmd", "register", "user", "alice", "passwd", "");
    /* Nothing was stored: the name is still free. */
    json_decref(do_login(c, "alice", "", "user_not_exist"));
    do_register(c, "alice", PASSWD, "success");
    test_client_close(c);
    stop_chat();
}
END_TEST

START_TEST(login_of_an_unknown_user_is_user_not_exist)
{
    start_chat(NULL);
    struct test_client *c = connect_client();
    json_decref(do_login(c, "nobody", PASSWD, "user_not_exist"));
    do_register(c, "alice", PASSWD, "success");
    json_decref(do_login(c, "Alice_", PASSWD, "user_not_exist"));
    /* Still not logged in. */
    expect(c, "not_logged_in", "{ss}", "cmd", "logout");
    test_client_close(c);
    stop_chat();
}
END_TEST

START_TEST(login_with_a_wrong_password_is_passwd_error)
{
    start_chat(NULL);
    struct test_client *c = connect_client();
    do_register(c, "alice", PASSWD, "success");
    json_decref(do_login(c, "alice", "wrong", "passwd_error"));
    json_decref(do_login(c, "alice", "", "passwd_error"));
    expect(c, "not_logged_in", "{ss}", "cmd", "logout");
    json_decref(do_login(c, "alice", PASSWD, "success"));
    test_client_close(c);
    stop_chat();
}
END_TEST

START_TEST(login_reply_lists_friends_and_groups)
{
    start_chat(NULL);
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    register_only("carol");
    add_friend(alice, "bob", "success");
    expect_friend_added(bob, "alice");
    add_friend(alice, "carol", "success");
    group_cmd(alice, "create_group", "g1", "success");
    group_cmd(bob, "create_group", "g2", "success");
    group_cmd(alice, "join_group", "g2", "success");

    logout(alice);
    json_t *reply = do_login(alice, "alice", PASSWD, "success");
    assert_names(reply, "fri", 2, "bob", "carol");
    assert_names(reply, "group", 2, "g1", "g2");
    json_decref(reply);

    struct test_client *carol = connect_client();
    reply = do_login(carol, "carol", PASSWD, "success");
    assert_names(reply, "fri", 1, "alice");
    assert_names(reply, "group", 0);
    json_decref(reply);

    test_client_close(alice);
    test_client_close(bob);
    test_client_close(carol);
    stop_chat();
}
END_TEST

START_TEST(logout_ends_the_login_but_not_the_connection)
{
    start_chat(NULL);
    struct test_client *bob = new_user("bob");
    struct test_client *c = new_user("alice");
    logout(c);
    send_private(c, "bob", "after logout", "not_logged_in");
    add_friend(c, "bob", "not_logged_in");
    expect(c, "not_logged_in", "{ss}", "cmd", "logout");
    expect_quiet(c);
    expect_quiet(bob);
    /* The same connection can log in again. */
    assert_nothing_pending(login_settled(c, "alice"), "alice");
    send_private(c, "bob", "back", "success");
    expect_private(bob, "alice", "back", 0);
    test_client_close(c);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(commands_other_than_register_login_ping_need_a_login)
{
    start_chat(NULL);
    struct test_client *c = connect_client();
    expect(c, "not_logged_in", "{ss}", "cmd", "logout");
    expect(c, "not_logged_in", "{ssssss}", "cmd", "private_chat", "user_to", "bob", "text", "hi");
    expect(c, "not_logged_in", "{ssss}", "cmd", "add_friend", "friend", "bob");
    group_cmd(c, "create_group", "g1", "not_logged_in");
    group_cmd(c, "join_group", "g1", "not_logged_in");
    group_cmd(c, "leave_group", "g1", "not_logged_in");
    expect(c, "not_logged_in", "{ssssss}", "cmd", "group_chat", "group", "g1", "text", "hi");
    /* register, login and ping work without a login. */
    expect(c, "success", "{ss}", "cmd", "ping");
    do_register(c, "bob", PASSWD, "success");
    json_decref(do_login(c, "bob", "wrong", "passwd_error"));
    /* A failed login leaves the connection logged out. */
    expect(c, "not_logged_in", "{ssssss}", "cmd", "private_chat", "user_to", "bob", "text", "hi");
    test_client_close(c);
    /* Nothing sent without a login was stored for bob. */
    struct test_client *bob = session_as("bob", 0);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(every_reply_echoes_integer_and_string_ids)
{
    /* call() alternates integer and string ids and checks the echo; each request is sent
     * twice here so that every command is seen with both kinds. */
    start_chat(NULL);
    struct test_client *bob = new_user("bob");
    struct test_client *c = connect_client();
    for (int i = 0; i < 2; i++)
        expect(c, "success", "{ss}", "cmd", "ping");
    do_register(c, "alice", PASSWD, "success");
    do_register(c, "alice", PASSWD, "failure");
    json_decref(do_login(c, "alice", "x", "passwd_error"));
    json_decref(do_login(c, "alice", PASSWD, "success"));
    json_decref(settle(c, "alice"));
    for (int i = 0; i < 2; i++) {
        send_private(c, "bob", "hi", "success");
        expect_private(bob, "alice", "hi", 0);
    }
    add_friend(c, "bob", "success");
    expect_friend_added(bob, "alice");
    add_friend(c, "bob", "already_friends");
    group_cmd(c, "create_group", "g1", "success");
    group_cmd(c, "create_group", "g1", "failure");
    group_cmd(c, "join_group", "g1", "already_member");
    group_cmd(c, "join_group", "g1", "already_member");
    for (int i = 0; i < 2; i++)
        send_group(c, "g1", "to myself", "success");
    group_cmd(c, "leave_group", "g1", "success");
    group_cmd(c, "leave_group", "g1", "not_member");
    logout(c);
    expect(c, "not_logged_in", "{ss}", "cmd", "logout");
    test_client_close(c);
    test_client_close(bob);
    stop_chat();
}
END_TEST

/* ---- private chat ---- */

START_TEST(private_chat_to_an_online_user_is_pushed_with_sender_text_ts_and_msg_id)
{
    start_chat(NULL);
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    send_private(alice, "bob", "hi bob", "success");
    json_t *first = read_msg(bob);
    check_private(first, "alice", "hi bob", 0);
    /* user_from equal to the logged-in user is accepted. */
    expect(alice, "success", "{ssssssss}", "cmd", "private_chat", "user_from", "alice", "user_to",
           "bob", "text", "again");
    json_t *second = read_msg(bob);
    check_private(second, "alice", "again", 0);
    if (json_equal(json_object_get(first, "msg_id"), json_object_get(second, "msg_id")))
        ck_abort_msg("two messages share a msg_id: %s and %s", dump(first), dump(second));
    json_decref(first);
    json_decref(second);
    send_private(bob, "alice", "hi alice", "success");
    expect_private(alice, "bob", "hi alice", 0);
    /* The sender gets no copy. */
    expect_quiet(alice);
    expect_quiet(bob);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(private_chat_to_an_unknown_user_is_user_not_exist)
{
    start_chat(NULL);
    struct test_client *alice = new_user("alice");
    send_private(alice, "nobody", "hello?", "user_not_exist");
    send_private(alice, "no body!", "hello?", "user_not_exist");
    expect_quiet(alice);
    test_client_close(alice);
    stop_chat();
}
END_TEST

START_TEST(private_messages_to_an_offline_user_are_delivered_once_after_login_oldest_first)
{
    start_chat(NULL);
    struct test_client *alice = new_user("alice");
    struct test_client *carol = new_user("carol");
    struct test_client *bob = new_user("bob");
    logout(bob);
    send_private(alice, "bob", "one", "offline");
    send_private(carol, "bob", "two", "offline");
    send_private(alice, "bob", "three", "offline");
    expect_quiet(bob);

    json_t *got = login_settled(bob, "bob");
    if (json_array_size(got) != 3)
        ck_abort_msg("want 3 stored messages after login, got %s", dump(got));
    check_private(json_array_get(got, 0), "alice", "one", 1);
    check_private(json_array_get(got, 1), "carol", "two", 1);
    check_private(json_array_get(got, 2), "alice", "three", 1);
    assert_distinct_msg_ids(got);
    json_decref(got);

    /* Now online: delivered live. */
    send_private(alice, "bob", "four", "success");
    expect_private(bob, "alice", "four", 0);

    /* Exactly once: neither a second login nor a new connection gets them again. */
    logout(bob);
    assert_nothing_pending(login_settled(bob, "bob"), "bob");
    test_client_close(bob);
    bob = session_as("bob", 0);
    test_client_close(bob);
    test_client_close(alice);
    test_client_close(carol);
    stop_chat();
}
END_TEST

START_TEST(private_message_to_a_never_logged_in_user_waits_for_their_first_login)
{
    start_chat(NULL);
    struct test_client *alice = new_user("alice");
    register_only("bob");
    send_private(alice, "bob", "welcome", "offline");
    struct test_client *bob = connect_client();
    json_t *got = login_settled(bob, "bob");
    static const char *const texts[] = {"welcome"};
    assert_privates(got, "alice", texts, 1, 1);
    json_decref(got);
    test_client_close(bob);
    test_client_close(alice);
    stop_chat();
}
END_TEST

/* ---- friends ---- */

START_TEST(add_friend_answers_success_user_not_exist_already_friends_and_bad_request_for_self)
{
    start_chat(NULL);
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    add_friend(alice, "bob", "success");
    expect_friend_added(bob, "alice");
    add_friend(alice, "bob", "already_friends");
    /* Mutual: the other direction exists too. */
    add_friend(bob, "alice", "already_friends");
    add_friend(alice, "nobody", "user_not_exist");
    add_friend(alice, "alice", "bad_request");
    expect_quiet(alice);
    expect_quiet(bob);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(add_friend_tells_an_online_friend_and_lists_both_ways)
{
    start_chat(NULL);
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    register_only("carol");
    add_friend(alice, "bob", "success");
    json_t *msg = read_push(bob, "friend_added");
    assert_str(msg, "user_from", "alice");
    json_decref(msg);
    expect_quiet(alice);
    /* An offline user learns it from the login reply. */
    add_friend(bob, "carol", "success");
    expect_quiet(bob);

    logout(alice);
    expect_presence(bob, "alice", "offline");
    json_t *reply = do_login(alice, "alice", PASSWD, "success");
    assert_names(reply, "fri", 1, "bob");
    json_decref(reply);
    expect_presence(bob, "alice", "online");
    logout(bob);
    reply = do_login(bob, "bob", PASSWD, "success");
    assert_names(reply, "fri", 2, "alice", "carol");
    json_decref(reply);
    struct test_client *carol = connect_client();
    reply = do_login(carol, "carol", PASSWD, "success");
    assert_names(reply, "fri", 1, "bob");
    json_decref(reply);
    test_client_close(alice);
    test_client_close(bob);
    test_client_close(carol);
    stop_chat();
}
END_TEST

/* ---- groups ---- */

START_TEST(create_group_succeeds_and_refuses_a_taken_or_invalid_name)
{
    start_chat(NULL);
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    group_cmd(alice, "create_group", "g1", "success");
    expect_failure_with_reason(bob, "{ssss}", "cmd", "create_group", "group", "g1");
    expect_failure_with_reason(alice, "{ssss}", "cmd", "create_group", "group", "g1");
    expect_failure_with_reason(alice, "{ssss}", "cmd", "create_group", "group", "bad group!");
    /* The creator is the first member. */
    group_cmd(alice, "join_group", "g1", "already_member");
    send_group(alice, "g1", "first", "success");
    logout(alice);
    json_t *reply = do_login(alice, "alice", PASSWD, "success");
    assert_names(reply, "group", 1, "g1");
    json_decref(reply);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(join_group_answers_success_group_not_exist_already_member)
{
    start_chat(NULL);
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    group_cmd(alice, "create_group", "g1", "success");
    group_cmd(bob, "join_group", "nogroup", "group_not_exist");
    group_cmd(bob, "join_group", "g1", "success");
    group_cmd(bob, "join_group", "g1", "already_member");
    send_group(bob, "g1", "joined", "success");
    expect_group(alice, "g1", "bob", "joined", 0);
    logout(bob);
    json_t *reply = do_login(bob, "bob", PASSWD, "success");
    assert_names(reply, "group", 1, "g1");
    json_decref(reply);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(leave_group_answers_success_group_not_exist_not_member)
{
    start_chat(NULL);
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    group_cmd(alice, "create_group", "g1", "success");
    group_cmd(bob, "join_group", "g1", "success");
    /* Cache the group's members with a message first. */
    send_group(alice, "g1", "before", "success");
    expect_group(bob, "g1", "alice", "before", 0);
    group_cmd(bob, "leave_group", "g1", "success");
    group_cmd(bob, "leave_group", "g1", "not_member");
    group_cmd(bob, "leave_group", "nogroup", "group_not_exist");
    /* A former member neither sends nor receives. */
    send_group(bob, "g1", "still here?", "not_member");
    send_group(alice, "g1", "after", "success");
    expect_quiet(bob);
    logout(bob);
    json_t *reply = do_login(bob, "bob", PASSWD, "success");
    assert_names(reply, "group", 0);
    json_decref(reply);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(group_chat_answers_success_group_not_exist_not_member)
{
    start_chat(NULL);
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    group_cmd(alice, "create_group", "g1", "success");
    /* Before and after the server has the group's members in memory. */
    send_group(bob, "g1", "let me in", "not_member");
    send_group(alice, "g1", "hello", "success");
    send_group(bob, "g1", "let me in", "not_member");
    send_group(alice, "nogroup", "hello", "group_not_exist");
    send_group(alice, "no group!", "hello", "group_not_exist");
    expect_quiet(alice);
    expect_quiet(bob);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(group_message_reaches_every_other_members_sessions_but_not_the_sender)
{
    start_chat(NULL);
    struct test_client *alice = new_user("alice");
    struct test_client *bob1 = new_user("bob");
    struct test_client *bob2 = connect_client();
    json_decref(do_login(bob2, "bob", PASSWD, "success"));
    struct test_client *bobs[] = {bob1, bob2};
    assert_nothing_pending(settle_all(bobs, 2, "bob"), "bob");
    struct test_client *carol = new_user("carol");
    struct test_client *dave = new_user("dave");
    group_cmd(alice, "create_group", "g1", "success");
    group_cmd(bob1, "join_group", "g1", "success");
    group_cmd(carol, "join_group", "g1", "success");

    send_group(alice, "g1", "hello all", "success");
    json_t *m1 = read_msg(bob1);
    check_group(m1, "g1", "alice", "hello all", 0);
    json_t *m2 = read_msg(bob2);
    if (!json_equal(m1, m2))
        ck_abort_msg("bob's sessions got different pushes: %s and %s", dump(m1), dump(m2));
    json_decref(m1);
    json_decref(m2);
    expect_group(carol, "g1", "alice", "hello all", 0);
    expect_quiet(alice);
    expect_quiet(dave);

    send_group(bob1, "g1", "hi from bob", "success");
    expect_group(alice, "g1", "bob", "hi from bob", 0);
    expect_group(carol, "g1", "bob", "hi from bob", 0);
    expect_quiet(bob1);
    expect_quiet(bob2);
    expect_quiet(dave);

    test_client_close(alice);
    test_client_close(bob1);
    test_client_close(bob2);
    test_client_close(carol);
    test_client_close(dave);
    stop_chat();
}
END_TEST

/* ---- group offline delivery ---- */

START_TEST(group_messages_sent_while_a_member_is_offline_arrive_at_login_in_order_once)
{
    static const char *const texts[] = {"m1", "m2", "m3"};
    start_chat(NULL);
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    group_cmd(alice, "create_group", "g1", "success");
    group_cmd(bob, "join_group", "g1", "success");
    logout(bob);
    for (size_t i = 0; i < 3; i++)
        send_group(alice, "g1", texts[i], "success");
    expect_quiet(bob);

    json_t *got = login_settled(bob, "bob");
    assert_groups(got, "g1", "alice", texts, 3, 1);
    assert_distinct_msg_ids(got);
    json_decref(got);

    logout(bob);
    assert_nothing_pending(login_settled(bob, "bob"), "bob");
    test_client_close(bob);
    bob = session_as("bob", 0);
    test_client_close(bob);
    test_client_close(alice);
    stop_chat();
}
END_TEST

START_TEST(group_messages_received_live_are_not_delivered_again_at_login)
{
    start_chat(NULL);
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    group_cmd(alice, "create_group", "g1", "success");
    group_cmd(bob, "join_group", "g1", "success");
    /* Friends, so that alice sees when the server has ended bob's session. */
    add_friend(alice, "bob", "success");
    expect_friend_added(bob, "alice");

    send_group(alice, "g1", "live 1", "success");
    expect_group(bob, "g1", "alice", "live 1", 0);
    logout(bob);
    expect_presence(alice, "bob", "offline");
    json_decref(do_login(bob, "bob", PASSWD, "success"));
    expect_presence(alice, "bob", "online");
    assert_nothing_pending(settle(bob, "bob"), "bob");

    /* The same after the connection is closed instead of a logout. */
    send_group(alice, "g1", "live 2", "success");
    expect_group(bob, "g1", "alice", "live 2", 0);
    test_client_close(bob);
    expect_presence(alice, "bob", "offline");
    bob = connect_client();
    json_decref(do_login(bob, "bob", PASSWD, "success"));
    expect_presence(alice, "bob", "online");
    assert_nothing_pending(settle(bob, "bob"), "bob");

    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(member_who_joined_after_a_message_does_not_get_it)
{
    start_chat(NULL);
    struct test_client *alice = new_user("alice");
    struct test_client *carol = new_user("carol");
    group_cmd(alice, "create_group", "g1", "success");
    send_group(alice, "g1", "before carol", "success");
    group_cmd(carol, "join_group", "g1", "success");
    /* Joining pushes no history. */
    assert_nothing_pending(settle(carol, "carol"), "carol");
    logout(carol);
    send_group(alice, "g1", "after carol", "success");

    json_t *got = login_settled(carol, "carol");
    static const char *const texts[] = {"after carol"};
    assert_groups(got, "g1", "alice", texts, 1, 1);
    json_decref(got);

    /* A user who joins while offline messages are waiting elsewhere gets none of them. */
    register_only("dave");
    struct test_client *dave = session_as("dave", 0);
    group_cmd(dave, "join_group", "g1", "success");
    logout(dave);
    assert_nothing_pending(login_settled(dave, "dave"), "dave");

    test_client_close(alice);
    test_client_close(carol);
    test_client_close(dave);
    stop_chat();
}
END_TEST

/* ---- pipelining ---- */

#define PIPELINED 300

/* Send PIPELINED private_chat requests from one client in a single write: back to back
 * like the original desktop client, alternating with newlines. Ids are 1..PIPELINED. */
static void send_pipelined(struct test_client *c, const char *to)
{
    size_t cap = PIPELINED * 128, len = 0;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    for (int i = 1; i <= PIPELINED; i++) {
        int n = snprintf(buf + len, cap - len,
                         "{\"cmd\":\"private_chat\",\"id\":%d,\"user_to\":\"%s\",\"text\":\"seq "
                         "%04d\"}%s",
                         i, to, i, i % 2 ? "" : "\n");
        ck_assert(n > 0 && (size_t)n < cap - len);
        len += (size_t)n;
    }
    send_bytes(c, buf, len);
    free(buf);
}

static void expect_pipelined_replies(struct test_client *c, const char *result)
{
    for (int i = 1; i <= PIPELINED; i++) {
        json_t *msg = read_msg(c);
        const json_t *id = json_object_get(msg, "id");
        if (!str_is(msg, "cmd", "private_chat_reply") || !str_is(msg, "result", result) ||
            !json_is_integer(id) || json_integer_value(id) != i)
            ck_abort_msg("reply %d: want {\"cmd\":\"private_chat_reply\",\"result\":\"%s\","
                         "\"id\":%d}, got %s",
                         i, result, i, dump(msg));
        json_decref(msg);
    }
}

static void check_sequence(const json_t *got, int offline)
{
    if (json_array_size(got) != PIPELINED)
        ck_abort_msg("want %d messages, got %zu", PIPELINED, json_array_size(got));
    for (int i = 1; i <= PIPELINED; i++) {
        char text[32];
        snprintf(text, sizeof(text), "seq %04d", i);
        check_private(json_array_get(got, (size_t)i - 1), "alice", text, offline);
    }
    assert_distinct_msg_ids(got);
}

START_TEST(pipelined_private_messages_to_an_online_user_arrive_in_order)
{
    start_chat(NULL);
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    send_pipelined(alice, "bob");
    json_t *got = json_array();
    for (int i = 0; i < PIPELINED; i++)
        json_array_append_new(got, read_msg(bob));
    check_sequence(got, 0);
    json_decref(got);
    expect_pipelined_replies(alice, "success");
    expect_quiet(alice);
    expect_quiet(bob);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(pipelined_private_messages_to_an_offline_user_arrive_in_order_after_login)
{
    start_chat(NULL);
    struct test_client *alice = new_user("alice");
    register_only("bob");
    send_pipelined(alice, "bob");
    expect_pipelined_replies(alice, "offline");
    struct test_client *bob = connect_client();
    json_t *got = login_settled(bob, "bob");
    check_sequence(got, 1);
    json_decref(got);
    logout(bob);
    assert_nothing_pending(login_settled(bob, "bob"), "bob");
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

/* ---- large backlogs ---- */

#define BIG_BACKLOG 600 /* more than one drain batch */

/* Text "seq NNNN" padded to `len` bytes. */
static void numbered_text(char *out, size_t len, int i)
{
    snprintf(out, len, "seq %04d ", i);
    size_t used = strlen(out);
    memset(out + used, 'x', len - 1 - used);
    out[len - 1] = '\0';
}

static void check_numbered(const json_t *got, const char *cmd, size_t want)
{
    if (json_array_size(got) != want)
        ck_abort_msg("want %zu stored messages, got %zu", want, json_array_size(got));
    for (size_t i = 0; i < want; i++) {
        const json_t *msg = json_array_get(got, i);
        char prefix[16];
        snprintf(prefix, sizeof(prefix), "seq %04zu ", i + 1);
        const char *text = json_string_value(json_object_get(msg, "text"));
        if (!str_is(msg, "cmd", cmd) || !text || strncmp(text, prefix, strlen(prefix)) != 0)
            ck_abort_msg("stored message %zu out of place: %.200s", i + 1, dump(msg));
        assert_offline_flag(msg, 1);
    }
    assert_distinct_msg_ids(got);
}

START_TEST(a_large_private_backlog_of_long_texts_arrives_whole_and_in_order)
{
    /* 600 messages of 4000 bytes: 2.4 MB, well past max_output_bytes (1 MiB). */
    start_chat(NULL);
    struct test_client *alice = new_user("alice");
    register_only("bob");
    static char text[4000];
    for (int i = 1; i <= BIG_BACKLOG; i++) {
        numbered_text(text, sizeof(text), i);
        send_private(alice, "bob", text, "offline");
    }
    struct test_client *bob = connect_client();
    json_t *got = login_settled(bob, "bob");
    check_numbered(got, "private_chat_recv", BIG_BACKLOG);
    json_decref(got);
    logout(bob);
    assert_nothing_pending(login_settled(bob, "bob"), "bob");
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(a_large_group_backlog_arrives_whole_in_order_and_once)
{
    start_chat(NULL);
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    group_cmd(alice, "create_group", "big", "success");
    group_cmd(bob, "join_group", "big", "success");
    logout(bob);
    char text[64];
    for (int i = 1; i <= BIG_BACKLOG; i++) {
        numbered_text(text, sizeof(text), i);
        send_group(alice, "big", text, "success");
    }
    json_t *got = login_settled(bob, "bob");
    check_numbered(got, "group_chat_recv", BIG_BACKLOG);
    json_decref(got);
    logout(bob);
    assert_nothing_pending(login_settled(bob, "bob"), "bob");
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(stored_private_and_group_messages_keep_time_order_across_batches)
{
    /* More private messages than one batch, then a group message: it must come last. */
    start_chat(NULL);
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    group_cmd(alice, "create_group", "g", "success");
    group_cmd(bob, "join_group", "g", "success");
    logout(bob);
    char text[64];
    for (int i = 1; i <= 510; i++) {
        numbered_text(text, sizeof(text), i);
        send_private(alice, "bob", text, "offline");
    }
    send_group(alice, "g", "last of all", "success");
    json_t *got = login_settled(bob, "bob");
    if (json_array_size(got) != 511)
        ck_abort_msg("want 511 stored messages, got %zu", json_array_size(got));
    check_group(json_array_get(got, 510), "g", "alice", "last of all", 1);
    json_array_remove(got, 510);
    check_numbered(got, "private_chat_recv", 510);
    json_decref(got);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

/* ---- limits, switches, credentials ---- */

START_TEST(limits_are_answered_with_clear_replies)
{
    test_start_ms = wall_ms();
    db_test_config(&cfg);
    const char *const sets[] = {"plugin.groups.max_groups_per_user=1",
                                "plugin.groups.max_members_per_group=2",
                                "plugin.private_chat.max_offline_messages=2", NULL};
    launch_with(sets);
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    struct test_client *carol = new_user("carol");
    register_only("dave");

    group_cmd(alice, "create_group", "g1", "success");
    expect_failure_with_reason(alice, "{ssss}", "cmd", "create_group", "group", "g2");
    group_cmd(bob, "join_group", "g1", "success");
    group_cmd(carol, "join_group", "g1", "forbidden"); /* full: two members */
    group_cmd(carol, "create_group", "g3", "success");
    group_cmd(carol, "join_group", "g1", "forbidden"); /* and carol is in one group already */

    send_private(alice, "dave", "one", "offline");
    send_private(alice, "dave", "two", "offline");
    json_t *reply = call(alice, "forbidden", "{ssssss}", "cmd", "private_chat", "user_to", "dave",
                         "text", "three");
    ck_assert_msg(json_is_string(json_object_get(reply, "reason")), "no reason in %s", dump(reply));
    json_decref(reply);

    test_client_close(alice);
    test_client_close(bob);
    test_client_close(carol);
    stop_chat();
}
END_TEST

START_TEST(a_command_switched_off_is_unknown_cmd)
{
    start_chat("plugin.accounts.register=no");
    struct test_client *c = connect_client();
    static const char request[] = "{\"cmd\":\"register\",\"user\":\"eve\",\"passwd\":\"x\"}";
    send_bytes(c, request, sizeof(request) - 1);
    json_t *reply = read_msg(c);
    ck_assert_msg(str_is(reply, "cmd", "error") && str_is(reply, "result", "unknown_cmd") &&
                      str_is(reply, "request", "register"),
                  "got %s", dump(reply));
    json_decref(reply);
    test_client_close(c);
    stop_chat();
}
END_TEST

START_TEST(hostile_passwords_work_and_only_exactly)
{
    start_chat(NULL);
    static const char passwd[] = "p'); DROP TABLE users; -- \\\" ünïcødé 😀";
    struct test_client *c = connect_client();
    do_register(c, "mallory", passwd, "success");
    json_decref(do_login(c, "mallory", "p'); DROP TABLE users; -- ", "passwd_error"));
    json_decref(do_login(c, "mallory", passwd, "success"));
    test_client_close(c);
    stop_chat();
}
END_TEST

START_TEST(an_idle_timeout_ends_presence_like_a_logout)
{
    start_chat("server.idle_timeout=1");
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    add_friend(alice, "bob", "success");
    expect_friend_added(bob, "alice");
    /* alice keeps talking; bob says nothing and is cut off after a second. */
    static const char ping[] = "{\"cmd\":\"ping\"}";
    for (int i = 0; i < 60; i++) {
        send_bytes(alice, ping, sizeof(ping) - 1);
        for (;;) {
            json_t *msg = read_msg(alice);
            if (str_is(msg, "cmd", "ping_reply")) {
                json_decref(msg);
                break;
            }
            assert_str(msg, "cmd", "presence");
            assert_str(msg, "user", "bob");
            assert_str(msg, "status", "offline");
            json_decref(msg);
            json_decref(read_msg(alice)); /* the ping's reply */
            test_client_close(alice);
            test_client_close(bob);
            stop_chat();
            return;
        }
        chatd_sleep_ms(100);
    }
    ck_abort_msg("no offline presence within 6 s of bob going idle");
}
END_TEST

/* ---- several devices and presence ---- */

/* Read one push from each of alice's two sessions: the same on both. The caller frees
 * the returned copy. */
static json_t *read_on_both(struct test_client *a1, struct test_client *a2)
{
    json_t *m1 = read_msg(a1);
    json_t *m2 = read_msg(a2);
    if (!json_equal(m1, m2))
        ck_abort_msg("the two sessions got different pushes: %s and %s", dump(m1), dump(m2));
    json_decref(m2);
    return m1;
}

START_TEST(a_user_on_two_connections_gets_every_push_on_both)
{
    start_chat(NULL);
    struct test_client *a1 = new_user("alice");
    struct test_client *a2 = connect_client();
    json_decref(do_login(a2, "alice", PASSWD, "success"));
    struct test_client *alices[] = {a1, a2};
    assert_nothing_pending(settle_all(alices, 2, "alice"), "alice");
    struct test_client *bob = new_user("bob");
    struct test_client *carol = new_user("carol");
    group_cmd(bob, "create_group", "g1", "success");
    group_cmd(a1, "join_group", "g1", "success");

    send_private(bob, "alice", "private to both", "success");
    json_t *msg = read_on_both(a1, a2);
    check_private(msg, "bob", "private to both", 0);
    json_decref(msg);

    send_group(bob, "g1", "group to both", "success");
    msg = read_on_both(a1, a2);
    check_group(msg, "g1", "bob", "group to both", 0);
    json_decref(msg);

    add_friend(carol, "alice", "success");
    msg = read_on_both(a1, a2);
    assert_str(msg, "cmd", "friend_added");
    assert_str(msg, "user_from", "carol");
    assert_no_key(msg, "id");
    json_decref(msg);

    logout(carol);
    msg = read_on_both(a1, a2);
    assert_str(msg, "cmd", "presence");
    assert_str(msg, "user", "carol");
    assert_str(msg, "status", "offline");
    json_decref(msg);

    json_decref(do_login(carol, "carol", PASSWD, "success"));
    msg = read_on_both(a1, a2);
    assert_str(msg, "cmd", "presence");
    assert_str(msg, "user", "carol");
    assert_str(msg, "status", "online");
    json_decref(msg);

    /* A message sent from one of alice's sessions is not echoed to the other. */
    send_private(a2, "bob", "from the second device", "success");
    expect_private(bob, "alice", "from the second device", 0);
    expect_quiet(a1);
    expect_quiet(a2);

    test_client_close(a1);
    test_client_close(a2);
    test_client_close(bob);
    test_client_close(carol);
    stop_chat();
}
END_TEST

START_TEST(second_login_while_online_delivers_nothing_already_delivered)
{
    start_chat(NULL);
    struct test_client *bob = new_user("bob");
    register_only("alice");
    group_cmd(bob, "create_group", "g1", "success");
    /* One message waits for alice; she gets it at her first login. */
    send_private(bob, "alice", "stored", "offline");
    struct test_client *a1 = connect_client();
    json_t *got = login_settled(a1, "alice");
    static const char *const stored[] = {"stored"};
    assert_privates(got, "bob", stored, 1, 1);
    json_decref(got);
    group_cmd(a1, "join_group", "g1", "success");
    /* Live messages while she is online. */
    send_group(bob, "g1", "live group", "success");
    expect_group(a1, "g1", "bob", "live group", 0);
    send_private(bob, "alice", "live private", "success");
    expect_private(a1, "bob", "live private", 0);

    /* A second device logs in: nothing was stored while no session was online. */
    struct test_client *a2 = connect_client();
    json_decref(do_login(a2, "alice", PASSWD, "success"));
    struct test_client *alices[] = {a1, a2};
    assert_nothing_pending(settle_all(alices, 2, "alice"), "alice");

    test_client_close(a1);
    test_client_close(a2);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(presence_is_sent_when_the_first_session_starts_and_the_last_ends)
{
    start_chat(NULL);
    struct test_client *alice = new_user("alice");
    struct test_client *b1 = new_user("bob");
    struct test_client *carol = new_user("carol"); /* not a friend */
    add_friend(alice, "bob", "success");
    expect_friend_added(b1, "alice");

    /* One session: logout and login are both told. */
    logout(b1);
    expect_presence(alice, "bob", "offline");
    json_decref(do_login(b1, "bob", PASSWD, "success"));
    expect_presence(alice, "bob", "online");
    expect_quiet(alice);
    expect_quiet(carol);

    /* A second session is not news, nor is the end of one of two. */
    struct test_client *b2 = connect_client();
    json_decref(do_login(b2, "bob", PASSWD, "success"));
    expect_quiet(alice);
    logout(b1);
    expect_quiet(alice);
    json_decref(do_login(b1, "bob", PASSWD, "success"));
    expect_quiet(alice);
    /* The server may notice a close later; if it wrongly announced it, the extra
     * presence shows up before a later ping reply. */
    test_client_close(b1);
    logout(b2);
    expect_presence(alice, "bob", "offline");
    expect_quiet(alice);

    /* The last session ending by a close is told too. */
    json_decref(do_login(b2, "bob", PASSWD, "success"));
    expect_presence(alice, "bob", "online");
    test_client_close(b2);
    expect_presence(alice, "bob", "offline");
    expect_quiet(alice);
    expect_quiet(carol);

    test_client_close(alice);
    test_client_close(carol);
    stop_chat();
}
END_TEST

START_TEST(presence_goes_to_friends_both_ways)
{
    start_chat(NULL);
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    add_friend(alice, "bob", "success");
    expect_friend_added(bob, "alice");
    /* Bob added nobody himself, yet he hears of alice. */
    logout(alice);
    expect_presence(bob, "alice", "offline");
    json_decref(do_login(alice, "alice", PASSWD, "success"));
    expect_presence(bob, "alice", "online");
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

/* ---- user_from ---- */

START_TEST(spoofed_user_from_is_forbidden_and_nothing_is_delivered)
{
    start_chat(NULL);
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    struct test_client *carol = new_user("carol");
    register_only("dave");
    group_cmd(alice, "create_group", "g1", "success");
    group_cmd(bob, "join_group", "g1", "success");
    group_cmd(carol, "join_group", "g1", "success");
    struct test_client *dave = session_as("dave", 0);
    group_cmd(dave, "join_group", "g1", "success");
    logout(dave);

    expect(alice, "forbidden", "{ssssssss}", "cmd", "private_chat", "user_from", "bob", "user_to",
           "carol", "text", "spoofed");
    expect(alice, "forbidden", "{ssssssss}", "cmd", "private_chat", "user_from", "carol", "user_to",
           "bob", "text", "spoofed");
    expect(alice, "forbidden", "{ssssssss}", "cmd", "private_chat", "user_from", "bob", "user_to",
           "dave", "text", "spoofed offline");
    expect(alice, "forbidden", "{ssssssss}", "cmd", "group_chat", "user_from", "bob", "group", "g1",
           "text", "spoofed group");
    expect(bob, "forbidden", "{ssssssss}", "cmd", "group_chat", "user_from", "alice", "group", "g1",
           "text", "spoofed group");
    expect_quiet(alice);
    expect_quiet(bob);
    expect_quiet(carol);
    /* Nothing was stored for the offline member either. */
    assert_nothing_pending(login_settled(dave, "dave"), "dave");

    test_client_close(alice);
    test_client_close(bob);
    test_client_close(carol);
    test_client_close(dave);
    stop_chat();
}
END_TEST

/* ---- hostile text and names ---- */

START_TEST(hostile_text_round_trips_in_private_chat_online_and_offline)
{
    start_chat(NULL);
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    register_only("carol");
    for (size_t i = 0; i < N_HOSTILE; i++) {
        send_private(alice, "bob", hostile_texts[i], "success");
        expect_private(bob, "alice", hostile_texts[i], 0);
        send_private(alice, "carol", hostile_texts[i], "offline");
    }
    struct test_client *carol = connect_client();
    json_t *got = login_settled(carol, "carol");
    assert_privates(got, "alice", hostile_texts, N_HOSTILE, 1);
    json_decref(got);
    test_client_close(alice);
    test_client_close(bob);
    test_client_close(carol);
    stop_chat();
}
END_TEST

START_TEST(hostile_text_round_trips_in_group_chat_online_and_offline)
{
    start_chat(NULL);
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    struct test_client *carol = new_user("carol");
    group_cmd(alice, "create_group", "g1", "success");
    group_cmd(bob, "join_group", "g1", "success");
    group_cmd(carol, "join_group", "g1", "success");
    logout(carol);
    for (size_t i = 0; i < N_HOSTILE; i++) {
        send_group(alice, "g1", hostile_texts[i], "success");
        expect_group(bob, "g1", "alice", hostile_texts[i], 0);
    }
    json_t *got = login_settled(carol, "carol");
    assert_groups(got, "g1", "alice", hostile_texts, N_HOSTILE, 1);
    json_decref(got);
    test_client_close(alice);
    test_client_close(bob);
    test_client_close(carol);
    stop_chat();
}
END_TEST

START_TEST(names_with_sql_metacharacters_are_refused_as_invalid)
{
    start_chat(NULL);
    struct test_client *alice = new_user("alice");
    struct test_client *c = connect_client();
    group_cmd(alice, "create_group", "g1", "success");
    for (size_t i = 0; i < N_BAD_NAMES; i++) {
        const char *name = bad_names[i];
        expect_failure_with_reason(c, "{ssssss}", "cmd", "register", "user", name, "passwd",
                                   PASSWD);
        json_decref(do_login(c, name, PASSWD, "user_not_exist"));
        add_friend(alice, name, "user_not_exist");
        send_private(alice, name, "hi", "user_not_exist");
        expect_failure_with_reason(alice, "{ssss}", "cmd", "create_group", "group", name);
        group_cmd(alice, "join_group", name, "group_not_exist");
        group_cmd(alice, "leave_group", name, "group_not_exist");
        send_group(alice, name, "hi", "group_not_exist");
    }
    /* Every table still works. */
    do_register(c, "zed", PASSWD, "success");
    json_t *reply = do_login(c, "zed", PASSWD, "success");
    assert_names(reply, "fri", 0);
    assert_names(reply, "group", 0);
    json_decref(reply);
    assert_nothing_pending(settle(c, "zed"), "zed");
    add_friend(alice, "zed", "success");
    expect_friend_added(c, "alice");
    group_cmd(c, "join_group", "g1", "success");
    send_group(alice, "g1", "still here", "success");
    expect_group(c, "g1", "alice", "still here", 0);
    logout(alice);
    reply = do_login(alice, "alice", PASSWD, "success");
    assert_names(reply, "fri", 1, "zed");
    assert_names(reply, "group", 1, "g1");
    json_decref(reply);
    test_client_close(alice);
    test_client_close(c);
    stop_chat();
}
END_TEST

/* ---- durability ---- */

/* The value of gauge `name` on /metrics, waiting up to 5 s for it to become `want`;
 * returns the last value seen (-1: not shown). */
static double wait_for_gauge(int admin_port, const char *name, double want)
{
    double value = -1;
    for (int tries = 0; tries < 50; tries++) {
        char *metrics = test_http_get(admin_port, "/metrics");
        ck_assert_msg(metrics != NULL, "cannot connect to the admin listener");
        char line[128];
        snprintf(line, sizeof(line), "\n%s ", name);
        const char *at = strstr(metrics, line);
        value = at ? strtod(at + strlen(line), NULL) : -1;
        free(metrics);
        if (value == want)
            break;
        chatd_sleep_ms(100);
    }
    return value;
}

START_TEST(metrics_show_the_offline_backlog)
{
    int admin_port = test_free_port("127.0.0.1");
    ck_assert_int_gt(admin_port, 0);
    char listen[64];
    snprintf(listen, sizeof(listen), "admin.listen=127.0.0.1:%d", admin_port);
    const char *const sets[] = {"admin.enable=yes", listen, NULL};
    test_start_ms = wall_ms();
    db_test_config(&cfg);
    launch_with(sets);
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    logout(bob);
    for (int i = 0; i < 3; i++)
        send_private(alice, "bob", "while you were away", "offline");
    double backlog = wait_for_gauge(admin_port, "chatd_chat_offline_messages", 3);
    ck_assert_msg(backlog == 3, "want 3 messages waiting, /metrics says %g", backlog);
    json_t *got = login_settled(bob, "bob");
    ck_assert_uint_eq(json_array_size(got), 3);
    json_decref(got);
    backlog = wait_for_gauge(admin_port, "chatd_chat_offline_messages", 0);
    ck_assert_msg(backlog == 0, "want none waiting after bob's login, /metrics says %g", backlog);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(stored_messages_survive_a_restart)
{
    static const char *const privates[] = {"p1", "p2", "p3"};
    static const char *const groups[] = {"g1 m1", "g1 m2"};
    start_chat(NULL);
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    group_cmd(alice, "create_group", "g1", "success");
    group_cmd(bob, "join_group", "g1", "success");
    logout(bob);
    for (size_t i = 0; i < 3; i++)
        send_private(alice, "bob", privates[i], "offline");
    for (size_t i = 0; i < 2; i++)
        send_group(alice, "g1", groups[i], "success");
    test_client_close(alice);
    test_client_close(bob);

    stop_server();
    launch(NULL);

    bob = connect_client();
    json_t *got = login_settled(bob, "bob");
    if (json_array_size(got) != 5)
        ck_abort_msg("want 5 stored messages after the restart, got %s", dump(got));
    /* Oldest first overall; each kind in the order sent. */
    size_t np = 0, ng = 0;
    json_int_t last_ts = 0;
    for (size_t i = 0; i < 5; i++) {
        const json_t *msg = json_array_get(got, i);
        if (str_is(msg, "cmd", "private_chat_recv")) {
            if (np == 3)
                ck_abort_msg("more private messages than were sent: %s", dump(got));
            check_private(msg, "alice", privates[np++], 1);
        } else {
            if (ng == 2)
                ck_abort_msg("more group messages than were sent: %s", dump(got));
            check_group(msg, "g1", "alice", groups[ng++], 1);
        }
        json_int_t ts = json_integer_value(json_object_get(msg, "ts"));
        if (ts < last_ts)
            ck_abort_msg("stored messages out of order (ts goes back): %s", dump(got));
        last_ts = ts;
    }
    /* A message accepted by the new server has a msg_id of its own. */
    alice = session_as("alice", 0);
    send_private(alice, "bob", "after restart", "success");
    json_t *fresh = read_msg(bob);
    check_private(fresh, "alice", "after restart", 0);
    json_array_append_new(got, fresh);
    assert_distinct_msg_ids(got);
    json_decref(got);

    logout(bob);
    assert_nothing_pending(login_settled(bob, "bob"), "bob");
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

/* ---- limits ---- */

START_TEST(text_longer_than_max_text_bytes_is_refused_with_bad_request)
{
    test_start_ms = wall_ms();
    db_test_config(&cfg);
    const char *const sets[] = {"plugin.private_chat.max_text_bytes=16",
                                "plugin.groups.max_text_bytes=16", NULL};
    launch_with(sets);
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    register_only("carol");
    group_cmd(alice, "create_group", "g1", "success");
    group_cmd(bob, "join_group", "g1", "success");

    static const char at_limit[] = "0123456789abcdef";    /* 16 bytes */
    static const char over_limit[] = "0123456789abcdefg"; /* 17 bytes */
    /* 8 and 9 two-byte characters: the limit counts bytes. */
    static const char wide_at_limit[] = "\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc"
                                        "\xc3\xbc";
    static const char wide_over_limit[] = "\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3"
                                          "\xbc\xc3\xbc\xc3\xbc";

    send_private(alice, "bob", over_limit, "bad_request");
    send_private(alice, "bob", wide_over_limit, "bad_request");
    send_private(alice, "carol", over_limit, "bad_request");
    send_group(alice, "g1", over_limit, "bad_request");
    send_group(alice, "g1", wide_over_limit, "bad_request");
    expect_quiet(bob);

    send_private(alice, "bob", at_limit, "success");
    expect_private(bob, "alice", at_limit, 0);
    send_private(alice, "bob", wide_at_limit, "success");
    expect_private(bob, "alice", wide_at_limit, 0);
    send_group(alice, "g1", at_limit, "success");
    expect_group(bob, "g1", "alice", at_limit, 0);

    /* The refused offline message was not stored. */
    struct test_client *carol = session_as("carol", 0);
    test_client_close(carol);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

static Suite *chat_suite(void)
{
    Suite *s = suite_create("chat");

    /* Generous bounds: a test waits at most a few seconds unless something is wrong. */
    TCase *tc = tcase_create("accounts");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, register_accepts_letters_digits_underscore_1_to_32);
    tcase_add_test(tc, register_refuses_a_taken_name_and_keeps_the_first_password);
    tcase_add_test(tc, register_refuses_invalid_names);
    tcase_add_test(tc, register_refuses_an_empty_password);
    tcase_add_test(tc, login_of_an_unknown_user_is_user_not_exist);
    tcase_add_test(tc, login_with_a_wrong_password_is_passwd_error);
    tcase_add_test(tc, login_reply_lists_friends_and_groups);
    tcase_add_test(tc, logout_ends_the_login_but_not_the_connection);
    tcase_add_test(tc, commands_other_than_register_login_ping_need_a_login);
    tcase_add_test(tc, every_reply_echoes_integer_and_string_ids);
    suite_add_tcase(s, tc);

    tc = tcase_create("private_chat");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, private_chat_to_an_online_user_is_pushed_with_sender_text_ts_and_msg_id);
    tcase_add_test(tc, private_chat_to_an_unknown_user_is_user_not_exist);
    tcase_add_test(tc,
                   private_messages_to_an_offline_user_are_delivered_once_after_login_oldest_first);
    tcase_add_test(tc, private_message_to_a_never_logged_in_user_waits_for_their_first_login);
    suite_add_tcase(s, tc);

    tc = tcase_create("friends");
    tcase_set_timeout(tc, 60);
    tcase_add_test(
        tc, add_friend_answers_success_user_not_exist_already_friends_and_bad_request_for_self);
    tcase_add_test(tc, add_friend_tells_an_online_friend_and_lists_both_ways);
    suite_add_tcase(s, tc);

    tc = tcase_create("groups");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, create_group_succeeds_and_refuses_a_taken_or_invalid_name);
    tcase_add_test(tc, join_group_answers_success_group_not_exist_already_member);
    tcase_add_test(tc, leave_group_answers_success_group_not_exist_not_member);
    tcase_add_test(tc, group_chat_answers_success_group_not_exist_not_member);
    tcase_add_test(tc, group_message_reaches_every_other_members_sessions_but_not_the_sender);
    tcase_add_test(tc, group_messages_sent_while_a_member_is_offline_arrive_at_login_in_order_once);
    tcase_add_test(tc, group_messages_received_live_are_not_delivered_again_at_login);
    tcase_add_test(tc, member_who_joined_after_a_message_does_not_get_it);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, limits_are_answered_with_clear_replies);
    tcase_add_test(tc, a_command_switched_off_is_unknown_cmd);
    tcase_add_test(tc, hostile_passwords_work_and_only_exactly);
    tcase_add_test(tc, an_idle_timeout_ends_presence_like_a_logout);
    suite_add_tcase(s, tc);

    tc = tcase_create("pipelining");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, pipelined_private_messages_to_an_online_user_arrive_in_order);
    tcase_add_test(tc, pipelined_private_messages_to_an_offline_user_arrive_in_order_after_login);
    tcase_add_test(tc, a_large_private_backlog_of_long_texts_arrives_whole_and_in_order);
    tcase_add_test(tc, a_large_group_backlog_arrives_whole_in_order_and_once);
    tcase_add_test(tc, stored_private_and_group_messages_keep_time_order_across_batches);
    suite_add_tcase(s, tc);

    tc = tcase_create("devices_and_presence");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_user_on_two_connections_gets_every_push_on_both);
    tcase_add_test(tc, second_login_while_online_delivers_nothing_already_delivered);
    tcase_add_test(tc, presence_is_sent_when_the_first_session_starts_and_the_last_ends);
    tcase_add_test(tc, presence_goes_to_friends_both_ways);
    suite_add_tcase(s, tc);

    tc = tcase_create("hostile_input");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, spoofed_user_from_is_forbidden_and_nothing_is_delivered);
    tcase_add_test(tc, hostile_text_round_trips_in_private_chat_online_and_offline);
    tcase_add_test(tc, hostile_text_round_trips_in_group_chat_online_and_offline);
    tcase_add_test(tc, names_with_sql_metacharacters_are_refused_as_invalid);
    tcase_add_test(tc, text_longer_than_max_text_bytes_is_refused_with_bad_request);
    suite_add_tcase(s, tc);

    tc = tcase_create("durability");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, stored_messages_survive_a_restart);
    tcase_add_test(tc, metrics_show_the_offline_backlog);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(chat_suite());
}
