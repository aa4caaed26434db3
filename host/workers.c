/* workers.c - the worker pool (see workers.h). Each worker takes jobs from one of two
 * bounded queues (database jobs, CPU jobs); finished jobs of both go to one completion
 * list that one libevent event, activated from the worker, drains on the loop thread.
 * Time budgets and the database's health are the watchdog's (db_watchdog.c). */
#include "workers.h"

#include "db.h"
#include "db_watchdog.h"
#include "log.h"
#include "plugin_loader.h"
#include "request.h"
#include "thread_name.h"
#include "workers_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* The nice value of the CPU queue's threads: hashing gets the cores the loop, the
 * database workers (and a local MariaDB) leave idle, so a login flood cannot slow the
 * commands of users already in. On Linux a nice value is per thread, and who = 0 is
 * the calling thread. */
#define CPU_WORKER_NICE 10

/* Reconnection backoff after a failed attempt: doubles from the first to the last. */
#define BACKOFF_FIRST_MS 100
#define BACKOFF_LAST_MS  5000

/* Hand a finished job to the loop thread (called with the lock held). */
static void pool_post_done(struct pool *pool, struct job *job)
{
    job->next = NULL;
    int was_empty = pool->done_head == NULL;
    if (pool->done_tail)
        pool->done_tail->next = job;
    else
        pool->done_head = job;
    pool->done_tail = job;
    if (job->status != 0)
        job->queue->stats.failed++;
    if (job->status == CHATD_ETIMEDOUT)
        job->queue->stats.timed_out++;
    /* One wake-up per batch: the loop drains the whole list each time. */
    if (was_empty)
        event_active(pool->done_ev, EV_READ, 0);
}

static void publish_connection(struct worker *w, int connected)
{
    pthread_mutex_lock(&w->pool->lock);
    w->conn_thread_id = connected ? w->db.thread_id : 0;
    w->conn_fd = connected ? (int)mysql_get_socket(w->db.conn) : -1;
    w->socket_shut = 0;
    pthread_mutex_unlock(&w->pool->lock);
}

/* A connection idle longer than this is pinged before it is lent: the server may have
 * restarted or dropped it meanwhile (wait_timeout), and a job that may not be repeated
 * should not be the one to find out. */
#define IDLE_CHECK_NS 5000000000LL

static int connect_worker(struct worker *w)
{
    struct pool *pool = w->pool;
    char err[512];
    publish_connection(w, 0);
    if (db_open(&w->db, pool->cfg, pool->password, err, sizeof(err)) < 0) {
        w->backoff_ms = w->backoff_ms ? w->backoff_ms * 2 : BACKOFF_FIRST_MS;
        if (w->backoff_ms > BACKOFF_LAST_MS)
            w->backoff_ms = BACKOFF_LAST_MS;
        w->next_attempt_ns = now_ns() + w->backoff_ms * 1000000;
        log_warn("%s; next attempt in %lld ms", err, (long long)w->backoff_ms);
        pthread_mutex_lock(&pool->lock);
        pool->database_up = 0;
        w->failed_generation = pool->up_generation;
        pthread_mutex_unlock(&pool->lock);
        return CHATD_EDBLOST;
    }
    publish_connection(w, 1);
    pthread_mutex_lock(&pool->lock);
    if (w->backoff_ms || w->connected_once) {
        pool->reconnects++;
        log_info("database connection re-established");
    }
    if (!pool->database_up)
        pool->up_generation++;
    pool->database_up = 1;
    pthread_mutex_unlock(&pool->lock);
    w->connected_once = 1;
    w->backoff_ms = 0;
    w->next_attempt_ns = 0;
    return 0;
}

/* Make sure the worker has a live connection, without retrying faster than the
 * backoff allows: while the database is down, jobs fail fast instead of queueing up
 * behind connection attempts. The backoff is skipped once the database is known to be
 * back (another worker or the watchdog's probe got through). */
