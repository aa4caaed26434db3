/* test_chat_limits.c - black-box tests of the chat commands' limits and of hostile input
 * against the wire contract: group, member, offline and text size limits, spoofed
 * user_from, hostile text round trips and names with SQL metacharacters. See
 * chat_suite.h for the server and the helpers. */
#include "chat_plugin.h"
#include "chat_suite.h"

#include <check.h>

/* Hostile text: SQL metacharacters, quotes, backslashes, control characters, Unicode. */
static const char *const hostile_texts[] = {
    "Robert'); DROP TABLE users; -- \\\" \xc3\xbcn\xc3\xaf"
    "c\xc3\xb8"
    "d\xc3\xa9 \xf0\x9f\x98\x80",
    "' OR '1'='1",
    "\\'; DELETE FROM private_messages; --\\",
    "%_\\%\\_ `backtick` \"double\" 'single' \\\\ \\0 \\n",
    "tab\there\nnewline\r\nand a line separator \xe2\x80\xa8 too",
    "\xe4\xbd\xa0\xe5\xa5\xbd, \xd0\xbc\xd0\xb8\xd1\x80, \xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7",
    "0x27 \\x27 \\u0027 CHAR(39) \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd",
};
#define N_HOSTILE (sizeof(hostile_texts) / sizeof(hostile_texts[0]))

/* Names a chat server must refuse; the SQL ones must never reach a query as SQL. */
static const char *const bad_names[] = {
    "Robert'); DROP TABLE users; --",
    "x' OR '1'='1",
    "alice' -- ",
    "a;b",
    "g`1",
    "bob\\",
    "\"quoted\"",
};
#define N_BAD_NAMES (sizeof(bad_names) / sizeof(bad_names[0]))

/* ---- limits ---- */

START_TEST(limits_are_answered_with_clear_replies)
{
    char groups[CHAT_PLUGIN_TEXT_MAX], members[CHAT_PLUGIN_TEXT_MAX], stored[CHAT_PLUGIN_TEXT_MAX];
    const char *const sets[] = {chat_plugin_set(groups, "max_groups_per_user", "1"),
                                chat_plugin_set(members, "max_members_per_group", "2"),
                                chat_plugin_set(stored, "max_offline_messages", "2"), NULL};
    start_chat_with(sets);
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    struct test_client *carol = new_user("carol");
    register_only("dave");

    group_cmd(alice, "create_group", "g1", "success");
    expect_failure_with_reason(alice, "{ssss}", "cmd", "create_group", "group", "g2");
    group_cmd(bob, "join_group", "g1", "success");
    group_cmd(carol, "join_group", "g1", "forbidden"); /* full: two members */
    group_cmd(carol, "create_group", "g3", "success");
    group_cmd(carol, "join_group", "g1", "forbidden"); /* and carol is in one group already */

    send_private(alice, "dave", "one", "offline");
    send_private(alice, "dave", "two", "offline");
    json_t *reply = call(alice, "forbidden", "{ssssss}", "cmd", "private_chat", "user_to", "dave",
                         "text", "three");
    ck_assert_msg(json_is_string(json_object_get(reply, "reason")), "no reason in %s",
                  check_dump(reply));
    json_decref(reply);

    test_client_close(alice);
    test_client_close(bob);
    test_client_close(carol);
    stop_chat();
}
END_TEST

/* max_text_bytes = 16: texts of 16 and 17 bytes, and of 8 and 9 two-byte characters
 * (the limit counts bytes). */
#define AT_LIMIT        "0123456789abcdef"
#define OVER_LIMIT      "0123456789abcdefg"
#define WIDE_AT_LIMIT   "\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc"
#define WIDE_OVER_LIMIT WIDE_AT_LIMIT "\xc3\xbc"

/* A private (to a user) or group (to a group) message from alice. */
struct text_case {
    int group;
    const char *to;
    const char *text;
};

