/* test_chat_ids.c - message ids are given at commit, under chatd_counters' row lock
 * (docs/architecture.md, "The cluster: decisions and reasons"): a repeated
 * client_msg_id takes no id, so the ids of messages committed one after the other are
 * consecutive; pipelined sends spread over many commit batches in flight are numbered
 * in the order sent; and after a restart no id is given twice, neither when retention
 * deleted the newest messages nor when the counter row was left behind MAX(id). */
#include "chat_suite.h"

#include "check_client.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long long seq_of(const json_t *reply)
{
    long long seq = json_integer_value(json_object_get(reply, "seq"));
    ck_assert_msg(seq > 0, "want a seq in %s", check_dump(reply));
    return seq;
}

static long long send_to(struct test_client *c, const char *to, const char *text,
                         const char *client_msg_id, const char *result)
{
    json_t *r = client_msg_id ? call(c, result, "{ssssssss}", "cmd", "private_chat", "user_to", to,
                                     "text", text, "client_msg_id", client_msg_id)
                              : call(c, result, "{ssssss}", "cmd", "private_chat", "user_to", to,
                                     "text", text);
    long long seq = seq_of(r);
    json_decref(r);
    return seq;
}

static long long counter_value(void)
{
    struct chatd_rows *rows =
        query_chat_db("SELECT value FROM chatd_counters WHERE name = 'message_id'", NULL, 0);
    ck_assert_uint_eq(rows->n_rows, 1);
    long long v =
        rows->values[0].type == CHATD_PARAM_INT64 ? rows->values[0].i : atoll(rows->values[0].s);
    free_chat_rows(rows);
    return v;
}

START_TEST(a_repeated_client_msg_id_takes_no_id)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    register_only("bob");
    long long first = send_to(alice, "bob", "one", "c-1", "offline");
    /* Committed before the repeat arrives: it is found in its batch's look-up. */
    ck_assert_int_eq(send_to(alice, "bob", "one", "c-1", "offline"), first);
    ck_assert_int_eq(send_to(alice, "bob", "two", "c-2", "offline"), first + 1);
    ck_assert_int_eq(send_to(alice, "bob", "three", NULL, "offline"), first + 2);
    ck_assert_int_eq(counter_value(), first + 2);
    test_client_close(alice);
    stop_chat();
}
END_TEST

/* SENDS private messages pipelined on one connection, with batches of BATCH_MAX so that
 * many batches form and two are always in flight. */
#define SENDS     600
#define BATCH_MAX "messages.batch_max=3"

START_TEST(pipelined_sends_over_many_batches_are_numbered_in_the_order_sent)
{
    const char *const sets[] = {BATCH_MAX, NULL};
    start_chat_with(sets);
    struct test_client *alice = new_user("alice");
    register_only("bob");
    register_only("carol");
    size_t cap = (size_t)SENDS * 128, len = 0;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    for (int i = 0; i < SENDS; i++)
        len += (size_t)snprintf(buf + len, cap - len,
                                "{\"cmd\":\"private_chat\",\"user_to\":\"%s\",\"text\":\"p%d\","
                                "\"id\":%d}\n",
                                i % 2 ? "bob" : "carol", i, i);
    ck_assert_int_eq(test_client_send(alice, buf, len, 10000), 0);
    free(buf);
    long long previous = 0;
    for (int i = 0; i < SENDS; i++) {
        json_t *r = test_client_read_json(alice, 10000);
        ck_assert_msg(r, "no reply to p%d", i);
        ck_assert_int_eq(json_integer_value(json_object_get(r, "id")), i);
        long long seq = seq_of(r);
        /* Nothing else posts: consecutive, in the order sent. */
        if (previous)
            ck_assert_msg(seq == previous + 1, "p%d got %lld after %lld", i, seq, previous);
        previous = seq;
        json_decref(r);
    }
    ck_assert_int_eq(counter_value(), previous);
    test_client_close(alice);
    stop_chat();
}
END_TEST

START_TEST(no_id_is_given_twice_after_a_restart)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    register_only("bob");
    long long last = send_to(alice, "bob", "one", NULL, "offline");
    test_client_close(alice);
    /* A counter left behind the messages (as written by a chatd before its commits
     * raised it) is raised to MAX(id) at start. */
    exec_chat_db("UPDATE chatd_counters SET value = 0 WHERE name = 'message_id'", NULL, 0);
    restart_chat();
    ck_assert_int_eq(counter_value(), last);
    alice = session_as("alice", 0);
    long long next = send_to(alice, "bob", "two", NULL, "offline");
    ck_assert_int_gt(next, last);
    test_client_close(alice);
    /* Retention deleted every message, the newest too: their ids stay used. */
    exec_chat_db("DELETE FROM chatd_timeline", NULL, 0);
    exec_chat_db("DELETE FROM chatd_messages", NULL, 0);
    restart_chat();
    ck_assert_int_eq(counter_value(), next);
    alice = session_as("alice", 0);
    ck_assert_int_gt(send_to(alice, "bob", "three", NULL, "offline"), next);
    test_client_close(alice);
    stop_chat();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("chat_ids");
    TCase *tc = tcase_create("ids");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, a_repeated_client_msg_id_takes_no_id);
    tcase_add_test(tc, pipelined_sends_over_many_batches_are_numbered_in_the_order_sent);
    tcase_add_test(tc, no_id_is_given_twice_after_a_restart);
    suite_add_tcase(s, tc);
    return chatd_proc_run_suite(s);
}
