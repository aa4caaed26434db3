/* test_server_io_threads.c - black-box tests of what [server] io_threads changes: plain
 * TCP sessions read and written on I/O threads (docs/architecture.md, "I/O threads"; TLS
 * and WebSocket sessions, also on them: test_server_io_threads_tls.c and _ws.c). Each
 * test starts its own
 * chatd with the threads it names, whatever CHATD_TEST_IO_THREADS says. */
#define _GNU_SOURCE /* sched_setaffinity */
#include "bad_frames.h"
#include "server_suite.h"
#include "tls_files.h"
#include "ws_client.h"

#include <check.h>
#include <dirent.h>
#include <sched.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CLIENTS   24
#define PIPELINED 40

/* The test's own value wins: CHATD_TEST_IO_THREADS would come as --set, over the file. */
static void start_threads(const char *server_conf)
{
    unsetenv("CHATD_TEST_IO_THREADS");
    start_with(server_conf);
}

static void start_threads_with_pusher(const char *server_conf)
{
    unsetenv("CHATD_TEST_IO_THREADS");
    start_with_pusher(server_conf);
}

START_TEST(many_clients_on_several_threads_get_their_replies_in_order)
{
    start_threads("io_threads = 3\n");
    chatd_proc_wait_log(&srv, "3 I/O threads for TCP, TLS and WebSocket sessions", 1, 5000);
    struct test_client *c[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        c[i] = connect_client();
    /* All at once, so that every thread has several sessions with requests waiting. */
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < CLIENTS; i++)
            send_pings(c[i], round * PIPELINED, PIPELINED);
        for (int i = 0; i < CLIENTS; i++)
            expect_pongs(c[i], round * PIPELINED, PIPELINED);
    }
    for (int i = 0; i < CLIENTS; i++)
        test_client_close(c[i]);
    stop();
}
END_TEST

/* The request and the end of the stream arrive together: the thread reads both before
 * the loop takes the bytes, and the end still reaches the session. */
START_TEST(a_request_with_the_end_of_stream_is_answered_then_closed)
{
    start_threads("io_threads = 2\n");
    for (int i = 0; i < 20; i++) {
        struct test_client *c = connect_client();
        check_send_str(c, "{\"cmd\":\"ping\",\"id\":7}");
        ck_assert_int_eq(test_client_shutdown_write(c), 0);
        json_t *reply = expect(c, "ping_reply", "success");
        assert_int_id(reply, 7);
        json_decref(reply);
        ck_assert_msg(test_client_expect_eof(c, 5000), "round %d: the session did not close", i);
        test_client_close(c);
    }
    stop();
}
END_TEST

START_TEST(clients_that_go_mid_reply_leave_the_others_served)
{
    start_threads_with_pusher("io_threads = 2\n");
    struct test_client *other = connect_client();
    for (int i = 0; i < 10; i++) {
        struct test_client *gone = connect_client();
        json_int_t session = session_of(gone);
        /* A big push on its way when the client resets, and many replies when it only
         * closes: its thread meets a dead socket in the middle of writing. */
        if (i % 2)
            send_pings(gone, 0, 500);
        flood(other, session, 50, 2000);
        if (i % 2)
            test_client_close(gone);
        else
            test_client_reset(gone);
        assert_ping_works(other, i);
    }
    test_client_close(other);
    stop();
}
END_TEST

/* The line being written is the thread's: what follows it is dropped and the client's
 * last line is the slow_reader error. */
START_TEST(a_slow_reader_on_a_thread_is_cut_off_after_whole_lines)
{
    start_threads_with_pusher("io_threads = 2\nmax_output_bytes = 4096\n");
    struct test_client *other = connect_client();
    struct test_client *slow = test_client_connect(srv.host, srv.port, 4096);
    ck_assert(slow != NULL);
    json_int_t session = session_of(slow);
    flood(other, session, 2000, 1000);
    json_t *last = NULL;
    for (;;) {
        json_t *msg = test_client_read_json(slow, 10000);
        if (!msg)
            break;
        json_decref(last);
        last = msg;
    }
    ck_assert_msg(last && check_json_str_is(last, "result", "slow_reader"),
                  "the cut-off client's last line was %s, not the slow_reader error",
                  check_dump(last));
    json_decref(last);
    test_client_close(slow);
    assert_ping_works(other, 1);
    test_client_close(other);
    stop();
}
END_TEST

