/* chat_suite.c - see chat_suite.h. */
#include "chat_suite.h"

#include "../db/db_test_env.h"
#include "chat_plugin.h"
#include "check_client.h"
#include "db.h"
#include "db_rows.h"
#include "tls_files.h"

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The server under test and its database; each test runs in its own forked process. */
static struct config_database cfg;
static struct chatd_proc srv;
static long long test_start_ms; /* wall clock when the test began, for ts checks */
static long long next_id = 1;   /* request ids: odd ones are integers, even ones strings */
static unsigned next_marker;
static struct test_client *postman;
static int postman_registered;

/* ---- the server ---- */

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Start chatd on the test's database, with these extra --set values (may be NULL). */
static void launch(const char *const *more_sets)
{
    ck_assert_msg(db_test_start_sample(&srv, &cfg, more_sets) == 0,
                  "chatd did not start with the chat plugin");
}

void start_chat_with(const char *const *more_sets)
{
    test_start_ms = wall_ms();
    db_test_config(&cfg);
    launch(more_sets);
}

void start_chat(void)
{
    start_chat_with(NULL);
}

void start_chat_option(const char *option, const char *value)
{
    char set[4][CHAT_PLUGIN_TEXT_MAX];
    size_t n = chat_plugin_sets(option, value, set, 4);
    const char *sets[5] = {NULL};
    for (size_t i = 0; i < n; i++)
        sets[i] = set[i];
    start_chat_with(sets);
}

