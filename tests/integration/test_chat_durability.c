/* test_chat_durability.c - a message whose sender was answered success or offline
 * survives kill -9 of chatd: 1,000 private messages to four recipients, each with a
 * client_msg_id, are accepted, and chatd is killed with SIGKILL while 250 more are
 * arriving; after a restart every recipient's login brings every accepted message
 * exactly once (with the msg_id its sender was given), and of the others at most one
 * copy. Then the sender retries all 1,250 with the same client_msg_ids: accepted ones
 * are answered as before and deliver nothing; in the end each message has reached its
 * recipient exactly once.
 *
 * Four recipients are away (version 1 logins after the restart); two are online during
 * the stream on an acknowledging device that reads nothing, and after the restart log
 * in on that device with "since":0 (then, after the retries, with "since" their last
 * seq). */
#include "chat_suite.h"

#include "check_client.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* MESSAGES are sent; the first ACCEPTED are answered before the kill, which comes while
 * the rest are arriving. */
#define MESSAGES   1250
#define ACCEPTED   1000
#define RECIPIENTS 6
/* The first AWAY recipients never log in before the kill (version 1 logins after it);
 * the others are online during the stream on an acknowledging device "phone" that
 * reads nothing, and log in again after the restart with "since". */
#define AWAY 4

static const char *const recipients[RECIPIENTS] = {"bob", "dave", "erin", "frank", "gina", "hank"};
/* The highest seq each recipient was sent by the first collect. */
static long long last_seq[RECIPIENTS];

/* What the sender was told (msg_id, or "" when not answered) and what arrived. */
static char accepted[MESSAGES][24];
static int arrived[MESSAGES];

static size_t request(char *out, size_t cap, int i)
{
    int n = snprintf(out, cap,
                     "{\"cmd\":\"private_chat\",\"user_to\":\"%s\",\"text\":\"d%d\","
                     "\"client_msg_id\":\"k%d\",\"id\":%d}\n",
                     recipients[i % RECIPIENTS], i, i, i);
    return (size_t)n;
}

static void send_range(struct test_client *c, int from, int to)
{
    size_t cap = (size_t)(to - from) * 128 + 1, len = 0;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    for (int i = from; i < to; i++)
        len += request(buf + len, cap - len, i);
    ck_assert_int_eq(test_client_send(c, buf, len, 10000), 0);
    free(buf);
}

/* Read one reply; 0 when none came (chatd died, or the wait ran out). A reply of a
 * retry must repeat the first answer. */
static int read_reply(struct test_client *c, int timeout_ms)
{
    json_t *r = test_client_read_json(c, timeout_ms);
    if (!r)
        return 0;
    json_int_t i = json_integer_value(json_object_get(r, "id"));
    const char *result = json_string_value(json_object_get(r, "result"));
    const char *msg_id = json_string_value(json_object_get(r, "msg_id"));
    ck_assert_msg(i >= 0 && i < MESSAGES && result, "unexpected %s", check_dump(r));
    ck_assert_msg((strcmp(result, "offline") == 0 || strcmp(result, "success") == 0) && msg_id,
                  "want offline or success with a msg_id: %s", check_dump(r));
    {
        if (accepted[i][0])
            ck_assert_msg(strcmp(accepted[i], msg_id) == 0, "k%d: first %s, then %s", (int)i,
                          accepted[i], check_dump(r));
        snprintf(accepted[i], sizeof(accepted[i]), "%s", msg_id);
    }
    json_decref(r);
    return 1;
}

/* A login of recipient r: version 1 for the away ones; on the device with `since` for
 * the others. Returns what it was sent (see settle). */
static json_t *login_recipient(struct test_client *c, int r, long long since)
{
    if (r < AWAY)
        return login_settled(c, recipients[r]);
    json_decref(call(c, "success", "{sssssssssbsI}", "cmd", "login", "user", recipients[r],
                     "passwd", PASSWD, "device", "phone", "ack", 1, "since", (json_int_t)since));
    return settle(c, recipients[r]);
}

/* Log every recipient in and count what each message brought; devices ask for what
 * came after `since_last` ? their last seq of the first collect : 0. */
