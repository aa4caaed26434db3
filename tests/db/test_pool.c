/* test_pool.c - the worker pool and the database helpers against the real MariaDB that
 * scripts/test starts: concurrency, the loop-thread rule, the bounded queue, time
 * budgets, parameter binding, and migrations. */
#include "db.h"
#include "db_test_env.h"
#include "log.h"
#include "migrations.h"
#include "plugin_loader.h"
#include "workers.h"

#include "run_suite.h"

#include <check.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct config_database cfg;
static struct pool_cpu_config cpu_cfg;
static struct event_base *base;
static struct pool *pool;
static struct chatd_plugin fake_plugin;
static pthread_t loop_thread;

/* What a test job did, filled in by work (worker) and done (loop). */
struct probe {
    const char *sql;
    int64_t sleep_ms; /* CPU jobs: how long work blocks */
    int worked;
    int status;
    int done;
    int done_seq; /* 1 for the first done callback of the test, 2 for the next... */
    int done_on_loop_thread;
};

static atomic_int running_now, running_max, done_count;

static void setup(void)
{
    evthread_use_pthreads();
    mysql_library_init(0, NULL, NULL);
    log_configure(CHATD_LOG_ERROR, 0, "test");
    db_test_config(&cfg);
    cpu_cfg = (struct pool_cpu_config){.workers = 2, .queue_max = 64};
    base = event_base_new();
    loop_thread = pthread_self();
    memset(&fake_plugin, 0, sizeof(fake_plugin));
    atomic_store(&running_now, 0);
    atomic_store(&running_max, 0);
    atomic_store(&done_count, 0);
}

static void start_pool(void)
{
    char err[512];
    pool = pool_new(base, &cfg, &cpu_cfg, err, sizeof(err));
    ck_assert_msg(pool != NULL, "%s", err);
}

static void teardown(void)
{
    pool_free(pool);
    pool = NULL;
    event_base_free(base);
    db_test_cleanup(&cfg);
}

static int probe_work(struct chatd_db *db, void *arg)
{
    struct probe *p = arg;
    int now = atomic_fetch_add(&running_now, 1) + 1;
    int seen = atomic_load(&running_max);
    while (now > seen && !atomic_compare_exchange_weak(&running_max, &seen, now))
        ;
    p->worked = 1;
    int rc = 0;
    if (p->sql)
        rc = db_exec(db, p->sql, NULL, 0, NULL, NULL);
    else if (p->sleep_ms)
        chatd_sleep_ms((int)p->sleep_ms);
    atomic_fetch_sub(&running_now, 1);
    return rc;
}

static void probe_done(struct chatd_request *req, void *arg, int status)
{
    (void)req;
    struct probe *p = arg;
    p->status = status;
    p->done = 1;
    p->done_seq = atomic_load(&done_count) + 1;
    p->done_on_loop_thread = pthread_equal(pthread_self(), loop_thread);
    atomic_fetch_add(&done_count, 1);
}

static int submit(struct probe *p, uint32_t flags, uint32_t timeout_ms)
{
    struct chatd_job job = {
        .work = probe_work, .done = probe_done, .flags = flags, .timeout_ms = timeout_ms};
    return pool_submit(pool, &fake_plugin, NULL, &job, p);
}

/* Run the loop until `count` jobs are done or `limit_ms` passes. */
static void run_until_done(int count, int64_t limit_ms)
{
    int64_t until = chatd_now_ms() + limit_ms;
    while (atomic_load(&done_count) < count && chatd_now_ms() < until) {
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        chatd_sleep_ms(1);
    }
}

START_TEST(pool_runs_jobs_concurrently_and_finishes_on_loop_thread)
{
    start_pool();
    struct probe probes[8] = {0};
    for (int i = 0; i < 8; i++) {
        probes[i].sql = "DO SLEEP(0.2)";
        ck_assert_int_eq(submit(&probes[i], CHATD_JOB_DB, 0), 0);
    }
    run_until_done(8, 10000);
    for (int i = 0; i < 8; i++) {
        ck_assert_msg(probes[i].done, "job %d never finished", i);
        ck_assert_int_eq(probes[i].status, 0);
        ck_assert_msg(probes[i].done_on_loop_thread, "done ran off the loop thread");
    }
    ck_assert_int_ge(atomic_load(&running_max), 2);
    ck_assert_int_le(atomic_load(&running_max), 4);
    ck_assert_uint_eq(fake_plugin.pending_jobs, 0);
    struct pool_stats stats;
    pool_get_stats(pool, &stats);
    ck_assert_uint_eq(stats.db.submitted, 8);
    ck_assert_uint_eq(stats.db.completed, 8);
    ck_assert_int_eq(stats.database_up, 1);
}
END_TEST

