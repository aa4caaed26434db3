/* test_chat_friends.c - black-box tests of friends and presence against the wire
 * contract: add_friend and its push, the friend lists of the login reply, a user on
 * several devices, and presence when the first session starts and the last ends (by a
 * logout, a close or the idle timeout). See chat_suite.h for the server and the helpers. */
#include "chat_suite.h"

#include <check.h>

/* ---- friends ---- */

START_TEST(add_friend_answers_success_user_not_exist_already_friends_and_bad_request_for_self)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    add_friend(alice, "bob", "success");
    expect_friend_added(bob, "alice");
    add_friend(alice, "bob", "already_friends");
    /* Mutual: the other direction exists too. */
    add_friend(bob, "alice", "already_friends");
    add_friend(alice, "nobody", "user_not_exist");
    add_friend(alice, "alice", "bad_request");
    expect_quiet(alice);
    expect_quiet(bob);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(add_friend_tells_an_online_friend_and_lists_both_ways)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    register_only("carol");
    add_friend(alice, "bob", "success");
    json_t *msg = read_push(bob, "friend_added");
    check_json_str(msg, "user_from", "alice");
    json_decref(msg);
    expect_quiet(alice);
    /* An offline user learns it from the login reply. */
    add_friend(bob, "carol", "success");
    expect_quiet(bob);

    do_logout(alice);
    expect_presence(bob, "alice", "offline");
    json_t *reply = do_login(alice, "alice", PASSWD, "success");
    assert_names(reply, "fri", 1, "bob");
    json_decref(reply);
    expect_presence(bob, "alice", "online");
    do_logout(bob);
    reply = do_login(bob, "bob", PASSWD, "success");
    assert_names(reply, "fri", 2, "alice", "carol");
    json_decref(reply);
    struct test_client *carol = connect_client();
    reply = do_login(carol, "carol", PASSWD, "success");
    assert_names(reply, "fri", 1, "bob");
    json_decref(reply);
    test_client_close(alice);
    test_client_close(bob);
    test_client_close(carol);
    stop_chat();
}
END_TEST

/* ---- several devices and presence ---- */

/* Read one push from each of alice's two sessions: the same on both. The caller frees
 * the returned copy. */
static json_t *read_on_both(struct test_client *a1, struct test_client *a2)
{
    json_t *m1 = check_read_json(a1);
    json_t *m2 = check_read_json(a2);
    if (!json_equal(m1, m2))
        ck_abort_msg("the two sessions got different pushes: %s and %s", check_dump(m1),
                     check_dump(m2));
    json_decref(m2);
    return m1;
}

START_TEST(a_user_on_two_connections_gets_every_push_on_both)
{
    start_chat();
    struct test_client *a1 = new_user("alice");
    struct test_client *a2 = second_session(a1, "alice");
    struct test_client *bob = new_user("bob");
    struct test_client *carol = new_user("carol");
    make_group("g1", bob, a1);

    send_private(bob, "alice", "private to both", "success");
    json_t *msg = read_on_both(a1, a2);
    check_private(msg, "bob", "private to both", 0);
    json_decref(msg);

    send_group(bob, "g1", "group to both", "success");
    msg = read_on_both(a1, a2);
    check_group(msg, "g1", "bob", "group to both", 0);
    json_decref(msg);

    add_friend(carol, "alice", "success");
    msg = read_on_both(a1, a2);
    check_json_str(msg, "cmd", "friend_added");
    check_json_str(msg, "user_from", "carol");
    check_json_no_key(msg, "id");
    json_decref(msg);

    do_logout(carol);
    msg = read_on_both(a1, a2);
    check_json_str(msg, "cmd", "presence");
    check_json_str(msg, "user", "carol");
    check_json_str(msg, "status", "offline");
    json_decref(msg);

    json_decref(do_login(carol, "carol", PASSWD, "success"));
    msg = read_on_both(a1, a2);
    check_json_str(msg, "cmd", "presence");
    check_json_str(msg, "user", "carol");
    check_json_str(msg, "status", "online");
    json_decref(msg);

    /* A message sent from one of alice's sessions is not echoed to the other. */
    send_private(a2, "bob", "from the second device", "success");
    expect_private(bob, "alice", "from the second device", 0);
    expect_quiet(a1);
    expect_quiet(a2);

    test_client_close(a1);
    test_client_close(a2);
    test_client_close(bob);
    test_client_close(carol);
    stop_chat();
}
END_TEST

