/* stream.c - the read side of delivery version 2 (docs/architecture.md, "Offline
 * delivery in the host"): what each logged-in session is sent, and from where.
 *
 * A login binds its session with a position: the login's `since`, else its device's
 * acknowledged position, else (version 1) the user's "" position, the newest message
 * pushed to any session of theirs. From the bind until the session has been sent its
 * timeline rows after that position (stream_drain.c), pushes for it wait in its own
 * held list; then they go out, skipping every seq the drain already sent, so a message
 * both read from the timeline and pushed live arrives once. Several sessions of one
 * user drain independently.
 *
 * Message pushes a version 1 session never wrote (it was cut off, or its connection
 * broke) get timeline rows again when it ends (post_store_rows), and when it was the
 * user's last session the "" position goes back to just before the first of them, so
 * the next version 1 login is sent them (at least once, as in version 1). Sessions of
 * devices need neither: their device's position only moves by what they acknowledge,
 * and the user's messages all have rows while they have a device. */
#include "stream_internal.h"

#include "cluster.h"
#include "cluster_order.h"
#include "commands.h"
#include "host_self.h"
#include "json_emit.h"
#include "log.h"
#include "metrics.h"
#include "migrations.h"
#include "post.h"
#include "server.h"
#include "session.h"
#include "users.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct stream_user *stream_user(struct stream *st, const char *name, int create)
{
    struct stream_user *u;
    HASH_FIND_STR(st->users, name, u);
    if (u || !create)
        return u;
    size_t len = strlen(name);
    u = calloc(1, sizeof(*u) + len + 1);
    if (!u || !(u->devices = calloc(1, sizeof(*u->devices)))) {
        free(u);
        return NULL;
    }
    memcpy(u->name, name, len + 1);
    /* Room for "" only, the version 1 position: devices_get grows it for the others
     * (most users never have one, and every logged-in user holds this). */
    u->cap_devices = 1;
    u->n_devices = 1;
    HASH_ADD_KEYPTR(hh, st->users, u->name, len, u);
    return u;
}

void stream_user_release(struct stream *st, struct stream_user *u)
{
    if (u->n_sessions || u->jobs || u->held || u->loading || u->on_dirty_list)
        return;
    HASH_DEL(st->users, u);
    free(u->devices);
    free(u);
}

struct stream_user *stream_hold(struct server *srv, const char *user)
{
    struct stream_user *u = srv->stream ? stream_user(srv->stream, user, 0) : NULL;
    if (u)
        u->held++;
    return u;
}

void stream_release(struct server *srv, struct stream_user *u)
{
    u->held--;
    stream_user_release(srv->stream, u);
}

size_t stream_sessions(const struct stream_user *u)
{
    return u->n_sessions;
}

/* ---- logins ------------------------------------------------------------------------ */

