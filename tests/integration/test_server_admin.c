/* test_server_admin.c - black-box tests of the admin listener's defences against the
 * real chatd: the bearer token of POST /reload (and of /metrics with metrics_token), the
 * refusal of what a browser could send, the limits on a request's headers and body (the
 * body refused without being buffered) and on connections, and the descriptor budget
 * checked against RLIMIT_NOFILE at start and at a reload. */
#include "server_suite.h"

#include <check.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define TOKEN "0123456789abcdef0123456789abcdef"

static int admin_port;
static char token_path[PATH_MAX + 32];

/* Start chatd with the admin listener, its token file (when with_token) and more [admin]
 * lines. */
static void start_admin(int with_token, const char *more)
{
    char dir[PATH_MAX];
    ck_assert_int_eq(chatd_tmpdir_make(dir, sizeof(dir)), 0);
    ck_assert_int_eq(
        chatd_file_write(dir, "admin.token", TOKEN "\n", token_path, sizeof(token_path)), 0);
    ck_assert_int_eq(chmod(token_path, 0600), 0);
    admin_port = test_free_port("127.0.0.1");
    ck_assert_int_gt(admin_port, 0);
    char extra[PATH_MAX + 512];
    snprintf(extra, sizeof(extra), "[admin]\nenable = yes\nlisten = 127.0.0.1:%d\n%s%s%s",
             admin_port, with_token ? "token_file = " : "", with_token ? token_path : "",
             with_token ? "\n" : "");
    snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), "%s", more ? more : "");
    struct chatd_proc_options opts = {.extra_conf = extra};
    ck_assert_msg(chatd_proc_start(&srv, &opts) == 0, "chatd did not start");
}

static char *http(const char *method, const char *path, const char *headers)
{
    char *text = test_http_with(admin_port, method, path, headers);
    ck_assert_msg(text != NULL, "cannot connect to the admin listener");
    return text;
}

/* Whether an HTTP response has the status `code` ("401"). */
static int status_is(const char *text, const char *code)
{
    return text && strncmp(text, "HTTP/1.", 7) == 0 && strncmp(text + 9, code, 3) == 0;
}

static void assert_answer(const char *method, const char *path, const char *headers,
                          const char *code)
{
    char *text = http(method, path, headers);
    ck_assert_msg(status_is(text, code), "%s %s (%s) answered: %s", method, path, headers, text);
    free(text);
}

/* chatd's resident memory in KiB, from /proc. */
static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    long kib = -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

/* How many descriptors chatd has open. */
static int open_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    ck_assert_msg(d != NULL, "cannot list %s", path);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* ---- the token ---- */

START_TEST(reload_needs_the_token)
{
    start_admin(1, NULL);
    assert_answer("POST", "/reload", "", "401");
    assert_answer("POST", "/reload", "Authorization: Bearer wrong-token-guessed-by-someone\r\n",
                  "401");
    /* The right token, but not where a browser would put it. */
    assert_answer("POST", "/reload?token=" TOKEN, "Cookie: token=" TOKEN "\r\n", "401");
    assert_answer("POST", "/reload", "Authorization: Basic " TOKEN "\r\n", "401");
    ck_assert_int_eq(chatd_proc_log_count(&srv, "reloading "), 0);
    assert_answer("POST", "/reload", "Authorization: Bearer " TOKEN "\r\n", "200");
    chatd_proc_wait_log(&srv, "reloading ", 1, 5000);
    ck_assert_int_eq(chatd_proc_log_count(&srv, "admin listener: refused /reload from 127.0.0.1"),
                     4);
    ck_assert_int_eq(chatd_proc_log_count(&srv, TOKEN), 0);
    ck_assert_int_eq(chatd_proc_log_count(&srv, "wrong-token"), 0);
    /* Reading stays open without the token by default. */
    assert_answer("GET", "/metrics", "", "200");
    assert_answer("GET", "/healthz", "", "200");
    stop();
}
END_TEST

