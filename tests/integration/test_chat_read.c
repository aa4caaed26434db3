/* test_chat_read.c - black-box tests of `read` and its receipt (docs/protocol.md,
 * "Receipts"): the sender gets one "read" receipt when the reader's mark moves, none for
 * reading the same message again or an older one; read's refusals. See chat_suite.h for
 * the server and the helpers. */
#include "chat_suite.h"

#include <check.h>
#include <string.h>

/* alice sends bob (online) `text`; returns bob's push (the caller frees it). */
static json_t *sent_to_bob(struct test_client *alice, struct test_client *bob, const char *text)
{
    send_private(alice, "bob", text, "success");
    json_t *push = read_push(bob, "private_chat_recv");
    check_private(push, "alice", text, 0);
    return push;
}

static void read_upto(struct test_client *bob, const json_t *push, const char *result)
{
    expect(bob, result, "{sssssO}", "cmd", "read", "with", "alice", "msg_id",
           json_object_get(push, "msg_id"));
}

static void expect_read_receipt(struct test_client *alice, const json_t *push)
{
    json_t *receipt = read_push(alice, "receipt");
    if (!json_equal(json_object_get(receipt, "msg_id"), json_object_get(push, "msg_id")))
        ck_abort_msg("want the receipt for %s, got %s", check_dump(push), check_dump(receipt));
    check_json_str(receipt, "user", "bob");
    check_json_str(receipt, "status", "read");
    json_decref(receipt);
}

START_TEST(a_read_receipt_comes_once_when_the_mark_moves_and_never_for_older_messages)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    json_t *m1 = sent_to_bob(alice, bob, "one");
    json_t *m2 = sent_to_bob(alice, bob, "two");
    read_upto(bob, m2, "success");
    expect_read_receipt(alice, m2);
    /* The same again, then an older one: success, and no second receipt. (A receipt is
     * queued to alice before bob's reply, so the ping's reply is alice's next line.) */
    read_upto(bob, m2, "success");
    read_upto(bob, m1, "success");
    expect_quiet(alice);
    /* A newer one moves the mark again: one receipt, for it. */
    json_t *m3 = sent_to_bob(alice, bob, "three");
    read_upto(bob, m3, "success");
    expect_read_receipt(alice, m3);
    read_upto(bob, m3, "success");
    expect_quiet(alice);
    /* Every session of the sender gets it. */
    struct test_client *alice2 = second_session(alice, "alice");
    json_t *m4 = sent_to_bob(alice, bob, "four");
    read_upto(bob, m4, "success");
    expect_read_receipt(alice, m4);
    expect_read_receipt(alice2, m4);
    json_decref(m1);
    json_decref(m2);
    json_decref(m3);
    json_decref(m4);
    test_client_close(alice);
    test_client_close(alice2);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(read_refuses_unknown_users_and_what_is_not_a_private_message_to_the_reader)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    struct test_client *carol = new_user("carol");
    json_t *m1 = sent_to_bob(alice, bob, "one");
    const char *id = json_string_value(json_object_get(m1, "msg_id"));
    expect(bob, "user_not_exist", "{ssssss}", "cmd", "read", "with", "nobody", "msg_id", id);
    expect(bob, "user_not_exist", "{ssssss}", "cmd", "read", "with", "bad name!", "msg_id", id);
    static const char *const bad[] = {
        "{\"cmd\":\"read\",\"with\":\"alice\",\"msg_id\":\"abc\"}",
        "{\"cmd\":\"read\",\"with\":\"alice\",\"msg_id\":\"0\"}",
        "{\"cmd\":\"read\",\"with\":\"alice\",\"msg_id\":\"-1\"}",
        "{\"cmd\":\"read\",\"with\":\"alice\",\"msg_id\":7}",
        "{\"cmd\":\"read\",\"with\":\"alice\"}",
        "{\"cmd\":\"read\",\"msg_id\":\"1\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_json(bob, "bad_request", bad[i]);
    /* The message exists, but not from `with` to the reader: bad_request with a reason. */
    struct {
        struct test_client *reader;
        const char *with;
    } not_mine[] = {
        {alice, "bob"},   /* alice's own message */
        {carol, "alice"}, /* to bob, not to carol */
        {bob, "carol"},   /* from alice, not from carol */
    };
    for (size_t i = 0; i < sizeof(not_mine) / sizeof(not_mine[0]); i++) {
        json_t *reply = call(not_mine[i].reader, "bad_request", "{ssssss}", "cmd", "read", "with",
                             not_mine[i].with, "msg_id", id);
        ck_assert(json_is_string(json_object_get(reply, "reason")));
        json_decref(reply);
    }
    expect(bob, "bad_request", "{ssssss}", "cmd", "read", "with", "alice", "msg_id", "999999999");
    /* Nobody got a receipt from any of these. */
    expect_quiet(alice);
    expect_quiet(carol);
    struct test_client *anon = connect_client();
    expect(anon, "not_logged_in", "{ssssss}", "cmd", "read", "with", "alice", "msg_id", id);
    test_client_close(anon);
    json_decref(m1);
    test_client_close(alice);
    test_client_close(bob);
    test_client_close(carol);
    stop_chat();
}
END_TEST

static Suite *chat_read_suite(void)
{
    Suite *s = suite_create("chat_read");
    TCase *tc = tcase_create("read");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_read_receipt_comes_once_when_the_mark_moves_and_never_for_older_messages);
    tcase_add_test(tc, read_refuses_unknown_users_and_what_is_not_a_private_message_to_the_reader);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(chat_read_suite());
}