START_TEST(pool_refuses_at_once_when_queue_full)
{
    cpu_cfg.workers = 1;
    cpu_cfg.queue_max = 2;
    start_pool();
    struct probe blocker = {.sleep_ms = 300}, queued[2] = {{0}}, extra = {0};
    ck_assert_int_eq(submit(&blocker, 0, 0), 0);
    /* Wait until the worker has taken the blocker, so the queue is empty again. */
    for (int i = 0; i < 200 && atomic_load(&running_now) == 0; i++)
        chatd_sleep_ms(5);
    ck_assert_int_eq(submit(&queued[0], 0, 0), 0);
    ck_assert_int_eq(submit(&queued[1], 0, 0), 0);
    int64_t before = chatd_now_ms();
    ck_assert_int_eq(submit(&extra, 0, 0), CHATD_EBUSY);
    ck_assert_int_lt(chatd_now_ms() - before, 50);
    run_until_done(3, 10000);
    ck_assert(blocker.done && queued[0].done && queued[1].done);
    ck_assert(!extra.worked && !extra.done);
    struct pool_stats stats;
    pool_get_stats(pool, &stats);
    ck_assert_uint_eq(stats.cpu.rejected_busy, 1);
    ck_assert_uint_eq(stats.db.rejected_busy, 0);
}
END_TEST

START_TEST(pool_kills_query_past_its_budget)
{
    start_pool();
    struct probe slow = {.sql = "SELECT SLEEP(5)"};
    int64_t before = chatd_now_ms();
    ck_assert_int_eq(submit(&slow, CHATD_JOB_DB, 300), 0);
    run_until_done(1, 10000);
    ck_assert(slow.done);
    ck_assert_int_eq(slow.status, CHATD_ETIMEDOUT);
    ck_assert_int_lt(chatd_now_ms() - before, 3000);
    /* The pool is healthy afterwards. */
    struct probe next = {.sql = "DO 1"};
    ck_assert_int_eq(submit(&next, CHATD_JOB_DB, 0), 0);
    run_until_done(2, 10000);
    ck_assert_int_eq(next.status, 0);
    struct pool_stats stats;
    pool_get_stats(pool, &stats);
    ck_assert_uint_eq(stats.db.timed_out, 1);
}
END_TEST

START_TEST(pool_counts_a_budget_from_when_the_job_starts)
{
    cfg.workers = 1;
    start_pool();
    struct probe blocker = {.sql = "DO SLEEP(0.6)"}, waiting = {.sql = "DO SLEEP(0.05)"};
    ck_assert_int_eq(submit(&blocker, CHATD_JOB_DB, 0), 0);
    ck_assert_int_eq(submit(&waiting, CHATD_JOB_DB, 300), 0);
    run_until_done(2, 10000);
    ck_assert_int_eq(blocker.status, 0);
    ck_assert_msg(waiting.worked, "a job that waited past its budget must still run");
    ck_assert_int_eq(waiting.status, 0);
}
END_TEST

/* Each kind of job has its own queue and workers: with every worker of one kind busy
 * and more of its jobs waiting, a job of the other kind still runs at once (it is done
 * before the blocker is). */
static void assert_runs_past_a_full_queue(uint32_t full_kind, uint32_t other_kind)
{
    struct probe blocker = {.sql = "DO SLEEP(1)", .sleep_ms = 1000};
    struct probe waiting = {.sql = "DO 1"}, other = {.sql = "DO 1"};
    if (!(full_kind & CHATD_JOB_DB))
        blocker.sql = waiting.sql = NULL;
    else
        other.sql = NULL;
    int before = atomic_load(&done_count);
    ck_assert_int_eq(submit(&blocker, full_kind, 0), 0);
    for (int i = 0; i < 200 && atomic_load(&running_now) == 0; i++)
        chatd_sleep_ms(5);
    ck_assert_int_eq(submit(&waiting, full_kind, 0), 0);
    ck_assert_int_eq(submit(&other, other_kind, 0), 0);
    run_until_done(before + 3, 10000);
    ck_assert(blocker.done && waiting.done && other.done);
    ck_assert_int_eq(other.status, 0);
    ck_assert_msg(other.done_seq < blocker.done_seq, "a job waited behind the other kind's");
}

