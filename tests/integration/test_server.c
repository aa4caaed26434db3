/* test_server.c - black-box tests of the real chatd binary over TCP: the framing and
 * generic errors of the wire contract, the connection limits, signals and the command
 * line. Each test starts its own chatd on a free port with a config of its own. */
#include "chatd_proc.h"
#include "client.h"

#include <chatd/plugin.h>

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The server under test; each test runs in its own forked process. */
static struct chatd_proc srv;

static void start_with(const char *server_conf)
{
    struct chatd_proc_options opts = {.server_conf = server_conf};
    ck_assert_msg(chatd_proc_start(&srv, &opts) == 0, "chatd did not start");
}

static void start(void)
{
    start_with(NULL);
}

/* Stop the server with SIGTERM: it must exit 0 (under sanitizers, also leak-free). */
static void stop(void)
{
    int rc = chatd_proc_stop(&srv, CHATD_PROC_STOP_TIMEOUT_MS);
    chatd_proc_cleanup(&srv);
    ck_assert_msg(rc == 0, "chatd exited with %d after SIGTERM, want 0", rc);
}

static struct test_client *connect_client(void)
{
    struct test_client *c = test_client_connect(srv.host, srv.port, 0);
    ck_assert_msg(c != NULL, "cannot connect to chatd on port %d", srv.port);
    return c;
}

static void send_str(struct test_client *c, const char *text)
{
    ck_assert_msg(test_client_send_str(c, text) == 0, "send failed: %s", strerror(errno));
}

static void send_bytes(struct test_client *c, const void *data, size_t len)
{
    ck_assert_msg(test_client_send(c, data, len, TEST_CLIENT_TIMEOUT_MS) == 0, "send failed: %s",
                  strerror(errno));
}

static json_t *read_reply(struct test_client *c)
{
    json_t *msg = test_client_read_json(c, TEST_CLIENT_TIMEOUT_MS);
    ck_assert_msg(msg != NULL, "no reply line from chatd");
    return msg;
}

static void assert_str(const json_t *msg, const char *key, const char *want)
{
    const json_t *v = json_object_get(msg, key);
    char *text = json_dumps(msg, JSON_COMPACT | JSON_ENCODE_ANY);
    ck_assert_msg(json_is_string(v) && strcmp(json_string_value(v), want) == 0,
                  "want \"%s\":\"%s\" in %s", key, want, text ? text : "?");
    free(text);
}

static void assert_no_key(const json_t *msg, const char *key)
{
    char *text = json_dumps(msg, JSON_COMPACT);
    ck_assert_msg(json_object_get(msg, key) == NULL, "want no \"%s\" in %s", key,
                  text ? text : "?");
    free(text);
}

static void assert_int_id(const json_t *msg, json_int_t want)
{
    const json_t *id = json_object_get(msg, "id");
    char *text = json_dumps(msg, JSON_COMPACT);
    ck_assert_msg(json_is_integer(id) && json_integer_value(id) == want,
                  "want \"id\":%lld (an integer) in %s", (long long)want, text ? text : "?");
    free(text);
}

/* Read one reply and check its cmd and result; the caller may check more, then frees. */
static json_t *expect(struct test_client *c, const char *cmd, const char *result)
{
    json_t *msg = read_reply(c);
    assert_str(msg, "cmd", cmd);
    assert_str(msg, "result", result);
    return msg;
}

/* Read one line and check only its cmd (pushes carry no result). */
static json_t *expect_cmd(struct test_client *c, const char *cmd)
{
    json_t *msg = read_reply(c);
    assert_str(msg, "cmd", cmd);
    return msg;
}

static void expect_error(struct test_client *c, const char *result)
{
    json_decref(expect(c, "error", result));
}

/* The reply to {"cmd":"ping","id":id} comes back with that id. */
static void assert_ping_works(struct test_client *c, int id)
{
    char req[64];
    snprintf(req, sizeof(req), "{\"cmd\":\"ping\",\"id\":%d}", id);
    send_str(c, req);
    json_t *msg = expect(c, "ping_reply", "success");
    assert_int_id(msg, id);
    json_decref(msg);
}

/* After an error that ends the connection, nothing more comes and the stream ends. */
static void assert_closed(struct test_client *c)
{
    ck_assert_msg(test_client_expect_eof(c, TEST_CLIENT_TIMEOUT_MS),
                  "chatd did not close the connection");
}

/* ---- ping and reply lines ---- */

START_TEST(ping_echoes_integer_id)
{
    start();
    struct test_client *c = connect_client();
    send_str(c, "{\"cmd\":\"ping\",\"id\":42}");
    json_t *msg = expect(c, "ping_reply", "success");
    assert_int_id(msg, 42);
    json_decref(msg);
    /* A large integer comes back as the same integer. */
    send_str(c, "{\"cmd\":\"ping\",\"id\":9007199254740993}");
    msg = expect(c, "ping_reply", "success");
    assert_int_id(msg, 9007199254740993LL);
    json_decref(msg);
    test_client_close(c);
    stop();
}
END_TEST