START_TEST(reload_without_a_token_file_is_refused_and_says_why)
{
    start_admin(0, NULL);
    char *text = http("POST", "/reload", "Authorization: Bearer " TOKEN "\r\n");
    ck_assert_msg(status_is(text, "403") && strstr(text, "token_file"), "POST /reload answered: %s",
                  text);
    free(text);
    ck_assert_int_eq(chatd_proc_log_count(&srv, "reloading "), 0);
    stop();
}
END_TEST

START_TEST(metrics_token_guards_metrics_but_not_healthz)
{
    start_admin(1, "metrics_token = yes\n");
    assert_answer("GET", "/metrics", "", "401");
    assert_answer("GET", "/metrics", "Authorization: Bearer nope-nope-nope-nope\r\n", "401");
    char *text = http("GET", "/metrics", "Authorization: Bearer " TOKEN "\r\n");
    ck_assert_msg(strstr(text, "200 OK") && strstr(text, "chatd_connections "),
                  "/metrics with the token answered: %s", text);
    free(text);
    assert_answer("GET", "/healthz", "", "200");
    stop();
}
END_TEST

START_TEST(metrics_token_without_token_file_stops_chatd)
{
    char dir[PATH_MAX], path[PATH_MAX];
    ck_assert_int_eq(chatd_tmpdir_make(dir, sizeof(dir)), 0);
    ck_assert_int_eq(chatd_file_write(dir, "c.conf",
                                      "[plugins]\nenable = ping\n[admin]\nenable = yes\n"
                                      "listen = 127.0.0.1:1\nmetrics_token = yes\n",
                                      path, sizeof(path)),
                     0);
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", test_free_port("127.0.0.1"));
    struct chatd_run_result r;
    const char *const args[] = {"-c", path, "-l", listen, "-p", CHATD_PLUGIN_DIR, NULL};
    ck_assert_int_eq(chatd_run(args, 10000, &r), 0);
    ck_assert_msg(r.status == 1 && strstr(r.err, "metrics_token = yes needs an [admin] token_file"),
                  "chatd exited %d: %s", r.status, r.err);
    chatd_run_result_free(&r);

    /* A token file other users can read is refused too. */
    char token[PATH_MAX + 32], conf[PATH_MAX + 512];
    ck_assert_int_eq(chatd_file_write(dir, "t", TOKEN "\n", token, sizeof(token)), 0);
    ck_assert_int_eq(chmod(token, 0644), 0);
    snprintf(conf, sizeof(conf),
             "[plugins]\nenable = ping\n[admin]\nenable = yes\nlisten = 127.0.0.1:1\n"
             "token_file = %s\n",
             token);
    ck_assert_int_eq(chatd_file_write(dir, "c.conf", conf, path, sizeof(path)), 0);
    ck_assert_int_eq(chatd_run(args, 10000, &r), 0);
    ck_assert_msg(r.status == 1 && strstr(r.err, "other users can read or write it"),
                  "chatd exited %d: %s", r.status, r.err);
    chatd_run_result_free(&r);
    chatd_tmpdir_remove(dir);
}
END_TEST

/* ---- what a browser could send ---- */

START_TEST(requests_a_web_page_could_send_are_refused)
{
    start_admin(1, NULL);
    assert_answer("POST", "/reload",
                  "Authorization: Bearer " TOKEN "\r\nOrigin: http://127.0.0.1:9100\r\n", "403");
    assert_answer("POST", "/reload",
                  "Authorization: Bearer " TOKEN "\r\nSec-Fetch-Site: cross-site\r\n", "403");
    assert_answer("GET", "/metrics", "Sec-Fetch-Site: same-site\r\n", "403");
    ck_assert_int_eq(chatd_proc_log_count(&srv, "reloading "), 0);
    ck_assert_int_eq(chatd_proc_log_count(&srv, "sent by a web page"), 3);
    /* Typed into the address bar, or the page's own: fine. */
    assert_answer("GET", "/metrics", "Sec-Fetch-Site: none\r\n", "200");
    assert_answer("GET", "/healthz", "Sec-Fetch-Site: same-origin\r\n", "200");
    stop();
}
END_TEST

