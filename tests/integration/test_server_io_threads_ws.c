/* test_server_io_threads_ws.c - black-box tests of WebSocket sessions on the I/O threads
 * ([server] io_threads >= 1): once the loop has answered the upgrade, a thread reads the
 * frames, answers pings, keeps the keepalive, writes the messages and the close frame
 * (docs/architecture.md, "I/O threads"). Each test shows the session's I/O is a thread's,
 * not only that it works: with chatd's loop thread stopped (ptrace), the thread still
 * answers or writes. ws and wss alike; each test starts its own chatd with one thread,
 * whatever CHATD_TEST_IO_THREADS says. */
#include "server_suite.h"
#include "ws_client.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct server_tls tf;

/* chatd with ping and pusher, the [web] listener (over TLS when tls), these lines in
 * [server] and the keepalive's ping interval and pong timeout (0: the defaults). */
static void start_web(int tls, const char *server_conf, int ping_s, int pong_s)
{
    unsetenv("CHATD_TEST_IO_THREADS");
    server_tls_make(&tf);
    char ping[64], pong[64];
    snprintf(ping, sizeof(ping), "web.ping_interval=%d", ping_s);
    snprintf(pong, sizeof(pong), "web.pong_timeout=%d", pong_s);
    const char *const sets[] = {
        tf.cert_set,          tf.key_set,           tls ? "web.tls=yes" : "web.tls=no",
        ping_s ? ping : NULL, pong_s ? pong : NULL, NULL};
    struct chatd_proc_options opts = {.server_conf = server_conf, .sets = sets, .web = 1};
    start_with_pusher_opts(&opts);
}

static void stop_web(void)
{
    stop();
    server_tls_remove(&tf);
}

static void loop_stop(void)
{
    ck_assert(chatd_proc_loop_stop(&srv) == 0);
}

static void loop_resume(void)
{
    ck_assert(chatd_proc_loop_resume(&srv) == 0);
}

static struct ws_client *connect_web(int tls)
{
    struct ws_client *c = ws_client_connect(srv.host, srv.web_port, tls);
    ck_assert_msg(c != NULL, "no WebSocket with chatd");
    return c;
}

/* The next message is a reply `cmd` with id `id`. */
static void expect_reply(struct ws_client *c, const char *cmd, int id)
{
    json_t *reply = ws_client_read_json(c, 5000);
    ck_assert_msg(reply && check_json_str_is(reply, "cmd", cmd), "expected %s, got %s", cmd,
                  check_dump(reply));
    assert_int_id(reply, id);
    json_decref(reply);
}

static void ws_ping_request(struct ws_client *c, int id)
{
    char req[64];
    snprintf(req, sizeof(req), "{\"cmd\":\"ping\",\"id\":%d}", id);
    ck_assert_int_eq(ws_client_send_text(c, req), 0);
}

static json_int_t ws_session_of(struct ws_client *c)
{
    ck_assert_int_eq(ws_client_send_text(c, "{\"cmd\":\"whoami\"}"), 0);
    json_t *me = ws_client_read_json(c, 5000);
    ck_assert_msg(me && check_json_str_is(me, "cmd", "whoami_reply"), "got %s", check_dump(me));
    json_int_t session = json_integer_value(json_object_get(me, "session"));
    json_decref(me);
    return session;
}

/* With the loop stopped, a thread writes 8 MB of pushes to a WebSocket client that
 * reads them only now, and answers the client's ping among them; the request sent with
 * it is answered once the loop goes on. */
