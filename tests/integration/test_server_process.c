/* test_server_process.c - black-box tests of the real chatd process: the admin
 * listener (/healthz, /metrics), SIGTERM (exit 0 after the replies already asked for),
 * the command line (-t, --version, --check-plugin, a bad config) and an IPv6 listener.
 * Each test that serves starts its own chatd on a free port. */
#include "server_suite.h"

#include <chatd/plugin.h>
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the admin listener ---- */

START_TEST(admin_listener_serves_metrics_and_health)
{
    int admin_port = test_free_port("127.0.0.1");
    ck_assert_int_gt(admin_port, 0);
    char extra[256];
    snprintf(extra, sizeof(extra), "[admin]\nenable = yes\nlisten = 127.0.0.1:%d\n", admin_port);
    struct chatd_proc_options opts = {.extra_conf = extra};
    ck_assert_msg(chatd_proc_start(&srv, &opts) == 0, "chatd did not start");
    struct test_client *c = connect_client();
    assert_ping_works(c, 1);
    check_send_str(c, "[1]");
    json_decref(expect(c, "error", "bad_request"));

    char *health = test_http_get(admin_port, "/healthz");
    ck_assert_msg(health != NULL, "cannot connect to the admin listener");
    ck_assert_msg(strstr(health, "200 OK") && strstr(health, "\nok\n"), "healthz: %s", health);
    free(health);
    char *metrics = test_http_get(admin_port, "/metrics");
    ck_assert_msg(metrics != NULL, "cannot connect to the admin listener");
    /* The readiness probe and this test each sent one ping. */
    ck_assert_msg(strstr(metrics, "chatd_replies_total{cmd=\"ping\",result=\"success\"} 2\n"),
                  "metrics: %s", metrics);
    ck_assert_msg(strstr(metrics, "chatd_generic_errors_total{result=\"bad_request\"} 1\n"),
                  "metrics: %s", metrics);
    ck_assert_msg(strstr(metrics, "chatd_connections 1\n"), "metrics: %s", metrics);
    ck_assert_msg(strstr(metrics, "chatd_request_duration_seconds_count 2\n"), "metrics: %s",
                  metrics);
    free(metrics);
    test_client_close(c);
    stop();
}
END_TEST

/* ---- signals ---- */

START_TEST(sigterm_exits_zero_and_delivers_sent_replies)
{
    start();
    struct test_client *c = connect_client();
    struct test_client *idle = connect_client();
    assert_ping_works(c, 1);
    /* Twenty requests in one write: chatd answers them in one pass. */
    char burst[1024];
    size_t len = 0;
    for (int i = 2; i <= 21; i++)
        len +=
            (size_t)snprintf(burst + len, sizeof(burst) - len, "{\"cmd\":\"ping\",\"id\":%d}", i);
    check_send(c, burst, len);
    json_t *msg = expect(c, "ping_reply", "success");
    assert_int_id(msg, 2);
    json_decref(msg);
    chatd_sleep_ms(100);

    long long began = chatd_now_ms();
    int rc = chatd_proc_stop(&srv, 5000);
    ck_assert_msg(rc == 0, "chatd exited with %d after SIGTERM, want 0 within 5 s", rc);
    ck_assert_msg(chatd_now_ms() - began < 5000, "chatd took too long to stop");

    for (int i = 3; i <= 21; i++) {
        msg = expect(c, "ping_reply", "success");
        assert_int_id(msg, i);
        json_decref(msg);
    }
    assert_closed(c);
    assert_closed(idle);
    test_client_close(c);
    test_client_close(idle);
    chatd_proc_cleanup(&srv);
}
END_TEST

