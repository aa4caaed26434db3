/* test_contract_v2.c - black-box tests of issue 12's "Done when", written against
 * docs/protocol.md and the wire contract ("Version 2 additions"), not against the code:
 * devices, seq, ack and since; durability across kill -9; idempotent sends; receipts;
 * history; the lists; version 1 clients unchanged; and the refusals of every new field.
 *
 * Markers: a private message from "courier" (nobody's friend, in no group) to a user is
 * queued behind everything pushed to that user before it, stored messages being sent
 * after a login included, so reading a session up to it reads everything before it.
 * Unlike chat_suite's settle, the marker's own seq is kept, so a device can acknowledge
 * everything it read. Markers are part of the user's stream: the checks skip their texts
 * but not their seqs. See chat_suite.h for the server and the other helpers. */
#include "chat_plugin.h"
#include "chat_suite.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SESSIONS 4

/* ---- the stream as a client sees it ---- */

static void flush(struct test_client *c);

static struct test_client *courier;
static int courier_registered;
static unsigned marks;

static struct test_client *courier_session(void)
{
    if (!courier) {
        courier = connect_client();
        if (!courier_registered)
            do_register(courier, "courier", PASSWD, "success");
        courier_registered = 1;
        json_decref(do_login(courier, "courier", PASSWD, "success"));
    }
    return courier;
}

/* After a restart the courier's connection is gone. */
static void courier_gone(void)
{
    if (courier)
        test_client_close(courier);
    courier = NULL;
}

static int is_message(const json_t *msg)
{
    return check_json_str_is(msg, "cmd", "private_chat_recv") ||
           check_json_str_is(msg, "cmd", "group_chat_recv");
}

static int is_marker(const json_t *msg)
{
    return check_json_str_is(msg, "cmd", "private_chat_recv") &&
           (check_json_str_is(msg, "user_from", "courier") ||
            check_json_str_is(msg, "user_from", "postman"));
}

/* A message's seq: an integer, with msg_id its decimal string (docs/protocol.md). */
static long long seq_of(const json_t *msg)
{
    const json_t *seq = json_object_get(msg, "seq");
    const char *id = json_string_value(json_object_get(msg, "msg_id"));
    char want[32];
    if (!json_is_integer(seq) || json_integer_value(seq) <= 0)
        ck_abort_msg("want a positive integer \"seq\" in %s", check_dump(msg));
    snprintf(want, sizeof(want), "%lld", (long long)json_integer_value(seq));
    if (!id || strcmp(id, want) != 0)
        ck_abort_msg("want \"msg_id\":\"%s\" (the seq as a decimal string) in %s", want,
                     check_dump(msg));
    return (long long)json_integer_value(seq);
}

/* Send a marker to `user` (online on the n sessions cs) and read each session up to it;
 * out[i] gets what session i got before it (the caller frees). Returns the marker's seq,
 * the same on every session. */
static long long collect_n(struct test_client *const *cs, size_t n, const char *user, json_t **out)
{
    char text[32];
    snprintf(text, sizeof(text), "mark %u", ++marks);
    struct test_client *from = courier_session();
    flush(from); /* delivered receipts for earlier markers */
    send_private(from, user, text, "success");
    long long seq = -1;
    for (size_t i = 0; i < n; i++) {
        out[i] = json_array();
        for (;;) {
            json_t *msg = check_read_json(cs[i]);
            if (is_marker(msg) && check_json_str_is(msg, "text", text)) {
                check_private(msg, "courier", text, 0);
                long long s = seq_of(msg);
                if (i > 0 && s != seq)
                    ck_abort_msg("the marker has seq %lld on one session, %lld on another", seq, s);
                seq = s;
                json_decref(msg);
                break;
            }
            json_array_append_new(out[i], msg);
        }
    }
    return seq;
}

static json_t *collect(struct test_client *c, const char *user, long long *marker_seq)
{
    json_t *out;
    long long seq = collect_n(&c, 1, user, &out);
    if (marker_seq)
        *marker_seq = seq;
    return out;
}

/* got (which this frees) holds no chat message but markers. */
static void assert_no_messages(json_t *got, const char *who)
{
    for (size_t i = 0; i < json_array_size(got); i++)
        if (is_message(json_array_get(got, i)) && !is_marker(json_array_get(got, i)))
            ck_abort_msg("want no message for %s, got %s", who, check_dump(got));
    json_decref(got);
}

/* Every chat message in got has a seq larger than the one before, and every one that is
 * not a marker the offline flag as given (-1: either). */
static void assert_seq_rising(const json_t *got, int offline)
{
    long long last = 0;
    for (size_t i = 0; i < json_array_size(got); i++) {
        const json_t *msg = json_array_get(got, i);
        if (!is_message(msg))
            continue;
        long long seq = seq_of(msg);
        if (seq <= last)
            ck_abort_msg("seq %lld after %lld (a repeat or out of order) in %s", seq, last,
                         check_dump(got));
        last = seq;
        if (offline >= 0 && !is_marker(msg))
            assert_offline_flag(msg, offline);
    }
}

/* The chat messages of `got` (markers skipped) have exactly these texts, in this order;
 * every message in it, markers included, has a seq larger than the one before, and the
 * offline flag is as given (-1: either). */
static void assert_stream(const json_t *got, const char *const *want, size_t n, int offline)
{
    assert_seq_rising(got, offline);
    size_t k = 0;
    for (size_t i = 0; i < json_array_size(got); i++) {
        const json_t *msg = json_array_get(got, i);
        if (!is_message(msg) || is_marker(msg))
            continue;
        if (k >= n || !check_json_str_is(msg, "text", want[k]))
            ck_abort_msg("message %zu: want text \"%s\", got %s\nall: %s", k,
                         k < n ? want[k] : "(none)", check_dump(msg), check_dump(got));
        k++;
    }
    if (k != n)
        ck_abort_msg("want %zu messages, got %zu: %s", n, k, check_dump(got));
}

/* Every message both arrays hold (by msg_id) has the same seq in each. */
static void assert_same_seqs(const json_t *a, const json_t *b)
{
    for (size_t i = 0; i < json_array_size(a); i++)
        for (size_t j = 0; j < json_array_size(b); j++) {
            const json_t *x = json_array_get(a, i), *y = json_array_get(b, j);
            if (is_message(x) && is_message(y) &&
                json_equal(json_object_get(x, "msg_id"), json_object_get(y, "msg_id")) &&
                !json_equal(json_object_get(x, "seq"), json_object_get(y, "seq")))
                ck_abort_msg("one message, two seqs: %s and %s", check_dump(x), check_dump(y));
        }
}

/* ---- requests of version 2 ---- */

/* The request as JSON text (an object without "id"), answered `result`; the reply. */
static json_t *call_json(struct test_client *c, const char *result, const char *request)
{
    json_error_t error;
    json_t *req = json_loads(request, 0, &error);
    ck_assert_msg(json_is_object(req), "cannot read the request %s: %s", request, error.text);
    return call(c, result, "o", req);
}

/* A login with "ack":true and "device", and "since" unless it is negative. */
static void login_device(struct test_client *c, const char *user, const char *device,
                         long long since)
{
    json_t *req = json_pack("{sssssssssb}", "cmd", "login", "user", user, "passwd", PASSWD,
                            "device", device, "ack", 1);
    if (since >= 0)
        json_object_set_new(req, "since", json_integer(since));
    json_decref(call(c, "success", "o", req));
}

