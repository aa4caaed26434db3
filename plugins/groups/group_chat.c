/* group_chat.c - a message to a group.
 *
 * It first runs the hook point "message.deliver" ({"kind":"group","user_from","group",
 * "text"}), whose hooks may refuse it or rewrite "text". Then a job finds the group and
 * its members and checks the sender is one (one query: the members come as one
 * GROUP_CONCAT text, not a row each, unless it was cut at group_concat_max_len). One
 * read serves every message to the same group that came before a worker started it
 * (see struct members_read). The message is then posted to the host
 * (ABI 1.4 post) for every other member, in the conversation "#<group>": the host
 * numbers it, keeps it once for the group's history, commits it, pushes it to the
 * members online and keeps it for the others' next login. `success` (with msg_id, seq
 * and ts) is answered once that is committed, and "message.accepted" runs. A request
 * with a client_msg_id the sender used before gets the first message's answer and
 * delivers nothing, also when it names another group (a refusal before the post asks
 * the host first, chat_refuse_send). */
#include "groups.h"

#include <stdlib.h>
#include <string.h>

#define CLIENT_MSG_ID_MAX 64

struct message {
    struct groups *g;
    struct chatd_request *req; /* held until answered */
    json_t *text_json;         /* the text, as message.deliver's hooks left it */
    char group[CHAT_NAME_MAX + 1];
    char sender[CHAT_NAME_MAX + 1];
    char client_msg_id[CLIENT_MSG_ID_MAX + 1]; /* "" for none */
    struct message *next;                      /* in its members_read */
};

/* One read of a group's members for the messages to it that came while the read waited
 * for a worker: while it waits it is in g->open_reads, where the next message to the
 * group joins it; the worker takes it out before it queries, so every message it serves
 * came before the query and is checked against members as fresh as its own read would
 * have been. Under load, when jobs wait, one query serves many messages. */
struct members_read {
    struct groups *g;
    char group[CHAT_NAME_MAX + 1];
    struct message *first, **last; /* arrival order */
    int64_t group_id;              /* 0: no such group (worker) */
    char *names;                   /* the members' names, each NUL-terminated (worker) */
    size_t n_names;
    UT_hash_handle hh; /* in g->open_reads, by group, until a worker takes it */
};

static void message_free(struct message *m)
{
    m->g->host->request_release(m->req);
    json_decref(m->text_json);
    free(m);
}

/* Answer (fields taken, may be NULL), then free m. */
static void finish(struct message *m, const char *result, const char *reason, json_t *fields)
{
    struct groups *g = m->g;
    if (reason) {
        if (!fields)
            fields = json_object();
        json_object_set_new(fields, "reason", json_string(reason));
    }
    g->host->reply(m->req, result, fields);
    message_free(m);
}

/* Refuse m before it was posted, unless its client_msg_id repeats one (then the first
 * message's answer), and free m. */
static void refuse(struct message *m, const char *result, const char *reason)
{
    struct groups *g = m->g;
    chat_refuse_send(g->host, g->self, m->req, m->sender, m->client_msg_id, result, reason);
    message_free(m);
}

static void posted(const struct chatd_posted *p, void *arg)
{
    struct message *m = arg;
    if (p->status != 0) {
        finish(m, chat_status_word(p->status), chatd_strerror(p->status), NULL);
        return;
    }
    const char *result = chat_posted_result(p);
    if (!p->repeat) {
        const struct chat_accepted a = {"group",      m->sender, "group", m->group,
                                        m->text_json, p->msg_id, p->ts,   result};
        chat_message_accepted(m->g->host, m->g->self, &a);
    }
    finish(m, result, NULL, chat_posted_fields(p));
}

/* The group row: its id, its member count, and their names joined by spaces (which
 * names cannot hold), NULL without members. */
struct group_row {
    int64_t id, count;
    char *names;
};

/* Worker. */
static int read_group_row(const struct chatd_value *cols, size_t ncols, void *arg)
{
    (void)ncols;
    struct group_row *row = arg;
    row->id = cols[0].i;
    row->count = cols[1].i;
    row->names = cols[2].s ? chat_strdup(cols[2].s) : calloc(1, 1);
    return row->names ? 0 : CHATD_ENOMEM;
}

/* Worker: GROUP_CONCAT stops at group_concat_max_len: a group that long is read a row
 * per member and joined the same way. */
