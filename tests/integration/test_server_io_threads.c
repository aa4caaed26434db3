/* test_server_io_threads.c - black-box tests of what [server] io_threads changes: plain
 * TCP sessions read and written on I/O threads (docs/architecture.md, "I/O threads"),
 * while TLS and WebSocket sessions stay on the loop thread. Each test starts its own
 * chatd with the threads it names, whatever CHATD_TEST_IO_THREADS says. */
#include "server_suite.h"
#include "tls_files.h"
#include "ws_client.h"

#include <check.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLIENTS   24
#define PIPELINED 40

/* The test's own value wins: CHATD_TEST_IO_THREADS would come as --set, over the file. */
static void start_threads(const char *server_conf)
{
    unsetenv("CHATD_TEST_IO_THREADS");
    start_with(server_conf);
}

static void start_threads_with_pusher(const char *server_conf)
{
    unsetenv("CHATD_TEST_IO_THREADS");
    start_with_pusher(server_conf);
}

/* Send `n` pings at once (ids first..first+n-1); the replies must come in that order. */
static void send_pings(struct test_client *c, int first, int n)
{
    char *batch = malloc((size_t)n * 40);
    ck_assert(batch != NULL);
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += (size_t)sprintf(batch + len, "{\"cmd\":\"ping\",\"id\":%d}\n", first + i);
    check_send(c, batch, len);
    free(batch);
}

static void expect_pongs(struct test_client *c, int first, int n)
{
    for (int i = 0; i < n; i++) {
        json_t *reply = expect(c, "ping_reply", "success");
        assert_int_id(reply, first + i);
        json_decref(reply);
    }
}

START_TEST(many_clients_on_several_threads_get_their_replies_in_order)
{
    start_threads("io_threads = 3\n");
    chatd_proc_wait_log(&srv, "3 I/O threads for plain TCP sessions", 1, 5000);
    struct test_client *c[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        c[i] = connect_client();
    /* All at once, so that every thread has several sessions with requests waiting. */
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < CLIENTS; i++)
            send_pings(c[i], round * PIPELINED, PIPELINED);
        for (int i = 0; i < CLIENTS; i++)
            expect_pongs(c[i], round * PIPELINED, PIPELINED);
    }
    for (int i = 0; i < CLIENTS; i++)
        test_client_close(c[i]);
    stop();
}
END_TEST

/* The request and the end of the stream arrive together: the thread reads both before
 * the loop takes the bytes, and the end still reaches the session. */
START_TEST(a_request_with_the_end_of_stream_is_answered_then_closed)
{
    start_threads("io_threads = 2\n");
    for (int i = 0; i < 20; i++) {
        struct test_client *c = connect_client();
        check_send_str(c, "{\"cmd\":\"ping\",\"id\":7}");
        ck_assert_int_eq(test_client_shutdown_write(c), 0);
        json_t *reply = expect(c, "ping_reply", "success");
        assert_int_id(reply, 7);
        json_decref(reply);
        ck_assert_msg(test_client_expect_eof(c, 5000), "round %d: the session did not close", i);
        test_client_close(c);
    }
    stop();
}
END_TEST

static json_int_t session_of(struct test_client *c)
{
    check_send_str(c, "{\"cmd\":\"whoami\"}");
    json_t *me = expect(c, "whoami_reply", "success");
    json_int_t session = json_integer_value(json_object_get(me, "session"));
    json_decref(me);
    return session;
}

static void flood(struct test_client *from, json_int_t to, int count, int size)
{
    char text[128];
    snprintf(text, sizeof(text), "{\"cmd\":\"flood\",\"to\":%lld,\"count\":%d,\"size\":%d}",
             (long long)to, count, size);
    check_send_str(from, text);
    json_decref(expect(from, "flood_reply", "success"));
}

START_TEST(clients_that_go_mid_reply_leave_the_others_served)
{
    start_threads_with_pusher("io_threads = 2\n");
    struct test_client *other = connect_client();
    for (int i = 0; i < 10; i++) {
        struct test_client *gone = connect_client();
        json_int_t session = session_of(gone);
        /* A big push on its way when the client resets, and many replies when it only
         * closes: its thread meets a dead socket in the middle of writing. */
        if (i % 2)
            send_pings(gone, 0, 500);
        flood(other, session, 50, 2000);
        if (i % 2)
            test_client_close(gone);
        else
            test_client_reset(gone);
        assert_ping_works(other, i);
    }
    test_client_close(other);
    stop();
}
END_TEST

/* The line being written is the thread's: what follows it is dropped and the client's
 * last line is the slow_reader error. */
START_TEST(a_slow_reader_on_a_thread_is_cut_off_after_whole_lines)
{
    start_threads_with_pusher("io_threads = 2\nmax_output_bytes = 4096\n");
    struct test_client *other = connect_client();
    struct test_client *slow = test_client_connect(srv.host, srv.port, 4096);
    ck_assert(slow != NULL);
    json_int_t session = session_of(slow);
    flood(other, session, 2000, 1000);
    json_t *last = NULL;
    for (;;) {
        json_t *msg = test_client_read_json(slow, 10000);
        if (!msg)
            break;
        json_decref(last);
        last = msg;
    }
    ck_assert_msg(last && check_json_str_is(last, "result", "slow_reader"),
                  "the cut-off client's last line was %s, not the slow_reader error",
                  check_dump(last));
    json_decref(last);
    test_client_close(slow);
    assert_ping_works(other, 1);
    test_client_close(other);
    stop();
}
END_TEST