START_TEST(ping_echoes_string_id)
{
    start();
    struct test_client *c = connect_client();
    send_str(c, "{\"cmd\":\"ping\",\"id\":\"req-7 \\u00e9\\n\"}");
    json_t *msg = expect(c, "ping_reply", "success");
    assert_str(msg, "id", "req-7 \xc3\xa9\n");
    json_decref(msg);
    test_client_close(c);
    stop();
}
END_TEST

START_TEST(ping_without_id_has_no_id)
{
    start();
    struct test_client *c = connect_client();
    send_str(c, "{\"cmd\":\"ping\"}");
    json_t *msg = expect(c, "ping_reply", "success");
    assert_no_key(msg, "id");
    json_decref(msg);
    test_client_close(c);
    stop();
}
END_TEST

START_TEST(reply_is_exactly_one_line)
{
    start();
    struct test_client *c = connect_client();
    /* An id holding a newline must be escaped in the reply, never sent raw. */
    send_str(c, "{\"cmd\":\"ping\",\"id\":\"a\\nb\"}");
    char line[4096];
    ssize_t n = test_client_read_line(c, line, sizeof(line), TEST_CLIENT_TIMEOUT_MS);
    ck_assert_msg(n > 1, "no reply line (%zd)", n);
    ck_assert_msg(line[n - 1] == '\n', "the reply does not end in \\n");
    ck_assert_msg(memchr(line, '\n', (size_t)n - 1) == NULL, "a raw newline inside the reply");
    ck_assert_msg(memchr(line, '\r', (size_t)n) == NULL, "a raw \\r in the reply");
    json_error_t error;
    json_t *msg = json_loadb(line, (size_t)n - 1, 0, &error);
    ck_assert_msg(json_is_object(msg), "the line is not one JSON object: %s", line);
    assert_str(msg, "cmd", "ping_reply");
    assert_str(msg, "id", "a\nb");
    json_decref(msg);
    /* Nothing else follows the line: the next line is the next reply. */
    assert_ping_works(c, 2);
    test_client_close(c);
    stop();
}
END_TEST

/* ---- framing of the request stream ---- */

START_TEST(pings_back_to_back_get_one_line_each_in_order)
{
    start();
    struct test_client *c = connect_client();
    send_str(c, "{\"cmd\":\"ping\",\"id\":1}{\"cmd\":\"ping\",\"id\":2}{\"id\":3,\"cmd\":\"ping\"}"
                "{\"cmd\":\"ping\",\"id\":\"four\"}");
    for (int i = 1; i <= 3; i++) {
        json_t *msg = expect(c, "ping_reply", "success");
        assert_int_id(msg, i);
        json_decref(msg);
    }
    json_t *msg = expect(c, "ping_reply", "success");
    assert_str(msg, "id", "four");
    json_decref(msg);
    test_client_close(c);
    stop();
}
END_TEST

START_TEST(multi_line_indented_pings_are_accepted)
{
    start();
    struct test_client *c = connect_client();
    /* As the original desktop client sent them: indented, one object after another. */
    send_str(c, "{\n"
                "    \"cmd\": \"ping\",\n"
                "    \"id\": 1\n"
                "}{\n"
                "\t\"cmd\" : \"ping\",\r\n"
                "\t\"id\" : 2\r\n"
                "}\r\n"
                "\n"
                "   {\n"
                "        \"id\": 3,\n"
                "        \"cmd\": \"ping\"\n"
                "   }\n");
    for (int i = 1; i <= 3; i++) {
        json_t *msg = expect(c, "ping_reply", "success");
        assert_int_id(msg, i);
        json_decref(msg);
    }
    test_client_close(c);
    stop();
}
END_TEST

START_TEST(pings_split_into_single_bytes_are_reassembled)
{
    start();
    struct test_client *c = connect_client();
    /* Strings with escaped quotes and braces must not end a value early. */
    static const char stream[] = "{\"cmd\":\"ping\",\"id\":\"a\\\"}{b\\\\\"}\n"
                                 "  {\"cmd\" : \"ping\", \"id\" : 2}";
    for (size_t i = 0; i < sizeof(stream) - 1; i++) {
        send_bytes(c, &stream[i], 1);
        chatd_sleep_ms(2);
    }
    json_t *msg = expect(c, "ping_reply", "success");
    assert_str(msg, "id", "a\"}{b\\");
    json_decref(msg);
    msg = expect(c, "ping_reply", "success");
    assert_int_id(msg, 2);
    json_decref(msg);
    test_client_close(c);
    stop();
}
END_TEST

/* ---- generic errors that keep the connection ---- */

START_TEST(non_object_values_get_bad_request_and_connection_stays_open)
{
    start();
    struct test_client *c = connect_client();
    /* A bare number or literal ends at the next non-scalar byte, here a space or '\n'. */
    static const char *const values[] = {
        "[1,2,{\"cmd\":\"ping\"}]", "\"ping\"", "42 ", "-1.5e3\n", "null ", "true ", "[]",
    };
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        send_str(c, values[i]);
        json_t *msg = expect(c, "error", "bad_request");
        assert_no_key(msg, "id");
        json_decref(msg);
    }
    assert_ping_works(c, 1);
    test_client_close(c);
    stop();
}
END_TEST