static struct test_client *device_session(const char *user, const char *device, long long since)
{
    struct test_client *c = connect_client();
    login_device(c, user, device, since);
    return c;
}

static void send_ack(struct test_client *c, long long seq)
{
    char text[64];
    snprintf(text, sizeof(text), "{\"cmd\":\"ack\",\"seq\":%lld}\n", seq);
    check_send_str(c, text);
}

/* ack, then a ping: its reply (the next line) shows the ack was taken, unanswered. */
static void ack_sync(struct test_client *c, long long seq)
{
    send_ack(c, seq);
    expect_quiet(c);
}

/* Send a ping and read up to its reply; the lines before it (the caller frees). */
static json_t *read_until_pong(struct test_client *c)
{
    static unsigned n;
    char text[64];
    snprintf(text, sizeof(text), "{\"cmd\":\"ping\",\"id\":\"pong %u\"}\n", ++n);
    check_send_str(c, text);
    snprintf(text, sizeof(text), "pong %u", n);
    json_t *before = json_array();
    for (;;) {
        json_t *msg = check_read_json(c);
        if (check_json_str_is(msg, "cmd", "ping_reply") && check_json_str_is(msg, "id", text)) {
            json_decref(msg);
            return before;
        }
        json_array_append_new(before, msg);
    }
}

/* Read and drop whatever was pushed to c so far (up to a ping's reply). */
static void flush(struct test_client *c)
{
    json_decref(read_until_pong(c));
}

/* The reply of an accepted send: msg_id (the seq's decimal string), seq and ts. */
struct accepted {
    char msg_id[32];
    long long seq, ts;
};

static struct accepted accepted_of(const json_t *reply)
{
    struct accepted a = {.seq = seq_of(reply)};
    snprintf(a.msg_id, sizeof(a.msg_id), "%s", json_string_value(json_object_get(reply, "msg_id")));
    const json_t *ts = json_object_get(reply, "ts");
    if (!json_is_integer(ts) || json_integer_value(ts) <= 0)
        ck_abort_msg("want an integer \"ts\" in %s", check_dump(reply));
    a.ts = (long long)json_integer_value(ts);
    return a;
}

static struct accepted send_private_id(struct test_client *c, const char *to, const char *text,
                                       const char *client_msg_id, const char *result)
{
    json_t *reply = call(c, result, "{ssssssss}", "cmd", "private_chat", "user_to", to, "text",
                         text, "client_msg_id", client_msg_id);
    struct accepted a = accepted_of(reply);
    json_decref(reply);
    return a;
}

static struct accepted send_group_id(struct test_client *c, const char *group, const char *text,
                                     const char *client_msg_id)
{
    json_t *reply = call(c, "success", "{ssssssss}", "cmd", "group_chat", "group", group, "text",
                         text, "client_msg_id", client_msg_id);
    struct accepted a = accepted_of(reply);
    json_decref(reply);
    return a;
}

static void assert_same_accepted(struct accepted a, struct accepted b)
{
    if (strcmp(a.msg_id, b.msg_id) != 0 || a.seq != b.seq || a.ts != b.ts)
        ck_abort_msg("a repeated client_msg_id got msg_id %s seq %lld ts %lld, the first %s %lld "
                     "%lld",
                     b.msg_id, b.seq, b.ts, a.msg_id, a.seq, a.ts);
}

/* The one message in got (markers skipped) is the accepted one, with its fields. */
static void assert_got_accepted(const json_t *got, struct accepted a, const char *text)
{
    const char *const want[] = {text};
    assert_stream(got, want, 1, -1);
    for (size_t i = 0; i < json_array_size(got); i++) {
        const json_t *msg = json_array_get(got, i);
        if (!is_message(msg) || is_marker(msg))
            continue;
        if (seq_of(msg) != a.seq || json_integer_value(json_object_get(msg, "ts")) != a.ts)
            ck_abort_msg("the push %s is not the accepted message (seq %lld, ts %lld)",
                         check_dump(msg), a.seq, a.ts);
    }
}

/* Close c, a session of `user`, and wait until `watcher`, in the group "w" with `user`,
 * sees them offline (the server has taken the close): a message to them is then
 * answered offline. */
static void close_until_offline(struct test_client *c, struct test_client *watcher,
                                const char *user)
{
    test_client_close(c);
    long long deadline = chatd_now_ms() + 10000;
    for (;;) {
        flush(watcher); /* receipts */
        json_t *r = call(watcher, "success", "{ssss}", "cmd", "group_members", "group", "w");
        size_t i;
        const json_t *member;
        int online = -1;
        json_array_foreach(json_object_get(r, "members"), i, member)
        {
            if (check_json_str_is(member, "user", user))
                online = json_is_true(json_object_get(member, "online"));
        }
        json_decref(r);
        if (online == 0)
            return;
        ck_assert_msg(online == 1 && chatd_now_ms() < deadline, "%s is not seen going offline",
                      user);
        chatd_sleep_ms(20);
    }
}

/* `user` registered, in the group "w" with watcher, and offline. */
static void watched_user(struct test_client *watcher, const char *user)
{
    struct test_client *c = new_user(user);
    make_group("w", watcher, c);
    close_until_offline(c, watcher, user);
}

/* ---- two devices ---- */

START_TEST(two_devices_one_offline_both_get_every_message_once_in_order)
{
    static const char *const all[] = {"p1", "g1", "p2", "g2", "p3", "g3", "p4", "g4", "p5", "g5"};
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *carol = new_user("carol");
    register_only("bob");
    struct test_client *bob[2] = {device_session("bob", "phone", -1), NULL};
    make_group("g", carol, bob[0]); /* alice is in no group: she is sent nothing */
    bob[1] = device_session("bob", "laptop", -1);
    json_t *phone = json_array(), *laptop = json_array(), *got[2];

    /* Both online: private and group messages interleaved. */
    send_private(alice, "bob", "p1", "success");
    send_group(carol, "g", "g1", "success");
    send_private(carol, "bob", "p2", "success");
    send_group(carol, "g", "g2", "success");
    long long mark = collect_n(bob, 2, "bob", got);
    assert_stream(got[0], all, 4, 0);
    assert_stream(got[1], all, 4, 0);
    json_array_extend(phone, got[0]);
    json_array_extend(laptop, got[1]);
    json_decref(got[0]);
    json_decref(got[1]);
    ack_sync(bob[0], mark);
    ack_sync(bob[1], mark);

    /* The phone goes away; more arrives, the laptop gets it live. (The senders were
     * sent delivered receipts for their private messages.) */
    test_client_close(bob[0]);
    flush(alice);
    flush(carol);
    send_private(alice, "bob", "p3", "success");
    send_group(carol, "g", "g3", "success");
    send_private(alice, "bob", "p4", "success");
    send_group(carol, "g", "g4", "success");
    send_private(carol, "bob", "p5", "success");
    json_t *live = collect(bob[1], "bob", &mark);
    assert_stream(live, all + 4, 5, 0);
    json_array_extend(laptop, live);
    json_decref(live);
    ack_sync(bob[1], mark);

    /* The phone comes back (no since: its last ack) and gets exactly what it missed,
     * stored, then live messages as they come. */
    bob[0] = device_session("bob", "phone", -1);
    json_t *missed = collect(bob[0], "bob", &mark);
    assert_stream(missed, all + 4, 5, 1);
    json_array_extend(phone, missed);
    json_decref(missed);
    ack_sync(bob[0], mark);
    flush(carol);
    send_group(carol, "g", "g5", "success");
    collect_n(bob, 2, "bob", got);
    assert_stream(got[0], all + 9, 1, 0);
    assert_stream(got[1], all + 9, 1, 0);
    json_array_extend(phone, got[0]);
    json_array_extend(laptop, got[1]);
    json_decref(got[0]);
    json_decref(got[1]);

    /* Each device: every message once, in order; one seq per message on both. */
    assert_stream(phone, all, 10, -1);
    assert_stream(laptop, all, 10, -1);
    assert_same_seqs(phone, laptop);
    json_decref(phone);
    json_decref(laptop);
    test_client_close(alice);
    test_client_close(carol);
    test_client_close(bob[0]);
    test_client_close(bob[1]);
    courier_gone();
    stop_chat();
}
END_TEST

