/* test_chat_history.c - black-box tests of `history` (docs/protocol.md, "History"):
 * paging back through 10,000 private and 10,000 group messages with `before` without a
 * gap or a repeat, a group member's view from when they (last) joined, the refusals
 * (user_not_exist, group_not_exist, not_member, bad_request for every broken field and
 * limit), and the "delivered" and "read" flags on one's own private messages. See
 * chat_suite.h for the server and the helpers. */
#include "chat_suite.h"

#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Requests each sending session keeps in flight. */
#define WINDOW 32
#define FLOOD  10000

/* ---- sending many, reading history ---- */

/* Send `total` messages ("h<k>", k from 0) with `cmd` (private_chat or group_chat) to
 * `target` from the sessions cs, each with WINDOW requests in flight; every one must be
 * answered `result`. Returns the replies' msg_ids as a set (an object whose keys are
 * the msg_ids). */
static json_t *flood(struct test_client *const *cs, size_t n, const char *cmd, const char *target,
                     int total, const char *result)
{
    const char *key = strcmp(cmd, "private_chat") == 0 ? "user_to" : "group";
    json_t *ids = json_object();
    int sent = 0, answered = 0;
    int in_flight[8] = {0};
    ck_assert_uint_le(n, 8);
    while (answered < total) {
        for (size_t i = 0; i < n; i++) {
            while (in_flight[i] < WINDOW && sent < total) {
                char text[32];
                snprintf(text, sizeof(text), "h%d", sent++);
                json_t *req = json_pack("{ssssss}", "cmd", cmd, key, target, "text", text);
                ck_assert_int_eq(test_client_send_json(cs[i], req), 0);
                json_decref(req);
                in_flight[i]++;
            }
            if (in_flight[i] == 0)
                continue;
            json_t *reply = check_read_json(cs[i]);
            const char *msg_id = json_string_value(json_object_get(reply, "msg_id"));
            if (!check_json_str_is(reply, "result", result) || !msg_id)
                ck_abort_msg("want %s with a msg_id, got %s", result, check_dump(reply));
            if (json_object_get(ids, msg_id))
                ck_abort_msg("msg_id %s given twice", msg_id);
            json_object_set_new(ids, msg_id, json_true());
            json_decref(reply);
            in_flight[i]--;
            answered++;
        }
    }
    return ids;
}

/* One page: the history_reply (success) to `with` (or `group`) with this limit (0: the
 * default) and before (NULL: the newest). The caller frees it. */
static json_t *history_page(struct test_client *c, const char *key, const char *target, int limit,
                            const char *before)
{
    json_t *req = json_pack("{ssss}", "cmd", "history", key, target);
    if (limit > 0)
        json_object_set_new(req, "limit", json_integer(limit));
    if (before)
        json_object_set_new(req, "before", json_string(before));
    json_t *reply = call(c, "success", "o", req); /* "o" takes req */
    if (!json_is_array(json_object_get(reply, "messages")) ||
        !json_is_boolean(json_object_get(reply, "more")))
        ck_abort_msg("want \"messages\" and \"more\" in %s", check_dump(reply));
    return reply;
}

/* A history message's shape: no cmd, user_from, text, ts, and msg_id the decimal string
 * of seq; for a group, its group. Returns its seq. */
static long long check_history_message(const json_t *msg, const char *group)
{
    const json_t *seq = json_object_get(msg, "seq");
    const char *msg_id = json_string_value(json_object_get(msg, "msg_id"));
    char want[32];
    snprintf(want, sizeof(want), "%" JSON_INTEGER_FORMAT, json_integer_value(seq));
    if (!json_is_integer(seq) || !msg_id || strcmp(msg_id, want) != 0 ||
        !json_is_string(json_object_get(msg, "user_from")) ||
        !json_is_string(json_object_get(msg, "text")) ||
        !json_is_integer(json_object_get(msg, "ts")) || json_object_get(msg, "cmd") ||
        json_object_get(msg, "offline"))
        ck_abort_msg("not a history message: %s", check_dump(msg));
    if (group)
        check_json_str(msg, "group", group);
    else
        check_json_no_key(msg, "group");
    return (long long)json_integer_value(seq);
}

/* Page back from the newest with `before` = the oldest msg_id of the previous page,
 * `limit` at a time (0: the default, 50): every page oldest first, each older than the one before,
 * none longer than limit, "more" true until the last. Every msg_id seen must be in want (a set,
 * emptied) and want must end empty: no gap, no repeat. Returns the pages read. */
