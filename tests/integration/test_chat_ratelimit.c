/* test_chat_ratelimit.c - the [limits] against a real chatd and MariaDB: each limit
 * refuses with rate_limited and a plausible retry_after_ms, a limit switched off lets the
 * same traffic through, failed logins are logged with name and address, and no log line
 * at debug carries a password or a token, however malformed the frame that held it.
 *
 * chatd_proc runs chatd with generous limits; the tests here set tight ones with --set
 * (which come after them). Budgets are per hour, so no bucket refills during a test:
 * no timing matters, except the window in which a refused connection's error line is
 * looked for (open_or_refused), which is generous. */
#include "chat_suite.h"

#include "chatd_proc.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOUR_MS 3600000
/* How long a new connection may take to be refused before it counts as accepted. */
#define REFUSAL_WINDOW_MS 1500

/* Every limit off but the ones a test sets after these. */
#define ALL_OFF                                                                                    \
    "limits.login_per_address=off", "limits.failed_login_per_name=off",                            \
        "limits.requests_per_session=off", "limits.connections_per_address=off",                   \
        "limits.max_connections_per_address=0"

/* reply is rate_limited with a retry_after_ms in (0, max_ms]. */
static void assert_retry_after(const json_t *reply, long long max_ms)
{
    check_json_str(reply, "result", "rate_limited");
    const json_t *retry = json_object_get(reply, "retry_after_ms");
    ck_assert_msg(json_is_integer(retry) && json_integer_value(retry) > 0 &&
                      json_integer_value(retry) <= max_ms + 1,
                  "want retry_after_ms in (0, %lld] in %s", max_ms, check_dump(reply));
}

static json_t *login_as(struct test_client *c, const char *user, const char *passwd,
                        const char *result)
{
    return call(c, result, "{ssssss}", "cmd", "login", "user", user, "passwd", passwd);
}

START_TEST(login_and_register_attempts_per_address_are_limited)
{
    const char *const sets[] = {ALL_OFF, "limits.login_per_address=6/1h", NULL};
    start_chat_with(sets);
    struct test_client *c = connect_client();
    do_register(c, "alice", PASSWD, "success"); /* 1 */
    for (int i = 0; i < 3; i++)                 /* 2, 3, 4 */
        json_decref(login_as(c, "alice", PASSWD, "success"));
    json_decref(login_as(c, "alice", "wrong", "passwd_error")); /* 5 */
    do_register(c, "bob", PASSWD, "success");                   /* 6 */
    /* The seventh attempt of the address, on another connection too: refused, whatever
     * it is, before anything is checked. */
    struct test_client *d = connect_client();
    json_t *reply = login_as(d, "alice", PASSWD, "rate_limited");
    assert_retry_after(reply, HOUR_MS);
    json_decref(reply);
    reply =
        call(d, "rate_limited", "{ssssss}", "cmd", "register", "user", "carol", "passwd", PASSWD);
    assert_retry_after(reply, HOUR_MS);
    json_decref(reply);
    reply = call(d, "rate_limited", "{ssssss}", "cmd", "login", "user", "bob", "token", "x");
    assert_retry_after(reply, HOUR_MS);
    json_decref(reply);
    /* Other commands are not login attempts. */
    expect(c, "success", "{ss}", "cmd", "ping");
    test_client_close(c);
    test_client_close(d);
    stop_chat();
}
END_TEST

START_TEST(failed_logins_per_name_are_limited_but_token_login_still_works)
{
    const char *const sets[] = {ALL_OFF, "limits.failed_login_per_name=3/1h", "log.level=debug",
                                NULL};
    start_chat_with(sets);
    struct test_client *c = connect_client();
    do_register(c, "alice", PASSWD, "success");
    do_register(c, "bob", PASSWD, "success");
    json_t *first = login_as(c, "alice", PASSWD, "success");
    char token[256];
    snprintf(token, sizeof(token), "%s", json_string_value(json_object_get(first, "token")));
    json_decref(first);
    ck_assert_msg(token[0], "login_reply carries no token");

    /* Three failures, one in another case (the same name); the fourth attempt is refused
     * before the password is looked at, the right password too. */
    json_decref(login_as(c, "alice", "guess1", "passwd_error"));
    json_decref(login_as(c, "alice", "guess2", "passwd_error"));
    json_decref(login_as(c, "ALICE", "guess3", "user_not_exist"));
    json_t *reply = login_as(c, "alice", "guess4", "rate_limited");
    assert_retry_after(reply, HOUR_MS);
    json_decref(reply);
    reply = login_as(c, "alice", PASSWD, "rate_limited");
    assert_retry_after(reply, HOUR_MS);
    json_decref(reply);

    /* alice logs in by token all the same, and bob by password. */
    json_decref(call(c, "success", "{ssssss}", "cmd", "login", "user", "alice", "token", token));
    json_decref(login_as(c, "bob", PASSWD, "success"));

    /* Each failure is logged with the name and the address. */
    char *log = chatd_file_read(chat_log_path());
    ck_assert_ptr_nonnull(log);
    ck_assert_msg(
        strstr(log, "failed login for 'alice' from 127.0.0.1:") && strstr(log, "wrong password") &&
            strstr(log, "failed login for 'ALICE' from 127.0.0.1:") && strstr(log, "unknown user"),
        "failed logins not logged:\n%s", log);
    free(log);
    test_client_close(c);
    stop_chat();
}
END_TEST

