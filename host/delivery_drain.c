/* delivery_drain.c - sending a user's inbox after their login. A drain repeats:
 *  1. read the oldest DELIVERY_BATCH_ROWS rows of the user's inbox (a job);
 *  2. push them, oldest first, with "offline":true, to every session of the user, up
 *     to DELIVERY_BATCH_BYTES of text;
 *  3. wait until one of the user's sessions has written everything to the network
 *     (a flush watch: the host knows its own output, nothing polls); a watch that
 *     times out is set again, since a session that never reads is closed by the
 *     idle timeout or max_output_bytes, which ends the drain;
 *  4. delete exactly the rows it pushed, and the messages nobody else still has to
 *     receive (a job, one transaction);
 * until a read finds nothing and no store naming the user is still in flight; then
 * the held live pushes go out. So a row leaves the inbox only after it was written to
 * the network: when the user's last session ends between 2 and 4, it stays and comes
 * again at the next login (at least once; msg_id tells the client it is a repeat).
 *
 * A failed job is tried again REPEATS times, BACKOFF_MS apart and doubling; then the
 * drain gives up until the user's next login (logged), and what was held goes out. */
#include "delivery_internal.h"

#include "db.h"
#include "db_rows.h"
#include "flush_watch.h"
#include "log.h"
#include "server.h"
#include "users.h"
#include "workers.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#define REPEATS    3
#define BACKOFF_MS 250

/* What a drain is waiting for. */
enum drain_wait {
    WAIT_NONE,   /* nothing: it is running on the loop thread */
    WAIT_JOB,    /* its read or acknowledgement job */
    WAIT_WATCH,  /* its flush watch */
    WAIT_TIMER,  /* the retry timer */
    WAIT_ACKS,   /* the acknowledgement of an earlier drain of the user */
    WAIT_STORES, /* stores naming the user, before it may conclude */
};

struct drain {
    struct delivery *d;
    char *user;
    enum drain_wait wait;
    int abandoned;           /* the user left while a job or watch was pending: that frees it */
    int acking;              /* the job (or the retry) is the acknowledgement */
    int failures;            /* failed jobs in a row */
    struct chatd_rows *rows; /* the batch read (worker), until pushed */
    /* What was pushed: its inbox ids and message ids, for the acknowledgement. */
    int64_t ack_ids[DELIVERY_BATCH_ROWS];
    int64_t ack_msgs[DELIVERY_BATCH_ROWS];
    size_t n_ack;
    uint64_t deleted; /* inbox rows the acknowledgement deleted */
    struct event *timer;
};

static void drain_free(struct drain *dr)
{
    if (dr->timer)
        event_free(dr->timer);
    db_rows_free(dr->rows);
    free(dr->user);
    free(dr);
}

void drain_free_at_exit(struct drain *dr)
{
    drain_free(dr);
}

/* ---- worker side ----------------------------------------------------------------- */

#define Q10  "?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
#define Q100 Q10 ", " Q10 ", " Q10 ", " Q10 ", " Q10 ", " Q10 ", " Q10 ", " Q10 ", " Q10 ", " Q10
_Static_assert(DELIVERY_BATCH_ROWS == 100, "Q100 holds one mark per row of a batch");

static int read_work(struct chatd_db *db, void *arg)
{
    struct drain *dr = arg;
    struct chatd_value v[2] = {
        {.type = CHATD_PARAM_TEXT, .s = dr->user, .len = strlen(dr->user)},
        {.type = CHATD_PARAM_INT64, .i = DELIVERY_BATCH_ROWS},
    };
    db_rows_free(dr->rows);
    dr->rows = NULL;
    return db_query_rows(db,
                         "SELECT t.message_id, t.message_id, m.body FROM chatd_timeline t "
                         "JOIN chatd_messages m ON m.id = t.message_id "
                         "WHERE t.user = ? ORDER BY t.message_id LIMIT ?",
                         v, 2, DELIVERY_BATCH_ROWS, &dr->rows);
}

/* Bind ids[0..n) to 100 marks, repeating the last (IN ignores the repeats), so one
 * statement text serves every batch. */
static void bind_ids(struct chatd_value *v, const int64_t *ids, size_t n)
{
    for (size_t i = 0; i < DELIVERY_BATCH_ROWS; i++)
        v[i] = (struct chatd_value){.type = CHATD_PARAM_INT64, .i = ids[i < n ? i : n - 1]};
}

/* Delete the rows pushed, then their messages where no inbox row still refers to them.
 * Running it twice deletes nothing more. */