START_TEST(pool_runs_cpu_and_database_jobs_apart)
{
    cfg.workers = 1;
    cpu_cfg.workers = 1;
    start_pool();
    assert_runs_past_a_full_queue(CHATD_JOB_DB, 0);
    assert_runs_past_a_full_queue(0, CHATD_JOB_DB);
    struct pool_stats stats;
    pool_get_stats(pool, &stats);
    ck_assert_uint_eq(stats.db.submitted, 3);
    ck_assert_uint_eq(stats.cpu.submitted, 3);
    ck_assert_uint_eq(stats.cpu.workers, 1);
    ck_assert_uint_eq(stats.db.workers, 1);
}
END_TEST

START_TEST(pool_refuses_database_job_without_database)
{
    cfg.enable = 0;
    start_pool();
    struct probe db_job = {.sql = "DO 1"}, cpu_job = {.sleep_ms = 1};
    ck_assert_int_eq(submit(&db_job, CHATD_JOB_DB, 0), CHATD_ENOSYS);
    ck_assert_int_eq(submit(&cpu_job, 0, 0), 0);
    run_until_done(1, 5000);
    ck_assert_int_eq(cpu_job.status, 0);
}
END_TEST

/* Rows read back by roundtrip_row. */
struct readback {
    struct chatd_value cols[8];
    char text[8][256];
    size_t ncols, rows;
};

static int roundtrip_row(const struct chatd_value *cols, size_t ncols, void *arg)
{
    struct readback *r = arg;
    r->rows++;
    r->ncols = ncols;
    for (size_t i = 0; i < ncols && i < 8; i++) {
        r->cols[i] = cols[i];
        if (cols[i].s) {
            memcpy(r->text[i], cols[i].s, cols[i].len < 255 ? cols[i].len : 255);
            r->cols[i].s = r->text[i];
        }
    }
    return 0;
}

