/* cluster_order.c - the watermark merge of committed messages, the counter read and the
 * gap reads (cluster_order.h).
 *
 * Messages wait in an array sorted by seq (own batches and announcements arrive mostly
 * in order: an insert is nearly always an append), known ranges above W in a sorted
 * list of disjoint intervals. W moves up through the ranges that touch it, then every
 * message at or below W goes to stream_push in seq order. The same seq may come twice
 * (an announcement and a gap read that raced it): its users are merged, and a session
 * never takes a seq it was sent already (stream.c), so nobody gets it twice.
 *
 * A tick every gap_wait_ms reads the counter (a job) and, when a gap below the known
 * ids has waited gap_wait_ms since W last moved, reads every id from W to the highest
 * known (at most CLUSTER_ORDER_GAP_IDS): the timeline rows of this node's users there,
 * joined with their messages, built into pushes by stream_row_message (as a drain
 * builds them). Those ids are committed (the counter is above them), so the read is
 * complete for every user who had a session here; a user with none needs no push. It
 * reads the known ranges between the gaps too (their rows merge with what was
 * announced): with Redis down every batch of another node is a gap between this node's
 * own, and one gap per tick fell further behind the longer Redis was away.
 *
 * A login here reaches the other nodes' replicas a little later: a node that commits
 * a message for the user meanwhile does not know to put it in its announcement (the
 * user has a timeline row: they count as offline there). So each announcement carries
 * the last of this node's presence changes its sender had applied, and the users who
 * logged in here after it get the announced range read for them from the database (a
 * login read) before the range counts as known.
 *
 * A first session here is sent its timeline up to W (stream.c), and what comes above W
 * through the merge. Messages for the user known here above W already (announced, or
 * committed here, while the user was elsewhere or offline) do not name the user, so a
 * first login with a gap below them reads the user's rows in (W, top] (a catch-up read),
 * and W waits for it: without the wait the ids could be released before the read came
 * back, past the session's ceiling, and never sent. */
#include "cluster_order.h"

#include "clock.h"
#include "db.h"
#include "db_rows.h"
#include "host_self.h"
#include "log.h"
#include "metrics.h"
#include "plugin_loader.h"
#include "post.h"
#include "server.h"
#include "stream.h"
#include "workers.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Users named per gap read query (padded with "", which names nobody, so one text). */
#define GAP_CHUNK    64
#define NAME_MAX_LEN 32

struct order_msg {
    int64_t seq;
    json_t *msg;
    char *receipt_sender;
    char **users;
    size_t n_users;
};

struct order_range {
    int64_t lo, hi;
};

struct order_stats {
    uint64_t released, gap_reads, gap_messages, gap_failures, counter_reads, counter_failures,
        login_reads;
};

/* A first session here, and the change counter its presence went out with. */
struct fresh_login {
    uint64_t seq;
    int64_t at_ms;
    char user[NAME_MAX_LEN + 1];
};

/* Logins kept for login reads: for FRESH_MS (a replica later than that is as good as
 * lost: the node is dropped long before), FRESH_MAX at most (the oldest go first). */
#define FRESH_MS  30000
#define FRESH_MAX 100000

struct cluster_order {
    struct server *srv;
    struct chatd_plugin self; /* what its jobs are tied to */
    int64_t released;         /* W */
    int64_t top;              /* the highest id known to be committed */
    int64_t counted;          /* the counter at its last read: gap reads stop there */
    struct order_msg *pending;
    size_t head, n_pending, cap_pending; /* pending[head .. n_pending) wait */
    struct order_range *ranges;
    size_t n_ranges, cap_ranges;
    int64_t gap_at, gap_since; /* the W at which a gap above it was first seen, and when */
    struct fresh_login *fresh; /* in seq order, fresh[fresh_head .. n_fresh) */
    size_t fresh_head, n_fresh, cap_fresh;
    char *gap_sql; /* made at start, read by the workers */
    struct event *tick;
    int reading, polling; /* a gap read, a counter read in flight */
    size_t holds;         /* catch-up reads in flight: W waits for them */
    struct order_stats stats;
};

enum read_kind { READ_GAP, READ_LOGIN, READ_CATCH_UP };