START_TEST(stop_with_sessions_open_and_output_pending)
{
    start_threads("io_threads = 2\n");
    struct test_client *c[8];
    for (int i = 0; i < 8; i++) {
        c[i] = test_client_connect(srv.host, srv.port, 4096);
        ck_assert(c[i] != NULL);
        assert_ping_works(c[i], i);
        /* Half of them leave replies unread behind them. */
        if (i % 2)
            send_pings(c[i], 100, 300);
    }
    stop();
    for (int i = 0; i < 8; i++)
        test_client_close(c[i]);
}
END_TEST

START_TEST(a_reload_keeps_the_threads_and_says_a_change_needs_a_restart)
{
    start_threads("io_threads = 2\n");
    struct test_client *c = connect_client();
    assert_ping_works(c, 1);
    char *conf = chatd_file_read(srv.config);
    ck_assert(conf != NULL);
    char *at = strstr(conf, "io_threads = 2");
    ck_assert(at != NULL);
    at[strlen("io_threads = ")] = '1';
    ck_assert_int_eq(chatd_file_write(srv.dir, "chatd.conf", conf, NULL, 0), 0);
    free(conf);
    ck_assert_int_eq(chatd_proc_signal(&srv, SIGHUP), 0);
    chatd_proc_wait_log(&srv, "[server] io_threads changed: it needs a restart", 1, 5000);
    assert_ping_works(c, 2);
    struct test_client *fresh = connect_client();
    assert_ping_works(fresh, 3);
    test_client_close(fresh);
    test_client_close(c);
    stop();
}
END_TEST

START_TEST(tls_and_websocket_clients_are_served_beside_the_threads)
{
    unsetenv("CHATD_TEST_IO_THREADS");
    struct server_tls tf;
    server_tls_make(&tf);
    const char *const sets[] = {tf.cert_set, tf.key_set, "server.io_threads=2", NULL};
    struct chatd_proc_options opts = {.sets = sets, .tls = 1, .web = 1};
    ck_assert_msg(chatd_proc_start(&srv, &opts) == 0, "chatd did not start");

    const struct test_tls_options tls = {.ca_file = tf.cert};
    struct test_client *secure = test_client_connect_tls(srv.host, srv.tls_port, &tls, 0);
    ck_assert(secure != NULL);
    struct test_client *plain = connect_client();
    struct ws_client *web = ws_client_connect(srv.host, srv.web_port, 0);
    ck_assert(web != NULL);
    for (int i = 0; i < 3; i++) {
        assert_ping_works(secure, i);
        assert_ping_works(plain, i);
        ck_assert_int_eq(ws_client_send_text(web, "{\"cmd\":\"ping\",\"id\":5}"), 0);
        json_t *reply = ws_client_read_json(web, 5000);
        ck_assert_msg(reply && check_json_str_is(reply, "cmd", "ping_reply"),
                      "the WebSocket client got %s", check_dump(reply));
        assert_int_id(reply, 5);
        json_decref(reply);
    }
    ws_client_close(web);
    test_client_close(secure);
    test_client_close(plain);
    stop();
    server_tls_remove(&tf);
}
END_TEST

START_TEST(zero_starts_no_thread_and_auto_follows_the_cores)
{
    start_threads("io_threads = 0\n");
    struct test_client *c = connect_client();
    assert_ping_works(c, 1);
    test_client_close(c);
    ck_assert_int_eq(chatd_proc_log_count(&srv, "I/O thread"), 0);
    stop();

    start_threads("io_threads = auto\n");
    cpu_set_t allowed;
    ck_assert_int_eq(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
    long cores = CPU_COUNT(&allowed);
    long want = cores - 1 < 0 ? 0 : cores - 1 > 16 ? 16 : cores - 1;
    char line[64];
    snprintf(line, sizeof(line), "%ld I/O thread%s for TCP, TLS and WebSocket sessions", want,
             want == 1 ? "" : "s");
    c = connect_client();
    assert_ping_works(c, 2);
    if (want > 0)
        chatd_proc_wait_log(&srv, line, 1, 5000);
    else
        ck_assert_int_eq(chatd_proc_log_count(&srv, "I/O thread"), 0);
    test_client_close(c);
    stop();

    /* chatd allowed one core (as taskset -c does; a child inherits it): auto is none. */
    cpu_set_t one;
    CPU_ZERO(&one);
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (CPU_ISSET(cpu, &allowed)) {
            CPU_SET(cpu, &one);
            break;
        }
    }
    ck_assert_int_eq(sched_setaffinity(0, sizeof(one), &one), 0);
    start_threads("io_threads = auto\n");
    ck_assert_int_eq(sched_setaffinity(0, sizeof(allowed), &allowed), 0);
    c = connect_client();
    assert_ping_works(c, 3);
    ck_assert_int_eq(chatd_proc_log_count(&srv, "I/O thread"), 0);
    test_client_close(c);
    stop();
}
END_TEST

