/* test_status.c - the status plugin, tested with chatd's plugin test kit: the plugin
 * file is loaded by chatd's own loader, the sessions are clients of chatd's own
 * request path, and the jobs run in a real MariaDB (CHATD_TESTKIT_DB_SOCKET). */
#include <chatd/testkit.h>

#include <stdlib.h>
#include <string.h>

#ifndef STATUS_PLUGIN
#define STATUS_PLUGIN "./status.so" /* the path of the plugin under test */
#endif

static struct chatd_testkit *kit;

/* A kit with the plugin started, after applying `option` ("key=value") if not NULL. */
static void start(const char *key, const char *value)
{
    kit = chatd_testkit_new(STATUS_PLUGIN);
    ck_assert_msg(chatd_testkit_has_database(kit),
                  "set CHATD_TESTKIT_DB_SOCKET to a MariaDB socket: the plugin keeps its "
                  "statuses in the database");
    if (key)
        chatd_testkit_option(kit, key, value);
    ck_assert_msg(chatd_testkit_start(kit) == 0, "%s", chatd_testkit_error(kit));
}

static void stop(void)
{
    chatd_testkit_free(kit);
    kit = NULL;
}

START_TEST(a_status_set_is_read_back)
{
    start(NULL, NULL);
    struct chatd_testkit_session *ann = chatd_testkit_login(kit, "ann");
    struct chatd_testkit_session *bob = chatd_testkit_login(kit, "bob");
    json_t *set = chatd_testkit_request(ann, "{\"cmd\":\"set_status\",\"text\":\"out for lunch\"}");
    chatd_testkit_assert_reply(set, "set_status_reply", "success");
    json_t *got = chatd_testkit_request(bob, "{\"cmd\":\"get_status\",\"user\":\"ann\",\"id\":9}");
    chatd_testkit_assert_reply(got, "get_status_reply", "success");
    ck_assert_str_eq(chatd_testkit_string(got, "text"), "out for lunch");
    ck_assert_str_eq(chatd_testkit_string(got, "user"), "ann");
    ck_assert_int_eq(json_integer_value(json_object_get(got, "ts")),
                     json_integer_value(json_object_get(set, "ts")));
    ck_assert_int_eq(json_integer_value(json_object_get(got, "id")), 9);
    stop();
}
END_TEST

START_TEST(a_new_status_replaces_the_old_and_an_empty_one_clears_it)
{
    start(NULL, NULL);
    struct chatd_testkit_session *ann = chatd_testkit_login(kit, "ann");
    chatd_testkit_request(ann, "{\"cmd\":\"set_status\",\"text\":\"busy\"}");
    chatd_testkit_request(ann, "{\"cmd\":\"set_status\",\"text\":\"free \\u00e0 midi\"}");
    json_t *got = chatd_testkit_request(ann, "{\"cmd\":\"get_status\",\"user\":\"ann\"}");
    ck_assert_str_eq(chatd_testkit_string(got, "text"), "free \xc3\xa0 midi");
    chatd_testkit_assert_reply(chatd_testkit_request(ann, "{\"cmd\":\"set_status\",\"text\":\"\"}"),
                               "set_status_reply", "success");
    got = chatd_testkit_request(ann, "{\"cmd\":\"get_status\",\"user\":\"ann\"}");
    chatd_testkit_assert_reply(got, "get_status_reply", "no_status");
    ck_assert_str_eq(chatd_testkit_string(got, "user"), "ann");
    stop();
}
END_TEST