/* Read exactly n pushes (the stored messages after a login); the caller frees. */
static json_t *read_n(struct test_client *c, size_t n)
{
    json_t *got = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(got, check_read_json(c));
    return got;
}

static long long last_seq(const json_t *got)
{
    return seq_of(json_array_get(got, json_array_size(got) - 1));
}

START_TEST(a_device_that_leaves_right_after_reading_gets_nothing_twice_after_acking)
{
    static const char *const texts[] = {"a1", "a2", "a3", "a4", "a5", "a6", "a7"};
    start_chat();
    struct test_client *alice = new_user("alice");
    watched_user(alice, "bob");
    for (int i = 0; i < 3; i++)
        send_private(alice, "bob", texts[i], "offline");

    /* Read the three stored messages, acknowledge, leave at once. */
    struct test_client *bob = device_session("bob", "phone", -1);
    json_t *got = read_n(bob, 3);
    assert_stream(got, texts, 3, 1);
    long long a3 = last_seq(got);
    json_decref(got);
    send_ack(bob, a3);
    ck_assert_int_eq(test_client_wait_peer_read(bob, TEST_CLIENT_TIMEOUT_MS), 0);
    test_client_close(bob);
    bob = device_session("bob", "phone", -1);
    long long mark;
    assert_no_messages(collect(bob, "bob", &mark), "bob's phone after acking all");
    ack_sync(bob, mark);
    close_until_offline(bob, alice, "bob");

    /* Two more; acknowledge only the first of them: the second comes again. */
    flush(alice); /* delivered receipts */
    send_private(alice, "bob", "a4", "offline");
    send_private(alice, "bob", "a5", "offline");
    bob = device_session("bob", "phone", -1);
    got = read_n(bob, 2);
    assert_stream(got, texts + 3, 2, 1);
    long long a4 = seq_of(json_array_get(got, 0));
    json_decref(got);
    send_ack(bob, a4);
    ck_assert_int_eq(test_client_wait_peer_read(bob, TEST_CLIENT_TIMEOUT_MS), 0);
    test_client_close(bob);
    bob = device_session("bob", "phone", -1);
    got = collect(bob, "bob", &mark);
    assert_stream(got, texts + 4, 1, 1);
    json_decref(got);
    ack_sync(bob, mark);
    close_until_offline(bob, alice, "bob");

    /* since: exactly the messages after it, not moving the acknowledged position. */
    flush(alice);
    struct accepted a6 = send_private_id(alice, "bob", "a6", "a6", "offline");
    send_private_id(alice, "bob", "a7", "a7", "offline");
    bob = device_session("bob", "phone", a6.seq);
    got = collect(bob, "bob", NULL);
    assert_stream(got, texts + 6, 1, 1);
    json_decref(got);
    test_client_close(bob);
    bob = device_session("bob", "phone", -1);
    got = collect(bob, "bob", NULL);
    assert_stream(got, texts + 5, 2, 1);
    json_decref(got);
    test_client_close(bob);
    test_client_close(alice);
    courier_gone();
    stop_chat();
}
END_TEST

START_TEST(an_ack_past_what_the_session_was_sent_counts_up_to_what_it_was_sent)
{
    static const char *const texts[] = {"b1", "b2"};
    start_chat();
    struct test_client *alice = new_user("alice");
    watched_user(alice, "bob");
    struct test_client *bob = device_session("bob", "phone", -1);
    send_private(alice, "bob", "b1", "success");
    long long mark;
    json_t *got = collect(bob, "bob", &mark);
    assert_stream(got, texts, 1, 0);
    json_decref(got);
    ack_sync(bob, mark + 1000000);
    close_until_offline(bob, alice, "bob");
    flush(alice); /* the delivered receipt */
    send_private(alice, "bob", "b2", "offline");
    bob = device_session("bob", "phone", -1);
    got = collect(bob, "bob", NULL);
    assert_stream(got, texts + 1, 1, 1);
    json_decref(got);
    test_client_close(bob);
    test_client_close(alice);
    courier_gone();
    stop_chat();
}
END_TEST

/* ---- idempotent sends ---- */

START_TEST(a_retried_client_msg_id_delivers_once_with_the_same_reply)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    struct test_client *carol = new_user("carol");
    make_group("g", alice, bob);

    /* Online: success, then the same reply again and nothing delivered. */
    struct accepted first = send_private_id(alice, "bob", "once", "c-1", "success");
    json_t *got = collect(bob, "bob", NULL);
    assert_got_accepted(got, first, "once");
    json_decref(got);
    assert_same_accepted(first, send_private_id(alice, "bob", "once", "c-1", "success"));
    struct test_client *alice2 = second_session(alice, "alice");
    assert_same_accepted(first, send_private_id(alice2, "bob", "once", "c-1", "success"));
    assert_no_messages(collect(bob, "bob", NULL), "bob after repeats");

    /* Another sender's client_msg_id is their own. */
    struct accepted other = send_private_id(carol, "bob", "carol's", "c-1", "success");
    ck_assert_str_ne(other.msg_id, first.msg_id);
    got = collect(bob, "bob", NULL);
    assert_got_accepted(got, other, "carol's");
    json_decref(got);

    /* A group message. */
    struct accepted g = send_group_id(alice, "g", "to all once", "gc-1");
    assert_same_accepted(g, send_group_id(alice, "g", "to all once", "gc-1"));
    got = collect(bob, "bob", NULL);
    assert_got_accepted(got, g, "to all once");
    json_decref(got);

    /* Offline: the repeat is answered offline too, and stored once. */
    do_logout(bob);
    struct accepted away = send_private_id(alice, "bob", "while away", "c-2", "offline");
    assert_same_accepted(away, send_private_id(alice, "bob", "while away", "c-2", "offline"));
    json_decref(do_login(bob, "bob", PASSWD, "success"));
    got = collect(bob, "bob", NULL);
    assert_got_accepted(got, away, "while away");
    json_decref(got);

    /* Kept across a restart; the same result word though bob is away now. */
    do_logout(bob);
    test_client_close(alice);
    test_client_close(alice2);
    test_client_close(carol);
    courier_gone();
    restart_chat();
    alice = session_as("alice", 0);
    assert_same_accepted(first, send_private_id(alice, "bob", "once", "c-1", "success"));
    test_client_close(bob);
    bob = connect_client();
    json_decref(do_login(bob, "bob", PASSWD, "success"));
    assert_no_messages(collect(bob, "bob", NULL), "bob after a repeat across a restart");
    test_client_close(alice);
    test_client_close(bob);
    courier_gone();
    stop_chat();
}
END_TEST

