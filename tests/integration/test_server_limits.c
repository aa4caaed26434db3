/* test_server_limits.c - black-box tests of the real chatd binary's connection limits:
 * max_connections, the idle timeout, and backpressure (a client that does not read is cut
 * off, one that reads slowly is throttled). Each test starts its own chatd on a free port
 * with a config of its own. */
#include "server_suite.h"

#include <check.h>
#include <string.h>

/* ---- connections and timeouts ---- */

START_TEST(connections_over_max_connections_get_busy_and_are_closed)
{
    start_with("max_connections = 2\n");
    struct test_client *a = connect_client();
    assert_ping_works(a, 1);
    struct test_client *b = connect_client();
    assert_ping_works(b, 2);

    struct test_client *extra = connect_client();
    expect_error(extra, "busy");
    assert_closed(extra);
    test_client_close(extra);

    assert_ping_works(a, 3);
    assert_ping_works(b, 4);

    /* Once a slot is free again, a new client is served. chatd frees the slot when it
     * notices the close, so allow it a moment (bounded) to do so. */
    test_client_close(a);
    long long deadline = chatd_now_ms() + 5000;
    int served = 0;
    while (!served && chatd_now_ms() < deadline) {
        struct test_client *c = connect_client();
        check_send_str(c, "{\"cmd\":\"ping\",\"id\":5}");
        json_t *msg = check_read_json(c);
        const char *cmd = json_string_value(json_object_get(msg, "cmd"));
        served = cmd && strcmp(cmd, "ping_reply") == 0;
        json_decref(msg);
        test_client_close(c);
        if (!served)
            chatd_sleep_ms(50);
    }
    ck_assert_msg(served, "a freed connection slot was never reused");
    assert_ping_works(b, 6);
    test_client_close(b);
    stop();
}
END_TEST

START_TEST(idle_connection_is_closed_after_idle_timeout)
{
    start_with("idle_timeout = 1\n");
    /* One client never sends a byte, the other goes quiet after a ping. */
    struct test_client *silent = connect_client();
    struct test_client *quiet = connect_client();
    assert_ping_works(quiet, 1);
    ck_assert_msg(test_client_expect_eof(silent, 5000),
                  "a client that never sent anything was not disconnected within 5 s");
    ck_assert_msg(test_client_expect_eof(quiet, 5000),
                  "a client idle since its ping was not disconnected within 5 s");
    test_client_close(silent);
    test_client_close(quiet);
    struct test_client *fresh = connect_client();
    assert_ping_works(fresh, 2);
    test_client_close(fresh);
    stop();
}
END_TEST

START_TEST(active_connection_outlives_idle_timeout)
{
    start_with("idle_timeout = 2\n");
    struct test_client *c = connect_client();
    /* A ping every 250 ms for 3.5 s: well past the timeout, never idle for long. */
    for (int i = 0; i < 14; i++) {
        assert_ping_works(c, i);
        chatd_sleep_ms(250);
    }
    assert_ping_works(c, 99);
    test_client_close(c);
    stop();
}
END_TEST

/* ---- backpressure ---- */

START_TEST(slow_reader_is_disconnected_and_others_keep_working)
{
    start_with_pusher("max_output_bytes = 4096\n");
    struct test_client *other = connect_client();
    assert_ping_works(other, 1);

    /* A small receive buffer, and no reading after learning its session id: pushes
     * meant for it pile up in chatd, far beyond max_output_bytes. */
    struct test_client *slow = test_client_connect(srv.host, srv.port, 4096);
    ck_assert(slow != NULL);
    check_send_str(slow, "{\"cmd\":\"whoami\"}");
    json_t *me = expect(slow, "whoami_reply", "success");
    json_int_t session = json_integer_value(json_object_get(me, "session"));
    json_decref(me);

    char flood[128];
    snprintf(flood, sizeof(flood), "{\"cmd\":\"flood\",\"to\":%lld,\"count\":2000,\"size\":1000}",
             (long long)session);
    check_send_str(other, flood);
    json_t *reply = expect(other, "flood_reply", "success");
    json_int_t sent = json_integer_value(json_object_get(reply, "sent"));
    json_decref(reply);
    ck_assert_msg(sent < 2000, "all %lld pushes were queued: the slow reader was not cut off",
                  (long long)sent);

    long lines = test_client_wait_closed(slow, 10000);
    ck_assert_msg(lines >= 0, "chatd did not disconnect a client that does not read");
    test_client_close(slow);

    assert_ping_works(other, 3);
    struct test_client *late = connect_client();
    assert_ping_works(late, 4);
    test_client_close(late);
    test_client_close(other);
    stop();
}
END_TEST

START_TEST(pipelining_client_that_reads_is_throttled_not_disconnected)
{
    /* 300 replies of ~40 bytes are three times max_output_bytes: chatd must take the
     * requests as fast as the client reads the replies, not cut it off. */
    start_with("max_output_bytes = 4096\n");
    struct test_client *c = connect_client();
    enum { PINGS = 300 };
    static const char ping[] = "{\"cmd\":\"ping\",\"id\":7}";
    char burst[sizeof(ping) * PINGS];
    for (size_t i = 0; i < PINGS; i++)
        memcpy(burst + i * (sizeof(ping) - 1), ping, sizeof(ping) - 1);
    check_send(c, burst, (sizeof(ping) - 1) * PINGS);
    for (int i = 0; i < PINGS; i++) {
        json_t *msg = expect(c, "ping_reply", "success");
        assert_int_id(msg, 7);
        json_decref(msg);
    }
    assert_ping_works(c, 8);
    test_client_close(c);
    stop();
}
END_TEST

static Suite *server_limits_suite(void)
{
    Suite *s = suite_create("server_limits");

    /* Generous bounds: a test waits at most a few seconds unless something is wrong. */
    TCase *tc = tcase_create("limits");
    tcase_set_timeout(tc, 40);
    tcase_add_test(tc, connections_over_max_connections_get_busy_and_are_closed);
    tcase_add_test(tc, idle_connection_is_closed_after_idle_timeout);
    tcase_add_test(tc, active_connection_outlives_idle_timeout);
    tcase_add_test(tc, slow_reader_is_disconnected_and_others_keep_working);
    tcase_add_test(tc, pipelining_client_that_reads_is_throttled_not_disconnected);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(server_limits_suite());
}
