/* test_chat_private.c - black-box tests of private chat against the wire contract: the
 * push to an online user, offline delivery (once, oldest first, after a restart too, and
 * its gauge), pipelined requests and large backlogs. See chat_suite.h for the server and
 * the helpers. */
#include "chat_plugin.h"
#include "chat_suite.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- private chat ---- */

START_TEST(private_chat_to_an_online_user_is_pushed_with_sender_text_ts_and_msg_id)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    send_private(alice, "bob", "hi bob", "success");
    json_t *first = check_read_json(bob);
    check_private(first, "alice", "hi bob", 0);
    /* user_from equal to the logged-in user is accepted. */
    expect(alice, "success", "{ssssssss}", "cmd", "private_chat", "user_from", "alice", "user_to",
           "bob", "text", "again");
    json_t *second = check_read_json(bob);
    check_private(second, "alice", "again", 0);
    if (json_equal(json_object_get(first, "msg_id"), json_object_get(second, "msg_id")))
        ck_abort_msg("two messages share a msg_id: %s and %s", check_dump(first),
                     check_dump(second));
    json_decref(first);
    json_decref(second);
    send_private(bob, "alice", "hi alice", "success");
    expect_private(alice, "bob", "hi alice", 0);
    /* The sender gets no copy. */
    expect_quiet(alice);
    expect_quiet(bob);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(private_chat_to_an_unknown_user_is_user_not_exist)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    send_private(alice, "nobody", "hello?", "user_not_exist");
    send_private(alice, "no body!", "hello?", "user_not_exist");
    expect_quiet(alice);
    test_client_close(alice);
    stop_chat();
}
END_TEST

START_TEST(private_messages_to_an_offline_user_are_delivered_once_after_login_oldest_first)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *carol = new_user("carol");
    struct test_client *bob = new_user("bob");
    do_logout(bob);
    send_private(alice, "bob", "one", "offline");
    send_private(carol, "bob", "two", "offline");
    send_private(alice, "bob", "three", "offline");
    expect_quiet(bob);

    json_t *got = login_settled(bob, "bob");
    if (json_array_size(got) != 3)
        ck_abort_msg("want 3 stored messages after login, got %s", check_dump(got));
    check_private(json_array_get(got, 0), "alice", "one", 1);
    check_private(json_array_get(got, 1), "carol", "two", 1);
    check_private(json_array_get(got, 2), "alice", "three", 1);
    assert_distinct_msg_ids(got);
    json_decref(got);

    /* Now online: delivered live. */
    send_private(alice, "bob", "four", "success");
    expect_private(bob, "alice", "four", 0);

    /* Exactly once: neither a second login nor a new connection gets them again. */
    do_logout(bob);
    assert_nothing_pending(login_settled(bob, "bob"), "bob");
    test_client_close(bob);
    bob = session_as("bob", 0);
    test_client_close(bob);
    test_client_close(alice);
    test_client_close(carol);
    stop_chat();
}
END_TEST

START_TEST(private_message_to_a_never_logged_in_user_waits_for_their_first_login)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    register_only("bob");
    send_private(alice, "bob", "welcome", "offline");
    struct test_client *bob = connect_client();
    json_t *got = login_settled(bob, "bob");
    static const char *const texts[] = {"welcome"};
    assert_privates(got, "alice", texts, 1, 1);
    json_decref(got);
    test_client_close(bob);
    test_client_close(alice);
    stop_chat();
}
END_TEST

/* ---- pipelining ---- */

#define PIPELINED 300

/* Send PIPELINED private_chat requests from one client in a single write: back to back
 * like the original desktop client, alternating with newlines. Ids are 1..PIPELINED. */
static void send_pipelined(struct test_client *c, const char *to)
{
    size_t cap = PIPELINED * 128, len = 0;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    for (int i = 1; i <= PIPELINED; i++) {
        int n = snprintf(buf + len, cap - len,
                         "{\"cmd\":\"private_chat\",\"id\":%d,\"user_to\":\"%s\",\"text\":\"seq "
                         "%04d\"}%s",
                         i, to, i, i % 2 ? "" : "\n");
        ck_assert(n > 0 && (size_t)n < cap - len);
        len += (size_t)n;
    }
    check_send(c, buf, len);
    free(buf);
}

static void expect_pipelined_replies(struct test_client *c, const char *result)
{
    for (int i = 1; i <= PIPELINED; i++) {
        json_t *msg = check_read_json(c);
        const json_t *id = json_object_get(msg, "id");
        if (!check_json_str_is(msg, "cmd", "private_chat_reply") ||
            !check_json_str_is(msg, "result", result) || !json_is_integer(id) ||
            json_integer_value(id) != i)
            ck_abort_msg("reply %d: want {\"cmd\":\"private_chat_reply\",\"result\":\"%s\","
                         "\"id\":%d}, got %s",
                         i, result, i, check_dump(msg));
        json_decref(msg);
    }
}