static void served_with_the_loop_stopped(int tls)
{
    start_web(tls, "io_threads = 1\nmax_output_bytes = 67108864\n", 0, 0);
    struct test_client *on_loop = connect_client();
    struct ws_client *web = connect_web(tls);
    json_int_t session = ws_session_of(web);
    enum { PUSHES = 2000, SIZE = 4000 };
    flood(on_loop, session, PUSHES, SIZE);
    assert_ping_works(on_loop, 1);

    loop_stop();
    int sent = ws_client_send_frame(web, 1, WS_OP_PING, "beat", 4, 1) == 0;
    sent = sent && ws_client_send_text(web, "{\"cmd\":\"ping\",\"id\":7}") == 0;
    int pushes = 0, pongs = 0;
    struct ws_frame f;
    while ((pushes < PUSHES || pongs == 0) && ws_client_read_frame(web, &f, 5000) == 1) {
        if (f.opcode == WS_OP_PONG)
            pongs += f.len == 4 && memcmp(f.payload, "beat", 4) == 0;
        else if (f.opcode == WS_OP_TEXT)
            pushes++; /* nothing else is sent to this client meanwhile */
    }
    loop_resume();
    ck_assert(sent);
    ck_assert_msg(pushes == PUSHES, "%d of %d pushes came with the loop thread stopped", pushes,
                  PUSHES);
    ck_assert_msg(pongs == 1, "the ping was not answered with the loop thread stopped");
    expect_reply(web, "ping_reply", 7);
    ws_client_close(web);
    test_client_close(on_loop);
    stop_web();
}

START_TEST(a_ws_session_is_served_with_the_loop_stopped)
{
    served_with_the_loop_stopped(0);
}
END_TEST

START_TEST(a_wss_session_is_served_with_the_loop_stopped)
{
    served_with_the_loop_stopped(1);
}
END_TEST

/* Frames that come with the upgrade request, read by the loop before it hands the
 * connection over, are answered, in order, before those read by the thread. */
static void first_frames_with_the_request(int tls)
{
    start_web(tls, "io_threads = 1\n", 0, 0);
    struct ws_client *web = ws_client_open(srv.host, srv.web_port, tls);
    ck_assert(web != NULL);
    char req[512];
    snprintf(req, sizeof(req),
             "GET /ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
             "Origin: %s://%s:%d\r\n\r\n",
             srv.host, srv.web_port, tls ? "https" : "http", srv.host, srv.web_port);
    loop_stop();
    int sent = ws_client_send_raw(web, req, strlen(req)) == 0;
    for (int i = 0; sent && i < 3; i++) {
        char ping[64];
        snprintf(ping, sizeof(ping), "{\"cmd\":\"ping\",\"id\":%d}", 20 + i);
        sent = ws_client_send_text(web, ping) == 0;
    }
    loop_resume();
    ck_assert(sent);
    char head[2048];
    ck_assert_int_eq(ws_client_read_head(web, head, sizeof(head), 5000), 101);
    for (int i = 0; i < 3; i++)
        expect_reply(web, "ping_reply", 20 + i);
    ws_ping_request(web, 30);
    expect_reply(web, "ping_reply", 30);
    ws_client_close(web);
    stop_web();
}

START_TEST(ws_frames_sent_with_the_upgrade_request_are_answered_in_order)
{
    first_frames_with_the_request(0);
}
END_TEST

START_TEST(wss_frames_sent_with_the_upgrade_request_are_answered_in_order)
{
    first_frames_with_the_request(1);
}
END_TEST

/* The keepalive's ping comes from the thread with the loop stopped; unanswered, the
 * session is closed with 1001 and the loop logs why. */
START_TEST(the_keepalive_pings_from_the_thread_and_closes_without_a_pong)
{
    start_web(1, "io_threads = 1\n", 1, 2);
    struct ws_client *quiet = connect_web(1);
    quiet->auto_pong = 0;
    ws_ping_request(quiet, 1);
    expect_reply(quiet, "ping_reply", 1);
    loop_stop();
    struct ws_frame f;
    int pinged = ws_client_read_frame(quiet, &f, 5000) == 1 && f.opcode == WS_OP_PING;
    loop_resume();
    ck_assert_msg(pinged, "no keepalive ping with the loop thread stopped");
    ck_assert_int_eq(ws_client_read_close(quiet, 15000), 1001);
    chatd_proc_wait_log(&srv, "no WebSocket pong within", 1, 5000);
    ws_client_close(quiet);
    struct ws_client *fresh = connect_web(1);
    ws_ping_request(fresh, 2);
    expect_reply(fresh, "ping_reply", 2);
    ws_client_close(fresh);
    stop_web();
}
END_TEST

