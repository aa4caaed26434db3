/* test_server_rules.c - black-box tests of the rules the host enforces on plugins,
 * through the rules fixture plugin: login and fields checked before a handler runs, one
 * reply per request (internal when none, a second refused), pushes without ids, only the
 * authenticator logs a session in, and busy when the job queue is full. Each test
 * starts its own chatd on a free port. */
#include "server_suite.h"

#include <chatd/plugin.h>
#include <check.h>

/* ---- the host's rules for plugins ---- */

START_TEST(host_enforces_login_user_from_and_fields_before_the_plugin)
{
    start_with_rules(NULL);
    struct test_client *c = connect_client();
    check_send_str(c, "{\"cmd\":\"needs_login\",\"text\":\"hi\",\"id\":1}");
    json_t *msg = expect(c, "needs_login_reply", "not_logged_in");
    assert_int_id(msg, 1);
    json_decref(msg);
    /* The plugin's field table is checked only for a session allowed to run it. */
    check_send_str(c, "{\"cmd\":\"needs_login\",\"user_from\":\"mallory\",\"id\":2}");
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
    check_send_str(c, "{\"cmd\":\"forget\",\"id\":\"f\"}");
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
    check_send_str(c, "{\"cmd\":\"twice\",\"id\":9}");
    json_t *msg = expect(c, "twice_reply", "success");
    check_json_no_key(msg, "extra");
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
    check_send_str(c, "{\"cmd\":\"push_self\",\"id\":4}");
    json_t *msg = expect_cmd(c, "pushed");
    check_json_no_key(msg, "id");
    json_decref(msg);
    msg = expect(c, "push_self_reply", "success");
    assert_int_id(msg, 4);
    json_decref(msg);
    test_client_close(c);
    stop();
}
END_TEST

START_TEST(only_the_authenticator_may_log_a_session_in)
{
    start_with_rules(NULL);
    struct test_client *c = connect_client();
    check_send_str(c, "{\"cmd\":\"impersonate\"}");
    json_t *msg = expect(c, "impersonate_reply", "refused");
    ck_assert_int_eq(json_integer_value(json_object_get(msg, "rc")), CHATD_EPERM);
    json_decref(msg);
    /* Still not logged in as anyone. */
    check_send_str(c, "{\"cmd\":\"needs_login\",\"text\":\"hi\"}");
    json_decref(expect(c, "needs_login_reply", "not_logged_in"));
    test_client_close(c);
    stop();
}
END_TEST

START_TEST(full_job_queue_answers_busy_at_once)
{
    /* busy_job is a CPU job (no CHATD_JOB_DB): its queue is [server] cpu_queue_max. */
    start_with_rules("[server]\ncpu_workers = 1\ncpu_queue_max = 1\n");
    /* One job runs, one waits; the third client's job finds the queue full. */
    struct test_client *c[3];
    for (int i = 0; i < 3; i++)
        c[i] = connect_client();
    check_send_str(c[0], "{\"cmd\":\"busy_job\"}");
    chatd_sleep_ms(100);
    check_send_str(c[1], "{\"cmd\":\"busy_job\"}");
    chatd_sleep_ms(50);
    check_send_str(c[2], "{\"cmd\":\"busy_job\"}");
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

static Suite *server_rules_suite(void)
{
    Suite *s = suite_create("server_rules");

    /* Generous bounds: a test waits at most a few seconds unless something is wrong. */
    TCase *tc = tcase_create("rules");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, host_enforces_login_user_from_and_fields_before_the_plugin);
    tcase_add_test(tc, unanswered_request_is_answered_internal);
    tcase_add_test(tc, second_reply_is_refused_and_never_sent);
    tcase_add_test(tc, pushes_carry_no_id);
    tcase_add_test(tc, only_the_authenticator_may_log_a_session_in);
    tcase_add_test(tc, full_job_queue_answers_busy_at_once);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(server_rules_suite());
}