START_TEST(sigterm_flushes_replies_a_slow_client_has_not_read_yet)
{
    start_with("max_output_bytes = 67108864\noutput_pause_bytes = 33554432\n");
    /* Replies to these requests (about 8 MB) fill the small receive buffer and the
     * socket's send buffer (which the kernel may grow to a few MB), so many of them
     * still wait inside chatd at SIGTERM (the pause level lets chatd hold them all). */
    struct test_client *c = test_client_connect(srv.host, srv.port, 4096);
    ck_assert(c != NULL);
    enum { N = 10000, PAD = 800 };
    char pad[PAD + 1];
    memset(pad, 'p', PAD);
    pad[PAD] = '\0';
    size_t cap = (size_t)N * (PAD + 64), len = 0;
    char *burst = malloc(cap);
    ck_assert(burst != NULL);
    for (int i = 0; i < N; i++)
        len +=
            (size_t)snprintf(burst + len, cap - len, "{\"cmd\":\"ping\",\"id\":\"%d-%s\"}", i, pad);
    ck_assert_msg(test_client_send(c, burst, len, 10000) == 0, "send failed: %s", strerror(errno));
    free(burst);
    /* Every request is answered once chatd has read it; allow generously for the last
     * read's requests to be handled. */
    ck_assert_msg(test_client_wait_peer_read(c, 10000) == 0,
                  "chatd did not read all requests within 10 s");
    chatd_sleep_ms(300);

    ck_assert_int_eq(chatd_proc_signal(&srv, SIGTERM), 0);
    char want[PAD + 32];
    for (int i = 0; i < N; i++) {
        json_t *msg = test_client_read_json(c, TEST_CLIENT_TIMEOUT_MS);
        ck_assert_msg(msg != NULL, "reply %d of %d never came after SIGTERM", i, N);
        snprintf(want, sizeof(want), "%d-%s", i, pad);
        check_json_str(msg, "cmd", "ping_reply");
        check_json_str(msg, "id", want);
        json_decref(msg);
    }
    assert_closed(c);
    test_client_close(c);
    int rc = chatd_proc_wait(&srv, CHATD_PROC_STOP_TIMEOUT_MS);
    ck_assert_msg(rc == 0, "chatd exited with %d after SIGTERM, want 0", rc);
    chatd_proc_cleanup(&srv);
}
END_TEST

/* ---- the command line ---- */

/* Run chatd to completion; the caller frees r. */
static void run(const char *const *args, struct chatd_run_result *r)
{
    ck_assert_msg(chatd_run(args, 10000, r) == 0, "cannot run chatd");
}

START_TEST(unknown_config_key_stops_chatd_with_file_and_line)
{
    char dir[PATH_MAX], path[PATH_MAX];
    ck_assert_int_eq(chatd_tmpdir_make(dir, sizeof(dir)), 0);
    ck_assert_int_eq(chatd_file_write(dir, "bad.conf",
                                      "; a config with a typo\n"
                                      "[server]\n"
                                      "max_connections = 10\n"
                                      "max_conections = 20\n"
                                      "[plugins]\n"
                                      "enable = ping\n",
                                      path, sizeof(path)),
                     0);
    char where[PATH_MAX + 16];
    snprintf(where, sizeof(where), "%s:4", path);
    char listen[64];
    int port = test_free_port("127.0.0.1");
    ck_assert_int_gt(port, 0);
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);

    struct chatd_run_result r;
    const char *const serve[] = {"-c", path, "-l", listen, "-p", CHATD_PLUGIN_DIR, NULL};
    run(serve, &r);
    ck_assert_msg(r.status == 1, "chatd exited with %d, want 1; stderr: %s", r.status, r.err);
    ck_assert_msg(strstr(r.err, where) != NULL, "stderr lacks \"%s\": %s", where, r.err);
    ck_assert_msg(strstr(r.err, "max_conections") != NULL, "stderr does not name the key: %s",
                  r.err);
    chatd_run_result_free(&r);

    const char *const check[] = {"-t", "-c", path, NULL};
    run(check, &r);
    ck_assert_msg(r.status == 1, "chatd -t exited with %d, want 1", r.status);
    ck_assert_msg(strstr(r.err, where) != NULL, "stderr lacks \"%s\": %s", where, r.err);
    chatd_run_result_free(&r);
    chatd_tmpdir_remove(dir);
}
END_TEST

START_TEST(test_config_flag_accepts_good_config)
{
    char dir[PATH_MAX], path[PATH_MAX], text[PATH_MAX + 512];
    ck_assert_int_eq(chatd_tmpdir_make(dir, sizeof(dir)), 0);
    snprintf(text, sizeof(text),
             "[server]\n"
             "listen = 127.0.0.1:8000\n"
             "max_connections = 100\n"
             "[log]\n"
             "level = warn\n"
             "[plugins]\n"
             "dir = %s\n"
             "enable = ping\n",
             CHATD_PLUGIN_DIR);
    ck_assert_int_eq(chatd_file_write(dir, "good.conf", text, path, sizeof(path)), 0);
    struct chatd_run_result r;
    const char *const args[] = {"-t", "-c", path, NULL};
    run(args, &r);
    ck_assert_msg(r.status == 0, "chatd -t exited with %d; stderr: %s", r.status, r.err);
    ck_assert_msg(strstr(r.out, "ok") != NULL, "stdout does not say ok: %s", r.out);
    ck_assert_msg(strstr(r.out, "ping") != NULL, "stdout does not list ping: %s", r.out);
    chatd_run_result_free(&r);
    chatd_tmpdir_remove(dir);
}
END_TEST

