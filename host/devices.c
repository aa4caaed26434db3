/* devices.c - each user's devices and their positions (chatd_devices), in memory while
 * the user is online: read by a job at the first login, written by a job at most once a
 * second while they change (one job for every user waiting) and at the user's last
 * logout, which also deletes the user's timeline rows below all their positions. At
 * most [messages] max_devices devices other than "" are kept per user: a new one makes
 * the least recently seen go. Positions only move forward when written, except "",
 * which stream.c may lower for pushes a session never wrote. */
#include "stream_internal.h"

#include "db.h"
#include "db_rows.h"
#include "log.h"
#include "server.h"
#include "workers.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Timeline rows deleted per statement at logout. */
#define DELETE_CHUNK 1000

int64_t stream_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- reading ----------------------------------------------------------------------- */

struct load {
    struct stream *st;
    char user[STREAM_NAME_MAX + 1];
    struct chatd_rows *rows;
};

static int load_work(struct chatd_db *db, void *arg)
{
    struct load *l = arg;
    struct chatd_value v = {.type = CHATD_PARAM_TEXT, .s = l->user, .len = strlen(l->user)};
    db_rows_free(l->rows);
    l->rows = NULL;
    return db_query_rows(db, "SELECT device, acked, seen_at FROM chatd_devices WHERE user = ?", &v,
                         1, 0, &l->rows);
}

static struct device *device_find(struct stream_user *u, const char *name)
{
    for (size_t i = 0; i < u->n_devices; i++)
        if (strcmp(u->devices[i].name, name) == 0)
            return &u->devices[i];
    return NULL;
}

static struct device *device_add(struct stream_user *u, const char *name, int64_t acked,
                                 int64_t seen_at)
{
    if (u->n_devices == u->cap_devices) {
        size_t cap = u->cap_devices * 2;
        struct device *more = realloc(u->devices, cap * sizeof(*more));
        if (!more)
            return NULL;
        u->devices = more;
        u->cap_devices = cap;
    }
    struct device *d = &u->devices[u->n_devices++];
    snprintf(d->name, sizeof(d->name), "%s", name);
    d->acked = acked;
    d->seen_at = seen_at;
    d->provisional = 0;
    return d;
}

/* Keep at most max_devices devices other than "": the least recently seen go (not one a
 * session uses). */
static void devices_trim(struct stream *st, struct stream_user *u)
{
    size_t max = (size_t)st->srv->cfg->messages.max_devices;
    while (u->n_devices - 1 > max) {
        size_t oldest = 0;
        for (size_t i = 1; i < u->n_devices; i++) {
            int used = 0;
            for (struct stream_session *ss = u->sessions; ss && !used; ss = ss->next)
                used = ss->ack && strcmp(ss->device, u->devices[i].name) == 0;
            if (!used && (!oldest || u->devices[i].seen_at < u->devices[oldest].seen_at))
                oldest = i;
        }
        if (!oldest)
            return;
        u->devices[oldest] = u->devices[--u->n_devices];
        u->forgot = 1;
        st->stats.devices_forgotten++;
    }
}

static void recount(struct stream_user *u)
{
    u->has_devices = u->n_devices > 1;
    for (struct stream_session *ss = u->sessions; ss; ss = ss->next)
        u->has_devices |= ss->ack;
    for (size_t i = 1; i < u->n_devices; i++)
        if (u->devices[i].acked > u->acked_max)
            u->acked_max = u->devices[i].acked;
}

