/* test_acknowledged.c - nothing a sender was answered `success` or `offline` for is
 * lost: black-box tests on the real chatd binary, the chat's plugins and a real MariaDB.
 *  - Reloads of every chat plugin (options changed each time, so each really reloads)
 *    while senders send private and group messages and recipients log in and out,
 *    their stored messages draining.
 *  - A recipient that never reads (a version 1 session, or a device that never
 *    acknowledges) is disconnected with a reason, and gets at its next login every
 *    private and group message its senders were answered success for, in order.
 *  - One sender may store at most max_offline_per_sender messages for one recipient;
 *    another sender still gets through.
 * Every test counts what was acknowledged and what arrived, and prints the figures
 * (lost, repeated); it asserts that nothing acknowledged is lost. */
#include "chatd_proc.h"
#include "client.h"
#include "../db/db_test_env.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define str chatd_json_str

static struct chatd_proc srv;
static struct config_database db;
static char dir[PATH_MAX];
static char conf_path[PATH_MAX + 32];
static long long next_id = 1;

/* ---- the server ---- */

/* The config: the chat's plugins on the test database; `variant` changes an option of
 * every chat plugin (so a SIGHUP reloads each), `server` adds [server] lines. */
static void write_conf(int variant, const char *server, const char *private_chat)
{
    FILE *f = fopen(conf_path, "w");
    ck_assert_msg(f != NULL, "cannot write %s", conf_path);
    fprintf(f,
            "[server]\n%s"
            "[log]\nlevel = info\n"
            "[plugins]\nenable = ping, accounts, friends, private_chat, groups\n"
            "authenticator = accounts\n"
            "[plugin.accounts]\npassword_opslimit = 1\npassword_memlimit_kib = %d\n"
            "[plugin.friends]\npresence = %s\n"
            "[plugin.private_chat]\nmax_text_bytes = %d\n%s"
            "[plugin.groups]\nmax_text_bytes = %d\n"
            "[database]\nenable = yes\nsocket = %s\nname = %s\nuser = %s\n",
            server ? server : "", 8 + variant, variant % 2 ? "no" : "yes", 4000 + variant,
            private_chat ? private_chat : "", 4000 + variant, db.socket, db.name, db.user);
    fclose(f);
}

static void start(const char *server, const char *private_chat)
{
    db_test_config(&db);
    ck_assert_int_eq(chatd_tmpdir_make(dir, sizeof(dir)), 0);
    snprintf(conf_path, sizeof(conf_path), "%s/chatd.conf", dir);
    write_conf(0, server, private_chat);
    struct chatd_proc_options opts = {.config_path = conf_path};
    ck_assert_msg(chatd_proc_start(&srv, &opts) == 0, "chatd did not start");
}

static void stop(void)
{
    int rc = chatd_proc_stop(&srv, CHATD_PROC_STOP_TIMEOUT_MS);
    chatd_proc_cleanup(&srv);
    chatd_tmpdir_remove(dir);
    db_test_cleanup(&db);
    ck_assert_msg(rc == 0, "chatd exited with %d after SIGTERM, want 0", rc);
}

/* Reloads of the chat finished: every chat plugin unloaded the instance it replaced. */
static size_t chat_reloads_done(void)
{
    static const char *const unloaded[] = {
        "plugin accounts 1.0.0 unloaded", "plugin friends 1.0.0 unloaded",
        "plugin private_chat 1.0.0 unloaded", "plugin groups 1.0.0 unloaded"};
    size_t done = SIZE_MAX;
    for (size_t i = 0; i < sizeof(unloaded) / sizeof(unloaded[0]); i++) {
        size_t n = chatd_proc_log_count(&srv, unloaded[i]);
        done = n < done ? n : done;
    }
    return done;
}

/* ---- counting messages ---- */

#define SENDERS 4
/* Counted streams of messages "s<stream>-<n>": private messages of sender i are stream i,
 * group messages of sender i stream SENDERS + i (in the slow-reader test, 1). */
#define STREAMS    (2 * SENDERS)
#define RECIPIENTS 4
#define MAX_SEQ    8000

/* acked[s][n]: sender s was answered success or offline for its message n;
 * got[s][n]: how many times a recipient received it. */