void start_chat_for_flood(const char *const *more_sets)
{
    char set[4][CHAT_PLUGIN_TEXT_MAX];
    const char *sets[32] = {
        chat_plugin_set(set[0], "password_opslimit", "2"),
        chat_plugin_set(set[1], "password_memlimit_kib", "65536"),
    };
    size_t n = 2;
    for (size_t i = 0; more_sets && more_sets[i] && n < 31; i++)
        sets[n++] = more_sets[i];
    start_chat_with(sets);
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

void restart_chat(void)
{
    stop_server();
    launch(NULL);
}

void crash_and_restart_chat(void)
{
    if (postman) {
        test_client_close(postman);
        postman = NULL;
    }
    ck_assert_int_eq(chatd_proc_signal(&srv, SIGKILL), 0);
    chatd_proc_wait(&srv, CHATD_PROC_STOP_TIMEOUT_MS);
    chatd_proc_cleanup(&srv);
    launch(NULL);
}

void stop_chat(void)
{
    stop_server();
    db_test_cleanup(&cfg);
}

struct test_client *connect_client(void)
{
    return check_connect(&srv);
}

/* Start chatd with a fresh certificate as [tls]'s, and these sets; with `web_root`, the
 * [web] listener too, TLS when web_tls. */
static void start_with_certificate(const char *const *more_sets, char *cert, char *key, size_t cap,
                                   const char *web_root, int web_tls)
{
    static char dir[PATH_MAX], cert_path[PATH_MAX + 16], key_path[PATH_MAX + 16];
    static char cert_set[PATH_MAX + 64], key_set[PATH_MAX + 64], root_set[PATH_MAX + 64];
    ck_assert_int_eq(chatd_tmpdir_make(dir, sizeof(dir)), 0);
    ck_assert_int_eq(test_tls_make_certificate(dir, "server", cert_path, key_path, PATH_MAX + 16),
                     0);
    snprintf(cert_set, sizeof(cert_set), "tls.certificate=%s", cert_path);
    snprintf(key_set, sizeof(key_set), "tls.key=%s", key_path);
    snprintf(root_set, sizeof(root_set), "web.root=%s", web_root ? web_root : "");
    const char *sets[32] = {cert_set, key_set};
    size_t n = 2;
    if (web_root) {
        sets[n++] = root_set;
        sets[n++] = web_tls ? "web.tls=yes" : "web.tls=no";
    }
    for (size_t i = 0; more_sets && more_sets[i] && n < 31; i++)
        sets[n++] = more_sets[i];
    if (cert)
        snprintf(cert, cap, "%s", cert_path);
    if (key)
        snprintf(key, cap, "%s", key_path);
    test_start_ms = wall_ms();
    db_test_config(&cfg);
    int rc = web_root ? db_test_start_sample_web(&srv, &cfg, sets, 0)
                      : db_test_start_sample_tls(&srv, &cfg, sets, 1);
    ck_assert_msg(rc == 0, "chatd did not start with a %s listener", web_root ? "web" : "TLS");
}

void start_chat_tls(const char *const *more_sets, char *cert, char *key, size_t cap)
{
    start_with_certificate(more_sets, cert, key, cap, NULL, 0);
}

void start_chat_web(const char *const *more_sets, const char *web_root, int tls, char *cert,
                    size_t cap)
{
    start_with_certificate(more_sets, cert, NULL, cap, web_root, tls);
}

struct test_client *connect_tls_client(const char *ca_file)
{
    const struct test_tls_options tls = {.ca_file = ca_file};
    struct test_client *c = test_client_connect_tls(srv.host, srv.tls_port, &tls, 0);
    ck_assert_msg(c != NULL, "no TLS connection to chatd on port %d", srv.tls_port);
    return c;
}

struct chatd_proc *chat_proc(void)
{
    return &srv;
}

struct test_client *try_connect_client(void)
{
    return test_client_try_connect(srv.host, srv.port);
}

const char *chat_log_path(void)
{
    return srv.log;
}

void exec_chat_db(const char *sql, const struct chatd_value *params, size_t nparams)
{
    struct chatd_db db = {0};
    char err[512];
    ck_assert_msg(db_open(&db, &cfg, "", err, sizeof(err)) == 0, "%s", err);
    int rc = db_exec(&db, sql, params, nparams, NULL, NULL);
    ck_assert_msg(rc == 0, "%s: %s", sql, db.last_error);
    db_close(&db);
}

struct chatd_rows *query_chat_db(const char *sql, const struct chatd_value *params, size_t nparams)
{
    struct chatd_db db = {0};
    char err[512];
    ck_assert_msg(db_open(&db, &cfg, "", err, sizeof(err)) == 0, "%s", err);
    struct chatd_rows *rows = NULL;
    int rc = db_query_rows(&db, sql, params, nparams, 0, &rows);
    ck_assert_msg(rc == 0, "%s: %s", sql, db.last_error);
    db_close(&db);
    return rows;
}

void free_chat_rows(struct chatd_rows *rows)
{
    db_rows_free(rows);
}

struct chatd_db *open_chat_db(void)
{
    struct chatd_db *db = calloc(1, sizeof(*db));
    char err[512];
    ck_assert_ptr_nonnull(db);
    ck_assert_msg(db_open(db, &cfg, "", err, sizeof(err)) == 0, "%s", err);
    return db;
}

void close_chat_db(struct chatd_db *db)
{
    db_close(db);
    free(db);
}

/* ---- reading and checking messages ---- */

/* ts is the server's time of acceptance in Unix milliseconds: during this test. */
static void assert_ts_recent(const json_t *msg)
{
    const json_t *ts = json_object_get(msg, "ts");
    long long now = wall_ms();
    if (!json_is_integer(ts) || json_integer_value(ts) < test_start_ms - 1000 ||
        json_integer_value(ts) > now + 1000)
        ck_abort_msg("want \"ts\": Unix ms between %lld and %lld in %s", test_start_ms, now,
                     check_dump(msg));
}

static void assert_msg_id(const json_t *msg)
{
    const json_t *id = json_object_get(msg, "msg_id");
    if (!json_is_integer(id) && !(json_is_string(id) && json_string_length(id) > 0))
        ck_abort_msg("want \"msg_id\" (a string or an integer) in %s", check_dump(msg));
}

void assert_offline_flag(const json_t *msg, int offline)
{
    const json_t *v = json_object_get(msg, "offline");
    if (offline ? !json_is_true(v) : (v && !json_is_false(v)))
        ck_abort_msg("want %s in %s", offline ? "\"offline\":true" : "no \"offline\":true",
                     check_dump(msg));
}

/* What every pushed chat message carries besides its group. */
static void check_recv(const json_t *msg, const char *cmd, const char *from, const char *text,
                       int offline)
{
    check_json_str(msg, "cmd", cmd);
    check_json_str(msg, "user_from", from);
    check_json_str(msg, "text", text);
    check_json_no_key(msg, "id");
    assert_ts_recent(msg);
    assert_msg_id(msg);
    assert_offline_flag(msg, offline);
}

void check_private(const json_t *msg, const char *from, const char *text, int offline)
{
    check_recv(msg, "private_chat_recv", from, text, offline);
}

void check_group(const json_t *msg, const char *group, const char *from, const char *text,
                 int offline)
{
    check_recv(msg, "group_chat_recv", from, text, offline);
    check_json_str(msg, "group", group);
}

/* The next line must be a push (no id) with this cmd. The caller frees it. */
json_t *read_push(struct test_client *c, const char *cmd)
{
    json_t *msg = check_read_json(c);
    check_json_str(msg, "cmd", cmd);
    check_json_no_key(msg, "id");
    return msg;
}

void expect_private(struct test_client *c, const char *from, const char *text, int offline)
{
    json_t *msg = check_read_json(c);
    check_private(msg, from, text, offline);
    json_decref(msg);
}

void expect_group(struct test_client *c, const char *group, const char *from, const char *text,
                  int offline)
{
    json_t *msg = check_read_json(c);
    check_group(msg, group, from, text, offline);
    json_decref(msg);
}

void expect_presence(struct test_client *c, const char *user, const char *status)
{
    json_t *msg = read_push(c, "presence");
    check_json_str(msg, "user", user);
    check_json_str(msg, "status", status);
    json_decref(msg);
}

void expect_friend_added(struct test_client *c, const char *from)
{
    json_t *msg = read_push(c, "friend_added");
    check_json_str(msg, "user_from", from);
    json_decref(msg);
}

/* msg[key] is an array holding exactly the n names given, in any order. */
void assert_names(const json_t *msg, const char *key, size_t n, ...)
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
        ck_abort_msg("want \"%s\" to be an array of %zu names as given, got %s", key, n,
                     check_dump(msg));
}