static void check_sequence(const json_t *got, int offline)
{
    if (json_array_size(got) != PIPELINED)
        ck_abort_msg("want %d messages, got %zu", PIPELINED, json_array_size(got));
    for (int i = 1; i <= PIPELINED; i++) {
        char text[32];
        snprintf(text, sizeof(text), "seq %04d", i);
        check_private(json_array_get(got, (size_t)i - 1), "alice", text, offline);
    }
    assert_distinct_msg_ids(got);
}

START_TEST(pipelined_private_messages_to_an_online_user_arrive_in_order)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    send_pipelined(alice, "bob");
    json_t *got = json_array();
    for (int i = 0; i < PIPELINED; i++)
        json_array_append_new(got, check_read_json(bob));
    check_sequence(got, 0);
    json_decref(got);
    expect_pipelined_replies(alice, "success");
    expect_quiet(alice);
    expect_quiet(bob);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(pipelined_private_messages_to_an_offline_user_arrive_in_order_after_login)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    register_only("bob");
    send_pipelined(alice, "bob");
    expect_pipelined_replies(alice, "offline");
    struct test_client *bob = connect_client();
    json_t *got = login_settled(bob, "bob");
    check_sequence(got, 1);
    json_decref(got);
    do_logout(bob);
    assert_nothing_pending(login_settled(bob, "bob"), "bob");
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

/* ---- large backlogs ---- */