START_TEST(object_without_cmd_gets_bad_request_with_id)
{
    start();
    struct test_client *c = connect_client();
    send_str(c, "{\"id\":7}");
    json_t *msg = expect(c, "error", "bad_request");
    assert_int_id(msg, 7);
    json_decref(msg);
    send_str(c, "{\"id\":\"x\",\"command\":\"ping\"}");
    msg = expect(c, "error", "bad_request");
    assert_str(msg, "id", "x");
    json_decref(msg);
    send_str(c, "{}");
    msg = expect(c, "error", "bad_request");
    assert_no_key(msg, "id");
    json_decref(msg);
    assert_ping_works(c, 1);
    test_client_close(c);
    stop();
}
END_TEST

START_TEST(non_string_cmd_gets_bad_request_with_id)
{
    start();
    struct test_client *c = connect_client();
    send_str(c, "{\"cmd\":5,\"id\":8}");
    json_t *msg = expect(c, "error", "bad_request");
    assert_int_id(msg, 8);
    json_decref(msg);
    send_str(c, "{\"cmd\":null,\"id\":\"s\"}");
    msg = expect(c, "error", "bad_request");
    assert_str(msg, "id", "s");
    json_decref(msg);
    send_str(c, "{\"cmd\":[\"ping\"]}");
    msg = expect(c, "error", "bad_request");
    assert_no_key(msg, "id");
    json_decref(msg);
    send_str(c, "{\"cmd\":{\"name\":\"ping\"},\"id\":9}");
    msg = expect(c, "error", "bad_request");
    assert_int_id(msg, 9);
    json_decref(msg);
    assert_ping_works(c, 1);
    test_client_close(c);
    stop();
}
END_TEST

START_TEST(id_of_wrong_type_gets_bad_request)
{
    start();
    struct test_client *c = connect_client();
    static const char *const requests[] = {
        "{\"cmd\":\"ping\",\"id\":1.5}",  "{\"cmd\":\"ping\",\"id\":{\"n\":1}}",
        "{\"cmd\":\"ping\",\"id\":[1]}",  "{\"cmd\":\"ping\",\"id\":true}",
        "{\"cmd\":\"ping\",\"id\":null}",
    };
    for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
        send_str(c, requests[i]);
        expect_error(c, "bad_request");
    }
    assert_ping_works(c, 1);
    test_client_close(c);
    stop();
}
END_TEST

START_TEST(unknown_cmd_is_named_and_connection_stays_open)
{
    start();
    struct test_client *c = connect_client();
    send_str(c, "{\"cmd\":\"no_such_cmd\",\"id\":9}");
    json_t *msg = expect(c, "error", "unknown_cmd");
    assert_str(msg, "request", "no_such_cmd");
    assert_int_id(msg, 9);
    json_decref(msg);
    /* A command of the original protocol whose plugin is not enabled (only ping is). */
    send_str(c, "{\"cmd\":\"register\",\"user\":\"LiHua\",\"passwd\":\"11111\",\"id\":\"r\"}");
    msg = expect(c, "error", "unknown_cmd");
    assert_str(msg, "request", "register");
    assert_str(msg, "id", "r");
    json_decref(msg);
    send_str(c, "{\"cmd\":\"PING\"}");
    msg = expect(c, "error", "unknown_cmd");
    assert_str(msg, "request", "PING");
    assert_no_key(msg, "id");
    json_decref(msg);
    assert_ping_works(c, 1);
    test_client_close(c);
    stop();
}
END_TEST

/* ---- errors that end the connection ---- */

START_TEST(bad_json_is_answered_then_connection_closed)
{
    start();
    static const char *const inputs[] = {
        "{bad}",
        "{\"cmd\":\"ping\",}",
        "}",
        "{\"cmd\":\"ping\",\"id\":1]",
    };
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        struct test_client *c = connect_client();
        send_str(c, inputs[i]);
        expect_error(c, "bad_json");
        assert_closed(c);
        test_client_close(c);
    }
    stop();
}
END_TEST

START_TEST(invalid_utf8_is_bad_json_then_closed)
{
    start();
    struct test_client *c = connect_client();
    send_str(c, "{\"cmd\":\"ping\",\"id\":\"\xff\xfe\"}");
    expect_error(c, "bad_json");
    assert_closed(c);
    test_client_close(c);
    /* An overlong encoding of '/' is not valid UTF-8 either. */
    c = connect_client();
    send_str(c, "{\"cmd\":\"ping\",\"id\":\"\xc0\xaf\"}");
    expect_error(c, "bad_json");
    assert_closed(c);
    test_client_close(c);
    stop();
}
END_TEST

START_TEST(truncated_object_at_eof_is_bad_json_then_closed)
{
    start();
    struct test_client *c = connect_client();
    send_str(c, "{\"cmd\":\"ping\",\"id\":1}{\"cmd\":\"pi");
    ck_assert_int_eq(test_client_shutdown_write(c), 0);
    /* The complete request before the cut is still answered. */
    json_t *msg = expect(c, "ping_reply", "success");
    assert_int_id(msg, 1);
    json_decref(msg);
    expect_error(c, "bad_json");
    assert_closed(c);
    test_client_close(c);
    stop();
}
END_TEST

