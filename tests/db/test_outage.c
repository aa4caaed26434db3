/* test_outage.c - a real chatd rides out a MariaDB restart: while the database is down
 * a request that needs it is answered within a bounded time, ping keeps answering at
 * once, and when the database is back the pool recovers by itself. This suite stops the
 * shared test server, so CTest runs it alone (RUN_SERIAL). */
#include "chatd_proc.h"
#include "client.h"
#include "db_test_env.h"

#include "run_suite.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct config_database cfg;
static struct chatd_proc srv;

/* Runs in the runner process after the test, even when it failed: the database must
 * be up again for the suites that follow. */
static void restore_database(void)
{
    const char *dir = getenv("CHATD_TEST_DB_DIR");
    char command[1024];
    snprintf(command, sizeof(command), "%s/scripts/mariadb start '%s' >/dev/null", CHATD_SOURCE_DIR,
             dir ? dir : "");
    if (dir && system(command) != 0)
        fprintf(stderr, "could not restart the test MariaDB\n");
}

static void no_setup(void)
{
}

static json_t *request(struct test_client *c, const char *text)
{
    ck_assert_int_eq(test_client_send_str(c, text), 0);
    json_t *msg = test_client_read_json(c, 20000);
    ck_assert_msg(msg != NULL, "no reply to %s", text);
    return msg;
}

static const char *result_of(const json_t *msg)
{
    const char *r = json_string_value(json_object_get(msg, "result"));
    return r ? r : "(none)";
}

/* Whether /healthz's status line contains `status` within timeout_ms (polled). */
static int health_is(int admin_port, const char *status, int timeout_ms)
{
    long long until = chatd_now_ms() + timeout_ms;
    do {
        char *answer = test_http_get(admin_port, "/healthz");
        int match = answer && strstr(answer, status) != NULL;
        free(answer);
        if (match)
            return 1;
        chatd_sleep_ms(100);
    } while (chatd_now_ms() < until);
    return 0;
}

START_TEST(pool_rides_out_a_database_restart)
{
    db_test_config(&cfg);
    int admin_port = test_free_port("127.0.0.1");
    ck_assert_int_gt(admin_port, 0);
    char extra[2048];
    snprintf(extra, sizeof(extra),
             "[database]\nenable = yes\nsocket = %s\nuser = %s\nname = %s\nworkers = 2\n"
             "job_timeout_ms = 1500\nconnect_timeout = 1\n"
             "[admin]\nenable = yes\nlisten = 127.0.0.1:%d\n",
             cfg.socket, cfg.user, cfg.name, admin_port);
    struct chatd_proc_options opts = {
        .enable = "ping, dbprobe", .plugin_dir = CHATD_FIXTURE_DIR, .extra_conf = extra};
    ck_assert_msg(chatd_proc_start(&srv, &opts) == 0, "chatd did not start");
    struct test_client *worker = test_client_connect(srv.host, srv.port, 0);
    struct test_client *pinger = test_client_connect(srv.host, srv.port, 0);
    ck_assert(worker && pinger);

    json_t *msg = request(worker, "{\"cmd\":\"db_echo\",\"text\":\"before\"}");
    ck_assert_str_eq(result_of(msg), "success");
    json_decref(msg);

    ck_assert_msg(health_is(admin_port, "200 OK", 1000), "/healthz is not ok at the start");

    /* The database dies at once, as in a crash. */
    db_test_server("kill");

    /* /healthz tells within seconds, though no client has asked for the database. */
    ck_assert_msg(health_is(admin_port, "503", 5000), "/healthz still ok 5 s into the outage");

    /* A database request during the outage gets an answer, and soon. */
    long long sent = chatd_now_ms();
    ck_assert_int_eq(test_client_send_str(worker, "{\"cmd\":\"db_echo\",\"text\":\"during\"}"), 0);
    /* Meanwhile ping, which needs no database, answers at full speed. */
    long long worst = 0;
    for (int i = 0; i < 20; i++) {
        long long t = chatd_now_ms();
        msg = request(pinger, "{\"cmd\":\"ping\"}");
        ck_assert_str_eq(result_of(msg), "success");
        json_decref(msg);
        if (chatd_now_ms() - t > worst)
            worst = chatd_now_ms() - t;
        chatd_sleep_ms(20);
    }
    ck_assert_msg(worst < 100, "a ping took %lld ms during the outage", worst);
    msg = test_client_read_json(worker, 20000);
    ck_assert_msg(msg != NULL, "no answer to a database request during the outage");
    long long answered = chatd_now_ms() - sent;
    ck_assert_msg(strcmp(result_of(msg), "success") != 0, "a write succeeded without a database");
    json_decref(msg);
    ck_assert_msg(answered < 5000, "the request took %lld ms to be answered", answered);
    /* A job that may not be repeated fails cleanly too. */
    msg = request(worker, "{\"cmd\":\"db_sleep\",\"seconds\":0}");
    ck_assert_msg(strcmp(result_of(msg), "success") != 0, "a query succeeded without a database");
    json_decref(msg);

    db_test_server("start");

    /* The pool reconnects on its own: the first idempotent request after the database's
     * return succeeds (a lost connection is retried once, at once), without restarting
     * chatd and without the client retrying. */
    msg = request(worker, "{\"cmd\":\"db_echo\",\"text\":\"after\"}");
    ck_assert_msg(strcmp(result_of(msg), "success") == 0,
                  "the first request after the database's return got %s", result_of(msg));
    json_decref(msg);
    msg = request(pinger, "{\"cmd\":\"ping\"}");
    json_decref(msg);
    ck_assert_msg(health_is(admin_port, "200 OK", 5000), "/healthz not ok again after the outage");

    test_client_close(worker);
    test_client_close(pinger);
    int rc = chatd_proc_stop(&srv, CHATD_PROC_STOP_TIMEOUT_MS);
    chatd_proc_cleanup(&srv);
    ck_assert_int_eq(rc, 0);
    db_test_cleanup(&cfg);
}
END_TEST

