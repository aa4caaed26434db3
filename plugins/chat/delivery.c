/* delivery.c - getting messages to a user's sessions in order and exactly once as far
 * as the server can tell:
 *  - live pushes go straight out, or wait in `held` while stored messages drain;
 *  - a drain reads a batch of stored private messages and unread group messages,
 *    sends them oldest first, waits until its sessions have written them to the
 *    network, and only then acknowledges them (deletes the private ones, moves the
 *    group read positions) before reading the next batch;
 *  - a read position moves only for a group message really sent. */
#include "chat.h"
#include "drain_plan.h"

#include <stdlib.h>
#include <string.h>

/* Text sent per drain batch, at least one message. Keep max_output_bytes well above it
 * (and above the largest message): a batch is queued at once. */
#define DRAIN_BYTES (64 * 1024)
/* How often a drain looks whether its batch has reached the network, and how long it
 * waits before it gives up (the batch then stays stored and is sent again later). */
#define FLUSH_POLL_MS 10
#define FLUSH_WAIT_MS 30000
/* Pushes held for one user while a drain runs. Past it, private messages are stored
 * for later instead, and group messages wait in the group's log. */
#define HELD_MAX 1000
/* A failed drain is tried again this many times, this far apart. */
#define DRAIN_RETRIES  3
#define DRAIN_RETRY_MS 500

static int64_t position_of(struct online_user *u, int64_t group_id)
{
    struct read_position *p;
    HASH_FIND(hh, u->positions, &group_id, sizeof(group_id), p);
    return p ? p->position : 0;
}

void chat_advance_position(struct online_user *u, int64_t group_id, int64_t id)
{
    struct read_position *p;
    HASH_FIND(hh, u->positions, &group_id, sizeof(group_id), p);
    if (!p) {
        p = calloc(1, sizeof(*p));
        if (!p)
            return;
        p->group_id = group_id;
        HASH_ADD(hh, u->positions, group_id, sizeof(p->group_id), p);
    }
    if (id > p->position) {
        p->position = id;
        u->positions_dirty = 1;
    }
}

/* Send now; 1 when at least one session took it. */
static int send_now(struct online_user *u, const struct held_push *h)
{
    size_t delivered = 0;
    HOST->push_user(chat.self, u->name, h->msg, &delivered);
    if (delivered > 0 && h->may_advance && u->caught_up)
        chat_advance_position(u, h->group_id, h->group_msg_id);
    return delivered > 0;
}

int chat_deliver(struct online_user *u, json_t *msg)
{
    return chat_deliver_group(u, msg, 0, 0, 0);
}

int chat_deliver_group(struct online_user *u, json_t *msg, int64_t group_id, int64_t group_msg_id,
                       int may_advance)
{
    if (!msg)
        return 0;
    struct held_push push = {msg, group_id, group_msg_id, may_advance && group_id};
    if (!u->draining)
        return send_now(u, &push);
    if (u->n_held >= HELD_MAX) {
        json_decref(msg);
        if (group_id) {
            /* It waits in the group's log: fetch it with another drain, and move no read
             * position of this user until that drain is done. */
            u->caught_up = 0;
            u->drain_again = 1;
        }
        return 0;
    }
    if (u->n_held == u->cap_held) {
        size_t cap = u->cap_held ? u->cap_held * 2 : 16;
        struct held_push *more = realloc(u->held, cap * sizeof(*more));
        if (!more) {
            json_decref(msg);
            return 0;
        }
        u->held = more;
        u->cap_held = cap;
    }
    u->held[u->n_held++] = push;
    return 1;
}

/* ---- storing held private messages of a user who left ------------------------- */

/* One held private message, copied out of its push for a worker. */
struct kept {
    char *from, *msg_id, *text;
    size_t text_len;
    int64_t ts;
};

struct keep_job {
    char *user;
    int64_t user_id;
    struct kept *items;
    size_t n;
};

