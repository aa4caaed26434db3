/* test_server_pipeline.c - black-box tests of pipelined commands (CHATD_CMD_PIPELINED,
 * [server] max_pipelined) on the real chatd binary, with the fixture plugin `pusher`:
 * its `later` is pipelined and answered after `ms` milliseconds, telling how many other
 * `later` requests were waiting when it arrived ("beside"). */
#include "server_suite.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

static void send_later(struct test_client *c, int ms, int n)
{
    char line[96];
    snprintf(line, sizeof(line), "{\"cmd\":\"later\",\"ms\":%d,\"n\":%d,\"id\":%d}", ms, n, n);
    check_send_str(c, line);
}

/* The next line is later_reply n; returns how many were waiting beside it. */
static int expect_later(struct test_client *c, int n)
{
    json_t *msg = expect(c, "later_reply", "success");
    assert_int_id(msg, n);
    ck_assert_int_eq(json_integer_value(json_object_get(msg, "n")), n);
    int beside = (int)json_integer_value(json_object_get(msg, "beside"));
    json_decref(msg);
    return beside;
}

START_TEST(pipelined_requests_run_together_and_are_answered_in_order)
{
    start_with_pusher(NULL);
    struct test_client *c = connect_client();
    /* The first is answered last by its plugin, the third first. */
    send_later(c, 400, 1);
    send_later(c, 200, 2);
    send_later(c, 0, 3);
    ck_assert_int_eq(expect_later(c, 1), 0);
    ck_assert_int_eq(expect_later(c, 2), 1);
    ck_assert_int_eq(expect_later(c, 3), 2);
    assert_ping_works(c, 4);
    test_client_close(c);
    stop();
}
END_TEST

START_TEST(a_command_that_is_not_pipelined_waits_for_those_before_it)
{
    start_with_pusher(NULL);
    struct test_client *c = connect_client();
    send_later(c, 300, 1);
    check_send_str(c, "{\"cmd\":\"ping\",\"id\":2}");
    send_later(c, 0, 3);
    ck_assert_int_eq(expect_later(c, 1), 0);
    json_t *pong = expect(c, "ping_reply", "success");
    assert_int_id(pong, 2);
    json_decref(pong);
    /* Read only after ping was answered, which was after the first was done. */
    ck_assert_int_eq(expect_later(c, 3), 0);
    test_client_close(c);
    stop();
}
END_TEST

START_TEST(max_pipelined_bounds_the_requests_in_flight)
{
    start_with_pusher("max_pipelined = 2\n");
    struct test_client *c = connect_client();
    for (int n = 1; n <= 6; n++)
        send_later(c, 100, n);
    for (int n = 1; n <= 6; n++)
        ck_assert_int_le(expect_later(c, n), 1);
    test_client_close(c);
    stop();
}
END_TEST

START_TEST(max_pipelined_1_runs_one_at_a_time)
{
    start_with_pusher("max_pipelined = 1\n");
    struct test_client *c = connect_client();
    send_later(c, 100, 1);
    send_later(c, 0, 2);
    ck_assert_int_eq(expect_later(c, 1), 0);
    ck_assert_int_eq(expect_later(c, 2), 0);
    test_client_close(c);
    stop();
}
END_TEST

START_TEST(a_client_leaving_with_requests_in_flight_harms_nobody)
{
    start_with_pusher(NULL);
    struct test_client *other = connect_client();
    for (int round = 0; round < 20; round++) {
        struct test_client *c = connect_client();
        send_later(c, 50, 1);
        send_later(c, 0, 2);
        check_send_str(c, "{\"cmd\":\"ping\",\"id\":3}");
        send_later(c, 0, 4);
        test_client_close(c);
    }
    assert_ping_works(other, 1);
    /* The timers of the departed clients' requests fire into nothing. */
    send_later(other, 200, 2);
    expect_later(other, 2);
    assert_ping_works(other, 3);
    test_client_close(other);
    stop();
}
END_TEST

static Suite *server_pipeline_suite(void)
{
    Suite *s = suite_create("server_pipeline");
    TCase *tc = tcase_create("pipeline");
    tcase_set_timeout(tc, 40);
    tcase_add_test(tc, pipelined_requests_run_together_and_are_answered_in_order);
    tcase_add_test(tc, a_command_that_is_not_pipelined_waits_for_those_before_it);
    tcase_add_test(tc, max_pipelined_bounds_the_requests_in_flight);
    tcase_add_test(tc, max_pipelined_1_runs_one_at_a_time);
    tcase_add_test(tc, a_client_leaving_with_requests_in_flight_harms_nobody);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(server_pipeline_suite());
}