/* Guesses sent at once, still being hashed, count against the name too: a burst in
 * parallel gets no more through than the limit. Logins that succeed do not count. */
START_TEST(a_parallel_burst_of_guesses_gets_no_more_than_the_name_limit)
{
    const char *const sets[] = {ALL_OFF, "limits.failed_login_per_name=3/1h", NULL};
    start_chat_with(sets);
    struct test_client *c = connect_client();
    do_register(c, "carol", PASSWD, "success");
    for (int i = 0; i < 5; i++)
        json_decref(login_as(c, "carol", PASSWD, "success"));
    enum { BURST = 20 };
    struct test_client *g[BURST];
    for (int i = 0; i < BURST; i++) {
        g[i] = connect_client();
        check_send_str(g[i], "{\"cmd\":\"login\",\"user\":\"carol\",\"passwd\":\"guess\"}");
    }
    int checked = 0, limited = 0;
    for (int i = 0; i < BURST; i++) {
        json_t *msg = test_client_read_json(g[i], 60000);
        ck_assert_msg(msg != NULL, "guess %d: no answer", i);
        const char *result = json_string_value(json_object_get(msg, "result"));
        ck_assert_ptr_nonnull(result);
        checked += strcmp(result, "passwd_error") == 0;
        limited += strcmp(result, "rate_limited") == 0;
        json_decref(msg);
        test_client_close(g[i]);
    }
    ck_assert_msg(checked <= 3 && checked + limited == BURST,
                  "of %d parallel guesses %d were checked, %d rate_limited (limit 3)", BURST,
                  checked, limited);
    test_client_close(c);
    stop_chat();
}
END_TEST

START_TEST(requests_per_session_are_limited)
{
    int admin_port = test_free_port("127.0.0.1");
    char admin[64];
    snprintf(admin, sizeof(admin), "admin.listen=127.0.0.1:%d", admin_port);
    const char *const sets[] = {ALL_OFF, "limits.requests_per_session=10/1h", "admin.enable=yes",
                                admin, NULL};
    start_chat_with(sets);
    struct test_client *c = connect_client();
    for (int i = 0; i < 10; i++)
        expect(c, "success", "{ss}", "cmd", "ping");
    json_t *reply = call(c, "rate_limited", "{ss}", "cmd", "ping");
    assert_retry_after(reply, HOUR_MS);
    json_decref(reply);
    /* Any command, known or not, and the connection stays open. */
    reply = call(c, "rate_limited", "{ss}", "cmd", "no_such_command");
    assert_retry_after(reply, HOUR_MS);
    json_decref(reply);
    /* Another session has its own budget. */
    struct test_client *d = connect_client();
    expect(d, "success", "{ss}", "cmd", "ping");
    /* /metrics counts the refusals by limit. */
    char *metrics = test_http_get(admin_port, "/metrics");
    ck_assert_ptr_nonnull(metrics);
    ck_assert_msg(strstr(metrics, "chatd_rate_limited_total{limit=\"requests_per_session\"} 2\n") &&
                      strstr(metrics, "chatd_rate_limited_total{limit=\"login_per_address\"} 0\n"),
                  "no rate-limit counters in\n%s", metrics);
    free(metrics);
    test_client_close(c);
    test_client_close(d);
    stop_chat();
}
END_TEST

/* A new connection: the one it is (it answered a ping), or NULL with *refusal set to the
 * line chatd sent before closing it. */
static struct test_client *open_or_refused(json_t **refusal)
{
    *refusal = NULL;
    struct test_client *c = connect_client();
    char line[1024];
    ssize_t n = test_client_read_line(c, line, sizeof(line), REFUSAL_WINDOW_MS);
    if (n > 0) {
        *refusal = json_loads(line, 0, NULL);
        ck_assert_msg(*refusal != NULL, "not JSON: %s", line);
        ck_assert_msg(test_client_expect_eof(c, TEST_CLIENT_TIMEOUT_MS),
                      "a refused connection stays open");
        test_client_close(c);
        return NULL;
    }
    ck_assert_int_eq(n, TEST_CLIENT_TIMEOUT);
    expect(c, "success", "{ss}", "cmd", "ping");
    return c;
}