START_TEST(replies_before_bad_json_are_delivered_in_order)
{
    start();
    struct test_client *c = connect_client();
    send_str(
        c,
        "{\"cmd\":\"ping\",\"id\":1}{\"cmd\":\"ping\",\"id\":2}{bad}{\"cmd\":\"ping\",\"id\":3}");
    for (int i = 1; i <= 2; i++) {
        json_t *msg = expect(c, "ping_reply", "success");
        assert_int_id(msg, i);
        json_decref(msg);
    }
    expect_error(c, "bad_json");
    assert_closed(c);
    test_client_close(c);
    stop();
}
END_TEST

/* A ping request of exactly `size` bytes: {"cmd":"ping","id":N,"pad":"xxx..."}. */
static char *sized_ping(size_t size, int id)
{
    char head[64];
    int n = snprintf(head, sizeof(head), "{\"cmd\":\"ping\",\"id\":%d,\"pad\":\"", id);
    ck_assert(n > 0 && (size_t)n + 2 <= size);
    char *req = malloc(size + 1);
    ck_assert(req != NULL);
    memcpy(req, head, (size_t)n);
    memset(req + n, 'x', size - (size_t)n - 2);
    memcpy(req + size - 2, "\"}", 3);
    ck_assert_uint_eq(strlen(req), size);
    return req;
}

START_TEST(frame_over_max_frame_bytes_is_refused_then_closed)
{
    start_with("max_frame_bytes = 1024\n");
    static const size_t fine[] = {1000, 1024};
    for (size_t i = 0; i < 2; i++) {
        struct test_client *c = connect_client();
        char *req = sized_ping(fine[i], (int)fine[i]);
        send_str(c, req);
        free(req);
        json_t *msg = expect(c, "ping_reply", "success");
        assert_int_id(msg, (json_int_t)fine[i]);
        json_decref(msg);
        assert_ping_works(c, 1);
        test_client_close(c);
    }
    static const size_t too_large[] = {2000, 1025};
    for (size_t i = 0; i < 2; i++) {
        struct test_client *c = connect_client();
        char *req = sized_ping(too_large[i], 1);
        send_str(c, req);
        free(req);
        expect_error(c, "frame_too_large");
        assert_closed(c);
        test_client_close(c);
    }
    stop();
}
END_TEST

/* ---- limits ---- */

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
        send_str(c, "{\"cmd\":\"ping\",\"id\":5}");
        json_t *msg = read_reply(c);
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

/* A server with the pusher fixture plugin, which pushes to any session on request. */
static void start_with_pusher(const char *server_conf)
{
    struct chatd_proc_options opts = {
        .server_conf = server_conf, .enable = "ping, pusher", .plugin_dir = CHATD_FIXTURE_DIR};
    ck_assert_msg(chatd_proc_start(&srv, &opts) == 0, "chatd did not start");
}

START_TEST(slow_reader_is_disconnected_and_others_keep_working)
{
    start_with_pusher("max_output_bytes = 4096\n");
    struct test_client *other = connect_client();
    assert_ping_works(other, 1);

    /* A small receive buffer, and no reading after learning its session id: pushes
     * meant for it pile up in chatd, far beyond max_output_bytes. */
    struct test_client *slow = test_client_connect(srv.host, srv.port, 4096);
    ck_assert(slow != NULL);
    send_str(slow, "{\"cmd\":\"whoami\"}");
    json_t *me = expect(slow, "whoami_reply", "success");
    json_int_t session = json_integer_value(json_object_get(me, "session"));
    json_decref(me);

    char flood[128];
    snprintf(flood, sizeof(flood), "{\"cmd\":\"flood\",\"to\":%lld,\"count\":2000,\"size\":1000}",
             (long long)session);
    send_str(other, flood);
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
    send_bytes(c, burst, (sizeof(ping) - 1) * PINGS);
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

START_TEST(valid_json_the_server_cannot_hold_gets_bad_request_and_stays_open)
{
    start();
    struct test_client *c = connect_client();
    static const char *const values[] = {
        "{\"cmd\":\"ping\",\"id\":\"a\\u0000b\"}",
        "{\"cmd\":\"ping\",\"id\":99999999999999999999}",
        "{\"cmd\":\"ping\",\"x\":1e400}",
        "{\"cmd\":\"ping\",\"id\":1,\"id\":2}",
    };
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        send_str(c, values[i]);
        json_t *msg = expect(c, "error", "bad_request");
        ck_assert(json_is_string(json_object_get(msg, "reason")));
        json_decref(msg);
    }
    assert_ping_works(c, 1);
    test_client_close(c);
    stop();
}
END_TEST