static void load_done(struct chatd_request *req, void *arg, int status)
{
    (void)req;
    struct load *l = arg;
    struct stream *st = l->st;
    struct stream_user *u = stream_user(st, l->user, 0);
    if (u) {
        u->loading = 0;
        const struct chatd_rows *rows = l->rows;
        for (size_t r = 0; status == 0 && rows && r < rows->n_rows; r++) {
            const struct chatd_value *c = rows->values + r * rows->n_cols;
            char name[STREAM_DEVICE_MAX + 1];
            snprintf(name, sizeof(name), "%.*s", (int)c[0].len, c[0].s ? c[0].s : "");
            struct device *d = device_find(u, name);
            if (!d && !(d = device_add(u, name, c[1].i, c[2].i))) {
                status = CHATD_ENOMEM;
                break;
            }
            if (c[1].i > d->acked || d->provisional)
                d->acked = c[1].i;
            d->provisional = 0;
            if (c[2].i > d->seen_at)
                d->seen_at = c[2].i;
        }
        if (status == 0) {
            u->loaded = 1;
            for (size_t i = 1; i < u->n_devices; i++) {
                if (u->devices[i].provisional && u->devices[i].acked < u->devices[0].acked)
                    u->devices[i].acked = u->devices[0].acked;
                u->devices[i].provisional = 0;
            }
            devices_trim(st, u);
            recount(u);
            if (u->n_sessions == 0)
                devices_logout(st, u); /* they all left while this was read */
        } else {
            log_error("the devices of %s could not be read (%s): their sessions are sent only "
                      "what comes from now on",
                      u->name, chatd_strerror(status));
        }
        stream_sessions_loaded(st, u, status == 0);
        stream_user_release(st, u);
    }
    db_rows_free(l->rows);
    free(l);
}