static void keep_free(struct keep_job *j)
{
    for (size_t i = 0; i < j->n; i++) {
        free(j->items[i].from);
        free(j->items[i].msg_id);
        free(j->items[i].text);
    }
    free(j->items);
    free(j->user);
    free(j);
}

/* All of them in one transaction: one commit, however many were held. */
static int keep_work(struct chatd_db *db, void *arg)
{
    struct keep_job *j = arg;
    int rc = HOST->db_exec(db, "START TRANSACTION", NULL, 0, NULL, NULL);
    for (size_t i = 0; rc == 0 && i < j->n; i++) {
        const struct kept *k = &j->items[i];
        /* Parameters in the order of the statement's marks. */
        struct chatd_value row[5] = {
            {.type = CHATD_PARAM_INT64, .i = j->user_id},
            {.type = CHATD_PARAM_TEXT, .s = k->msg_id, .len = strlen(k->msg_id)},
            {.type = CHATD_PARAM_TEXT, .s = k->text, .len = k->text_len},
            {.type = CHATD_PARAM_INT64, .i = k->ts},
            {.type = CHATD_PARAM_TEXT, .s = k->from, .len = strlen(k->from)},
        };
        rc = HOST->db_exec(db,
                           "INSERT IGNORE INTO private_messages (recipient_id, sender_id, "
                           "msg_id, text, ts) SELECT ?, id, ?, ?, ? FROM users WHERE name = ?",
                           row, 5, NULL, NULL);
    }
    if (rc == 0)
        rc = HOST->db_exec(db, "COMMIT", NULL, 0, NULL, NULL);
    return rc; /* on an error the host rolls the transaction back */
}

static void keep_done(struct chatd_request *req, void *arg, int status)
{
    (void)req;
    struct keep_job *j = arg;
    if (status != 0)
        HOST->log(chat.self, CHATD_LOG_ERROR,
                  "%zu private messages for %s could not be kept for their next login (%s)", j->n,
                  j->user, chatd_strerror(status));
    else
        offline_backlog_add((int64_t)j->n);
    offline_store_forget(j->user);
    chat_write_end(j->user);
    keep_free(j);
}

/* Copy a held private_chat_recv push into j; 0 when it is not one (or memory ran out). */
static int keep_one(struct keep_job *j, const json_t *msg)
{
    const char *cmd = json_string_value(json_object_get(msg, "cmd"));
    const json_t *text = json_object_get(msg, "text");
    if (!cmd || strcmp(cmd, "private_chat_recv") != 0 || !json_is_string(text))
        return 0;
    struct kept *k = &j->items[j->n];
    k->from = chat_strdup(json_string_value(json_object_get(msg, "user_from")));
    k->msg_id = chat_strdup(json_string_value(json_object_get(msg, "msg_id")));
    k->text_len = json_string_length(text);
    k->text = malloc(k->text_len + 1);
    k->ts = json_integer_value(json_object_get(msg, "ts"));
    if (!k->from || !k->msg_id || !k->text) {
        free(k->from);
        free(k->msg_id);
        free(k->text);
        return 0;
    }
    memcpy(k->text, json_string_value(text), k->text_len + 1);
    j->n++;
    return 1;
}