START_TEST(second_login_while_online_delivers_nothing_already_delivered)
{
    start_chat();
    struct test_client *bob = new_user("bob");
    register_only("alice");
    group_cmd(bob, "create_group", "g1", "success");
    /* One message waits for alice; she gets it at her first login. */
    send_private(bob, "alice", "stored", "offline");
    struct test_client *a1 = connect_client();
    json_t *got = login_settled(a1, "alice");
    static const char *const stored[] = {"stored"};
    assert_privates(got, "bob", stored, 1, 1);
    json_decref(got);
    group_cmd(a1, "join_group", "g1", "success");
    /* Live messages while she is online. */
    send_group(bob, "g1", "live group", "success");
    expect_group(a1, "g1", "bob", "live group", 0);
    send_private(bob, "alice", "live private", "success");
    expect_private(a1, "bob", "live private", 0);

    /* A second device logs in: nothing was stored while no session was online. */
    struct test_client *a2 = second_session(a1, "alice");

    test_client_close(a1);
    test_client_close(a2);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(presence_is_sent_when_the_first_session_starts_and_the_last_ends)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *b1 = new_user("bob");
    struct test_client *carol = new_user("carol"); /* not a friend */
    add_friend(alice, "bob", "success");
    expect_friend_added(b1, "alice");

    /* One session: logout and login are both told. */
    do_logout(b1);
    expect_presence(alice, "bob", "offline");
    json_decref(do_login(b1, "bob", PASSWD, "success"));
    expect_presence(alice, "bob", "online");
    expect_quiet(alice);
    expect_quiet(carol);

    /* A second session is not news, nor is the end of one of two. */
    struct test_client *b2 = connect_client();
    json_decref(do_login(b2, "bob", PASSWD, "success"));
    expect_quiet(alice);
    do_logout(b1);
    expect_quiet(alice);
    json_decref(do_login(b1, "bob", PASSWD, "success"));
    expect_quiet(alice);
    /* The server may notice a close later; if it wrongly announced it, the extra
     * presence shows up before a later ping reply. */
    test_client_close(b1);
    do_logout(b2);
    expect_presence(alice, "bob", "offline");
    expect_quiet(alice);

    /* The last session ending by a close is told too. */
    json_decref(do_login(b2, "bob", PASSWD, "success"));
    expect_presence(alice, "bob", "online");
    test_client_close(b2);
    expect_presence(alice, "bob", "offline");
    expect_quiet(alice);
    expect_quiet(carol);

    test_client_close(alice);
    test_client_close(carol);
    stop_chat();
}
END_TEST

START_TEST(presence_goes_to_friends_both_ways)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    add_friend(alice, "bob", "success");
    expect_friend_added(bob, "alice");
    /* Bob added nobody himself, yet he hears of alice. */
    do_logout(alice);
    expect_presence(bob, "alice", "offline");
    json_decref(do_login(alice, "alice", PASSWD, "success"));
    expect_presence(bob, "alice", "online");
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(an_idle_timeout_ends_presence_like_a_logout)
{
    const char *const sets[] = {"server.idle_timeout=1", NULL};
    start_chat_with(sets);
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    add_friend(alice, "bob", "success");
    expect_friend_added(bob, "alice");
    /* alice keeps talking; bob says nothing and is cut off after a second. */
    static const char ping[] = "{\"cmd\":\"ping\"}";
    for (int i = 0; i < 60; i++) {
        check_send(alice, ping, sizeof(ping) - 1);
        for (;;) {
            json_t *msg = check_read_json(alice);
            if (check_json_str_is(msg, "cmd", "ping_reply")) {
                json_decref(msg);
                break;
            }
            check_json_str(msg, "cmd", "presence");
            check_json_str(msg, "user", "bob");
            check_json_str(msg, "status", "offline");
            json_decref(msg);
            json_decref(check_read_json(alice)); /* the ping's reply */
            test_client_close(alice);
            test_client_close(bob);
            stop_chat();
            return;
        }
        chatd_sleep_ms(100);
    }
    ck_abort_msg("no offline presence within 6 s of bob going idle");
}
END_TEST

static Suite *chat_friends_suite(void)
{
    Suite *s = suite_create("chat_friends");

    /* Generous bounds: a test waits at most a few seconds unless something is wrong. */
    TCase *tc = tcase_create("friends");
    tcase_set_timeout(tc, 60);
    tcase_add_test(
        tc, add_friend_answers_success_user_not_exist_already_friends_and_bad_request_for_self);
    tcase_add_test(tc, add_friend_tells_an_online_friend_and_lists_both_ways);
    suite_add_tcase(s, tc);

    tc = tcase_create("devices_and_presence");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_user_on_two_connections_gets_every_push_on_both);
    tcase_add_test(tc, second_login_while_online_delivers_nothing_already_delivered);
    tcase_add_test(tc, presence_is_sent_when_the_first_session_starts_and_the_last_ends);
    tcase_add_test(tc, presence_goes_to_friends_both_ways);
    tcase_add_test(tc, an_idle_timeout_ends_presence_like_a_logout);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(chat_friends_suite());
}