static void send_text(struct test_client *c, const struct text_case *t, const char *result)
{
    if (t->group)
        send_group(c, t->to, t->text, result);
    else
        send_private(c, t->to, t->text, result);
}

/* Refused with bad_request; carol is offline. */
static const struct text_case too_long[] = {
    {0, "bob", OVER_LIMIT}, {0, "bob", WIDE_OVER_LIMIT}, {0, "carol", OVER_LIMIT},
    {1, "g1", OVER_LIMIT},  {1, "g1", WIDE_OVER_LIMIT},
};

/* Accepted, and pushed to bob. */
static const struct text_case at_limit[] = {
    {0, "bob", AT_LIMIT},
    {0, "bob", WIDE_AT_LIMIT},
    {1, "g1", AT_LIMIT},
};

START_TEST(text_longer_than_max_text_bytes_is_refused_with_bad_request)
{
    start_chat_option("max_text_bytes", "16");
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    register_only("carol");
    make_group("g1", alice, bob);

    for (size_t i = 0; i < sizeof(too_long) / sizeof(too_long[0]); i++)
        send_text(alice, &too_long[i], "bad_request");
    expect_quiet(bob);

    for (size_t i = 0; i < sizeof(at_limit) / sizeof(at_limit[0]); i++) {
        send_text(alice, &at_limit[i], "success");
        if (at_limit[i].group)
            expect_group(bob, at_limit[i].to, "alice", at_limit[i].text, 0);
        else
            expect_private(bob, "alice", at_limit[i].text, 0);
    }

    /* The refused offline message was not stored. */
    struct test_client *carol = session_as("carol", 0);
    test_client_close(carol);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

/* ---- user_from ---- */

/* Requests naming another user as user_from, each with the user who sends it. */
static const struct {
    int sender; /* 0: alice, 1: bob */
    const char *request;
} spoofed[] = {
    {0, "{\"cmd\":\"private_chat\",\"user_from\":\"bob\",\"user_to\":\"carol\","
        "\"text\":\"spoofed\"}"},
    {0, "{\"cmd\":\"private_chat\",\"user_from\":\"carol\",\"user_to\":\"bob\","
        "\"text\":\"spoofed\"}"},
    {0, "{\"cmd\":\"private_chat\",\"user_from\":\"bob\",\"user_to\":\"dave\","
        "\"text\":\"spoofed offline\"}"},
    {0, "{\"cmd\":\"group_chat\",\"user_from\":\"bob\",\"group\":\"g1\","
        "\"text\":\"spoofed group\"}"},
    {1, "{\"cmd\":\"group_chat\",\"user_from\":\"alice\",\"group\":\"g1\","
        "\"text\":\"spoofed group\"}"},
};

START_TEST(spoofed_user_from_is_forbidden_and_nothing_is_delivered)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    struct test_client *carol = new_user("carol");
    register_only("dave");
    make_group("g1", alice, bob);
    group_cmd(carol, "join_group", "g1", "success");
    struct test_client *dave = session_as("dave", 0);
    group_cmd(dave, "join_group", "g1", "success");
    do_logout(dave);

    for (size_t i = 0; i < sizeof(spoofed) / sizeof(spoofed[0]); i++)
        expect_json(spoofed[i].sender ? bob : alice, "forbidden", spoofed[i].request);
    expect_quiet(alice);
    expect_quiet(bob);
    expect_quiet(carol);
    /* Nothing was stored for the offline member either. */
    assert_nothing_pending(login_settled(dave, "dave"), "dave");

    test_client_close(alice);
    test_client_close(bob);
    test_client_close(carol);
    test_client_close(dave);
    stop_chat();
}
END_TEST

/* ---- hostile text and names ---- */

