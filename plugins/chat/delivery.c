/* delivery.c - getting messages to a user's sessions in order: live pushes, stored
 * private messages and group backlog delivered after login ("drain"), and the pushes
 * held back while a drain runs so that nothing overtakes an older stored message. */
#include "chat.h"

#include <stdlib.h>
#include <string.h>

void chat_deliver(struct online_user *u, json_t *msg)
{
    if (u->draining) {
        json_array_append_new(u->held, msg);
        return;
    }
    HOST->push_user(chat.self, u->name, msg, NULL);
}

/* How far into a group's log u has been sent while online (0: nothing yet). */
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
    if (id > p->position)
        p->position = id;
}

/* One stored message, private (group_id 0) or from a group's log. */
struct stored {
    int64_t id, group_id, ts;
    char *from, *group, *msg_id, *text;
};

struct drain_job {
    char *user;
    int64_t user_id;
    struct stored *items;
    size_t n, cap;
    size_t n_private; /* the first n_private items are private messages */
    int64_t last_private;
    int delete_only; /* second phase: remove the delivered private messages */
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
    free(j->user);
    free(j);
}

static char *copy_text(const struct chatd_value *v)
{
    if (v->type == CHATD_PARAM_NULL)
        return chat_strdup("");
    char *s = malloc(v->len + 1);
    if (s)
        memcpy(s, v->s, v->len + 1);
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
    struct drain_job *j = arg;
    struct stored *s = ncols == 5 ? next_item(j) : NULL;
    if (!s)
        return 1;
    s->id = cols[0].i;
    s->from = copy_text(&cols[1]);
    s->msg_id = copy_text(&cols[2]);
    s->text = copy_text(&cols[3]);
    s->ts = cols[4].i;
    return 0;
}

/* id, group_id, group name, sender, text, ts */
static int read_group_message(const struct chatd_value *cols, size_t ncols, void *arg)
{
    struct drain_job *j = arg;
    struct stored *s = ncols == 6 ? next_item(j) : NULL;
    if (!s)
        return 1;
    s->id = cols[0].i;
    s->group_id = cols[1].i;
    s->group = copy_text(&cols[2]);
    s->from = copy_text(&cols[3]);
    s->text = copy_text(&cols[4]);
    s->ts = cols[5].i;
    return 0;
}

static int drain_work(struct chatd_db *db, void *arg)
{
    struct drain_job *j = arg;
    struct chatd_value id = {.type = CHATD_PARAM_INT64, .i = j->user_id};
    if (j->delete_only) {
        struct chatd_value v[2] = {id, {.type = CHATD_PARAM_INT64, .i = j->last_private}};
        return HOST->db_exec(db, "DELETE FROM private_messages WHERE recipient_id = ? AND id <= ?",
                             v, 2, NULL, NULL);
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
        return json_pack("{sssssssIsssb}", "cmd", "private_chat_recv", "user_from", s->from, "text",
                         s->text, "ts", (json_int_t)s->ts, "msg_id", s->msg_id, "offline", 1);
    char msg_id[32];
    snprintf(msg_id, sizeof(msg_id), "g%lld", (long long)s->id);
    return json_pack("{sssssssssIsssb}", "cmd", "group_chat_recv", "group", s->group, "user_from",
                     s->from, "text", s->text, "ts", (json_int_t)s->ts, "msg_id", msg_id, "offline",
                     1);
}

static void drain_done(struct chatd_request *req, void *arg, int status);

static void finish_drain(struct online_user *u)
{
    u->draining = 0;
    /* Live pushes that arrived during the drain follow the stored ones. */
    size_t i;
    json_t *msg;
    json_array_foreach(u->held, i, msg)
    {
        HOST->push_user(chat.self, u->name, json_incref(msg), NULL);
    }
    json_array_clear(u->held);
    if (u->drain_again) {
        u->drain_again = 0;
        chat_drain(u);
    }
}

static void drain_done(struct chatd_request *req, void *arg, int status)
{
    (void)req;
    struct drain_job *j = arg;
    struct online_user *u = chat_online(j->user);
    if (j->delete_only) {
        if (status != 0)
            HOST->log(chat.self, CHATD_LOG_WARN,
                      "delivered messages of %s stay stored (%s): they will be sent again", j->user,
                      chatd_strerror(status));
        char *user = j->user;
        j->user = NULL;
        drain_free(j);
        chat_write_end(user);
        free(user);
        return;
    }
    if (!u || u->id != j->user_id) {
        drain_free(j); /* logged out meanwhile: everything stays stored */
        return;
    }
    if (status != 0) {
        /* Everything stays stored and goes out at the next login or the next message. */
        HOST->log(chat.self, CHATD_LOG_WARN, "offline delivery to %s failed (%s)", j->user,
                  chatd_strerror(status));
        finish_drain(u);
        drain_free(j);
        return;
    }
    /* Oldest first across private and group messages: both lists are in id order, merge
     * them by acceptance time. */
    size_t p = 0, g = j->n_private;
    while (p < j->n_private || g < j->n) {
        int take_private = g >= j->n || (p < j->n_private && j->items[p].ts <= j->items[g].ts);
        struct stored *s = take_private ? &j->items[p++] : &j->items[g++];
        /* Skip what this user's sessions were already sent: group messages pushed live
         * (their read position is only saved at logout) and stored messages whose
         * removal is still under way. */
        int sent = s->group_id ? s->id <= position_of(u, s->group_id) : s->id <= u->last_private;
        if (!sent)
            HOST->push_user(chat.self, u->name, stored_push(s), NULL);
        if (s->group_id) {
            chat_advance_position(u, s->group_id, s->id);
        } else {
            j->last_private = s->id;
            u->last_private = s->id;
        }
    }
    int more = j->n_private == CHAT_DRAIN_BATCH || j->n - j->n_private == CHAT_DRAIN_BATCH;
    if (j->n_private > 0) {
        /* Only now that they are written to a session may they be removed. */
        j->delete_only = 1;
        static const struct chatd_job remove = {
            .work = drain_work, .done = drain_done, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
        chat_write_begin(j->user);
        if (HOST->job_submit(chat.self, NULL, &remove, j) != 0) {
            HOST->log(chat.self, CHATD_LOG_WARN,
                      "could not remove delivered messages of %s: they will be sent again",
                      j->user);
            chat_write_end(j->user);
            drain_free(j);
        }
    } else {
        drain_free(j);
    }
    if (more)
        u->drain_again = 1;
    finish_drain(u);
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
    static const struct chatd_job job = {
        .work = drain_work, .done = drain_done, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    if (HOST->job_submit(chat.self, NULL, &job, j) != 0) {
        HOST->log(chat.self, CHATD_LOG_WARN, "offline delivery to %s postponed: queue full",
                  u->name);
        drain_free(j);
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