struct gap_read {
    struct cluster_order *o;
    enum read_kind kind;
    int64_t from, to; /* ids in (from, to] */
    char (*users)[NAME_MAX_LEN + 1];
    size_t n_users;
    struct chatd_rows **rows; /* one block per chunk of users */
    size_t n_rows;
};

struct counter_read {
    struct cluster_order *o;
    int64_t value;
};

static int64_t now_ms(void)
{
    return now_ns() / 1000000;
}

static void msg_free(struct order_msg *m)
{
    json_decref(m->msg);
    free(m->receipt_sender);
    for (size_t i = 0; i < m->n_users; i++)
        free(m->users[i]);
    free(m->users);
}

/* ---- releasing ------------------------------------------------------------------ */

static void release(struct cluster_order *o)
{
    if (o->holds)
        return;
    size_t merged = 0;
    while (merged < o->n_ranges && o->ranges[merged].lo <= o->released + 1) {
        if (o->ranges[merged].hi > o->released)
            o->released = o->ranges[merged].hi;
        merged++;
    }
    if (merged) {
        o->n_ranges -= merged;
        memmove(o->ranges, o->ranges + merged, o->n_ranges * sizeof(*o->ranges));
    }
    while (o->head < o->n_pending && o->pending[o->head].seq <= o->released) {
        struct order_msg *m = &o->pending[o->head++];
        for (size_t i = 0; i < m->n_users; i++)
            stream_push(o->srv, m->users[i], m->msg, m->seq, m->receipt_sender);
        o->stats.released++;
        msg_free(m);
    }
    if (o->head == o->n_pending) {
        o->head = o->n_pending = 0;
    } else if (o->head > 1024 && o->head > o->n_pending / 2) {
        o->n_pending -= o->head;
        memmove(o->pending, o->pending + o->head, o->n_pending * sizeof(*o->pending));
        o->head = 0;
    }
    if (o->top <= o->released) {
        o->gap_since = 0;
    } else if (o->gap_since == 0 || o->gap_at != o->released) {
        o->gap_at = o->released;
        o->gap_since = now_ms();
    }
}

static int range_add(struct cluster_order *o, int64_t lo, int64_t hi)
{
    if (lo <= o->released)
        lo = o->released + 1;
    if (hi < lo)
        return 0;
    if (hi > o->top)
        o->top = hi;
    /* The first range that ends at or after lo - 1 (it may touch or overlap). */
    size_t at = 0;
    while (at < o->n_ranges && o->ranges[at].hi < lo - 1)
        at++;
    size_t end = at;
    while (end < o->n_ranges && o->ranges[end].lo <= hi + 1) {
        if (o->ranges[end].lo < lo)
            lo = o->ranges[end].lo;
        if (o->ranges[end].hi > hi)
            hi = o->ranges[end].hi;
        end++;
    }
    if (end > at) { /* ranges at..end-1 become one */
        o->ranges[at] = (struct order_range){lo, hi};
        memmove(o->ranges + at + 1, o->ranges + end, (o->n_ranges - end) * sizeof(*o->ranges));
        o->n_ranges -= end - at - 1;
        return 0;
    }
    if (o->n_ranges >= CLUSTER_ORDER_RANGES_MAX)
        return -1;
    if (o->n_ranges == o->cap_ranges) {
        size_t cap = o->cap_ranges ? 2 * o->cap_ranges : 16;
        struct order_range *more = realloc(o->ranges, cap * sizeof(*more));
        if (!more)
            return -1;
        o->ranges = more;
        o->cap_ranges = cap;
    }
    memmove(o->ranges + at + 1, o->ranges + at, (o->n_ranges - at) * sizeof(*o->ranges));
    o->ranges[at] = (struct order_range){lo, hi};
    o->n_ranges++;
    return 0;
}

int cluster_order_known(struct server *srv, int64_t lo, int64_t hi)
{
    struct cluster_order *o = srv->cluster_order;
    if (!o)
        return -1;
    int rc = range_add(o, lo, hi);
    release(o);
    return rc;
}

/* ---- waiting messages ----------------------------------------------------------- */

