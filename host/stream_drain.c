/* stream_drain.c - sending one session its timeline after its login. A drain repeats:
 *  1. read the session's next STREAM_PAGE_ROWS timeline rows after what it was sent (a
 *     job: chatd_timeline joined with chatd_messages, in seq order);
 *  2. push them with "offline":true, "seq" and "ts" (and "msg_id" for posted messages;
 *     a message of deliver() keeps its own), up to STREAM_PAGE_BYTES of text;
 *  3. when the session's output holds more than a page, wait until its own writes bring
 *     it under a page (drain_wrote, from session_wrote: nothing polls); a session that
 *     never reads is closed by its own limits;
 * until a read comes back short and no held message push was dropped since it began;
 * then the session goes live. Nothing is deleted: the session's device moves by `ack`,
 * and rows below every position of the user go at logout or in the hourly prune.
 *
 * A failed job is tried again REPEATS times, BACKOFF_MS apart and doubling; then the
 * session goes live without the rest (logged, counted). */
#include "stream_internal.h"

#include "db.h"
#include "db_rows.h"
#include "log.h"
#include "post.h"
#include "server.h"
#include "session.h"
#include "workers.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPEATS    3
#define BACKOFF_MS 250

struct stream_drain {
    struct stream *st;
    struct stream_session *ss; /* NULL once abandoned */
    char user[STREAM_NAME_MAX + 1];
    int64_t after; /* read rows after this seq */
    /* ... and up to this one: what was posted before the session was bound. Later
     * messages reach it as live pushes (held until the drain ends), not from the
     * timeline, unless held ones were dropped: then it reads to the end. */
    int64_t upto;
    int busy;                /* a job is out: it frees an abandoned drain */
    int waiting_room;        /* for its session's output to fall below a page (drain_wrote) */
    int failures;            /* failed jobs in a row */
    struct chatd_rows *rows; /* the page read (worker) */
    struct event *timer;
};

static void drain_free(struct stream_drain *dr)
{
    if (dr->timer)
        event_free(dr->timer);
    db_rows_free(dr->rows);
    free(dr);
}

json_t *stream_row_message(const struct chatd_value *c, int offline, const char **receipt_sender)
{
    int64_t seq = c[0].i;
    json_error_t error;
    json_t *msg = json_loadb(c[1].s ? c[1].s : "", c[1].len, 0, &error);
    *receipt_sender = NULL;
    if (!json_is_object(msg)) {
        json_decref(msg);
        return NULL;
    }
    if (c[2].i || (c[4].i & POST_FLAG_MSG_ID)) {
        char id[24];
        snprintf(id, sizeof(id), "%lld", (long long)seq);
        json_object_set_new(msg, "msg_id", json_string(id));
    }
    json_object_set_new(msg, "seq", json_integer(seq));
    if (c[2].i || !json_object_get(msg, "ts"))
        json_object_set_new(msg, "ts", json_integer(c[3].i)); /* deliver()'s keep theirs */
    if (offline)
        json_object_set_new(msg, "offline", json_true());
    if ((c[4].i & CHATD_POST_PRIVATE) && c[5].type == CHATD_PARAM_TEXT)
        *receipt_sender = c[5].s;
    return msg;
}

static int read_work(struct chatd_db *db, void *arg)
{
    struct stream_drain *dr = arg;
    struct chatd_value v[4] = {
        {.type = CHATD_PARAM_TEXT, .s = dr->user, .len = strlen(dr->user)},
        {.type = CHATD_PARAM_INT64, .i = dr->after},
        {.type = CHATD_PARAM_INT64, .i = dr->upto},
        {.type = CHATD_PARAM_INT64, .i = STREAM_PAGE_ROWS},
    };
    db_rows_free(dr->rows);
    dr->rows = NULL;
    return db_query_rows(db,
                         "SELECT " STREAM_MESSAGE_COLUMNS " "
                         "FROM chatd_timeline t JOIN chatd_messages m ON m.id = t.message_id "
                         "WHERE t.user = ? AND t.message_id > ? AND t.message_id <= ? "
                         "ORDER BY t.message_id LIMIT ?",
                         v, 4, STREAM_PAGE_ROWS, &dr->rows);
}

static void drain_read(struct stream_drain *dr);

static void drain_end(struct stream_drain *dr)
{
    struct stream *st = dr->st;
    struct stream_session *ss = dr->ss;
    ss->drain = NULL;
    drain_free(dr);
    stream_go_live(st, ss);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    drain_read(arg);
}

static void drain_failed(struct stream_drain *dr, int status)
{
    struct stream *st = dr->st;
    if (++dr->failures <= REPEATS) {
        log_warn("sending %s the timeline: reading failed (%s); trying again", dr->user,
                 chatd_strerror(status));
        if (!dr->timer)
            dr->timer = evtimer_new(st->srv->base, on_retry, dr);
        struct timeval tv = {0, (suseconds_t)(BACKOFF_MS << (dr->failures - 1)) * 1000};
        if (dr->timer && evtimer_add(dr->timer, &tv) == 0)
            return;
    }
    log_error("sending %s the timeline given up for this session (%s)", dr->user,
              chatd_strerror(status));
    st->stats.drain_failures++;
    drain_end(dr);
}