/* ---- requests ---- */

/* Send the request json_pack(fmt, ...) makes, with an "id" added, and read the next line:
 * it must be {"cmd":"<cmd>_reply","result":<result>,"id":<the same id>}. Returns the
 * reply; the caller frees it. */
static json_t *call_request(struct test_client *c, const char *result, json_t *req)
{
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
    if (!reply || !check_json_str_is(reply, "cmd", want_cmd) ||
        !check_json_str_is(reply, "result", result) ||
        !json_equal(json_object_get(reply, "id"), id))
        ck_abort_msg("sent %s\nwant {\"cmd\":\"%s\",\"result\":\"%s\",\"id\":%s} as the next line"
                     "\ngot  %s",
                     text, want_cmd, result, check_dump(id), check_dump(reply));
    const json_t *reason = json_object_get(reply, "reason");
    if (reason && !json_is_string(reason))
        ck_abort_msg("\"reason\" must be a string in %s", check_dump(reply));
    free(text);
    json_decref(id);
    json_decref(req);
    return reply;
}

static json_t *vcall(struct test_client *c, const char *result, const char *fmt, va_list ap)
{
    json_error_t error;
    json_t *req = json_vpack_ex(&error, 0, fmt, ap);
    ck_assert_msg(req != NULL, "cannot build a request from %s: %s", fmt, error.text);
    return call_request(c, result, req);
}

json_t *call(struct test_client *c, const char *result, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_t *reply = vcall(c, result, fmt, ap);
    va_end(ap);
    return reply;
}

void expect(struct test_client *c, const char *result, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_decref(vcall(c, result, fmt, ap));
    va_end(ap);
}

void expect_json(struct test_client *c, const char *result, const char *request)
{
    json_error_t error;
    json_t *req = json_loads(request, 0, &error);
    ck_assert_msg(json_is_object(req), "cannot read the request %s: %s", request, error.text);
    json_decref(call_request(c, result, req));
}

/* A failure whose reply must say why. */
void expect_failure_with_reason(struct test_client *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_t *reply = vcall(c, "failure", fmt, ap);
    va_end(ap);
    if (!json_is_string(json_object_get(reply, "reason")))
        ck_abort_msg("want a \"reason\" with the failure in %s", check_dump(reply));
    json_decref(reply);
}

void do_register(struct test_client *c, const char *user, const char *passwd, const char *result)
{
    expect(c, result, "{ssssss}", "cmd", "register", "user", user, "passwd", passwd);
}

json_t *do_login(struct test_client *c, const char *user, const char *passwd, const char *result)
{
    return call(c, result, "{ssssss}", "cmd", "login", "user", user, "passwd", passwd);
}

void do_logout(struct test_client *c)
{
    expect(c, "success", "{ss}", "cmd", "logout");
}

void send_private(struct test_client *c, const char *to, const char *text, const char *result)
{
    expect(c, result, "{ssssss}", "cmd", "private_chat", "user_to", to, "text", text);
}

void send_group(struct test_client *c, const char *group, const char *text, const char *result)
{
    expect(c, result, "{ssssss}", "cmd", "group_chat", "group", group, "text", text);
}

void group_cmd(struct test_client *c, const char *cmd, const char *group, const char *result)
{
    expect(c, result, "{ssss}", "cmd", cmd, "group", group);
}

void add_friend(struct test_client *c, const char *name, const char *result)
{
    expect(c, result, "{ssss}", "cmd", "add_friend", "friend", name);
}

/* Nothing is waiting for this connection: the reply to a ping is the next line. Valid
 * for pushes queued before the last reply someone else got (see the top comment). */