void devices_load(struct stream *st, struct stream_user *u)
{
    static const struct chatd_job job = {
        .work = load_work, .done = load_done, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    struct load *l = calloc(1, sizeof(*l));
    int rc = l ? 0 : CHATD_ENOMEM;
    if (l) {
        l->st = st;
        snprintf(l->user, sizeof(l->user), "%s", u->name);
        rc = pool_submit(st->srv->pool, &st->self, NULL, &job, l);
    }
    if (rc != 0) {
        free(l);
        log_error("the devices of %s could not be read (%s)", u->name, chatd_strerror(rc));
        stream_sessions_loaded(st, u, 0);
        return;
    }
    u->loading = 1;
}

struct device *devices_get(struct stream *st, struct stream_user *u, const char *name,
                           int64_t position)
{
    struct device *d = device_find(u, name);
    if (d)
        return d;
    d = device_add(u, name, position, stream_wall_ms());
    if (!d)
        return NULL;
    d->provisional = !u->loaded;
    u->has_devices = 1;
    devices_trim(st, u);
    devices_dirty(st, u);
    return device_find(u, name);
}

/* ---- writing ----------------------------------------------------------------------- */

struct position_row {
    char user[STREAM_NAME_MAX + 1];
    char device[STREAM_DEVICE_MAX + 1];
    int64_t acked, seen_at;
    int trim; /* the user's first row, when the user forgot devices in memory */
};

struct position_write {
    struct stream *st;
    struct position_row *rows;
    size_t n;
    int64_t max_devices;
    /* At a logout: delete the user's timeline rows up to here (-1: none). */
    int64_t delete_upto;
    uint64_t deleted;
    struct position_write *next; /* waiting behind the write in flight */
};

static int upsert(struct chatd_db *db, const struct position_row *p)
{
    struct chatd_value v[4] = {
        {.type = CHATD_PARAM_TEXT, .s = p->user, .len = strlen(p->user)},
        {.type = CHATD_PARAM_TEXT, .s = p->device, .len = strlen(p->device)},
        {.type = CHATD_PARAM_INT64, .i = p->acked},
        {.type = CHATD_PARAM_INT64, .i = p->seen_at},
    };
    /* "" may go back (stream.c); a device's position never does. */
    return db_exec(db,
                   "INSERT INTO chatd_devices (user, device, acked, seen_at) VALUES (?, ?, ?, ?) "
                   "ON DUPLICATE KEY UPDATE acked = IF(device = '', VALUES(acked), "
                   "GREATEST(acked, VALUES(acked))), seen_at = GREATEST(seen_at, VALUES(seen_at))",
                   v, 4, NULL, NULL);
}

/* Forget the user's least recently seen devices past max. */
static int trim(struct chatd_db *db, const char *user, int64_t max)
{
    struct chatd_value v[3] = {
        {.type = CHATD_PARAM_TEXT, .s = user, .len = strlen(user)},
        {.type = CHATD_PARAM_TEXT, .s = user, .len = strlen(user)},
        {.type = CHATD_PARAM_INT64, .i = max},
    };
    return db_exec(db,
                   "DELETE FROM chatd_devices WHERE user = ? AND device <> '' AND device NOT IN "
                   "(SELECT device FROM (SELECT device FROM chatd_devices WHERE user = ? AND "
                   "device <> '' ORDER BY seen_at DESC, device LIMIT ?) AS kept)",
                   v, 3, NULL, NULL);
}

static int write_work(struct chatd_db *db, void *arg)
{
    struct position_write *w = arg;
    int rc = db_simple(db, "START TRANSACTION");
    for (size_t i = 0; rc == 0 && i < w->n; i++)
        rc = upsert(db, &w->rows[i]);
    for (size_t i = 0; rc == 0 && i < w->n; i++)
        if (w->rows[i].trim)
            rc = trim(db, w->rows[i].user, w->max_devices);
    if (rc == 0)
        rc = db_simple(db, "COMMIT");
    else
        db_simple(db, "ROLLBACK");
    w->deleted = 0;
    for (uint64_t n = DELETE_CHUNK; rc == 0 && w->delete_upto > 0 && n == DELETE_CHUNK;) {
        struct chatd_value v[3] = {
            {.type = CHATD_PARAM_TEXT, .s = w->rows[0].user, .len = strlen(w->rows[0].user)},
            {.type = CHATD_PARAM_INT64, .i = w->delete_upto},
            {.type = CHATD_PARAM_INT64, .i = DELETE_CHUNK},
        };
        rc = db_exec(db, "DELETE FROM chatd_timeline WHERE user = ? AND message_id <= ? LIMIT ?", v,
                     3, &n, NULL);
        w->deleted += n;
    }
    return rc;
}

/* Copy u's positions into w. 0, or -1 out of memory. */
static int snapshot(struct position_write *w, struct stream_user *u)
{
    struct position_row *more = realloc(w->rows, (w->n + u->n_devices) * sizeof(*more));
    if (!more)
        return -1;
    w->rows = more;
    for (size_t i = 0; i < u->n_devices; i++) {
        struct position_row *p = &w->rows[w->n++];
        snprintf(p->user, sizeof(p->user), "%s", u->name);
        snprintf(p->device, sizeof(p->device), "%s", u->devices[i].name);
        p->acked = u->devices[i].acked;
        p->seen_at = u->devices[i].seen_at;
        p->trim = i == 0 && u->forgot;
    }
    u->forgot = 0;
    return 0;
}

static void write_done(struct chatd_request *req, void *arg, int status);

static int submit_write(struct stream *st, struct position_write *w)
{
    static const struct chatd_job job = {
        .work = write_work, .done = write_done, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    w->st = st;
    w->max_devices = st->srv->cfg->messages.max_devices;
    return pool_submit(st->srv->pool, &st->self, NULL, &job, w);
}

static void on_write_timer(evutil_socket_t fd, short what, void *arg);

static void arm(struct stream *st)
{
    if (!st->write_timer)
        st->write_timer = evtimer_new(st->srv->base, on_write_timer, st);
    struct timeval second = {1, 0};
    if (st->write_timer && !evtimer_pending(st->write_timer, NULL))
        evtimer_add(st->write_timer, &second);
}

static void unlist(struct stream *st, struct stream_user *u)
{
    for (struct stream_user **p = &st->dirty; *p; p = &(*p)->dirty_next) {
        if (*p == u) {
            *p = u->dirty_next;
            break;
        }
    }
    u->on_dirty_list = 0;
    u->dirty_next = NULL;
}

/* A logout's write failed or was dropped: the user no longer waits for it. */
static void logout_write_over(struct stream *st, struct position_write *w)
{
    struct stream_user *u = w->n ? stream_user(st, w->rows[0].user, 0) : NULL;
    if (u) {
        u->jobs--;
        stream_user_release(st, u);
    }
}

/* The next write waiting behind the one that ended, if any. 0 when one was submitted. */
static int submit_waiting(struct stream *st)
{
    while (st->waiting) {
        struct position_write *w = st->waiting;
        if (!(st->waiting = w->next))
            st->waiting_tail = &st->waiting;
        if (submit_write(st, w) == 0)
            return 0;
        log_error("device positions of %s could not be written", w->n ? w->rows[0].user : "");
        logout_write_over(st, w);
        free(w->rows);
        free(w);
    }
    return -1;
}

static void write_done(struct chatd_request *req, void *arg, int status)
{
    (void)req;
    struct position_write *w = arg;
    struct stream *st = w->st;
    if (status == 0) {
        st->stats.positions_written += w->n;
        st->stats.timeline_deleted_at_logout += w->deleted;
    } else {
        st->stats.position_write_failures++;
        log_error("device positions of %s%s could not be written: %s", w->n ? w->rows[0].user : "",
                  w->n > 1 && w->delete_upto < 0 ? " and others" : "", chatd_strerror(status));
    }
    if (w->delete_upto >= 0)
        logout_write_over(st, w);
    free(w->rows);
    free(w);
    if (submit_waiting(st) == 0)
        return;
    st->writing = 0;
    if (st->dirty)
        arm(st);
}

static void on_write_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct stream *st = arg;
    if (st->writing) {
        arm(st);
        return;
    }
    struct position_write *w = calloc(1, sizeof(*w));
    if (!w) {
        arm(st);
        return;
    }
    w->delete_upto = -1;
    while (st->dirty) {
        struct stream_user *u = st->dirty;
        if (u->loaded && snapshot(w, u) != 0)
            break;
        unlist(st, u);
        stream_user_release(st, u);
    }
    if (w->n == 0 || submit_write(st, w) != 0) {
        if (w->n > 0)
            log_error("device positions could not be written now; they are at the next logout");
        free(w->rows);
        free(w);
        return;
    }
    st->writing = 1;
}

void devices_dirty(struct stream *st, struct stream_user *u)
{
    if (u->on_dirty_list || !st->srv->cfg->db.enable || st->srv->check_only)
        return;
    u->on_dirty_list = 1;
    u->dirty_next = st->dirty;
    st->dirty = u;
    if (!st->writing)
        arm(st);
}

void devices_logout(struct stream *st, struct stream_user *u)
{
    if (u->on_dirty_list)
        unlist(st, u);
    if (!u->loaded || !st->srv->cfg->db.enable || st->srv->check_only)
        return; /* never read (or no table to read): writing could lose positions */
    struct position_write *w = calloc(1, sizeof(*w));
    int64_t lowest = u->devices[0].acked;
    for (size_t i = 1; i < u->n_devices; i++)
        if (u->devices[i].acked < lowest)
            lowest = u->devices[i].acked;
    if (!w || snapshot(w, u) != 0) {
        log_error("device positions of %s are lost: out of memory", u->name);
        if (w)
            free(w->rows);
        free(w);
        return;
    }
    /* With [cluster] the hourly prune deletes them (a day late): the "" position is
     * moved by pushes on any node, and the user's sessions elsewhere may still need them. */
    w->delete_upto = st->srv->cfg->cluster.enable ? 0 : lowest;
    if (st->writing) {
        *st->waiting_tail = w; /* after the write in flight, which may hold older values */
        st->waiting_tail = &w->next;
    } else if (submit_write(st, w) != 0) {
        log_error("device positions of %s could not be written", u->name);
        free(w->rows);
        free(w);
        return;
    }
    st->writing = 1;
    u->jobs++;
}

void devices_free(struct stream *st)
{
    if (st->write_timer)
        event_free(st->write_timer);
    st->write_timer = NULL;
    while (st->dirty)
        unlist(st, st->dirty);
    while (st->waiting) {
        struct position_write *w = st->waiting;
        st->waiting = w->next;
        free(w->rows);
        free(w);
    }
    st->waiting_tail = &st->waiting;
}
