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

/* A bounded queue and the stats of the jobs that go through it. Database jobs and the
 * others (CPU work such as password hashing) have one each, served by workers of their
 * own, so that neither kind ever waits behind the other. */
struct job_queue {
    struct job **ring;
    size_t cap, head, count;
    pthread_cond_t has_work;
    struct queue_stats stats; /* under pool->lock */
};

struct job {
    struct chatd_job spec;
    struct chatd_plugin *plugin;
    struct chatd_request *req;
    void *arg;
    struct job_queue *queue;
    int status;
    int64_t budget_ns; /* counted from started_ns: waiting in the queue is not running */
    int64_t submitted_ns, started_ns, deadline_ns;
    struct job *next;
};

struct worker {
    struct pool *pool;
    struct job_queue *queue; /* the one it takes jobs from */
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
    pthread_cond_t watchdog_wake;
    struct job_queue db, cpu;
    struct job *done_head, *done_tail;
    struct event *done_ev;
    struct worker *workers; /* the database queue's first, then the CPU queue's */
    size_t n_workers;
    pthread_t watchdog;
    int watchdog_started;
    int watchdog_stop;      /* the watchdog outlives the workers, to cut jobs at shutdown */
    int abort_running;      /* stopping: treat every running database job as overdue */
    struct chatd_db killer; /* the watchdog's own connection, for KILL QUERY */
    int stopping;
    uint64_t reconnects, retries; /* under lock */
    int database_up;
    uint64_t up_generation; /* bumped each time the database is seen up after being down */
    int64_t next_probe_ns;  /* the watchdog's next connection attempt while it is down */
    int64_t next_health_ns; /* its next question while it is up */
    int watch_health;       /* ask at all (pool_watch_health) */
};

#endif
