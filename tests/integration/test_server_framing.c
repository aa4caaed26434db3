/* test_server_framing.c - black-box tests of the real chatd binary over TCP: the reply
 * lines and the framing of the request stream, and the generic errors of the wire
 * contract, those that keep the connection and those that end it. Each test starts its
 * own chatd (ping only) on a free port. */
#include "server_suite.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- ping and reply lines ---- */

START_TEST(ping_echoes_integer_id)
{
    start();
    struct test_client *c = connect_client();
    check_send_str(c, "{\"cmd\":\"ping\",\"id\":42}");
    json_t *msg = expect(c, "ping_reply", "success");
    assert_int_id(msg, 42);
    json_decref(msg);
    /* A large integer comes back as the same integer. */
    check_send_str(c, "{\"cmd\":\"ping\",\"id\":9007199254740993}");
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
    check_send_str(c, "{\"cmd\":\"ping\",\"id\":\"req-7 \\u00e9\\n\"}");
    json_t *msg = expect(c, "ping_reply", "success");
    check_json_str(msg, "id", "req-7 \xc3\xa9\n");
    json_decref(msg);
    test_client_close(c);
    stop();
}
END_TEST

START_TEST(ping_without_id_has_no_id)
{
    start();
    struct test_client *c = connect_client();
    check_send_str(c, "{\"cmd\":\"ping\"}");
    json_t *msg = expect(c, "ping_reply", "success");
    check_json_no_key(msg, "id");
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
    check_send_str(c, "{\"cmd\":\"ping\",\"id\":\"a\\nb\"}");
    char line[4096];
    ssize_t n = test_client_read_line(c, line, sizeof(line), TEST_CLIENT_TIMEOUT_MS);
    ck_assert_msg(n > 1, "no reply line (%zd)", n);
    ck_assert_msg(line[n - 1] == '\n', "the reply does not end in \\n");
    ck_assert_msg(memchr(line, '\n', (size_t)n - 1) == NULL, "a raw newline inside the reply");
    ck_assert_msg(memchr(line, '\r', (size_t)n) == NULL, "a raw \\r in the reply");
    json_error_t error;
    json_t *msg = json_loadb(line, (size_t)n - 1, 0, &error);
    ck_assert_msg(json_is_object(msg), "the line is not one JSON object: %s", line);
    check_json_str(msg, "cmd", "ping_reply");
    check_json_str(msg, "id", "a\nb");
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
    check_send_str(
        c, "{\"cmd\":\"ping\",\"id\":1}{\"cmd\":\"ping\",\"id\":2}{\"id\":3,\"cmd\":\"ping\"}"
           "{\"cmd\":\"ping\",\"id\":\"four\"}");
    for (int i = 1; i <= 3; i++) {
        json_t *msg = expect(c, "ping_reply", "success");
        assert_int_id(msg, i);
        json_decref(msg);
    }
    json_t *msg = expect(c, "ping_reply", "success");
    check_json_str(msg, "id", "four");
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
    check_send_str(c, "{\n"
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
        check_send(c, &stream[i], 1);
        chatd_sleep_ms(2);
    }
    json_t *msg = expect(c, "ping_reply", "success");
    check_json_str(msg, "id", "a\"}{b\\");
    json_decref(msg);
    msg = expect(c, "ping_reply", "success");
    assert_int_id(msg, 2);
    json_decref(msg);
    test_client_close(c);
    stop();
}
END_TEST

/* ---- generic errors that keep the connection ---- */

/* The reply's id (an integer or a string) is not checked; it has none. */
#define ANY_ID NULL
#define NO_ID  ""

/* A request the host answers with an error, keeping the connection open. */
struct error_case {
    const char *request;
    const char *result; /* the error's result word */
    const char *id;     /* the reply's "id" as JSON text, NO_ID or ANY_ID */
    const char *names;  /* the "request" an unknown_cmd error names, or NULL */
    int reason;         /* the reply must carry a "reason" (a string) */
};

