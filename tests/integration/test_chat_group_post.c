/* test_chat_group_post.c - black-box tests of group_chat as a posted message
 * (docs/protocol.md, "Idempotent sends"): success carries msg_id, seq and ts, the push
 * the same msg_id and seq; a repeated client_msg_id gets the first answer and delivers
 * nothing; client_msg_id's rules. See chat_suite.h for the server and the helpers. */
#include "chat_suite.h"

#include <check.h>
#include <string.h>

static json_t *group_chat_with_id(struct test_client *c, const char *text, const char *client_id,
                                  const char *result)
{
    return call(c, result, "{ssssssss}", "cmd", "group_chat", "group", "g1", "text", text,
                "client_msg_id", client_id);
}

/* reply's msg_id is the decimal string of its seq, and it has a ts. */
static void check_posted(const json_t *reply)
{
    const json_t *seq = json_object_get(reply, "seq");
    const char *msg_id = json_string_value(json_object_get(reply, "msg_id"));
    char want[32];
    snprintf(want, sizeof(want), "%" JSON_INTEGER_FORMAT, json_integer_value(seq));
    if (!json_is_integer(seq) || !msg_id || strcmp(msg_id, want) != 0 ||
        !json_is_integer(json_object_get(reply, "ts")))
        ck_abort_msg("want msg_id, seq and ts in %s", check_dump(reply));
}

START_TEST(a_repeated_client_msg_id_gets_the_first_answer_and_delivers_nothing)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *carol = new_user("carol");
    make_group("g1", alice, carol);
    json_t *first = group_chat_with_id(alice, "hello", "k1", "success");
    check_posted(first);
    json_t *push = read_push(carol, "group_chat_recv");
    check_group(push, "g1", "alice", "hello", 0);
    ck_assert(json_equal(json_object_get(push, "msg_id"), json_object_get(first, "msg_id")));
    ck_assert(json_equal(json_object_get(push, "seq"), json_object_get(first, "seq")));
    /* The retry: the same answer, nothing for carol. */
    json_t *again = group_chat_with_id(alice, "hello", "k1", "success");
    json_object_del(first, "id");
    json_object_del(again, "id");
    if (!json_equal(first, again))
        ck_abort_msg("want the first answer %s again, got %s", check_dump(first),
                     check_dump(again));
    expect_quiet(carol);
    /* A new id is a new message; another sender's "k1" is theirs. */
    json_t *second = group_chat_with_id(alice, "again", "k2", "success");
    ck_assert_int_gt(json_integer_value(json_object_get(second, "seq")),
                     json_integer_value(json_object_get(first, "seq")));
    json_decref(read_push(carol, "group_chat_recv"));
    json_t *carols = group_chat_with_id(carol, "mine", "k1", "success");
    ck_assert(!json_equal(json_object_get(carols, "msg_id"), json_object_get(first, "msg_id")));
    json_decref(read_push(alice, "group_chat_recv"));
    /* Without client_msg_id, the reply still says which message it was. */
    json_t *plain =
        call(alice, "success", "{ssssss}", "cmd", "group_chat", "group", "g1", "text", "plain");
    check_posted(plain);
    json_decref(read_push(carol, "group_chat_recv"));
    /* The group's history holds each message once. */
    json_t *page = call(alice, "success", "{ssss}", "cmd", "history", "group", "g1");
    ck_assert_uint_eq(json_array_size(json_object_get(page, "messages")), 4);
    json_decref(page);
    json_decref(first);
    json_decref(again);
    json_decref(second);
    json_decref(carols);
    json_decref(plain);
    json_decref(push);
    test_client_close(alice);
    test_client_close(carol);
    stop_chat();
}
END_TEST

static json_t *send_with_id(struct test_client *c, const char *cmd, const char *to_key,
                            const char *to, const char *client_id, const char *result)
{
    json_t *reply = call(c, result, "{ssssssss}", "cmd", cmd, to_key, to, "text", "t",
                         "client_msg_id", client_id);
    json_object_del(reply, "id");
    json_object_del(reply, "cmd"); /* answers of two commands are compared */
    return reply;
}

static void assert_same_answer(const json_t *first, const json_t *again)
{
    if (!json_equal(first, again))
        ck_abort_msg("want the first answer %s again, got %s", check_dump(first),
                     check_dump(again));
}

/* A repeat is matched on the sender and the client_msg_id only: naming a group that does
 * not exist, one the sender is not in, or a name out of the rule, from this session or
 * another one of the sender's, before or after a restart, it gets the first answer. */
START_TEST(a_repeat_naming_another_group_gets_the_first_answer)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *carol = new_user("carol");
    struct test_client *dave = new_user("dave");
    make_group("g1", alice, carol);
    group_cmd(dave, "create_group", "g2", "success");
    json_t *first = send_with_id(alice, "group_chat", "group", "g1", "k1", "success");
    json_decref(read_push(carol, "group_chat_recv"));
    const char *others[] = {"nosuchgroup", "g2", "bad name!"};
    for (size_t i = 0; i < 3; i++) {
        json_t *again = send_with_id(alice, "group_chat", "group", others[i], "k1", "success");
        assert_same_answer(first, again);
        json_decref(again);
    }
    struct test_client *alice2 = second_session(alice, "alice");
    json_t *again = send_with_id(alice2, "group_chat", "group", "g2", "k1", "success");
    assert_same_answer(first, again);
    json_decref(again);
    expect_quiet(carol);
    expect_quiet(dave);
    test_client_close(alice);
    test_client_close(alice2);
    test_client_close(carol);
    test_client_close(dave);
    restart_chat();
    alice = session_as("alice", 0);
    again = send_with_id(alice, "group_chat", "group", "nosuchgroup", "k1", "success");
    assert_same_answer(first, again);
    json_decref(again);
    /* A refused send stored nothing: its client_msg_id is still free. */
    json_decref(send_with_id(alice, "group_chat", "group", "g2", "k2", "not_member"));
    json_t *fresh = send_with_id(alice, "group_chat", "group", "g1", "k2", "success");
    ck_assert_int_gt(json_integer_value(json_object_get(fresh, "seq")),
                     json_integer_value(json_object_get(first, "seq")));
    json_decref(fresh);
    json_decref(first);
    test_client_close(alice);
    stop_chat();
}
END_TEST