static int device_name_ok(const char *name, size_t len)
{
    if (len < 1 || len > STREAM_DEVICE_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

int stream_login_parse(const json_t *body, struct stream_login *out, char *reason, size_t len)
{
    const json_t *device = json_object_get(body, "device");
    const json_t *ack = json_object_get(body, "ack");
    const json_t *since = json_object_get(body, "since");
    *out = (struct stream_login){0, NULL, -1};
    if (device && (!json_is_string(device) ||
                   !device_name_ok(json_string_value(device), json_string_length(device)))) {
        snprintf(reason, len, "device must be 1 to 64 of A-Z a-z 0-9 _ . -");
        return CHATD_EINVAL;
    }
    if (ack && !json_is_boolean(ack)) {
        snprintf(reason, len, "ack must be true or false");
        return CHATD_EINVAL;
    }
    if (since && (!json_is_integer(since) || json_integer_value(since) < 0)) {
        snprintf(reason, len, "since must be an integer >= 0");
        return CHATD_EINVAL;
    }
    if (since && !json_is_true(ack)) {
        snprintf(reason, len, "since needs \"ack\":true");
        return CHATD_EINVAL;
    }
    if (json_is_true(ack)) {
        out->ack = 1;
        out->device = device ? json_string_value(device) : "default";
        out->since = since ? (int64_t)json_integer_value(since) : -1;
    }
    return 0;
}

uint64_t stream_login_bound(struct server *srv, struct session *s, const char *user,
                            const struct stream_login *lg)
{
    struct stream *st = srv->stream;
    static uint64_t logins;
    struct stream_user *u = st ? stream_user(st, user, 1) : NULL;
    struct stream_session *ss = u ? calloc(1, sizeof(*ss)) : NULL;
    if (ss && lg->ack && !(ss->device = strdup(lg->device))) {
        free(ss);
        ss = NULL;
    }
    if (!ss) {
        log_error("session %llu (%s): out of memory; it is sent no stored messages",
                  (unsigned long long)s->id, s->peer);
        if (u)
            stream_user_release(st, u);
        return 0;
    }
    ss->s = s;
    ss->u = u;
    ss->state = SS_REPLY;
    ss->ack = lg->ack;
    if (lg->ack)
        u->has_devices = 1; /* from now on every message for u gets a timeline row */
    ss->since = lg->since;
    /* With [cluster], what this node released: later ids come through its merge. */
    ss->ceiling = srv->cluster_order ? cluster_order_released(srv) : post_last_id(srv);
    ss->login = ++logins;
    ss->next = u->sessions;
    u->sessions = ss;
    u->n_sessions++;
    u->n_draining++;
    s->stream = ss;
    return ss->login;
}

/* Where the session starts, now that the user's devices are known. */
static void session_begin(struct stream *st, struct stream_session *ss)
{
    struct stream_user *u = ss->u;
    int64_t v1 = u->devices[0].acked;
    u->devices[0].seen_at = stream_wall_ms();
    if (!ss->ack) {
        ss->position = v1;
    } else {
        struct device *d = devices_get(st, u, ss->device, v1);
        int64_t acked = d ? d->acked : v1;
        /* A since past every seq given out would skip (and let ack pass) the messages
         * still to come up to it: it counts as the newest. With [cluster] the newest is
         * the highest id known here, which may be above W: what the device has between
         * them is not sent again (the drain then reads nothing). */
        int64_t newest = st->srv->cluster_order && cluster_order_top(st->srv) > ss->ceiling
                             ? cluster_order_top(st->srv)
                             : ss->ceiling;
        int64_t since = ss->since > newest ? newest : ss->since;
        ss->position = since >= 0 ? since : acked;
        if (d)
            d->seen_at = stream_wall_ms();
        devices_dirty(st, u);
    }
    ss->sent_max = ss->position;
    ss->state = SS_DRAINING;
    drain_start(st, ss);
}

void stream_sessions_loaded(struct stream *st, struct stream_user *u, int ok)
{
    for (struct stream_session *ss = u->sessions; ss; ss = ss->next) {
        if (ss->state != SS_LOADING)
            continue;
        if (ok) {
            session_begin(st, ss);
        } else {
            /* Its position is not known: it is sent what comes from now on. */
            st->stats.drain_failures++;
            stream_go_live(st, ss);
        }
    }
}

void stream_login_replied(struct server *srv, chatd_session_id session, uint64_t login, int success)
{
    struct stream *st = srv->stream;
    struct session *s = session_find(srv, session);
    struct stream_session *ss = s ? s->stream : NULL;
    if (!st || !ss || ss->login != login || ss->state != SS_REPLY)
        return;
    /* A name longer than the tables keep has no timeline: nothing can be posted to it. */
    if (!success || !srv->cfg->db.enable || srv->check_only ||
        strlen(ss->u->name) > STREAM_NAME_MAX) {
        stream_go_live(st, ss);
        return;
    }
    ss->state = SS_LOADING;
    if (ss->u->loaded)
        session_begin(st, ss);
    else if (!ss->u->loading)
        devices_load(st, ss->u);
}

/* ---- sending ----------------------------------------------------------------------- */

static int unsent_keep(struct stream_session *ss, int64_t seq)
{
    if (ss->unsent_head + ss->n_unsent == ss->cap_unsent) {
        if (ss->unsent_head > 0) {
            memmove(ss->unsent, ss->unsent + ss->unsent_head, ss->n_unsent * sizeof(*ss->unsent));
            ss->unsent_head = 0;
        } else {
            size_t cap = ss->cap_unsent ? ss->cap_unsent * 2 : 16;
            struct unsent_entry *more = realloc(ss->unsent, cap * sizeof(*more));
            if (!more)
                return -1;
            ss->unsent = more;
            ss->cap_unsent = cap;
        }
    }
    ss->unsent[ss->unsent_head + ss->n_unsent++] = (struct unsent_entry){ss->s->out_added, seq};
    return 0;
}

static uint64_t written(const struct session *s)
{
    return s->out_added - session_output_pending(s);
}

/* Forget the pushes ss's session has written. */
static void unsent_advance(struct stream_session *ss)
{
    if (ss->n_unsent == 0)
        return;
    uint64_t done = written(ss->s);
    while (ss->n_unsent > 0 && ss->unsent[ss->unsent_head].end <= done) {
        ss->unsent_head++;
        ss->n_unsent--;
    }
    if (ss->n_unsent == 0)
        ss->unsent_head = 0;
}

void stream_session_wrote(struct session *s)
{
    struct stream_session *ss = s->stream;
    if (!ss)
        return;
    unsent_advance(ss);
    drain_wrote(ss);
}

/* Grow the ring of receipts owed (it starts empty: a session that is sent no private
 * message costs nothing), keeping its order. 0, or -1 at its bound or out of memory. */
static int receipts_grow(struct stream_session *ss)
{
    size_t cap = ss->cap_receipts ? ss->cap_receipts * 2 : 16;
    if (ss->cap_receipts == STREAM_RECEIPTS_MAX)
        return -1;
    if (cap > STREAM_RECEIPTS_MAX)
        cap = STREAM_RECEIPTS_MAX;
    struct receipt_entry *ring = malloc(cap * sizeof(*ring));
    if (!ring)
        return -1;
    for (size_t i = 0; i < ss->n_receipts; i++)
        ring[i] = ss->receipts[(ss->receipts_head + i) % ss->cap_receipts];
    free(ss->receipts);
    ss->receipts = ring;
    ss->cap_receipts = cap;
    ss->receipts_head = 0;
    return 0;
}

static void receipt_keep(struct stream_session *ss, int64_t seq, const char *sender)
{
    if (ss->n_receipts == ss->cap_receipts && receipts_grow(ss) != 0 && ss->cap_receipts == 0)
        return; /* no memory for the first: this receipt is not sent */
    size_t at = (ss->receipts_head + ss->n_receipts) % ss->cap_receipts;
    if (ss->n_receipts == ss->cap_receipts)
        ss->receipts_head = (ss->receipts_head + 1) % ss->cap_receipts; /* the oldest goes */
    else
        ss->n_receipts++;
    ss->receipts[at].seq = seq;
    snprintf(ss->receipts[at].sender, sizeof(ss->receipts[at].sender), "%s", sender);
}

/* msg as one line in st->line. 0, or -1 when it cannot be serialised. */
static int format(struct stream *st, json_t *msg, int64_t seq)
{
    if (seq > 0 && msg == st->line_msg && seq == st->line_seq)
        return 0;
    json_decref(st->line_msg);
    st->line_msg = NULL;
    st->line.len = 0;
    if (json_emit(&st->line, msg) < 0 || line_buffer_append(&st->line, "\n", 1) < 0)
        return -1;
    if (seq > 0) {
        st->line_msg = json_incref(msg);
        st->line_seq = seq;
    }
    return 0;
}

void stream_line_from_stored(struct server *srv, json_t *msg, int64_t seq, const char *stored,
                             size_t len, int with_msg_id)
{
    struct stream *st = srv->stream;
    if (!st || len < 3 || stored[0] != '{' || stored[len - 1] != '}')
        return; /* "{}": no member for ",\"seq\"" to follow */
    json_decref(st->line_msg);
    st->line_msg = NULL;
    struct line_buffer *b = &st->line;
    b->len = 0;
    static const char seq_key[] = ",\"seq\":", msg_id_key[] = ",\"msg_id\":\"";
    if (line_buffer_append(b, stored, len - 1) < 0 ||
        line_buffer_append(b, seq_key, sizeof(seq_key) - 1) < 0 || json_emit_integer(b, seq) < 0 ||
        (with_msg_id && (line_buffer_append(b, msg_id_key, sizeof(msg_id_key) - 1) < 0 ||
                         json_emit_integer(b, seq) < 0 || line_buffer_append(b, "\"", 1) < 0)) ||
        line_buffer_append(b, "}\n", 2) < 0) {
        b->len = 0;
        return;
    }
    st->line_msg = json_incref(msg);
    st->line_seq = seq;
}

int stream_send(struct stream *st, struct stream_session *ss, json_t *msg, int64_t seq,
                const char *receipt_sender)
{
    struct session *s = ss->s;
    if (seq > 0 && seq <= ss->sent_max)
        return 0; /* it had it already */
    if (s->closing || format(st, msg, seq) != 0 ||
        session_send_line(s, st->line.data, st->line.len) != 0)
        return -1;
    if (seq <= 0)
        return 0;
    ss->sent_max = seq;
    struct stream_user *u = ss->u;
    if (seq > u->devices[0].acked) {
        u->devices[0].acked = seq;
        devices_dirty(st, u);
    }
    if (ss->ack && receipt_sender)
        receipt_keep(ss, seq, receipt_sender);
    if (!ss->ack && unsent_keep(ss, seq) != 0) {
        /* It could not get its row again if this session ended first: it ends now. */
        log_error("session %llu (%s) disconnected: out of memory", (unsigned long long)s->id,
                  s->peer);
        session_close(s, "out of memory");
        return -1;
    }
    return 0;
}

static void held_free(struct stream *st, struct stream_session *ss)
{
    for (size_t i = 0; i < ss->n_held; i++) {
        json_decref(ss->held[i].msg);
        free(ss->held[i].receipt_sender);
    }
    st->stats.held -= ss->n_held;
    free(ss->held);
    ss->held = NULL;
    ss->n_held = ss->cap_held = 0;
}

void stream_go_live(struct stream *st, struct stream_session *ss)
{
    if (ss->state == SS_LIVE)
        return;
    ss->state = SS_LIVE;
    ss->u->n_draining--;
    for (size_t i = 0; i < ss->n_held; i++)
        stream_send(st, ss, ss->held[i].msg, ss->held[i].seq, ss->held[i].receipt_sender);
    held_free(st, ss);
}

/* Hold a push for a session that is not live yet. Past STREAM_HELD_MAX, message pushes
 * go (the drain reads them again from the timeline) and others are dropped. */
static void hold(struct stream *st, struct stream_session *ss, json_t *msg, int64_t seq,
                 const char *receipt_sender)
{
    if (ss->n_held >= STREAM_HELD_MAX) {
        size_t kept = 0;
        for (size_t i = 0; i < ss->n_held; i++) {
            if (ss->held[i].seq > 0) {
                json_decref(ss->held[i].msg);
                free(ss->held[i].receipt_sender);
                st->stats.held_dropped++;
                ss->reread = 1;
            } else {
                ss->held[kept++] = ss->held[i];
            }
        }
        st->stats.held -= ss->n_held - kept;
        ss->n_held = kept;
    }
    if (seq > 0 && ss->reread) {
        st->stats.held_dropped++; /* behind dropped ones: read in order with them */
        return;
    }
    if (ss->n_held >= STREAM_HELD_MAX) {
        st->stats.live_dropped++;
        return;
    }
    if (ss->n_held == ss->cap_held) {
        size_t cap = ss->cap_held ? ss->cap_held * 2 : 16;
        struct held_push *more = realloc(ss->held, cap * sizeof(*more));
        if (!more) {
            ss->reread |= seq > 0;
            st->stats.live_dropped += seq <= 0;
            return;
        }
        ss->held = more;
        ss->cap_held = cap;
    }
    char *sender = receipt_sender ? strdup(receipt_sender) : NULL;
    if (receipt_sender && !sender) {
        ss->reread = 1;
        return;
    }
    ss->held[ss->n_held++] = (struct held_push){json_incref(msg), seq, sender};
    st->stats.held++;
}

static size_t push_all(struct stream *st, struct stream_user *u, json_t *msg, int64_t seq,
                       const char *receipt_sender)
{
    size_t took = 0;
    for (struct stream_session *ss = u ? u->sessions : NULL; ss; ss = ss->next) {
        if (ss->s->closing)
            continue;
        if (ss->state != SS_LIVE) {
            hold(st, ss, msg, seq, receipt_sender);
            took++;
        } else if (stream_send(st, ss, msg, seq, receipt_sender) == 0) {
            took++;
        }
    }
    return took;
}

static struct stream_user *find(struct server *srv, const char *user)
{
    return srv->stream ? stream_user(srv->stream, user, 0) : NULL;
}

size_t stream_push(struct server *srv, const char *user, json_t *msg, int64_t seq,
                   const char *receipt_sender)
{
    return seq > 0 ? push_all(srv->stream, find(srv, user), msg, seq, receipt_sender) : 0;
}

size_t stream_push_held(struct server *srv, struct stream_user *u, json_t *msg, int64_t seq,
                        const char *receipt_sender)
{
    return seq > 0 ? push_all(srv->stream, u, msg, seq, receipt_sender) : 0;
}

size_t stream_push_live(struct server *srv, const char *user, json_t *msg)
{
    return push_all(srv->stream, find(srv, user), msg, 0, NULL);
}

int stream_needs_row(struct server *srv, const char *user, const struct stream_user *u)
{
    /* With [cluster], a session on another node needs one too: it is sent the message
     * from there, or (that node gone, or Redis lost) at its next login. While Redis is
     * down, and for a lease after it is back (the replica is rebuilt as the other nodes
     * register again), this node cannot know of such sessions: every recipient gets one. */
    return !u || u->n_sessions == 0 || u->has_devices || u->n_draining > 0 ||
           cluster_remote_sessions(srv, user) > 0 || !cluster_presence_known(srv);
}

/* ---- sessions ending --------------------------------------------------------------- */

/* A version 1 session ends with message pushes it never wrote: they get rows again and,
 * when nobody else of the user is online, the "" position goes back before them. */
static void unsent_rows(struct stream *st, struct stream_session *ss)
{
    unsent_advance(ss);
    if (ss->n_unsent == 0)
        return;
    struct stream_user *u = ss->u;
    int64_t *ids = malloc(ss->n_unsent * sizeof(*ids));
    for (size_t i = 0; ids && i < ss->n_unsent; i++)
        ids[i] = ss->unsent[ss->unsent_head + i].seq;
    if (!ids) {
        log_error("%zu messages pushed to %s and not written are lost: out of memory", ss->n_unsent,
                  u->name);
        return;
    }
    post_store_rows(st->srv, u->name, ids, ss->n_unsent);
    st->stats.unsent_rows += ss->n_unsent;
    if (u->n_sessions == 1 && ids[0] - 1 < u->devices[0].acked) {
        u->devices[0].acked = ids[0] - 1;
        devices_dirty(st, u);
    }
    log_info("session %llu (%s): %zu messages pushed to it and not written come again at %s's "
             "next login",
             (unsigned long long)ss->s->id, ss->s->peer, ss->n_unsent, u->name);
    free(ids);
}

void stream_session_end(struct server *srv, struct session *s)
{
    struct stream *st = srv->stream;
    struct stream_session *ss = s->stream;
    if (!st || !ss)
        return;
    struct stream_user *u = ss->u;
    if (!ss->ack)
        unsent_rows(st, ss);
    drain_abandon(ss);
    if (ss->state != SS_LIVE)
        u->n_draining--;
    held_free(st, ss);
    for (struct stream_session **p = &u->sessions; *p; p = &(*p)->next) {
        if (*p == ss) {
            *p = ss->next;
            break;
        }
    }
    u->n_sessions--;
    u->devices[0].seen_at = stream_wall_ms();
    if (ss->ack) {
        struct device *d = devices_get(st, u, ss->device, u->devices[0].acked);
        if (d)
            d->seen_at = stream_wall_ms();
    }
    free(ss->receipts);
    free(ss->unsent);
    free(ss->device);
    free(ss);
    s->stream = NULL;
    if (u->n_sessions == 0)
        devices_logout(st, u);
    stream_user_release(st, u);
}

/* ---- set-up and metrics ------------------------------------------------------------ */

int stream_new(struct server *srv)
{
    struct stream *st = calloc(1, sizeof(*st));
    if (!st || host_self_init(&st->self, srv) != 0) {
        free(st);
        return -1;
    }
    st->srv = srv;
    st->waiting_tail = &st->waiting;
    st->self.desc = &delivery_descriptor;
    srv->stream = st;
    if (ack_register(st) != 0) {
        stream_free(srv);
        return -1;
    }
    return 0;
}

int stream_migrate(struct server *srv, struct chatd_db *db, char *err, size_t errlen)
{
    char why[768];
    if (migrations_apply(db, &srv->stream->self, why, sizeof(why)) == 0)
        return 0;
    snprintf(err, errlen, "chatd's own tables: %s", why);
    return -1;
}

void stream_start(struct server *srv)
{
    if (srv->stream && srv->cfg->db.enable && !srv->check_only)
        prune_start(srv->stream);
}

void stream_free(struct server *srv)
{
    struct stream *st = srv->stream;
    if (!st)
        return;
    prune_free(st);
    devices_free(st);
    commands_remove_plugin(srv, &st->self);
    struct stream_user *u, *tmp;
    HASH_ITER (hh, st->users, u, tmp) {
        HASH_DEL(st->users, u);
        free(u->devices);
        free(u);
    }
    line_buffer_free(&st->line);
    json_decref(st->line_msg);
    host_self_free(&st->self);
    free(st);
    srv->stream = NULL;
}

void stream_render_metrics(struct server *srv, struct evbuffer *out)
{
    const struct stream *st = srv->stream;
    if (!st)
        return;
    const struct stream_stats *x = &st->stats;
    metrics_gauge(out, "chatd_stream_held", "Pushes held while sessions are sent their timeline.",
                  (double)x->held);
    metrics_gauge(out, "chatd_stream_users", "Users whose positions are in memory.",
                  (double)HASH_COUNT(st->users));
    metrics_counter(out, "chatd_stream_drains_total", "Session drains of the timeline started.",
                    x->drains);
    metrics_counter(out, "chatd_stream_drained_total", "Timeline messages pushed by drains.",
                    x->drained);
    metrics_counter(out, "chatd_stream_drain_failures_total",
                    "Drains given up (database errors), or positions that could not be read.",
                    x->drain_failures);
    metrics_counter(out, "chatd_stream_held_dropped_total",
                    "Held message pushes dropped past the held list's bound (read again from "
                    "the timeline).",
                    x->held_dropped);
    metrics_counter(out, "chatd_stream_live_dropped_total",
                    "Held pushes that are not messages dropped past the held list's bound.",
                    x->live_dropped);
    metrics_counter(out, "chatd_stream_acks_total", "ack commands accepted.", x->acks);
    metrics_counter(out, "chatd_stream_receipts_delivered_total", "Delivered receipts pushed.",
                    x->receipts_delivered);
    metrics_counter(out, "chatd_stream_receipts_read_total", "Read receipts pushed.",
                    x->receipts_read);
    metrics_counter(out, "chatd_stream_positions_written_total", "Device positions written.",
                    x->positions_written);
    metrics_counter(out, "chatd_stream_position_write_failures_total",
                    "Writes of device positions that failed.", x->position_write_failures);
    metrics_counter(out, "chatd_stream_devices_forgotten_total",
                    "Devices forgotten past [messages] max_devices.", x->devices_forgotten);
    metrics_counter(out, "chatd_stream_unsent_rows_total",
                    "Messages pushed to a session that ended before writing them, given "
                    "timeline rows again.",
                    x->unsent_rows);
    metrics_counter(out, "chatd_stream_timeline_deleted_at_logout_total",
                    "Timeline rows deleted at a user's last logout (below all their positions).",
                    x->timeline_deleted_at_logout);
    metrics_counter(out, "chatd_prune_runs_total", "Hourly prunes finished.", x->prunes);
    metrics_counter(out, "chatd_prune_failures_total", "Hourly prunes that failed.",
                    x->prune_failures);
    metrics_counter(out, "chatd_pruned_messages_total", "Messages deleted by retention.",
                    x->pruned_messages);
    metrics_counter(out, "chatd_pruned_timeline_total", "Timeline rows deleted by the prune.",
                    x->pruned_timeline);
    metrics_counter(out, "chatd_pruned_devices_total",
                    "Devices forgotten after device_forget_days.", x->pruned_devices);
}