START_TEST(bare_number_at_end_of_stream_is_bad_request)
{
    start();
    struct test_client *c = connect_client();
    send_str(c, "{\"cmd\":\"ping\",\"id\":1} 42");
    ck_assert_int_eq(test_client_shutdown_write(c), 0);
    json_t *msg = expect(c, "ping_reply", "success");
    json_decref(msg);
    msg = expect(c, "error", "bad_request");
    json_decref(msg);
    assert_closed(c);
    test_client_close(c);
    stop();
}
END_TEST

/* A server with the rules fixture plugin. */
static void start_with_rules(const char *extra_conf)
{
    struct chatd_proc_options opts = {
        .enable = "ping, rules", .plugin_dir = CHATD_FIXTURE_DIR, .extra_conf = extra_conf};
    ck_assert_msg(chatd_proc_start(&srv, &opts) == 0, "chatd did not start");
}

START_TEST(host_enforces_login_user_from_and_fields_before_the_plugin)
{
    start_with_rules(NULL);
    struct test_client *c = connect_client();
    send_str(c, "{\"cmd\":\"needs_login\",\"text\":\"hi\",\"id\":1}");
    json_t *msg = expect(c, "needs_login_reply", "not_logged_in");
    assert_int_id(msg, 1);
    json_decref(msg);
    /* The plugin's field table is checked only for a session allowed to run it. */
    send_str(c, "{\"cmd\":\"needs_login\",\"user_from\":\"mallory\",\"id\":2}");
    msg = expect(c, "needs_login_reply", "not_logged_in");
    assert_int_id(msg, 2);
    json_decref(msg);
    assert_ping_works(c, 3);
    test_client_close(c);
    stop();
}
END_TEST

START_TEST(unanswered_request_is_answered_internal)
{
    start_with_rules(NULL);
    struct test_client *c = connect_client();
    send_str(c, "{\"cmd\":\"forget\",\"id\":\"f\"}");
    json_t *msg = expect(c, "forget_reply", "internal");
    ck_assert_str_eq(json_string_value(json_object_get(msg, "id")), "f");
    json_decref(msg);
    assert_ping_works(c, 1);
    test_client_close(c);
    stop();
}
END_TEST

START_TEST(second_reply_is_refused_and_never_sent)
{
    start_with_rules(NULL);
    struct test_client *c = connect_client();
    send_str(c, "{\"cmd\":\"twice\",\"id\":9}");
    json_t *msg = expect(c, "twice_reply", "success");
    assert_no_key(msg, "extra");
    json_decref(msg);
    msg = expect_cmd(c, "twice_result");
    ck_assert_int_eq(json_integer_value(json_object_get(msg, "rc")), CHATD_ESTATE);
    json_decref(msg);
    assert_ping_works(c, 10);
    test_client_close(c);
    stop();
}
END_TEST

START_TEST(pushes_carry_no_id)
{
    start_with_rules(NULL);
    struct test_client *c = connect_client();
    send_str(c, "{\"cmd\":\"push_self\",\"id\":4}");
    json_t *msg = expect_cmd(c, "pushed");
    assert_no_key(msg, "id");
    json_decref(msg);
    msg = expect(c, "push_self_reply", "success");
    assert_int_id(msg, 4);
    json_decref(msg);
    test_client_close(c);
    stop();
}
END_TEST

START_TEST(full_job_queue_answers_busy_at_once)
{
    start_with_rules("[database]\nworkers = 1\nqueue_max = 1\n");
    /* One job runs, one waits; the third client's job finds the queue full. */
    struct test_client *c[3];
    for (int i = 0; i < 3; i++)
        c[i] = connect_client();
    send_str(c[0], "{\"cmd\":\"busy_job\"}");
    chatd_sleep_ms(100);
    send_str(c[1], "{\"cmd\":\"busy_job\"}");
    chatd_sleep_ms(50);
    send_str(c[2], "{\"cmd\":\"busy_job\"}");
    json_t *msg = expect(c[2], "busy_job_reply", "busy");
    json_decref(msg);
    msg = expect(c[0], "busy_job_reply", "success");
    json_decref(msg);
    msg = expect(c[1], "busy_job_reply", "success");
    json_decref(msg);
    for (int i = 0; i < 3; i++)
        test_client_close(c[i]);
    stop();
}
END_TEST

START_TEST(admin_listener_serves_metrics_and_health)
{
    int admin_port = test_free_port("127.0.0.1");
    ck_assert_int_gt(admin_port, 0);
    char extra[256];
    snprintf(extra, sizeof(extra), "[admin]\nenable = yes\nlisten = 127.0.0.1:%d\n", admin_port);
    struct chatd_proc_options opts = {.extra_conf = extra};
    ck_assert_msg(chatd_proc_start(&srv, &opts) == 0, "chatd did not start");
    struct test_client *c = connect_client();
    assert_ping_works(c, 1);
    send_str(c, "[1]");
    json_decref(expect(c, "error", "bad_request"));

    char *health = test_http_get(admin_port, "/healthz");
    ck_assert_msg(health != NULL, "cannot connect to the admin listener");
    ck_assert_msg(strstr(health, "200 OK") && strstr(health, "\nok\n"), "healthz: %s", health);
    free(health);
    char *metrics = test_http_get(admin_port, "/metrics");
    ck_assert_msg(metrics != NULL, "cannot connect to the admin listener");
    /* The readiness probe and this test each sent one ping. */
    ck_assert_msg(strstr(metrics, "chatd_replies_total{cmd=\"ping\",result=\"success\"} 2\n"),
                  "metrics: %s", metrics);
    ck_assert_msg(strstr(metrics, "chatd_generic_errors_total{result=\"bad_request\"} 1\n"),
                  "metrics: %s", metrics);
    ck_assert_msg(strstr(metrics, "chatd_connections 1\n"), "metrics: %s", metrics);
    ck_assert_msg(strstr(metrics, "chatd_request_duration_seconds_count 2\n"), "metrics: %s",
                  metrics);
    free(metrics);
    test_client_close(c);
    stop();
}
END_TEST