/* ---- size limits ---- */

START_TEST(oversized_headers_are_refused)
{
    start_admin(1, NULL);
    size_t size = 64 * 1024;
    char *request = malloc(size + 256);
    ck_assert_ptr_nonnull(request);
    int n = snprintf(request, 256, "GET /healthz HTTP/1.0\r\nX-Filler: ");
    memset(request + n, 'a', size);
    strcpy(request + n + size, "\r\n\r\n");
    char *text = test_http_raw(admin_port, request);
    free(request);
    ck_assert_msg(text && strstr(text, "200 OK") == NULL, "64 KiB of headers answered: %s",
                  text ? text : "(no connection)");
    free(text);
    chatd_proc_wait_log(&srv, "admin listener: connection from 127.0.0.1", 1, 5000);
    assert_answer("GET", "/healthz", "", "200");
    stop();
}
END_TEST

START_TEST(oversized_body_is_refused_without_being_buffered)
{
    start_admin(1, NULL);
    /* Announced: refused on the headers alone. */
    char *text = test_http_raw(admin_port, "POST /reload HTTP/1.0\r\nAuthorization: Bearer " TOKEN
                                           "\r\nContent-Length: 600000000\r\n\r\n");
    ck_assert_msg(status_is(text, "413"), "a 600 MB Content-Length answered: %s",
                  text ? text : "(no connection)");
    free(text);
    ck_assert_int_eq(chatd_proc_log_count(&srv, "reloading "), 0);

    /* Sent: 64 MiB of body, until chatd stops taking it. Buffered, it would add 64 MiB
     * to chatd's memory. */
    long before = rss_kib(srv.pid);
    struct test_client *c = test_client_connect("127.0.0.1", admin_port, 0);
    ck_assert_ptr_nonnull(c);
    size_t body = 64 << 20, chunk = 64 << 10, sent = 0;
    char head[256];
    snprintf(head, sizeof(head),
             "POST /reload HTTP/1.0\r\nAuthorization: Bearer " TOKEN
             "\r\nContent-Length: %zu\r\n\r\n",
             body);
    char *zeros = calloc(1, chunk);
    ck_assert_ptr_nonnull(zeros);
    if (test_client_send_str(c, head) == 0)
        while (sent < body && test_client_send(c, zeros, chunk, 2000) == 0)
            sent += chunk;
    free(zeros);
    test_client_close(c);
    long after = rss_kib(srv.pid);
    printf("oversized body: %zu of %zu bytes sent before chatd closed; RSS %ld -> %ld KiB\n", sent,
           body, before, after);
    ck_assert_msg(after - before < 16 * 1024, "chatd's RSS grew from %ld to %ld KiB", before,
                  after);
    ck_assert_int_eq(chatd_proc_log_count(&srv, "reloading "), 0);
    assert_answer("GET", "/healthz", "", "200");
    stop();
}
END_TEST

/* ---- connections ---- */

START_TEST(connection_cap_holds_and_chat_clients_are_served)
{
    start_admin(1, "max_connections = 4\n");
    int fds_before = open_fds(srv.pid);
    enum { IDLE = 40 };
    struct test_client *idle[IDLE];
    for (int i = 0; i < IDLE; i++) {
        idle[i] = test_client_connect("127.0.0.1", admin_port, 0);
        ck_assert_ptr_nonnull(idle[i]);
    }
    chatd_proc_wait_log(&srv, "admin listener: 4 connections open", 1, 5000);
    chatd_sleep_ms(200); /* anything over the cap would have been accepted by now */
    int fds_after = open_fds(srv.pid);
    printf("admin connections: %d idle opened, chatd's descriptors %d -> %d\n", IDLE, fds_before,
           fds_after);
    ck_assert_msg(fds_after - fds_before <= 4, "chatd's descriptors went from %d to %d", fds_before,
                  fds_after);
    struct test_client *chat = connect_client();
    assert_ping_works(chat, 1);
    test_client_close(chat);
    for (int i = 0; i < IDLE; i++)
        test_client_close(idle[i]);
    chatd_proc_wait_log(&srv, "admin listener: accepting connections again", 1, 5000);
    assert_answer("GET", "/healthz", "", "200");
    stop();
}
END_TEST

