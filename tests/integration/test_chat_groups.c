/* test_chat_groups.c - black-box tests of groups against the wire contract:
 * create_group, join_group, leave_group and group_chat with every result word, the push
 * to every other member's sessions, and offline delivery of group messages (in order,
 * once, none from before joining, a large backlog). See chat_suite.h for the server and
 * the helpers. */
#include "chat_suite.h"

#include <check.h>

/* ---- groups ---- */

START_TEST(create_group_succeeds_and_refuses_a_taken_or_invalid_name)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    group_cmd(alice, "create_group", "g1", "success");
    expect_failure_with_reason(bob, "{ssss}", "cmd", "create_group", "group", "g1");
    expect_failure_with_reason(alice, "{ssss}", "cmd", "create_group", "group", "g1");
    expect_failure_with_reason(alice, "{ssss}", "cmd", "create_group", "group", "bad group!");
    /* The creator is the first member. */
    group_cmd(alice, "join_group", "g1", "already_member");
    send_group(alice, "g1", "first", "success");
    do_logout(alice);
    json_t *reply = do_login(alice, "alice", PASSWD, "success");
    assert_names(reply, "group", 1, "g1");
    json_decref(reply);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(join_group_answers_success_group_not_exist_already_member)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    group_cmd(alice, "create_group", "g1", "success");
    group_cmd(bob, "join_group", "nogroup", "group_not_exist");
    group_cmd(bob, "join_group", "g1", "success");
    group_cmd(bob, "join_group", "g1", "already_member");
    send_group(bob, "g1", "joined", "success");
    expect_group(alice, "g1", "bob", "joined", 0);
    do_logout(bob);
    json_t *reply = do_login(bob, "bob", PASSWD, "success");
    assert_names(reply, "group", 1, "g1");
    json_decref(reply);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(leave_group_answers_success_group_not_exist_not_member)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    make_group("g1", alice, bob);
    /* Cache the group's members with a message first. */
    send_group(alice, "g1", "before", "success");
    expect_group(bob, "g1", "alice", "before", 0);
    group_cmd(bob, "leave_group", "g1", "success");
    group_cmd(bob, "leave_group", "g1", "not_member");
    group_cmd(bob, "leave_group", "nogroup", "group_not_exist");
    /* A former member neither sends nor receives. */
    send_group(bob, "g1", "still here?", "not_member");
    send_group(alice, "g1", "after", "success");
    expect_quiet(bob);
    do_logout(bob);
    json_t *reply = do_login(bob, "bob", PASSWD, "success");
    assert_names(reply, "group", 0);
    json_decref(reply);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(group_chat_answers_success_group_not_exist_not_member)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    group_cmd(alice, "create_group", "g1", "success");
    /* Before and after the server has the group's members in memory. */
    send_group(bob, "g1", "let me in", "not_member");
    send_group(alice, "g1", "hello", "success");
    send_group(bob, "g1", "let me in", "not_member");
    send_group(alice, "nogroup", "hello", "group_not_exist");
    send_group(alice, "no group!", "hello", "group_not_exist");
    expect_quiet(alice);
    expect_quiet(bob);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(group_message_reaches_every_other_members_sessions_but_not_the_sender)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob1 = new_user("bob");
    struct test_client *bob2 = second_session(bob1, "bob");
    struct test_client *carol = new_user("carol");
    struct test_client *dave = new_user("dave");
    make_group("g1", alice, bob1);
    group_cmd(carol, "join_group", "g1", "success");

    send_group(alice, "g1", "hello all", "success");
    json_t *m1 = check_read_json(bob1);
    check_group(m1, "g1", "alice", "hello all", 0);
    json_t *m2 = check_read_json(bob2);
    if (!json_equal(m1, m2))
        ck_abort_msg("bob's sessions got different pushes: %s and %s", check_dump(m1),
                     check_dump(m2));
    json_decref(m1);
    json_decref(m2);
    expect_group(carol, "g1", "alice", "hello all", 0);
    expect_quiet(alice);
    expect_quiet(dave);

    send_group(bob1, "g1", "hi from bob", "success");
    expect_group(alice, "g1", "bob", "hi from bob", 0);
    expect_group(carol, "g1", "bob", "hi from bob", 0);
    expect_quiet(bob1);
    expect_quiet(bob2);
    expect_quiet(dave);

    test_client_close(alice);
    test_client_close(bob1);
    test_client_close(bob2);
    test_client_close(carol);
    test_client_close(dave);
    stop_chat();
}
END_TEST

/* A group whose members' names, joined, pass MariaDB's group_concat_max_len (1 MiB by
 * default) comes cut from the plugin's one-query read, which it then reads again a row
 * per member. 40,000 members with 32-byte names, who never log in, sort before the two
 * real ones: the cut list holds neither, so the sender would be "not_member". */
