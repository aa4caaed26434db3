/* group_chat.c - a message to a group.
 *
 * It first runs the hook point "message.deliver" ({"kind":"group","user_from","group",
 * "text"}), whose hooks may refuse it or rewrite "text". Then one job finds the group
 * and its members, checks the sender is one, and writes the message to the group's
 * log; its id makes the msg_id ("g<id>"). The host's delivery then pushes it to every
 * other member online and stores it in chatd's inbox for the others; `success` is
 * answered once that is committed, and "message.accepted" runs. */
#include "groups.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct message {
    struct groups *g;
    struct chatd_request *req; /* held until answered */
    json_t *text_json;         /* the text, as message.deliver's hooks left it */
    char group[CHAT_NAME_MAX + 1];
    char sender[CHAT_NAME_MAX + 1];
    char *text; /* for the worker */
    size_t text_len;
    int64_t ts;
    int64_t group_id, log_id;
    struct chatd_rows *members; /* user names */
    int not_member;
    char msg_id[32];
};

static void finish(struct message *m, const char *result, const char *reason)
{
    struct groups *g = m->g;
    chat_refuse(g->host, m->req, result, reason);
    if (strcmp(result, "success") == 0) {
        const struct chat_accepted a = {"group",      m->sender, "group", m->group,
                                        m->text_json, m->msg_id, m->ts,   result};
        chat_message_accepted(g->host, g->self, &a);
    }
    g->host->request_release(m->req);
    g->host->rows_free(m->members);
    json_decref(m->text_json);
    free(m->text);
    free(m);
}

/* Worker. Not idempotent: a repeat would log the message twice. */
static int store_work(struct chatd_db *db, void *arg)
{
    struct message *m = arg;
    const struct chatd_host *host = m->g->host;
    struct chatd_value name = {.type = CHATD_PARAM_TEXT, .s = m->group, .len = strlen(m->group)};
    int rc = chat_query_int64(host, db, "SELECT id FROM groups_groups WHERE name = ?", &name, 1,
                              &m->group_id);
    if (rc != 0 || m->group_id == 0)
        return rc;
    struct chatd_value id = {.type = CHATD_PARAM_INT64, .i = m->group_id};
    rc = host->db_query_rows(db, "SELECT user FROM groups_members WHERE group_id = ?", &id, 1, 0,
                             &m->members);
    if (rc != 0)
        return rc;
    m->not_member = 1;
    for (size_t r = 0; r < m->members->n_rows; r++)
        if (strcmp(chat_cell(m->members, r, 0), m->sender) == 0)
            m->not_member = 0;
    if (m->not_member)
        return 0;
    struct chatd_value row[4] = {
        id,
        {.type = CHATD_PARAM_TEXT, .s = m->sender, .len = strlen(m->sender)},
        {.type = CHATD_PARAM_TEXT, .s = m->text, .len = m->text_len},
        {.type = CHATD_PARAM_INT64, .i = m->ts}};
    uint64_t log_id = 0;
    rc = host->db_exec(
        db, "INSERT INTO groups_messages (group_id, sender, text, ts) VALUES (?, ?, ?, ?)", row, 4,
        NULL, &log_id);
    m->log_id = (int64_t)log_id;
    return rc;
}

static void delivered(int status, size_t online, size_t n_stored, void *arg)
{
    (void)online;
    (void)n_stored;
    struct message *m = arg;
    if (status != 0)
        finish(m, chat_status_word(status),
               "the message reached the members online but could not be stored for the others");
    else
        finish(m, "success", NULL);
}

static void stored(struct chatd_request *req, void *arg, int status)
{
    (void)req;
    struct message *m = arg;
    struct groups *g = m->g;
    if (status != 0) {
        finish(m, chat_status_word(status), "the message could not be stored");
        return;
    }
    if (m->group_id == 0) {
        finish(m, "group_not_exist", NULL);
        return;
    }
    if (m->not_member) {
        finish(m, "not_member", NULL);
        return;
    }
    snprintf(m->msg_id, sizeof(m->msg_id), "g%lld", (long long)m->log_id);
    const char **to = calloc(m->members->n_rows ? m->members->n_rows : 1, sizeof(*to));
    if (!to) {
        finish(m, "internal", "out of memory");
        return;
    }
    size_t n = 0;
    for (size_t r = 0; r < m->members->n_rows; r++)
        if (strcmp(chat_cell(m->members, r, 0), m->sender) != 0)
            to[n++] = chat_cell(m->members, r, 0);
    if (n == 0) {
        free(to);
        finish(m, "success", NULL); /* nobody else to tell */
        return;
    }
    json_t *push =
        json_pack("{sssssssOsIss}", "cmd", "group_chat_recv", "group", m->group, "user_from",
                  m->sender, "text", m->text_json, "ts", (json_int_t)m->ts, "msg_id", m->msg_id);
    int rc = g->host->deliver(g->self, to, n, push, CHATD_DELIVER_STORE, 0, delivered, m);
    free(to);
    if (rc != 0)
        finish(m, "internal", chatd_strerror(rc));
}

/* The message goes to the group's log (a job), then to the members. */
static void send_message(struct message *m)
{
    struct groups *g = m->g;
    m->text_len = json_string_length(m->text_json);
    if (!(m->text = malloc(m->text_len + 1))) {
        finish(m, "internal", "out of memory");
        return;
    }
    memcpy(m->text, json_string_value(m->text_json), m->text_len + 1);
    m->ts = g->host->now_ms();
    static const struct chatd_job job = {.work = store_work, .done = stored, .flags = CHATD_JOB_DB};
    /* req stays held by this plugin, so the job is not tied to it: stored answers every
     * outcome, a failed submit included. */
    g->host->job_run(g->self, NULL, &job, m);
}

static void decided(const struct chatd_hook_outcome *outcome, json_t *payload, void *arg)
{
    struct message *m = arg;
    const char *result, *reason;
    if (chat_deliver_verdict(outcome, payload, m->g->max_text, &result, &reason) < 0) {
        finish(m, result, reason);
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
    struct message *m = strlen(user) <= CHAT_NAME_MAX ? calloc(1, sizeof(*m)) : NULL;
    if (!m) {
        chat_refuse(g->host, req, "internal", "out of memory");
        return;
    }
    m->g = g;
    m->req = req;
    strcpy(m->group, group);
    strcpy(m->sender, user);
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
        finish(m, "internal", chatd_strerror(rc));
}
