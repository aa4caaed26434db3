/* test_bench.c - smoke test of chatd-bench: each workload runs for about a second
 * against the real chatd (the sample config, as scripts/run starts it, with a cheap
 * password cost, on a fresh database of the test MariaDB), over TCP and (--ws) over the
 * [web] listener's WebSocket. The bench must exit 0 and
 * print one JSON object whose counts say nothing was lost or duplicated. No figure of
 * speed is checked. */
#include "chatd_proc.h"
#include "../db/db_test_env.h"

#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BENCH_TIMEOUT_MS 120000

static struct config_database cfg;
static struct chatd_proc srv;

static void start_server(void)
{
    db_test_config(&cfg);
    /* The offline workload stores thousands of messages from one sender for one user,
     * as chatd-bench's help says to allow. */
    const char *const more[] = {"log.level=warn", "plugin.private_chat.max_offline_per_sender=0",
                                NULL};
    ck_assert_msg(db_test_start_sample(&srv, &cfg, more) == 0, "chatd did not start");
}

/* With the [web] listener, which pings every second and closes a connection whose pong
 * is a second late: a bench that did not answer pings would lose its sessions. */
static void start_web_server(void)
{
    db_test_config(&cfg);
    const char *const more[] = {"log.level=warn", "web.ping_interval=1", "web.pong_timeout=1",
                                NULL};
    ck_assert_msg(db_test_start_sample_web(&srv, &cfg, more, 0) == 0, "chatd did not start");
    ck_assert_int_gt(srv.web_port, 0);
}

static void stop_server(void)
{
    int rc = chatd_proc_stop(&srv, CHATD_PROC_STOP_TIMEOUT_MS);
    chatd_proc_cleanup(&srv);
    db_test_cleanup(&cfg);
    ck_assert_msg(rc == 0, "chatd exited with %d after SIGTERM, want 0", rc);
}

/* Run chatd-bench against the server's listener on `port` with `args` (NULL-terminated,
 * after --port and --server-pid), and return its stdout parsed as one JSON object. */