/* How many of chatd's threads have this name (/proc/PID/task/TID/comm). */
static int threads_named(pid_t pid, const char *name)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *tasks = opendir(path);
    ck_assert_msg(tasks != NULL, "cannot list %s", path);
    int n = 0;
    for (struct dirent *e; (e = readdir(tasks)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        char comm_path[PATH_MAX], comm[32] = "";
        snprintf(comm_path, sizeof(comm_path), "%s/%s/comm", path, e->d_name);
        FILE *f = fopen(comm_path, "r");
        if (f && fgets(comm, sizeof(comm), f))
            comm[strcspn(comm, "\n")] = '\0';
        if (f)
            fclose(f);
        n += strcmp(comm, name) == 0;
    }
    closedir(tasks);
    return n;
}

/* top -H, ps -L and perf tell chatd's threads apart by name. */
START_TEST(the_threads_are_named_for_what_they_do)
{
    start_threads("io_threads = 2\n");
    /* Each thread names itself as it starts, which may come after chatd says ready. */
    int named = 0;
    for (int i = 0; i < 500 && (named = threads_named(srv.pid, "chatd-io")) != 2; i++)
        usleep(10000);
    ck_assert_int_eq(named, 2);
    /* The loop thread keeps the process's name (so does ThreadSanitizer's own thread). */
    ck_assert_int_ge(threads_named(srv.pid, "chatd"), 1);
    stop();
}
END_TEST

/* ---- framing and parsing on the thread ---- */

/* Pings sent in pieces of 1 to 13 bytes a few ms apart: the thread's reads end inside
 * frames and between them, and it still hands the loop every request once, in order. */
START_TEST(requests_and_frames_split_across_reads_are_answered_in_order)
{
    start_threads("io_threads = 1\n");
    struct test_client *c = connect_client();
    char batch[64 * 48];
    size_t len = 0;
    for (int i = 0; i < 64; i++)
        len += (size_t)sprintf(
            batch + len,
            i % 3 ? "{\"cmd\":\"ping\",\"id\":%d}" : "\n  {\"id\" : %d,\n \"cmd\":\"ping\"}\n", i);
    for (size_t sent = 0, piece = 1; sent < len; sent += piece, piece = piece % 13 + 1) {
        check_send(c, batch + sent, sent + piece <= len ? piece : len - sent);
        chatd_sleep_ms(1);
    }
    expect_pongs(c, 0, 64);
    test_client_close(c);
    stop();
}
END_TEST

/* Everything chatd sends one client for `bytes`, until it closes: its lines, joined. */
static char *answers_to(const char *server_conf, int io_threads, const char *bytes)
{
    (void)io_threads; /* server_conf sets it */
    start_threads(server_conf);
    struct test_client *c = connect_client();
    check_send_str(c, bytes);
    char *all = test_client_read_to_eof(c, 10000);
    ck_assert_msg(all != NULL, "chatd did not answer and close");
    test_client_close(c);
    stop();
    return all;
}

/* The answers a thread's parse gets are the loop's, byte for byte. */
START_TEST(bad_frames_among_good_ones_get_the_answers_of_the_loop)
{
    bad_frames_assert_threads_answer_as_the_loop(answers_to);
}
END_TEST