START_TEST(only_the_authenticator_may_log_a_session_in)
{
    start_with_rules(NULL);
    struct test_client *c = connect_client();
    send_str(c, "{\"cmd\":\"impersonate\"}");
    json_t *msg = expect(c, "impersonate_reply", "refused");
    ck_assert_int_eq(json_integer_value(json_object_get(msg, "rc")), CHATD_EPERM);
    json_decref(msg);
    /* Still not logged in as anyone. */
    send_str(c, "{\"cmd\":\"needs_login\",\"text\":\"hi\"}");
    json_decref(expect(c, "needs_login_reply", "not_logged_in"));
    test_client_close(c);
    stop();
}
END_TEST

START_TEST(server_keeps_serving_others_after_bad_json)
{
    start();
    struct test_client *good = connect_client();
    assert_ping_works(good, 1);
    struct test_client *bad = connect_client();
    send_str(bad, "{\"cmd\":\"ping\"]");
    expect_error(bad, "bad_json");
    assert_closed(bad);
    test_client_close(bad);
    assert_ping_works(good, 2);
    struct test_client *late = connect_client();
    assert_ping_works(late, 3);
    test_client_close(late);
    test_client_close(good);
    stop();
}
END_TEST

/* ---- signals ---- */

START_TEST(sigterm_exits_zero_and_delivers_sent_replies)
{
    start();
    struct test_client *c = connect_client();
    struct test_client *idle = connect_client();
    assert_ping_works(c, 1);
    /* Twenty requests in one write: chatd answers them in one pass. */
    char burst[1024];
    size_t len = 0;
    for (int i = 2; i <= 21; i++)
        len +=
            (size_t)snprintf(burst + len, sizeof(burst) - len, "{\"cmd\":\"ping\",\"id\":%d}", i);
    send_bytes(c, burst, len);
    json_t *msg = expect(c, "ping_reply", "success");
    assert_int_id(msg, 2);
    json_decref(msg);
    chatd_sleep_ms(100);

    long long began = chatd_now_ms();
    int rc = chatd_proc_stop(&srv, 5000);
    ck_assert_msg(rc == 0, "chatd exited with %d after SIGTERM, want 0 within 5 s", rc);
    ck_assert_msg(chatd_now_ms() - began < 5000, "chatd took too long to stop");

    for (int i = 3; i <= 21; i++) {
        msg = expect(c, "ping_reply", "success");
        assert_int_id(msg, i);
        json_decref(msg);
    }
    assert_closed(c);
    assert_closed(idle);
    test_client_close(c);
    test_client_close(idle);
    chatd_proc_cleanup(&srv);
}
END_TEST

START_TEST(sigterm_flushes_replies_a_slow_client_has_not_read_yet)
{
    start_with("max_output_bytes = 67108864\n");
    /* Replies to these requests (about 8 MB) fill the small receive buffer and the
     * socket's send buffer (which the kernel may grow to a few MB), so many of them
     * still wait inside chatd at SIGTERM. */
    struct test_client *c = test_client_connect(srv.host, srv.port, 4096);
    ck_assert(c != NULL);
    enum { N = 10000, PAD = 800 };
    char pad[PAD + 1];
    memset(pad, 'p', PAD);
    pad[PAD] = '\0';
    size_t cap = (size_t)N * (PAD + 64), len = 0;
    char *burst = malloc(cap);
    ck_assert(burst != NULL);
    for (int i = 0; i < N; i++)
        len +=
            (size_t)snprintf(burst + len, cap - len, "{\"cmd\":\"ping\",\"id\":\"%d-%s\"}", i, pad);
    ck_assert_msg(test_client_send(c, burst, len, 10000) == 0, "send failed: %s", strerror(errno));
    free(burst);
    /* Every request is answered once chatd has read it; allow generously for the last
     * read's requests to be handled. */
    ck_assert_msg(test_client_wait_peer_read(c, 10000) == 0,
                  "chatd did not read all requests within 10 s");
    chatd_sleep_ms(300);

    ck_assert_int_eq(chatd_proc_signal(&srv, SIGTERM), 0);
    char want[PAD + 32];
    for (int i = 0; i < N; i++) {
        json_t *msg = test_client_read_json(c, TEST_CLIENT_TIMEOUT_MS);
        ck_assert_msg(msg != NULL, "reply %d of %d never came after SIGTERM", i, N);
        snprintf(want, sizeof(want), "%d-%s", i, pad);
        assert_str(msg, "cmd", "ping_reply");
        assert_str(msg, "id", want);
        json_decref(msg);
    }
    assert_closed(c);
    test_client_close(c);
    int rc = chatd_proc_wait(&srv, CHATD_PROC_STOP_TIMEOUT_MS);
    ck_assert_msg(rc == 0, "chatd exited with %d after SIGTERM, want 0", rc);
    chatd_proc_cleanup(&srv);
}
END_TEST

