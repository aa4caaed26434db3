/* test_testkit.c - the test kit itself: it loads through chatd's loader (and refuses
 * what chatd refuses), applies options, runs the request path, jobs and pushes, and
 * records a plugin's breaches of the contract; its conformance suite passes a good
 * plugin and fails a bad one. The plugins are the loader tests' fixtures. */
#include <chatd/testkit.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURE(name) CHATD_FIXTURE_DIR "/" name ".so"

static struct chatd_testkit *started(const char *path)
{
    struct chatd_testkit *kit = chatd_testkit_new(path);
    ck_assert_msg(chatd_testkit_start(kit) == 0, "%s", chatd_testkit_error(kit));
    return kit;
}

START_TEST(refuses_another_abi_major)
{
    struct chatd_testkit *kit = chatd_testkit_new(FIXTURE("wrong_major"));
    ck_assert_int_eq(chatd_testkit_start(kit), -1);
    char expected[120];
    snprintf(expected, sizeof(expected),
             "was built for chatd plugin ABI %d.0, but this chatd provides ABI %d.%d",
             CHATD_ABI_MAJOR + 1, CHATD_ABI_MAJOR, CHATD_ABI_MINOR);
    ck_assert_msg(strstr(chatd_testkit_error(kit), expected) != NULL, "%s",
                  chatd_testkit_error(kit));
    chatd_testkit_free(kit);
}
END_TEST

START_TEST(refuses_a_newer_abi_minor)
{
    struct chatd_testkit *kit = chatd_testkit_new(FIXTURE("newer_minor"));
    ck_assert_int_eq(chatd_testkit_start(kit), -1);
    char expected[60];
    snprintf(expected, sizeof(expected), "needs chatd plugin ABI %d.%d", CHATD_ABI_MAJOR,
             CHATD_ABI_MINOR + 1);
    ck_assert_msg(strstr(chatd_testkit_error(kit), expected) != NULL, "%s",
                  chatd_testkit_error(kit));
    chatd_testkit_free(kit);
}
END_TEST

START_TEST(refuses_a_file_without_descriptor)
{
    struct chatd_testkit *kit = chatd_testkit_new(FIXTURE("no_descriptor"));
    ck_assert_int_eq(chatd_testkit_start(kit), -1);
    ck_assert_msg(strstr(chatd_testkit_error(kit), "has no 'chatd_plugin' symbol") != NULL, "%s",
                  chatd_testkit_error(kit));
    chatd_testkit_free(kit);
}
END_TEST

START_TEST(options_reach_the_plugin)
{
    struct chatd_testkit *kit = chatd_testkit_new(FIXTURE("good"));
    chatd_testkit_option(kit, "greeting", "hi");
    chatd_testkit_option(kit, "repeat", "3");
    ck_assert_msg(chatd_testkit_start(kit) == 0, "%s", chatd_testkit_error(kit));
    struct chatd_testkit_session *s = chatd_testkit_connect(kit);
    json_t *reply = chatd_testkit_request(s, "{\"cmd\":\"good_echo\",\"text\":\"x\",\"id\":7}");
    chatd_testkit_assert_reply(reply, "good_echo_reply", "success");
    ck_assert_str_eq(chatd_testkit_string(reply, "greeting"), "hi");
    ck_assert_int_eq(json_integer_value(json_object_get(reply, "repeat")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(reply, "id")), 7);
    chatd_testkit_free(kit);
}
END_TEST

START_TEST(bad_option_values_are_refused_as_chatd_refuses_them)
{
    struct chatd_testkit *kit = chatd_testkit_new(FIXTURE("good"));
    chatd_testkit_option(kit, "repeat", "11");
    ck_assert_int_eq(chatd_testkit_start(kit), -1);
    ck_assert_msg(strstr(chatd_testkit_error(kit), "repeat: 11 is out of range [1, 10]") != NULL,
                  "%s", chatd_testkit_error(kit));
    chatd_testkit_free(kit);
}
END_TEST