static int read_names_by_row(const struct chatd_host *host, struct chatd_db *db,
                             struct group_row *row)
{
    struct chatd_rows *rows = NULL;
    struct chatd_value id = {.type = CHATD_PARAM_INT64, .i = row->id};
    int rc = host->db_query_rows(db, "SELECT user FROM groups_members WHERE group_id = ?", &id, 1,
                                 0, &rows);
    size_t len = 1;
    for (size_t r = 0; rc == 0 && r < rows->n_rows; r++)
        len += strlen(chat_cell(rows, r, 0)) + 1;
    free(row->names);
    row->names = rc == 0 ? calloc(1, len) : NULL;
    char *at = row->names;
    for (size_t r = 0; at && r < rows->n_rows; r++) {
        size_t n = strlen(chat_cell(rows, r, 0));
        memcpy(at, chat_cell(rows, r, 0), n);
        at += n;
        *at++ = r + 1 < rows->n_rows ? ' ' : '\0';
    }
    row->count = rows ? (int64_t)rows->n_rows : 0;
    host->rows_free(rows);
    return rc != 0 ? rc : row->names ? 0 : CHATD_ENOMEM;
}

/* Worker: the names joined by spaces become NUL-terminated in place; returns how many. */
static size_t split_names(char *names)
{
    if (!*names)
        return 0;
    size_t n = 1;
    for (char *c = names; *c; c++)
        if (*c == ' ') {
            *c = '\0';
            n++;
        }
    return n;
}

/* Worker: takes r out of the open reads (no message joins it from now on), then reads
 * the group and its members. */
static int members_work(struct chatd_db *db, void *arg)
{
    struct members_read *r = arg;
    struct groups *g = r->g;
    const struct chatd_host *host = g->host;
    pthread_mutex_lock(&g->open_reads_lock);
    if (r->hh.tbl) {
        HASH_DEL(g->open_reads, r);
        r->hh.tbl = NULL;
    }
    pthread_mutex_unlock(&g->open_reads_lock);
    free(r->names); /* a retry reads them again */
    r->names = NULL;
    r->n_names = 0;
    r->group_id = 0;
    struct chatd_value name = {.type = CHATD_PARAM_TEXT, .s = r->group, .len = strlen(r->group)};
    struct group_row row = {0};
    int rc = host->db_query(db,
                            "SELECT g.id, COUNT(m.user), GROUP_CONCAT(m.user SEPARATOR ' ') "
                            "FROM groups_groups g LEFT JOIN groups_members m ON m.group_id = g.id "
                            "WHERE g.name = ? GROUP BY g.id",
                            &name, 1, read_group_row, &row);
    if (rc == 0 && row.id != 0) {
        size_t n = split_names(row.names);
        if ((int64_t)n != row.count) { /* cut at group_concat_max_len */
            rc = read_names_by_row(host, db, &row);
            n = rc == 0 ? split_names(row.names) : 0;
        }
        if (rc == 0) {
            r->group_id = row.id;
            r->names = row.names;
            r->n_names = n;
            row.names = NULL;
        }
    }
    free(row.names);
    return rc;
}

/* Post m to every member of r but its sender, or answer not_member. */
static void post_to_members(const struct members_read *r, struct message *m)
{
    struct groups *g = m->g;
    const char **to = calloc(r->n_names ? r->n_names : 1, sizeof(*to));
    if (!to) {
        refuse(m, "internal", chatd_strerror(CHATD_ENOMEM));
        return;
    }
    size_t n_to = 0;
    int member = 0;
    const char *name = r->names;
    for (size_t i = 0; i < r->n_names; i++, name += strlen(name) + 1) {
        if (strcmp(name, m->sender) == 0)
            member = 1;
        else
            to[n_to++] = name;
    }
    if (!member) {
        free(to);
        refuse(m, "not_member", NULL);
        return;
    }
    char conversation[CHAT_NAME_MAX + 2];
    conversation[0] = '#';
    strcpy(conversation + 1, m->group);
    const struct chatd_post post = {
        .sender = m->sender,
        .conversation = conversation,
        .users = to,
        .n_users = n_to,
        .msg = chat_push_new("group_chat_recv", m->group, m->sender, m->text_json),
        .client_msg_id = m->client_msg_id[0] ? m->client_msg_id : NULL,
        .req = m->req,
    };
    /* post copies the names before it returns. */
    int rc = post.msg ? g->host->post(g->self, &post, posted, m) : CHATD_ENOMEM;
    free(to);
    if (rc != 0)
        finish(m, "internal", chatd_strerror(rc), NULL);
}

