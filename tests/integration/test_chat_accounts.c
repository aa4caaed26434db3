/* test_chat_accounts.c - black-box tests of the chat accounts against the wire contract:
 * register, login and logout, what needs a login, the ids every reply echoes, a command
 * switched off, hostile passwords, and login tokens with logout "all" (version 2,
 * "Resuming without the password"). See chat_suite.h for the server and the helpers. */
#include "chat_suite.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

START_TEST(login_with_a_broken_device_ack_or_since_is_bad_request)
{
    start_chat();
    struct test_client *c = connect_client();
    do_register(c, "alice", PASSWD, "success");
    expect(c, "bad_request", "{ssssssss}", "cmd", "login", "user", "alice", "passwd", PASSWD,
           "device", "no spaces");
    expect_json(c, "bad_request",
                "{\"cmd\":\"login\",\"user\":\"alice\",\"passwd\":\"" PASSWD "\","
                "\"ack\":\"yes\"}");
    expect_json(c, "bad_request",
                "{\"cmd\":\"login\",\"user\":\"alice\",\"passwd\":\"" PASSWD "\","
                "\"since\":5}");
    /* Bound to nothing. */
    expect(c, "not_logged_in", "{ss}", "cmd", "logout");
    expect_json(c, "success",
                "{\"cmd\":\"login\",\"user\":\"alice\",\"passwd\":\"" PASSWD "\","
                "\"device\":\"phone-1.a_b\",\"ack\":true,\"since\":0}");
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

/* ---- login tokens and logout "all" ---- */

/* A 43-character token of the right alphabet that no server issued. */
#define NEVER_ISSUED "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

/* The "token" of a successful login_reply: a non-empty string, returned as a copy. */
static char *token_of(const json_t *reply)
{
    const char *t = json_string_value(json_object_get(reply, "token"));
    ck_assert_msg(t && *t, "want a \"token\" (a non-empty string) in %s", check_dump(reply));
    char *copy = strdup(t);
    ck_assert_ptr_nonnull(copy);
    return copy;
}

/* Password login on c (success); returns its token. */
static char *login_for_token(struct test_client *c, const char *user)
{
    json_t *reply = do_login(c, user, PASSWD, "success");
    char *t = token_of(reply);
    json_decref(reply);
    return t;
}

static json_t *token_login(struct test_client *c, const char *user, const char *token,
                           const char *result)
{
    return call(c, result, "{ssssss}", "cmd", "login", "user", user, "token", token);
}

static void expect_token_invalid(struct test_client *c, const char *user, const char *token)
{
    json_t *reply = token_login(c, user, token, "token_invalid");
    ck_assert_msg(json_is_string(json_object_get(reply, "reason")), "want a reason in %s",
                  check_dump(reply));
    json_decref(reply);
}

static long long tokens_of(const char *user)
{
    struct chatd_value name = {.type = CHATD_PARAM_TEXT, .s = user, .len = strlen(user)};
    struct chatd_rows *rows =
        query_chat_db("SELECT COUNT(*) FROM accounts_tokens WHERE user_name = ?", &name, 1);
    ck_assert_uint_eq(rows->n_rows, 1);
    long long n =
        rows->values[0].type == CHATD_PARAM_INT64 ? rows->values[0].i : atoll(rows->values[0].s);
    free_chat_rows(rows);
    return n;
}

START_TEST(a_token_logs_the_same_user_in_again_with_the_same_reply)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    add_friend(alice, "bob", "success");
    expect_friend_added(bob, "alice");
    group_cmd(alice, "create_group", "g1", "success");

    struct test_client *phone = connect_client();
    char *token = login_for_token(phone, "alice");
    ck_assert_str_ne(token, PASSWD);

    /* A new connection, no password: the same fields as a password login, and the same
     * token again (a token login does not replace it). */
    struct test_client *laptop = connect_client();
    json_t *reply = token_login(laptop, "alice", token, "success");
    assert_names(reply, "fri", 1, "bob");
    assert_names(reply, "group", 1, "g1");
    ck_assert_str_eq(json_string_value(json_object_get(reply, "token")), token);
    json_decref(reply);
    send_private(laptop, "bob", "from the laptop", "success");
    expect_private(bob, "alice", "from the laptop", 0);

    /* It keeps working until it expires; every password login issues a new one. */
    struct test_client *tablet = connect_client();
    json_decref(token_login(tablet, "alice", token, "success"));
    char *fresh = login_for_token(tablet, "alice");
    ck_assert_str_ne(fresh, token);
    json_decref(token_login(phone, "alice", fresh, "success"));
    json_decref(token_login(phone, "alice", token, "success"));

    free(fresh);
    free(token);
    test_client_close(tablet);
    test_client_close(laptop);
    test_client_close(phone);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(an_unknown_or_other_users_token_is_token_invalid)
{
    start_chat();
    register_only("alice");
    register_only("bob");
    struct test_client *a = connect_client();
    char *alices = login_for_token(a, "alice");

    struct test_client *c = connect_client();
    expect_token_invalid(c, "bob", alices);
    expect_token_invalid(c, "bob", NEVER_ISSUED);
    expect_token_invalid(c, "alice", NEVER_ISSUED);
    expect_token_invalid(c, "alice", "x");
    expect_token_invalid(c, "alice", "");
    /* One character changed, or the token padded. */
    char changed[64];
    snprintf(changed, sizeof(changed), "%s", alices);
    changed[0] = changed[0] == 'A' ? 'B' : 'A';
    expect_token_invalid(c, "alice", changed);
    snprintf(changed, sizeof(changed), "%s=", alices);
    expect_token_invalid(c, "alice", changed);
    /* An unknown user is user_not_exist, as with a password. */
    json_decref(token_login(c, "nobody", alices, "user_not_exist"));
    /* None of that logged c in; alice's token still works for alice. */
    expect(c, "not_logged_in", "{ss}", "cmd", "logout");
    json_decref(token_login(c, "alice", alices, "success"));

    free(alices);
    test_client_close(a);
    test_client_close(c);
    stop_chat();
}
END_TEST

START_TEST(login_needs_exactly_one_of_passwd_and_token)
{
    start_chat();
    register_only("alice");
    struct test_client *a = connect_client();
    char *token = login_for_token(a, "alice");
    struct test_client *c = connect_client();
    json_t *reply = call(c, "bad_request", "{ssssssss}", "cmd", "login", "user", "alice", "passwd",
                         PASSWD, "token", token);
    ck_assert_msg(json_is_string(json_object_get(reply, "reason")), "want a reason in %s",
                  check_dump(reply));
    json_decref(reply);
    reply = call(c, "bad_request", "{ssss}", "cmd", "login", "user", "alice");
    ck_assert_msg(json_is_string(json_object_get(reply, "reason")), "want a reason in %s",
                  check_dump(reply));
    json_decref(reply);
    expect(c, "bad_request", "{sssssi}", "cmd", "login", "user", "alice", "token", 7);
    expect(c, "not_logged_in", "{ss}", "cmd", "logout");
    free(token);
    test_client_close(a);
    test_client_close(c);
    stop_chat();
}
END_TEST

START_TEST(an_expired_token_is_token_invalid)
{
    start_chat_option("token_lifetime_s", "1");
    register_only("alice");
    struct test_client *c = connect_client();
    long long issued = tokens_of("alice");
    ck_assert_int_eq(issued, 0);
    char *token = login_for_token(c, "alice");
    struct test_client *d = connect_client();
    json_decref(token_login(d, "alice", token, "success"));
    struct timespec wait = {.tv_sec = 1, .tv_nsec = 300 * 1000000L};
    nanosleep(&wait, NULL);
    struct test_client *e = connect_client();
    expect_token_invalid(e, "alice", token);
    /* Sessions logged in with it stay logged in; the password still works. */
    expect(d, "success", "{ss}", "cmd", "logout");
    free(token);
    token = login_for_token(e, "alice");
    free(token);
    /* The expired token was dropped when the new one was stored. */
    ck_assert_int_eq(tokens_of("alice"), 1);
    test_client_close(c);
    test_client_close(d);
    test_client_close(e);
    stop_chat();
}
END_TEST

START_TEST(token_lifetime_0_switches_tokens_off)
{
    start_chat_option("token_lifetime_s", "0");
    register_only("alice");
    struct test_client *c = connect_client();
    json_t *reply = do_login(c, "alice", PASSWD, "success");
    ck_assert_msg(!json_object_get(reply, "token"), "want no token in %s", check_dump(reply));
    json_decref(reply);
    ck_assert_int_eq(tokens_of("alice"), 0);
    struct test_client *d = connect_client();
    expect_token_invalid(d, "alice", NEVER_ISSUED);
    test_client_close(c);
    test_client_close(d);
    stop_chat();
}
END_TEST

START_TEST(max_tokens_per_user_drops_the_oldest)
{
    start_chat_option("max_tokens_per_user", "2");
    register_only("alice");
    struct test_client *c = connect_client();
    char *t[3];
    for (int i = 0; i < 3; i++)
        t[i] = login_for_token(c, "alice");
    ck_assert_int_eq(tokens_of("alice"), 2);
    struct test_client *d = connect_client();
    expect_token_invalid(d, "alice", t[0]);
    json_decref(token_login(d, "alice", t[1], "success"));
    json_decref(token_login(d, "alice", t[2], "success"));
    for (int i = 0; i < 3; i++)
        free(t[i]);
    test_client_close(c);
    test_client_close(d);
    stop_chat();
}
END_TEST

START_TEST(logout_all_revokes_every_token_and_ends_the_other_sessions)
{
    start_chat();
    register_only("alice");
    struct test_client *bob = connect_client();
    do_register(bob, "bob", PASSWD, "success");
    char *bobs = login_for_token(bob, "bob");
    struct test_client *phone = connect_client();
    char *phones = login_for_token(phone, "alice");
    add_friend(phone, "bob", "success");
    expect_friend_added(bob, "alice");
    struct test_client *laptop = connect_client();
    char *laptops = login_for_token(laptop, "alice");
    struct test_client *tablet = connect_client();
    json_decref(token_login(tablet, "alice", phones, "success"));
    expect_quiet(bob); /* no presence for alice's second and third sessions */

    /* "all" must be a boolean; false is an ordinary logout. */
    expect(laptop, "bad_request", "{ssss}", "cmd", "logout", "all", "yes");
    expect(tablet, "success", "{sssb}", "cmd", "logout", "all", 0);
    expect(tablet, "not_logged_in", "{ss}", "cmd", "logout");
    json_decref(token_login(tablet, "alice", phones, "success"));

    expect(laptop, "success", "{sssb}", "cmd", "logout", "all", 1);
    /* alice is gone everywhere: her friend sees her offline once. */
    expect_presence(bob, "alice", "offline");
    expect_quiet(bob);
    /* The other sessions were sent nothing, are open and are logged out. */
    struct test_client *others[] = {phone, tablet, laptop};
    for (size_t i = 0; i < 3; i++) {
        expect_quiet(others[i]);
        send_private(others[i], "bob", "still there?", "not_logged_in");
        expect(others[i], "not_logged_in", "{ss}", "cmd", "logout");
    }
    /* Every token of alice is revoked, not bob's. */
    ck_assert_int_eq(tokens_of("alice"), 0);
    struct test_client *c = connect_client();
    expect_token_invalid(c, "alice", phones);
    expect_token_invalid(c, "alice", laptops);
    json_decref(token_login(c, "bob", bobs, "success"));
    /* The password still works, on a connection that was logged out. */
    char *again = login_for_token(phone, "alice");
    expect_presence(bob, "alice", "online");
    json_decref(token_login(tablet, "alice", again, "success"));

    free(again);
    free(bobs);
    free(phones);
    free(laptops);
    test_client_close(c);
    test_client_close(phone);
    test_client_close(laptop);
    test_client_close(tablet);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(the_database_keeps_only_hashes_of_tokens)
{
    start_chat();
    register_only("alice");
    struct test_client *c = connect_client();
    char *t[2];
    for (int i = 0; i < 2; i++)
        t[i] = login_for_token(c, "alice");
    struct chatd_rows *rows = query_chat_db("SELECT * FROM accounts_tokens", NULL, 0);
    ck_assert_uint_eq(rows->n_rows, 2);
    for (size_t r = 0; r < rows->n_rows; r++) {
        for (size_t col = 0; col < rows->n_cols; col++) {
            const struct chatd_value *v = &rows->values[r * rows->n_cols + col];
            if (v->type != CHATD_PARAM_TEXT && v->type != CHATD_PARAM_BLOB)
                continue;
            for (int i = 0; i < 2; i++)
                ck_assert_msg(!strstr(v->s, t[i]),
                              "column %zu of accounts_tokens holds the token %s", col, t[i]);
        }
    }
    free_chat_rows(rows);
    /* Created and expiry in Unix ms, 30 days apart by default. */
    rows = query_chat_db("SELECT expires_at - created FROM accounts_tokens", NULL, 0);
    for (size_t r = 0; r < rows->n_rows; r++) {
        const struct chatd_value *v = &rows->values[r];
        long long life = v->type == CHATD_PARAM_INT64 ? v->i : atoll(v->s);
        ck_assert_int_eq(life, 30LL * 24 * 3600 * 1000);
    }
    free_chat_rows(rows);
    free(t[0]);
    free(t[1]);
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
    tcase_add_test(tc, login_with_a_broken_device_ack_or_since_is_bad_request);
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
    tcase_add_test(tc, a_token_logs_the_same_user_in_again_with_the_same_reply);
    tcase_add_test(tc, an_unknown_or_other_users_token_is_token_invalid);
    tcase_add_test(tc, login_needs_exactly_one_of_passwd_and_token);
    tcase_add_test(tc, an_expired_token_is_token_invalid);
    tcase_add_test(tc, token_lifetime_0_switches_tokens_off);
    tcase_add_test(tc, max_tokens_per_user_drops_the_oldest);
    tcase_add_test(tc, logout_all_revokes_every_token_and_ends_the_other_sessions);
    tcase_add_test(tc, the_database_keeps_only_hashes_of_tokens);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(chat_accounts_suite());
}