START_TEST(a_group_longer_than_group_concat_max_len_reaches_every_member)
{
    start_chat();
    struct test_client *zara = new_user("zara");
    struct test_client *zed = new_user("zed");
    make_group("big", zara, zed);
    struct chatd_value group = {.type = CHATD_PARAM_TEXT, .s = "big", .len = 3};
    exec_chat_db("INSERT INTO groups_members (group_id, user) "
                 "SELECT g.id, CONCAT('member-', LPAD(s.seq, 25, '0')) "
                 "FROM groups_groups g JOIN seq_1_to_40000 s WHERE g.name = ?",
                 &group, 1);
    send_group(zara, "big", "to all 40,002", "success");
    expect_group(zed, "big", "zara", "to all 40,002", 0);
    send_group(zed, "big", "and back", "success");
    expect_group(zara, "big", "zed", "and back", 0);
    test_client_close(zara);
    test_client_close(zed);
    stop_chat();
}
END_TEST

/* ---- group offline delivery ---- */

START_TEST(group_messages_sent_while_a_member_is_offline_arrive_at_login_in_order_once)
{
    static const char *const texts[] = {"m1", "m2", "m3"};
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    make_group("g1", alice, bob);
    do_logout(bob);
    for (size_t i = 0; i < 3; i++)
        send_group(alice, "g1", texts[i], "success");
    expect_quiet(bob);

    json_t *got = login_settled(bob, "bob");
    assert_groups(got, "g1", "alice", texts, 3, 1);
    assert_distinct_msg_ids(got);
    json_decref(got);

    do_logout(bob);
    assert_nothing_pending(login_settled(bob, "bob"), "bob");
    test_client_close(bob);
    bob = session_as("bob", 0);
    test_client_close(bob);
    test_client_close(alice);
    stop_chat();
}
END_TEST

START_TEST(group_messages_received_live_are_not_delivered_again_at_login)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    make_group("g1", alice, bob);
    /* Friends, so that alice sees when the server has ended bob's session. */
    add_friend(alice, "bob", "success");
    expect_friend_added(bob, "alice");

    send_group(alice, "g1", "live 1", "success");
    expect_group(bob, "g1", "alice", "live 1", 0);
    do_logout(bob);
    expect_presence(alice, "bob", "offline");
    json_decref(do_login(bob, "bob", PASSWD, "success"));
    expect_presence(alice, "bob", "online");
    assert_nothing_pending(settle(bob, "bob"), "bob");

    /* The same after the connection is closed instead of a logout. */
    send_group(alice, "g1", "live 2", "success");
    expect_group(bob, "g1", "alice", "live 2", 0);
    test_client_close(bob);
    expect_presence(alice, "bob", "offline");
    bob = connect_client();
    json_decref(do_login(bob, "bob", PASSWD, "success"));
    expect_presence(alice, "bob", "online");
    assert_nothing_pending(settle(bob, "bob"), "bob");

    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(member_who_joined_after_a_message_does_not_get_it)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *carol = new_user("carol");
    group_cmd(alice, "create_group", "g1", "success");
    send_group(alice, "g1", "before carol", "success");
    group_cmd(carol, "join_group", "g1", "success");
    /* Joining pushes no history. */
    assert_nothing_pending(settle(carol, "carol"), "carol");
    do_logout(carol);
    send_group(alice, "g1", "after carol", "success");

    json_t *got = login_settled(carol, "carol");
    static const char *const texts[] = {"after carol"};
    assert_groups(got, "g1", "alice", texts, 1, 1);
    json_decref(got);

    /* A user who joins while offline messages are waiting elsewhere gets none of them. */
    register_only("dave");
    struct test_client *dave = session_as("dave", 0);
    group_cmd(dave, "join_group", "g1", "success");
    do_logout(dave);
    assert_nothing_pending(login_settled(dave, "dave"), "dave");

    test_client_close(alice);
    test_client_close(carol);
    test_client_close(dave);
    stop_chat();
}
END_TEST

START_TEST(a_large_group_backlog_arrives_whole_in_order_and_once)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    make_group("big", alice, bob);
    do_logout(bob);
    char text[64];
    for (int i = 1; i <= BIG_BACKLOG; i++) {
        numbered_text(text, sizeof(text), i);
        send_group(alice, "big", text, "success");
    }
    json_t *got = login_settled(bob, "bob");
    check_numbered(got, "group_chat_recv", BIG_BACKLOG);
    json_decref(got);
    do_logout(bob);
    assert_nothing_pending(login_settled(bob, "bob"), "bob");
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

static Suite *chat_groups_suite(void)
{
    Suite *s = suite_create("chat_groups");

    /* Generous bounds: a test waits at most a few seconds unless something is wrong. */
    TCase *tc = tcase_create("groups");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, create_group_succeeds_and_refuses_a_taken_or_invalid_name);
    tcase_add_test(tc, join_group_answers_success_group_not_exist_already_member);
    tcase_add_test(tc, leave_group_answers_success_group_not_exist_not_member);
    tcase_add_test(tc, group_chat_answers_success_group_not_exist_not_member);
    tcase_add_test(tc, group_message_reaches_every_other_members_sessions_but_not_the_sender);
    tcase_add_test(tc, a_group_longer_than_group_concat_max_len_reaches_every_member);
    suite_add_tcase(s, tc);

    tc = tcase_create("group_offline");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, group_messages_sent_while_a_member_is_offline_arrive_at_login_in_order_once);
    tcase_add_test(tc, group_messages_received_live_are_not_delivered_again_at_login);
    tcase_add_test(tc, member_who_joined_after_a_message_does_not_get_it);
    tcase_add_test(tc, a_large_group_backlog_arrives_whole_in_order_and_once);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(chat_groups_suite());
}
