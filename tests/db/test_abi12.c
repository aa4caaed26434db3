/* test_abi12.c - what ABI 1.2 gives a plugin, seen from clients of a real chatd running
 * the fixture `modern`: the instance reaches every callback, a job started in init has
 * run, field rules (range, default, limit from an option) are checked by the host,
 * rows come back gathered, and on_user_flushed reports output that reached the
 * network. */
#include "chatd_proc.h"
#include "client.h"
#include "db_test_env.h"

#include "run_suite.h"

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

static struct config_database cfg;
static struct chatd_proc srv;

static void start_modern(const char *plugin_conf)
{
    db_test_config(&cfg);
    char extra[1024];
    snprintf(extra, sizeof(extra),
             "[plugins]\nauthenticator = modern\n%s\n[database]\nenable = yes\nsocket = %s\n"
             "user = %s\nname = %s\n",
             plugin_conf ? plugin_conf : "", cfg.socket, cfg.user, cfg.name);
    struct chatd_proc_options opts = {
        .enable = "ping, modern", .plugin_dir = CHATD_FIXTURE_DIR, .extra_conf = extra};
    ck_assert_msg(chatd_proc_start(&srv, &opts) == 0, "chatd did not start");
}

static void stop_modern(void)
{
    int rc = chatd_proc_stop(&srv, CHATD_PROC_STOP_TIMEOUT_MS);
    chatd_proc_cleanup(&srv);
    ck_assert_int_eq(rc, 0);
    db_test_cleanup(&cfg);
}

/* Send `request` and return the reply, checking its result word. */
static json_t *ask(struct test_client *c, const char *request, const char *result)
{
    ck_assert_int_eq(test_client_send(c, request, strlen(request), TEST_CLIENT_TIMEOUT_MS), 0);
    json_t *msg = test_client_read_json(c, 10000);
    ck_assert_msg(msg != NULL, "no reply to %s", request);
    const char *got = json_string_value(json_object_get(msg, "result"));
    ck_assert_msg(got && strcmp(got, result) == 0, "%s: got %s", request, got ? got : "(none)");
    return msg;
}

START_TEST(the_instance_and_the_init_job_reach_the_handlers)
{
    start_modern(NULL);
    struct test_client *c = test_client_connect(srv.host, srv.port, 0);
    ck_assert(c != NULL);
    /* The job init started counts the rows of the table migrations filled. */
    json_t *msg = NULL;
    for (int i = 0; i < 100; i++) {
        json_decref(msg);
        msg = ask(c, "{\"cmd\":\"modern_info\"}", "success");
        if (json_integer_value(json_object_get(msg, "rows_at_init")) == 3)
            break;
        chatd_sleep_ms(50);
    }
    ck_assert_int_eq(json_integer_value(json_object_get(msg, "rows_at_init")), 3);
    ck_assert(json_is_true(json_object_get(msg, "monotonic")));
    /* An absent limit took its default. */
    ck_assert_int_eq(json_integer_value(json_object_get(msg, "limit")), 2);
    json_decref(msg);
    test_client_close(c);
    stop_modern();
}
END_TEST