static const struct error_case keep_open[] = {
    /* Values that are not objects. A bare number or literal ends at the next non-scalar
     * byte, here a space or '\n'. */
    {"[1,2,{\"cmd\":\"ping\"}]", "bad_request", NO_ID, NULL, 0},
    {"\"ping\"", "bad_request", NO_ID, NULL, 0},
    {"42 ", "bad_request", NO_ID, NULL, 0},
    {"-1.5e3\n", "bad_request", NO_ID, NULL, 0},
    {"null ", "bad_request", NO_ID, NULL, 0},
    {"true ", "bad_request", NO_ID, NULL, 0},
    {"[]", "bad_request", NO_ID, NULL, 0},
    /* Objects without a cmd. */
    {"{\"id\":7}", "bad_request", "7", NULL, 0},
    {"{\"id\":\"x\",\"command\":\"ping\"}", "bad_request", "\"x\"", NULL, 0},
    {"{}", "bad_request", NO_ID, NULL, 0},
    /* A cmd that is not a string. */
    {"{\"cmd\":5,\"id\":8}", "bad_request", "8", NULL, 0},
    {"{\"cmd\":null,\"id\":\"s\"}", "bad_request", "\"s\"", NULL, 0},
    {"{\"cmd\":[\"ping\"]}", "bad_request", NO_ID, NULL, 0},
    {"{\"cmd\":{\"name\":\"ping\"},\"id\":9}", "bad_request", "9", NULL, 0},
    /* An id of the wrong type. */
    {"{\"cmd\":\"ping\",\"id\":1.5}", "bad_request", ANY_ID, NULL, 0},
    {"{\"cmd\":\"ping\",\"id\":{\"n\":1}}", "bad_request", ANY_ID, NULL, 0},
    {"{\"cmd\":\"ping\",\"id\":[1]}", "bad_request", ANY_ID, NULL, 0},
    {"{\"cmd\":\"ping\",\"id\":true}", "bad_request", ANY_ID, NULL, 0},
    {"{\"cmd\":\"ping\",\"id\":null}", "bad_request", ANY_ID, NULL, 0},
    /* Valid JSON the server cannot hold. */
    {"{\"cmd\":\"ping\",\"id\":\"a\\u0000b\"}", "bad_request", ANY_ID, NULL, 1},
    {"{\"cmd\":\"ping\",\"id\":99999999999999999999}", "bad_request", ANY_ID, NULL, 1},
    {"{\"cmd\":\"ping\",\"x\":1e400}", "bad_request", ANY_ID, NULL, 1},
    {"{\"cmd\":\"ping\",\"id\":1,\"id\":2}", "bad_request", ANY_ID, NULL, 1},
    /* Unknown commands, named in the error: one of the original protocol whose plugin is
     * not enabled (only ping is), and a command's name in the wrong case. */
    {"{\"cmd\":\"no_such_cmd\",\"id\":9}", "unknown_cmd", "9", "no_such_cmd", 0},
    {"{\"cmd\":\"register\",\"user\":\"LiHua\",\"passwd\":\"11111\",\"id\":\"r\"}", "unknown_cmd",
     "\"r\"", "register", 0},
    {"{\"cmd\":\"PING\"}", "unknown_cmd", NO_ID, "PING", 0},
};

/* Send the request and check its error reply. */
static void check_error_case(struct test_client *c, const struct error_case *e)
{
    check_send_str(c, e->request);
    json_t *msg = check_read_json(c);
    if (!check_json_str_is(msg, "cmd", "error") || !check_json_str_is(msg, "result", e->result))
        ck_abort_msg("sent %s\nwant {\"cmd\":\"error\",\"result\":\"%s\"}, got %s", e->request,
                     e->result, check_dump(msg));
    const json_t *id = json_object_get(msg, "id");
    if (e->id && !*e->id && id)
        ck_abort_msg("sent %s\nwant no \"id\" in %s", e->request, check_dump(msg));
    if (e->id && *e->id) {
        json_t *want = json_loads(e->id, JSON_DECODE_ANY, NULL);
        ck_assert_ptr_nonnull(want);
        if (!json_equal(id, want))
            ck_abort_msg("sent %s\nwant \"id\":%s in %s", e->request, e->id, check_dump(msg));
        json_decref(want);
    }
    if (e->names && !check_json_str_is(msg, "request", e->names))
        ck_abort_msg("sent %s\nwant \"request\":\"%s\" in %s", e->request, e->names,
                     check_dump(msg));
    if (e->reason && !json_is_string(json_object_get(msg, "reason")))
        ck_abort_msg("sent %s\nwant a \"reason\" in %s", e->request, check_dump(msg));
    json_decref(msg);
}

/* Each case on a connection of its own (a loop test over keep_open). */
START_TEST(generic_error_is_answered_and_connection_stays_open)
{
    start();
    struct test_client *c = connect_client();
    check_error_case(c, &keep_open[_i]);
    assert_ping_works(c, 1);
    test_client_close(c);
    stop();
}
END_TEST

/* All of them one after another on one connection. */
START_TEST(generic_errors_in_a_row_keep_the_connection_open)
{
    start();
    struct test_client *c = connect_client();
    for (size_t i = 0; i < sizeof(keep_open) / sizeof(keep_open[0]); i++)
        check_error_case(c, &keep_open[i]);
    assert_ping_works(c, 1);
    test_client_close(c);
    stop();
}
END_TEST

/* ---- errors that end the connection ---- */

/* Requests that are not JSON (or not UTF-8): answered bad_json, then closed. */
static const char *const bad_json[] = {
    "{bad}",
    "{\"cmd\":\"ping\",}",
    "}",
    "{\"cmd\":\"ping\",\"id\":1]",
    "{\"cmd\":\"ping\",\"id\":\"\xff\xfe\"}",
    /* An overlong encoding of '/' is not valid UTF-8 either. */
    "{\"cmd\":\"ping\",\"id\":\"\xc0\xaf\"}",
};