START_TEST(version_prints_plugin_abi)
{
    struct chatd_run_result r;
    const char *const args[] = {"--version", NULL};
    run(args, &r);
    ck_assert_msg(r.status == 0, "chatd --version exited with %d", r.status);
    char abi[64];
    snprintf(abi, sizeof(abi), "ABI %d.%d", CHATD_ABI_MAJOR, CHATD_ABI_MINOR);
    ck_assert_msg(strstr(r.out, abi) != NULL, "stdout lacks \"%s\": %s", abi, r.out);
    ck_assert_msg(strncmp(r.out, "chatd ", 6) == 0, "stdout does not start with chatd: %s", r.out);
    chatd_run_result_free(&r);
}
END_TEST

/* A build with mimalloc runs on it: malloc() itself hands out mimalloc's blocks. */
START_TEST(version_names_the_malloc_in_use)
{
    struct chatd_run_result r;
    const char *const args[] = {"--version", NULL};
    run(args, &r);
    ck_assert_msg(r.status == 0, "chatd --version exited with %d", r.status);
#ifdef CHATD_TEST_EXPECT_MIMALLOC
    const char *want = "malloc: mimalloc 2.";
    ck_assert_msg(strstr(r.out, "not the process's malloc") == NULL, "mimalloc unused: %s", r.out);
#else
    const char *want = "malloc: the C library's";
#endif
    ck_assert_msg(strstr(r.out, want) != NULL, "stdout lacks \"%s\": %s", want, r.out);
    chatd_run_result_free(&r);
}
END_TEST

/* The value of the "key:" line of --check-plugin's output, trimmed; the caller frees. */
static char *field_value(const char *text, const char *key)
{
    size_t klen = strlen(key);
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > klen && strncmp(line, key, klen) == 0 && line[klen] == ':') {
            const char *v = line + klen + 1;
            while (v < line + len && *v == ' ')
                v++;
            size_t vlen = (size_t)(line + len - v);
            char *out = malloc(vlen + 1);
            ck_assert(out != NULL);
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return out;
        }
        line = end ? end + 1 : NULL;
    }
    return NULL;
}

START_TEST(check_plugin_describes_ping_as_loadable)
{
    struct chatd_run_result r;
    const char *const args[] = {"--check-plugin", CHATD_PLUGIN_DIR "/ping.so", NULL};
    run(args, &r);
    ck_assert_msg(r.status == 0, "chatd --check-plugin exited with %d; %s%s", r.status, r.out,
                  r.err);
    char *name = field_value(r.out, "name");
    ck_assert_msg(name && strcmp(name, "ping") == 0, "name is not ping: %s", r.out);
    free(name);
    char *loadable = field_value(r.out, "loadable");
    ck_assert_msg(loadable && strcmp(loadable, "yes") == 0, "not loadable: yes: %s", r.out);
    free(loadable);
    chatd_run_result_free(&r);
}
END_TEST

/* ---- IPv6 ---- */

START_TEST(ipv6_listener_answers_ping)
{
    if (test_free_port("::1") < 0) {
        fprintf(stderr, "ipv6_listener_answers_ping: skipped, ::1 cannot be bound here (%s)\n",
                strerror(errno));
        return;
    }
    struct chatd_proc_options opts = {.host = "::1"};
    ck_assert_msg(chatd_proc_start(&srv, &opts) == 0, "chatd did not start on [::1]");
    struct test_client *c = connect_client();
    assert_ping_works(c, 6);
    test_client_close(c);
    stop();
}
END_TEST

static Suite *server_process_suite(void)
{
    Suite *s = suite_create("server_process");

    /* Generous bounds: a test waits at most a few seconds unless something is wrong. */
    TCase *tc = tcase_create("admin");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, admin_listener_serves_metrics_and_health);
    suite_add_tcase(s, tc);

    tc = tcase_create("lifecycle");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, sigterm_exits_zero_and_delivers_sent_replies);
    tcase_add_test(tc, sigterm_flushes_replies_a_slow_client_has_not_read_yet);
    tcase_add_test(tc, unknown_config_key_stops_chatd_with_file_and_line);
    tcase_add_test(tc, test_config_flag_accepts_good_config);
    tcase_add_test(tc, version_prints_plugin_abi);
    tcase_add_test(tc, version_names_the_malloc_in_use);
    tcase_add_test(tc, check_plugin_describes_ping_as_loadable);
    tcase_add_test(tc, ipv6_listener_answers_ping);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(server_process_suite());
}