static int ensure_connected(struct worker *w)
{
    struct pool *pool = w->pool;
    int64_t now = now_ns();
    if (w->db.conn && !w->db.broken) {
        if (now - w->last_used_ns < IDLE_CHECK_NS || mysql_ping(w->db.conn) == 0)
            return 0;
        w->db.broken = 1; /* stale: reconnect now, this is not an outage yet */
        w->next_attempt_ns = 0;
    }
    pthread_mutex_lock(&pool->lock);
    int back = pool->up_generation != w->failed_generation;
    pthread_mutex_unlock(&pool->lock);
    if (now < w->next_attempt_ns && !back)
        return CHATD_EDBLOST;
    return connect_worker(w);
}

static int run_job(struct worker *w, struct job *job)
{
    if (!(job->spec.flags & CHATD_JOB_DB))
        return job->spec.work(NULL, job->arg);
    int rc = ensure_connected(w);
    if (rc != 0)
        return rc;
    rc = job->spec.work(&w->db, job->arg);
    if (rc == CHATD_EDBLOST && (job->spec.flags & CHATD_JOB_IDEMPOTENT) &&
        !atomic_load(&w->db.killed)) {
        /* The connection was lost under the job: once, at once, on a new one. */
        pthread_mutex_lock(&w->pool->lock);
        w->pool->retries++;
        pthread_mutex_unlock(&w->pool->lock);
        if (connect_worker(w) == 0)
            rc = job->spec.work(&w->db, job->arg);
    }
    if (rc != 0 && w->db.conn && !w->db.broken)
        db_simple(&w->db, "ROLLBACK"); /* leave no transaction open for the next job */
    w->last_used_ns = now_ns();
    pthread_mutex_lock(&w->pool->lock);
    w->pool->database_up = w->db.conn && !w->db.broken;
    pthread_mutex_unlock(&w->pool->lock);
    return rc;
}

static struct job *queue_take(struct job_queue *q)
{
    struct job *job = q->ring[q->head];
    q->head = (q->head + 1) % q->cap;
    q->count--;
    return job;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct pool *pool = w->pool;
    struct job_queue *q = w->queue;
    thread_name_set(q == &pool->cpu ? "chatd-cpu" : "chatd-db");
    if (q == &pool->cpu)
        setpriority(PRIO_PROCESS, 0, CPU_WORKER_NICE);
    mysql_thread_init();
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (q->count == 0 && !pool->stopping)
            pthread_cond_wait(&q->has_work, &pool->lock);
        if (q->count == 0)
            break; /* stopping, and nothing left to do */
        struct job *job = queue_take(q);
        job->started_ns = now_ns();
        job->deadline_ns = job->started_ns + job->budget_ns;
        q->stats.wait_ns += (uint64_t)(job->started_ns - job->submitted_ns);
        if (job->req && request_gone(job->req)) {
            /* Its client left while it waited: nobody would read the answer. */
            q->stats.dropped_closed++;
            job->status = CHATD_ECLOSED;
            pool_post_done(pool, job);
            continue;
        }
        w->running = job;
        atomic_store(&w->db.killed, 0);
        pthread_mutex_unlock(&pool->lock);

        int status = run_job(w, job);
        if (atomic_load(&w->db.killed)) {
            /* Some statements (SLEEP) end early without an error when killed; the job
             * still overran its budget. */
            status = CHATD_ETIMEDOUT;
            /* A KILL QUERY sent for this job may still be on its way; a fresh connection
             * makes sure it cannot hit the next job's statement. */
            publish_connection(w, 0);
            db_close(&w->db);
            w->next_attempt_ns = 0;
        }

        pthread_mutex_lock(&pool->lock);
        w->running = NULL;
        job->status = status;
        q->stats.run_ns += (uint64_t)(now_ns() - job->started_ns);
        pool_post_done(pool, job);
    }
    pthread_mutex_unlock(&pool->lock);
    publish_connection(w, 0);
    db_close(&w->db);
    mysql_thread_end();
    return NULL;
}

