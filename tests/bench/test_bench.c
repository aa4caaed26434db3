/* test_bench.c - smoke test of chatd-bench: each workload runs for about a second
 * against the real chatd (the sample config, as scripts/run starts it, with a cheap
 * password cost, on a fresh database of the test MariaDB), over TCP and (--ws) over the
 * [web] listener's WebSocket; and private, group and idle against the peers of
 * --target redis and irc (a real redis-server and InspIRCd, as tools/bench-peers runs
 * them). The bench must exit 0 and print one JSON object whose counts say nothing was
 * lost or duplicated. No figure of speed is checked. */
#include "chatd_proc.h"
#include "../db/db_test_env.h"

#include <check.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
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

/* Run chatd-bench against the listener on `port` of the server `server_pid` with `args`
 * (NULL-terminated, after --port and --server-pid), its output in `dir`, and return its
 * stdout parsed as one JSON object. */
static json_t *run_bench_at(int listener_port, pid_t server_pid, const char *dir,
                            const char *const *args)
{
    char port[16], pid[16], out_path[PATH_MAX + 32], err_path[PATH_MAX + 32];
    snprintf(port, sizeof(port), "%d", listener_port);
    snprintf(pid, sizeof(pid), "%d", (int)server_pid);
    snprintf(out_path, sizeof(out_path), "%s/bench.out", dir);
    snprintf(err_path, sizeof(err_path), "%s/bench.err", dir);
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
        if (srv.pid == server_pid)
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

static json_t *run_bench_on(int listener_port, const char *const *args)
{
    return run_bench_at(listener_port, srv.pid, srv.dir, args);
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
    json_t *server_cpu = json_object_get(figures, "server_cpu");
    ck_assert_msg(json_is_object(server_cpu), "no server_cpu");
    double kernel = json_number_value(json_object_get(server_cpu, "kernel_fraction"));
    ck_assert_msg(json_is_number(json_object_get(server_cpu, "kernel_fraction")) && kernel >= 0 &&
                      kernel <= 1,
                  "server_cpu's kernel_fraction is not a fraction");
    int by_thread = 0;
    const char *key;
    json_t *value;
    json_object_foreach(server_cpu, key, value)
    {
        if (strncmp(key, "loop_us_per_", 12) == 0 || strncmp(key, "io_us_per_", 10) == 0 ||
            strncmp(key, "workers_us_per_", 15) == 0)
            by_thread += json_is_number(value) && json_number_value(value) >= 0;
    }
    ck_assert_msg(by_thread == 3, "server_cpu lacks the CPU per unit of its loop, I/O and workers");
}

/* What the server sent per delivery, and its system calls where they can be counted
 * (root and the kernel's syscall tracepoints: tools/bench/syscount.h). */
static void check_server_io(const json_t *figures)
{
    json_t *io = json_object_get(figures, "server_io");
    ck_assert_msg(json_is_object(io), "no server_io");
    ck_assert_msg(json_number_value(json_object_get(io, "bytes_received_per_delivery")) > 0,
                  "no bytes received per delivery");
    if (geteuid() != 0 || access("/sys/kernel/tracing/events/raw_syscalls/sys_enter/id", R_OK) != 0)
        return;
    double all = json_number_value(json_object_get(io, "syscalls_per_delivery"));
    double writes = json_number_value(json_object_get(io, "writes_per_delivery"));
    json_t *workers = json_object_get(io, "workers_syscalls_per_delivery");
    ck_assert_msg(writes > 0 && all >= writes, "system calls per delivery: %g, writes %g", all,
                  writes);
    ck_assert_msg(json_is_number(workers) && json_number_value(workers) <= all,
                  "no workers' share of the system calls");
}

/* A message workload's figures (freed here): every accepted message made `fanout`
 * deliveries, at least one. */
static void check_deliveries(json_t *figures, const char *workload, int fanout)
{
    check_messages(figures, workload);
    ck_assert_int_gt(get_int(figures, "delivered"), 0);
    ck_assert_int_eq(get_int(figures, "delivered"), get_int(figures, "accepted") * fanout);
    ck_assert_int_eq(get_int(figures, "expected_deliveries"), get_int(figures, "delivered"));
    check_latency(figures, "latency_ms");
    check_server_io(figures);
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

/* --rate: the pacer never sends more than the rate allows over the window, and sends on
 * when it is behind (a message due but held back counts as due). */
START_TEST(a_paced_relay_offers_the_rate_and_no_more)
{
    start_server();
    const char *args[] = {"--workload", "private",   "--users", "10", "--rate",
                          "200",        "--seconds", "2",       NULL};
    json_t *f = run_bench(args);
    double window = json_number_value(json_object_get(f, "seconds"));
    long long due = get_int(f, "sent") + get_int(f, "held_back");
    ck_assert_msg(json_number_value(json_object_get(f, "offered_per_s")) == 200,
                  "offered_per_s is not the rate");
    ck_assert_msg(due <= (long long)(200 * window) + 1 && due >= 200,
                  "%lld messages sent or held back at 200/s over %.2f s", due, window);
    check_deliveries(f, "private", 1);
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

/* ---- the peers of --target redis and irc ---- */

/* A redis-server or InspIRCd of the test's own, on a loopback port, in a folder of its
 * own, killed with the test process if it dies first. */
struct peer_server {
    pid_t pid;
    int port;
    char dir[PATH_MAX];
};

static struct peer_server peer;

/* A loopback port nothing listens on (the kernel's choice for a bind to port 0). */
static int unused_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static int accepts_connections(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Start argv (its output in DIR/server.log) and wait until peer.port accepts. */
static void peer_exec(const char *const *argv)
{
    char log[PATH_MAX + 16];
    snprintf(log, sizeof(log), "%s/server.log", peer.dir);
    peer.pid = fork();
    ck_assert_int_ge(peer.pid, 0);
    if (peer.pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
            _exit(127);
        execvp(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    long long deadline = chatd_now_ms() + 20000;
    while (!accepts_connections(peer.port)) {
        int status;
        if (waitpid(peer.pid, &status, WNOHANG) == peer.pid || chatd_now_ms() > deadline) {
            char *text = chatd_file_read(log);
            fprintf(stderr, "%s did not start; its output:\n%s\n", argv[0], text ? text : "");
            free(text);
            ck_abort_msg("%s did not start", argv[0]);
        }
        chatd_sleep_ms(20);
    }
}

static void start_peer_dir(void)
{
    ck_assert_int_eq(chatd_tmpdir_make(peer.dir, sizeof(peer.dir)), 0);
    peer.port = unused_port();
}

/* redis-server on loopback TCP, no persistence, as tools/bench-peers runs it. */
static void start_redis(void)
{
    start_peer_dir();
    char port[16];
    snprintf(port, sizeof(port), "%d", peer.port);
    const char *argv[] = {
        "redis-server", "--bind", "127.0.0.1", "--port", port,          "--save", "",
        "--appendonly", "no",     "--dir",     peer.dir, "--daemonize", "no",     NULL};
    peer_exec(argv);
}

/* InspIRCd with tools/bench/inspircd.conf, as tools/bench-peers runs it. */
static void start_irc(void)
{
    start_peer_dir();
    char *conf = chatd_file_read(CHATD_SOURCE_DIR "/tools/bench/inspircd.conf");
    ck_assert_ptr_nonnull(conf);
    char path[PATH_MAX + 32], port[16];
    snprintf(path, sizeof(path), "%s/inspircd.conf", peer.dir);
    snprintf(port, sizeof(port), "%d", peer.port);
    FILE *out = fopen(path, "w");
    ck_assert_ptr_nonnull(out);
    for (const char *p = conf; *p; p++) {
        if (strncmp(p, "@DIR@", 5) == 0) {
            fputs(peer.dir, out);
            p += 4;
        } else if (strncmp(p, "@PORT@", 6) == 0) {
            fputs(port, out);
            p += 5;
        } else {
            fputc(*p, out);
        }
    }
    ck_assert_int_eq(fclose(out), 0);
    free(conf);
    char config_opt[PATH_MAX + 48];
    snprintf(config_opt, sizeof(config_opt), "--config=%s", path);
    /* InspIRCd refuses to run as root unless told. */
    const char *argv[] = {"inspircd", config_opt, "--nofork", geteuid() == 0 ? "--runasroot" : NULL,
                          NULL};
    peer_exec(argv);
}

static void stop_peer(void)
{
    int status = 0;
    kill(peer.pid, SIGTERM);
    ck_assert_int_eq(waitpid(peer.pid, &status, 0), peer.pid);
    chatd_tmpdir_remove(peer.dir);
    peer = (struct peer_server){0};
}

/* chatd-bench --target NAME (args after it) against the peer; it must name the target. */
static json_t *run_peer_bench(const char *target, const char *const *args)
{
    const char *argv[24] = {"--target", target};
    size_t n = 2;
    for (size_t i = 0; args[i] && n < 23; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    json_t *f = run_bench_at(peer.port, peer.pid, peer.dir, argv);
    ck_assert_str_eq(json_string_value(json_object_get(f, "target")), target);
    return f;
}

static const char *const private_args[] = {"--workload", "private",   "--users", "10", "--inflight",
                                           "4",          "--seconds", "1",       NULL};
static const char *const group_args[] = {"--workload", "group",     "--members", "10", "--senders",
                                         "3",          "--seconds", "1",         NULL};
static const char *const idle_args[] = {"--workload", "idle", "--sessions", "50",
                                        "--hold",     "1",    NULL};

static void check_idle(json_t *f, int sessions)
{
    ck_assert_str_eq(json_string_value(json_object_get(f, "workload")), "idle");
    ck_assert_int_eq(get_int(f, "closed_by_server"), 0);
    ck_assert_int_eq(get_int(json_object_get(f, "setup"), "sessions"), sessions);
    ck_assert_int_gt(get_int(json_object_get(f, "server_rss"), "held_bytes"), 0);
    json_decref(f);
}

START_TEST(redis_private_relay_loses_and_duplicates_nothing)
{
    start_redis();
    check_deliveries(run_peer_bench("redis", private_args), "private", 1);
    stop_peer();
}
END_TEST

/* Redis delivers a group message to its sender too (a subscriber of the channel): 10
 * deliveries of each message in a group of 10, every one counted once. */
START_TEST(redis_group_fan_out_reaches_every_subscriber_once)
{
    start_redis();
    check_deliveries(run_peer_bench("redis", group_args), "group", 10);
    stop_peer();
}
END_TEST

START_TEST(redis_idle_sessions_are_held)
{
    start_redis();
    check_idle(run_peer_bench("redis", idle_args), 50);
    stop_peer();
}
END_TEST

/* IRC answers no PRIVMSG: every message is still answered (no_reply 0), by its
 * arrival at the recipient. */
START_TEST(irc_private_relay_loses_and_duplicates_nothing)
{
    start_irc();
    check_deliveries(run_peer_bench("irc", private_args), "private", 1);
    stop_peer();
}
END_TEST

START_TEST(irc_group_fan_out_reaches_every_other_member_once)
{
    start_irc();
    check_deliveries(run_peer_bench("irc", group_args), "group", 9);
    stop_peer();
}
END_TEST

START_TEST(irc_idle_sessions_are_held)
{
    start_irc();
    check_idle(run_peer_bench("irc", idle_args), 50);
    stop_peer();
}
END_TEST

/* Exit status of chatd-bench with these arguments (stderr dropped). */
static int bench_status(const char *const *argv)
{
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
    return WEXITSTATUS(status);
}

START_TEST(targets_other_than_chatd_run_only_their_workloads)
{
    const char *unknown[] = {CHATD_BENCH_BINARY, "--port", "1", "--target", "xmpp", NULL};
    const char *login[] = {CHATD_BENCH_BINARY, "--port", "1", "--target", "irc",
                           "--workload",       "login",  NULL};
    const char *ws[] = {CHATD_BENCH_BINARY, "--port", "1", "--target", "redis", "--ws", NULL};
    ck_assert_int_eq(bench_status(unknown), 2);
    ck_assert_int_eq(bench_status(login), 2);
    ck_assert_int_eq(bench_status(ws), 2);
}
END_TEST

START_TEST(bad_options_are_refused_with_status_2)
{
    const char *argv[] = {CHATD_BENCH_BINARY, "--port", "1", "--workload", "nonesuch", NULL};
    ck_assert_int_eq(bench_status(argv), 2);
    const char *paced_idle[] = {CHATD_BENCH_BINARY, "--port", "1", "--workload", "idle",
                                "--rate",           "1000",   NULL};
    ck_assert_int_eq(bench_status(paced_idle), 2);
}
END_TEST

static Suite *bench_suite(void)
{
    Suite *s = suite_create("chatd-bench");
    TCase *tc = tcase_create("workloads");
    tcase_set_timeout(tc, 150);
    tcase_add_test(tc, private_relay_loses_and_duplicates_nothing);
    tcase_add_test(tc, group_fan_out_reaches_every_other_member_once);
    tcase_add_test(tc, a_paced_relay_offers_the_rate_and_no_more);
    tcase_add_test(tc, offline_messages_are_stored_and_each_arrives_once_at_login);
    tcase_add_test(tc, idle_sessions_are_held_and_the_server_memory_is_read);
    tcase_add_test(tc, login_storm_counts_every_login);
    tcase_add_test(tc, websocket_private_relay_loses_and_duplicates_nothing);
    tcase_add_test(tc, websocket_group_fan_out_reaches_every_other_member_once);
    tcase_add_test(tc, websocket_idle_sessions_answer_pings_and_are_held);
    tcase_add_test(tc, bad_options_are_refused_with_status_2);
    suite_add_tcase(s, tc);
    TCase *peers = tcase_create("peers");
    tcase_set_timeout(peers, 150);
    tcase_add_test(peers, redis_private_relay_loses_and_duplicates_nothing);
    tcase_add_test(peers, redis_group_fan_out_reaches_every_subscriber_once);
    tcase_add_test(peers, redis_idle_sessions_are_held);
    tcase_add_test(peers, irc_private_relay_loses_and_duplicates_nothing);
    tcase_add_test(peers, irc_group_fan_out_reaches_every_other_member_once);
    tcase_add_test(peers, irc_idle_sessions_are_held);
    tcase_add_test(peers, targets_other_than_chatd_run_only_their_workloads);
    suite_add_tcase(s, peers);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(bench_suite());
}