/* ---- descriptors ---- */

static void limit_descriptors(rlim_t soft, rlim_t hard)
{
    struct rlimit lim = {soft, hard};
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &lim), 0);
}

START_TEST(connection_limits_over_rlimit_nofile_stop_chatd)
{
    limit_descriptors(300, 300);
    char dir[PATH_MAX], path[PATH_MAX];
    ck_assert_int_eq(chatd_tmpdir_make(dir, sizeof(dir)), 0);
    ck_assert_int_eq(chatd_file_write(dir, "c.conf",
                                      "[server]\nmax_connections = 1000\n[plugins]\nenable = ping\n"
                                      "[admin]\nenable = yes\nlisten = 127.0.0.1:1\n",
                                      path, sizeof(path)),
                     0);
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", test_free_port("127.0.0.1"));
    struct chatd_run_result r;
    const char *const args[] = {"-c", path, "-l", listen, "-p", CHATD_PLUGIN_DIR, NULL};
    ck_assert_int_eq(chatd_run(args, 10000, &r), 0);
    ck_assert_msg(r.status == 1 && strstr(r.err, "RLIMIT_NOFILE allows 300") &&
                      strstr(r.err, "[admin] max_connections (16)"),
                  "chatd exited %d: %s", r.status, r.err);
    chatd_run_result_free(&r);
    chatd_tmpdir_remove(dir);
}
END_TEST

START_TEST(soft_rlimit_nofile_is_raised_to_fit)
{
    limit_descriptors(300, 4000);
    start_with("max_connections = 1000\n");
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/limits", (int)srv.pid);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    long soft = -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "Max open files %ld", &soft) == 1)
            break;
    fclose(f);
    ck_assert_msg(soft >= 1000 && soft <= 4000, "chatd's soft limit is %ld", soft);
    stop();
}
END_TEST

START_TEST(reload_over_rlimit_nofile_is_refused)
{
    limit_descriptors(1200, 1200);
    start_with("max_connections = 1000\n");
    char *text = chatd_file_read(srv.config);
    ck_assert_ptr_nonnull(text);
    char *at = strstr(text, "max_connections = 1000");
    ck_assert_ptr_nonnull(at);
    memcpy(at, "max_connections = 5000", 22);
    FILE *f = fopen(srv.config, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    free(text);
    ck_assert_int_eq(chatd_proc_signal(&srv, SIGHUP), 0);
    chatd_proc_wait_log(&srv,
                        "reload refused, the running config is kept: [server] "
                        "max_connections (5000)",
                        1, 5000);
    struct test_client *c = connect_client();
    assert_ping_works(c, 1);
    test_client_close(c);
    stop();
}
END_TEST

static Suite *server_admin_suite(void)
{
    Suite *s = suite_create("server_admin");
    /* Generous bounds: a test waits at most a few seconds unless something is wrong. */
    TCase *tc = tcase_create("token");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, reload_needs_the_token);
    tcase_add_test(tc, reload_without_a_token_file_is_refused_and_says_why);
    tcase_add_test(tc, metrics_token_guards_metrics_but_not_healthz);
    tcase_add_test(tc, metrics_token_without_token_file_stops_chatd);
    tcase_add_test(tc, requests_a_web_page_could_send_are_refused);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, oversized_headers_are_refused);
    tcase_add_test(tc, oversized_body_is_refused_without_being_buffered);
    tcase_add_test(tc, connection_cap_holds_and_chat_clients_are_served);
    tcase_add_test(tc, connection_limits_over_rlimit_nofile_stop_chatd);
    tcase_add_test(tc, soft_rlimit_nofile_is_raised_to_fit);
    tcase_add_test(tc, reload_over_rlimit_nofile_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(server_admin_suite());
}