static int users_merge(struct order_msg *m, const char *const *users, size_t n)
{
    char **more = realloc(m->users, (m->n_users + n ? m->n_users + n : 1) * sizeof(*more));
    if (!more)
        return -1;
    m->users = more;
    for (size_t i = 0; i < n; i++) {
        int have = 0;
        for (size_t k = 0; !have && k < m->n_users; k++)
            have = strcmp(m->users[k], users[i]) == 0;
        if (have)
            continue;
        if (!(m->users[m->n_users] = strdup(users[i])))
            return -1;
        m->n_users++;
    }
    return 0;
}

int cluster_order_add(struct server *srv, int64_t seq, json_t *msg, const char *const *users,
                      size_t n, const char *receipt_sender)
{
    struct cluster_order *o = srv->cluster_order;
    if (!o)
        return -1;
    if (seq <= o->released || n == 0)
        return 0;
    if (seq > o->top)
        o->top = seq;
    /* Where it goes: after every seq below it (from the end: mostly an append). */
    size_t at = o->n_pending;
    while (at > o->head && o->pending[at - 1].seq > seq)
        at--;
    if (at > o->head && o->pending[at - 1].seq == seq)
        return users_merge(&o->pending[at - 1], users, n);
    if (o->n_pending == o->cap_pending) {
        size_t cap = o->cap_pending ? 2 * o->cap_pending : 64;
        struct order_msg *more = realloc(o->pending, cap * sizeof(*more));
        if (!more)
            return -1;
        o->pending = more;
        o->cap_pending = cap;
    }
    struct order_msg m = {.seq = seq, .msg = json_incref(msg)};
    if ((receipt_sender && !(m.receipt_sender = strdup(receipt_sender))) ||
        users_merge(&m, users, n) != 0) {
        msg_free(&m);
        return -1;
    }
    memmove(o->pending + at + 1, o->pending + at, (o->n_pending - at) * sizeof(*o->pending));
    o->pending[at] = m;
    o->n_pending++;
    return 0;
}

int cluster_order_room(const struct server *srv, size_t n)
{
    const struct cluster_order *o = srv->cluster_order;
    return o && o->n_pending - o->head + n <= CLUSTER_ORDER_PENDING_MAX &&
           o->n_ranges < CLUSTER_ORDER_RANGES_MAX;
}

int64_t cluster_order_released(const struct server *srv)
{
    return srv->cluster_order ? srv->cluster_order->released : 0;
}

int64_t cluster_order_top(const struct server *srv)
{
    return srv->cluster_order ? srv->cluster_order->top : 0;
}

int cluster_order_waits(const struct server *srv, int64_t lo)
{
    const struct cluster_order *o = srv->cluster_order;
    return o && o->released < lo - 1;
}

/* ---- the counter ---------------------------------------------------------------- */

static int counter_work(struct chatd_db *db, void *arg)
{
    struct counter_read *r = arg;
    return db_query(db, "SELECT value FROM chatd_counters WHERE name = 'message_id'", NULL, 0,
                    db_read_int64, &r->value);
}

static void counter_done(struct chatd_request *req, void *arg, int status)
{
    (void)req;
    struct counter_read *r = arg;
    struct cluster_order *o = r->o;
    o->polling = 0;
    if (!o->srv->tearing_down) {
        if (status == 0) {
            o->stats.counter_reads++;
            if (r->value > o->top)
                o->top = r->value;
            if (r->value > o->counted)
                o->counted = r->value;
            release(o);
        } else {
            o->stats.counter_failures++;
        }
    }
    free(r);
}

