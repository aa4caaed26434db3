/* test_hooks.c - black-box tests of hooks and services (ABI 1.2) on the real chatd
 * binary, with the fixture plugins hooker/hooker2 (hooks on "hooker.message" and
 * presence.changed) and svc_provider/svc_user (the service "greeter"): the order of
 * hooks, refusing, rewriting and deferring, failures and timeouts in /metrics, the
 * presence.changed point the host runs, the config check of required services (chatd -t,
 * start and reload), the start order of providers, and a reload that replaces a provider
 * while a dependent holds its service. */
#include "chatd_proc.h"
#include "client.h"

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WAIT_MS 15000

static struct chatd_proc srv;
static char plugin_dir[PATH_MAX];

/* ---- plugins and the server ---- */

/* Make NAME.so in the test's plugin folder point at the fixture `file`, replacing any
 * earlier one with a rename (the file chatd reads is always whole). */
static void install(const char *file, const char *name)
{
    char src[PATH_MAX + 64], dst[PATH_MAX + 64], tmp[PATH_MAX + 80];
    snprintf(src, sizeof(src), "%s/%s.so", CHATD_FIXTURE_DIR, file);
    snprintf(dst, sizeof(dst), "%s/%s.so", plugin_dir, name);
    snprintf(tmp, sizeof(tmp), "%s.new", dst);
    unlink(tmp);
    ck_assert_msg(symlink(src, tmp) == 0, "symlink %s: %s", tmp, strerror(errno));
    ck_assert_msg(rename(tmp, dst) == 0, "rename to %s: %s", dst, strerror(errno));
}

static void make_plugin_dir(void)
{
    ck_assert_int_eq(chatd_tmpdir_make(plugin_dir, sizeof(plugin_dir)), 0);
    install("ping", "ping");
    install("hooker", "hooker");
    install("hooker2", "hooker2");
    install("svc_provider_v1", "svc_provider");
    install("svc_user", "svc_user");
}

static void start(const char *server_conf, const char *enable, const char *extra_conf)
{
    make_plugin_dir();
    struct chatd_proc_options opts = {.server_conf = server_conf,
                                      .enable = enable,
                                      .extra_conf = extra_conf,
                                      .plugin_dir = plugin_dir};
    ck_assert_msg(chatd_proc_start(&srv, &opts) == 0, "chatd did not start");
}

static void stop(void)
{
    int rc = chatd_proc_stop(&srv, CHATD_PROC_STOP_TIMEOUT_MS);
    chatd_proc_cleanup(&srv);
    chatd_tmpdir_remove(plugin_dir);
    ck_assert_msg(rc == 0, "chatd exited with %d after SIGTERM, want 0", rc);
}

static size_t log_count(const char *needle)
{
    return chatd_proc_log_count(&srv, needle);
}

static void wait_log(const char *needle, size_t count)
{
    chatd_proc_wait_log(&srv, needle, count, WAIT_MS);
}

/* Where `needle` first is in the log (-1: nowhere). */
static long log_offset(const char *needle)
{
    char *text = chatd_file_read(srv.log);
    const char *at = text ? strstr(text, needle) : NULL;
    long offset = at ? at - text : -1;
    free(text);
    return offset;
}