static int page_back(struct test_client *c, const char *key, const char *target, int limit,
                     json_t *want)
{
    char before[32] = "";
    long long older_than = -1;
    int pages = 0;
    int page_size = limit > 0 ? limit : 50;
    for (;;) {
        json_t *reply = history_page(c, key, target, limit, before[0] ? before : NULL);
        const json_t *msgs = json_object_get(reply, "messages");
        size_t n = json_array_size(msgs);
        int more = json_is_true(json_object_get(reply, "more"));
        pages++;
        if (n > (size_t)page_size || (more && n != (size_t)page_size))
            ck_abort_msg("page %d: %zu messages with limit %d, more %d", pages, n, page_size, more);
        long long prev = -1;
        for (size_t i = 0; i < n; i++) {
            const json_t *msg = json_array_get(msgs, i);
            long long seq = check_history_message(msg, strcmp(key, "group") == 0 ? target : NULL);
            if (seq <= prev || (older_than >= 0 && seq >= older_than))
                ck_abort_msg("page %d out of order at %zu: %s", pages, i, check_dump(msg));
            prev = seq;
            const char *msg_id = json_string_value(json_object_get(msg, "msg_id"));
            if (!json_object_get(want, msg_id))
                ck_abort_msg("page %d: %s is not wanted, or came twice", pages, msg_id);
            json_object_del(want, msg_id);
        }
        if (n > 0) {
            const json_t *oldest = json_array_get(msgs, 0);
            snprintf(before, sizeof(before), "%s",
                     json_string_value(json_object_get(oldest, "msg_id")));
            older_than = (long long)json_integer_value(json_object_get(oldest, "seq"));
        }
        json_decref(reply);
        if (!more)
            break;
    }
    if (json_object_size(want) != 0)
        ck_abort_msg("%zu messages never came, e.g. %s", json_object_size(want),
                     json_object_iter_key(json_object_iter(want)));
    return pages;
}

/* The texts of a page, oldest first, joined by spaces. */
static void page_texts(const json_t *reply, char *out, size_t cap)
{
    const json_t *msgs = json_object_get(reply, "messages");
    out[0] = '\0';
    for (size_t i = 0; i < json_array_size(msgs); i++) {
        size_t used = strlen(out);
        snprintf(out + used, cap - used, "%s%s", i ? " " : "",
                 json_string_value(json_object_get(json_array_get(msgs, i), "text")));
    }
}

static void expect_texts(struct test_client *c, const char *key, const char *target,
                         const char *want)
{
    json_t *reply = history_page(c, key, target, 200, NULL);
    char got[4096];
    page_texts(reply, got, sizeof(got));
    if (strcmp(got, want) != 0)
        ck_abort_msg("history of %s: want \"%s\", got \"%s\"", target, want, got);
    json_decref(reply);
}

/* ---- paging ---- */

/* alice registered and logged in on four sessions, nothing pending on any. */
static void alice_sessions(struct test_client *alice[4])
{
    register_only("alice");
    for (size_t i = 0; i < 4; i++) {
        alice[i] = connect_client();
        json_decref(do_login(alice[i], "alice", PASSWD, "success"));
    }
    assert_nothing_pending(settle_all(alice, 4, "alice"), "alice");
}

START_TEST(history_pages_back_through_10000_private_messages_without_a_gap_or_repeat)
{
    /* All 9,900 wait for bob from one sender. */
    start_chat_with((const char *const[]){"plugin.private_chat.max_offline_per_sender=0", NULL});
    struct test_client *alice[4];
    alice_sessions(alice);
    /* bob writes first, so the conversation holds both directions. */
    struct test_client *bob = new_user("bob");
    json_t *want = flood(&bob, 1, "private_chat", "alice", 100, "success");
    json_decref(settle_all(alice, 4, "alice"));
    do_logout(bob); /* answered: bob has no session from here on */
    test_client_close(bob);
    /* bob is away: the 9,900 wait for his next login, and are in the history already. */
    json_t *from_alice = flood(alice, 4, "private_chat", "bob", FLOOD - 100, "offline");
    json_object_update(want, from_alice);
    json_decref(from_alice);
    ck_assert_uint_eq(json_object_size(want), FLOOD);
    json_t *again = json_deep_copy(want);
    /* Pages of 200, then of the default 50. */
    ck_assert_int_eq(page_back(alice[0], "with", "bob", 200, want), FLOOD / 200);
    ck_assert_int_eq(page_back(alice[1], "with", "bob", 0, again), FLOOD / 50);
    json_decref(want);
    json_decref(again);
    for (size_t i = 0; i < 4; i++)
        test_client_close(alice[i]);
    stop_chat();
}
END_TEST