/* Posts are committed in batches, two in flight, each waiting for its turn to commit:
 * a batch whose job never ran (no connection) must not keep the next one waiting for
 * ever. Several clients post while the database dies and comes back. */
#define POSTERS 8

START_TEST(posting_rides_out_a_database_restart)
{
    db_test_config(&cfg);
    char extra[2048];
    snprintf(extra, sizeof(extra),
             "[database]\nenable = yes\nsocket = %s\nuser = %s\nname = %s\nworkers = 4\n"
             "job_timeout_ms = 1500\nconnect_timeout = 1\n",
             cfg.socket, cfg.user, cfg.name);
    struct chatd_proc_options opts = {
        .enable = "ping, deliverer", .plugin_dir = CHATD_FIXTURE_DIR, .extra_conf = extra};
    ck_assert_msg(chatd_proc_start(&srv, &opts) == 0, "chatd did not start");
    struct test_client *posters[POSTERS];
    for (int i = 0; i < POSTERS; i++)
        ck_assert((posters[i] = test_client_connect(srv.host, srv.port, 0)) != NULL);
    static const char post[] = "{\"cmd\":\"post\",\"from\":\"ann\",\"to\":\"bob\",\"text\":\"x\"}";
    for (int round = 0; round < 12; round++) {
        if (round == 4)
            db_test_server("kill");
        if (round == 8)
            db_test_server("start");
        for (int i = 0; i < POSTERS; i++)
            ck_assert_int_eq(test_client_send_str(posters[i], post), 0);
        for (int i = 0; i < POSTERS; i++) {
            json_t *msg = test_client_read_json(posters[i], 20000);
            ck_assert_msg(msg != NULL, "round %d: a post was not answered", round);
            json_decref(msg);
        }
    }
    /* Back to normal: posts are committed again (the pool reconnects by itself). */
    int committed = 0;
    for (long long until = chatd_now_ms() + 15000; !committed && chatd_now_ms() < until;) {
        json_t *msg = request(posters[0], post);
        committed = strcmp(result_of(msg), "success") == 0;
        json_decref(msg);
        if (!committed)
            chatd_sleep_ms(200);
    }
    ck_assert_msg(committed, "no post was committed after the database came back");
    for (int i = 0; i < POSTERS; i++)
        test_client_close(posters[i]);
    int rc = chatd_proc_stop(&srv, CHATD_PROC_STOP_TIMEOUT_MS);
    chatd_proc_cleanup(&srv);
    ck_assert_msg(rc == 0, "chatd did not stop cleanly (%d)", rc);
    db_test_cleanup(&cfg);
}
END_TEST

static Suite *outage_suite(void)
{
    Suite *s = suite_create("outage");
    TCase *tc = tcase_create("outage");
    tcase_add_unchecked_fixture(tc, no_setup, restore_database);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, pool_rides_out_a_database_restart);
    tcase_add_test(tc, posting_rides_out_a_database_restart);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_run_suite(outage_suite());
}