void expect_quiet(struct test_client *c)
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
json_t *settle_all(struct test_client *const *cs, size_t n, const char *user)
{
    char marker[64];
    snprintf(marker, sizeof(marker), "mark %u", ++next_marker); /* fits max_text_bytes = 16 */
    send_private(postman_session(), user, marker, "success");
    json_t *first = NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *before = json_array();
        for (;;) {
            json_t *msg = check_read_json(cs[i]);
            if (check_json_str_is(msg, "cmd", "private_chat_recv") &&
                check_json_str_is(msg, "user_from", "postman") &&
                check_json_str_is(msg, "text", marker)) {
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
            ck_abort_msg("session 1 of %s got %s, session %zu got %s", user, check_dump(first),
                         i + 1, check_dump(before));
        json_decref(before);
    }
    return first;
}

json_t *settle(struct test_client *c, const char *user)
{
    return settle_all(&c, 1, user);
}

void assert_nothing_pending(json_t *got, const char *user)
{
    if (json_array_size(got) != 0)
        ck_abort_msg("want nothing for %s, got %zu messages: %s", user, json_array_size(got),
                     check_dump(got));
    json_decref(got);
}

/* Log in (success) and return what was delivered after the reply (see settle). */
json_t *login_settled(struct test_client *c, const char *user)
{
    json_decref(do_login(c, user, PASSWD, "success"));
    return settle(c, user);
}

/* A new connection, logged in as `user`, which is registered first if `reg`. Nothing
 * may be delivered after the login. */
struct test_client *session_as(const char *user, int reg)
{
    struct test_client *c = connect_client();
    if (reg)
        do_register(c, user, PASSWD, "success");
    assert_nothing_pending(login_settled(c, user), user);
    return c;
}

struct test_client *new_user(const char *user)
{
    return session_as(user, 1);
}

void register_only(const char *user)
{
    struct test_client *c = connect_client();
    do_register(c, user, PASSWD, "success");
    test_client_close(c);
}

struct test_client *second_session(struct test_client *first, const char *user)
{
    struct test_client *c = connect_client();
    json_decref(do_login(c, user, PASSWD, "success"));
    struct test_client *both[] = {first, c};
    assert_nothing_pending(settle_all(both, 2, user), user);
    return c;
}

void make_group(const char *group, struct test_client *creator, struct test_client *member)
{
    group_cmd(creator, "create_group", group, "success");
    group_cmd(member, "join_group", group, "success");
}

/* `arr` holds `n` private messages with these texts, in this order. */
void assert_privates(const json_t *arr, const char *from, const char *const *texts, size_t n,
                     int offline)
{
    if (json_array_size(arr) != n)
        ck_abort_msg("want %zu private messages from %s, got %zu: %s", n, from,
                     json_array_size(arr), check_dump(arr));
    for (size_t i = 0; i < n; i++)
        check_private(json_array_get(arr, i), from, texts[i], offline);
}

void assert_groups(const json_t *arr, const char *group, const char *from, const char *const *texts,
                   size_t n, int offline)
{
    if (json_array_size(arr) != n)
        ck_abort_msg("want %zu messages of group %s, got %zu: %s", n, group, json_array_size(arr),
                     check_dump(arr));
    for (size_t i = 0; i < n; i++)
        check_group(json_array_get(arr, i), group, from, texts[i], offline);
}

/* No two of these messages share a msg_id. */
void assert_distinct_msg_ids(const json_t *arr)
{
    for (size_t i = 0; i < json_array_size(arr); i++)
        for (size_t j = i + 1; j < json_array_size(arr); j++)
            if (json_equal(json_object_get(json_array_get(arr, i), "msg_id"),
                           json_object_get(json_array_get(arr, j), "msg_id")))
                ck_abort_msg("messages %zu and %zu share a msg_id: %s and %s", i, j,
                             check_dump(json_array_get(arr, i)),
                             check_dump(json_array_get(arr, j)));
}

/* ---- numbered texts, for backlogs ---- */

/* Text "seq NNNN" padded to `len` bytes. */
void numbered_text(char *out, size_t len, int i)
{
    snprintf(out, len, "seq %04d ", i);
    size_t used = strlen(out);
    memset(out + used, 'x', len - 1 - used);
    out[len - 1] = '\0';
}

void check_numbered(const json_t *got, const char *cmd, size_t want)
{
    if (json_array_size(got) != want)
        ck_abort_msg("want %zu stored messages, got %zu", want, json_array_size(got));
    for (size_t i = 0; i < want; i++) {
        const json_t *msg = json_array_get(got, i);
        char prefix[32];
        snprintf(prefix, sizeof(prefix), "seq %04zu ", i + 1);
        const char *text = json_string_value(json_object_get(msg, "text"));
        if (!check_json_str_is(msg, "cmd", cmd) || !text ||
            strncmp(text, prefix, strlen(prefix)) != 0)
            ck_abort_msg("stored message %zu out of place: %.200s", i + 1, check_dump(msg));
        assert_offline_flag(msg, 1);
    }
    assert_distinct_msg_ids(got);
}