START_TEST(history_pages_back_through_10000_group_messages_without_a_gap_or_repeat)
{
    start_chat();
    struct test_client *alice[4];
    alice_sessions(alice);
    struct test_client *carol = new_user("carol");
    make_group("g1", alice[0], carol);
    do_logout(carol); /* away: every message is kept for her */
    test_client_close(carol);
    json_t *want = flood(alice, 4, "group_chat", "g1", FLOOD, "success");
    json_t *again = json_deep_copy(want);
    ck_assert_int_eq(page_back(alice[0], "group", "g1", 200, want), FLOOD / 200);
    /* carol, a member from before the first message, sees them all too. */
    carol = connect_client();
    json_decref(do_login(carol, "carol", PASSWD, "success"));
    json_decref(settle(carol, "carol"));
    ck_assert_int_eq(page_back(carol, "group", "g1", 0, again), FLOOD / 50);
    json_decref(want);
    json_decref(again);
    for (size_t i = 0; i < 4; i++)
        test_client_close(alice[i]);
    test_client_close(carol);
    stop_chat();
}
END_TEST

START_TEST(a_page_before_a_message_holds_only_older_ones_and_more_says_whether_any_are_left)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    register_only("bob");
    char text[16];
    for (int i = 1; i <= 5; i++) {
        snprintf(text, sizeof(text), "m%d", i);
        send_private(alice, "bob", text, "offline");
    }
    json_t *newest = history_page(alice, "with", "bob", 2, NULL);
    char got[256];
    page_texts(newest, got, sizeof(got));
    ck_assert_str_eq(got, "m4 m5");
    ck_assert(json_is_true(json_object_get(newest, "more")));
    const char *m4 = json_string_value(
        json_object_get(json_array_get(json_object_get(newest, "messages"), 0), "msg_id"));
    json_t *older = history_page(alice, "with", "bob", 3, m4);
    page_texts(older, got, sizeof(got));
    ck_assert_str_eq(got, "m1 m2 m3");
    ck_assert(json_is_false(json_object_get(older, "more")));
    json_t *oldest =
        history_page(alice, "with", "bob", 3,
                     json_string_value(json_object_get(
                         json_array_get(json_object_get(older, "messages"), 0), "msg_id")));
    ck_assert_uint_eq(json_array_size(json_object_get(oldest, "messages")), 0);
    ck_assert(json_is_false(json_object_get(oldest, "more")));
    /* The same conversation from bob's side. */
    struct test_client *bob = connect_client();
    json_decref(do_login(bob, "bob", PASSWD, "success"));
    json_decref(settle(bob, "bob"));
    expect_texts(bob, "with", "alice", "m1 m2 m3 m4 m5");
    /* Another conversation is not mixed in. */
    register_only("carol");
    send_private(alice, "carol", "to carol", "offline");
    expect_texts(alice, "with", "bob", "m1 m2 m3 m4 m5");
    expect_texts(alice, "with", "carol", "to carol");
    expect_texts(bob, "with", "carol", "");
    json_decref(newest);
    json_decref(older);
    json_decref(oldest);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

/* ---- groups: from when a member joined ---- */

START_TEST(a_member_sees_the_group_history_from_when_they_last_joined)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *carol = new_user("carol");
    struct test_client *dave = new_user("dave");
    make_group("g1", alice, carol);
    send_group(alice, "g1", "before1", "success");
    send_group(alice, "g1", "before2", "success");
    group_cmd(dave, "join_group", "g1", "success");
    send_group(alice, "g1", "after1", "success");
    send_group(alice, "g1", "after2", "success");
    json_decref(settle(carol, "carol"));
    json_decref(settle(dave, "dave"));
    expect_texts(dave, "group", "g1", "after1 after2");
    expect_texts(carol, "group", "g1", "before1 before2 after1 after2");
    expect_texts(alice, "group", "g1", "before1 before2 after1 after2");
    /* Gone: not_member; back: from the new join only. */
    group_cmd(dave, "leave_group", "g1", "success");
    send_group(alice, "g1", "while away", "success");
    expect(dave, "not_member", "{ssss}", "cmd", "history", "group", "g1");
    group_cmd(dave, "join_group", "g1", "success");
    send_group(alice, "g1", "back", "success");
    json_decref(settle(dave, "dave"));
    expect_texts(dave, "group", "g1", "back");
    test_client_close(alice);
    test_client_close(carol);
    test_client_close(dave);
    stop_chat();
}
END_TEST

