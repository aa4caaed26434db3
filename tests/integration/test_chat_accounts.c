/* test_chat_accounts.c - black-box tests of the chat accounts against the wire contract:
 * register, login and logout, what needs a login, the ids every reply echoes, a command
 * switched off, and hostile passwords. See chat_suite.h for the server and the helpers. */
#include "chat_suite.h"

#include <check.h>

/* ---- register and login ---- */

START_TEST(register_accepts_letters_digits_underscore_1_to_32)
{
    start_chat();
    struct test_client *c = connect_client();
    do_register(c, "LiHua", "11111", "success");
    do_register(c, "a", PASSWD, "success");
    do_register(c, "A234567890_b234567890_c234567890", PASSWD, "success");
    do_register(c, "_under_score_9", PASSWD, "success");
    json_t *reply = do_login(c, "LiHua", "11111", "success");
    assert_names(reply, "fri", 0);
    assert_names(reply, "group", 0);
    json_decref(reply);
    test_client_close(c);
    stop_chat();
}
END_TEST

START_TEST(register_refuses_a_taken_name_and_keeps_the_first_password)
{
    start_chat();
    struct test_client *c = connect_client();
    do_register(c, "bob", "first", "success");
    expect_failure_with_reason(c, "{ssssss}", "cmd", "register", "user", "bob", "passwd", "second");
    json_decref(do_login(c, "bob", "second", "passwd_error"));
    json_decref(do_login(c, "bob", "first", "success"));
    test_client_close(c);
    stop_chat();
}
END_TEST

START_TEST(register_refuses_invalid_names)
{
    static const char *const names[] = {
        "bad name!", "abcdefghijabcdefghijabcdefghij123", "d\xc3\xa9j\xc3\xa0", "a-b", "a.b",
        " alice",
    };
    start_chat();
    struct test_client *c = connect_client();
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        expect_failure_with_reason(c, "{ssssss}", "cmd", "register", "user", names[i], "passwd",
                                   PASSWD);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        json_decref(do_login(c, names[i], PASSWD, "user_not_exist"));
    test_client_close(c);
    stop_chat();
}
END_TEST

START_TEST(register_refuses_an_empty_password)
{
    start_chat();
    struct test_client *c = connect_client();
    expect_failure_with_reason(c, "{ssssss}", "cmd", "register", "user", "alice", "passwd", "");
    /* Nothing was stored: the name is still free. */
    json_decref(do_login(c, "alice", "", "user_not_exist"));
    do_register(c, "alice", PASSWD, "success");
    test_client_close(c);
    stop_chat();
}
END_TEST

START_TEST(login_of_an_unknown_user_is_user_not_exist)
{
    start_chat();
    struct test_client *c = connect_client();
    json_decref(do_login(c, "nobody", PASSWD, "user_not_exist"));
    do_register(c, "alice", PASSWD, "success");
    json_decref(do_login(c, "Alice_", PASSWD, "user_not_exist"));
    /* Still not logged in. */
    expect(c, "not_logged_in", "{ss}", "cmd", "logout");
    test_client_close(c);
    stop_chat();
}
END_TEST

START_TEST(login_with_a_wrong_password_is_passwd_error)
{
    start_chat();
    struct test_client *c = connect_client();
    do_register(c, "alice", PASSWD, "success");
    json_decref(do_login(c, "alice", "wrong", "passwd_error"));
    json_decref(do_login(c, "alice", "", "passwd_error"));
    expect(c, "not_logged_in", "{ss}", "cmd", "logout");
    json_decref(do_login(c, "alice", PASSWD, "success"));
    test_client_close(c);
    stop_chat();
}
END_TEST

START_TEST(login_reply_lists_friends_and_groups)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    register_only("carol");
    add_friend(alice, "bob", "success");
    expect_friend_added(bob, "alice");
    add_friend(alice, "carol", "success");
    group_cmd(alice, "create_group", "g1", "success");
    make_group("g2", bob, alice);

    do_logout(alice);
    json_t *reply = do_login(alice, "alice", PASSWD, "success");
    assert_names(reply, "fri", 2, "bob", "carol");
    assert_names(reply, "group", 2, "g1", "g2");
    json_decref(reply);

    struct test_client *carol = connect_client();
    reply = do_login(carol, "carol", PASSWD, "success");
    assert_names(reply, "fri", 1, "alice");
    assert_names(reply, "group", 0);
    json_decref(reply);

    test_client_close(alice);
    test_client_close(bob);
    test_client_close(carol);
    stop_chat();
}
END_TEST

START_TEST(logout_ends_the_login_but_not_the_connection)
{
    start_chat();
    struct test_client *bob = new_user("bob");
    struct test_client *c = new_user("alice");
    do_logout(c);
    send_private(c, "bob", "after logout", "not_logged_in");
    add_friend(c, "bob", "not_logged_in");
    expect(c, "not_logged_in", "{ss}", "cmd", "logout");
    expect_quiet(c);
    expect_quiet(bob);
    /* The same connection can log in again. */
    assert_nothing_pending(login_settled(c, "alice"), "alice");
    send_private(c, "bob", "back", "success");
    expect_private(bob, "alice", "back", 0);
    test_client_close(c);
    test_client_close(bob);
    stop_chat();
}
END_TEST