static unsigned char acked[STREAMS][MAX_SEQ];
static unsigned short got[STREAMS][MAX_SEQ];
static int sent[STREAMS];
/* How many recipients each message of a stream goes to (0 counts as 1). */
static int copies[STREAMS];

/* Count a line a recipient received, when it is one of the test's messages. */
/* {"cmd":"error"} lines a recipient received. */
static int error_lines;
/* For one recipient's connection: the last n seen per sender, and how many came out of
 * order (a sender's messages to one user must arrive in the order sent). */
static int last_n[STREAMS];
static int out_of_order;

static void order_reset(void)
{
    for (int s = 0; s < STREAMS; s++)
        last_n[s] = -1;
}

static void note(const json_t *msg)
{
    int s, n;
    if (strcmp(str(msg, "cmd"), "error") == 0)
        error_lines++;
    const char *cmd = str(msg, "cmd");
    if ((strcmp(cmd, "private_chat_recv") == 0 || strcmp(cmd, "group_chat_recv") == 0) &&
        sscanf(str(msg, "text"), "s%d-%d", &s, &n) == 2 && s >= 0 && s < STREAMS && n >= 0 &&
        n < MAX_SEQ) {
        got[s][n]++;
        out_of_order += n <= last_n[s];
        last_n[s] = n;
    }
}

/* Read what has arrived at c, waiting up to timeout_ms for the first line. Returns the
 * lines read; *ended (may be NULL: then it must not end) says the connection ended. */
static int take(struct test_client *c, int timeout_ms, int *ended)
{
    char line[8192];
    ssize_t n;
    int lines = 0;
    while ((n = test_client_read_line(c, line, sizeof(line), timeout_ms)) > 0) {
        timeout_ms = 0;
        json_t *msg = json_loadb(line, (size_t)n, 0, NULL);
        ck_assert_msg(msg != NULL, "not JSON: %s", line);
        note(msg);
        json_decref(msg);
        lines++;
    }
    if (ended)
        *ended = n != TEST_CLIENT_TIMEOUT;
    else
        ck_assert_msg(n == TEST_CLIENT_TIMEOUT, "a recipient's connection ended (%zd)", n);
    return lines;
}

/* Lost (acknowledged, never received) and repeated (received more than once). */
static void tally(const char *what, int *lost, int *repeated)
{
    int acks = 0, total = 0;
    *lost = *repeated = 0;
    for (int s = 0; s < STREAMS; s++) {
        total += sent[s];
        int want = copies[s] > 0 ? copies[s] : 1;
        for (int n = 0; n < sent[s]; n++) {
            acks += acked[s][n];
            if (acked[s][n] && got[s][n] < want && (*lost += want - got[s][n]) <= 10)
                printf("%s: s%d-%d lost (%d of %d copies)\n", what, s, n, got[s][n], want);
            if (got[s][n] > want)
                *repeated += got[s][n] - want;
        }
    }
    printf("%s: %d sent, %d acknowledged (success or offline), %d lost, %d repeated\n", what, total,
           acks, *lost, *repeated);
    fflush(stdout);
}

/* ---- requests ---- */

/* Send `cmd` (taken) and read until its reply; pushes that come first are counted. */
static json_t *chat_request(struct test_client *c, json_t *cmd)
{
    json_int_t id = next_id++;
    json_object_set_new(cmd, "id", json_integer(id));
    ck_assert_int_eq(test_client_send_json(c, cmd), 0);
    json_decref(cmd);
    for (;;) {
        json_t *msg = test_client_read_json(c, 6 * TEST_CLIENT_TIMEOUT_MS);
        ck_assert_msg(msg != NULL, "no reply");
        if (json_integer_value(json_object_get(msg, "id")) == id)
            return msg;
        note(msg);
        json_decref(msg);
    }
}

static void register_user(const char *name)
{
    struct test_client *c = chatd_proc_connect(&srv);
    json_decref(
        chat_request(c, json_pack("{ssssss}", "cmd", "register", "user", name, "passwd", "pw")));
    test_client_close(c);
}