/* chatd's resident memory, in KiB. */
static long long rss_kib(void)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)srv.pid);
    FILE *f = fopen(path, "r");
    ck_assert(f != NULL);
    long long kib = -1;
    while (kib < 0 && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtoll(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

static void loop_thread_stop(void)
{
    ck_assert(chatd_proc_loop_stop(&srv) == 0);
}

static void loop_thread_resume(void)
{
    ck_assert(chatd_proc_loop_resume(&srv) == 0);
}

/* Send pings without reading a reply until chatd takes nothing for a second (or 64 MiB
 * went); returns the bytes sent. */
static long long flood_pings(struct test_client *c)
{
    static const char ping[] = "{\"cmd\":\"ping\"}";
    enum { PINGS = 4096 };
    static char burst[(sizeof(ping) - 1) * PINGS];
    for (size_t i = 0; i < PINGS; i++)
        memcpy(burst + i * (sizeof(ping) - 1), ping, sizeof(ping) - 1);
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    long long sent = 0, quiet_since = chatd_now_ms();
    while (chatd_now_ms() - quiet_since < 1000 && sent < 64ll << 20) {
        ssize_t n = send(c->fd, burst, sizeof(burst), MSG_NOSIGNAL);
        if (n > 0) {
            sent += n;
            quiet_since = chatd_now_ms();
        } else {
            chatd_sleep_ms(20);
        }
    }
    return sent;
}

/* With the loop thread stopped, only the queue of parsed frames stops the I/O thread
 * reading a client that floods: it holds 32 frames, and TCP holds the rest back, so
 * chatd's memory stays where it was (without the bound, the thread parsed all the
 * kernel held: over 100 MiB). Then, the loop going again, a client that
 * reads nothing is held back by its output pause; it resets with its queue full, as
 * others do in the middle of their batches: freed on the thread, and chatd serves on. */
START_TEST(a_flood_of_pipelined_requests_is_held_back_and_a_close_frees_its_queue)
{
    start_threads("io_threads = 1\n");
    struct test_client *other = connect_client();
    struct test_client *flooder = test_client_connect(srv.host, srv.port, 4096);
    ck_assert(flooder != NULL);
    assert_ping_works(flooder, 1);
    long long before = rss_kib();
    loop_thread_stop();
    flood_pings(flooder);
    long long added = rss_kib() - before;
    /* What the thread did not read is still in the kernel: the server's queue is full. */
    int all_read = test_client_wait_peer_read(flooder, 500) == 0;
    loop_thread_resume();
    ck_assert_msg(!all_read, "the I/O thread read all of a flood while its loop was stopped");
    /* Generous for a sanitizer's own memory; without the bound it was over 100 MiB. */
    ck_assert_msg(added < 16 * 1024, "a flood with the loop stopped added %lld KiB to chatd's RSS",
                  added);
    long long sent = flood_pings(flooder);
    ck_assert_msg(sent < 32ll << 20, "chatd took %lld bytes from a client reading nothing", sent);
    assert_ping_works(other, 1);
    test_client_reset(flooder);
    for (int i = 0; i < 20; i++) {
        struct test_client *c = connect_client();
        send_pings(c, 0, 300);
        if (i % 2)
            test_client_reset(c);
        else
            test_client_close(c);
    }
    assert_ping_works(other, 2);
    test_client_close(other);
    stop();
}
END_TEST

static Suite *server_io_threads_suite(void)
{
    Suite *s = suite_create("server_io_threads");
    TCase *tc = tcase_create("io_threads");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, many_clients_on_several_threads_get_their_replies_in_order);
    tcase_add_test(tc, a_request_with_the_end_of_stream_is_answered_then_closed);
    tcase_add_test(tc, clients_that_go_mid_reply_leave_the_others_served);
    tcase_add_test(tc, a_slow_reader_on_a_thread_is_cut_off_after_whole_lines);
    tcase_add_test(tc, stop_with_sessions_open_and_output_pending);
    tcase_add_test(tc, a_reload_keeps_the_threads_and_says_a_change_needs_a_restart);
    tcase_add_test(tc, tls_and_websocket_clients_are_served_beside_the_threads);
    tcase_add_test(tc, zero_starts_no_thread_and_auto_follows_the_cores);
    tcase_add_test(tc, the_threads_are_named_for_what_they_do);
    tcase_add_test(tc, requests_and_frames_split_across_reads_are_answered_in_order);
    tcase_add_test(tc, bad_frames_among_good_ones_get_the_answers_of_the_loop);
    tcase_add_test(tc, a_flood_of_pipelined_requests_is_held_back_and_a_close_frees_its_queue);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(server_io_threads_suite());
}