START_TEST(the_host_checks_requests_before_the_plugin)
{
    struct chatd_testkit *kit = started(FIXTURE("rules"));
    struct chatd_testkit_session *anon = chatd_testkit_connect(kit);
    struct chatd_testkit_session *ann = chatd_testkit_login(kit, "ann");
    chatd_testkit_assert_reply(chatd_testkit_request(anon, "{\"cmd\":\"needs_login\"}"),
                               "needs_login_reply", "not_logged_in");
    chatd_testkit_assert_reply(chatd_testkit_request(ann, "{\"cmd\":\"needs_login\"}"),
                               "needs_login_reply", "bad_request");
    chatd_testkit_assert_reply(
        chatd_testkit_request(ann, "{\"cmd\":\"needs_login\",\"text\":\"ok\"}"),
        "needs_login_reply", "success");
    json_t *unknown = chatd_testkit_request(ann, "{\"cmd\":\"nope\"}");
    chatd_testkit_assert_reply(unknown, "error", "unknown_cmd");
    ck_assert_str_eq(chatd_testkit_string(unknown, "request"), "nope");
    /* Bytes that are not JSON end the session, as over TCP. */
    const char junk[] = "{\"cmd\":]";
    chatd_testkit_assert_reply(chatd_testkit_request_raw(anon, junk, sizeof(junk) - 1), "error",
                               "bad_json");
    ck_assert_ptr_null(chatd_testkit_request(anon, "{\"cmd\":\"ping\"}"));
    chatd_testkit_free(kit);
}
END_TEST

START_TEST(a_second_reply_is_recorded)
{
    struct chatd_testkit *kit = started(FIXTURE("rules"));
    chatd_testkit_strict(kit, 0);
    struct chatd_testkit_session *s = chatd_testkit_connect(kit);
    json_t *reply = chatd_testkit_request(s, "{\"cmd\":\"twice\"}");
    chatd_testkit_assert_reply(reply, "twice_reply", "success");
    ck_assert_ptr_null(json_object_get(reply, "extra"));
    /* The plugin pushes what its second reply returned: CHATD_ESTATE. */
    json_t *push = chatd_testkit_push(s);
    chatd_testkit_assert_reply(push, "twice_result", NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(push, "rc")), CHATD_ESTATE);
    ck_assert_uint_eq(chatd_testkit_violations(kit), 1);
    ck_assert_msg(strstr(chatd_testkit_violation(kit, 0), "replied twice to one 'twice'") != NULL,
                  "%s", chatd_testkit_violation(kit, 0));
    chatd_testkit_free(kit);
}
END_TEST

START_TEST(a_forgotten_request_is_recorded)
{
    struct chatd_testkit *kit = started(FIXTURE("rules"));
    chatd_testkit_strict(kit, 0);
    struct chatd_testkit_session *s = chatd_testkit_connect(kit);
    chatd_testkit_assert_reply(chatd_testkit_request(s, "{\"cmd\":\"forget\"}"), "forget_reply",
                               "internal");
    ck_assert_uint_eq(chatd_testkit_violations(kit), 1);
    ck_assert_msg(strstr(chatd_testkit_violation(kit, 0), "without a reply") != NULL, "%s",
                  chatd_testkit_violation(kit, 0));
    chatd_testkit_free(kit);
}
END_TEST

START_TEST(a_request_waits_for_its_job)
{
    struct chatd_testkit *kit = started(FIXTURE("rules"));
    struct chatd_testkit_session *s = chatd_testkit_connect(kit);
    /* A CPU job of 300 ms, answered from its done callback. */
    chatd_testkit_assert_reply(chatd_testkit_request(s, "{\"cmd\":\"busy_job\"}"), "busy_job_reply",
                               "success");
    chatd_testkit_free(kit);
}
END_TEST