static void read_counter(struct cluster_order *o)
{
    static const struct chatd_job job = {
        .work = counter_work, .done = counter_done, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    struct counter_read *r = calloc(1, sizeof(*r));
    if (!r)
        return;
    r->o = o;
    if (pool_submit(o->srv->pool, &o->self, NULL, &job, r) != 0) {
        free(r);
        return;
    }
    o->polling = 1;
}

/* ---- gap reads ------------------------------------------------------------------ */

static char *gap_sql(void)
{
    static const char head[] = "SELECT t.user, " STREAM_MESSAGE_COLUMNS " FROM chatd_timeline t "
                               "JOIN chatd_messages m ON m.id = t.message_id "
                               "WHERE t.message_id > ? AND t.message_id <= ? AND t.user IN (?";
    char *sql = malloc(sizeof(head) + 2 * GAP_CHUNK + 2);
    if (!sql)
        return NULL;
    char *p = sql + sprintf(sql, "%s", head);
    for (int i = 1; i < GAP_CHUNK; i++)
        p += sprintf(p, ",?");
    sprintf(p, ")");
    return sql;
}

static int gap_work(struct chatd_db *db, void *arg)
{
    struct gap_read *g = arg;
    for (size_t first = 0; first < g->n_users; first += GAP_CHUNK) {
        struct chatd_value v[2 + GAP_CHUNK];
        v[0] = (struct chatd_value){.type = CHATD_PARAM_INT64, .i = g->from};
        v[1] = (struct chatd_value){.type = CHATD_PARAM_INT64, .i = g->to};
        for (size_t k = 0; k < GAP_CHUNK; k++) {
            const char *name = first + k < g->n_users ? g->users[first + k] : "";
            v[2 + k] =
                (struct chatd_value){.type = CHATD_PARAM_TEXT, .s = name, .len = strlen(name)};
        }
        int rc = db_query_rows(db, g->o->gap_sql, v, 2 + GAP_CHUNK, 0, &g->rows[g->n_rows]);
        if (rc != 0)
            return rc;
        g->n_rows++;
    }
    return 0;
}

static void gap_free(struct gap_read *g)
{
    for (size_t i = 0; i < g->n_rows; i++)
        db_rows_free(g->rows[i]);
    free(g->rows);
    free(g->users);
    free(g);
}

static void gap_done(struct chatd_request *req, void *arg, int status)
{
    (void)req;
    struct gap_read *g = arg;
    struct cluster_order *o = g->o;
    if (g->kind == READ_GAP)
        o->reading = 0;
    if (g->kind == READ_CATCH_UP)
        o->holds--;
    if (o->srv->tearing_down) {
        gap_free(g);
        return;
    }
    if (status != 0 && g->kind == READ_CATCH_UP) {
        o->stats.gap_failures++;
        log_error("cluster: reading ids %" PRId64 "..%" PRId64 " for %s's first session here "
                  "failed (%s); they are sent at their next login",
                  g->from + 1, g->to, g->users[0], chatd_strerror(status));
        gap_free(g);
        release(o);
        return;
    }
    if (status != 0) {
        /* Not marked known: the range is read again as a gap. */
        o->stats.gap_failures++;
        log_warn("cluster: reading ids %" PRId64 "..%" PRId64 " from the database failed (%s); "
                 "trying again",
                 g->from + 1, g->to, chatd_strerror(status));
        gap_free(g);
        return;
    }
    size_t found = 0;
    for (size_t b = 0; b < g->n_rows; b++) {
        const struct chatd_rows *rows = g->rows[b];
        for (size_t r = 0; rows && r < rows->n_rows; r++) {
            const struct chatd_value *c = rows->values + r * rows->n_cols;
            char user[NAME_MAX_LEN + 1];
            snprintf(user, sizeof(user), "%.*s", (int)c[0].len, c[0].s ? c[0].s : "");
            const char *receipt_sender, *users[1] = {user};
            json_t *msg = stream_row_message(c + 1, 0, &receipt_sender);
            if (!msg || cluster_order_add(o->srv, c[1].i, msg, users, 1, receipt_sender) != 0)
                log_error("cluster: message %" PRId64 " for %s is sent at their next login: %s",
                          c[1].i, user, msg ? "out of memory" : "not a JSON object");
            json_decref(msg);
            found++;
        }
    }
    o->stats.gap_messages += found;
    if (g->kind == READ_GAP) {
        o->stats.gap_reads++;
        log_info("cluster: ids %" PRId64 "..%" PRId64 " were not announced in time; read from "
                 "the database (%zu pushes)",
                 g->from + 1, g->to, found);
    } else {
        o->stats.login_reads++;
    }
    int64_t from = g->from, to = g->to;
    enum read_kind kind = g->kind;
    gap_free(g);
    if (kind == READ_CATCH_UP)
        release(o); /* the ids were known already */
    else if (cluster_order_known(o->srv, from + 1, to) != 0)
        log_error("cluster: ids %" PRId64 "..%" PRId64 " could not be marked known", from + 1, to);
}

/* Read the rows of `users` in ids (from, to] (a job), then mark them known (a catch-up
 * read: let W go on). -1 when it cannot start (the range stays unknown: a gap). */
static int read_rows(struct cluster_order *o, int64_t from, int64_t to, enum read_kind kind,
                     const char *const *users, size_t n)
{
    struct gap_read *g = calloc(1, sizeof(*g));
    size_t chunks = (n + GAP_CHUNK - 1) / GAP_CHUNK;
    if (!g || !(g->users = calloc(n, sizeof(*g->users))) ||
        !(g->rows = calloc(chunks, sizeof(*g->rows)))) {
        if (g)
            free(g->users);
        free(g);
        return -1;
    }
    g->o = o;
    g->kind = kind;
    g->from = from;
    g->to = to;
    for (size_t i = 0; i < n; i++)
        if (strlen(users[i]) <= NAME_MAX_LEN)
            snprintf(g->users[g->n_users++], NAME_MAX_LEN + 1, "%s", users[i]);
    static const struct chatd_job job = {
        .work = gap_work, .done = gap_done, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    if (pool_submit(o->srv->pool, &o->self, NULL, &job, g) != 0) {
        gap_free(g);
        return -1;
    }
    return 0;
}

static void read_gap(struct cluster_order *o)
{
    /* Not past the counter: an announcement of ids nobody committed (a confused peer,
     * another cluster's node on this Redis) would otherwise carry W past ids still to
     * come, whose messages would then never be pushed. */
    int64_t to = o->top < o->counted ? o->top : o->counted;
    if (to <= o->released)
        return;
    if (to - o->released > CLUSTER_ORDER_GAP_IDS)
        to = o->released + CLUSTER_ORDER_GAP_IDS;
    size_t n = HASH_COUNT(o->srv->users);
    if (n == 0) { /* nobody here to push to */
        cluster_order_known(o->srv, o->released + 1, to);
        return;
    }
    const char **users = calloc(n, sizeof(*users));
    if (!users)
        return;
    size_t k = 0;
    struct user *u, *tmp;
    HASH_ITER (hh, o->srv->users, u, tmp)
        users[k++] = u->name;
    if (read_rows(o, o->released, to, READ_GAP, users, k) == 0)
        o->reading = 1;
    free(users);
}

/* ---- logins --------------------------------------------------------------------- */

static void fresh_prune(struct cluster_order *o, int64_t now)
{
    while (o->fresh_head < o->n_fresh && (now - o->fresh[o->fresh_head].at_ms > FRESH_MS ||
                                          o->n_fresh - o->fresh_head > FRESH_MAX))
        o->fresh_head++;
    if (o->fresh_head == o->n_fresh)
        o->fresh_head = o->n_fresh = 0;
}

void cluster_order_login(struct server *srv, const char *user, uint64_t seq)
{
    struct cluster_order *o = srv->cluster_order;
    if (!o || strlen(user) > NAME_MAX_LEN)
        return;
    int64_t now = now_ms();
    fresh_prune(o, now);
    if (o->n_fresh == o->cap_fresh) {
        if (o->fresh_head > 0) {
            o->n_fresh -= o->fresh_head;
            memmove(o->fresh, o->fresh + o->fresh_head, o->n_fresh * sizeof(*o->fresh));
            o->fresh_head = 0;
        } else {
            size_t cap = o->cap_fresh ? 2 * o->cap_fresh : 64;
            struct fresh_login *more = realloc(o->fresh, cap * sizeof(*more));
            if (!more) {
                log_error("cluster: %s's login is not remembered: out of memory; what another "
                          "node posts to them in the next moment comes at their next login",
                          user);
                return;
            }
            o->fresh = more;
            o->cap_fresh = cap;
        }
    }
    struct fresh_login *f = &o->fresh[o->n_fresh++];
    f->seq = seq;
    f->at_ms = now;
    snprintf(f->user, sizeof(f->user), "%s", user);
    if (o->top > o->released) {
        if (read_rows(o, o->released, o->top, READ_CATCH_UP, &user, 1) == 0)
            o->holds++;
        else
            log_error("cluster: %s's messages in ids %" PRId64 "..%" PRId64
                      " are sent at their next login: out of memory",
                      user, o->released + 1, o->top);
    }
}

int cluster_order_announced(struct server *srv, int64_t lo, int64_t hi, uint64_t applied)
{
    struct cluster_order *o = srv->cluster_order;
    if (!o)
        return -1;
    fresh_prune(o, now_ms());
    /* The logins the sender did not know of: the newest ones (in seq order). */
    size_t first = o->n_fresh;
    while (first > o->fresh_head && o->fresh[first - 1].seq > applied)
        first--;
    if (first == o->n_fresh)
        return cluster_order_known(srv, lo, hi);
    size_t n = o->n_fresh - first;
    const char **users = calloc(n, sizeof(*users));
    for (size_t i = 0; users && i < n; i++)
        users[i] = o->fresh[first + i].user;
    /* Out of memory the range stays unknown: a gap read reads it for everyone. */
    int rc = users ? read_rows(o, lo - 1, hi, READ_LOGIN, users, n) : -1;
    free(users);
    return rc;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cluster_order *o = arg;
    if (!o->polling)
        read_counter(o);
    if (!o->reading && o->top > o->released && o->gap_since &&
        now_ms() - o->gap_since >= o->srv->cfg->cluster.gap_wait_ms)
        read_gap(o);
}

/* ---- life ----------------------------------------------------------------------- */

int cluster_order_start(struct server *srv)
{
    struct cluster_order *o = calloc(1, sizeof(*o));
    if (!o || host_self_init(&o->self, srv) != 0) {
        free(o);
        return -1;
    }
    o->srv = srv;
    o->released = o->top = o->counted = post_last_id(srv);
    int64_t ms = srv->cfg->cluster.gap_wait_ms;
    struct timeval every = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    if (!(o->gap_sql = gap_sql()) ||
        !(o->tick = event_new(srv->base, -1, EV_PERSIST, on_tick, o)) ||
        event_add(o->tick, &every) != 0) {
        if (o->tick)
            event_free(o->tick);
        free(o->gap_sql);
        host_self_free(&o->self);
        free(o);
        return -1;
    }
    srv->cluster_order = o;
    return 0;
}

void cluster_order_free(struct server *srv)
{
    struct cluster_order *o = srv->cluster_order;
    if (!o)
        return;
    for (size_t i = o->head; i < o->n_pending; i++)
        msg_free(&o->pending[i]);
    free(o->pending);
    free(o->ranges);
    free(o->fresh);
    event_free(o->tick);
    free(o->gap_sql);
    host_self_free(&o->self);
    free(o);
    srv->cluster_order = NULL;
}

void cluster_order_render_metrics(const struct server *srv, struct evbuffer *out)
{
    const struct cluster_order *o = srv->cluster_order;
    if (!o)
        return;
    const struct order_stats *s = &o->stats;
    metrics_gauge(out, "chatd_cluster_released_id",
                  "The id below which every message is known here and was pushed.",
                  (double)o->released);
    metrics_gauge(out, "chatd_cluster_waiting_messages",
                  "Committed messages waiting for an id below them to be known.",
                  (double)(o->n_pending - o->head));
    metrics_gauge(out, "chatd_cluster_waiting_ranges", "Known id ranges above a gap.",
                  (double)o->n_ranges);
    metrics_counter(out, "chatd_cluster_released_total",
                    "Messages released from the merge to this node's sessions.", s->released);
    metrics_counter(out, "chatd_cluster_gap_reads_total",
                    "Id ranges not announced within gap_wait_ms, read from the database.",
                    s->gap_reads);
    metrics_counter(out, "chatd_cluster_gap_read_messages_total", "Pushes built from gap reads.",
                    s->gap_messages);
    metrics_counter(out, "chatd_cluster_gap_read_failures_total", "Gap reads that failed.",
                    s->gap_failures);
    metrics_counter(out, "chatd_cluster_login_reads_total",
                    "Announced ranges read from the database for users who logged in here "
                    "before the sender knew of it.",
                    s->login_reads);
    metrics_counter(out, "chatd_cluster_counter_reads_total",
                    "Reads of the message id counter (every gap_wait_ms).", s->counter_reads);
}