/* ---- durability ---- */

#define CRASH_ACCEPTED 1000
#define CRASH_CHUNK    150

struct crash_sender {
    struct test_client *c;
    const char *cmd, *to_key, *to;
    int sent, read;
    char accepted[2 * CRASH_ACCEPTED][24]; /* msg_ids of the messages answered accepted */
    int n_accepted;
};

static void crash_send_chunk(struct crash_sender *s)
{
    for (int i = 0; i < CRASH_CHUNK; i++, s->sent++) {
        char text[256];
        snprintf(text, sizeof(text),
                 "{\"cmd\":\"%s\",\"%s\":\"%s\",\"text\":\"%c%d\",\"client_msg_id\":\"k%d\"}\n",
                 s->cmd, s->to_key, s->to, s->cmd[0], s->sent, s->sent);
        check_send_str(s->c, text);
    }
}

/* Read one reply; returns 1 when it accepted the message. */
static int crash_read_reply(struct crash_sender *s)
{
    json_t *reply = check_read_json(s->c);
    s->read++;
    const char *result = chatd_json_str(reply, "result");
    int ok = strcmp(result, "success") == 0 || strcmp(result, "offline") == 0;
    if (!ok && strcmp(result, "busy") != 0)
        ck_abort_msg("a send under load was answered %s", check_dump(reply));
    if (ok)
        snprintf(s->accepted[s->n_accepted++], sizeof(s->accepted[0]), "%s",
                 json_string_value(json_object_get(reply, "msg_id")));
    json_decref(reply);
    return ok;
}

/* Every accepted message of s is in got once (got is in seq order by assert_stream). */
static void assert_all_accepted_in(const struct crash_sender *s, const json_t *got,
                                   const char *device)
{
    for (int i = 0; i < s->n_accepted; i++) {
        int found = 0;
        for (size_t j = 0; j < json_array_size(got); j++)
            found += check_json_str_is(json_array_get(got, j), "msg_id", s->accepted[i]);
        if (found != 1)
            ck_abort_msg("%s got accepted message %s %d times after kill -9 (want once)", device,
                         s->accepted[i], found);
    }
}

/* got holds messages from one sender in the order sent: texts "<c><n>" with n rising. */
static void assert_sender_order(const json_t *got, const char *cmd, char c)
{
    long last = -1;
    for (size_t i = 0; i < json_array_size(got); i++) {
        const json_t *msg = json_array_get(got, i);
        const char *text = json_string_value(json_object_get(msg, "text"));
        if (!check_json_str_is(msg, "cmd", cmd) || is_marker(msg) || !text || text[0] != c)
            continue;
        long n = strtol(text + 1, NULL, 10);
        if (n <= last)
            ck_abort_msg("%s after %c%ld: out of order or repeated", text, c, last);
        last = n;
    }
}

START_TEST(kill_9_mid_stream_loses_no_accepted_message)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *dave = new_user("dave");
    register_only("bob");
    register_only("carol");

    /* Three recipient devices, each at a known position. */
    struct test_client *phone = device_session("bob", "phone", -1);
    struct test_client *laptop = device_session("bob", "laptop", -1);
    struct test_client *pc = device_session("carol", "pc", -1);
    make_group("g", dave, phone);
    group_cmd(pc, "join_group", "g", "success");
    struct test_client *bobs[2] = {phone, laptop};
    json_t *got[2];
    long long bob_since = collect_n(bobs, 2, "bob", got);
    json_decref(got[0]);
    json_decref(got[1]);
    long long carol_since;
    json_decref(collect(pc, "carol", &carol_since));
    test_client_close(laptop);
    test_client_close(pc);

    /* alice writes to bob (whose phone is online, not reading), dave to the group, both
     * pipelining; once 1000 are accepted, kill -9 with more in flight. */
    static struct crash_sender priv, grp;
    priv =
        (struct crash_sender){.c = alice, .cmd = "private_chat", .to_key = "user_to", .to = "bob"};
    grp = (struct crash_sender){.c = dave, .cmd = "group_chat", .to_key = "group", .to = "g"};
    int accepted = 0;
    while (accepted < CRASH_ACCEPTED) {
        crash_send_chunk(&priv);
        crash_send_chunk(&grp);
        for (int i = 0; i < CRASH_CHUNK && accepted < CRASH_ACCEPTED; i++) {
            accepted += crash_read_reply(&priv);
            if (accepted < CRASH_ACCEPTED)
                accepted += crash_read_reply(&grp);
        }
        if (accepted < CRASH_ACCEPTED)
            while (priv.read < priv.sent)
                accepted += crash_read_reply(&priv);
        if (accepted < CRASH_ACCEPTED)
            while (grp.read < grp.sent)
                accepted += crash_read_reply(&grp);
    }
    courier_gone();
    crash_and_restart_chat();
    test_client_reset(alice);
    test_client_reset(dave);
    test_client_reset(phone);
    printf("kill -9 after %d accepted; %d and %d sends unanswered\n", accepted,
           priv.sent - priv.read, grp.sent - grp.read);

    /* Every device of every recipient, with since: every accepted message, once, in
     * order; the two devices of bob get the same. */
    phone = device_session("bob", "phone", bob_since);
    laptop = device_session("bob", "laptop", bob_since);
    bobs[0] = phone;
    bobs[1] = laptop;
    collect_n(bobs, 2, "bob", got);
    pc = device_session("carol", "pc", carol_since);
    json_t *carols = collect(pc, "carol", NULL);
    for (int d = 0; d < 2; d++) {
        const char *device = d ? "bob's laptop" : "bob's phone";
        assert_seq_rising(got[d], 1);
        assert_all_accepted_in(&priv, got[d], device);
        assert_all_accepted_in(&grp, got[d], device);
        assert_sender_order(got[d], "private_chat_recv", 'p');
        assert_sender_order(got[d], "group_chat_recv", 'g');
    }
    if (!json_equal(got[0], got[1]))
        ck_abort_msg("bob's devices got different streams after kill -9");
    assert_seq_rising(carols, 1);
    assert_all_accepted_in(&grp, carols, "carol's pc");
    assert_sender_order(carols, "group_chat_recv", 'g');
    json_decref(got[0]);
    json_decref(got[1]);
    json_decref(carols);
    test_client_close(phone);
    test_client_close(laptop);
    test_client_close(pc);
    courier_gone();
    stop_chat();
}
END_TEST

/* ---- receipts ---- */

/* got holds exactly these receipts (any order): msg_ids[i] with `status`, from `user`;
 * frees got. */
static void assert_receipts(json_t *got, const char *user, const char *status,
                            const char *const *msg_ids, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < json_array_size(got); i++) {
        const json_t *msg = json_array_get(got, i);
        if (!check_json_str_is(msg, "cmd", "receipt"))
            ck_abort_msg("want only receipts, got %s", check_dump(msg));
        check_json_no_key(msg, "id");
        check_json_str(msg, "user", user);
        check_json_str(msg, "status", status);
        count++;
        int found = 0;
        for (size_t k = 0; k < n; k++)
            found += check_json_str_is(msg, "msg_id", msg_ids[k]);
        if (!found)
            ck_abort_msg("an unexpected receipt: %s", check_dump(msg));
        for (size_t j = 0; j < i; j++)
            if (json_equal(json_array_get(got, j), msg))
                ck_abort_msg("a receipt came twice: %s", check_dump(msg));
    }
    if (count != n)
        ck_abort_msg("want %zu %s receipts, got %s", n, status, check_dump(got));
    json_decref(got);
}

