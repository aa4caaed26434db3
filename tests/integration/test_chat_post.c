/* test_chat_post.c - private messages are posted (ABI 1.4): the sender's reply carries
 * msg_id, seq and ts, the same as the recipient's push; a request's client_msg_id makes
 * a retry safe (delivered once, answered the same: sequentially, while the first is
 * still being committed, and across a restart); a client_msg_id out of its rule is a
 * bad_request. */
#include "chat_plugin.h"
#include "chat_suite.h"
#include "db.h"

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

/* A repeat is matched on the sender and the client_msg_id only: naming a recipient who
 * does not exist, a name out of the rule, or someone else, from this session or another
 * one of the sender's, before or after a restart, it gets the first answer and nobody
 * gets anything. */
START_TEST(a_repeat_naming_another_recipient_gets_the_first_answer)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    struct test_client *carol = new_user("carol");
    json_t *first = send_with_id(alice, "bob", "once", "o-1", "success");
    expect_private(bob, "alice", "once", 0);
    const char *others[] = {"nobody", "no such name!", "carol"};
    for (size_t i = 0; i < 3; i++) {
        json_t *again = send_with_id(alice, others[i], "other", "o-1", "success");
        assert_same_reply(first, again);
        json_decref(again);
    }
    struct test_client *alice2 = second_session(alice, "alice");
    json_t *again = send_with_id(alice2, "nobody", "other", "o-1", "success");
    assert_same_reply(first, again);
    json_decref(again);
    expect_quiet(bob);
    expect_quiet(carol);
    test_client_close(alice);
    test_client_close(alice2);
    test_client_close(bob);
    test_client_close(carol);
    restart_chat();
    alice = session_as("alice", 0);
    again = send_with_id(alice, "nobody", "other", "o-1", "success");
    assert_same_reply(first, again);
    json_decref(again);
    /* A refused send stored nothing: its client_msg_id is still free. */
    expect(alice, "user_not_exist", "{ssssssss}", "cmd", "private_chat", "user_to", "nobody",
           "text", "lost", "client_msg_id", "o-2");
    bob = session_as("bob", 0);
    json_t *fresh = send_with_id(alice, "bob", "kept", "o-2", "success");
    ck_assert_int_gt(json_integer_value(json_object_get(fresh, "seq")),
                     json_integer_value(json_object_get(first, "seq")));
    expect_private(bob, "alice", "kept", 0);
    json_decref(fresh);
    json_decref(first);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

/* Send private_chat requests to each of `to` with this text and client_msg_id back to
 * back (pipelined), then read one reply each. */
static void send_pipelined(struct test_client *c, const char *const *to, size_t n, const char *text,
                           const char *client_msg_id, json_t **replies)
{
    char all[2048] = "";
    for (size_t i = 0; i < n; i++) {
        size_t used = strlen(all);
        snprintf(all + used, sizeof(all) - used,
                 "{\"cmd\":\"private_chat\",\"user_to\":\"%s\",\"text\":\"%s\","
                 "\"client_msg_id\":\"%s\"}\n",
                 to[i], text, client_msg_id);
    }
    ck_assert_int_eq(test_client_send_str(c, all), 0);
    for (size_t i = 0; i < n; i++) {
        replies[i] = test_client_read_json(c, 10000);
        ck_assert_ptr_nonnull(replies[i]);
    }
}

START_TEST(a_repeat_right_behind_its_first_gets_its_answer)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    register_only("carol"); /* away, and not yet known to private_chat */
    const char *const online[] = {"bob", "nobody", "no name!"};
    const char *const away[] = {"carol", "nobody"};
    const char *const refused_first[] = {"nobody", "bob"};
    json_t *r[3];
    send_pipelined(alice, online, 3, "a", "p", r);
    ck_assert_str_eq(json_string_value(json_object_get(r[0], "result")), "success");
    assert_same_reply(r[0], r[1]);
    assert_same_reply(r[0], r[2]);
    for (int i = 0; i < 3; i++)
        json_decref(r[i]);
    expect_private(bob, "alice", "a", 0);
    send_pipelined(alice, away, 2, "b", "q", r);
    ck_assert_str_eq(json_string_value(json_object_get(r[0], "result")), "offline");
    assert_same_reply(r[0], r[1]);
    json_decref(r[0]);
    json_decref(r[1]);
    send_pipelined(alice, refused_first, 2, "c", "r", r);
    ck_assert_str_eq(json_string_value(json_object_get(r[0], "result")), "user_not_exist");
    ck_assert_str_eq(json_string_value(json_object_get(r[1], "result")), "success");
    json_decref(r[0]);
    json_decref(r[1]);
    expect_private(bob, "alice", "c", 0);
    expect_quiet(bob);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

/* The first answer's word stays, whoever is online now: a repeat of a message sent while
 * bob was away says offline when he is back, one sent while he was online says success
 * when he has left. */
START_TEST(a_repeat_keeps_the_first_result_word_whoever_is_online_now)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    json_t *online = send_with_id(alice, "bob", "while here", "w-1", "success");
    expect_private(bob, "alice", "while here", 0);
    do_logout(bob);
    json_t *away = send_with_id(alice, "bob", "while away", "w-2", "offline");
    json_t *again = send_with_id(alice, "bob", "while here", "w-1", "success");
    assert_same_reply(online, again);
    json_decref(again);
    json_decref(login_settled(bob, "bob"));
    again = send_with_id(alice, "bob", "while away", "w-2", "offline");
    assert_same_reply(away, again);
    json_decref(again);
    /* Also when the repeat names a user who does not exist. */
    again = send_with_id(alice, "nobody", "x", "w-2", "offline");
    assert_same_reply(away, again);
    json_decref(again);
    expect_quiet(bob);
    json_decref(online);
    json_decref(away);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