/* A loop test over bad_json. */
START_TEST(bad_json_is_answered_then_connection_closed)
{
    start();
    struct test_client *c = connect_client();
    check_send_str(c, bad_json[_i]);
    expect_error(c, "bad_json");
    assert_closed(c);
    test_client_close(c);
    stop();
}
END_TEST

/* A ping, then what is left of a value when the client ends the stream: the ping is
 * still answered, then the rest with an error, then the connection is closed. */
static const struct {
    const char *stream;
    const char *result;
} cut_streams[] = {
    {"{\"cmd\":\"ping\",\"id\":1}{\"cmd\":\"pi", "bad_json"}, /* a truncated object */
    {"{\"cmd\":\"ping\",\"id\":1} 42", "bad_request"},        /* a bare number */
};

/* A loop test over cut_streams. */
START_TEST(value_cut_short_at_end_of_stream_is_refused_then_closed)
{
    start();
    struct test_client *c = connect_client();
    check_send_str(c, cut_streams[_i].stream);
    ck_assert_int_eq(test_client_shutdown_write(c), 0);
    /* The complete request before the cut is still answered. */
    json_t *msg = expect(c, "ping_reply", "success");
    assert_int_id(msg, 1);
    json_decref(msg);
    expect_error(c, cut_streams[_i].result);
    assert_closed(c);
    test_client_close(c);
    stop();
}
END_TEST

/* `open` '[' then `close` ']' (malloc'd). */
static char *brackets(size_t open, size_t close)
{
    char *s = malloc(open + close + 1);
    ck_assert_ptr_nonnull(s);
    memset(s, '[', open);
    memset(s + open, ']', close);
    s[open + close] = '\0';
    return s;
}

/* The next line is an error with this result and reason. */
static void expect_error_reason(struct test_client *c, const char *result, const char *reason)
{
    json_t *msg = expect(c, "error", result);
    if (!check_json_str_is(msg, "reason", reason))
        ck_abort_msg("want the reason \"%s\" in %s", reason, check_dump(msg));
    json_decref(msg);
}

/* Nesting is checked as the value is parsed from its first byte, so more than 2048
 * levels is found before anything after them: a complete value is a bad_request and the
 * connection stays open; a stream that ends inside such a value (60000 '[') gets the
 * same answer, not bad_json, then is closed. At 2048 levels the end of the stream is
 * what the parser meets first: bad_json. */
START_TEST(nesting_too_deep_is_found_before_the_end_of_the_stream)
{
    start();
    struct test_client *c = connect_client();
    char *deep = brackets(2049, 2049);
    check_send_str(c, deep);
    free(deep);
    expect_error_reason(c, "bad_request", "values are nested too deeply");
    assert_ping_works(c, 1);
    char *cut = brackets(60000, 0);
    check_send_str(c, cut);
    free(cut);
    ck_assert_int_eq(test_client_shutdown_write(c), 0);
    expect_error_reason(c, "bad_request", "values are nested too deeply");
    assert_closed(c);
    test_client_close(c);
    c = connect_client();
    cut = brackets(2048, 0);
    check_send_str(c, cut);
    free(cut);
    ck_assert_int_eq(test_client_shutdown_write(c), 0);
    expect_error_reason(c, "bad_json", "']' expected near end of file");
    assert_closed(c);
    test_client_close(c);
    stop();
}
END_TEST

START_TEST(replies_before_bad_json_are_delivered_in_order)
{
    start();
    struct test_client *c = connect_client();
    check_send_str(
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
        check_send_str(c, req);
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
        check_send_str(c, req);
        free(req);
        expect_error(c, "frame_too_large");
        assert_closed(c);
        test_client_close(c);
    }
    stop();
}
END_TEST

START_TEST(server_keeps_serving_others_after_bad_json)
{
    start();
    struct test_client *good = connect_client();
    assert_ping_works(good, 1);
    struct test_client *bad = connect_client();
    check_send_str(bad, "{\"cmd\":\"ping\"]");
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

static Suite *server_framing_suite(void)
{
    Suite *s = suite_create("server_framing");

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
    tcase_add_loop_test(tc, generic_error_is_answered_and_connection_stays_open, 0,
                        (int)(sizeof(keep_open) / sizeof(keep_open[0])));
    tcase_add_test(tc, generic_errors_in_a_row_keep_the_connection_open);
    tcase_add_loop_test(tc, bad_json_is_answered_then_connection_closed, 0,
                        (int)(sizeof(bad_json) / sizeof(bad_json[0])));
    tcase_add_loop_test(tc, value_cut_short_at_end_of_stream_is_refused_then_closed, 0,
                        (int)(sizeof(cut_streams) / sizeof(cut_streams[0])));
    tcase_add_test(tc, nesting_too_deep_is_found_before_the_end_of_the_stream);
    tcase_add_test(tc, replies_before_bad_json_are_delivered_in_order);
    tcase_add_test(tc, frame_over_max_frame_bytes_is_refused_then_closed);
    tcase_add_test(tc, server_keeps_serving_others_after_bad_json);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(server_framing_suite());
}
