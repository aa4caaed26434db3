/* test_chat_login_deadline.c - black-box test of [server] login_timeout with the chat
 * commands: an anonymous session is told why and closed, a logged-in one is not. See
 * chat_suite.h for the server and the helpers. */
#include "chat_suite.h"

#include <check.h>
#include <string.h>

START_TEST(anonymous_session_is_closed_at_login_timeout_and_logged_in_one_is_not)
{
    const char *const sets[] = {"server.login_timeout=2", NULL};
    start_chat_with(sets);
    struct test_client *anon = connect_client();
    struct test_client *user = connect_client();
    struct test_client *left = connect_client();
    do_register(user, "alice", PASSWD, "success");
    json_decref(do_login(user, "alice", PASSWD, "success"));
    /* One that logged out again is not anonymous for the deadline. */
    json_decref(do_login(left, "alice", PASSWD, "success"));
    do_logout(left);

    /* A ping is answered, but does not put the deadline off. */
    expect(anon, "success", "{ss}", "cmd", "ping");
    json_t *err = test_client_read_json(anon, 10000);
    ck_assert_msg(err != NULL, "an anonymous session was not told it passed login_timeout");
    check_json_str(err, "cmd", "error");
    check_json_str(err, "result", "timeout");
    ck_assert_msg(strstr(json_string_value(json_object_get(err, "reason")), "not logged in"),
                  "the reason does not say why: %s", check_dump(err));
    json_decref(err);
    ck_assert_msg(test_client_expect_eof(anon, 5000), "the anonymous session stayed open");
    test_client_close(anon);

    /* The logged-in sessions, connected after the other, are past their deadline too
     * once this wait is over, and are still served. */
    chatd_sleep_ms(1500);
    expect(user, "success", "{ss}", "cmd", "ping");
    expect(left, "success", "{ss}", "cmd", "ping");
    test_client_close(user);
    test_client_close(left);
    stop_chat();
}
END_TEST

static Suite *chat_login_deadline_suite(void)
{
    Suite *s = suite_create("chat_login_deadline");
    TCase *tc = tcase_create("login_deadline");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, anonymous_session_is_closed_at_login_timeout_and_logged_in_one_is_not);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(chat_login_deadline_suite());
}