/* Loop thread: run the done callbacks of every finished job. */
static void on_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pool *pool = arg;
    pthread_mutex_lock(&pool->lock);
    struct job *job = pool->done_head;
    pool->done_head = pool->done_tail = NULL;
    pthread_mutex_unlock(&pool->lock);
    uint64_t completed_db = 0, completed_cpu = 0;
    while (job) {
        struct job *next = job->next;
        job->spec.done(job->req, job->arg, job->status);
        job->plugin->pending_jobs--;
        if (job->req)
            request_release(job->req);
        if (job->queue == &pool->db)
            completed_db++;
        else
            completed_cpu++;
        free(job);
        job = next;
    }
    pthread_mutex_lock(&pool->lock);
    pool->db.stats.completed += completed_db;
    pool->cpu.stats.completed += completed_cpu;
    pthread_mutex_unlock(&pool->lock);
}

static int queue_init(struct job_queue *q, int64_t cap, size_t workers)
{
    q->cap = (size_t)cap;
    q->ring = calloc(q->cap, sizeof(*q->ring));
    q->stats.queue_max = q->cap;
    q->stats.workers = workers;
    return q->ring ? 0 : -1;
}

/* 0 workers for the CPU queue: one per online core, as hashing is bound by the cores. */
static size_t cpu_workers(const struct pool_cpu_config *cpu)
{
    if (cpu->workers > 0)
        return (size_t)cpu->workers;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores > 0 ? (size_t)cores : 1;
}

struct pool *pool_new(struct event_base *base, const struct config_database *cfg,
                      const struct pool_cpu_config *cpu, char *err, size_t errlen)
{
    struct pool *pool = calloc(1, sizeof(*pool));
    if (!pool) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pool->base = base;
    pool->cfg = cfg;
    size_t n_db = (size_t)cfg->workers, n_cpu = cpu_workers(cpu);
    int queues = queue_init(&pool->db, cfg->queue_max, n_db);
    queues |= queue_init(&pool->cpu, cpu->queue_max, n_cpu);
    pool->n_workers = n_db + n_cpu;
    pool->workers = calloc(pool->n_workers, sizeof(*pool->workers));
    pool->done_ev = event_new(base, -1, 0, on_done, pool);
    pool->database_up = 1; /* until a connection attempt says otherwise */
    if (queues < 0 || !pool->workers || !pool->done_ev) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (cfg->enable && db_load_password(cfg, &pool->password, err, errlen) < 0)
        goto fail;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->db.has_work, NULL);
    pthread_cond_init(&pool->cpu.has_work, NULL);
    pthread_cond_init(&pool->watchdog_wake, NULL);
    size_t n_started = 0;
    for (; n_started < pool->n_workers; n_started++) {
        struct worker *w = &pool->workers[n_started];
        w->pool = pool;
        w->queue = n_started < n_db ? &pool->db : &pool->cpu;
        w->conn_fd = -1;
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
            break;
    }
    if (n_started < pool->n_workers) {
        snprintf(err, errlen, "cannot start worker threads");
        pool->n_workers = n_started;
        pool_free(pool);
        return NULL;
    }
    if (db_watchdog_start(pool, err, errlen) < 0) {
        pool_free(pool);
        return NULL;
    }
    return pool;
fail:
    if (pool->done_ev)
        event_free(pool->done_ev);
    free(pool->db.ring);
    free(pool->cpu.ring);
    free(pool->workers);
    free(pool->password);
    free(pool);
    return NULL;
}

