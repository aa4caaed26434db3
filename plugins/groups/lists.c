/* lists.c - what the groups plugin tells about memberships:
 *   {"cmd":"groups"}                     -> "groups":["g1"], sorted by name;
 *   {"cmd":"group_members","group":"g1"} -> "members":[{"user","online","owner"}], sorted
 *                                           by name; group_not_exist, not_member;
 *   "group" in login_reply, through a user.login hook that defers while a job reads it. */
#include "groups.h"

#include <stdlib.h>
#include <string.h>

struct list_job {
    struct groups *g;
    struct chatd_hook_call *call; /* user.login: the deferred hook */
    json_t *payload;              /* user.login: its payload */
    char user[CHAT_NAME_MAX + 1];
    char group[CHAT_NAME_MAX + 1]; /* group_members */
    int64_t group_id;              /* group_members */
    struct chatd_rows *rows;
};

static struct list_job *list_job_new(struct groups *g, const char *user)
{
    struct list_job *j = strlen(user) <= CHAT_NAME_MAX ? calloc(1, sizeof(*j)) : NULL;
    if (j) {
        j->g = g;
        strcpy(j->user, user);
    }
    return j;
}

static void list_job_free(struct list_job *j)
{
    j->g->host->rows_free(j->rows);
    free(j);
}

/* ---- the user's groups: `groups` and "group" at login ----------------------------- */

/* Worker. */
static int groups_work(struct chatd_db *db, void *arg)
{
    struct list_job *j = arg;
    struct chatd_value user = {.type = CHATD_PARAM_TEXT, .s = j->user, .len = strlen(j->user)};
    return j->g->host->db_query_rows(db,
                                     "SELECT g.name FROM groups_members m JOIN groups_groups g ON "
                                     "g.id = m.group_id WHERE m.user = ? ORDER BY g.name",
                                     &user, 1, 0, &j->rows);
}

static void groups_done(struct chatd_request *req, void *arg, int status)
{
    struct list_job *j = arg;
    const struct chatd_host *host = j->g->host;
    if (!chat_job_failed(host, req, status, "the group list could not be read")) {
        json_t *names = chat_column_array(j->rows, 0);
        json_t *fields = names ? json_pack("{so}", "groups", names) : NULL;
        if (fields)
            host->reply(req, "success", fields);
        else
            chat_refuse(host, req, "internal", "out of memory");
    }
    list_job_free(j);
}

void groups_handle_groups(struct chatd_request *req, const json_t *body, void *arg)
{
    (void)body;
    struct groups *g = arg;
    struct list_job *j = list_job_new(g, g->host->request_user(req));
    if (!j) {
        chat_refuse(g->host, req, "internal", "out of memory");
        return;
    }
    static const struct chatd_job job = {
        .work = groups_work, .done = groups_done, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    g->host->job_run(g->self, req, &job, j);
}

static void login_done(struct chatd_request *req, void *arg, int status)
{
    (void)req;
    struct list_job *j = arg;
    const struct chatd_host *host = j->g->host;
    json_t *names = status == 0 ? chat_column_array(j->rows, 0) : NULL;
    if (names)
        json_object_set_new(json_object_get(j->payload, "reply"), "group", names);
    else /* the login fails as any failed read would */
        host->hook_refuse(j->call, status ? chat_status_word(status) : "internal",
                          "the group list could not be read");
    host->hook_resume(j->call);
    list_job_free(j);
}

int groups_on_login(struct chatd_hook_call *call, json_t *payload, void *arg)
{
    struct groups *g = arg;
    const char *user = json_string_value(json_object_get(payload, "user"));
    struct list_job *j = user ? list_job_new(g, user) : NULL;
    if (!j)
        return CHATD_ENOMEM;
    j->call = call;
    j->payload = payload;
    static const struct chatd_job job = {
        .work = groups_work, .done = login_done, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    /* job_submit, not job_run: a failed submit must be known before this returns, not
     * through a done that would resume the hook before it deferred. */
    int rc = g->host->job_submit(g->self, NULL, &job, j);
    if (rc != 0) {
        list_job_free(j);
        g->host->hook_refuse(call, chat_status_word(rc), "the group list could not be read");
        return CHATD_HOOK_CONTINUE;
    }
    return CHATD_HOOK_DEFER;
}

/* ---- group_members ----------------------------------------------------------------- */

/* Worker. */
static int members_work(struct chatd_db *db, void *arg)
{
    struct list_job *j = arg;
    const struct chatd_host *host = j->g->host;
    struct chatd_value name = {.type = CHATD_PARAM_TEXT, .s = j->group, .len = strlen(j->group)};
    int rc = chat_query_int64(host, db, "SELECT id FROM groups_groups WHERE name = ?", &name, 1,
                              &j->group_id);
    if (rc != 0 || j->group_id == 0)
        return rc;
    struct chatd_value id = {.type = CHATD_PARAM_INT64, .i = j->group_id};
    return host->db_query_rows(db,
                               "SELECT m.user, m.user = g.owner FROM groups_members m JOIN "
                               "groups_groups g ON g.id = m.group_id WHERE m.group_id = ? "
                               "ORDER BY m.user",
                               &id, 1, 0, &j->rows);
}

static json_t *members_of(const struct list_job *j, int *is_member)
{
    const struct chatd_host *host = j->g->host;
    json_t *members = json_array();
    *is_member = 0;
    for (size_t r = 0; members && r < j->rows->n_rows; r++) {
        const char *user = chat_cell(j->rows, r, 0);
        *is_member |= strcmp(user, j->user) == 0;
        if (json_array_append_new(
                members, json_pack("{sssbsb}", "user", user, "online",
                                   host->user_session_count(j->g->self, user) > 0, "owner",
                                   j->rows->values[r * j->rows->n_cols + 1].i != 0)) != 0) {
            json_decref(members); /* never a partial list */
            members = NULL;
        }
    }
    return members;
}

static void members_done(struct chatd_request *req, void *arg, int status)
{
    struct list_job *j = arg;
    const struct chatd_host *host = j->g->host;
    if (chat_job_failed(host, req, status, "the group could not be read")) {
    } else if (j->group_id == 0) {
        host->reply(req, "group_not_exist", NULL);
    } else {
        int is_member;
        json_t *members = members_of(j, &is_member);
        json_t *fields = members && is_member ? json_pack("{sO}", "members", members) : NULL;
        if (members && !is_member)
            host->reply(req, "not_member", NULL);
        else if (!fields)
            chat_refuse(host, req, "internal", "out of memory");
        else
            host->reply(req, "success", fields);
        json_decref(members);
    }
    list_job_free(j);
}

void groups_handle_members(struct chatd_request *req, const json_t *body, void *arg)
{
    struct groups *g = arg;
    const char *group = json_string_value(json_object_get(body, "group"));
    if (!chat_valid_name(group)) {
        g->host->reply(req, "group_not_exist", NULL);
        return;
    }
    struct list_job *j = list_job_new(g, g->host->request_user(req));
    if (!j) {
        chat_refuse(g->host, req, "internal", "out of memory");
        return;
    }
    strcpy(j->group, group);
    static const struct chatd_job job = {
        .work = members_work, .done = members_done, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    g->host->job_run(g->self, req, &job, j);
}