/* Loop thread: every message r served, in the order they came, then r is freed. */
static void members_read(struct chatd_request *req, void *arg, int status)
{
    (void)req;
    struct members_read *r = arg;
    struct groups *g = r->g;
    pthread_mutex_lock(&g->open_reads_lock); /* no worker ran it: it is still open */
    if (r->hh.tbl)
        HASH_DEL(g->open_reads, r);
    pthread_mutex_unlock(&g->open_reads_lock);
    for (struct message *m = r->first, *next; m; m = next) {
        next = m->next;
        if (status != 0)
            refuse(m, chat_status_word(status), "the group could not be read");
        else if (r->group_id == 0)
            refuse(m, "group_not_exist", NULL);
        else
            post_to_members(r, m);
    }
    free(r->names);
    free(r);
}

/* Join the open read of m's group, or open one and submit its job. */
static void send_message(struct message *m)
{
    static const struct chatd_job job = {
        .work = members_work, .done = members_read, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    struct groups *g = m->g;
    struct members_read *r;
    pthread_mutex_lock(&g->open_reads_lock);
    HASH_FIND_STR(g->open_reads, m->group, r);
    if (r) {
        *r->last = m;
        r->last = &m->next;
    }
    pthread_mutex_unlock(&g->open_reads_lock);
    if (r)
        return;
    if (!(r = calloc(1, sizeof(*r)))) {
        refuse(m, "internal", "out of memory");
        return;
    }
    r->g = g;
    strcpy(r->group, m->group);
    r->first = m;
    r->last = &m->next;
    pthread_mutex_lock(&g->open_reads_lock);
    HASH_ADD_STR(g->open_reads, group, r);
    pthread_mutex_unlock(&g->open_reads_lock);
    /* The requests stay held by this plugin, so the job is not tied to one: members_read
     * answers every outcome, a failed submit included. */
    g->host->job_run(g->self, NULL, &job, r);
}

static void decided(const struct chatd_hook_outcome *outcome, json_t *payload, void *arg)
{
    struct message *m = arg;
    const char *result, *reason;
    if (chat_deliver_verdict(outcome, payload, m->g->max_text, &result, &reason) < 0) {
        refuse(m, result, reason);
        return;
    }
    /* Only "text" is the hooks' to change. */
    m->text_json = json_incref(json_object_get(payload, "text"));
    send_message(m);
}

void groups_handle_chat(struct chatd_request *req, const json_t *body, void *arg)
{
    struct groups *g = arg;
    const char *user = g->host->request_user(req);
    const char *group = json_string_value(json_object_get(body, "group"));
    /* The field table holds it to 1 to 64 bytes (the host refuses \u0000 in strings). */
    const json_t *client_id = json_object_get(body, "client_msg_id");
    if (!chat_valid_name(group)) {
        chat_refuse_send(g->host, g->self, req, user, json_string_value(client_id),
                         "group_not_exist", NULL);
        return;
    }
    struct message *m = strlen(user) <= CHAT_NAME_MAX ? calloc(1, sizeof(*m)) : NULL;
    if (!m) {
        chat_refuse(g->host, req, "internal", "out of memory");
        return;
    }
    m->g = g;
    m->req = req;
    strcpy(m->group, group);
    strcpy(m->sender, user);
    if (client_id)
        strcpy(m->client_msg_id, json_string_value(client_id));
    g->host->request_hold(req);
    json_t *text = json_object_get(body, "text");
    if (!g->host->hook_has(g->self, CHATD_HOOK_MESSAGE_DELIVER)) {
        m->text_json = json_incref(text);
        send_message(m);
        return;
    }
    json_t *payload =
        json_pack("{sssssssO}", "kind", "group", "user_from", user, "group", group, "text", text);
    int rc = payload ? g->host->hook_run(g->self, CHATD_HOOK_MESSAGE_DELIVER, payload, decided, m)
                     : CHATD_ENOMEM;
    if (rc != 0)
        refuse(m, "internal", chatd_strerror(rc));
}