static int ack_work(struct chatd_db *db, void *arg)
{
    struct drain *dr = arg;
    struct chatd_value v[DELIVERY_BATCH_ROWS + 1];
    v[0] = (struct chatd_value){.type = CHATD_PARAM_TEXT, .s = dr->user, .len = strlen(dr->user)};
    bind_ids(v + 1, dr->ack_ids, dr->n_ack);
    int rc = db_simple(db, "START TRANSACTION");
    if (rc == 0)
        rc = db_exec(db, "DELETE FROM chatd_timeline WHERE user = ? AND message_id IN (" Q100 ")",
                     v, DELIVERY_BATCH_ROWS + 1, &dr->deleted, NULL);
    if (rc == 0)
        rc = db_simple(db, "COMMIT");
    return rc;
}

/* ---- loop side ------------------------------------------------------------------- */

static void drain_read(struct drain *dr, struct dl_user *u);
static void job_done(struct chatd_request *req, void *arg, int status);

/* The drain is over: live pushes go out (unless a login is still pending). */
static void drain_finish(struct drain *dr, struct dl_user *u)
{
    struct delivery *d = dr->d;
    u->drain = NULL;
    u->draining = 0;
    u->spilling = 0;
    u->drain_again = 0;
    drain_free(dr);
    delivery_release_held(d, u);
}

static void on_retry(evutil_socket_t fd, short what, void *arg);

static void drain_failed(struct drain *dr, struct dl_user *u, int status)
{
    struct delivery *d = dr->d;
    if (++dr->failures <= REPEATS) {
        log_warn("delivery of stored messages to %s: %s failed (%s); trying again", dr->user,
                 dr->acking ? "removing what was sent" : "reading", chatd_strerror(status));
        if (!dr->timer)
            dr->timer = evtimer_new(d->srv->base, on_retry, dr);
        struct timeval tv = {0, (suseconds_t)(BACKOFF_MS << (dr->failures - 1)) * 1000};
        if (dr->timer && evtimer_add(dr->timer, &tv) == 0) {
            dr->wait = WAIT_TIMER;
            return;
        }
    }
    log_error("delivery of stored messages to %s given up until their next login (%s)%s", dr->user,
              chatd_strerror(status),
              dr->acking ? "; what was sent stays stored and comes again" : "");
    d->stats.drain_failures++;
    drain_finish(dr, u);
}