/* A new connection logged in as `name`; retried while a reload makes it busy. */
/* Log in as name; with `device` (not NULL) as that device, acknowledging. */
static struct test_client *login_as(const char *name, int rcvbuf, const char *device)
{
    struct test_client *c = test_client_connect(srv.host, srv.port, rcvbuf);
    ck_assert(c != NULL);
    for (int attempt = 0;; attempt++) {
        json_t *req = json_pack("{ssssss}", "cmd", "login", "user", name, "passwd", "pw");
        if (device) {
            json_object_set_new(req, "device", json_string(device));
            json_object_set_new(req, "ack", json_true());
        }
        json_t *r = chat_request(c, req);
        int ok = strcmp(str(r, "result"), "success") == 0;
        ck_assert_msg(ok || attempt < 200, "login of %s: %s", name, str(r, "result"));
        json_decref(r);
        if (ok)
            return c;
        chatd_sleep_ms(10);
    }
}

static struct test_client *login(const char *name, int rcvbuf)
{
    return login_as(name, rcvbuf, NULL);
}

/* Log out (reading everything before the reply) and close. */
static void logout(struct test_client *c)
{
    json_decref(chat_request(c, json_pack("{ss}", "cmd", "logout")));
    test_client_close(c);
}

/* Message n of sender s to `to`; counted as acknowledged on success or offline.
 * Returns the result word (static). */
static const char *send_message(struct test_client *c, int s, const char *to, const char *pad)
{
    static char result[32];
    int n = sent[s]++;
    ck_assert_int_lt(n, MAX_SEQ);
    char text[8192];
    snprintf(text, sizeof(text), "s%d-%d%s", s, n, pad ? pad : "");
    json_t *r =
        chat_request(c, json_pack("{ssssss}", "cmd", "private_chat", "user_to", to, "text", text));
    snprintf(result, sizeof(result), "%s", str(r, "result"));
    acked[s][n] = strcmp(result, "success") == 0 || strcmp(result, "offline") == 0;
    if (!acked[s][n])
        printf("s%d-%d to %s: %s (%s)\n", s, n, to, result, str(r, "reason"));
    json_decref(r);
    return result;
}

/* Message n of sender s to group g, as send_message. */
static const char *send_group(struct test_client *c, int s, const char *g, const char *pad)
{
    static char result[32];
    int n = sent[s]++;
    ck_assert_int_lt(n, MAX_SEQ);
    char text[8192];
    snprintf(text, sizeof(text), "s%d-%d%s", s, n, pad ? pad : "");
    json_t *r =
        chat_request(c, json_pack("{ssssss}", "cmd", "group_chat", "group", g, "text", text));
    snprintf(result, sizeof(result), "%s", str(r, "result"));
    json_decref(r);
    acked[s][n] = strcmp(result, "success") == 0;
    return result;
}

static void reset_counts(void)
{
    memset(acked, 0, sizeof(acked));
    memset(got, 0, sizeof(got));
    memset(sent, 0, sizeof(sent));
    memset(copies, 0, sizeof(copies));
}

/* ---- reloads under load ---- */

#define RELOADS 20