START_TEST(pushes_are_recorded_per_session)
{
    struct chatd_testkit *kit = started(FIXTURE("pusher"));
    struct chatd_testkit_session *a = chatd_testkit_connect(kit);
    struct chatd_testkit_session *b = chatd_testkit_connect(kit);
    json_t *who = chatd_testkit_request(b, "{\"cmd\":\"whoami\"}");
    ck_assert_int_eq(json_integer_value(json_object_get(who, "session")),
                     (json_int_t)chatd_testkit_session_id(b));
    json_t *reply =
        chatd_testkit_request(a, "{\"cmd\":\"flood\",\"to\":%llu,\"count\":3,\"size\":4}",
                              (unsigned long long)chatd_testkit_session_id(b));
    chatd_testkit_assert_reply(reply, "flood_reply", "success");
    ck_assert_uint_eq(chatd_testkit_pending_pushes(a), 0);
    for (int i = 0; i < 3; i++) {
        json_t *push = chatd_testkit_push(b);
        chatd_testkit_assert_reply(push, "flood", NULL);
        ck_assert_str_eq(chatd_testkit_string(push, "text"), "xxxx");
    }
    chatd_testkit_set_timeout(kit, 50);
    ck_assert_ptr_null(chatd_testkit_push(b));
    chatd_testkit_free(kit);
}
END_TEST

START_TEST(database_jobs_run_against_mariadb)
{
    struct chatd_testkit *kit = chatd_testkit_new(FIXTURE("dbprobe"));
    ck_assert_msg(chatd_testkit_has_database(kit),
                  "no database: run with CHATD_TESTKIT_DB_SOCKET (scripts/test sets "
                  "CHATD_TEST_DB_SOCKET)");
    ck_assert_msg(chatd_testkit_start(kit) == 0, "%s", chatd_testkit_error(kit));
    struct chatd_testkit_session *s = chatd_testkit_connect(kit);
    json_t *reply = chatd_testkit_request(s, "{\"cmd\":\"db_echo\",\"text\":\"h\\u00e9llo\"}");
    chatd_testkit_assert_reply(reply, "db_echo_reply", "success");
    ck_assert_str_eq(chatd_testkit_string(reply, "text"), "h\xc3\xa9llo");
    chatd_testkit_free(kit);
}
END_TEST

/* Run a conformance suite inside this test and count its failures. */
static int conformance_failures(const char *path)
{
    SRunner *runner = srunner_create(chatd_testkit_conformance_suite(path, NULL));
    srunner_set_fork_status(runner, CK_FORK);
    srunner_run_all(runner, CK_SILENT);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed;
}

START_TEST(conformance_passes_a_good_plugin)
{
    ck_assert_int_eq(conformance_failures(FIXTURE("good")), 0);
}
END_TEST

START_TEST(conformance_fails_a_plugin_that_replies_twice)
{
    ck_assert_int_gt(conformance_failures(FIXTURE("rules")), 0);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("testkit");
    TCase *tc = tcase_create("testkit");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, refuses_another_abi_major);
    tcase_add_test(tc, refuses_a_newer_abi_minor);
    tcase_add_test(tc, refuses_a_file_without_descriptor);
    tcase_add_test(tc, options_reach_the_plugin);
    tcase_add_test(tc, bad_option_values_are_refused_as_chatd_refuses_them);
    tcase_add_test(tc, the_host_checks_requests_before_the_plugin);
    tcase_add_test(tc, a_second_reply_is_recorded);
    tcase_add_test(tc, a_forgotten_request_is_recorded);
    tcase_add_test(tc, a_request_waits_for_its_job);
    tcase_add_test(tc, pushes_are_recorded_per_session);
    tcase_add_test(tc, database_jobs_run_against_mariadb);
    tcase_add_test(tc, conformance_passes_a_good_plugin);
    tcase_add_test(tc, conformance_fails_a_plugin_that_replies_twice);
    suite_add_tcase(suite, tc);
    return chatd_testkit_run_suites(suite, NULL);
}