static void collect(int since_last)
{
    for (int r = 0; r < RECIPIENTS; r++) {
        struct test_client *c = connect_client();
        json_t *got = login_recipient(c, r, since_last ? last_seq[r] : 0);
        for (size_t k = 0; k < json_array_size(got); k++) {
            const json_t *m = json_array_get(got, k);
            /* An earlier settle's marker comes again to a device asking from before it. */
            if (strcmp(json_string_value(json_object_get(m, "user_from")), "postman") == 0)
                continue;
            int i = atoi(json_string_value(json_object_get(m, "text")) + 1);
            ck_assert_msg(i >= 0 && i < MESSAGES, "unexpected %s", check_dump(m));
            ck_assert_msg(
                accepted[i][0] == '\0' ||
                    strcmp(accepted[i], json_string_value(json_object_get(m, "msg_id"))) == 0,
                "d%d arrived as %s, its sender was told %s", i, check_dump(m), accepted[i]);
            arrived[i]++;
            long long seq = json_integer_value(json_object_get(m, "seq"));
            if (!since_last && seq > last_seq[r])
                last_seq[r] = seq;
        }
        json_decref(got);
        test_client_close(c);
    }
}

/* The sender logs in again after the restart. A crash may lose the last second of
 * positions (docs/operations.md, "Messages"), so a settling marker that had a timeline
 * row (posted while her first login's drain ran) may come again, stored; nothing else
 * may. */
static struct test_client *sender_after_restart(const char *user)
{
    struct test_client *c = connect_client();
    json_t *got = login_settled(c, user);
    for (size_t k = 0; k < json_array_size(got); k++) {
        const json_t *m = json_array_get(got, k);
        ck_assert_msg(check_json_str_is(m, "cmd", "private_chat_recv") &&
                          check_json_str_is(m, "user_from", "postman") &&
                          json_is_true(json_object_get(m, "offline")),
                      "want nothing for %s but markers from before the crash, got %s", user,
                      check_dump(m));
    }
    json_decref(got);
    return c;
}

START_TEST(accepted_messages_survive_a_kill_mid_stream_and_retries_deliver_once)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    for (int r = 0; r < AWAY; r++)
        register_only(recipients[r]);
    struct test_client *devices[RECIPIENTS - AWAY];
    for (int r = AWAY; r < RECIPIENTS; r++) {
        devices[r - AWAY] = connect_client();
        do_register(devices[r - AWAY], recipients[r], PASSWD, "success");
        json_decref(call(devices[r - AWAY], "success", "{sssssssssb}", "cmd", "login", "user",
                         recipients[r], "passwd", PASSWD, "device", "phone", "ack", 1));
    }
    memset(accepted, 0, sizeof(accepted));
    memset(arrived, 0, sizeof(arrived));
    memset(last_seq, 0, sizeof(last_seq));

    /* In chunks, each answered before the next goes, then the rest at once and the
     * kill while chatd is taking them. */
    for (int from = 0; from < ACCEPTED; from += 200) {
        send_range(alice, from, from + 200);
        for (int k = 0; k < 200; k++)
            ck_assert_msg(read_reply(alice, 10000), "no reply to d%d", from + k);
    }
    send_range(alice, ACCEPTED, MESSAGES);
    crash_and_restart_chat();
    /* Replies written before the kill are still in the socket. */
    while (read_reply(alice, 2000))
        ;
    test_client_close(alice);
    for (int r = AWAY; r < RECIPIENTS; r++)
        test_client_close(devices[r - AWAY]);
    int n_accepted = 0;
    for (int i = 0; i < MESSAGES; i++)
        n_accepted += accepted[i][0] != '\0';
    printf("durability: %d of %d messages accepted before the kill\n", n_accepted, MESSAGES);
    ck_assert_int_ge(n_accepted, ACCEPTED);

    collect(0);
    for (int i = 0; i < MESSAGES; i++) {
        ck_assert_msg(arrived[i] <= 1, "d%d arrived %d times", i, arrived[i]);
        if (accepted[i][0])
            ck_assert_msg(arrived[i] == 1, "d%d was accepted as %s and is lost", i, accepted[i]);
    }

    /* The sender retries everything with the same ids. */
    alice = sender_after_restart("alice");
    send_range(alice, 0, MESSAGES);
    for (int n = 0; n < MESSAGES; n++)
        ck_assert_msg(read_reply(alice, 10000), "no reply to retry %d", n);
    for (int i = 0; i < MESSAGES; i++)
        ck_assert_msg(accepted[i][0], "the retry of k%d was not accepted", i);
    collect(1);
    for (int i = 0; i < MESSAGES; i++)
        ck_assert_msg(arrived[i] == 1, "d%d arrived %d times in all", i, arrived[i]);
    test_client_close(alice);
    stop_chat();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("chat_durability");
    TCase *tc = tcase_create("durability");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, accepted_messages_survive_a_kill_mid_stream_and_retries_deliver_once);
    suite_add_tcase(s, tc);
    return chatd_proc_run_suite(s);
}