/* The bytes of text a page takes: a quarter of max_output_bytes at most, so that a page,
 * with the output it waits for (next_page), cannot cut off the session as a slow reader
 * (at least one message goes). */
static size_t page_bytes(const struct stream *st)
{
    size_t limit = (size_t)st->srv->cfg->max_output_bytes / 4;
    return limit < STREAM_PAGE_BYTES ? limit : STREAM_PAGE_BYTES;
}

/* Push the page just read; returns how many of its rows went (the rest, past the page's
 * bytes, are read again). */
static size_t push_page(struct stream_drain *dr)
{
    struct stream *st = dr->st;
    struct stream_session *ss = dr->ss;
    const struct chatd_rows *rows = dr->rows;
    size_t limit = page_bytes(st);
    size_t bytes = 0, r = 0;
    for (; rows && r < rows->n_rows && bytes < limit; r++) {
        const struct chatd_value *c = rows->values + r * rows->n_cols;
        int64_t seq = c[0].i;
        dr->after = seq;
        bytes += c[1].len;
        const char *receipt_sender;
        json_t *msg = stream_row_message(c, 1, &receipt_sender);
        if (!msg) {
            log_error("message %lld for %s is not a JSON object; skipped", (long long)seq,
                      dr->user);
            continue;
        }
        int rc = stream_send(st, ss, msg, seq, receipt_sender);
        json_decref(msg);
        if (rc != 0)
            break; /* the session is closing: its end stops the drain */
        st->stats.drained++;
    }
    return r;
}

/* Go on once the session's output has room for another page: less than a page still
 * unwritten. (Output handed to an I/O thread, or to TLS, may still be unwritten when the
 * next page has been read: a page on top of up to 64 KiB could pass a small
 * max_output_bytes and cut the session off.) Until then its own writes bring it back
 * (drain_wrote): not a watch on the user, whom another session, idle, keeps "flushed"
 * (waiting on that answered at once, again and again, until the stack ran out). */
static void next_page(struct stream_drain *dr)
{
    if (session_output_pending(dr->ss->s) < page_bytes(dr->st)) {
        drain_read(dr);
        return;
    }
    dr->waiting_room = 1;
}

void drain_wrote(struct stream_session *ss)
{
    struct stream_drain *dr = ss->drain;
    if (!dr || !dr->waiting_room || session_output_pending(ss->s) >= page_bytes(dr->st))
        return;
    dr->waiting_room = 0;
    drain_read(dr);
}

static void job_done(struct chatd_request *req, void *arg, int status)
{
    (void)req;
    struct stream_drain *dr = arg;
    dr->busy = 0;
    if (!dr->ss) {
        drain_free(dr);
        return;
    }
    if (status != 0) {
        drain_failed(dr, status);
        return;
    }
    dr->failures = 0;
    size_t n_rows = dr->rows ? dr->rows->n_rows : 0;
    size_t pushed = push_page(dr);
    db_rows_free(dr->rows);
    dr->rows = NULL;
    if (dr->ss->s->closing)
        return; /* its end frees the drain */
    if (n_rows < STREAM_PAGE_ROWS && pushed == n_rows && !dr->ss->reread) {
        drain_end(dr);
        return;
    }
    next_page(dr);
}

static void drain_read(struct stream_drain *dr)
{
    static const struct chatd_job read_job = {
        .work = read_work, .done = job_done, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    if (dr->ss->reread)
        dr->upto = INT64_MAX;
    dr->ss->reread = 0;
    dr->busy = 1;
    int rc = pool_submit(dr->st->srv->pool, &dr->st->self, NULL, &read_job, dr);
    if (rc != 0) {
        dr->busy = 0;
        drain_failed(dr, rc);
    }
}

void drain_start(struct stream *st, struct stream_session *ss)
{
    struct stream_drain *dr = calloc(1, sizeof(*dr));
    if (!dr) {
        log_error("sending %s the timeline: out of memory", ss->u->name);
        st->stats.drain_failures++;
        stream_go_live(st, ss);
        return;
    }
    dr->st = st;
    dr->ss = ss;
    snprintf(dr->user, sizeof(dr->user), "%s", ss->u->name);
    dr->after = ss->position;
    dr->upto = ss->ceiling;
    ss->drain = dr;
    st->stats.drains++;
    drain_read(dr);
}

void drain_abandon(struct stream_session *ss)
{
    struct stream_drain *dr = ss->drain;
    if (!dr)
        return;
    ss->drain = NULL;
    dr->ss = NULL;
    if (!dr->busy)
        drain_free(dr); /* its retry timer, if any, goes with it */
}