START_TEST(a_change_is_pushed_to_every_other_user_online)
{
    start(NULL, NULL);
    struct chatd_testkit_session *ann = chatd_testkit_login(kit, "ann");
    struct chatd_testkit_session *bob_phone = chatd_testkit_login(kit, "bob");
    struct chatd_testkit_session *bob_laptop = chatd_testkit_login(kit, "bob");
    struct chatd_testkit_session *cid = chatd_testkit_login(kit, "cid");
    chatd_testkit_logout(cid); /* LOGOUT: cid is no longer online */
    struct chatd_testkit_session *dan = chatd_testkit_login(kit, "dan");
    chatd_testkit_disconnect(dan); /* so is a user whose connection ended */

    chatd_testkit_request(ann, "{\"cmd\":\"set_status\",\"text\":\"in a meeting\"}");
    struct chatd_testkit_session *bobs[] = {bob_phone, bob_laptop};
    for (size_t i = 0; i < 2; i++) {
        json_t *push = chatd_testkit_push(bobs[i]);
        chatd_testkit_assert_reply(push, "status_recv", NULL);
        ck_assert_str_eq(chatd_testkit_string(push, "user"), "ann");
        ck_assert_str_eq(chatd_testkit_string(push, "text"), "in a meeting");
        ck_assert_ptr_null(json_object_get(push, "id"));
    }
    chatd_testkit_run(kit, 100);
    ck_assert_uint_eq(chatd_testkit_pending_pushes(ann), 0);
    ck_assert_uint_eq(chatd_testkit_pending_pushes(cid), 0);
    stop();
}
END_TEST

START_TEST(broadcast_off_pushes_nothing)
{
    start("broadcast", "no");
    struct chatd_testkit_session *ann = chatd_testkit_login(kit, "ann");
    struct chatd_testkit_session *bob = chatd_testkit_login(kit, "bob");
    chatd_testkit_assert_reply(
        chatd_testkit_request(ann, "{\"cmd\":\"set_status\",\"text\":\"x\"}"), "set_status_reply",
        "success");
    chatd_testkit_run(kit, 100);
    ck_assert_uint_eq(chatd_testkit_pending_pushes(bob), 0);
    stop();
}
END_TEST

START_TEST(max_length_bounds_the_text)
{
    start("max_length", "5");
    struct chatd_testkit_session *ann = chatd_testkit_login(kit, "ann");
    json_t *reply = chatd_testkit_request(ann, "{\"cmd\":\"set_status\",\"text\":\"123456\"}");
    chatd_testkit_assert_reply(reply, "set_status_reply", "bad_request");
    ck_assert_str_eq(chatd_testkit_string(reply, "reason"), "'text' must be at most 5 bytes long");
    chatd_testkit_assert_reply(
        chatd_testkit_request(ann, "{\"cmd\":\"set_status\",\"text\":\"12345\"}"),
        "set_status_reply", "success");
    stop();
}
END_TEST

START_TEST(an_out_of_range_option_stops_the_start)
{
    kit = chatd_testkit_new(STATUS_PLUGIN);
    chatd_testkit_option(kit, "max_length", "5000");
    ck_assert_int_eq(chatd_testkit_start(kit), -1);
    ck_assert_msg(strstr(chatd_testkit_error(kit), "max_length: 5000 is out of range [1, 1000]"),
                  "%s", chatd_testkit_error(kit));
    stop();
}
END_TEST

START_TEST(commands_need_a_logged_in_session)
{
    start(NULL, NULL);
    struct chatd_testkit_session *anon = chatd_testkit_connect(kit);
    chatd_testkit_assert_reply(
        chatd_testkit_request(anon, "{\"cmd\":\"set_status\",\"text\":\"x\"}"), "set_status_reply",
        "not_logged_in");
    stop();
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("status");
    TCase *tc = tcase_create("status");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_status_set_is_read_back);
    tcase_add_test(tc, a_new_status_replaces_the_old_and_an_empty_one_clears_it);
    tcase_add_test(tc, a_change_is_pushed_to_every_other_user_online);
    tcase_add_test(tc, broadcast_off_pushes_nothing);
    tcase_add_test(tc, max_length_bounds_the_text);
    tcase_add_test(tc, an_out_of_range_option_stops_the_start);
    tcase_add_test(tc, commands_need_a_logged_in_session);
    suite_add_tcase(suite, tc);
    /* And everything every plugin should pass. */
    return chatd_testkit_run_suites(suite, chatd_testkit_conformance_suite(STATUS_PLUGIN, NULL),
                                    NULL);
}