/* A client_msg_id is the sender's, whatever the command: a private_chat repeating a
 * group message's id says success as the group message did (even if nobody else was
 * online in the group), and a group_chat repeating the id of a private message that
 * was stored says offline, as that one did. */
START_TEST(a_repeat_in_the_other_command_gets_the_first_result_word)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    group_cmd(alice, "create_group", "solo", "success");
    json_t *group = send_with_id(alice, "group_chat", "group", "solo", "x1", "success");
    json_t *again = send_with_id(alice, "private_chat", "user_to", "bob", "x1", "success");
    assert_same_answer(group, again);
    json_decref(again);
    expect_quiet(bob);
    do_logout(bob);
    json_t *stored = send_with_id(alice, "private_chat", "user_to", "bob", "x2", "offline");
    again = send_with_id(alice, "group_chat", "group", "solo", "x2", "offline");
    assert_same_answer(stored, again);
    json_decref(again);
    /* And through a refusal: a group that does not exist. */
    again = send_with_id(alice, "group_chat", "group", "nosuchgroup", "x2", "offline");
    assert_same_answer(stored, again);
    json_decref(again);
    json_t *got = login_settled(bob, "bob");
    ck_assert_uint_eq(json_array_size(got), 1);
    json_decref(got);
    json_decref(group);
    json_decref(stored);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(client_msg_id_is_a_string_of_1_to_64_bytes)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *carol = new_user("carol");
    make_group("g1", alice, carol);
    char longest[65], too_long[66];
    memset(longest, 'x', 64);
    longest[64] = '\0';
    memset(too_long, 'x', 65);
    too_long[65] = '\0';
    json_decref(group_chat_with_id(alice, "long id", longest, "success"));
    json_decref(read_push(carol, "group_chat_recv"));
    json_decref(group_chat_with_id(alice, "too long", too_long, "bad_request"));
    json_decref(group_chat_with_id(alice, "empty", "", "bad_request"));
    expect_json(alice, "bad_request",
                "{\"cmd\":\"group_chat\",\"group\":\"g1\",\"text\":\"n\",\"client_msg_id\":5}");
    expect_quiet(carol);
    test_client_close(alice);
    test_client_close(carol);
    stop_chat();
}
END_TEST

/* Messages to one group that come together share one read of its members (group_chat.c,
 * struct members_read), yet each is checked and answered on its own: a member's burst is
 * delivered whole and in order, a non-member's burst sent at the same time is refused
 * message by message, and nothing of it reaches anyone. */
START_TEST(messages_sent_together_are_each_checked_and_delivered_in_order)
{
    enum { N = 20, M = 5 };
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    struct test_client *eve = new_user("eve");
    make_group("g1", alice, bob);
    char burst[N * 80], intrusion[M * 80];
    size_t len = 0, elen = 0;
    for (int i = 1; i <= N; i++)
        len += (size_t)snprintf(
            burst + len, sizeof(burst) - len,
            "{\"cmd\":\"group_chat\",\"group\":\"g1\",\"text\":\"m%d\",\"id\":%d}\n", i, i);
    for (int i = 1; i <= M; i++)
        elen += (size_t)snprintf(
            intrusion + elen, sizeof(intrusion) - elen,
            "{\"cmd\":\"group_chat\",\"group\":\"g1\",\"text\":\"e%d\",\"id\":%d}\n", i, i);
    check_send(alice, burst, len);
    check_send(eve, intrusion, elen);
    for (int i = 1; i <= N; i++) {
        json_t *reply = check_read_json(alice);
        ck_assert_str_eq(chatd_json_str(reply, "result"), "success");
        ck_assert_int_eq(json_integer_value(json_object_get(reply, "id")), i);
        json_decref(reply);
        char text[16];
        snprintf(text, sizeof(text), "m%d", i);
        expect_group(bob, "g1", "alice", text, 0);
    }
    for (int i = 1; i <= M; i++) {
        json_t *reply = check_read_json(eve);
        ck_assert_str_eq(chatd_json_str(reply, "result"), "not_member");
        ck_assert_int_eq(json_integer_value(json_object_get(reply, "id")), i);
        json_decref(reply);
    }
    expect_quiet(bob);
    expect_quiet(alice);
    test_client_close(alice);
    test_client_close(bob);
    test_client_close(eve);
    stop_chat();
}
END_TEST

static Suite *chat_group_post_suite(void)
{
    Suite *s = suite_create("chat_group_post");
    TCase *tc = tcase_create("group_post");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_repeated_client_msg_id_gets_the_first_answer_and_delivers_nothing);
    tcase_add_test(tc, a_repeat_naming_another_group_gets_the_first_answer);
    tcase_add_test(tc, a_repeat_in_the_other_command_gets_the_first_result_word);
    tcase_add_test(tc, client_msg_id_is_a_string_of_1_to_64_bytes);
    tcase_add_test(tc, messages_sent_together_are_each_checked_and_delivered_in_order);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(chat_group_post_suite());
}