static void read_mark(struct test_client *c, const char *with, const char *msg_id,
                      const char *result)
{
    expect(c, result, "{ssssss}", "cmd", "read", "with", with, "msg_id", msg_id);
}

START_TEST(receipts_arrive_once_per_message_and_status)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *alice2 = second_session(alice, "alice");
    register_only("bob");
    struct test_client *bob[2] = {device_session("bob", "phone", -1),
                                  device_session("bob", "laptop", -1)};
    struct accepted m[3];
    const char *ids[3];
    static const char *const texts[] = {"r1", "r2", "r3"};
    for (int i = 0; i < 3; i++) {
        m[i] = send_private_id(alice, "bob", texts[i], texts[i], "success");
        ids[i] = m[i].msg_id;
    }
    json_t *got[2];
    long long mark = collect_n(bob, 2, "bob", got);
    assert_stream(got[0], texts, 3, 0);
    assert_stream(got[1], texts, 3, 0);
    json_decref(got[0]);
    json_decref(got[1]);

    /* The phone acknowledges r1 and r2: one delivered receipt each, to both of alice's
     * sessions. The laptop then acknowledges everything: only r3's is new. The phone
     * acknowledging everything too sends nothing. */
    ack_sync(bob[0], m[1].seq);
    assert_receipts(read_until_pong(alice), "bob", "delivered", ids, 2);
    assert_receipts(read_until_pong(alice2), "bob", "delivered", ids, 2);
    ack_sync(bob[1], mark);
    assert_receipts(read_until_pong(alice), "bob", "delivered", ids + 2, 1);
    assert_receipts(read_until_pong(alice2), "bob", "delivered", ids + 2, 1);
    ack_sync(bob[0], mark);
    assert_receipts(read_until_pong(alice), "bob", "delivered", NULL, 0);

    /* read: one receipt for the newest message read; none again, none backwards. */
    read_mark(bob[0], "alice", m[1].msg_id, "success");
    assert_receipts(read_until_pong(alice), "bob", "read", ids + 1, 1);
    assert_receipts(read_until_pong(alice2), "bob", "read", ids + 1, 1);
    read_mark(bob[1], "alice", m[1].msg_id, "success");
    read_mark(bob[0], "alice", m[0].msg_id, "success");
    assert_receipts(read_until_pong(alice), "bob", "read", NULL, 0);
    read_mark(bob[1], "alice", m[2].msg_id, "success");
    assert_receipts(read_until_pong(alice), "bob", "read", ids + 2, 1);
    assert_receipts(read_until_pong(alice2), "bob", "read", ids + 2, 1);

    test_client_close(alice);
    test_client_close(alice2);
    test_client_close(bob[0]);
    test_client_close(bob[1]);
    courier_gone();
    stop_chat();
}
END_TEST

START_TEST(a_receipt_goes_to_a_sender_who_was_away_via_history_flags)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    register_only("bob");
    struct accepted m = send_private_id(alice, "bob", "seen?", "s-1", "offline");
    do_logout(alice);
    struct test_client *bob = device_session("bob", "phone", -1);
    long long mark;
    json_t *got = collect(bob, "bob", &mark);
    json_decref(got);
    ack_sync(bob, mark);
    read_mark(bob, "alice", m.msg_id, "success");
    /* alice was away: no receipt waits for her, history says it. */
    json_decref(do_login(alice, "alice", PASSWD, "success"));
    assert_no_messages(collect(alice, "alice", NULL), "alice");
    json_t *h = call(alice, "success", "{sssssi}", "cmd", "history", "with", "bob", "limit", 10);
    const json_t *msgs = json_object_get(h, "messages");
    ck_assert_msg(json_array_size(msgs) == 1, "want one message in %s", check_dump(h));
    const json_t *msg = json_array_get(msgs, 0);
    check_json_str(msg, "msg_id", m.msg_id);
    if (!json_is_true(json_object_get(msg, "delivered")) ||
        !json_is_true(json_object_get(msg, "read")))
        ck_abort_msg("want \"delivered\":true and \"read\":true in %s", check_dump(msg));
    json_decref(h);
    test_client_close(alice);
    test_client_close(bob);
    courier_gone();
    stop_chat();
}
END_TEST

/* ---- history ---- */

#define HISTORY_TOTAL  10000
#define HISTORY_WINDOW 200

/* One page of history: the reply (caller frees), checked: success, messages oldest
 * first with rising seqs, each shaped like a push without cmd, and a boolean more. */
static json_t *history_page(struct test_client *c, const char *key, const char *name, int limit,
                            const char *before)
{
    flush(c);
    json_t *req = json_pack("{ssss}", "cmd", "history", key, name);
    if (limit > 0)
        json_object_set_new(req, "limit", json_integer(limit));
    if (before)
        json_object_set_new(req, "before", json_string(before));
    json_t *reply = call(c, "success", "o", req);
    const json_t *msgs = json_object_get(reply, "messages");
    if (!json_is_array(msgs) || !json_is_boolean(json_object_get(reply, "more")))
        ck_abort_msg("want \"messages\" (an array) and \"more\" (a boolean) in %s",
                     check_dump(reply));
    long long last = 0;
    for (size_t i = 0; i < json_array_size(msgs); i++) {
        const json_t *msg = json_array_get(msgs, i);
        long long seq = seq_of(msg);
        if (seq <= last)
            ck_abort_msg("history not oldest first: %s", check_dump(reply));
        last = seq;
        if (!json_is_string(json_object_get(msg, "user_from")) ||
            !json_is_string(json_object_get(msg, "text")) ||
            !json_is_integer(json_object_get(msg, "ts")))
            ck_abort_msg("want user_from, text and ts in %s", check_dump(msg));
        check_json_no_key(msg, "cmd");
        if (strcmp(key, "group") == 0)
            check_json_str(msg, "group", name);
    }
    return reply;
}

static size_t page_size(const json_t *page)
{
    return json_array_size(json_object_get(page, "messages"));
}

static int page_more(const json_t *page)
{
    return json_is_true(json_object_get(page, "more"));
}

/* The msg_id of a page's oldest message. */
static const char *page_oldest(const json_t *page)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(page, "messages"), 0), "msg_id"));
}