/* ---- refusals ---- */

START_TEST(history_refuses_unknown_users_and_groups_and_non_members)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *eve = new_user("eve");
    group_cmd(alice, "create_group", "g1", "success");
    send_group(alice, "g1", "members only", "success");
    expect(alice, "user_not_exist", "{ssss}", "cmd", "history", "with", "nobody");
    expect(alice, "user_not_exist", "{ssss}", "cmd", "history", "with", "bad name!");
    expect(alice, "group_not_exist", "{ssss}", "cmd", "history", "group", "nogroup");
    expect(alice, "group_not_exist", "{ssss}", "cmd", "history", "group", "bad group!");
    expect(eve, "not_member", "{ssss}", "cmd", "history", "group", "g1");
    /* Not logged in. */
    struct test_client *anon = connect_client();
    expect(anon, "not_logged_in", "{ssss}", "cmd", "history", "with", "alice");
    test_client_close(anon);
    test_client_close(alice);
    test_client_close(eve);
    stop_chat();
}
END_TEST

START_TEST(history_holds_limit_to_1_to_200_and_wants_exactly_one_of_with_and_group)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    register_only("bob");
    char text[16];
    for (int i = 1; i <= 60; i++) {
        snprintf(text, sizeof(text), "m%d", i);
        send_private(alice, "bob", text, "offline");
    }
    static const char *const bad[] = {
        "{\"cmd\":\"history\",\"with\":\"bob\",\"limit\":0}",
        "{\"cmd\":\"history\",\"with\":\"bob\",\"limit\":201}",
        "{\"cmd\":\"history\",\"with\":\"bob\",\"limit\":-1}",
        "{\"cmd\":\"history\",\"with\":\"bob\",\"limit\":\"5\"}",
        "{\"cmd\":\"history\",\"with\":\"bob\",\"limit\":2.5}",
        "{\"cmd\":\"history\"}",
        "{\"cmd\":\"history\",\"with\":\"bob\",\"group\":\"g1\"}",
        "{\"cmd\":\"history\",\"with\":7}",
        "{\"cmd\":\"history\",\"with\":\"bob\",\"before\":\"abc\"}",
        "{\"cmd\":\"history\",\"with\":\"bob\",\"before\":\"0\"}",
        "{\"cmd\":\"history\",\"with\":\"bob\",\"before\":\"-5\"}",
        "{\"cmd\":\"history\",\"with\":\"bob\",\"before\":\"12x\"}",
        "{\"cmd\":\"history\",\"with\":\"bob\",\"before\":\"99999999999999999999\"}",
        "{\"cmd\":\"history\",\"with\":\"bob\",\"before\":12}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_json(alice, "bad_request", bad[i]);
    json_t *page = history_page(alice, "with", "bob", 0, NULL);
    ck_assert_uint_eq(json_array_size(json_object_get(page, "messages")), 50); /* the default */
    json_decref(page);
    page = history_page(alice, "with", "bob", 1, NULL);
    ck_assert_uint_eq(json_array_size(json_object_get(page, "messages")), 1);
    json_decref(page);
    page = history_page(alice, "with", "bob", 200, NULL);
    ck_assert_uint_eq(json_array_size(json_object_get(page, "messages")), 60);
    ck_assert(json_is_false(json_object_get(page, "more")));
    json_decref(page);
    test_client_close(alice);
    stop_chat();
}
END_TEST

/* ---- delivered and read ---- */

/* The message of a page with this text. */
static const json_t *message_with_text(const json_t *reply, const char *text)
{
    const json_t *msgs = json_object_get(reply, "messages");
    for (size_t i = 0; i < json_array_size(msgs); i++)
        if (check_json_str_is(json_array_get(msgs, i), "text", text))
            return json_array_get(msgs, i);
    ck_abort_msg("no message \"%s\" in %s", text, check_dump(reply));
    return NULL;
}

static void assert_flags(const json_t *reply, const char *text, int delivered, int read)
{
    const json_t *msg = message_with_text(reply, text);
    const json_t *d = json_object_get(msg, "delivered"), *r = json_object_get(msg, "read");
    if (!json_is_boolean(d) || !json_is_boolean(r) || json_is_true(d) != delivered ||
        json_is_true(r) != read)
        ck_abort_msg("want delivered %d, read %d on %s", delivered, read, check_dump(msg));
}