void chat_release_held(struct online_user *u)
{
    struct keep_job *j = calloc(1, sizeof(*j));
    if (j)
        j->items = calloc(u->n_held ? u->n_held : 1, sizeof(*j->items));
    for (size_t i = 0; i < u->n_held; i++) {
        /* Group messages were never sent: the read position did not move, so they come
         * from the group's log at the next login. Presence and the like are moot. */
        if (j && j->items)
            keep_one(j, u->held[i].msg);
        json_decref(u->held[i].msg);
    }
    u->n_held = 0;
    if (!j || !j->items || j->n == 0 || !(j->user = chat_strdup(u->name))) {
        if (j && j->n)
            HOST->log(chat.self, CHATD_LOG_ERROR, "out of memory keeping messages for %s", u->name);
        if (j)
            keep_free(j);
        return;
    }
    j->user_id = u->id;
    chat_write_begin(j->user);
    static const struct chatd_job job = {
        .work = keep_work, .done = keep_done, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    if (HOST->job_submit(chat.self, NULL, &job, j) != 0)
        keep_done(NULL, j, CHATD_EBUSY);
}

/* ---- the drain ------------------------------------------------------------------- */

/* One stored message, private (group_id 0) or from a group's log. */
struct stored {
    int64_t id, group_id, ts;
    char *from, *group, *msg_id, *text;
    size_t text_len;
};

struct group_ack {
    int64_t group_id, position;
};

struct drain_job {
    char *user;
    int64_t user_id;
    uint64_t generation;
    struct stored *items;
    size_t n, cap;
    size_t n_private; /* the first n_private items are private messages */
    int more;         /* another batch may follow */
    /* What the batch sent, acknowledged once it reached the network. */
    int acking;
    int64_t ack_private;
    uint64_t acked_private; /* private messages the acknowledgement deleted */
    struct group_ack *ack_groups;
    size_t n_ack_groups;
    uint64_t timer;
    int64_t flush_deadline; /* wall-clock ms after which the drain stops waiting */
};

static void drain_free(struct drain_job *j)
{
    for (size_t i = 0; i < j->n; i++) {
        free(j->items[i].from);
        free(j->items[i].group);
        free(j->items[i].msg_id);
        free(j->items[i].text);
    }
    free(j->items);
    free(j->ack_groups);
    free(j->user);
    free(j);
}

static char *copy_text(const struct chatd_value *v, size_t *len)
{
    size_t n = v->type == CHATD_PARAM_NULL ? 0 : v->len;
    char *s = malloc(n + 1);
    if (s) {
        if (n)
            memcpy(s, v->s, n);
        s[n] = '\0';
    }
    if (len)
        *len = n;
    return s;
}

static struct stored *next_item(struct drain_job *j)
{
    if (j->n == j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 32;
        struct stored *more = realloc(j->items, cap * sizeof(*more));
        if (!more)
            return NULL;
        j->items = more;
        j->cap = cap;
    }
    struct stored *s = &j->items[j->n++];
    memset(s, 0, sizeof(*s));
    return s;
}

/* id, sender, msg_id, text, ts */
static int read_private(const struct chatd_value *cols, size_t ncols, void *arg)
{
    struct stored *s = ncols == 5 ? next_item(arg) : NULL;
    if (!s)
        return 1;
    s->id = cols[0].i;
    s->from = copy_text(&cols[1], NULL);
    s->msg_id = copy_text(&cols[2], NULL);
    s->text = copy_text(&cols[3], &s->text_len);
    s->ts = cols[4].i;
    return 0;
}

/* id, group_id, group name, sender, text, ts */
static int read_group_message(const struct chatd_value *cols, size_t ncols, void *arg)
{
    struct stored *s = ncols == 6 ? next_item(arg) : NULL;
    if (!s)
        return 1;
    s->id = cols[0].i;
    s->group_id = cols[1].i;
    s->group = copy_text(&cols[2], NULL);
    s->from = copy_text(&cols[3], NULL);
    s->text = copy_text(&cols[4], &s->text_len);
    s->ts = cols[5].i;
    return 0;
}

static int drain_work(struct chatd_db *db, void *arg)
{
    struct drain_job *j = arg;
    struct chatd_value id = {.type = CHATD_PARAM_INT64, .i = j->user_id};
    if (j->acking) {
        if (j->ack_private > 0) {
            struct chatd_value v[2] = {id, {.type = CHATD_PARAM_INT64, .i = j->ack_private}};
            int rc =
                HOST->db_exec(db, "DELETE FROM private_messages WHERE recipient_id = ? AND id <= ?",
                              v, 2, &j->acked_private, NULL);
            if (rc != 0)
                return rc;
        }
        for (size_t i = 0; i < j->n_ack_groups; i++) {
            struct chatd_value v[3] = {{.type = CHATD_PARAM_INT64, .i = j->ack_groups[i].position},
                                       {.type = CHATD_PARAM_INT64, .i = j->ack_groups[i].group_id},
                                       id};
            int rc = HOST->db_exec(db,
                                   "UPDATE memberships SET read_pos = GREATEST(read_pos, ?) "
                                   "WHERE group_id = ? AND user_id = ?",
                                   v, 3, NULL, NULL);
            if (rc != 0)
                return rc;
        }
        return 0;
    }
    struct chatd_value limit = {.type = CHATD_PARAM_INT64, .i = CHAT_DRAIN_BATCH};
    struct chatd_value v[2] = {id, limit};
    int rc = HOST->db_query(db,
                            "SELECT p.id, u.name, p.msg_id, p.text, p.ts FROM private_messages p "
                            "JOIN users u ON u.id = p.sender_id WHERE p.recipient_id = ? "
                            "ORDER BY p.id LIMIT ?",
                            v, 2, read_private, j);
    if (rc != 0)
        return rc;
    j->n_private = j->n;
    struct chatd_value g[3] = {id, id, limit};
    return HOST->db_query(db,
                          "SELECT gm.id, gm.group_id, g.name, u.name, gm.text, gm.ts "
                          "FROM memberships m JOIN group_messages gm ON gm.group_id = m.group_id "
                          "AND gm.id > m.read_pos JOIN chat_groups g ON g.id = gm.group_id "
                          "JOIN users u ON u.id = gm.sender_id "
                          "WHERE m.user_id = ? AND gm.sender_id <> ? ORDER BY gm.id LIMIT ?",
                          g, 3, read_group_message, j);
}

static json_t *stored_push(const struct stored *s)
{
    if (s->group_id == 0)
        return json_pack("{ssssss%sIsssb}", "cmd", "private_chat_recv", "user_from", s->from,
                         "text", s->text, s->text_len, "ts", (json_int_t)s->ts, "msg_id", s->msg_id,
                         "offline", 1);
    char msg_id[32];
    snprintf(msg_id, sizeof(msg_id), "g%lld", (long long)s->id);
    return json_pack("{ssssssss%sIsssb}", "cmd", "group_chat_recv", "group", s->group, "user_from",
                     s->from, "text", s->text, s->text_len, "ts", (json_int_t)s->ts, "msg_id",
                     msg_id, "offline", 1);
}

static void start_drain_job(struct online_user *u);
static void drain_when_written(struct online_user *u);

/* The drain is over (or failed): send what was held, unless another drain is due, in
 * which case everything stays held behind it. */
static void finish_drain(struct online_user *u)
{
    if (u->drain_again) {
        u->drain_again = 0;
        drain_when_written(u);
        return;
    }
    u->draining = 0;
    for (size_t i = 0; i < u->n_held; i++) {
        struct held_push *h = &u->held[i];
        /* A group message held here is also in the log: the drain may have sent it. */
        if (h->group_id && h->group_msg_id <= position_of(u, h->group_id))
            json_decref(h->msg);
        else
            send_now(u, h);
    }
    u->n_held = 0;
}

/* The drain's job is for this time online of this user; otherwise it is stale. */
static struct online_user *drain_owner(const struct drain_job *j)
{
    struct online_user *u = chat_online(j->user);
    return u && u->generation == j->generation ? u : NULL;
}

static void record_ack(struct drain_job *j, const struct stored *s)
{
    if (s->group_id == 0) {
        j->ack_private = s->id;
        return;
    }
    for (size_t i = 0; i < j->n_ack_groups; i++) {
        if (j->ack_groups[i].group_id == s->group_id) {
            j->ack_groups[i].position = s->id;
            return;
        }
    }
    struct group_ack *more = realloc(j->ack_groups, (j->n_ack_groups + 1) * sizeof(*more));
    if (!more)
        return; /* not acknowledged: sent again at a later login */
    j->ack_groups = more;
    j->ack_groups[j->n_ack_groups++] = (struct group_ack){s->group_id, s->id};
}

static void drain_done(struct chatd_request *req, void *arg, int status);

static void submit_ack(struct drain_job *j)
{
    static const struct chatd_job job = {
        .work = drain_work, .done = drain_done, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    j->acking = 1;
    chat_write_begin(j->user);
    if (HOST->job_submit(chat.self, NULL, &job, j) != 0) {
        HOST->log(chat.self, CHATD_LOG_WARN,
                  "could not acknowledge messages sent to %s: they will be sent again", j->user);
        drain_done(NULL, j, CHATD_EBUSY);
    }
}

/* Timer: acknowledge the batch once its sessions have written it to the network. */
static void await_flush(void *arg)
{
    struct drain_job *j = arg;
    struct online_user *u = drain_owner(j);
    size_t pending = u ? HOST->user_output_pending(chat.self, j->user) : 0;
    int late = HOST->now_ms() > j->flush_deadline;
    if (u && pending > 0 && !late)
        return; /* look again at the next tick */
    HOST->timer_cancel(chat.self, j->timer);
    if (u && late) {
        /* Not read in time: the batch stays stored and goes out again later. */
        HOST->log(chat.self, CHATD_LOG_INFO, "%s is not reading; stored messages kept", j->user);
        finish_drain(u);
    }
    if (!u || late) {
        drain_free(j);
        return;
    }
    submit_ack(j);
}

/* Send a batch, oldest first across private and group messages. */
static void send_batch(struct online_user *u, struct drain_job *j)
{
    size_t n_groups = j->n - j->n_private;
    struct plan_item *plan = malloc((j->n ? j->n : 1) * sizeof(*plan));
    size_t *order = malloc((j->n ? j->n : 1) * sizeof(*order));
    if (!plan || !order) {
        free(plan);
        free(order);
        j->more = 1;
        return;
    }
    for (size_t i = 0; i < j->n; i++)
        plan[i] = (struct plan_item){.ts = j->items[i].ts, .bytes = j->items[i].text_len};
    size_t n = drain_plan(plan, j->n_private, plan + j->n_private, n_groups, CHAT_DRAIN_BATCH,
                          DRAIN_BYTES, order, &j->more);
    for (size_t k = 0; k < n; k++) {
        struct stored *s = &j->items[order[k]];
        /* Skip what this user's sessions were already sent while online (a second
         * device logging in): group messages pushed live, stored ones of this period. */
        int sent = s->group_id ? s->id <= position_of(u, s->group_id) : s->id <= u->last_private;
        if (!sent) {
            /* Read positions move when the batch is acknowledged, not now. */
            size_t delivered = 0;
            HOST->push_user(chat.self, u->name, stored_push(s), &delivered);
            if (delivered == 0) {
                j->more = 1;
                break; /* no session took it: the rest stays stored */
            }
            if (!s->group_id)
                u->last_private = s->id;
        }
        record_ack(j, s);
    }
    free(plan);
    free(order);
}

/* Timer: try a failed drain again, if that time online of the user (its generation is
 * the argument) still lasts and still drains. */
static void retry_drain(void *arg)
{
    uint64_t generation = (uint64_t)(uintptr_t)arg;
    struct online_user *u, *tmp;
    HASH_ITER (hh, chat.online, u, tmp) {
        if (u->generation == generation && u->draining) {
            start_drain_job(u);
            return;
        }
    }
}

static void drain_done(struct chatd_request *req, void *arg, int status)
{
    (void)req;
    struct drain_job *j = arg;
    struct online_user *u = drain_owner(j);
    if (j->acking) {
        offline_store_forget(j->user);
        if (status == 0)
            offline_backlog_add(-(int64_t)j->acked_private);
        chat_write_end(j->user);
        if (status != 0)
            HOST->log(chat.self, CHATD_LOG_WARN,
                      "messages sent to %s stay stored (%s): they will be sent again", j->user,
                      chatd_strerror(status));
        if (u) {
            if (status == 0) {
                /* Now acknowledged: what the batch sent counts as read. */
                for (size_t i = 0; i < j->n_ack_groups; i++)
                    chat_advance_position(u, j->ack_groups[i].group_id, j->ack_groups[i].position);
                if (j->more)
                    u->drain_again = 1;
                else
                    u->caught_up = 1; /* the whole backlog is out */
            }
            finish_drain(u);
        }
        drain_free(j);
        return;
    }
    if (!u) {
        drain_free(j); /* logged out meanwhile: everything stays stored */
        return;
    }
    if (status != 0) {
        /* Everything stays stored. Try again shortly (live pushes stay held meanwhile),
         * a few times; then let them through, and the next login or message retries. */
        HOST->log(chat.self, CHATD_LOG_WARN, "offline delivery to %s failed (%s)", j->user,
                  chatd_strerror(status));
        drain_free(j);
        if (++u->drain_failures <= DRAIN_RETRIES &&
            HOST->timer_add(chat.self, DRAIN_RETRY_MS, 0, retry_drain,
                            (void *)(uintptr_t)u->generation, NULL) == 0)
            return;
        u->drain_failures = 0;
        finish_drain(u);
        return;
    }
    u->drain_failures = 0;
    send_batch(u, j);
    if (j->ack_private == 0 && j->n_ack_groups == 0) {
        u->caught_up = 1; /* nothing stored is left behind */
        finish_drain(u);
        drain_free(j);
        return;
    }
    j->flush_deadline = HOST->now_ms() + FLUSH_WAIT_MS;
    if (HOST->timer_add(chat.self, FLUSH_POLL_MS, 1, await_flush, j, &j->timer) != 0)
        submit_ack(j); /* cannot wait: acknowledge now rather than resend later */
}

static void start_drain_job(struct online_user *u)
{
    struct drain_job *j = calloc(1, sizeof(*j));
    if (!j || !(j->user = chat_strdup(u->name))) {
        free(j);
        finish_drain(u);
        return;
    }
    j->user_id = u->id;
    j->generation = u->generation;
    static const struct chatd_job job = {
        .work = drain_work, .done = drain_done, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    if (HOST->job_submit(chat.self, NULL, &job, j) != 0) {
        HOST->log(chat.self, CHATD_LOG_WARN, "offline delivery to %s postponed: queue full",
                  u->name);
        drain_free(j);
        u->drain_again = 0;
        finish_drain(u);
    }
}

void chat_drain(struct online_user *u)
{
    if (u->draining) {
        u->drain_again = 1;
        return;
    }
    /* From here live pushes are held until the stored messages are out. */
    u->draining = 1;
    drain_when_written(u);
}

/* Start a drain job once the user's pending writes are done: it must not read what
 * they are about to change. */
static void drain_when_written(struct online_user *u)
{
    struct pending_writes *w;
    HASH_FIND_STR(chat.writes, u->name, w);
    if (w && w->count > 0) {
        w->drain_waiting = 1; /* chat_write_end starts it */
        return;
    }
    start_drain_job(u);
}

void chat_write_begin(const char *user)
{
    struct pending_writes *w;
    HASH_FIND_STR(chat.writes, user, w);
    if (!w) {
        w = calloc(1, sizeof(*w));
        if (!w || !(w->name = chat_strdup(user))) {
            free(w);
            return;
        }
        HASH_ADD_KEYPTR(hh, chat.writes, w->name, strlen(w->name), w);
    }
    w->count++;
}

void chat_write_end(const char *user)
{
    struct pending_writes *w;
    HASH_FIND_STR(chat.writes, user, w);
    if (!w || --w->count > 0)
        return;
    int waiting = w->drain_waiting;
    HASH_DEL(chat.writes, w);
    free(w->name);
    free(w);
    struct online_user *u = chat_online(user);
    if (waiting && u && u->draining)
        start_drain_job(u);
}

void chat_writes_free(void)
{
    struct pending_writes *w, *tmp;
    HASH_ITER (hh, chat.writes, w, tmp) {
        HASH_DEL(chat.writes, w);
        free(w->name);
        free(w);
    }
}
