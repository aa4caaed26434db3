/* test_jobs.c - jobs seen from clients of a real chatd: each session's requests are
 * answered in the order sent while many sessions' jobs run at once; a full queue of CPU
 * jobs answers busy at once; a job whose client reset its connection is not run; and a
 * plugin whose migration fails stops the start with a message naming the plugin, the
 * version and MariaDB's error. */
#include "chatd_proc.h"
#include "client.h"
#include "db_test_env.h"

#include "run_suite.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct config_database cfg;

static void database_conf(char *out, size_t len)
{
    snprintf(out, len, "[database]\nenable = yes\nsocket = %s\nuser = %s\nname = %s\nworkers = 4\n",
             cfg.socket, cfg.user, cfg.name);
}

START_TEST(each_session_is_answered_in_order_while_sessions_run_in_parallel)
{
    db_test_config(&cfg);
    char extra[1024];
    database_conf(extra, sizeof(extra));
    struct chatd_proc srv;
    struct chatd_proc_options opts = {
        .enable = "ping, dbprobe", .plugin_dir = CHATD_FIXTURE_DIR, .extra_conf = extra};
    ck_assert_msg(chatd_proc_start(&srv, &opts) == 0, "chatd did not start");

    enum { SESSIONS = 8, REQUESTS = 40 };
    struct test_client *c[SESSIONS];
    for (int s = 0; s < SESSIONS; s++) {
        c[s] = test_client_connect(srv.host, srv.port, 0);
        ck_assert(c[s] != NULL);
    }
    /* Every session pipelines all its requests in one write: database jobs, mixed with
     * pings that need no job, so a later ping could overtake an earlier job if the
     * server let it. */
    for (int s = 0; s < SESSIONS; s++) {
        char burst[REQUESTS * 96];
        size_t used = 0;
        for (int i = 0; i < REQUESTS; i++)
            used +=
                (size_t)snprintf(burst + used, sizeof(burst) - used,
                                 i % 3 == 2 ? "{\"cmd\":\"ping\",\"id\":%d}"
                                            : "{\"cmd\":\"db_echo\",\"text\":\"s%di%d\",\"id\":%d}",
                                 i % 3 == 2 ? i : s, i, i);
        ck_assert_int_eq(test_client_send(c[s], burst, used, TEST_CLIENT_TIMEOUT_MS), 0);
    }
    for (int s = 0; s < SESSIONS; s++) {
        for (int i = 0; i < REQUESTS; i++) {
            json_t *msg = test_client_read_json(c[s], 20000);
            ck_assert_msg(msg != NULL, "session %d: no reply %d", s, i);
            ck_assert_int_eq(json_integer_value(json_object_get(msg, "id")), i);
            ck_assert_str_eq(json_string_value(json_object_get(msg, "result")), "success");
            json_decref(msg);
        }
        test_client_close(c[s]);
    }
    int rc = chatd_proc_stop(&srv, CHATD_PROC_STOP_TIMEOUT_MS);
    chatd_proc_cleanup(&srv);
    ck_assert_int_eq(rc, 0);
    db_test_cleanup(&cfg);
}
END_TEST

