/* prune.c - the hourly prune (the first a few seconds after start): one job at a time,
 * each one chunked statement (at most CHUNK rows), repeated until a chunk comes back
 * short, then the next step:
 *  1. devices not seen for [messages] device_forget_days;
 *  2. messages older than retention_days (never younger than 24 hours);
 *  3. with retention_count, messages of each conversation past its newest
 *     retention_count (never younger than 24 hours);
 *  4. timeline rows of messages no longer there;
 *  5. timeline rows below every position of their user; with [cluster] only those of
 *     messages older than 24 hours: the "" position is moved by pushes on any node, and
 *     another node's sessions of the user may still need the rows (a gap read there
 *     reads them after this node's pushes).
 * Ids follow acceptance order, so old messages are the lowest ids: step 2 walks the
 * primary key from the start and stops at the first young message. */
#include "stream_internal.h"

#include "db.h"
#include "log.h"
#include "server.h"
#include "workers.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK         1000
#define FIRST_DELAY_S 5
#define PERIOD_S      3600
#define DAY_MS        (86400LL * 1000)
#define CONVERSATIONS 100 /* conversations past retention_count looked at per job */

enum prune_step { P_DEVICES, P_AGE, P_COUNT, P_ORPHANS, P_BELOW, P_DONE };

struct conversations {
    char names[CONVERSATIONS][72];
    size_t n;
};

struct prune {
    struct stream *st;
    struct conversations cs; /* step 3's, read by the worker */
    enum prune_step step;
    int64_t now_ms;
    int64_t device_cutoff, age_cutoff, young_cutoff, count;
    int cluster;       /* step 5 spares the last 24 hours */
    uint64_t affected; /* by this job */
    int again;         /* the step has more */
};

static int chunk(struct chatd_db *db, const char *sql, const struct chatd_value *v, size_t n,
                 struct prune *p)
{
    uint64_t affected = 0;
    int rc = db_exec(db, sql, v, n, &affected, NULL);
    p->affected += affected;
    p->again |= affected >= CHUNK;
    return rc;
}

static int on_conversation(const struct chatd_value *c, size_t n, void *arg)
{
    (void)n;
    struct conversations *cs = arg;
    if (c[0].type == CHATD_PARAM_TEXT && c[0].len < sizeof(cs->names[0]) && cs->n < CONVERSATIONS) {
        memcpy(cs->names[cs->n], c[0].s, c[0].len);
        cs->names[cs->n++][c[0].len] = '\0';
    }
    return 0;
}

/* Step 3: each conversation past the count loses its oldest, one chunk each. */
static int prune_counts(struct chatd_db *db, struct prune *p)
{
    struct conversations *cs = &p->cs;
    cs->n = 0;
    struct chatd_value count = {.type = CHATD_PARAM_INT64, .i = p->count};
    int rc = db_query(db,
                      "SELECT conversation FROM chatd_messages WHERE conversation IS NOT NULL "
                      "GROUP BY conversation HAVING COUNT(*) > ? LIMIT 100",
                      &count, 1, on_conversation, cs);
    for (size_t i = 0; rc == 0 && i < cs->n; i++) {
        int64_t upto = 0;
        struct chatd_value v[4] = {
            {.type = CHATD_PARAM_TEXT, .s = cs->names[i], .len = strlen(cs->names[i])},
            {.type = CHATD_PARAM_INT64, .i = p->count},
        };
        rc = db_query(db,
                      "SELECT id FROM chatd_messages WHERE conversation = ? ORDER BY id DESC "
                      "LIMIT 1 OFFSET ?",
                      v, 2, db_read_int64, &upto);
        if (rc != 0 || upto == 0)
            continue;
        v[1] = (struct chatd_value){.type = CHATD_PARAM_INT64, .i = upto};
        v[2] = (struct chatd_value){.type = CHATD_PARAM_INT64, .i = p->young_cutoff};
        v[3] = (struct chatd_value){.type = CHATD_PARAM_INT64, .i = CHUNK};
        rc = chunk(db,
                   "DELETE FROM chatd_messages WHERE conversation = ? AND id <= ? AND ts < ? "
                   "ORDER BY id LIMIT ?",
                   v, 4, p);
    }
    /* More conversations may be over the count: look again while this pass deleted
     * some (one whose excess is all younger than a day is passed over until then). */
    if (cs->n == CONVERSATIONS && p->affected > 0)
        p->again = 1;
    return rc;
}

/* The id of the first message at or after ts_ms, into *id (left as it is when none). */
static int first_at_or_after(struct chatd_db *db, int64_t ts_ms, int64_t *id)
{
    struct chatd_value v = {.type = CHATD_PARAM_INT64, .i = ts_ms};
    return db_query(db, "SELECT id FROM chatd_messages WHERE ts >= ? ORDER BY id LIMIT 1", &v, 1,
                    db_read_int64, id);
}

