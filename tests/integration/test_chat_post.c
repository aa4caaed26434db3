/* test_chat_post.c - private messages are posted (ABI 1.4): the sender's reply carries
 * msg_id, seq and ts, the same as the recipient's push; a request's client_msg_id makes
 * a retry safe (delivered once, answered the same: sequentially, while the first is
 * still being committed, and across a restart); a client_msg_id out of its rule is a
 * bad_request. */
#include "chat_suite.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* The reply's msg_id, seq and ts must be those of the push. */
static void assert_same_message(const json_t *reply, const json_t *push)
{
    const char *id = json_string_value(json_object_get(reply, "msg_id"));
    json_int_t seq = json_integer_value(json_object_get(reply, "seq"));
    ck_assert_msg(id && seq > 0, "want msg_id and seq in %s", check_dump(reply));
    char want[32];
    snprintf(want, sizeof(want), "%lld", (long long)seq);
    ck_assert_str_eq(id, want);
    ck_assert_msg(json_integer_value(json_object_get(reply, "ts")) > 0, "want ts in %s",
                  check_dump(reply));
    if (!push)
        return;
    ck_assert_str_eq(json_string_value(json_object_get(push, "msg_id")), id);
    ck_assert_int_eq(json_integer_value(json_object_get(push, "seq")), seq);
    ck_assert_int_eq(json_integer_value(json_object_get(push, "ts")),
                     json_integer_value(json_object_get(reply, "ts")));
}

static void assert_same_reply(const json_t *a, const json_t *b)
{
    ck_assert_str_eq(json_string_value(json_object_get(a, "result")),
                     json_string_value(json_object_get(b, "result")));
    ck_assert_str_eq(json_string_value(json_object_get(a, "msg_id")),
                     json_string_value(json_object_get(b, "msg_id")));
    ck_assert_int_eq(json_integer_value(json_object_get(a, "seq")),
                     json_integer_value(json_object_get(b, "seq")));
    ck_assert_int_eq(json_integer_value(json_object_get(a, "ts")),
                     json_integer_value(json_object_get(b, "ts")));
}

static json_t *send_with_id(struct test_client *c, const char *to, const char *text,
                            const char *client_msg_id, const char *result)
{
    return call(c, result, "{ssssssss}", "cmd", "private_chat", "user_to", to, "text", text,
                "client_msg_id", client_msg_id);
}