/* Rewrite the config's enable line and reload with SIGHUP; wait for the outcome. */
static void reload_with(const char *enable)
{
    char *text = chatd_file_read(srv.config);
    ck_assert_ptr_nonnull(text);
    char *line = strstr(text, "enable = ");
    ck_assert_ptr_nonnull(line);
    char *end = strchr(line, '\n');
    FILE *f = fopen(srv.config, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%.*senable = %s%s", (int)(line - text), text, enable, end ? end : "\n");
    fclose(f);
    free(text);
    size_t before = log_count(" applied:") + log_count("reload refused");
    ck_assert_int_eq(chatd_proc_signal(&srv, SIGHUP), 0);
    long long deadline = chatd_now_ms() + WAIT_MS;
    while (log_count(" applied:") + log_count("reload refused") == before &&
           chatd_now_ms() < deadline)
        chatd_sleep_ms(10);
    ck_assert_msg(log_count(" applied:") + log_count("reload refused") > before,
                  "chatd did not finish a reload after SIGHUP");
}

/* ---- clients ---- */

static struct test_client *connect_client(void)
{
    return chatd_proc_connect(&srv);
}

#define request chatd_proc_request
#define str     chatd_json_str

/* The strings of `array` joined with commas into out. */
static const char *join(const json_t *array, char *out, size_t cap)
{
    size_t used = 0, i;
    json_t *v;
    out[0] = '\0';
    json_array_foreach(array, i, v)
    {
        used += (size_t)snprintf(out + used, used < cap ? cap - used : 0, "%s%s", i ? "," : "",
                                 json_string_value(v));
    }
    return out;
}

/* Run hooker.message with `text`; return the reply, its "trace" joined as "a,b" in
 * *trace (static). */
static json_t *run_hooks(struct test_client *c, const char *text, const char **trace)
{
    char line[512];
    snprintf(line, sizeof(line), "{\"cmd\":\"hooker_test\",\"text\":\"%s\"}\n", text);
    json_t *r = request(c, line);
    static char joined[256];
    *trace = join(json_object_get(r, "trace"), joined, sizeof(joined));
    return r;
}

/* Assert one run's result word, text and trace. */
static void assert_run(struct test_client *c, const char *text, const char *result,
                       const char *want_text, const char *want_trace)
{
    const char *trace;
    json_t *r = run_hooks(c, text, &trace);
    ck_assert_msg(strcmp(str(r, "result"), result) == 0, "'%s': result %s, want %s", text,
                  str(r, "result"), result);
    ck_assert_msg(strcmp(str(r, "text"), want_text) == 0, "'%s': text '%s', want '%s'", text,
                  str(r, "text"), want_text);
    ck_assert_msg(strcmp(trace, want_trace) == 0, "'%s': trace '%s', want '%s'", text, trace,
                  want_trace);
    json_decref(r);
}

static void assert_trace(const char *enable, const char *extra, const char *want)
{
    start(NULL, enable, extra);
    struct test_client *c = connect_client();
    assert_run(c, "hello", "success", "hello", want);
    test_client_close(c);
    stop();
}

/* ---- hooks ---- */

START_TEST(hooks_run_by_priority_then_enable_order)
{
    assert_trace("ping, hooker, hooker2", "[plugin.hooker2]\nactions = no\n", "hooker,hooker2");
    assert_trace("ping, hooker2, hooker", "[plugin.hooker2]\nactions = no\n", "hooker2,hooker");
    assert_trace("ping, hooker, hooker2",
                 "[plugin.hooker]\npriority = 5\n[plugin.hooker2]\n"
                 "actions = no\n",
                 "hooker2,hooker");
    assert_trace("ping, hooker2, hooker",
                 "[plugin.hooker]\npriority = -5\n[plugin.hooker2]\n"
                 "actions = no\n",
                 "hooker,hooker2");
}
END_TEST

START_TEST(hooks_refuse_rewrite_and_defer)
{
    start(NULL, "ping, hooker, hooker2", "[plugin.hooker2]\nactions = no\n");
    struct test_client *c = connect_client();
    const char *trace;
    json_t *r = run_hooks(c, "a forbidden word", &trace);
    ck_assert_str_eq(str(r, "result"), "forbidden");
    ck_assert_str_eq(str(r, "reason"), "the text has a forbidden word");
    /* The run stopped at the refusal: hooker2 never saw it. */
    ck_assert_str_eq(trace, "hooker");
    json_decref(r);
    assert_run(c, "a cat and a cat", "success", "a dog and a dog", "hooker,hooker2");
    /* Decided 30 ms later, from a timer. */
    assert_run(c, "defer the cat", "success", "defer the dog", "hooker,hooker2");
    test_client_close(c);
    stop();
}
END_TEST

START_TEST(hook_failures_and_timeouts_are_logged_counted_and_skipped)
{
    int admin_port = test_free_port("127.0.0.1");
    ck_assert_int_gt(admin_port, 0);
    char extra[256];
    snprintf(extra, sizeof(extra),
             "[plugin.hooker2]\nactions = no\n[admin]\nenable = yes\nlisten = 127.0.0.1:%d\n",
             admin_port);
    start("hook_timeout_ms = 100\n", "ping, hooker, hooker2", extra);
    struct test_client *c = connect_client();
    assert_run(c, "fail", "success", "fail", "hooker,hooker2");
    wait_log("hook hooker.message: plugin hooker failed: plugin failed", 1);
    long long before = chatd_now_ms();
    assert_run(c, "hang", "success", "hang", "hooker,hooker2");
    ck_assert_int_ge(chatd_now_ms() - before, 90);
    wait_log("hook hooker.message: plugin hooker did not resume within 100 ms", 1);
    /* Resumed after the run went on: ignored, and nothing breaks. */
    assert_run(c, "late", "success", "late", "hooker,hooker2");
    chatd_sleep_ms(400);
    assert_run(c, "a cat", "success", "a dog", "hooker,hooker2");

    char *metrics = test_http_get(admin_port, "/metrics");
    ck_assert_msg(metrics != NULL, "cannot connect to the admin listener");
    ck_assert_msg(
        strstr(metrics, "chatd_hook_failures_total{hook=\"hooker.message\",plugin=\"hooker\"} 1\n"),
        "metrics: %s", metrics);
    ck_assert_msg(
        strstr(metrics, "chatd_hook_timeouts_total{hook=\"hooker.message\",plugin=\"hooker\"} 2\n"),
        "metrics: %s", metrics);
    free(metrics);
    test_client_close(c);
    stop();
}
END_TEST

/* The admin listener's /metrics, with [server] `server_conf` and hooker2 tracing only. */
static int start_with_admin(const char *server_conf)
{
    int admin_port = test_free_port("127.0.0.1");
    ck_assert_int_gt(admin_port, 0);
    char extra[256];
    snprintf(extra, sizeof(extra),
             "[plugin.hooker2]\nactions = no\n[admin]\nenable = yes\nlisten = 127.0.0.1:%d\n",
             admin_port);
    start(server_conf, "ping, hooker, hooker2", extra);
    return admin_port;
}

START_TEST(cut_deferral_keeps_its_payload_and_late_writes_go_nowhere)
{
    int admin_port = start_with_admin("hook_timeout_ms = 400\n");
    struct test_client *c = connect_client();
    /* hooker is cut at 400 ms and the run is over (its payload released by the run)
     * before, at 500 ms, hooker writes into the payload it was given, refuses and
     * resumes. */
    assert_run(c, "hooker:scribble", "success", "hooker:scribble", "hooker,hooker2");
    chatd_sleep_ms(300);
    /* The same while hooker2 still defers (400 to 600 ms): none of it counts. */
    assert_run(c, "hooker:scribble hooker2:wait", "success", "hooker:scribble hooker2:wait",
               "hooker,hooker2");
    assert_run(c, "a cat", "success", "a dog", "hooker,hooker2");
    wait_log("hook hooker.message: plugin hooker did not resume within 400 ms", 2);
    char *metrics = test_http_get(admin_port, "/metrics");
    ck_assert_msg(metrics != NULL, "cannot connect to the admin listener");
    ck_assert_msg(
        strstr(metrics, "chatd_hook_timeouts_total{hook=\"hooker.message\",plugin=\"hooker\"} 2\n"),
        "metrics: %s", metrics);
    free(metrics);
    test_client_close(c);
    stop();
}
END_TEST

START_TEST(slow_hook_functions_are_logged_and_counted)
{
    int admin_port = start_with_admin(NULL);
    struct test_client *c = connect_client();
    assert_run(c, "busy", "success", "busy", "hooker,hooker2");
    wait_log("hook hooker.message: plugin hooker blocked the event loop for ", 1);
    assert_run(c, "a cat", "success", "a dog", "hooker,hooker2");
    char *metrics = test_http_get(admin_port, "/metrics");
    ck_assert_msg(metrics != NULL, "cannot connect to the admin listener");
    ck_assert_msg(
        strstr(metrics, "chatd_hook_slow_total{hook=\"hooker.message\",plugin=\"hooker\"} 1\n"),
        "metrics: %s", metrics);
    ck_assert_msg(
        !strstr(metrics, "chatd_hook_slow_total{hook=\"hooker.message\",plugin=\"hooker2\"}"),
        "metrics: %s", metrics);
    free(metrics);
    ck_assert_int_eq(log_count("plugin hooker2 blocked the event loop"), 0);
    test_client_close(c);
    stop();
}
END_TEST

START_TEST(hook_run_done_gets_the_instance_for_a_null_arg)
{
    start(NULL, "ping, hooker", NULL);
    struct test_client *c = connect_client();
    json_t *r = request(c, "{\"cmd\":\"hooker_test_instance\",\"text\":\"a cat\"}\n");
    ck_assert_str_eq(str(r, "result"), "success");
    ck_assert_str_eq(str(r, "text"), "a dog");
    json_decref(r);
    test_client_close(c);
    stop();
}
END_TEST

static void assert_presence(struct test_client *c, const char *cmd, const char *want)
{
    char line[128];
    snprintf(line, sizeof(line), "{\"cmd\":\"%s_presence\"}\n", cmd);
    json_t *r = request(c, line);
    char joined[256];
    join(json_object_get(r, "seen"), joined, sizeof(joined));
    ck_assert_msg(strcmp(joined, want) == 0, "%s saw '%s', want '%s'", cmd, joined, want);
    json_decref(r);
}

START_TEST(presence_changed_runs_at_first_login_and_last_logout)
{
    start(NULL, "ping, hooker, hooker2", "authenticator = hooker\n");
    struct test_client *a = connect_client(), *b = connect_client();
    json_t *r = request(a, "{\"cmd\":\"hooker_login\",\"user\":\"alice\"}\n");
    ck_assert_str_eq(str(r, "result"), "success");
    json_decref(r);
    assert_presence(a, "hooker", "alice:online");
    assert_presence(a, "hooker2", "alice:online");
    /* A second session is no change of presence, and neither is its end. */
    r = request(b, "{\"cmd\":\"hooker_login\",\"user\":\"alice\"}\n");
    ck_assert_str_eq(str(r, "result"), "success");
    json_decref(r);
    r = request(b, "{\"cmd\":\"hooker_logout\"}\n");
    ck_assert_str_eq(str(r, "result"), "success");
    json_decref(r);
    assert_presence(b, "hooker", "alice:online");
    r = request(a, "{\"cmd\":\"hooker_logout\"}\n");
    ck_assert_str_eq(str(r, "result"), "success");
    json_decref(r);
    assert_presence(b, "hooker", "alice:online,alice:offline");
    test_client_close(a);
    test_client_close(b);
    stop();
}
END_TEST

START_TEST(a_refusal_on_an_observe_only_point_is_ignored)
{
    /* hooker refuses presence.changed for this user: hooker2 still sees it. */
    start(NULL, "ping, hooker, hooker2", "authenticator = hooker\n");
    struct test_client *a = connect_client();
    json_t *r = request(a, "{\"cmd\":\"hooker_login\",\"user\":\"forbidden_al\"}\n");
    ck_assert_str_eq(str(r, "result"), "success");
    json_decref(r);
    assert_presence(a, "hooker", "forbidden_al:online");
    assert_presence(a, "hooker2", "forbidden_al:online");
    test_client_close(a);
    stop();
}
END_TEST

/* ---- services ---- */

static void assert_greet(struct test_client *c, const char *cmd, const char *from)
{
    char line[64];
    snprintf(line, sizeof(line), "{\"cmd\":\"%s\"}\n", cmd);
    json_t *r = request(c, line);
    ck_assert_msg(strcmp(str(r, "result"), "success") == 0, "%s answered %s", cmd,
                  str(r, "result"));
    ck_assert_msg(strcmp(str(r, "from"), from) == 0, "%s answered from '%s', want '%s'", cmd,
                  str(r, "from"), from);
    json_decref(r);
}

START_TEST(missing_provider_refuses_the_config_naming_both)
{
    make_plugin_dir();
    char dir[PATH_MAX], path[PATH_MAX], text[PATH_MAX + 256];
    ck_assert_int_eq(chatd_tmpdir_make(dir, sizeof(dir)), 0);
    snprintf(text, sizeof(text), "[plugins]\ndir = %s\n\nenable = ping, svc_user\n", plugin_dir);
    ck_assert_int_eq(chatd_file_write(dir, "deps.conf", text, path, sizeof(path)), 0);
    char want[PATH_MAX + 200];
    snprintf(want, sizeof(want),
             "%s:4: plugin 'svc_user' requires service 'greeter', which no enabled plugin "
             "provides (enable a plugin that provides it, or disable 'svc_user')",
             path);
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", test_free_port("127.0.0.1"));
    const char *const check[] = {"-t", "-c", path, NULL};
    const char *const serve[] = {"-c", path, "-l", listen, NULL};
    const char *const *runs[] = {check, serve};
    for (size_t i = 0; i < 2; i++) {
        struct chatd_run_result r;
        ck_assert_msg(chatd_run(runs[i], 10000, &r) == 0, "cannot run chatd");
        ck_assert_msg(r.status == 1, "chatd exited with %d, want 1; stderr: %s", r.status, r.err);
        ck_assert_msg(strstr(r.err, want) != NULL, "stderr lacks \"%s\": %s", want, r.err);
        chatd_run_result_free(&r);
    }
    chatd_tmpdir_remove(dir);
    chatd_tmpdir_remove(plugin_dir);
}
END_TEST

START_TEST(providers_start_before_their_dependents)
{
    /* svc_user's init fails unless the provider already serves. */
    start(NULL, "ping, svc_user, svc_provider", NULL);
    long provider = log_offset("plugin svc_provider 1.0.0 loaded");
    long user = log_offset("plugin svc_user 1.0.0 loaded");
    ck_assert_msg(provider >= 0 && user > provider, "svc_provider did not start first");
    struct test_client *c = connect_client();
    assert_greet(c, "greet", "provider 1.0.0");
    test_client_close(c);
    stop();
}
END_TEST

START_TEST(reload_replaces_a_provider_while_a_dependent_holds_it)
{
    start(NULL, "ping, svc_provider, svc_user", NULL);
    struct test_client *c = connect_client();
    json_t *r = request(c, "{\"cmd\":\"hold\"}\n");
    ck_assert_str_eq(str(r, "result"), "success");
    json_decref(r);

    install("svc_provider_v2", "svc_provider");
    reload_with("ping, svc_provider, svc_user");
    wait_log("plugin svc_provider 2.0.0: its file changed, serving", 1);
    /* New lookups find the new instance; the held one still answers from the old. */
    assert_greet(c, "greet", "provider 2.0.0");
    assert_greet(c, "held_greet", "provider 1.0.0");
    chatd_sleep_ms(100);
    ck_assert_int_eq(log_count("plugin svc_provider 1.0.0 unloaded"), 0);
    r = request(c, "{\"cmd\":\"release\"}\n");
    ck_assert_str_eq(str(r, "result"), "success");
    json_decref(r);
    wait_log("plugin svc_provider 1.0.0 unloaded", 1);
    assert_greet(c, "greet", "provider 2.0.0");

    /* A reload that would leave svc_user without its provider changes nothing. */
    reload_with("ping, svc_user");
    wait_log("plugin 'svc_user' requires service 'greeter', which no enabled plugin provides", 1);
    ck_assert_int_eq(log_count("reload refused"), 1);
    assert_greet(c, "greet", "provider 2.0.0");
    test_client_close(c);
    stop();
}
END_TEST

static Suite *hooks_suite(void)
{
    Suite *s = suite_create("hooks");
    TCase *tc = tcase_create("hooks");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, hooks_run_by_priority_then_enable_order);
    tcase_add_test(tc, hooks_refuse_rewrite_and_defer);
    tcase_add_test(tc, hook_failures_and_timeouts_are_logged_counted_and_skipped);
    tcase_add_test(tc, presence_changed_runs_at_first_login_and_last_logout);
    tcase_add_test(tc, cut_deferral_keeps_its_payload_and_late_writes_go_nowhere);
    tcase_add_test(tc, slow_hook_functions_are_logged_and_counted);
    tcase_add_test(tc, hook_run_done_gets_the_instance_for_a_null_arg);
    tcase_add_test(tc, a_refusal_on_an_observe_only_point_is_ignored);
    suite_add_tcase(s, tc);
    tc = tcase_create("services");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, missing_provider_refuses_the_config_naming_both);
    tcase_add_test(tc, providers_start_before_their_dependents);
    tcase_add_test(tc, reload_replaces_a_provider_while_a_dependent_holds_it);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(hooks_suite());
}