START_TEST(hostile_text_round_trips_in_private_chat_online_and_offline)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    register_only("carol");
    for (size_t i = 0; i < N_HOSTILE; i++) {
        send_private(alice, "bob", hostile_texts[i], "success");
        expect_private(bob, "alice", hostile_texts[i], 0);
        send_private(alice, "carol", hostile_texts[i], "offline");
    }
    struct test_client *carol = connect_client();
    json_t *got = login_settled(carol, "carol");
    assert_privates(got, "alice", hostile_texts, N_HOSTILE, 1);
    json_decref(got);
    test_client_close(alice);
    test_client_close(bob);
    test_client_close(carol);
    stop_chat();
}
END_TEST

START_TEST(hostile_text_round_trips_in_group_chat_online_and_offline)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    struct test_client *carol = new_user("carol");
    make_group("g1", alice, bob);
    group_cmd(carol, "join_group", "g1", "success");
    do_logout(carol);
    for (size_t i = 0; i < N_HOSTILE; i++) {
        send_group(alice, "g1", hostile_texts[i], "success");
        expect_group(bob, "g1", "alice", hostile_texts[i], 0);
    }
    json_t *got = login_settled(carol, "carol");
    assert_groups(got, "g1", "alice", hostile_texts, N_HOSTILE, 1);
    json_decref(got);
    test_client_close(alice);
    test_client_close(bob);
    test_client_close(carol);
    stop_chat();
}
END_TEST

START_TEST(names_with_sql_metacharacters_are_refused_as_invalid)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *c = connect_client();
    group_cmd(alice, "create_group", "g1", "success");
    for (size_t i = 0; i < N_BAD_NAMES; i++) {
        const char *name = bad_names[i];
        expect_failure_with_reason(c, "{ssssss}", "cmd", "register", "user", name, "passwd",
                                   PASSWD);
        json_decref(do_login(c, name, PASSWD, "user_not_exist"));
        add_friend(alice, name, "user_not_exist");
        send_private(alice, name, "hi", "user_not_exist");
        expect_failure_with_reason(alice, "{ssss}", "cmd", "create_group", "group", name);
        group_cmd(alice, "join_group", name, "group_not_exist");
        group_cmd(alice, "leave_group", name, "group_not_exist");
        send_group(alice, name, "hi", "group_not_exist");
    }
    /* Every table still works. */
    do_register(c, "zed", PASSWD, "success");
    json_t *reply = do_login(c, "zed", PASSWD, "success");
    assert_names(reply, "fri", 0);
    assert_names(reply, "group", 0);
    json_decref(reply);
    assert_nothing_pending(settle(c, "zed"), "zed");
    add_friend(alice, "zed", "success");
    expect_friend_added(c, "alice");
    group_cmd(c, "join_group", "g1", "success");
    send_group(alice, "g1", "still here", "success");
    expect_group(c, "g1", "alice", "still here", 0);
    do_logout(alice);
    reply = do_login(alice, "alice", PASSWD, "success");
    assert_names(reply, "fri", 1, "zed");
    assert_names(reply, "group", 1, "g1");
    json_decref(reply);
    test_client_close(alice);
    test_client_close(c);
    stop_chat();
}
END_TEST

static Suite *chat_limits_suite(void)
{
    Suite *s = suite_create("chat_limits");

    /* Generous bounds: a test waits at most a few seconds unless something is wrong. */
    TCase *tc = tcase_create("limits");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, limits_are_answered_with_clear_replies);
    tcase_add_test(tc, text_longer_than_max_text_bytes_is_refused_with_bad_request);
    suite_add_tcase(s, tc);

    tc = tcase_create("hostile_input");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, spoofed_user_from_is_forbidden_and_nothing_is_delivered);
    tcase_add_test(tc, hostile_text_round_trips_in_private_chat_online_and_offline);
    tcase_add_test(tc, hostile_text_round_trips_in_group_chat_online_and_offline);
    tcase_add_test(tc, names_with_sql_metacharacters_are_refused_as_invalid);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(chat_limits_suite());
}