/* ---- the command line ---- */

/* Run chatd to completion; the caller frees r. */
static void run(const char *const *args, struct chatd_run_result *r)
{
    ck_assert_msg(chatd_run(args, 10000, r) == 0, "cannot run chatd");
}

START_TEST(unknown_config_key_stops_chatd_with_file_and_line)
{
    char dir[PATH_MAX], path[PATH_MAX];
    ck_assert_int_eq(chatd_tmpdir_make(dir, sizeof(dir)), 0);
    ck_assert_int_eq(chatd_file_write(dir, "bad.conf",
                                      "; a config with a typo\n"
                                      "[server]\n"
                                      "max_connections = 10\n"
                                      "max_conections = 20\n"
                                      "[plugins]\n"
                                      "enable = ping\n",
                                      path, sizeof(path)),
                     0);
    char where[PATH_MAX + 16];
    snprintf(where, sizeof(where), "%s:4", path);
    char listen[64];
    int port = test_free_port("127.0.0.1");
    ck_assert_int_gt(port, 0);
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);

    struct chatd_run_result r;
    const char *const serve[] = {"-c", path, "-l", listen, "-p", CHATD_PLUGIN_DIR, NULL};
    run(serve, &r);
    ck_assert_msg(r.status == 1, "chatd exited with %d, want 1; stderr: %s", r.status, r.err);
    ck_assert_msg(strstr(r.err, where) != NULL, "stderr lacks \"%s\": %s", where, r.err);
    ck_assert_msg(strstr(r.err, "max_conections") != NULL, "stderr does not name the key: %s",
                  r.err);
    chatd_run_result_free(&r);

    const char *const check[] = {"-t", "-c", path, NULL};
    run(check, &r);
    ck_assert_msg(r.status == 1, "chatd -t exited with %d, want 1", r.status);
    ck_assert_msg(strstr(r.err, where) != NULL, "stderr lacks \"%s\": %s", where, r.err);
    chatd_run_result_free(&r);
    chatd_tmpdir_remove(dir);
}
END_TEST

START_TEST(test_config_flag_accepts_good_config)
{
    char dir[PATH_MAX], path[PATH_MAX], text[PATH_MAX + 512];
    ck_assert_int_eq(chatd_tmpdir_make(dir, sizeof(dir)), 0);
    snprintf(text, sizeof(text),
             "[server]\n"
             "listen = 127.0.0.1:8000\n"
             "max_connections = 100\n"
             "[log]\n"
             "level = warn\n"
             "[plugins]\n"
             "dir = %s\n"
             "enable = ping\n",
             CHATD_PLUGIN_DIR);
    ck_assert_int_eq(chatd_file_write(dir, "good.conf", text, path, sizeof(path)), 0);
    struct chatd_run_result r;
    const char *const args[] = {"-t", "-c", path, NULL};
    run(args, &r);
    ck_assert_msg(r.status == 0, "chatd -t exited with %d; stderr: %s", r.status, r.err);
    ck_assert_msg(strstr(r.out, "ok") != NULL, "stdout does not say ok: %s", r.out);
    ck_assert_msg(strstr(r.out, "ping") != NULL, "stdout does not list ping: %s", r.out);
    chatd_run_result_free(&r);
    chatd_tmpdir_remove(dir);
}
END_TEST

START_TEST(version_prints_plugin_abi)
{
    struct chatd_run_result r;
    const char *const args[] = {"--version", NULL};
    run(args, &r);
    ck_assert_msg(r.status == 0, "chatd --version exited with %d", r.status);
    char abi[64];
    snprintf(abi, sizeof(abi), "ABI %d.%d", CHATD_ABI_MAJOR, CHATD_ABI_MINOR);
    ck_assert_msg(strstr(r.out, abi) != NULL, "stdout lacks \"%s\": %s", abi, r.out);
    ck_assert_msg(strncmp(r.out, "chatd ", 6) == 0, "stdout does not start with chatd: %s", r.out);
    chatd_run_result_free(&r);
}
END_TEST

/* The value of the "key:" line of --check-plugin's output, trimmed; the caller frees. */
static char *field_value(const char *text, const char *key)
{
    size_t klen = strlen(key);
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > klen && strncmp(line, key, klen) == 0 && line[klen] == ':') {
            const char *v = line + klen + 1;
            while (v < line + len && *v == ' ')
                v++;
            size_t vlen = (size_t)(line + len - v);
            char *out = malloc(vlen + 1);
            ck_assert(out != NULL);
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return out;
        }
        line = end ? end + 1 : NULL;
    }
    return NULL;
}