START_TEST(replies_carry_the_pushed_msg_id_seq_and_ts)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    json_t *reply = call(alice, "success", "{ssssss}", "cmd", "private_chat", "user_to", "bob",
                         "text", "hello");
    json_t *push = read_push(bob, "private_chat_recv");
    assert_same_message(reply, push);
    json_int_t first = json_integer_value(json_object_get(reply, "seq"));
    json_decref(reply);
    json_decref(push);
    do_logout(bob);
    reply = call(alice, "offline", "{ssssss}", "cmd", "private_chat", "user_to", "bob", "text",
                 "later");
    assert_same_message(reply, NULL);
    ck_assert_int_gt(json_integer_value(json_object_get(reply, "seq")), first);
    json_t *got = login_settled(bob, "bob");
    ck_assert_uint_eq(json_array_size(got), 1);
    assert_same_message(reply, json_array_get(got, 0));
    json_decref(got);
    json_decref(reply);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(a_retried_client_msg_id_delivers_once_and_gets_the_same_reply)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    json_t *first = send_with_id(alice, "bob", "once", "c-1", "success");
    json_t *again = send_with_id(alice, "bob", "once", "c-1", "success");
    assert_same_reply(first, again);
    expect_private(bob, "alice", "once", 0);
    expect_quiet(bob);
    /* Another sender may use the same id. */
    json_t *other = send_with_id(bob, "alice", "mine", "c-1", "success");
    ck_assert_int_ne(json_integer_value(json_object_get(other, "seq")),
                     json_integer_value(json_object_get(first, "seq")));
    expect_private(alice, "bob", "mine", 0);
    json_decref(other);
    json_decref(again);
    json_decref(first);
    /* Away: the repeat says offline again, and the login brings it once. */
    do_logout(bob);
    first = send_with_id(alice, "bob", "away", "c-2", "offline");
    again = send_with_id(alice, "bob", "away", "c-2", "offline");
    assert_same_reply(first, again);
    json_t *got = login_settled(bob, "bob");
    ck_assert_uint_eq(json_array_size(got), 1);
    assert_same_message(first, json_array_get(got, 0));
    json_decref(got);
    json_decref(again);
    json_decref(first);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(a_retry_while_the_first_is_still_committing_delivers_once)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    /* Both requests leave before either is answered: the second finds the first queued
     * or in flight, not yet in the table. */
    const char *req = "{\"cmd\":\"private_chat\",\"user_to\":\"bob\",\"text\":\"twice\","
                      "\"client_msg_id\":\"fast\"}\n";
    char both[512];
    snprintf(both, sizeof(both), "%s%s%s", req, req, req);
    ck_assert_int_eq(test_client_send_str(alice, both), 0);
    json_t *replies[3];
    for (int i = 0; i < 3; i++) {
        replies[i] = test_client_read_json(alice, 10000);
        ck_assert_ptr_nonnull(replies[i]);
        ck_assert_str_eq(json_string_value(json_object_get(replies[i], "result")), "success");
    }
    assert_same_reply(replies[0], replies[1]);
    assert_same_reply(replies[0], replies[2]);
    expect_private(bob, "alice", "twice", 0);
    expect_quiet(bob);
    for (int i = 0; i < 3; i++)
        json_decref(replies[i]);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(a_client_msg_id_is_remembered_across_a_restart)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    do_logout(bob);
    json_t *first = send_with_id(alice, "bob", "kept", "r-1", "offline");
    test_client_close(alice);
    test_client_close(bob);
    restart_chat();
    alice = session_as("alice", 0);
    json_t *again = send_with_id(alice, "bob", "kept", "r-1", "offline");
    assert_same_reply(first, again);
    /* New messages get larger ids than any before the restart. */
    json_t *next =
        call(alice, "offline", "{ssssss}", "cmd", "private_chat", "user_to", "bob", "text", "new");
    ck_assert_int_gt(json_integer_value(json_object_get(next, "seq")),
                     json_integer_value(json_object_get(first, "seq")));
    bob = connect_client();
    json_t *got = login_settled(bob, "bob");
    ck_assert_uint_eq(json_array_size(got), 2);
    check_private(json_array_get(got, 0), "alice", "kept", 1);
    check_private(json_array_get(got, 1), "alice", "new", 1);
    json_decref(got);
    json_decref(next);
    json_decref(again);
    json_decref(first);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(a_client_msg_id_out_of_its_rule_is_a_bad_request)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    char long_id[66];
    memset(long_id, 'x', 65);
    long_id[65] = '\0';
    expect(alice, "bad_request", "{ssssssss}", "cmd", "private_chat", "user_to", "bob", "text", "x",
           "client_msg_id", "");
    expect(alice, "bad_request", "{ssssssss}", "cmd", "private_chat", "user_to", "bob", "text", "x",
           "client_msg_id", long_id);
    expect(alice, "bad_request", "{sssssssi}", "cmd", "private_chat", "user_to", "bob", "text", "x",
           "client_msg_id", 7);
    expect_quiet(bob);
    long_id[64] = '\0'; /* 64 bytes: the longest accepted */
    json_decref(send_with_id(alice, "bob", "ok", long_id, "success"));
    expect_private(bob, "alice", "ok", 0);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

/* Many senders at once: their posts share commit batches (each session has one request
 * in flight, so only many sessions make a batch of many posts). */
START_TEST(many_senders_at_once_are_all_committed)
{
    enum { SENDERS = 150 };
    start_chat();
    register_only("bob");
    struct test_client *senders[SENDERS];
    char name[32];
    for (int i = 0; i < SENDERS; i++) {
        snprintf(name, sizeof(name), "s%d", i);
        senders[i] = new_user(name);
    }
    /* bob is known to exist from now on: no accounts job (a database worker) between
     * the requests and their posts. */
    send_private(senders[0], "bob", "first", "offline");
    const char *req = "{\"cmd\":\"private_chat\",\"user_to\":\"bob\",\"text\":\"burst\"}\n";
    for (int i = 0; i < SENDERS; i++)
        ck_assert_int_eq(test_client_send_str(senders[i], req), 0);
    for (int i = 0; i < SENDERS; i++) {
        json_t *r = test_client_read_json(senders[i], 10000);
        ck_assert_ptr_nonnull(r);
        ck_assert_msg(strcmp(json_string_value(json_object_get(r, "result")), "offline") == 0,
                      "want offline: %s", check_dump(r));
        json_decref(r);
        test_client_close(senders[i]);
    }
    struct test_client *bob = connect_client();
    json_t *got = login_settled(bob, "bob");
    ck_assert_uint_eq(json_array_size(got), SENDERS + 1);
    json_decref(got);
    test_client_close(bob);
    stop_chat();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("chat_post");
    TCase *tc = tcase_create("post");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, replies_carry_the_pushed_msg_id_seq_and_ts);
    tcase_add_test(tc, a_retried_client_msg_id_delivers_once_and_gets_the_same_reply);
    tcase_add_test(tc, a_retry_while_the_first_is_still_committing_delivers_once);
    tcase_add_test(tc, a_client_msg_id_is_remembered_across_a_restart);
    tcase_add_test(tc, a_client_msg_id_out_of_its_rule_is_a_bad_request);
    tcase_add_test(tc, many_senders_at_once_are_all_committed);
    suite_add_tcase(s, tc);
    return chatd_proc_run_suite(s);
}