START_TEST(db_binds_parameters_without_interpreting_them)
{
    struct chatd_db db = {0};
    char err[512];
    ck_assert_msg(db_open(&db, &cfg, "", err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(db_simple(&db, "CREATE TABLE t (id BIGINT PRIMARY KEY, s TEXT, b BLOB, "
                                    "n INT NULL) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"),
                     0);
    static const char evil[] = "Robert'); DROP TABLE t; -- \\\" ` ünïcødé 😀 %s \\n";
    static const char blob[] = {'a', 0, 'b', '\'', 0};
    struct chatd_value row[4] = {
        {.type = CHATD_PARAM_INT64, .i = INT64_MIN},
        {.type = CHATD_PARAM_TEXT, .s = evil, .len = strlen(evil)},
        {.type = CHATD_PARAM_BLOB, .s = blob, .len = sizeof(blob)},
        {.type = CHATD_PARAM_NULL},
    };
    uint64_t affected = 0;
    ck_assert_int_eq(db_exec(&db, "INSERT INTO t VALUES (?, ?, ?, ?)", row, 4, &affected, NULL), 0);
    ck_assert_uint_eq(affected, 1);
    struct readback r = {0};
    struct chatd_value key = {.type = CHATD_PARAM_TEXT, .s = evil, .len = strlen(evil)};
    ck_assert_int_eq(
        db_query(&db, "SELECT id, s, b, n FROM t WHERE s = ?", &key, 1, roundtrip_row, &r), 0);
    ck_assert_uint_eq(r.rows, 1);
    ck_assert_uint_eq(r.ncols, 4);
    ck_assert_int_eq(r.cols[0].type, CHATD_PARAM_INT64);
    ck_assert(r.cols[0].i == INT64_MIN);
    ck_assert_int_eq(r.cols[1].type, CHATD_PARAM_TEXT);
    ck_assert_uint_eq(r.cols[1].len, strlen(evil));
    ck_assert_mem_eq(r.cols[1].s, evil, strlen(evil));
    ck_assert_int_eq(r.cols[2].type, CHATD_PARAM_BLOB);
    ck_assert_uint_eq(r.cols[2].len, sizeof(blob));
    ck_assert_mem_eq(r.cols[2].s, blob, sizeof(blob));
    ck_assert_int_eq(r.cols[3].type, CHATD_PARAM_NULL);
    /* The table is still there: nothing in the text was executed. */
    ck_assert_int_eq(db_simple(&db, "SELECT 1 FROM t LIMIT 0"), 0);
    db_close(&db);
}
END_TEST

static int count_rows(const struct chatd_value *cols, size_t ncols, void *arg)
{
    (void)cols;
    (void)ncols;
    (*(size_t *)arg)++;
    return 0;
}

START_TEST(db_reads_values_longer_than_its_buffers)
{
    struct chatd_db db = {0};
    char err[512];
    ck_assert_msg(db_open(&db, &cfg, "", err, sizeof(err)) == 0, "%s", err);
    struct readback r = {0};
    struct chatd_value n = {.type = CHATD_PARAM_INT64, .i = 100000};
    ck_assert_int_eq(db_query(&db, "SELECT LENGTH(REPEAT('x', ?))", &n, 1, roundtrip_row, &r), 0);
    ck_assert_int_eq(r.cols[0].i, 100000);
    size_t rows = 0;
    ck_assert_int_eq(
        db_query(&db, "SELECT REPEAT('y', ?) UNION ALL SELECT 'short'", &n, 1, count_rows, &rows),
        0);
    ck_assert_uint_eq(rows, 2);
    db_close(&db);
}
END_TEST

START_TEST(db_rejects_wrong_parameter_count)
{
    struct chatd_db db = {0};
    char err[512];
    ck_assert_msg(db_open(&db, &cfg, "", err, sizeof(err)) == 0, "%s", err);
    struct chatd_value one = {.type = CHATD_PARAM_INT64, .i = 1};
    ck_assert_int_eq(db_exec(&db, "SELECT ?, ?", &one, 1, NULL, NULL), CHATD_EINVAL);
    ck_assert_int_eq(db_exec(&db, "SELEC 1", NULL, 0, NULL, NULL), CHATD_EDB);
    ck_assert_int_eq(db.last_errno, 1064);
    ck_assert_int_eq(db_exec(&db, "SELECT 1", NULL, 0, NULL, NULL), 0);
    db_close(&db);
}
END_TEST

/* INSERT INTO many (n) VALUES (?), (?), ... (rows of them). */
static char *insert_sql(size_t rows)
{
    char *sql = malloc(40 + 5 * rows);
    ck_assert_ptr_nonnull(sql);
    strcpy(sql, "INSERT INTO many (n) VALUES (?)");
    for (size_t i = 1; i < rows; i++)
        strcat(sql, ", (?)");
    return sql;
}

static int64_t many_sum(struct chatd_db *db)
{
    int64_t sum = -1;
    ck_assert_int_eq(db_query(db, "SELECT CAST(COALESCE(SUM(n), 0) AS SIGNED) FROM many", NULL, 0,
                              db_read_int64, &sum),
                     0);
    ck_assert_int_eq(db_simple(db, "DELETE FROM many"), 0);
    return sum;
}

START_TEST(db_binds_thousands_of_parameters_for_the_host_and_256_for_plugins)
{
    struct chatd_db db = {0};
    char err[512];
    ck_assert_msg(db_open(&db, &cfg, "", err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(db_simple(&db, "CREATE TABLE many (n BIGINT NOT NULL)"), 0);
    enum { HOST = 7 * 512, MOST = CHATD_DB_MAX_PARAMS };
    struct chatd_value *v = calloc(HOST, sizeof(*v));
    ck_assert_ptr_nonnull(v);
    for (size_t i = 0; i < HOST; i++)
        v[i] = (struct chatd_value){.type = CHATD_PARAM_INT64, .i = (int64_t)i};
    char *host = insert_sql(HOST), *over = insert_sql(MOST + 1), *most = insert_sql(MOST);
    /* The host's own statements (commit_batch.c's INSERTs) bind thousands. */
    ck_assert_int_eq(db_exec(&db, host, v, HOST, NULL, NULL), 0);
    ck_assert_int_eq(many_sum(&db), (int64_t)HOST * (HOST - 1) / 2);
    ck_assert_int_eq(db_exec(&db, over, v, MOST + 1, NULL, NULL), 0);
    ck_assert_int_eq(many_sum(&db), (int64_t)(MOST + 1) * MOST / 2);
    /* Through the host table, a plugin keeps the ABI's limit. */
    ck_assert_int_eq(db_plugin_exec(&db, most, v, MOST, NULL, NULL), 0);
    ck_assert_int_eq(many_sum(&db), (int64_t)MOST * (MOST - 1) / 2);
    ck_assert_int_eq(db_plugin_exec(&db, over, v, MOST + 1, NULL, NULL), CHATD_EINVAL);
    ck_assert_int_eq(db_plugin_query(&db, over, v, MOST + 1, db_read_int64, NULL), CHATD_EINVAL);
    ck_assert_int_eq(many_sum(&db), 0);
    free(host);
    free(over);
    free(most);
    free(v);
    db_close(&db);
}
END_TEST

static int read_int(const struct chatd_value *cols, size_t ncols, void *arg)
{
    if (ncols == 1 && cols[0].type == CHATD_PARAM_INT64)
        *(int64_t *)arg = cols[0].i;
    return 0;
}

START_TEST(migrations_apply_once_and_are_recorded)
{
    struct chatd_plugin *p;
    char err[1024];
    ck_assert_msg(plugin_open(CHATD_FIXTURE_DIR "/dbprobe.so", "dbprobe", &p, err, sizeof(err)) ==
                      0,
                  "%s", err);
    struct chatd_db db = {0};
    ck_assert_msg(db_open(&db, &cfg, "", err, sizeof(err)) == 0, "%s", err);
    ck_assert_msg(migrations_apply(&db, p, err, sizeof(err)) == 0, "%s", err);
    int64_t version = 0;
    struct chatd_value name = {.type = CHATD_PARAM_TEXT, .s = "dbprobe", .len = 7};
    db_query(&db, "SELECT version FROM chatd_schema WHERE plugin = ?", &name, 1, read_int,
             &version);
    ck_assert_int_eq(version, 2);
    /* A second start applies nothing: creating the table again would fail. */
    ck_assert_msg(migrations_apply(&db, p, err, sizeof(err)) == 0, "%s", err);
    int64_t tables = 0;
    db_query(&db,
             "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() "
             "AND table_name = 'dbprobe_items'",
             NULL, 0, read_int, &tables);
    ck_assert_int_eq(tables, 1);
    /* A database ahead of the plugin (a downgrade) is refused, not silently used. */
    ck_assert_int_eq(
        db_exec(&db, "UPDATE chatd_schema SET version = 5 WHERE plugin = ?", &name, 1, NULL, NULL),
        0);
    ck_assert_int_eq(migrations_apply(&db, p, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "schema version 5, newer than the 2 this build knows") != NULL,
                  "message was: %s", err);
    db_close(&db);
    plugin_close(p);
}
END_TEST

START_TEST(migrations_refuse_a_broken_one_naming_plugin_version_and_error)
{
    struct chatd_plugin *p;
    char err[1024];
    ck_assert_msg(plugin_open(CHATD_FIXTURE_DIR "/bad_migration.so", "bad_migration", &p, err,
                              sizeof(err)) == 0,
                  "%s", err);
    struct chatd_db db = {0};
    ck_assert_msg(db_open(&db, &cfg, "", err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(migrations_apply(&db, p, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "migration 2 (a typo) failed: You have an error in your SQL "
                              "syntax") != NULL,
                  "message was: %s", err);
    ck_assert_msg(strstr(err, "(MariaDB error 1064)") != NULL, "message was: %s", err);
    /* Version 1 was applied and recorded; version 2 was not. */
    int64_t version = 0;
    struct chatd_value name = {.type = CHATD_PARAM_TEXT, .s = "bad_migration", .len = 13};
    db_query(&db, "SELECT version FROM chatd_schema WHERE plugin = ?", &name, 1, read_int,
             &version);
    ck_assert_int_eq(version, 1);
    db_close(&db);
    plugin_close(p);
}
END_TEST

static Suite *pool_suite(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("pool");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, pool_runs_jobs_concurrently_and_finishes_on_loop_thread);
    tcase_add_test(tc, pool_refuses_at_once_when_queue_full);
    tcase_add_test(tc, pool_kills_query_past_its_budget);
    tcase_add_test(tc, pool_counts_a_budget_from_when_the_job_starts);
    tcase_add_test(tc, pool_runs_cpu_and_database_jobs_apart);
    tcase_add_test(tc, pool_refuses_database_job_without_database);
    tcase_add_test(tc, db_binds_parameters_without_interpreting_them);
    tcase_add_test(tc, db_reads_values_longer_than_its_buffers);
    tcase_add_test(tc, db_rejects_wrong_parameter_count);
    tcase_add_test(tc, db_binds_thousands_of_parameters_for_the_host_and_256_for_plugins);
    tcase_add_test(tc, migrations_apply_once_and_are_recorded);
    tcase_add_test(tc, migrations_refuse_a_broken_one_naming_plugin_version_and_error);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_run_suite(pool_suite());
}