static void assert_connection_refusal(const json_t *refusal)
{
    check_json_str(refusal, "cmd", "error");
    assert_retry_after(refusal, HOUR_MS);
}

START_TEST(new_connections_per_address_are_limited)
{
    /* The readiness probe of chatd_proc took one of the eight. */
    const char *const sets[] = {ALL_OFF, "limits.connections_per_address=8/1h", NULL};
    start_chat_with(sets);
    json_t *refusal = NULL;
    int accepted = 0;
    for (int i = 0; i < 10 && !refusal; i++) {
        struct test_client *c = open_or_refused(&refusal);
        if (c) {
            accepted++;
            test_client_close(c);
        }
    }
    ck_assert_msg(refusal != NULL, "10 connections, none refused");
    ck_assert_int_ge(accepted, 1);
    ck_assert_int_le(accepted, 7);
    assert_connection_refusal(refusal);
    json_decref(refusal);
    stop_chat();
}
END_TEST

START_TEST(concurrent_connections_per_address_are_limited)
{
    const char *const sets[] = {ALL_OFF, "limits.max_connections_per_address=5", NULL};
    start_chat_with(sets);
    struct test_client *open[5];
    json_t *refusal = NULL;
    for (int i = 0; i < 5; i++) {
        open[i] = open_or_refused(&refusal);
        ck_assert_msg(open[i] != NULL, "connection %d of 5 refused", i + 1);
    }
    ck_assert_ptr_null(open_or_refused(&refusal));
    assert_connection_refusal(refusal);
    json_decref(refusal);
    /* Once one closes, there is room again (chatd notices the close in its own time). */
    test_client_close(open[0]);
    struct test_client *again = NULL;
    for (int i = 0; i < 100 && !again; i++) {
        if (i > 0)
            chatd_sleep_ms(50);
        again = open_or_refused(&refusal);
        json_decref(refusal);
    }
    ck_assert_msg(again != NULL, "no room after a connection closed");
    test_client_close(again);
    for (int i = 1; i < 5; i++)
        test_client_close(open[i]);
    stop_chat();
}
END_TEST

START_TEST(limits_switched_off_let_the_traffic_through)
{
    const char *const sets[] = {ALL_OFF, NULL};
    start_chat_with(sets);
    struct test_client *c = connect_client();
    do_register(c, "alice", PASSWD, "success");
    for (int i = 0; i < 40; i++)
        json_decref(login_as(c, "alice", "wrong", "passwd_error"));
    json_decref(login_as(c, "alice", PASSWD, "success"));
    for (int i = 0; i < 300; i++)
        expect(c, "success", "{ss}", "cmd", "ping");
    struct test_client *more[12];
    for (int i = 0; i < 12; i++) {
        json_t *refusal = NULL;
        more[i] = open_or_refused(&refusal);
        ck_assert_msg(more[i] != NULL, "connection %d refused: %s", i + 1, check_dump(refusal));
    }
    for (int i = 0; i < 12; i++)
        test_client_close(more[i]);
    test_client_close(c);
    stop_chat();
}
END_TEST

/* ---- no secret in the log ---- */

#define SECRET "Zq9SECRETpw"

/* Send `frame` on a connection of its own, read what comes until chatd closes it or
 * answers a ping sent after it, and close. */
static void send_and_settle(const char *frame, int close_after)
{
    struct test_client *c = connect_client();
    ck_assert_int_eq(test_client_send_str(c, frame), 0);
    if (close_after) {
        test_client_shutdown_write(c);
        test_client_wait_closed(c, TEST_CLIENT_TIMEOUT_MS);
    } else {
        /* The frame is answered (or the connection closed) before the ping is read. */
        test_client_send_str(c, "{\"cmd\":\"ping\"}");
        char line[4096];
        while (test_client_read_line(c, line, sizeof(line), TEST_CLIENT_TIMEOUT_MS) > 0 &&
               !strstr(line, "ping_reply"))
            ;
    }
    test_client_close(c);
}

/* The start of the line of text that holds `at`. */
static const char *line_start(const char *text, const char *at)
{
    while (at > text && at[-1] != '\n')
        at--;
    return at;
}