START_TEST(history_pages_back_through_10000_messages_without_gap_or_repeat)
{
    char sets[2][CHAT_PLUGIN_TEXT_MAX];
    const char *const more[] = {chat_plugin_set(sets[0], "max_offline_messages", "20000"),
                                chat_plugin_set(sets[1], "max_offline_per_sender", "20000"), NULL};
    start_chat_with(more);
    struct test_client *alice = new_user("alice");
    register_only("bob");
    /* alice writes 10,000 to bob, who is away, pipelining HISTORY_WINDOW at a time. */
    int sent = 0, answered = 0;
    while (answered < HISTORY_TOTAL) {
        while (sent < HISTORY_TOTAL && sent - answered < HISTORY_WINDOW) {
            char text[128];
            snprintf(text, sizeof(text),
                     "{\"cmd\":\"private_chat\",\"user_to\":\"bob\",\"text\":\"h%05d\"}\n", sent++);
            check_send_str(alice, text);
        }
        json_t *reply = check_read_json(alice);
        check_json_str(reply, "result", "offline");
        json_decref(reply);
        answered++;
    }

    /* Page back from the newest: every message once, newest page first. */
    long long t0 = chatd_now_ms();
    int want = HISTORY_TOTAL - 1, pages = 0;
    char before[32] = "";
    long long newest = 0;
    for (;;) {
        json_t *page = history_page(alice, "with", "bob", 200, before[0] ? before : NULL);
        const json_t *msgs = json_object_get(page, "messages");
        size_t n = json_array_size(msgs);
        ck_assert_msg(n > 0 && n <= 200, "a page of %zu messages", n);
        for (size_t i = n; i-- > 0;) {
            const json_t *msg = json_array_get(msgs, i);
            char text[16];
            snprintf(text, sizeof(text), "h%05d", want--);
            if (!check_json_str_is(msg, "text", text) ||
                !check_json_str_is(msg, "user_from", "alice"))
                ck_abort_msg("want text %s from alice (a gap or a repeat), got %s", text,
                             check_dump(msg));
            if (!json_is_boolean(json_object_get(msg, "delivered")) ||
                !json_is_boolean(json_object_get(msg, "read")))
                ck_abort_msg("want \"delivered\" and \"read\" booleans on alice's own message "
                             "%s",
                             check_dump(msg));
        }
        if (!newest)
            newest = seq_of(json_array_get(msgs, n - 1));
        pages++;
        int more_pages = page_more(page);
        snprintf(before, sizeof(before), "%s", page_oldest(page));
        json_decref(page);
        if (!more_pages)
            break;
    }
    ck_assert_msg(want == -1, "history ended with %d messages not seen", want + 1);
    printf("history: %d pages of 10,000 messages in %lld ms\n", pages, chatd_now_ms() - t0);

    /* bob's view of the same conversation: the newest page, default limit 50 (on a
     * device that has everything already, so no stored message comes in between). */
    struct test_client *bob = device_session("bob", "phone", newest);
    json_t *page = history_page(bob, "with", "alice", 0, NULL);
    ck_assert_uint_eq(page_size(page), 50);
    ck_assert(page_more(page));
    check_json_str(json_array_get(json_object_get(page, "messages"), 49), "text", "h09999");
    json_decref(page);
    test_client_close(bob);
    test_client_close(alice);
    stop_chat();
}
END_TEST

START_TEST(history_limits_and_both_directions)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    struct test_client *carol = new_user("carol");
    for (int i = 0; i < 250; i++) {
        char text[16];
        snprintf(text, sizeof(text), "x%d", i);
        struct test_client *from = i % 2 ? bob : alice;
        flush(from); /* the other's last message */
        send_private(from, i % 2 ? "alice" : "bob", text, "success");
    }
    flush(alice);
    send_private(alice, "carol", "not in alice|bob", "success");
    /* The server caps a page at 200. */
    json_t *page = history_page(alice, "with", "bob", 200, NULL);
    ck_assert_uint_eq(page_size(page), 200);
    ck_assert(page_more(page));
    const json_t *newest = json_array_get(json_object_get(page, "messages"), 199);
    check_json_str(newest, "text", "x249");
    check_json_str(newest, "user_from", "bob");
    json_t *rest = history_page(bob, "with", "alice", 200, page_oldest(page));
    ck_assert_uint_eq(page_size(rest), 50);
    ck_assert(!page_more(rest));
    check_json_str(json_array_get(json_object_get(rest, "messages"), 0), "text", "x0");
    check_json_str(json_array_get(json_object_get(rest, "messages"), 0), "user_from", "alice");
    json_decref(page);
    json_decref(rest);
    /* A conversation with nothing in it is an empty page. */
    page = history_page(bob, "with", "carol", 10, NULL);
    ck_assert_uint_eq(page_size(page), 0);
    ck_assert(!page_more(page));
    json_decref(page);
    test_client_close(alice);
    test_client_close(bob);
    test_client_close(carol);
    stop_chat();
}
END_TEST

/* The texts of a group history page, exactly. */
static void assert_group_history(struct test_client *c, const char *group, const char *const *texts,
                                 size_t n)
{
    json_t *page = history_page(c, "group", group, 50, NULL);
    const json_t *msgs = json_object_get(page, "messages");
    if (json_array_size(msgs) != n)
        ck_abort_msg("want %zu messages in %s's history, got %s", n, group, check_dump(page));
    for (size_t i = 0; i < n; i++)
        check_json_str(json_array_get(msgs, i), "text", texts[i]);
    ck_assert(!page_more(page));
    json_decref(page);
}

START_TEST(group_history_shows_a_member_what_came_since_they_last_joined)
{
    static const char *const all[] = {"before bob", "with bob", "while bob left", "bob back"};
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    struct test_client *carol = new_user("carol");
    group_cmd(alice, "create_group", "g", "success");
    send_group(alice, "g", all[0], "success");
    group_cmd(bob, "join_group", "g", "success");
    send_group(alice, "g", all[1], "success");
    assert_group_history(alice, "g", all, 2);
    assert_group_history(bob, "g", all + 1, 1);
    group_cmd(bob, "leave_group", "g", "success");
    flush(bob);
    expect(bob, "not_member", "{ssss}", "cmd", "history", "group", "g");
    send_group(alice, "g", all[2], "success");
    group_cmd(bob, "join_group", "g", "success");
    send_group(bob, "g", all[3], "success");
    assert_group_history(bob, "g", all + 3, 1);
    assert_group_history(alice, "g", all, 4);
    expect(carol, "not_member", "{ssss}", "cmd", "history", "group", "g");
    expect(carol, "group_not_exist", "{ssss}", "cmd", "history", "group", "nope");
    expect(carol, "group_not_exist", "{ssss}", "cmd", "history", "group", "no pe");
    expect(carol, "user_not_exist", "{ssss}", "cmd", "history", "with", "nobody");
    test_client_close(alice);
    test_client_close(bob);
    test_client_close(carol);
    stop_chat();
}
END_TEST

/* ---- lists ---- */

START_TEST(lists_show_friends_groups_and_members_with_their_flags)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    register_only("carol");
    struct test_client *dave = new_user("dave");
    add_friend(alice, "bob", "success");
    add_friend(alice, "carol", "success");
    json_t *r = call(alice, "success", "{ss}", "cmd", "friends");
    json_t *want = json_loads("[{\"user\":\"bob\",\"online\":true},"
                              "{\"user\":\"carol\",\"online\":false}]",
                              0, NULL);
    if (!json_equal(json_object_get(r, "friends"), want))
        ck_abort_msg("want friends %s in %s", check_dump(want), check_dump(r));
    json_decref(want);
    json_decref(r);

    flush(bob); /* friend_added */
    group_cmd(bob, "create_group", "g", "success");
    group_cmd(alice, "join_group", "g", "success");
    group_cmd(alice, "create_group", "h", "success");
    r = call(alice, "success", "{ss}", "cmd", "groups");
    assert_names(r, "groups", 2, "g", "h");
    json_decref(r);
    r = call(dave, "success", "{ss}", "cmd", "groups");
    assert_names(r, "groups", 0);
    json_decref(r);
    do_logout(bob);
    flush(alice); /* presence */
    r = call(alice, "success", "{ssss}", "cmd", "group_members", "group", "g");
    want = json_loads("[{\"user\":\"alice\",\"online\":true,\"owner\":false},"
                      "{\"user\":\"bob\",\"online\":false,\"owner\":true}]",
                      0, NULL);
    if (!json_equal(json_object_get(r, "members"), want))
        ck_abort_msg("want members %s in %s", check_dump(want), check_dump(r));
    json_decref(want);
    json_decref(r);
    expect(dave, "not_member", "{ssss}", "cmd", "group_members", "group", "g");
    expect(dave, "group_not_exist", "{ssss}", "cmd", "group_members", "group", "nope");
    expect(dave, "bad_request", "{ss}", "cmd", "group_members");
    test_client_close(alice);
    test_client_close(bob);
    test_client_close(dave);
    stop_chat();
}
END_TEST