/* Wait (up to 10 s) until a statement starting with `sql_head` runs on a connection of
 * the server's database user (the process list shows a user its own connections). */
static void wait_for_statement(const char *sql_head)
{
    char like[256];
    snprintf(like, sizeof(like), "%s%%", sql_head);
    struct chatd_value v = {.type = CHATD_PARAM_TEXT, .s = like, .len = strlen(like)};
    for (int i = 0; i < 1000; i++) {
        struct chatd_rows *rows = query_chat_db(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE ?", &v, 1);
        int seen = rows->n_rows == 1 && rows->values[0].i > 0;
        free_chat_rows(rows);
        if (seen)
            return;
        chatd_sleep_ms(10);
    }
    ck_abort_msg("no statement '%s...' ran within 10 s", sql_head);
}

/* The repeat that comes to another node: a post with the same client_msg_id, made
 * elsewhere after this batch looked for it, commits first (here: a transaction of the
 * test's own holds the row until chatd's INSERT waits for it). chatd's batch meets the
 * duplicate key, runs again and answers the repeat with the other message; nothing is
 * delivered, and the next message goes through. */
START_TEST(a_repeat_committed_elsewhere_during_the_commit_is_answered_as_a_repeat)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    struct chatd_db *other_node = open_chat_db();
    const int64_t id = 1000000, ts = 1795801202255;
    const struct chatd_value row[] = {
        {.type = CHATD_PARAM_INT64, .i = id},
        {.type = CHATD_PARAM_TEXT, .s = "alice", .len = 5},
        {.type = CHATD_PARAM_INT64, .i = ts},
    };
    ck_assert_int_eq(db_simple(other_node, "START TRANSACTION"), 0);
    /* flags: CHATD_POST_PRIVATE, its msg_id is its id, bob was online. */
    ck_assert_msg(db_exec(other_node,
                          "INSERT INTO chatd_messages (id, body, sender, conversation, ts, "
                          "client_msg_id, flags) VALUES (?, '{}', ?, 'alice|bob', ?, 'e-1', "
                          "1 | 256 | 512)",
                          row, 3, NULL, NULL) == 0,
                  "%s", other_node->last_error);
    ck_assert_int_eq(test_client_send_str(alice, "{\"cmd\":\"private_chat\",\"user_to\":\"bob\","
                                                 "\"text\":\"twice\",\"client_msg_id\":\"e-1\"}\n"),
                     0);
    wait_for_statement("INSERT INTO chatd_messages");
    ck_assert_int_eq(db_simple(other_node, "COMMIT"), 0);
    close_chat_db(other_node);
    json_t *reply = test_client_read_json(alice, 10000);
    ck_assert_ptr_nonnull(reply);
    ck_assert_msg(check_json_str_is(reply, "result", "success") &&
                      check_json_str_is(reply, "msg_id", "1000000") &&
                      json_integer_value(json_object_get(reply, "ts")) == ts,
                  "want the other node's message in %s", check_dump(reply));
    json_decref(reply);
    expect_quiet(bob);
    send_private(alice, "bob", "next", "success");
    expect_private(bob, "alice", "next", 0);
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

/* A repeat stores nothing and takes no count, so it must leave the offline limits as
 * they were: max_offline_per_sender and max_offline_messages still refuse the message
 * past them when repeats come between the sends (a repeat used to set the counts the
 * server keeps to 0, and every limit was then passed). */
START_TEST(repeats_between_sends_keep_the_offline_limits)
{
    char per_sender[CHAT_PLUGIN_TEXT_MAX], stored[CHAT_PLUGIN_TEXT_MAX];
    const char *const sets[] = {chat_plugin_set(per_sender, "max_offline_per_sender", "2"),
                                chat_plugin_set(stored, "max_offline_messages", "3"), NULL};
    start_chat_with(sets);
    struct test_client *alice = new_user("alice");
    struct test_client *carol = new_user("carol");
    struct test_client *dave = new_user("dave");
    register_only("bob");
    json_decref(send_with_id(alice, "bob", "one", "a-1", "offline"));
    json_decref(send_with_id(alice, "bob", "one", "a-1", "offline"));
    json_decref(send_with_id(alice, "bob", "two", "a-2", "offline"));
    json_decref(send_with_id(alice, "bob", "one", "a-1", "offline"));
    json_decref(send_with_id(alice, "bob", "three", "a-3", "forbidden"));
    json_decref(send_with_id(carol, "bob", "four", "c-1", "offline"));
    json_decref(send_with_id(carol, "bob", "four", "c-1", "offline"));
    json_decref(send_with_id(dave, "bob", "five", "d-1", "forbidden"));
    struct test_client *bob = connect_client();
    json_t *got = login_settled(bob, "bob");
    ck_assert_uint_eq(json_array_size(got), 3);
    json_decref(got);
    test_client_close(alice);
    test_client_close(carol);
    test_client_close(dave);
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
    tcase_add_test(tc, a_repeat_naming_another_recipient_gets_the_first_answer);
    tcase_add_test(tc, a_repeat_right_behind_its_first_gets_its_answer);
    tcase_add_test(tc, a_repeat_keeps_the_first_result_word_whoever_is_online_now);
    tcase_add_test(tc, a_repeat_committed_elsewhere_during_the_commit_is_answered_as_a_repeat);
    tcase_add_test(tc, a_client_msg_id_out_of_its_rule_is_a_bad_request);
    tcase_add_test(tc, many_senders_at_once_are_all_committed);
    tcase_add_test(tc, repeats_between_sends_keep_the_offline_limits);
    suite_add_tcase(s, tc);
    return chatd_proc_run_suite(s);
}