START_TEST(reloads_while_stored_messages_drain_lose_nothing_acknowledged)
{
    start(NULL, NULL);
    reset_counts();
    char name[16];
    for (int i = 0; i < SENDERS; i++) {
        snprintf(name, sizeof(name), "s%d", i);
        register_user(name);
    }
    for (int i = 0; i < RECIPIENTS; i++) {
        snprintf(name, sizeof(name), "r%d", i);
        register_user(name);
    }
    struct test_client *senders[SENDERS], *recipients[RECIPIENTS] = {NULL};
    char group[SENDERS][8];
    for (int i = 0; i < SENDERS; i++) {
        snprintf(name, sizeof(name), "s%d", i);
        senders[i] = login(name, 0);
        /* Each sender's group has every recipient in it. */
        snprintf(group[i], sizeof(group[i]), "g%d", i);
        json_decref(chat_request(senders[i],
                                 json_pack("{ssss}", "cmd", "create_group", "group", group[i])));
        copies[SENDERS + i] = RECIPIENTS;
    }
    for (int k = 0; k < RECIPIENTS; k++) {
        snprintf(name, sizeof(name), "r%d", k);
        struct test_client *c = login(name, 0);
        for (int i = 0; i < SENDERS; i++)
            json_decref(
                chat_request(c, json_pack("{ssss}", "cmd", "join_group", "group", group[i])));
        logout(c);
    }
    /* Each step every sender sends one message, round robin over the recipients; one
     * recipient logs in or out every few steps, so stored messages drain all the time;
     * a reload starts whenever the one before it has finished. */
    size_t reloads = 0;
    long long deadline = chatd_now_ms() + 240000;
    for (int step = 0; reloads < RELOADS || chat_reloads_done() < RELOADS || step < 200; step++) {
        ck_assert_msg(chatd_now_ms() < deadline, "the reloads did not finish: %zu of %d",
                      chat_reloads_done(), RELOADS);
        for (int k = 0; k < 3; k++)
            for (int i = 0; i < SENDERS; i++) {
                snprintf(name, sizeof(name), "r%d", (i + step + k) % RECIPIENTS);
                send_message(senders[i], i, name, NULL);
                if (k == 0)
                    send_group(senders[i], SENDERS + i, group[i], NULL);
            }
        for (int i = 0; i < RECIPIENTS; i++)
            if (recipients[i])
                take(recipients[i], 0, NULL);
        if (step % 7 == 0) {
            int i = (step / 7) % RECIPIENTS;
            snprintf(name, sizeof(name), "r%d", i);
            if (recipients[i]) {
                logout(recipients[i]);
                recipients[i] = NULL;
            } else {
                recipients[i] = login(name, 0);
            }
        }
        if (reloads < RELOADS && chat_reloads_done() >= reloads && step % 4 == 1) {
            write_conf((int)reloads + 1, NULL, NULL);
            ck_assert_int_eq(chatd_proc_signal(&srv, SIGHUP), 0);
            reloads++;
        }
    }
    /* Everyone online, reading until nothing more comes. */
    for (int i = 0; i < RECIPIENTS; i++) {
        snprintf(name, sizeof(name), "r%d", i);
        if (!recipients[i])
            recipients[i] = login(name, 0);
    }
    for (int quiet = 0; quiet < 3;) {
        int lines = 0;
        for (int i = 0; i < RECIPIENTS; i++)
            lines += take(recipients[i], 300, NULL);
        quiet = lines > 0 ? 0 : quiet + 1;
    }
    int lost, repeated;
    tally("reloads", &lost, &repeated);
    ck_assert_uint_eq(chatd_proc_log_count(&srv, "reload refused"), 0);
    ck_assert_msg(lost == 0, "%d acknowledged messages were lost over %d reloads", lost, RELOADS);
    for (int i = 0; i < SENDERS; i++)
        test_client_close(senders[i]);
    for (int i = 0; i < RECIPIENTS; i++)
        test_client_close(recipients[i]);
    stop();
}
END_TEST

/* ---- a recipient that does not read ---- */

/* A recipient (a version 1 session, or a device that never acknowledges) that stops
 * reading is cut off; at its next login it gets everything it was not written. */