/* Every command but register, login and ping, sent without a login. */
static const char *const need_login[] = {
    "{\"cmd\":\"logout\"}",
    "{\"cmd\":\"private_chat\",\"user_to\":\"bob\",\"text\":\"hi\"}",
    "{\"cmd\":\"add_friend\",\"friend\":\"bob\"}",
    "{\"cmd\":\"create_group\",\"group\":\"g1\"}",
    "{\"cmd\":\"join_group\",\"group\":\"g1\"}",
    "{\"cmd\":\"leave_group\",\"group\":\"g1\"}",
    "{\"cmd\":\"group_chat\",\"group\":\"g1\",\"text\":\"hi\"}",
};

START_TEST(commands_other_than_register_login_ping_need_a_login)
{
    start_chat();
    struct test_client *c = connect_client();
    for (size_t i = 0; i < sizeof(need_login) / sizeof(need_login[0]); i++)
        expect_json(c, "not_logged_in", need_login[i]);
    /* register, login and ping work without a login. */
    expect(c, "success", "{ss}", "cmd", "ping");
    do_register(c, "bob", PASSWD, "success");
    json_decref(do_login(c, "bob", "wrong", "passwd_error"));
    /* A failed login leaves the connection logged out: every one of them still is. */
    for (size_t i = 0; i < sizeof(need_login) / sizeof(need_login[0]); i++)
        expect_json(c, "not_logged_in", need_login[i]);
    test_client_close(c);
    /* Nothing sent without a login was stored for bob. */
    struct test_client *bob = session_as("bob", 0);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(every_reply_echoes_integer_and_string_ids)
{
    /* call() alternates integer and string ids and checks the echo; each request is sent
     * twice here so that every command is seen with both kinds. */
    start_chat();
    struct test_client *bob = new_user("bob");
    struct test_client *c = connect_client();
    for (int i = 0; i < 2; i++)
        expect(c, "success", "{ss}", "cmd", "ping");
    do_register(c, "alice", PASSWD, "success");
    do_register(c, "alice", PASSWD, "failure");
    json_decref(do_login(c, "alice", "x", "passwd_error"));
    json_decref(do_login(c, "alice", PASSWD, "success"));
    json_decref(settle(c, "alice"));
    for (int i = 0; i < 2; i++) {
        send_private(c, "bob", "hi", "success");
        expect_private(bob, "alice", "hi", 0);
    }
    add_friend(c, "bob", "success");
    expect_friend_added(bob, "alice");
    add_friend(c, "bob", "already_friends");
    group_cmd(c, "create_group", "g1", "success");
    group_cmd(c, "create_group", "g1", "failure");
    group_cmd(c, "join_group", "g1", "already_member");
    group_cmd(c, "join_group", "g1", "already_member");
    for (int i = 0; i < 2; i++)
        send_group(c, "g1", "to myself", "success");
    group_cmd(c, "leave_group", "g1", "success");
    group_cmd(c, "leave_group", "g1", "not_member");
    do_logout(c);
    expect(c, "not_logged_in", "{ss}", "cmd", "logout");
    test_client_close(c);
    test_client_close(bob);
    stop_chat();
}
END_TEST

/* ---- switches and credentials ---- */

START_TEST(a_command_switched_off_is_unknown_cmd)
{
    start_chat_option("register", "no");
    struct test_client *c = connect_client();
    static const char request[] = "{\"cmd\":\"register\",\"user\":\"eve\",\"passwd\":\"x\"}";
    check_send(c, request, sizeof(request) - 1);
    json_t *reply = check_read_json(c);
    ck_assert_msg(check_json_str_is(reply, "cmd", "error") &&
                      check_json_str_is(reply, "result", "unknown_cmd") &&
                      check_json_str_is(reply, "request", "register"),
                  "got %s", check_dump(reply));
    json_decref(reply);
    test_client_close(c);
    stop_chat();
}
END_TEST

START_TEST(hostile_passwords_work_and_only_exactly)
{
    start_chat();
    static const char passwd[] = "p'); DROP TABLE users; -- \\\" ünïcødé 😀";
    struct test_client *c = connect_client();
    do_register(c, "mallory", passwd, "success");
    json_decref(do_login(c, "mallory", "p'); DROP TABLE users; -- ", "passwd_error"));
    json_decref(do_login(c, "mallory", passwd, "success"));
    test_client_close(c);
    stop_chat();
}
END_TEST

static Suite *chat_accounts_suite(void)
{
    Suite *s = suite_create("chat_accounts");

    /* Generous bounds: a test waits at most a few seconds unless something is wrong. */
    TCase *tc = tcase_create("accounts");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, register_accepts_letters_digits_underscore_1_to_32);
    tcase_add_test(tc, register_refuses_a_taken_name_and_keeps_the_first_password);
    tcase_add_test(tc, register_refuses_invalid_names);
    tcase_add_test(tc, register_refuses_an_empty_password);
    tcase_add_test(tc, login_of_an_unknown_user_is_user_not_exist);
    tcase_add_test(tc, login_with_a_wrong_password_is_passwd_error);
    tcase_add_test(tc, login_reply_lists_friends_and_groups);
    tcase_add_test(tc, logout_ends_the_login_but_not_the_connection);
    tcase_add_test(tc, commands_other_than_register_login_ping_need_a_login);
    tcase_add_test(tc, every_reply_echoes_integer_and_string_ids);
    tcase_add_test(tc, a_command_switched_off_is_unknown_cmd);
    tcase_add_test(tc, hostile_passwords_work_and_only_exactly);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(chat_accounts_suite());
}