START_TEST(stop_with_sessions_open_and_output_pending)
{
    start_threads("io_threads = 2\n");
    struct test_client *c[8];
    for (int i = 0; i < 8; i++) {
        c[i] = test_client_connect(srv.host, srv.port, 4096);
        ck_assert(c[i] != NULL);
        assert_ping_works(c[i], i);
        /* Half of them leave replies unread behind them. */
        if (i % 2)
            send_pings(c[i], 100, 300);
    }
    stop();
    for (int i = 0; i < 8; i++)
        test_client_close(c[i]);
}
END_TEST

START_TEST(a_reload_keeps_the_threads_and_says_a_change_needs_a_restart)
{
    start_threads("io_threads = 2\n");
    struct test_client *c = connect_client();
    assert_ping_works(c, 1);
    char *conf = chatd_file_read(srv.config);
    ck_assert(conf != NULL);
    char *at = strstr(conf, "io_threads = 2");
    ck_assert(at != NULL);
    at[strlen("io_threads = ")] = '1';
    ck_assert_int_eq(chatd_file_write(srv.dir, "chatd.conf", conf, NULL, 0), 0);
    free(conf);
    ck_assert_int_eq(chatd_proc_signal(&srv, SIGHUP), 0);
    chatd_proc_wait_log(&srv, "[server] io_threads changed: it needs a restart", 1, 5000);
    assert_ping_works(c, 2);
    struct test_client *fresh = connect_client();
    assert_ping_works(fresh, 3);
    test_client_close(fresh);
    test_client_close(c);
    stop();
}
END_TEST

START_TEST(tls_and_websocket_clients_are_served_beside_the_threads)
{
    unsetenv("CHATD_TEST_IO_THREADS");
    char dir[PATH_MAX], cert[PATH_MAX + 32], key[PATH_MAX + 32];
    ck_assert_int_eq(chatd_tmpdir_make(dir, sizeof(dir)), 0);
    ck_assert_int_eq(test_tls_make_certificate(dir, "server", cert, key, sizeof(cert)), 0);
    char cert_set[PATH_MAX + 64], key_set[PATH_MAX + 64];
    snprintf(cert_set, sizeof(cert_set), "tls.certificate=%s", cert);
    snprintf(key_set, sizeof(key_set), "tls.key=%s", key);
    const char *const sets[] = {cert_set, key_set, "server.io_threads=2", NULL};
    struct chatd_proc_options opts = {.sets = sets, .tls = 1, .web = 1};
    ck_assert_msg(chatd_proc_start(&srv, &opts) == 0, "chatd did not start");

    const struct test_tls_options tls = {.ca_file = cert};
    struct test_client *secure = test_client_connect_tls(srv.host, srv.tls_port, &tls, 0);
    ck_assert(secure != NULL);
    struct test_client *plain = connect_client();
    struct ws_client *web = ws_client_connect(srv.host, srv.web_port, 0);
    ck_assert(web != NULL);
    for (int i = 0; i < 3; i++) {
        assert_ping_works(secure, i);
        assert_ping_works(plain, i);
        ck_assert_int_eq(ws_client_send_text(web, "{\"cmd\":\"ping\",\"id\":5}"), 0);
        json_t *reply = ws_client_read_json(web, 5000);
        ck_assert_msg(reply && check_json_str_is(reply, "cmd", "ping_reply"),
                      "the WebSocket client got %s", check_dump(reply));
        assert_int_id(reply, 5);
        json_decref(reply);
    }
    ws_client_close(web);
    test_client_close(secure);
    test_client_close(plain);
    stop();
    chatd_tmpdir_remove(dir);
}
END_TEST

START_TEST(zero_starts_no_thread_and_auto_follows_the_cores)
{
    start_threads("io_threads = 0\n");
    struct test_client *c = connect_client();
    assert_ping_works(c, 1);
    test_client_close(c);
    ck_assert_int_eq(chatd_proc_log_count(&srv, "I/O thread"), 0);
    stop();

    start_threads("io_threads = auto\n");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long want = cores - 1 < 1 ? 1 : cores - 1 > 16 ? 16 : cores - 1;
    char line[64];
    snprintf(line, sizeof(line), "%ld I/O thread%s for plain TCP sessions", want,
             want == 1 ? "" : "s");
    chatd_proc_wait_log(&srv, line, 1, 5000);
    c = connect_client();
    assert_ping_works(c, 2);
    test_client_close(c);
    stop();
}
END_TEST

static Suite *server_io_threads_suite(void)
{
    Suite *s = suite_create("server_io_threads");
    TCase *tc = tcase_create("io_threads");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, many_clients_on_several_threads_get_their_replies_in_order);
    tcase_add_test(tc, a_request_with_the_end_of_stream_is_answered_then_closed);
    tcase_add_test(tc, clients_that_go_mid_reply_leave_the_others_served);
    tcase_add_test(tc, a_slow_reader_on_a_thread_is_cut_off_after_whole_lines);
    tcase_add_test(tc, stop_with_sessions_open_and_output_pending);
    tcase_add_test(tc, a_reload_keeps_the_threads_and_says_a_change_needs_a_restart);
    tcase_add_test(tc, tls_and_websocket_clients_are_served_beside_the_threads);
    tcase_add_test(tc, zero_starts_no_thread_and_auto_follows_the_cores);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(server_io_threads_suite());
}