static int prune_work(struct chatd_db *db, void *arg)
{
    struct prune *p = arg;
    struct chatd_value v[2] = {{.type = CHATD_PARAM_INT64},
                               {.type = CHATD_PARAM_INT64, .i = CHUNK}};
    p->affected = 0;
    p->again = 0;
    switch (p->step) {
    case P_DEVICES:
        v[0].i = p->device_cutoff;
        return chunk(db, "DELETE FROM chatd_devices WHERE seen_at < ? LIMIT ?", v, 2, p);
    case P_AGE: {
        /* The first message young enough to stay bounds the walk. */
        int64_t first_kept = INT64_MAX;
        int rc = first_at_or_after(db, p->age_cutoff, &first_kept);
        struct chatd_value d[3] = {{.type = CHATD_PARAM_INT64, .i = first_kept},
                                   {.type = CHATD_PARAM_INT64, .i = p->age_cutoff},
                                   {.type = CHATD_PARAM_INT64, .i = CHUNK}};
        return rc ? rc
                  : chunk(db,
                          "DELETE FROM chatd_messages WHERE id < ? AND ts < ? ORDER BY id LIMIT ?",
                          d, 3, p);
    }
    case P_COUNT:
        return prune_counts(db, p);
    case P_ORPHANS:
        return chunk(db,
                     "DELETE FROM chatd_timeline WHERE message_id IN (SELECT message_id FROM "
                     "(SELECT t.message_id FROM chatd_timeline t LEFT JOIN chatd_messages m "
                     "ON m.id = t.message_id WHERE m.id IS NULL LIMIT ?) AS gone)",
                     v + 1, 1, p);
    case P_BELOW: {
        int64_t first_kept = INT64_MAX;
        int rc = p->cluster ? first_at_or_after(db, p->young_cutoff, &first_kept) : 0;
        v[0].i = first_kept;
        return rc ? rc
                  : chunk(db,
                          "DELETE FROM chatd_timeline WHERE (user, message_id) IN (SELECT user, "
                          "message_id FROM (SELECT t.user, t.message_id FROM chatd_timeline t "
                          "JOIN (SELECT user, MIN(acked) AS p FROM chatd_devices GROUP BY user) "
                          "d ON d.user = t.user WHERE t.message_id <= d.p AND t.message_id < ? "
                          "LIMIT ?) AS below)",
                          v, 2, p);
    }
    case P_DONE:
        break;
    }
    return 0;
}

static void prune_done(struct chatd_request *req, void *arg, int status);

static void submit(struct prune *p)
{
    static const struct chatd_job job = {
        .work = prune_work, .done = prune_done, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    struct stream *st = p->st;
    if (p->step == P_COUNT && p->count == 0)
        p->step = P_ORPHANS;
    if (p->step == P_DONE) {
        st->stats.prunes++;
        st->pruning = 0;
        free(p);
        return;
    }
    int rc = pool_submit(st->srv->pool, &st->self, NULL, &job, p);
    if (rc != 0) {
        log_warn("the hourly prune stopped (%s); it runs again in an hour", chatd_strerror(rc));
        st->stats.prune_failures++;
        st->pruning = 0;
        free(p);
    }
}

static void prune_done(struct chatd_request *req, void *arg, int status)
{
    (void)req;
    struct prune *p = arg;
    struct stream_stats *x = &p->st->stats;
    if (status != 0) {
        log_warn("the hourly prune failed (%s); it runs again in an hour", chatd_strerror(status));
        x->prune_failures++;
        p->st->pruning = 0;
        free(p);
        return;
    }
    if (p->step == P_DEVICES)
        x->pruned_devices += p->affected;
    else if (p->step == P_AGE || p->step == P_COUNT)
        x->pruned_messages += p->affected;
    else
        x->pruned_timeline += p->affected;
    if (!p->again)
        p->step++;
    submit(p);
}

static void on_prune_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct stream *st = arg;
    struct timeval hour = {PERIOD_S, 0};
    evtimer_add(st->prune_timer, &hour);
    if (st->pruning)
        return;
    struct prune *p = calloc(1, sizeof(*p));
    if (!p)
        return;
    const struct config_messages *m = &st->srv->cfg->messages;
    p->st = st;
    p->now_ms = stream_wall_ms();
    p->young_cutoff = p->now_ms - DAY_MS;
    p->age_cutoff = p->now_ms - m->retention_days * DAY_MS;
    if (p->age_cutoff > p->young_cutoff)
        p->age_cutoff = p->young_cutoff;
    p->device_cutoff = p->now_ms - m->device_forget_days * DAY_MS;
    p->count = m->retention_count;
    p->cluster = st->srv->cfg->cluster.enable;
    st->pruning = 1;
    submit(p);
}

void prune_start(struct stream *st)
{
    st->prune_timer = evtimer_new(st->srv->base, on_prune_timer, st);
    struct timeval first = {FIRST_DELAY_S, 0};
    if (st->prune_timer)
        evtimer_add(st->prune_timer, &first);
}

void prune_free(struct stream *st)
{
    if (st->prune_timer)
        event_free(st->prune_timer);
    st->prune_timer = NULL;
}
