/* workers.h - the worker pool: threads that run plugin jobs off the loop thread. Two
 * bounded queues, each with threads of its own: database jobs (a connection per worker,
 * reconnection with backoff) and CPU jobs (no connection), so that a flood of password
 * hashes never delays a database command; counters for both. Its watchdog thread (time budgets,
 * database health) is in db_watchdog.h. */
#ifndef CHATD_HOST_WORKERS_H
#define CHATD_HOST_WORKERS_H

#include "config.h"

#include <chatd/plugin.h>
#include <event2/event.h>
#include <stdint.h>

struct pool;

/* One of the pool's two queues: database jobs (CHATD_JOB_DB) or the others. */
struct queue_stats {
    uint64_t submitted;      /* jobs accepted */
    uint64_t completed;      /* done callbacks run */
    uint64_t rejected_busy;  /* submits refused because the queue was full */
    uint64_t failed;         /* jobs that ended with a non-zero status */
    uint64_t timed_out;      /* jobs that ended with CHATD_ETIMEDOUT */
    uint64_t dropped_closed; /* jobs not run: their client had gone (CHATD_ECLOSED) */
    uint64_t wait_ns;        /* total time jobs waited in the queue */
    uint64_t run_ns;         /* total time jobs ran */
    size_t queue_depth;      /* jobs waiting right now */
    size_t queue_max;
    size_t workers;
};

struct pool_stats {
    struct queue_stats db;  /* jobs with CHATD_JOB_DB */
    struct queue_stats cpu; /* jobs without: CPU work such as password hashing */
    uint64_t reconnects;    /* connections re-established after a loss */
    uint64_t retries;       /* idempotent jobs run a second time */
    int database_up;        /* the last connection attempt or query succeeded */
};

/* The queue of jobs without CHATD_JOB_DB and its threads ([server] cpu_workers and
 * cpu_queue_max; 0 workers: one per online core). */
struct pool_cpu_config {
    int64_t workers;
    int64_t queue_max;
};

/* Start cfg->workers threads for database jobs and cpu->workers for the others. With
 * the database enabled each database worker connects when its first job arrives, and
 * again after a loss, so chatd starts and keeps serving database-free commands while the
 * database is down. */
struct pool *pool_new(struct event_base *base, const struct config_database *cfg,
                      const struct pool_cpu_config *cpu, char *err, size_t errlen);
/* Queue a job (loop thread) on the queue of its kind. The host's wrapper holds `req`
 * until done has run. A job whose request's client has gone by the time a worker takes
 * it (request_gone) is not run: its done gets CHATD_ECLOSED. */
int pool_submit(struct pool *pool, struct chatd_plugin *plugin, struct chatd_request *req,
                const struct chatd_job *job, void *arg);
/* Let the workers finish the queue, join them, and run the last done callbacks. */
void pool_free(struct pool *pool);
void pool_get_stats(struct pool *pool, struct pool_stats *out);
/* Jobs submitted whose done callback has not run yet. */
uint64_t pool_pending(struct pool *pool);
/* Jobs with these CHATD_JOB_* flags that could still be queued now (0 while stopping). */
size_t pool_room(struct pool *pool, uint32_t flags);

#endif