/* A device's position reaches the database with the next commit or within a second:
 * ask again until the flags show it, for a generous while. */
static json_t *page_when_delivered(struct test_client *c, const char *with, const char *text)
{
    for (int tries = 0; tries < 200; tries++) {
        json_t *reply = history_page(c, "with", with, 200, NULL);
        if (json_is_true(json_object_get(message_with_text(reply, text), "delivered")))
            return reply;
        json_decref(reply);
        nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    }
    ck_abort_msg("\"%s\" never showed as delivered", text);
    return NULL;
}

START_TEST(history_shows_delivered_and_read_on_ones_own_private_messages_only)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    register_only("bob");
    send_private(alice, "bob", "one", "offline");
    send_private(alice, "bob", "two", "offline");
    send_private(alice, "bob", "three", "offline");
    json_t *page = history_page(alice, "with", "bob", 0, NULL);
    assert_flags(page, "one", 0, 0);
    assert_flags(page, "three", 0, 0);
    json_decref(page);

    /* bob's phone gets them and acknowledges the second. */
    struct test_client *bob = connect_client();
    json_decref(call(bob, "success", "{sssssssssb}", "cmd", "login", "user", "bob", "passwd",
                     PASSWD, "device", "phone", "ack", 1));
    json_t *pushed[3];
    for (int i = 0; i < 3; i++)
        pushed[i] = read_push(bob, "private_chat_recv");
    json_t *ack = json_pack("{sssO}", "cmd", "ack", "seq", json_object_get(pushed[1], "seq"));
    ck_assert_int_eq(test_client_send_json(bob, ack), 0);
    json_decref(ack);
    /* alice is told, once per message, as a receipt. */
    for (int i = 0; i < 2; i++) {
        json_t *receipt = read_push(alice, "receipt");
        check_json_str(receipt, "status", "delivered");
        json_decref(receipt);
    }
    page = page_when_delivered(alice, "bob", "two");
    assert_flags(page, "one", 1, 0);
    assert_flags(page, "two", 1, 0);
    assert_flags(page, "three", 0, 0);
    json_decref(page);

    /* bob reads up to the first: only it shows as read. */
    expect(bob, "success", "{sssssO}", "cmd", "read", "with", "alice", "msg_id",
           json_object_get(pushed[0], "msg_id"));
    json_decref(read_push(alice, "receipt"));
    page = history_page(alice, "with", "bob", 0, NULL);
    assert_flags(page, "one", 1, 1);
    assert_flags(page, "two", 1, 0);
    assert_flags(page, "three", 0, 0);
    json_decref(page);

    /* bob's own view: alice's messages carry no flags, his own do. */
    json_decref(call(bob, "success", "{ssssss}", "cmd", "private_chat", "user_to", "alice", "text",
                     "reply"));
    json_decref(read_push(alice, "private_chat_recv"));
    page = history_page(bob, "with", "alice", 0, NULL);
    check_json_no_key(message_with_text(page, "one"), "delivered");
    check_json_no_key(message_with_text(page, "one"), "read");
    ck_assert(json_is_boolean(json_object_get(message_with_text(page, "reply"), "delivered")));
    json_decref(page);
    page = history_page(alice, "with", "bob", 0, NULL);
    check_json_no_key(message_with_text(page, "reply"), "delivered");
    json_decref(page);
    for (int i = 0; i < 3; i++)
        json_decref(pushed[i]);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

static Suite *chat_history_suite(void)
{
    Suite *s = suite_create("chat_history");
    /* Generous bounds: a test waits at most a few seconds unless something is wrong; the
     * floods send 10,000 messages. */
    TCase *tc = tcase_create("paging");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, history_pages_back_through_10000_private_messages_without_a_gap_or_repeat);
    tcase_add_test(tc, history_pages_back_through_10000_group_messages_without_a_gap_or_repeat);
    tcase_add_test(
        tc, a_page_before_a_message_holds_only_older_ones_and_more_says_whether_any_are_left);
    suite_add_tcase(s, tc);

    tc = tcase_create("rules");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_member_sees_the_group_history_from_when_they_last_joined);
    tcase_add_test(tc, history_refuses_unknown_users_and_groups_and_non_members);
    tcase_add_test(tc, history_holds_limit_to_1_to_200_and_wants_exactly_one_of_with_and_group);
    tcase_add_test(tc, history_shows_delivered_and_read_on_ones_own_private_messages_only);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(chat_history_suite());
}