START_TEST(field_rules_are_checked_by_the_host)
{
    start_modern("[plugin.modern]\nmax_text = 3\n");
    struct test_client *c = test_client_connect(srv.host, srv.port, 0);
    ck_assert(c != NULL);
    static const struct {
        const char *request, *result, *reason;
    } cases[] = {
        {"{\"cmd\":\"modern_info\",\"limit\":0}", "bad_request", "'limit' must be 1 to 100"},
        {"{\"cmd\":\"modern_info\",\"limit\":101}", "bad_request", "'limit' must be 1 to 100"},
        {"{\"cmd\":\"modern_info\",\"limit\":100}", "success", NULL},
        {"{\"cmd\":\"modern_text\",\"text\":\"abcd\"}", "bad_request",
         "'text' must be 0 to 3 bytes long"},
        {"{\"cmd\":\"modern_text\",\"text\":\"abc\"}", "success", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *msg = ask(c, cases[i].request, cases[i].result);
        if (cases[i].reason)
            ck_assert_str_eq(json_string_value(json_object_get(msg, "reason")), cases[i].reason);
        json_decref(msg);
    }
    test_client_close(c);
    stop_modern();
}
END_TEST

START_TEST(rows_are_gathered_by_the_host)
{
    start_modern(NULL);
    struct test_client *c = test_client_connect(srv.host, srv.port, 0);
    ck_assert(c != NULL);
    json_t *msg = ask(c, "{\"cmd\":\"modern_rows\",\"limit\":3}", "success");
    json_t *texts = json_object_get(msg, "texts");
    ck_assert_uint_eq(json_array_size(texts), 3);
    ck_assert_str_eq(json_string_value(json_array_get(texts, 0)), "one");
    ck_assert_str_eq(json_string_value(json_array_get(texts, 2)), "three");
    json_decref(msg);
    msg = ask(c, "{\"cmd\":\"modern_rows\"}", "success");
    ck_assert_uint_eq(json_array_size(json_object_get(msg, "texts")), 2);
    json_decref(msg);
    test_client_close(c);
    stop_modern();
}
END_TEST

START_TEST(flushed_comes_after_the_output_reached_the_network)
{
    start_modern(NULL);
    struct test_client *c = test_client_connect(srv.host, srv.port, 0);
    ck_assert(c != NULL);
    json_decref(ask(c, "{\"cmd\":\"modern_login\",\"user\":\"ann\"}", "success"));
    /* 512 KiB does not fit in the socket's buffers until the client reads it. */
    const char *flood = "{\"cmd\":\"modern_flood\",\"kib\":512}";
    ck_assert_int_eq(test_client_send(c, flood, strlen(flood), TEST_CLIENT_TIMEOUT_MS), 0);
    int floods = 0, flushed_after = -1;
    while (flushed_after < 0) {
        json_t *msg = test_client_read_json(c, 10000);
        ck_assert_msg(msg != NULL, "the stream ended after %d floods", floods);
        const char *cmd = json_string_value(json_object_get(msg, "cmd"));
        if (strcmp(cmd, "flood") == 0)
            floods++;
        else if (strcmp(cmd, "flushed") == 0) {
            flushed_after = floods;
            ck_assert_int_eq(json_integer_value(json_object_get(msg, "status")), 0);
        }
        json_decref(msg);
    }
    ck_assert_int_eq(flushed_after, 512);
    test_client_close(c);
    stop_modern();
}
END_TEST

START_TEST(an_init_that_fails_after_starting_a_job_is_refused_cleanly)
{
    db_test_config(&cfg);
    char dir[PATH_MAX], path[PATH_MAX], text[1024];
    ck_assert_int_eq(chatd_tmpdir_make(dir, sizeof(dir)), 0);
    snprintf(text, sizeof(text),
             "[plugins]\ndir = %s\nenable = modern\n[plugin.modern]\nfail_init = yes\n"
             "[database]\nenable = yes\nsocket = %s\nuser = %s\nname = %s\n",
             CHATD_FIXTURE_DIR, cfg.socket, cfg.user, cfg.name);
    ck_assert_int_eq(chatd_file_write(dir, "fail.conf", text, path, sizeof(path)), 0);
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", test_free_port("127.0.0.1"));
    const char *const args[] = {"-c", path, "-l", listen, NULL};
    struct chatd_run_result r;
    ck_assert_int_eq(chatd_run(args, 20000, &r), 0);
    /* Refused at start, naming why; its job ended before it was unloaded (a crash or a
     * sanitizer report would change the status). */
    ck_assert_msg(r.status == 1, "chatd exited with %d; stderr: %s", r.status, r.err);
    ck_assert_msg(strstr(r.err, "asked to fail after starting a job") != NULL, "%s", r.err);
    ck_assert_msg(strstr(r.err, "jobs not done") == NULL, "%s", r.err);
    chatd_run_result_free(&r);
    chatd_tmpdir_remove(dir);
    db_test_cleanup(&cfg);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("abi12");
    TCase *tc = tcase_create("modern");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, the_instance_and_the_init_job_reach_the_handlers);
    tcase_add_test(tc, field_rules_are_checked_by_the_host);
    tcase_add_test(tc, rows_are_gathered_by_the_host);
    tcase_add_test(tc, flushed_comes_after_the_output_reached_the_network);
    tcase_add_test(tc, an_init_that_fails_after_starting_a_job_is_refused_cleanly);
    suite_add_tcase(s, tc);
    return chatd_proc_run_suite(s);
}
