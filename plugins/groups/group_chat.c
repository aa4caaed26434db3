/* group_chat.c - a message to a group.
 *
 * It first runs the hook point "message.deliver" ({"kind":"group","user_from","group",
 * "text"}), whose hooks may refuse it or rewrite "text". Then one job finds the group
 * and its members and checks the sender is one. The message is then posted to the host
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
    struct chatd_rows *members; /* user names */
    int not_member;
};

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
    g->host->rows_free(m->members);
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
    finish(m, "success", NULL,
           json_pack("{sssIsI}", "msg_id", p->msg_id, "seq", (json_int_t)p->seq, "ts",
                     (json_int_t)p->ts));
}

/* Worker: the group and its members. */
static int members_work(struct chatd_db *db, void *arg)
{
    struct message *m = arg;
    const struct chatd_host *host = m->g->host;
    struct chatd_value name = {.type = CHATD_PARAM_TEXT, .s = m->group, .len = strlen(m->group)};
    int rc = chat_query_int64(host, db, "SELECT id FROM groups_groups WHERE name = ?", &name, 1,
                              &m->group_id);
    if (rc != 0 || m->group_id == 0)
        return rc;
    host->rows_free(m->members); /* a retry reads them again */
    m->members = NULL;
    struct chatd_value id = {.type = CHATD_PARAM_INT64, .i = m->group_id};
    rc = host->db_query_rows(db, "SELECT user FROM groups_members WHERE group_id = ?", &id, 1, 0,
                             &m->members);
    if (rc != 0)
        return rc;
    m->not_member = 1;
    for (size_t r = 0; r < m->members->n_rows; r++)
        if (strcmp(chat_cell(m->members, r, 0), m->sender) == 0)
            m->not_member = 0;
    return 0;
}

static void post_to_members(struct message *m)
{
    struct groups *g = m->g;
    const char **to = calloc(m->members->n_rows ? m->members->n_rows : 1, sizeof(*to));
    if (!to) {
        finish(m, "internal", "out of memory", NULL);
        return;
    }
    size_t n = 0;
    for (size_t r = 0; r < m->members->n_rows; r++)
        if (strcmp(chat_cell(m->members, r, 0), m->sender) != 0)
            to[n++] = chat_cell(m->members, r, 0);
    char conversation[CHAT_NAME_MAX + 2];
    conversation[0] = '#';
    strcpy(conversation + 1, m->group);
    const struct chatd_post post = {
        .sender = m->sender,
        .conversation = conversation,
        .users = to,
        .n_users = n,
        .msg = json_pack("{sssssssO}", "cmd", "group_chat_recv", "group", m->group, "user_from",
                         m->sender, "text", m->text_json),
        .client_msg_id = m->client_msg_id[0] ? m->client_msg_id : NULL,
        .req = m->req,
    };
    int rc = post.msg ? g->host->post(g->self, &post, posted, m) : CHATD_ENOMEM;
    free(to);
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