static json_t *run_bench_on(int listener_port, const char *const *args)
{
    char port[16], pid[16], out_path[PATH_MAX + 32], err_path[PATH_MAX + 32];
    snprintf(port, sizeof(port), "%d", listener_port);
    snprintf(pid, sizeof(pid), "%d", (int)srv.pid);
    snprintf(out_path, sizeof(out_path), "%s/bench.out", srv.dir);
    snprintf(err_path, sizeof(err_path), "%s/bench.err", srv.dir);
    const char *argv[32] = {CHATD_BENCH_BINARY, "--port", port, "--server-pid", pid};
    size_t n = 5;
    for (size_t i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;

    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        FILE *out = freopen(out_path, "w", stdout);
        FILE *err = freopen(err_path, "w", stderr);
        if (!out || !err)
            _exit(127);
        execv(CHATD_BENCH_BINARY, (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    int status = 0;
    long long deadline = chatd_now_ms() + BENCH_TIMEOUT_MS;
    while (waitpid(child, &status, WNOHANG) == 0) {
        if (chatd_now_ms() > deadline) {
            kill(child, SIGKILL);
            waitpid(child, &status, 0);
            ck_abort_msg("chatd-bench did not finish within %d ms", BENCH_TIMEOUT_MS);
        }
        chatd_sleep_ms(50);
    }
    char *out = chatd_file_read(out_path);
    char *err = chatd_file_read(err_path);
    ck_assert_ptr_nonnull(out);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "chatd-bench stderr:\n%s\n", err ? err : "");
        chatd_proc_dump_log(&srv);
        ck_abort_msg("chatd-bench exited with status %d; stdout: %s", status, out);
    }
    json_error_t jerr;
    json_t *figures = json_loads(out, 0, &jerr);
    ck_assert_msg(json_is_object(figures), "chatd-bench printed no JSON object (%s): %s", jerr.text,
                  out);
    free(out);
    free(err);
    return figures;
}

static json_t *run_bench(const char *const *args)
{
    return run_bench_on(srv.port, args);
}

/* run_bench with --ws (in args) against the [web] listener, which it must say it spoke. */
static json_t *run_ws_bench(const char *const *args)
{
    json_t *f = run_bench_on(srv.web_port, args);
    ck_assert_str_eq(json_string_value(json_object_get(f, "transport")), "ws");
    return f;
}

static long long get_int(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    ck_assert_msg(json_is_integer(v), "the figures have no integer '%s'", key);
    return (long long)json_integer_value(v);
}

static void check_latency(const json_t *figures, const char *key)
{
    json_t *h = json_object_get(figures, key);
    ck_assert_msg(json_is_object(h), "the figures have no '%s'", key);
    const char *qs[] = {"p50", "p90", "p99", "p999", "max"};
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
        ck_assert_msg(json_is_number(json_object_get(h, qs[i])), "'%s' has no %s", key, qs[i]);
}

/* The counts every message workload reports: none lost, none duplicated, nothing
 * refused, something sent. */
static void check_messages(const json_t *figures, const char *workload)
{
    ck_assert_str_eq(json_string_value(json_object_get(figures, "workload")), workload);
    ck_assert_int_gt(get_int(figures, "accepted"), 0);
    ck_assert_int_eq(get_int(figures, "refused"), 0);
    ck_assert_int_eq(get_int(figures, "lost"), 0);
    ck_assert_int_eq(get_int(figures, "duplicated"), 0);
    ck_assert_int_eq(get_int(figures, "unexpected"), 0);
    ck_assert_int_eq(get_int(figures, "no_reply"), 0);
    check_latency(figures, "reply_latency_ms");
    ck_assert_msg(json_is_object(json_object_get(figures, "bench_cpu")), "no bench_cpu");
    ck_assert_msg(json_is_object(json_object_get(figures, "server_cpu")), "no server_cpu");
}

/* A message workload's figures (freed here): every accepted message made `fanout`
 * deliveries, at least one. */
static void check_deliveries(json_t *figures, const char *workload, int fanout)
{
    check_messages(figures, workload);
    ck_assert_int_gt(get_int(figures, "delivered"), 0);
    ck_assert_int_eq(get_int(figures, "delivered"), get_int(figures, "accepted") * fanout);
    check_latency(figures, "latency_ms");
    json_decref(figures);
}

START_TEST(private_relay_loses_and_duplicates_nothing)
{
    start_server();
    const char *args[] = {"--workload", "private",   "--users", "10", "--inflight",
                          "4",          "--seconds", "1",       NULL};
    check_deliveries(run_bench(args), "private", 1);
    stop_server();
}
END_TEST

START_TEST(group_fan_out_reaches_every_other_member_once)
{
    start_server();
    const char *args[] = {"--workload", "group",     "--members", "10", "--senders",
                          "3",          "--seconds", "1",         NULL};
    check_deliveries(run_bench(args), "group", 9);
    stop_server();
}
END_TEST

START_TEST(offline_messages_are_stored_and_each_arrives_once_at_login)
{
    start_server();
    const char *args[] = {"--workload", "offline",   "--users", "4",        "--receivers",
                          "2",          "--seconds", "1",       "--verify", NULL};
    json_t *f = run_bench(args);
    check_messages(f, "offline");
    json_t *v = json_object_get(f, "verify");
    ck_assert_msg(json_is_object(v), "no verify figures");
    ck_assert_int_eq(get_int(v, "delivered"), get_int(f, "stored"));
    ck_assert_int_eq(get_int(v, "lost"), 0);
    ck_assert_int_eq(get_int(v, "duplicated"), 0);
    json_decref(f);
    stop_server();
}
END_TEST

START_TEST(idle_sessions_are_held_and_the_server_memory_is_read)
{
    start_server();
    const char *args[] = {"--workload", "idle",   "--sessions", "50", "--users",
                          "20",         "--hold", "1",          NULL};
    json_t *f = run_bench(args);
    ck_assert_str_eq(json_string_value(json_object_get(f, "workload")), "idle");
    ck_assert_int_eq(get_int(f, "closed_by_server"), 0);
    json_t *setup = json_object_get(f, "setup");
    ck_assert_int_eq(get_int(setup, "sessions"), 50);
    json_t *rss = json_object_get(f, "server_rss");
    ck_assert_msg(json_is_object(rss), "no server_rss");
    ck_assert_int_gt(get_int(rss, "held_bytes"), 0);
    ck_assert_msg(json_is_number(json_object_get(rss, "per_session_bytes")), "no per_session");
    json_decref(f);
    stop_server();
}
END_TEST

START_TEST(login_storm_counts_every_login)
{
    start_server();
    const char *args[] = {"--workload", "login",         "--users", "5", "--count",
                          "40",         "--concurrency", "4",       NULL};
    json_t *f = run_bench(args);
    ck_assert_str_eq(json_string_value(json_object_get(f, "workload")), "login");
    ck_assert_int_eq(get_int(f, "logins"), 40);
    ck_assert_int_eq(get_int(f, "failures"), 0);
    check_latency(f, "login_latency_ms");
    json_decref(f);
    stop_server();
}
END_TEST

START_TEST(websocket_private_relay_loses_and_duplicates_nothing)
{
    start_web_server();
    const char *args[] = {"--ws",       "--workload", "private",   "--users", "10",
                          "--inflight", "4",          "--seconds", "1",       NULL};
    check_deliveries(run_ws_bench(args), "private", 1);
    stop_server();
}
END_TEST

START_TEST(websocket_group_fan_out_reaches_every_other_member_once)
{
    start_web_server();
    const char *args[] = {"--ws",      "--workload", "group",     "--members", "10",
                          "--senders", "3",          "--seconds", "1",         NULL};
    check_deliveries(run_ws_bench(args), "group", 9);
    stop_server();
}
END_TEST

/* Held past several pings (one a second): each is answered, so no session is closed. */
START_TEST(websocket_idle_sessions_answer_pings_and_are_held)
{
    start_web_server();
    const char *args[] = {"--ws", "--workload", "idle", "--sessions", "20", "--hold", "3.5", NULL};
    json_t *f = run_ws_bench(args);
    ck_assert_str_eq(json_string_value(json_object_get(f, "workload")), "idle");
    ck_assert_int_eq(get_int(f, "closed_by_server"), 0);
    ck_assert_int_eq(get_int(json_object_get(f, "setup"), "sessions"), 20);
    json_decref(f);
    stop_server();
}
END_TEST

START_TEST(bad_options_are_refused_with_status_2)
{
    const char *argv[] = {CHATD_BENCH_BINARY, "--port", "1", "--workload", "nonesuch", NULL};
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        FILE *err = freopen("/dev/null", "w", stderr);
        (void)err;
        execv(CHATD_BENCH_BINARY, (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    int status;
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 2);
}
END_TEST

static Suite *bench_suite(void)
{
    Suite *s = suite_create("chatd-bench");
    TCase *tc = tcase_create("workloads");
    tcase_set_timeout(tc, 150);
    tcase_add_test(tc, private_relay_loses_and_duplicates_nothing);
    tcase_add_test(tc, group_fan_out_reaches_every_other_member_once);
    tcase_add_test(tc, offline_messages_are_stored_and_each_arrives_once_at_login);
    tcase_add_test(tc, idle_sessions_are_held_and_the_server_memory_is_read);
    tcase_add_test(tc, login_storm_counts_every_login);
    tcase_add_test(tc, websocket_private_relay_loses_and_duplicates_nothing);
    tcase_add_test(tc, websocket_group_fan_out_reaches_every_other_member_once);
    tcase_add_test(tc, websocket_idle_sessions_answer_pings_and_are_held);
    tcase_add_test(tc, bad_options_are_refused_with_status_2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(bench_suite());
}