static void submit(struct drain *dr, struct dl_user *u, int acking)
{
    static const struct chatd_job read_job = {
        .work = read_work, .done = job_done, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    static const struct chatd_job ack_job = {
        .work = ack_work, .done = job_done, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    struct delivery *d = dr->d;
    dr->acking = acking;
    int rc = pool_submit(d->srv->pool, &d->self, NULL, acking ? &ack_job : &read_job, dr);
    if (rc != 0) {
        drain_failed(dr, u, rc);
        return;
    }
    dr->wait = WAIT_JOB;
    if (acking)
        u->acks++;
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct drain *dr = arg;
    struct dl_user *u = delivery_user(dr->d, dr->user, 0);
    dr->wait = WAIT_NONE;
    if (dr->acking)
        submit(dr, u, 1);
    else
        drain_read(dr, u);
}

static void drain_read(struct drain *dr, struct dl_user *u)
{
    if (u->acks > 0) {
        dr->wait = WAIT_ACKS; /* the acknowledgement's end calls again */
        return;
    }
    submit(dr, u, 0);
}

/* Nothing left to read: end, unless stores naming the user may still add rows, or a
 * login during the drain asks for one more look. */
static void drain_conclude(struct drain *dr, struct dl_user *u)
{
    if (u->stores > 0) {
        dr->wait = WAIT_STORES;
        return;
    }
    if (u->drain_again) {
        u->drain_again = 0;
        drain_read(dr, u);
        return;
    }
    drain_finish(dr, u);
}

void drain_stores_done(struct delivery *d, struct dl_user *u)
{
    (void)d;
    if (u->drain && u->drain->wait == WAIT_STORES)
        drain_read(u->drain, u);
}

static void on_flushed(const char *user, int status, void *arg);

static void watch(struct drain *dr, struct dl_user *u)
{
    dr->wait = WAIT_WATCH;
    /* The watch may answer before this returns; dr is not touched after it. */
    int rc = flush_watch_add(dr->d->srv, &dr->d->self, dr->user, 0, on_flushed, dr);
    if (rc != 0) {
        /* Stopping: what was sent stays stored. */
        log_info("delivery of stored messages to %s stopped (%s)", dr->user, chatd_strerror(rc));
        drain_finish(dr, u);
    }
}

static void on_flushed(const char *user, int status, void *arg)
{
    (void)user;
    struct drain *dr = arg;
    if (dr->abandoned) {
        drain_free(dr);
        return;
    }
    struct dl_user *u = delivery_user(dr->d, dr->user, 0);
    dr->wait = WAIT_NONE;
    if (status == CHATD_ETIMEDOUT) {
        watch(dr, u); /* not read yet: the session's own limits end this, not us */
        return;
    }
    if (status != 0) {
        drain_finish(dr, u); /* sent, not seen written: it stays stored */
        return;
    }
    dr->failures = 0;
    submit(dr, u, 1);
}

/* Push the batch just read, oldest first; record what went out. */
static void push_batch(struct drain *dr, struct dl_user *u)
{
    struct delivery *d = dr->d;
    const struct chatd_rows *rows = dr->rows;
    /* A quarter of max_output_bytes at most, so that a batch cannot by itself cut off
     * the session it is sent to as a slow reader (at least one message goes). */
    size_t limit = (size_t)d->srv->cfg->max_output_bytes / 4;
    if (limit > DELIVERY_BATCH_BYTES)
        limit = DELIVERY_BATCH_BYTES;
    size_t bytes = 0;
    dr->n_ack = 0;
    for (size_t r = 0; rows && r < rows->n_rows && bytes < limit; r++) {
        const struct chatd_value *c = rows->values + r * rows->n_cols;
        json_error_t error;
        json_t *msg = json_loadb(c[2].s ? c[2].s : "", c[2].len, 0, &error);
        if (!json_is_object(msg)) {
            /* Not a message any more: acknowledged, so it does not block the rest. */
            log_error("stored message %lld for %s is not a JSON object; dropped", (long long)c[1].i,
                      u->name);
        } else {
            json_object_set_new(msg, "offline", json_true());
            if (users_push(d->srv, u->name, msg) == 0) {
                json_decref(msg);
                break; /* no session took it: the rest stays stored */
            }
            d->stats.drained++;
        }
        json_decref(msg);
        dr->ack_ids[dr->n_ack] = c[0].i;
        dr->ack_msgs[dr->n_ack] = c[1].i;
        dr->n_ack++;
        bytes += c[2].len;
    }
}

static void job_done(struct chatd_request *req, void *arg, int status)
{
    (void)req;
    struct drain *dr = arg;
    struct delivery *d = dr->d;
    struct dl_user *u = delivery_user(d, dr->user, 0);
    dr->wait = WAIT_NONE;
    if (dr->acking && u) {
        u->acks--;
    }
    if (dr->abandoned || !u) {
        drain_free(dr);
        if (u && u->acks == 0 && u->drain && u->drain->wait == WAIT_ACKS)
            drain_read(u->drain, u);
        if (u)
            delivery_user_release(d, u);
        return;
    }
    if (status != 0) {
        drain_failed(dr, u, status);
        return;
    }
    dr->failures = 0;
    if (dr->acking) {
        drain_read(dr, u);
        return;
    }
    size_t n_rows = dr->rows ? dr->rows->n_rows : 0;
    push_batch(dr, u);
    db_rows_free(dr->rows);
    dr->rows = NULL;
    if (n_rows == 0) {
        drain_conclude(dr, u);
        return;
    }
    if (dr->n_ack == 0) {
        drain_failed(dr, u, CHATD_ECLOSED); /* no session could take it right now */
        return;
    }
    watch(dr, u);
}

void drain_start(struct delivery *d, struct dl_user *u)
{
    struct drain *dr = calloc(1, sizeof(*dr));
    if (!dr || !(dr->user = strdup(u->name))) {
        free(dr);
        log_error("delivery of stored messages to %s: out of memory", u->name);
        u->draining = 0;
        delivery_release_held(d, u);
        return;
    }
    dr->d = d;
    u->drain = dr;
    d->stats.drains++;
    drain_read(dr, u);
}

void drain_abandon(struct delivery *d, struct dl_user *u)
{
    (void)d;
    struct drain *dr = u->drain;
    if (!dr)
        return;
    u->drain = NULL;
    if (dr->wait == WAIT_JOB || dr->wait == WAIT_WATCH) {
        dr->abandoned = 1; /* its job's done or its watch frees it */
        return;
    }
    drain_free(dr);
}