int pool_submit(struct pool *pool, struct chatd_plugin *plugin, struct chatd_request *req,
                const struct chatd_job *job, void *arg)
{
    if (!job || !job->work || !job->done)
        return CHATD_EINVAL;
    if ((job->flags & CHATD_JOB_DB) && !pool->cfg->enable)
        return CHATD_ENOSYS;
    /* Plugins built before ABI 1.2 were promised CHATD_ESTATE from init; later ones may
     * start jobs there (a plugin refused after init is closed once they are done). None
     * may start one in its shutdown: it is unmapped right after. */
    if (plugin->state == PLUGIN_INITING && PLUGIN_BUILT_MINOR(plugin) < 2)
        return CHATD_ESTATE;
    if (plugin->state == PLUGIN_STOPPING)
        return CHATD_ESHUTDOWN;
    struct job *j = calloc(1, sizeof(*j));
    if (!j)
        return CHATD_ENOMEM;
    j->spec = *job;
    j->plugin = plugin;
    j->req = req;
    j->arg = arg;
    j->queue = (job->flags & CHATD_JOB_DB) ? &pool->db : &pool->cpu;
    j->submitted_ns = now_ns();
    uint32_t budget = job->timeout_ms ? job->timeout_ms : (uint32_t)pool->cfg->job_timeout_ms;
    j->budget_ns = (int64_t)budget * 1000000;

    struct job_queue *q = j->queue;
    pthread_mutex_lock(&pool->lock);
    if (pool->stopping || q->count == q->cap) {
        int rc = pool->stopping ? CHATD_ESHUTDOWN : CHATD_EBUSY;
        if (!pool->stopping)
            q->stats.rejected_busy++;
        pthread_mutex_unlock(&pool->lock);
        free(j);
        return rc;
    }
    q->ring[(q->head + q->count) % q->cap] = j;
    q->count++;
    q->stats.submitted++;
    pthread_cond_signal(&q->has_work);
    pthread_mutex_unlock(&pool->lock);

    plugin->pending_jobs++;
    if (req)
        request_hold(req);
    return 0;
}

size_t pool_room(struct pool *pool, uint32_t flags)
{
    const struct job_queue *q = (flags & CHATD_JOB_DB) ? &pool->db : &pool->cpu;
    pthread_mutex_lock(&pool->lock);
    size_t room = pool->stopping ? 0 : q->cap - q->count;
    pthread_mutex_unlock(&pool->lock);
    return room;
}

uint64_t pool_pending(struct pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    uint64_t pending = pool->db.stats.submitted - pool->db.stats.completed +
                       pool->cpu.stats.submitted - pool->cpu.stats.completed;
    pthread_mutex_unlock(&pool->lock);
    return pending;
}

void pool_get_stats(struct pool *pool, struct pool_stats *out)
{
    pthread_mutex_lock(&pool->lock);
    out->db = pool->db.stats;
    out->db.queue_depth = pool->db.count;
    out->cpu = pool->cpu.stats;
    out->cpu.queue_depth = pool->cpu.count;
    out->reconnects = pool->reconnects;
    out->retries = pool->retries;
    out->database_up = pool->database_up;
    pthread_mutex_unlock(&pool->lock);
}

/* Jobs still queued are not started: they end with CHATD_ESHUTDOWN (lock held). */
static void queue_cancel(struct pool *pool, struct job_queue *q)
{
    while (q->count > 0) {
        struct job *job = queue_take(q);
        job->status = CHATD_ESHUTDOWN;
        pool_post_done(pool, job);
    }
    pthread_cond_broadcast(&q->has_work);
}

void pool_free(struct pool *pool)
{
    if (!pool)
        return;
    /* Database jobs still running are killed, so stopping never waits for a long
     * query. */
    pthread_mutex_lock(&pool->lock);
    pool->stopping = 1;
    pool->abort_running = 1;
    queue_cancel(pool, &pool->db);
    queue_cancel(pool, &pool->cpu);
    pthread_cond_broadcast(&pool->watchdog_wake);
    pthread_mutex_unlock(&pool->lock);
    for (size_t i = 0; i < pool->n_workers; i++)
        pthread_join(pool->workers[i].thread, NULL);
    db_watchdog_stop(pool);
    on_done(-1, 0, pool); /* the callbacks of the jobs that finished last */
    event_free(pool->done_ev);
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->db.has_work);
    pthread_cond_destroy(&pool->cpu.has_work);
    pthread_cond_destroy(&pool->watchdog_wake);
    free(pool->db.ring);
    free(pool->cpu.ring);
    free(pool->workers);
    free(pool->password);
    free(pool);
}