/* A request and a protocol error behind it, both read by the thread while the loop is
 * stopped: the loop then answers the request and sees the end in one turn, so the
 * session closes once its reply is handed over. The thread drops that reply (nothing
 * goes out after the close frame) and must say so, or the session waits out its flush
 * (5 s) with the connection open. */
static void protocol_error_behind_a_request(int tls)
{
    start_web(tls, "io_threads = 1\n", 0, 0);
    struct ws_client *web = connect_web(tls);
    loop_stop();
    int sent = ws_client_send_text(web, "{\"cmd\":\"ping\",\"id\":1}") == 0;
    sent = sent && ws_client_send_frame(web, 1, 0x3 /* reserved */, NULL, 0, 1) == 0;
    chatd_sleep_ms(200);
    loop_resume();
    ck_assert(sent);
    ck_assert_int_eq(ws_client_read_close(web, 5000), 1002);
    struct ws_frame f;
    ck_assert_msg(ws_client_read_frame(web, &f, 2000) == 0,
                  "the connection was still open 2 s after the close frame");
    ws_client_close(web);
    stop_web();
}

START_TEST(a_ws_protocol_error_behind_a_request_ends_the_connection)
{
    protocol_error_behind_a_request(0);
}
END_TEST

START_TEST(a_wss_protocol_error_behind_a_request_ends_the_connection)
{
    protocol_error_behind_a_request(1);
}
END_TEST

/* A WebSocket reader too slow for its pushes: whole messages (the one being written
 * kept whole), then the slow_reader error, then a close frame. */
START_TEST(a_slow_ws_reader_is_cut_off_after_whole_messages)
{
    start_web(0, "io_threads = 1\nmax_output_bytes = 262144\n", 0, 0);
    struct test_client *on_loop = connect_client();
    struct ws_client *web = connect_web(0);
    json_int_t session = ws_session_of(web);
    flood(on_loop, session, 1000, 4000);
    int messages = 0, slow_reader = 0, close_code = -1;
    struct ws_frame f;
    while (close_code < 0 && ws_client_read_frame(web, &f, 5000) == 1) {
        if (f.opcode == WS_OP_CLOSE) {
            close_code = f.len >= 2 ? (f.payload[0] << 8 | f.payload[1]) : 0;
            break;
        }
        ck_assert_int_eq(f.opcode, WS_OP_TEXT);
        ck_assert_msg(!slow_reader, "a message after the slow_reader error");
        json_error_t error;
        json_t *msg = json_loadb((const char *)f.payload, f.len, 0, &error);
        ck_assert_msg(msg != NULL, "message %d is not whole JSON: %s", messages, error.text);
        slow_reader = check_json_str_is(msg, "result", "slow_reader");
        messages++;
        json_decref(msg);
    }
    ck_assert_msg(slow_reader, "no slow_reader error after %d messages", messages);
    ck_assert_int_lt(messages, 1000);
    ck_assert_int_eq(close_code, 1000);
    assert_ping_works(on_loop, 3);
    ws_client_close(web);
    test_client_close(on_loop);
    stop_web();
}
END_TEST

static Suite *server_io_threads_ws_suite(void)
{
    Suite *s = suite_create("server_io_threads_ws");
    TCase *tc = tcase_create("io_threads_ws");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, a_ws_session_is_served_with_the_loop_stopped);
    tcase_add_test(tc, a_wss_session_is_served_with_the_loop_stopped);
    tcase_add_test(tc, ws_frames_sent_with_the_upgrade_request_are_answered_in_order);
    tcase_add_test(tc, wss_frames_sent_with_the_upgrade_request_are_answered_in_order);
    tcase_add_test(tc, the_keepalive_pings_from_the_thread_and_closes_without_a_pong);
    tcase_add_test(tc, a_slow_ws_reader_is_cut_off_after_whole_messages);
    tcase_add_test(tc, a_ws_protocol_error_behind_a_request_ends_the_connection);
    tcase_add_test(tc, a_wss_protocol_error_behind_a_request_ends_the_connection);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(server_io_threads_ws_suite());
}
