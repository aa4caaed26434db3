/* workers.h - the worker pool: threads that run plugin jobs off the loop thread, each
 * with its own database connection, a bounded queue, reconnection with backoff, and
 * counters. Its watchdog thread (time budgets, database health) is in db_watchdog.h. */
#ifndef CHATD_HOST_WORKERS_H
#define CHATD_HOST_WORKERS_H

#include "config.h"

#include <chatd/plugin.h>
#include <event2/event.h>
#include <stdint.h>

struct pool;

struct pool_stats {
    uint64_t submitted;     /* jobs accepted */
    uint64_t completed;     /* done callbacks run */
    uint64_t rejected_busy; /* submits refused because the queue was full */
    uint64_t failed;        /* jobs that ended with a non-zero status */
    uint64_t timed_out;     /* jobs that ended with CHATD_ETIMEDOUT */
    uint64_t reconnects;    /* connections re-established after a loss */
    uint64_t retries;       /* idempotent jobs run a second time */
    uint64_t wait_ns;       /* total time jobs waited in the queue */
    uint64_t run_ns;        /* total time jobs ran */
    size_t queue_depth;     /* jobs waiting right now */
    size_t queue_max;
    size_t workers;
    int database_up; /* the last connection attempt or query succeeded */
};

/* Start cfg->workers threads. With the database enabled each connects when its first
 * database job arrives, and again after a loss, so chatd starts and keeps serving
 * database-free commands while the database is down. */
struct pool *pool_new(struct event_base *base, const struct config_database *cfg, char *err,
                      size_t errlen);
/* Queue a job (loop thread). The host's wrapper holds `req` until done has run. */
int pool_submit(struct pool *pool, struct chatd_plugin *plugin, struct chatd_request *req,
                const struct chatd_job *job, void *arg);
/* Let the workers finish the queue, join them, and run the last done callbacks. */
void pool_free(struct pool *pool);
void pool_get_stats(struct pool *pool, struct pool_stats *out);
/* Jobs submitted whose done callback has not run yet. */
uint64_t pool_pending(struct pool *pool);

#endif