/* chatd's CPU time so far, in seconds. */
static double cpu_seconds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    unsigned long utime = 0, stime = 0;
    int fields =
        fscanf(f, "%*d %*s %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime);
    fclose(f);
    ck_assert_int_eq(fields, 2);
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* A session resumed after one job, whose next request waits on another job while more
 * requests wait behind it, must stop reading: no busy loop on its readable socket, and
 * no idle timeout while its request is in flight. */
START_TEST(a_session_waiting_for_a_job_neither_spins_nor_times_out)
{
    db_test_config(&cfg);
    char extra[1024];
    database_conf(extra, sizeof(extra));
    struct chatd_proc srv;
    struct chatd_proc_options opts = {.enable = "ping, dbprobe",
                                      .plugin_dir = CHATD_FIXTURE_DIR,
                                      .server_conf = "idle_timeout = 1\n",
                                      .extra_conf = extra};
    ck_assert_msg(chatd_proc_start(&srv, &opts) == 0, "chatd did not start");
    struct test_client *c = test_client_connect(srv.host, srv.port, 0);
    ck_assert(c != NULL);
    const char *burst = "{\"cmd\":\"db_sleep\",\"seconds\":0,\"id\":1}"
                        "{\"cmd\":\"db_sleep\",\"seconds\":3,\"id\":2}"
                        "{\"cmd\":\"ping\",\"id\":3}";
    ck_assert_int_eq(test_client_send(c, burst, strlen(burst), TEST_CLIENT_TIMEOUT_MS), 0);
    json_t *first = test_client_read_json(c, 5000);
    ck_assert_msg(first != NULL, "no reply to the first job");
    json_decref(first);
    double before = cpu_seconds(srv.pid);
    for (json_int_t id = 2; id <= 3; id++) {
        json_t *msg = test_client_read_json(c, 10000);
        ck_assert_msg(msg != NULL, "no reply %d: the session was closed", (int)id);
        ck_assert_int_eq(json_integer_value(json_object_get(msg, "id")), id);
        ck_assert_str_eq(json_string_value(json_object_get(msg, "result")), "success");
        json_decref(msg);
    }
    double spent = cpu_seconds(srv.pid) - before;
    ck_assert_msg(spent < 1.0, "chatd used %.2f s of CPU while one job slept 3 s", spent);
    test_client_close(c);
    int rc = chatd_proc_stop(&srv, CHATD_PROC_STOP_TIMEOUT_MS);
    chatd_proc_cleanup(&srv);
    ck_assert_int_eq(rc, 0);
    db_test_cleanup(&cfg);
}
END_TEST

START_TEST(a_failed_migration_stops_the_start)
{
    db_test_config(&cfg);
    char dir[4096], conf[4096], text[2048], extra[1024];
    ck_assert_int_eq(chatd_tmpdir_make(dir, sizeof(dir)), 0);
    database_conf(extra, sizeof(extra));
    snprintf(text, sizeof(text),
             "[server]\nlisten = 127.0.0.1:1\n[plugins]\ndir = %s\nenable = bad_migration\n%s",
             CHATD_FIXTURE_DIR, extra);
    ck_assert_int_eq(chatd_file_write(dir, "chatd.conf", text, conf, sizeof(conf)), 0);
    const char *const args[] = {"-c", conf, NULL};
    struct chatd_run_result r;
    ck_assert_int_eq(chatd_run(args, 20000, &r), 0);
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strstr(r.err, "plugin 'bad_migration': migration 2 (a typo) failed: You have "
                                "an error in your SQL syntax") != NULL,
                  "stderr was: %s", r.err);
    ck_assert_msg(strstr(r.err, "(MariaDB error 1064)") != NULL, "stderr was: %s", r.err);
    chatd_run_result_free(&r);
    chatd_tmpdir_remove(dir);
    db_test_cleanup(&cfg);
}
END_TEST

static int admin_port;

/* chatd with dbprobe and one CPU worker, whose queue holds `queue_max` jobs, and its
 * admin listener on admin_port. */
static void start_one_cpu_worker(struct chatd_proc *srv, int queue_max)
{
    db_test_config(&cfg);
    static char extra[1024], server[128];
    database_conf(extra, sizeof(extra));
    admin_port = test_free_port("127.0.0.1");
    ck_assert_int_gt(admin_port, 0);
    size_t used = strlen(extra);
    snprintf(extra + used, sizeof(extra) - used, "[admin]\nenable = yes\nlisten = 127.0.0.1:%d\n",
             admin_port);
    snprintf(server, sizeof(server), "cpu_workers = 1\ncpu_queue_max = %d\n", queue_max);
    struct chatd_proc_options opts = {.enable = "ping, dbprobe",
                                      .plugin_dir = CHATD_FIXTURE_DIR,
                                      .server_conf = server,
                                      .extra_conf = extra};
    ck_assert_msg(chatd_proc_start(srv, &opts) == 0, "chatd did not start");
}

static void stop(struct chatd_proc *srv)
{
    int rc = chatd_proc_stop(srv, CHATD_PROC_STOP_TIMEOUT_MS);
    chatd_proc_cleanup(srv);
    ck_assert_int_eq(rc, 0);
    db_test_cleanup(&cfg);
}

static struct test_client *send_on_new(struct chatd_proc *srv, const char *request)
{
    struct test_client *c = test_client_connect(srv->host, srv->port, 0);
    ck_assert(c != NULL);
    ck_assert_int_eq(test_client_send_str(c, request), 0);
    return c;
}

/* The value of one unlabelled series of /metrics. */
static double metric(const char *name)
{
    char *text = test_http_get(admin_port, "/metrics");
    ck_assert_msg(text != NULL, "cannot reach the admin listener");
    char key[128];
    snprintf(key, sizeof(key), "\n%s ", name);
    const char *at = strstr(text, key);
    ck_assert_msg(at != NULL, "no %s in /metrics:\n%s", name, text);
    double value = atof(at + strlen(key));
    free(text);
    return value;
}

static const char *result_of(const json_t *msg)
{
    return json_string_value(json_object_get(msg, "result"));
}

#define LONG_SLEEP "{\"cmd\":\"cpu_sleep\",\"ms\":6000}"

/* One worker busy for 6 s and two jobs queued: every further one is answered busy long
 * before the first job could end (a queue that only timed jobs out would answer them
 * after seconds, an unbounded one never). chatd takes the six connections in an order of
 * its own, and a third job may find the queue full before the worker has taken the first
 * from it: so at least three answers come within 4 s (well before the first job ends),
 * all busy, and the rest are two or three successes and at most one more busy. */