START_TEST(no_password_or_token_reaches_the_log)
{
    const char *const sets[] = {ALL_OFF, "log.level=debug", NULL};
    start_chat_with(sets);
    struct test_client *c = connect_client();
    do_register(c, "alice", SECRET "0", "success");
    json_t *reply = login_as(c, "alice", SECRET "0", "success");
    char token[256];
    snprintf(token, sizeof(token), "%s", json_string_value(json_object_get(reply, "token")));
    json_decref(reply);
    ck_assert_msg(token[0], "login_reply carries no token");
    json_decref(call(c, "success", "{ssssss}", "cmd", "login", "user", "alice", "token", token));
    json_decref(login_as(c, "alice", SECRET "1", "passwd_error"));
    json_decref(
        call(c, "token_invalid", "{ssssss}", "cmd", "login", "user", "alice", "token", SECRET "2"));
    json_decref(call(c, "bad_request", "{ssssssss}", "cmd", "login", "user", "alice", "passwd",
                     SECRET "3", "token", SECRET "4"));
    json_decref(
        call(c, "failure", "{ssssss}", "cmd", "register", "user", "al ice", "passwd", SECRET "5"));
    test_client_close(c);

    /* Malformed, truncated, oversized and wrongly typed frames holding secrets. */
    static const char *const frames[] = {
        "{\"cmd\":\"login\",\"user\":\"alice\",\"passwd\":" SECRET "6}",
        "{\"cmd\":\"login\",\"user\":\"alice\",\"passwd\":\"" SECRET "7\",\"passwd\":\"x\"}",
        "{\"cmd\":\"login\",\"user\":\"alice\",\"passwd\":\"" SECRET "8\\u0000\"}",
        "{\"cmd\":\"login\",\"user\":[\"" SECRET "9\"],\"passwd\":\"" SECRET "10\"}",
        "{\"cmd\":\"register\",\"user\":\"bob\",\"passwd\":[\"" SECRET "11\"]}",
        "{\"cmd\":\"logout\",\"all\":\"" SECRET "12\",\"token\":\"" SECRET "13\"}",
        "{\"cmd\":\"login\",\"user\":\"alice\",\"token\":" SECRET "14\"}",
        "{\"cmd\":\"login\",\"user\":\"alice\",\"passwd\":\"" SECRET "15\"]",
        "{\"cmd\":\"login\",\"user\":\"alice\",\"passwd\":\"" SECRET "16\",\"n\":1e999999}",
        "{\"cmd\":\"register\",\"passwd\":\"" SECRET "17\" \"user\":\"bob\"}",
        "{\"passwd\":\"" SECRET "18\",\"cmd\":5}",
        "[\"" SECRET "19\"]",
    };
    for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++)
        send_and_settle(frames[i], 0);
    send_and_settle("{\"cmd\":\"login\",\"user\":\"alice\",\"passwd\":\"" SECRET "20", 1);
    send_and_settle("{\"cmd\":\"logout\",\"token\":\"" SECRET "21\",", 1);
    /* Over max_frame_bytes (64 KiB in the sample config). */
    size_t big = 70000;
    char *frame = malloc(big + 1);
    ck_assert_ptr_nonnull(frame);
    int n = snprintf(frame, big, "{\"cmd\":\"login\",\"user\":\"alice\",\"passwd\":\"" SECRET "22");
    memset(frame + n, 'x', big - (size_t)n);
    frame[big] = '\0';
    send_and_settle(frame, 1);
    free(frame);

    char *log = chatd_file_read(chat_log_path());
    ck_assert_ptr_nonnull(log);
    ck_assert_msg(strstr(log, "accepted from") != NULL, "the log is not at debug");
    const char *found = strstr(log, "Zq9");
    ck_assert_msg(!found, "a password in the log: %.200s", found ? line_start(log, found) : "");
    found = strstr(log, token);
    ck_assert_msg(!found, "a token in the log: %.200s", found ? line_start(log, found) : "");
    free(log);
    stop_chat();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("chat_ratelimit");
    /* Generous bounds: a test waits at most some seconds unless something is wrong. */
    TCase *tc = tcase_create("limits");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, login_and_register_attempts_per_address_are_limited);
    tcase_add_test(tc, failed_logins_per_name_are_limited_but_token_login_still_works);
    tcase_add_test(tc, a_parallel_burst_of_guesses_gets_no_more_than_the_name_limit);
    tcase_add_test(tc, requests_per_session_are_limited);
    tcase_add_test(tc, new_connections_per_address_are_limited);
    tcase_add_test(tc, concurrent_connections_per_address_are_limited);
    tcase_add_test(tc, limits_switched_off_let_the_traffic_through);
    tcase_add_test(tc, no_password_or_token_reaches_the_log);
    suite_add_tcase(s, tc);
    return chatd_proc_run_suite(s);
}
