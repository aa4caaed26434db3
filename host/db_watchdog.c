/* db_watchdog.c - the worker pool's watchdog thread (see db_watchdog.h): with its own
 * database connection it kills queries past their budget (counted from when the job
 * started to run: time in the queue is not the job's doing), and keeps the pool's
 * database_up current. */
#include "db_watchdog.h"

#include "log.h"
#include "thread_name.h"
#include "workers_internal.h"

#include <sys/socket.h>
#include <stdio.h>

/* How often the watchdog looks for jobs past their budget. */
#define WATCHDOG_TICK_MS 20
/* How long a killed query may take to stop before its socket is shut down: a server
 * that hangs never acts on KILL QUERY. */
#define KILL_GRACE_NS 1000000000LL
/* Read and write timeout of the watchdog's own connection, so a hung server cannot
 * hold it either. */
#define KILLER_IO_TIMEOUT_S 2
/* How often the watchdog tries to reach a database that is down. */
#define PROBE_INTERVAL_NS 250000000LL
/* How often the watchdog asks a database that is up whether it still answers. */
#define HEALTH_INTERVAL_NS 1000000000LL

/* Watchdog thread: its own connection, opened again when missing or broken. 0, or -1
 * with the reason in err. */
static int killer_ready(struct pool *pool, char *err, size_t errlen)
{
    if (pool->killer.conn && !pool->killer.broken)
        return 0;
    return db_open(&pool->killer, pool->cfg, pool->password, err, errlen) < 0 ? -1 : 0;
}

static void kill_query(struct pool *pool, unsigned long thread_id)
{
    char err[512];
    if (killer_ready(pool, err, sizeof(err)) < 0) {
        log_warn("watchdog cannot kill a query past its budget: %s", err);
        return;
    }
    struct chatd_value id = {.type = CHATD_PARAM_INT64, .i = (int64_t)thread_id};
    if (db_exec(&pool->killer, "KILL QUERY ?", &id, 1, NULL, NULL) == 0)
        log_warn("killed a database query (connection %lu): %s", thread_id,
                 pool->abort_running ? "chatd is stopping" : "past its time budget");
}

/* Watchdog thread: one statement on its own connection (opened when missing). Bounded
 * by that connection's I/O timeout, as its KILL QUERY is. */
static int database_answers(struct pool *pool)
{
    char err[512];
    return killer_ready(pool, err, sizeof(err)) == 0 && db_simple(&pool->killer, "DO 1") == 0;
}

static void *watchdog_main(void *arg)
{
    struct pool *pool = arg;
    thread_name_set("chatd-watchdog");
    mysql_thread_init();
    pthread_mutex_lock(&pool->lock);
    while (!pool->watchdog_stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += WATCHDOG_TICK_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&pool->watchdog_wake, &pool->lock, &until);
        int64_t now = now_ns();

        /* While the database is up, ask it now and then whether it still answers, so
         * that /healthz and chatd_db_up say so at once, not only once a job fails. */
        if (pool->watch_health && pool->cfg->enable && pool->database_up &&
            now >= pool->next_health_ns) {
            pool->next_health_ns = now + HEALTH_INTERVAL_NS;
            pthread_mutex_unlock(&pool->lock);
            int up = database_answers(pool);
            pthread_mutex_lock(&pool->lock);
            if (!up && pool->database_up) {
                pool->database_up = 0;
                pool->next_probe_ns = now + PROBE_INTERVAL_NS;
                log_warn("the database does not answer");
            }
        }

        /* While the database is down, probe it, so that workers waiting out their
         * backoff learn at once when it is back. */
        if (pool->cfg->enable && !pool->database_up && now >= pool->next_probe_ns) {
            pool->next_probe_ns = now + PROBE_INTERVAL_NS;
            pthread_mutex_unlock(&pool->lock);
            char err[512];
            int up = db_open(&pool->killer, pool->cfg, pool->password, err, sizeof(err)) == 0;
            pthread_mutex_lock(&pool->lock);
            if (up && !pool->database_up) {
                pool->database_up = 1;
                pool->up_generation++;
                log_info("database answers again");
            }
        }

        unsigned long victims[256];
        size_t n_victims = 0;
        for (size_t i = 0; i < pool->n_workers; i++) {
            struct worker *w = &pool->workers[i];
            if (!w->running || !(w->running->spec.flags & CHATD_JOB_DB))
                continue;
            int overdue = pool->abort_running || now > w->running->deadline_ns;
            if (overdue && !atomic_load(&w->db.killed) && w->conn_thread_id && pool->cfg->enable) {
                atomic_store(&w->db.killed, 1);
                w->killed_at_ns = now;
                if (n_victims < 256)
                    victims[n_victims++] = w->conn_thread_id;
            } else if (atomic_load(&w->db.killed) && !w->socket_shut && w->conn_fd >= 0 &&
                       now > w->killed_at_ns + KILL_GRACE_NS) {
                /* KILL QUERY did not end it: the server hangs. Cutting the socket makes
                 * the worker's blocked read fail, so the job can end. */
                shutdown(w->conn_fd, SHUT_RDWR);
                w->socket_shut = 1;
                log_warn("database did not stop a killed query within %lld ms; connection cut",
                         KILL_GRACE_NS / 1000000);
            }
        }
        if (n_victims == 0)
            continue;
        pthread_mutex_unlock(&pool->lock);
        for (size_t i = 0; i < n_victims; i++)
            kill_query(pool, victims[i]);
        pthread_mutex_lock(&pool->lock);
    }
    pthread_mutex_unlock(&pool->lock);
    db_close(&pool->killer);
    mysql_thread_end();
    return NULL;
}

int db_watchdog_start(struct pool *pool, char *err, size_t errlen)
{
    pool->killer.io_timeout_s = KILLER_IO_TIMEOUT_S;
    if (pthread_create(&pool->watchdog, NULL, watchdog_main, pool) != 0) {
        snprintf(err, errlen, "cannot start the watchdog thread");
        return -1;
    }
    pool->watchdog_started = 1;
    return 0;
}

void db_watchdog_stop(struct pool *pool)
{
    if (!pool->watchdog_started)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->watchdog_stop = 1;
    pthread_cond_broadcast(&pool->watchdog_wake);
    pthread_mutex_unlock(&pool->lock);
    pthread_join(pool->watchdog, NULL);
}

void pool_watch_health(struct pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    pool->watch_health = 1;
    pthread_mutex_unlock(&pool->lock);
}