/* ---- version 1 ---- */

START_TEST(a_version_1_client_gets_what_arrived_while_away_once_without_ack)
{
    static const char *const texts[] = {"v1", "v2", "gv", "v3", "m1", "m2"};
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    make_group("w", alice, bob);
    /* Live: the push carries seq (a version 1 client ignores it). */
    send_private(alice, "bob", "v1", "success");
    json_t *got = collect(bob, "bob", NULL);
    assert_stream(got, texts, 1, 0);
    json_decref(got);
    /* Away: what arrived meanwhile, once, oldest first; nothing again at the next login. */
    do_logout(bob);
    send_private(alice, "bob", "v2", "offline");
    send_group(alice, "w", "gv", "success");
    json_decref(do_login(bob, "bob", PASSWD, "success"));
    got = collect(bob, "bob", NULL);
    assert_stream(got, texts + 1, 2, 1);
    json_decref(got);
    do_logout(bob);
    json_decref(do_login(bob, "bob", PASSWD, "success"));
    assert_no_messages(collect(bob, "bob", NULL), "bob at his next login");
    /* Leaving right after reading, without logout: nothing twice either. */
    close_until_offline(bob, alice, "bob");
    send_private(alice, "bob", "v3", "offline");
    bob = connect_client();
    json_decref(do_login(bob, "bob", PASSWD, "success"));
    got = read_n(bob, 1);
    assert_stream(got, texts + 3, 1, 1);
    json_decref(got);
    test_client_close(bob);
    bob = connect_client();
    json_decref(do_login(bob, "bob", PASSWD, "success"));
    assert_no_messages(collect(bob, "bob", NULL), "bob after leaving");
    expect(bob, "bad_request", "{sssi}", "cmd", "ack", "seq", 1);
    test_client_close(bob);

    /* An acknowledging device beside: version 1 still gets what arrived while no session
     * was online; the device gets what it did not acknowledge. */
    struct test_client *phone = device_session("bob", "phone", -1);
    json_decref(collect(phone, "bob", NULL)); /* everything so far, unacknowledged */
    send_private(alice, "bob", "m1", "success");
    got = collect(phone, "bob", NULL);
    assert_stream(got, texts + 4, 1, 0);
    json_decref(got);
    close_until_offline(phone, alice, "bob");
    send_private(alice, "bob", "m2", "offline");
    bob = connect_client();
    json_decref(do_login(bob, "bob", PASSWD, "success"));
    got = collect(bob, "bob", NULL);
    assert_stream(got, texts + 5, 1, 1);
    json_decref(got);
    test_client_close(bob);
    test_client_close(alice);
    courier_gone();
    stop_chat();
}
END_TEST

/* ---- refusals of every new field ---- */

START_TEST(login_refuses_bad_device_ack_and_since)
{
    static const char *const bad[] = {
        "\"device\":\"\"",
        "\"device\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"",
        "\"device\":\"my phone\"",
        "\"device\":\"ph/one\"",
        "\"device\":\"t\\u00e9l\\u00e9phone\"",
        "\"device\":7",
        "\"device\":null",
        "\"ack\":\"yes\"",
        "\"ack\":1",
        "\"since\":5",
        "\"ack\":false,\"since\":5",
        "\"ack\":true,\"since\":-1",
        "\"ack\":true,\"since\":\"5\"",
        "\"ack\":true,\"since\":1.5",
        "\"ack\":true,\"since\":null",
    };
    start_chat();
    register_only("bob");
    struct test_client *c = connect_client();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char req[256];
        snprintf(req, sizeof(req), "{\"cmd\":\"login\",\"user\":\"bob\",\"passwd\":\"%s\",%s}",
                 PASSWD, bad[i]);
        json_t *r = call_json(c, "bad_request", req);
        if (!json_is_string(json_object_get(r, "reason")))
            ck_abort_msg("want a reason in %s for %s", check_dump(r), req);
        json_decref(r);
    }
    /* None of them logged the session in. */
    expect(c, "not_logged_in", "{sssi}", "cmd", "ack", "seq", 0);
    /* The limits themselves are accepted: 64 bytes of the allowed characters, since 0,
     * and "ack":true alone (device "default"). */
    char req[256];
    snprintf(req, sizeof(req),
             "{\"cmd\":\"login\",\"user\":\"bob\",\"passwd\":\"%s\",\"device\":\"%s\"}", PASSWD,
             "Az09_.-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    json_decref(call_json(c, "success", req));
    snprintf(req, sizeof(req),
             "{\"cmd\":\"login\",\"user\":\"bob\",\"passwd\":\"%s\",\"ack\":true,\"since\":0}",
             PASSWD);
    json_decref(call_json(c, "success", req));
    test_client_close(c);
    stop_chat();
}
END_TEST

START_TEST(ack_refuses_bad_seq_and_sessions_that_do_not_acknowledge)
{
    start_chat();
    register_only("bob");
    struct test_client *c = connect_client();
    expect(c, "not_logged_in", "{sssi}", "cmd", "ack", "seq", 1);
    json_decref(do_login(c, "bob", PASSWD, "success"));
    /* A version 1 session does not acknowledge. */
    json_t *r = call(c, "bad_request", "{sssi}", "cmd", "ack", "seq", 1);
    ck_assert_msg(json_is_string(json_object_get(r, "reason")), "want a reason in %s",
                  check_dump(r));
    json_decref(r);
    test_client_close(c);

    c = device_session("bob", "phone", -1);
    static const char *const bad[] = {
        "{\"cmd\":\"ack\"}",
        "{\"cmd\":\"ack\",\"seq\":\"5\"}",
        "{\"cmd\":\"ack\",\"seq\":-1}",
        "{\"cmd\":\"ack\",\"seq\":1.5}",
        "{\"cmd\":\"ack\",\"seq\":null}",
        "{\"cmd\":\"ack\",\"seq\":[1]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = call_json(c, "bad_request", bad[i]);
        if (!json_is_string(json_object_get(r, "reason")))
            ck_abort_msg("want a reason in %s for %s", check_dump(r), bad[i]);
        json_decref(r);
    }
    /* Accepted: no reply, not even with an id. */
    check_send_str(c, "{\"cmd\":\"ack\",\"seq\":0,\"id\":5}\n");
    ack_sync(c, 0);
    test_client_close(c);
    stop_chat();
}
END_TEST