static void slow_reader(const char *device)
{
    start("max_output_bytes = 16384\n", NULL);
    reset_counts();
    register_user("s0");
    register_user("r0");
    /* r0 logs in with a small receive buffer and reads nothing more. */
    struct test_client *slow = login_as("r0", 4096, device);
    struct test_client *sender = login("s0", 0);
    /* Group messages too (counted as sender 1's): groups delivers them the same way. */
    json_decref(chat_request(sender, json_pack("{ssss}", "cmd", "create_group", "group", "g")));
    json_t *joined = chat_request(slow, json_pack("{ssss}", "cmd", "join_group", "group", "g"));
    ck_assert_str_eq(str(joined, "result"), "success");
    json_decref(joined);
    /* Until the server's socket buffers are full and the output waiting for r0 passes
     * max_output_bytes, then a few more (stored). */
    static char pad[3001];
    memset(pad, 'p', sizeof(pad) - 1);
    int live = 0, after = -1;
    for (int n = 0; n < MAX_SEQ - 1 && after != 0; n++) {
        live += strcmp(send_message(sender, 0, "r0", pad), "success") == 0;
        if (n % 2 == 0)
            send_group(sender, 1, "g", pad);
        if (after > 0)
            after--;
        else if (after < 0 && n % 20 == 0 &&
                 chatd_proc_log_count(&srv, "disconnected: it is not reading") > 0)
            after = 20;
    }
    ck_assert_msg(after == 0, "the slow reader was never disconnected");
    /* What the old connection was written before it was cut off, up to its end. */
    error_lines = 0;
    out_of_order = 0;
    order_reset();
    int old_lines = 0, ended = 0;
    while (!ended) {
        int lines = take(slow, TEST_CLIENT_TIMEOUT_MS, &ended);
        ck_assert_msg(lines > 0 || ended, "the slow reader's connection is still open");
        old_lines += lines;
    }
    test_client_close(slow);
    int old_errors = error_lines;
    order_reset();
    struct test_client *again = login_as("r0", 0, device);
    while (take(again, 1000, NULL) > 0)
        ;
    int lost, repeated;
    tally(device ? "slow reader (device)" : "slow reader", &lost, &repeated);
    printf("slow reader: %d answered success, %d lines on the old connection (error lines: %d)\n",
           live, old_lines, old_errors);
    fflush(stdout);
    ck_assert_msg(live > 0, "no message went out live");
    ck_assert_msg(old_errors == 1, "the slow reader was sent %d error lines, want 1", old_errors);
    ck_assert_msg(lost == 0, "%d acknowledged messages were lost", lost);
    ck_assert_msg(out_of_order == 0, "%d messages came out of order", out_of_order);
    test_client_close(again);
    test_client_close(sender);
    stop();
}

START_TEST(slow_reader_gets_at_its_next_login_what_its_senders_were_answered_success_for)
{
    slow_reader(NULL);
}
END_TEST

START_TEST(a_slow_device_gets_at_its_next_login_everything_it_did_not_acknowledge)
{
    slow_reader("phone");
}
END_TEST

/* ---- one sender's share of another user's mailbox ---- */

START_TEST(one_sender_is_stopped_at_its_share_of_a_mailbox_and_another_gets_through)
{
    start(NULL, "max_offline_per_sender = 5\n");
    reset_counts();
    register_user("s0");
    register_user("s1");
    register_user("r0");
    struct test_client *flooder = login("s0", 0);
    for (int n = 0; n < 5; n++)
        ck_assert_str_eq(send_message(flooder, 0, "r0", NULL), "offline");
    json_t *r = chat_request(
        flooder, json_pack("{ssssss}", "cmd", "private_chat", "user_to", "r0", "text", "more"));
    ck_assert_str_eq(str(r, "result"), "forbidden");
    ck_assert_str_eq(str(r, "reason"), "you already have 5 messages waiting for r0 "
                                       "(max_offline_per_sender)");
    json_decref(r);
    struct test_client *other = login("s1", 0);
    ck_assert_str_eq(send_message(other, 1, "r0", NULL), "offline");
    struct test_client *rcpt = login("r0", 0);
    while (take(rcpt, 1000, NULL) > 0)
        ;
    int lost, repeated;
    tally("per-sender quota", &lost, &repeated);
    ck_assert_int_eq(lost, 0);
    /* Delivered, they no longer count: the sender may store again. */
    logout(rcpt);
    ck_assert_str_eq(send_message(flooder, 0, "r0", NULL), "offline");
    test_client_close(flooder);
    test_client_close(other);
    stop();
}
END_TEST

static Suite *acknowledged_suite(void)
{
    Suite *s = suite_create("acknowledged");
    TCase *reload = tcase_create("reload");
    tcase_set_timeout(reload, 300);
    tcase_add_test(reload, reloads_while_stored_messages_drain_lose_nothing_acknowledged);
    suite_add_tcase(s, reload);
    TCase *slow = tcase_create("slow_reader");
    tcase_set_timeout(slow, 120);
    tcase_add_test(slow, a_slow_device_gets_at_its_next_login_everything_it_did_not_acknowledge);
    tcase_add_test(slow,
                   slow_reader_gets_at_its_next_login_what_its_senders_were_answered_success_for);
    suite_add_tcase(s, slow);
    TCase *quota = tcase_create("quota");
    tcase_set_timeout(quota, 60);
    tcase_add_test(quota, one_sender_is_stopped_at_its_share_of_a_mailbox_and_another_gets_through);
    suite_add_tcase(s, quota);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(acknowledged_suite());
}