START_TEST(a_large_private_backlog_of_long_texts_arrives_whole_and_in_order)
{
    /* 600 messages of 4000 bytes: 2.4 MB, well past max_output_bytes (1 MiB). */
    start_chat();
    struct test_client *alice = new_user("alice");
    register_only("bob");
    static char text[4000];
    for (int i = 1; i <= BIG_BACKLOG; i++) {
        numbered_text(text, sizeof(text), i);
        send_private(alice, "bob", text, "offline");
    }
    struct test_client *bob = connect_client();
    json_t *got = login_settled(bob, "bob");
    check_numbered(got, "private_chat_recv", BIG_BACKLOG);
    json_decref(got);
    do_logout(bob);
    assert_nothing_pending(login_settled(bob, "bob"), "bob");
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(stored_private_and_group_messages_keep_time_order_across_batches)
{
    /* More private messages than one batch, then a group message: it must come last. */
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    make_group("g", alice, bob);
    do_logout(bob);
    char text[64];
    for (int i = 1; i <= 510; i++) {
        numbered_text(text, sizeof(text), i);
        send_private(alice, "bob", text, "offline");
    }
    send_group(alice, "g", "last of all", "success");
    json_t *got = login_settled(bob, "bob");
    if (json_array_size(got) != 511)
        ck_abort_msg("want 511 stored messages, got %zu", json_array_size(got));
    check_group(json_array_get(got, 510), "g", "alice", "last of all", 1);
    json_array_remove(got, 510);
    check_numbered(got, "private_chat_recv", 510);
    json_decref(got);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

/* ---- durability ---- */

/* The value of gauge `name` on /metrics, waiting up to 5 s for it to become `want`;
 * returns the last value seen (-1: not shown). */
static double wait_for_gauge(int admin_port, const char *name, double want)
{
    double value = -1;
    for (int tries = 0; tries < 50; tries++) {
        char *metrics = test_http_get(admin_port, "/metrics");
        ck_assert_msg(metrics != NULL, "cannot connect to the admin listener");
        char line[128];
        snprintf(line, sizeof(line), "\n%s ", name);
        const char *at = strstr(metrics, line);
        value = at ? strtod(at + strlen(line), NULL) : -1;
        free(metrics);
        if (value == want)
            break;
        chatd_sleep_ms(100);
    }
    return value;
}

START_TEST(stored_messages_survive_a_restart)
{
    static const char *const privates[] = {"p1", "p2", "p3"};
    static const char *const groups[] = {"g1 m1", "g1 m2"};
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    make_group("g1", alice, bob);
    do_logout(bob);
    for (size_t i = 0; i < 3; i++)
        send_private(alice, "bob", privates[i], "offline");
    for (size_t i = 0; i < 2; i++)
        send_group(alice, "g1", groups[i], "success");
    test_client_close(alice);
    test_client_close(bob);

    restart_chat();

    bob = connect_client();
    json_t *got = login_settled(bob, "bob");
    if (json_array_size(got) != 5)
        ck_abort_msg("want 5 stored messages after the restart, got %s", check_dump(got));
    /* Oldest first overall; each kind in the order sent. */
    size_t np = 0, ng = 0;
    json_int_t last_ts = 0;
    for (size_t i = 0; i < 5; i++) {
        const json_t *msg = json_array_get(got, i);
        if (check_json_str_is(msg, "cmd", "private_chat_recv")) {
            if (np == 3)
                ck_abort_msg("more private messages than were sent: %s", check_dump(got));
            check_private(msg, "alice", privates[np++], 1);
        } else {
            if (ng == 2)
                ck_abort_msg("more group messages than were sent: %s", check_dump(got));
            check_group(msg, "g1", "alice", groups[ng++], 1);
        }
        json_int_t ts = json_integer_value(json_object_get(msg, "ts"));
        if (ts < last_ts)
            ck_abort_msg("stored messages out of order (ts goes back): %s", check_dump(got));
        last_ts = ts;
    }
    /* A message accepted by the new server has a msg_id of its own. */
    alice = session_as("alice", 0);
    send_private(alice, "bob", "after restart", "success");
    json_t *fresh = check_read_json(bob);
    check_private(fresh, "alice", "after restart", 0);
    json_array_append_new(got, fresh);
    assert_distinct_msg_ids(got);
    json_decref(got);

    do_logout(bob);
    assert_nothing_pending(login_settled(bob, "bob"), "bob");
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(metrics_show_the_offline_backlog)
{
    int admin_port = test_free_port("127.0.0.1");
    ck_assert_int_gt(admin_port, 0);
    char listen[64];
    snprintf(listen, sizeof(listen), "admin.listen=127.0.0.1:%d", admin_port);
    const char *const sets[] = {"admin.enable=yes", listen, NULL};
    start_chat_with(sets);
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    do_logout(bob);
    /* Stored messages wait in the host's timeline: a row each (the marker of bob's
     * first login got one too: his session was still reading the timeline). */
    const char *gauge = "chatd_post_timeline_rows_total";
    double before = wait_for_gauge(admin_port, gauge, 1);
    for (int i = 0; i < 3; i++)
        send_private(alice, "bob", "while you were away", "offline");
    double backlog = wait_for_gauge(admin_port, gauge, before + 3) - before;
    ck_assert_msg(backlog == 3, "want 3 messages waiting, /metrics says %g", backlog);
    json_t *got = login_settled(bob, "bob");
    ck_assert_uint_eq(json_array_size(got), 3);
    json_decref(got);
    double drained = wait_for_gauge(admin_port, "chatd_stream_drained_total", 3);
    ck_assert_msg(drained == 3, "want 3 sent after bob's login, /metrics says %g", drained);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

/* A device's new session is sent more than a page (64 KiB) of what that device has not
 * acknowledged while another session of the same user is online and idle. Its drain
 * waited on the user's flush, which the idle session answered at once, again and again,
 * until chatd's stack ran out: any user could kill the server this way. */
START_TEST(a_long_drain_beside_an_idle_session_of_the_same_user_arrives_whole)
{
    enum { N = 24, TEXT = 4096 };
    start_chat();
    struct test_client *bob = new_user("bob");
    register_only("alice");
    struct test_client *phone = connect_client();
    json_decref(call(phone, "success", "{sssssssssb}", "cmd", "login", "user", "alice", "passwd",
                     PASSWD, "device", "d1", "ack", 1));
    char *text = malloc(TEXT + 16);
    ck_assert(text != NULL);
    for (int i = 0; i < N; i++) {
        snprintf(text, TEXT + 16, "%03d", i);
        memset(text + 3, 'x', TEXT - 3);
        text[TEXT] = '\0';
        send_private(bob, "alice", text, "success");
        json_decref(read_push(phone, "private_chat_recv"));
    }
    /* The phone has read everything and acknowledged nothing: its output is empty. */
    struct test_client *laptop = connect_client();
    json_decref(call(laptop, "success", "{sssssssssb}", "cmd", "login", "user", "alice", "passwd",
                     PASSWD, "device", "d1", "ack", 1));
    for (int i = 0; i < N; i++) {
        json_t *m = read_push(laptop, "private_chat_recv");
        const char *got = json_string_value(json_object_get(m, "text"));
        ck_assert_msg(got && atoi(got) == i, "message %d came as %.8s", i, got ? got : "?");
        ck_assert(json_is_true(json_object_get(m, "offline")));
        json_decref(m);
    }
    expect_quiet(laptop);
    expect_quiet(phone);
    free(text);
    test_client_close(phone);
    test_client_close(laptop);
    test_client_close(bob);
    stop_chat();
}
END_TEST

static Suite *chat_private_suite(void)
{
    Suite *s = suite_create("chat_private");

    /* Generous bounds: a test waits at most a few seconds unless something is wrong. */
    TCase *tc = tcase_create("private_chat");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, private_chat_to_an_online_user_is_pushed_with_sender_text_ts_and_msg_id);
    tcase_add_test(tc, private_chat_to_an_unknown_user_is_user_not_exist);
    tcase_add_test(tc,
                   private_messages_to_an_offline_user_are_delivered_once_after_login_oldest_first);
    tcase_add_test(tc, private_message_to_a_never_logged_in_user_waits_for_their_first_login);
    suite_add_tcase(s, tc);

    tc = tcase_create("pipelining");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, pipelined_private_messages_to_an_online_user_arrive_in_order);
    tcase_add_test(tc, pipelined_private_messages_to_an_offline_user_arrive_in_order_after_login);
    tcase_add_test(tc, a_large_private_backlog_of_long_texts_arrives_whole_and_in_order);
    tcase_add_test(tc, stored_private_and_group_messages_keep_time_order_across_batches);
    tcase_add_test(tc, a_long_drain_beside_an_idle_session_of_the_same_user_arrives_whole);
    suite_add_tcase(s, tc);

    tc = tcase_create("durability");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, stored_messages_survive_a_restart);
    tcase_add_test(tc, metrics_show_the_offline_backlog);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(chat_private_suite());
}