START_TEST(sends_refuse_a_bad_client_msg_id)
{
    static const char *const bad[] = {
        "\"\"", "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"", "12",
        "null", "true"};
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    make_group("g", alice, bob);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char req[256];
        snprintf(req, sizeof(req),
                 "{\"cmd\":\"private_chat\",\"user_to\":\"bob\",\"text\":\"x\","
                 "\"client_msg_id\":%s}",
                 bad[i]);
        json_decref(call_json(alice, "bad_request", req));
        snprintf(req, sizeof(req),
                 "{\"cmd\":\"group_chat\",\"group\":\"g\",\"text\":\"x\",\"client_msg_id\":%s}",
                 bad[i]);
        json_decref(call_json(alice, "bad_request", req));
    }
    assert_no_messages(collect(bob, "bob", NULL), "bob after refused sends");
    /* 64 bytes of anything is fine. */
    struct accepted a = send_private_id(
        alice, "bob", "64",
        "\xe4\xbd\xa0 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "success");
    json_t *got = collect(bob, "bob", NULL);
    assert_got_accepted(got, a, "64");
    json_decref(got);
    test_client_close(alice);
    test_client_close(bob);
    courier_gone();
    stop_chat();
}
END_TEST

START_TEST(read_refuses_what_is_not_a_private_message_to_you)
{
    start_chat();
    struct test_client *c = connect_client();
    expect(c, "not_logged_in", "{ssssss}", "cmd", "read", "with", "alice", "msg_id", "1");
    test_client_close(c);
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    register_only("carol");
    make_group("g", alice, bob);
    struct accepted to_bob = send_private_id(alice, "bob", "to bob", "r-1", "success");
    struct accepted to_carol = send_private_id(alice, "carol", "to carol", "r-2", "offline");
    flush(bob);
    struct accepted from_bob = send_private_id(bob, "alice", "from bob", "r-3", "success");
    flush(alice);
    struct accepted group = send_group_id(alice, "g", "to g", "r-4");
    flush(bob);
    expect(bob, "bad_request", "{ssss}", "cmd", "read", "msg_id", to_bob.msg_id);
    expect(bob, "bad_request", "{ssss}", "cmd", "read", "with", "alice");
    expect(bob, "bad_request", "{sssssI}", "cmd", "read", "with", "alice", "msg_id",
           (json_int_t)to_bob.seq);
    expect(bob, "bad_request", "{ssssss}", "cmd", "read", "with", "alice", "msg_id", "abc");
    expect(bob, "bad_request", "{ssssss}", "cmd", "read", "with", "alice", "msg_id",
           to_carol.msg_id);
    expect(bob, "bad_request", "{ssssss}", "cmd", "read", "with", "alice", "msg_id",
           from_bob.msg_id);
    expect(bob, "bad_request", "{ssssss}", "cmd", "read", "with", "alice", "msg_id", group.msg_id);
    expect(bob, "bad_request", "{ssssss}", "cmd", "read", "with", "carol", "msg_id", to_bob.msg_id);
    expect(bob, "user_not_exist", "{ssssss}", "cmd", "read", "with", "nobody", "msg_id",
           to_bob.msg_id);
    expect(bob, "bad_request", "{sssiss}", "cmd", "read", "with", 5, "msg_id", to_bob.msg_id);
    /* Nothing of that reached alice; the right one does. */
    assert_receipts(read_until_pong(alice), "bob", "read", NULL, 0);
    expect(bob, "success", "{ssssss}", "cmd", "read", "with", "alice", "msg_id", to_bob.msg_id);
    const char *ids[] = {to_bob.msg_id};
    assert_receipts(read_until_pong(alice), "bob", "read", ids, 1);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(history_refuses_bad_fields)
{
    static const char *const bad[] = {
        "{\"cmd\":\"history\"}",
        "{\"cmd\":\"history\",\"with\":\"bob\",\"group\":\"g\"}",
        "{\"cmd\":\"history\",\"with\":5}",
        "{\"cmd\":\"history\",\"group\":[\"g\"]}",
        "{\"cmd\":\"history\",\"with\":\"bob\",\"limit\":0}",
        "{\"cmd\":\"history\",\"with\":\"bob\",\"limit\":201}",
        "{\"cmd\":\"history\",\"with\":\"bob\",\"limit\":-1}",
        "{\"cmd\":\"history\",\"with\":\"bob\",\"limit\":\"5\"}",
        "{\"cmd\":\"history\",\"with\":\"bob\",\"limit\":2.5}",
        "{\"cmd\":\"history\",\"with\":\"bob\",\"before\":\"abc\"}",
        "{\"cmd\":\"history\",\"with\":\"bob\",\"before\":12}",
        "{\"cmd\":\"history\",\"group\":\"g\",\"before\":\"-3\"}",
    };
    start_chat();
    struct test_client *c = connect_client();
    expect(c, "not_logged_in", "{ssss}", "cmd", "history", "with", "bob");
    test_client_close(c);
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    make_group("g", alice, bob);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *r = call_json(alice, "bad_request", bad[i]);
        if (!json_is_string(json_object_get(r, "reason")))
            ck_abort_msg("want a reason in %s for %s", check_dump(r), bad[i]);
        json_decref(r);
    }
    json_decref(history_page(alice, "with", "bob", 1, NULL));
    json_decref(history_page(alice, "group", "g", 200, NULL));
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

static Suite *contract_v2_suite(void)
{
    Suite *s = suite_create("contract_v2");

    /* Generous bounds: the slow tests send thousands of messages on a shared machine. */
    TCase *tc = tcase_create("devices");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, two_devices_one_offline_both_get_every_message_once_in_order);
    tcase_add_test(tc, a_device_that_leaves_right_after_reading_gets_nothing_twice_after_acking);
    tcase_add_test(tc, an_ack_past_what_the_session_was_sent_counts_up_to_what_it_was_sent);
    tcase_add_test(tc, a_version_1_client_gets_what_arrived_while_away_once_without_ack);
    suite_add_tcase(s, tc);

    tc = tcase_create("sends");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_retried_client_msg_id_delivers_once_with_the_same_reply);
    tcase_add_test(tc, receipts_arrive_once_per_message_and_status);
    tcase_add_test(tc, a_receipt_goes_to_a_sender_who_was_away_via_history_flags);
    suite_add_tcase(s, tc);

    tc = tcase_create("durability");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, kill_9_mid_stream_loses_no_accepted_message);
    suite_add_tcase(s, tc);

    tc = tcase_create("history");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, history_pages_back_through_10000_messages_without_gap_or_repeat);
    tcase_add_test(tc, history_limits_and_both_directions);
    tcase_add_test(tc, group_history_shows_a_member_what_came_since_they_last_joined);
    suite_add_tcase(s, tc);

    tc = tcase_create("lists");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, lists_show_friends_groups_and_members_with_their_flags);
    suite_add_tcase(s, tc);

    tc = tcase_create("refusals");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, login_refuses_bad_device_ack_and_since);
    tcase_add_test(tc, ack_refuses_bad_seq_and_sessions_that_do_not_acknowledge);
    tcase_add_test(tc, sends_refuse_a_bad_client_msg_id);
    tcase_add_test(tc, read_refuses_what_is_not_a_private_message_to_you);
    tcase_add_test(tc, history_refuses_bad_fields);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(contract_v2_suite());
}