START_TEST(check_plugin_describes_ping_as_loadable)
{
    struct chatd_run_result r;
    const char *const args[] = {"--check-plugin", CHATD_PLUGIN_DIR "/ping.so", NULL};
    run(args, &r);
    ck_assert_msg(r.status == 0, "chatd --check-plugin exited with %d; %s%s", r.status, r.out,
                  r.err);
    char *name = field_value(r.out, "name");
    ck_assert_msg(name && strcmp(name, "ping") == 0, "name is not ping: %s", r.out);
    free(name);
    char *loadable = field_value(r.out, "loadable");
    ck_assert_msg(loadable && strcmp(loadable, "yes") == 0, "not loadable: yes: %s", r.out);
    free(loadable);
    chatd_run_result_free(&r);
}
END_TEST

/* ---- IPv6 ---- */

START_TEST(ipv6_listener_answers_ping)
{
    if (test_free_port("::1") < 0) {
        fprintf(stderr, "ipv6_listener_answers_ping: skipped, ::1 cannot be bound here (%s)\n",
                strerror(errno));
        return;
    }
    struct chatd_proc_options opts = {.host = "::1"};
    ck_assert_msg(chatd_proc_start(&srv, &opts) == 0, "chatd did not start on [::1]");
    struct test_client *c = connect_client();
    assert_ping_works(c, 6);
    test_client_close(c);
    stop();
}
END_TEST

static Suite *server_suite(void)
{
    Suite *s = suite_create("server");

    /* Generous bounds: a test waits at most a few seconds unless something is wrong. */
    TCase *tc = tcase_create("ping");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, ping_echoes_integer_id);
    tcase_add_test(tc, ping_echoes_string_id);
    tcase_add_test(tc, ping_without_id_has_no_id);
    tcase_add_test(tc, reply_is_exactly_one_line);
    suite_add_tcase(s, tc);

    tc = tcase_create("framing");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, pings_back_to_back_get_one_line_each_in_order);
    tcase_add_test(tc, multi_line_indented_pings_are_accepted);
    tcase_add_test(tc, pings_split_into_single_bytes_are_reassembled);
    suite_add_tcase(s, tc);

    tc = tcase_create("generic_errors");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, non_object_values_get_bad_request_and_connection_stays_open);
    tcase_add_test(tc, object_without_cmd_gets_bad_request_with_id);
    tcase_add_test(tc, non_string_cmd_gets_bad_request_with_id);
    tcase_add_test(tc, id_of_wrong_type_gets_bad_request);
    tcase_add_test(tc, unknown_cmd_is_named_and_connection_stays_open);
    tcase_add_test(tc, bad_json_is_answered_then_connection_closed);
    tcase_add_test(tc, invalid_utf8_is_bad_json_then_closed);
    tcase_add_test(tc, truncated_object_at_eof_is_bad_json_then_closed);
    tcase_add_test(tc, replies_before_bad_json_are_delivered_in_order);
    tcase_add_test(tc, frame_over_max_frame_bytes_is_refused_then_closed);
    tcase_add_test(tc, server_keeps_serving_others_after_bad_json);
    tcase_add_test(tc, admin_listener_serves_metrics_and_health);
    tcase_add_test(tc, host_enforces_login_user_from_and_fields_before_the_plugin);
    tcase_add_test(tc, unanswered_request_is_answered_internal);
    tcase_add_test(tc, second_reply_is_refused_and_never_sent);
    tcase_add_test(tc, pushes_carry_no_id);
    tcase_add_test(tc, only_the_authenticator_may_log_a_session_in);
    tcase_add_test(tc, full_job_queue_answers_busy_at_once);
    tcase_add_test(tc, valid_json_the_server_cannot_hold_gets_bad_request_and_stays_open);
    tcase_add_test(tc, bare_number_at_end_of_stream_is_bad_request);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_add_test(tc, connections_over_max_connections_get_busy_and_are_closed);
    tcase_add_test(tc, idle_connection_is_closed_after_idle_timeout);
    tcase_add_test(tc, active_connection_outlives_idle_timeout);
    tcase_add_test(tc, slow_reader_is_disconnected_and_others_keep_working);
    tcase_add_test(tc, pipelining_client_that_reads_is_throttled_not_disconnected);
    tcase_set_timeout(tc, 40);
    suite_add_tcase(s, tc);

    tc = tcase_create("lifecycle");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, sigterm_exits_zero_and_delivers_sent_replies);
    tcase_add_test(tc, sigterm_flushes_replies_a_slow_client_has_not_read_yet);
    tcase_add_test(tc, unknown_config_key_stops_chatd_with_file_and_line);
    tcase_add_test(tc, test_config_flag_accepts_good_config);
    tcase_add_test(tc, version_prints_plugin_abi);
    tcase_add_test(tc, check_plugin_describes_ping_as_loadable);
    tcase_add_test(tc, ipv6_listener_answers_ping);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(server_suite());
}
