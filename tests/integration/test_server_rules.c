/* test_server_rules.c - black-box tests of the rules the host enforces on plugins,
 * through the rules fixture plugin: login and fields checked before a handler runs, one
 * reply per request (internal when none, a second refused), pushes without ids, only the
 * authenticator logs a session in, busy when the job queue is full, and a client's reset
 * noticed while its request waits, so that its job is not run. Each test
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
    /* One job runs (300 ms), one waits; a client that then finds the queue full is
     * answered busy before any job is done. Clients come one by one until one does
     * (when chatd takes the first two late, a third may still find room, and waits). */
    enum { CLIENTS = 8 };
    struct test_client *c[CLIENTS];
    int n = 0, busy = -1;
    while (n < CLIENTS && busy < 0) {
        c[n] = connect_client();
        check_send_str(c[n], "{\"cmd\":\"busy_job\"}");
        json_t *msg = n >= 2 ? test_client_read_json(c[n], 100) : NULL;
        if (msg) {
            ck_assert_str_eq(json_string_value(json_object_get(msg, "result")), "busy");
            json_decref(msg);
            busy = n;
        }
        n++;
    }
    ck_assert_msg(busy >= 0, "%d clients, none answered busy", CLIENTS);
    /* The others: success once their turn comes, or busy too (the first two may meet in
     * one loop turn, before the worker has taken the first job off the queue). */
    int done = 0;
    for (int i = 0; i < n; i++) {
        if (i != busy) {
            json_t *msg = expect_cmd(c[i], "busy_job_reply");
            const char *result = json_string_value(json_object_get(msg, "result"));
            ck_assert_msg(strcmp(result, "success") == 0 || strcmp(result, "busy") == 0,
                          "busy_job answered %s", result);
            done += strcmp(result, "success") == 0;
            json_decref(msg);
        }
        test_client_close(c[i]);
    }
    ck_assert_msg(done > 0, "no busy_job was run");
    stop();
}
END_TEST

/* busy_job's runs so far, asked from a fresh client. */
static int job_runs(void)
{
    struct test_client *c = connect_client();
    check_send_str(c, "{\"cmd\":\"job_runs\"}");
    json_t *msg = expect(c, "job_runs_reply", "success");
    int runs = (int)json_integer_value(json_object_get(msg, "runs"));
    json_decref(msg);
    test_client_close(c);
    return runs;
}

START_TEST(reset_while_a_request_waits_skips_its_job)
{
    /* One CPU worker, busy_job not pipelined: while a session's job waits, the session
     * does not read, and only its hang-up watch can see the client go. The watch must
     * hold for a session's second request as for its first. */
    start_with_rules("[server]\ncpu_workers = 1\n");
    struct test_client *b = connect_client();
    check_send_str(b, "{\"cmd\":\"busy_job\"}");
    json_decref(expect(b, "busy_job_reply", "success"));
    ck_assert_int_eq(job_runs(), 1);

    struct test_client *a = connect_client();
    check_send_str(a, "{\"cmd\":\"busy_job\"}"); /* runs for 300 ms */
    chatd_sleep_ms(50);
    check_send_str(b, "{\"cmd\":\"busy_job\"}"); /* waits behind a's */
    chatd_sleep_ms(50);
    test_client_reset(b);
    json_decref(expect(a, "busy_job_reply", "success"));
    /* b's job would have run right after a's, in 300 ms. */
    chatd_sleep_ms(500);
    ck_assert_msg(job_runs() == 2, "the job of a client that reset its connection was run");
    test_client_close(a);
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
    tcase_add_test(tc, reset_while_a_request_waits_skips_its_job);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(server_rules_suite());
}
