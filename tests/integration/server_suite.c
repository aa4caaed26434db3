/* server_suite.c - see server_suite.h. */
#include "server_suite.h"
#include "tls_files.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

struct chatd_proc srv;

static void start_opts(const struct chatd_proc_options *opts)
{
    ck_assert_msg(chatd_proc_start(&srv, opts) == 0, "chatd did not start");
}

void start_with(const char *server_conf)
{
    struct chatd_proc_options opts = {.server_conf = server_conf};
    start_opts(&opts);
}

void start(void)
{
    start_with(NULL);
}

void start_with_pusher(const char *server_conf)
{
    struct chatd_proc_options opts = {
        .server_conf = server_conf, .enable = "ping, pusher", .plugin_dir = CHATD_FIXTURE_DIR};
    start_opts(&opts);
}

void start_with_pusher_opts(struct chatd_proc_options *opts)
{
    opts->enable = "ping, pusher";
    opts->plugin_dir = CHATD_FIXTURE_DIR;
    start_opts(opts);
}

void start_with_rules(const char *extra_conf)
{
    struct chatd_proc_options opts = {
        .enable = "ping, rules", .plugin_dir = CHATD_FIXTURE_DIR, .extra_conf = extra_conf};
    start_opts(&opts);
}

void stop(void)
{
    int rc = chatd_proc_stop(&srv, CHATD_PROC_STOP_TIMEOUT_MS);
    chatd_proc_cleanup(&srv);
    ck_assert_msg(rc == 0, "chatd exited with %d after SIGTERM, want 0", rc);
}

struct test_client *connect_client(void)
{
    return check_connect(&srv);
}

void assert_int_id(const json_t *msg, json_int_t want)
{
    const json_t *id = json_object_get(msg, "id");
    if (!json_is_integer(id) || json_integer_value(id) != want)
        ck_abort_msg("want \"id\":%lld (an integer) in %s", (long long)want, check_dump(msg));
}

json_t *expect(struct test_client *c, const char *cmd, const char *result)
{
    json_t *msg = check_read_json(c);
    check_json_str(msg, "cmd", cmd);
    check_json_str(msg, "result", result);
    return msg;
}

json_t *expect_cmd(struct test_client *c, const char *cmd)
{
    json_t *msg = check_read_json(c);
    check_json_str(msg, "cmd", cmd);
    return msg;
}

void expect_error(struct test_client *c, const char *result)
{
    json_decref(expect(c, "error", result));
}

void assert_ping_works(struct test_client *c, int id)
{
    char req[64];
    snprintf(req, sizeof(req), "{\"cmd\":\"ping\",\"id\":%d}", id);
    check_send_str(c, req);
    json_t *msg = expect(c, "ping_reply", "success");
    assert_int_id(msg, id);
    json_decref(msg);
}

void assert_closed(struct test_client *c)
{
    ck_assert_msg(test_client_expect_eof(c, TEST_CLIENT_TIMEOUT_MS),
                  "chatd did not close the connection");
}

void server_tls_make(struct server_tls *f)
{
    ck_assert_int_eq(chatd_tmpdir_make(f->dir, sizeof(f->dir)), 0);
    ck_assert_int_eq(test_tls_make_certificate(f->dir, "server", f->cert, f->key, sizeof(f->cert)),
                     0);
    snprintf(f->cert_set, sizeof(f->cert_set), "tls.certificate=%s", f->cert);
    snprintf(f->key_set, sizeof(f->key_set), "tls.key=%s", f->key);
}

void server_tls_remove(const struct server_tls *f)
{
    chatd_tmpdir_remove(f->dir);
}

void send_pings(struct test_client *c, int first, int n)
{
    char *batch = malloc((size_t)n * 40);
    ck_assert(batch != NULL);
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += (size_t)sprintf(batch + len, "{\"cmd\":\"ping\",\"id\":%d}\n", first + i);
    check_send(c, batch, len);
    free(batch);
}

void expect_pongs(struct test_client *c, int first, int n)
{
    for (int i = 0; i < n; i++) {
        json_t *reply = expect(c, "ping_reply", "success");
        assert_int_id(reply, first + i);
        json_decref(reply);
    }
}

json_int_t session_of(struct test_client *c)
{
    check_send_str(c, "{\"cmd\":\"whoami\"}");
    json_t *me = expect(c, "whoami_reply", "success");
    json_int_t session = json_integer_value(json_object_get(me, "session"));
    json_decref(me);
    return session;
}

void flood(struct test_client *from, json_int_t to, int count, int size)
{
    char text[128];
    snprintf(text, sizeof(text), "{\"cmd\":\"flood\",\"to\":%lld,\"count\":%d,\"size\":%d}",
             (long long)to, count, size);
    check_send_str(from, text);
    json_decref(expect(from, "flood_reply", "success"));
}