START_TEST(a_full_cpu_queue_answers_busy_at_once)
{
    struct chatd_proc srv;
    start_one_cpu_worker(&srv, 2);
    enum { CLIENTS = 6 };
    struct test_client *c[CLIENTS];
    int answered[CLIENTS] = {0};
    for (int i = 0; i < CLIENTS; i++)
        c[i] = send_on_new(&srv, LONG_SLEEP);
    int busy = 0;
    long long deadline = chatd_now_ms() + 4000;
    while (busy < 3 && chatd_now_ms() < deadline) {
        for (int i = 0; i < CLIENTS; i++) {
            if (answered[i] || test_client_wait_readable(c[i], 50) <= 0)
                continue;
            json_t *msg = test_client_read_json(c[i], 1000);
            ck_assert_msg(msg != NULL, "client %d: readable but no answer", i);
            ck_assert_str_eq(result_of(msg), "busy");
            json_decref(msg);
            answered[i] = 1;
            busy++;
        }
    }
    ck_assert_msg(busy >= 3, "only %d of 6 answered busy while the queue was full", busy);
    int succeeded = 0;
    for (int i = 0; i < CLIENTS; i++) {
        if (answered[i])
            continue;
        json_t *msg = test_client_read_json(c[i], 30000);
        ck_assert_msg(msg != NULL, "client %d: no answer", i);
        if (strcmp(result_of(msg), "busy") == 0)
            busy++;
        else
            ck_assert_str_eq(result_of(msg), "success");
        succeeded += strcmp(result_of(msg), "success") == 0;
        json_decref(msg);
    }
    ck_assert_msg(busy <= 4 && succeeded >= 2, "%d busy, %d success of 6", busy, succeeded);
    ck_assert_int_ge((int)metric("chatd_cpu_jobs_rejected_busy_total"), 3);
    ck_assert_int_eq((int)metric("chatd_cpu_jobs_queue_max"), 2);
    ck_assert_int_eq((int)metric("chatd_jobs_rejected_busy_total"), 0);
    for (int i = 0; i < CLIENTS; i++)
        test_client_close(c[i]);
    stop(&srv);
}
END_TEST

static int cpu_runs(struct chatd_proc *srv)
{
    struct test_client *c = send_on_new(srv, "{\"cmd\":\"cpu_runs\"}");
    json_t *msg = test_client_read_json(c, 10000);
    ck_assert(msg != NULL);
    int runs = (int)json_integer_value(json_object_get(msg, "runs"));
    json_decref(msg);
    test_client_close(c);
    return runs;
}

/* A client that sends a request and resets its connection while the request's job
 * waits for a worker: the job is dropped before work() runs. */
START_TEST(a_job_whose_client_reset_is_not_run)
{
    struct chatd_proc srv;
    start_one_cpu_worker(&srv, 8);
    struct test_client *first = send_on_new(&srv, LONG_SLEEP);
    chatd_sleep_ms(200); /* let the worker take it */
    struct test_client *gone = send_on_new(&srv, "{\"cmd\":\"cpu_sleep\",\"ms\":1}");
    chatd_sleep_ms(300); /* let chatd queue its job */
    test_client_reset(gone);
    json_t *msg = test_client_read_json(first, 20000);
    ck_assert(msg != NULL);
    ck_assert_str_eq(result_of(msg), "success");
    json_decref(msg);
    /* One worker, one queue in order: once this one is answered, the gone client's job
     * has been taken (and dropped). */
    struct test_client *last = send_on_new(&srv, "{\"cmd\":\"cpu_sleep\",\"ms\":0}");
    msg = test_client_read_json(last, 20000);
    ck_assert(msg != NULL);
    ck_assert_str_eq(result_of(msg), "success");
    json_decref(msg);
    ck_assert_int_eq(cpu_runs(&srv), 2);
    ck_assert_int_eq((int)metric("chatd_cpu_jobs_dropped_closed_total"), 1);
    ck_assert_int_eq((int)metric("chatd_cpu_workers"), 1);
    ck_assert_int_eq((int)metric("chatd_cpu_jobs_completed_total"), 3);
    test_client_close(first);
    test_client_close(last);
    stop(&srv);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jobs");
    TCase *tc = tcase_create("jobs");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, each_session_is_answered_in_order_while_sessions_run_in_parallel);
    tcase_add_test(tc, a_session_waiting_for_a_job_neither_spins_nor_times_out);
    tcase_add_test(tc, a_failed_migration_stops_the_start);
    tcase_add_test(tc, a_full_cpu_queue_answers_busy_at_once);
    tcase_add_test(tc, a_job_whose_client_reset_is_not_run);
    suite_add_tcase(s, tc);
    return chatd_run_suite(s);
}
