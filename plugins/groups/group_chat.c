/* group_chat.c - a message to a group.
 *
 * It first runs the hook point "message.deliver" ({"kind":"group","user_from","group",
 * "text"}), whose hooks may refuse it or rewrite "text". Then one job finds the group
 * and its members and checks the sender is one (one query: the members come as one
 * GROUP_CONCAT text, not a row each, unless it was cut at group_concat_max_len). The
 * message is then posted to the host
 * (ABI 1.4 post) for every other member, in the conversation "#<group>": the host
 * numbers it, keeps it once for the group's history, commits it, pushes it to the
 * members online and keeps it for the others' next login. `success` (with msg_id, seq
 * and ts) is answered once that is committed, and "message.accepted" runs. A request
 * with a client_msg_id the sender used before gets the first message's answer and
 * delivers nothing. */
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
    int64_t group_id;
    char *names;     /* the members' names, each NUL-terminated (worker) */
    const char **to; /* the members but the sender: pointers into names */
    size_t n_to;
    int not_member;
};

static void members_free(struct message *m)
{
    free(m->names);
    free(m->to);
    m->names = NULL;
    m->to = NULL;
    m->n_to = 0;
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
    g->host->request_release(m->req);
    members_free(m);
    json_decref(m->text_json);
    free(m);
}

static void posted(const struct chatd_posted *p, void *arg)
{
    struct message *m = arg;
    if (p->status != 0) {
        finish(m, chat_status_word(p->status), chatd_strerror(p->status), NULL);
        return;
    }
    if (!p->repeat) {
        const struct chat_accepted a = {"group",      m->sender, "group", m->group,
                                        m->text_json, p->msg_id, p->ts,   "success"};
        chat_message_accepted(m->g->host, m->g->self, &a);
    }
    finish(m, "success", NULL, chat_posted_fields(p));
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

/* Worker: split the joined names in place into m->to, leaving the sender out; returns
 * how many names there were, or -1 out of memory. */
static int64_t split_members(struct message *m)
{
    size_t words = 1;
    for (const char *c = m->names; *c; c++)
        words += *c == ' ';
    if (!(m->to = calloc(words, sizeof(*m->to))))
        return -1;
    int64_t seen = 0;
    m->not_member = 1;
    for (char *name = m->names, *end; *name; name = end + 1) {
        end = strchr(name, ' ');
        if (end)
            *end = '\0';
        seen++;
        if (strcmp(name, m->sender) == 0)
            m->not_member = 0;
        else
            m->to[m->n_to++] = name;
        if (!end)
            break;
    }
    return seen;
}

/* Worker: the group and its members. */
static int members_work(struct chatd_db *db, void *arg)
{
    struct message *m = arg;
    const struct chatd_host *host = m->g->host;
    members_free(m); /* a retry reads them again */
    m->group_id = 0;
    struct chatd_value name = {.type = CHATD_PARAM_TEXT, .s = m->group, .len = strlen(m->group)};
    struct group_row row = {0};
    int rc = host->db_query(db,
                            "SELECT g.id, COUNT(m.user), GROUP_CONCAT(m.user SEPARATOR ' ') "
                            "FROM groups_groups g LEFT JOIN groups_members m ON m.group_id = g.id "
                            "WHERE g.name = ? GROUP BY g.id",
                            &name, 1, read_group_row, &row);
    if (rc == 0 && row.id != 0) {
        m->names = row.names;
        row.names = NULL;
        int64_t seen = split_members(m);
        if (seen >= 0 && seen != row.count) { /* cut at group_concat_max_len */
            members_free(m);
            rc = read_names_by_row(host, db, &row);
            m->names = row.names;
            row.names = NULL;
            seen = rc == 0 ? split_members(m) : 0;
        }
        if (rc == 0 && seen < 0)
            rc = CHATD_ENOMEM;
        if (rc == 0)
            m->group_id = row.id;
    }
    free(row.names);
    return rc;
}

static void post_to_members(struct message *m)
{
    struct groups *g = m->g;
    char conversation[CHAT_NAME_MAX + 2];
    conversation[0] = '#';
    strcpy(conversation + 1, m->group);
    const struct chatd_post post = {
        .sender = m->sender,
        .conversation = conversation,
        .users = m->to,
        .n_users = m->n_to,
        .msg = chat_push_new("group_chat_recv", m->group, m->sender, m->text_json),
        .client_msg_id = m->client_msg_id[0] ? m->client_msg_id : NULL,
        .req = m->req,
    };
    int rc = post.msg ? g->host->post(g->self, &post, posted, m) : CHATD_ENOMEM;
    if (rc != 0)
        finish(m, "internal", chatd_strerror(rc), NULL);
}

static void members_read(struct chatd_request *req, void *arg, int status)
{
    (void)req;
    struct message *m = arg;
    if (status != 0)
        finish(m, chat_status_word(status), "the group could not be read", NULL);
    else if (m->group_id == 0)
        finish(m, "group_not_exist", NULL, NULL);
    else if (m->not_member)
        finish(m, "not_member", NULL, NULL);
    else
        post_to_members(m);
}

static void send_message(struct message *m)
{
    static const struct chatd_job job = {
        .work = members_work, .done = members_read, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    /* req stays held by this plugin, so the job is not tied to it: members_read answers
     * every outcome, a failed submit included. */
    m->g->host->job_run(m->g->self, NULL, &job, m);
}

static void decided(const struct chatd_hook_outcome *outcome, json_t *payload, void *arg)
{
    struct message *m = arg;
    const char *result, *reason;
    if (chat_deliver_verdict(outcome, payload, m->g->max_text, &result, &reason) < 0) {
        finish(m, result, reason, NULL);
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
    if (!chat_valid_name(group)) {
        g->host->reply(req, "group_not_exist", NULL);
        return;
    }
    /* The field table holds it to 1 to 64 bytes (the host refuses \u0000 in strings). */
    const json_t *client_id = json_object_get(body, "client_msg_id");
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
        finish(m, "internal", chatd_strerror(rc), NULL);
}
