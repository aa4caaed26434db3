/* workers_internal.h - the worker pool's private state, shared by the pool itself
 * (workers.c) and its database watchdog (db_watchdog.c). Nothing else includes it. */
#ifndef CHATD_HOST_WORKERS_INTERNAL_H
#define CHATD_HOST_WORKERS_INTERNAL_H

#include "clock.h"
#include "workers.h"

#include "db.h"

#include <pthread.h>
#include <stdint.h>
#include <time.h>

struct job {
    struct chatd_job spec;
    struct chatd_plugin *plugin;
    struct chatd_request *req;
    void *arg;
    int status;
    int64_t submitted_ns, started_ns, deadline_ns;
    struct job *next;
};

struct worker {
    struct pool *pool;
    pthread_t thread;
    struct chatd_db db;
    int connected_once;
    int64_t next_attempt_ns;
    int64_t backoff_ms;
    /* Under pool->lock: the job running, and the connection as the watchdog may use it
     * (published only once connected, withdrawn before the connection is closed). */
    struct job *running;
    unsigned long conn_thread_id; /* 0: no connection to kill queries on */
    int conn_fd;                  /* -1: none */
    int64_t killed_at_ns;         /* when KILL QUERY was sent for the running job */
    int socket_shut;
    int64_t last_used_ns;       /* when the connection last finished a job */
    uint64_t failed_generation; /* pool->up_generation at the last failed connect */
};

struct pool {
    struct event_base *base;
    const struct config_database *cfg;
    char *password;
    pthread_mutex_t lock;
    pthread_cond_t has_work;
    pthread_cond_t watchdog_wake;
    struct job **ring; /* the queue */
    size_t cap, head, count;
    struct job *done_head, *done_tail;
    struct event *done_ev;
    struct worker *workers;
    size_t n_workers;
    pthread_t watchdog;
    int watchdog_started;
    int watchdog_stop;      /* the watchdog outlives the workers, to cut jobs at shutdown */
    int abort_running;      /* stopping: treat every running database job as overdue */
    struct chatd_db killer; /* the watchdog's own connection, for KILL QUERY */
    int stopping;
    struct pool_stats stats; /* under lock */
    uint64_t up_generation;  /* bumped each time the database is seen up after being down */
    int64_t next_probe_ns;   /* the watchdog's next connection attempt while it is down */
    int64_t next_health_ns;  /* its next question while it is up */
    int watch_health;        /* ask at all (pool_watch_health) */
};

/* Hand a finished job to the loop thread (called with the lock held). */
void pool_post_done(struct pool *pool, struct job *job);

#endif
