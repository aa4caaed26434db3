/* membership.c - create_group, join_group and leave_group. Each change is one
 * transaction that first locks the user's row in groups_users, then (join, leave) the
 * group's row, so that the limits checked are the limits kept under concurrent
 * requests, and a group is never created without its owner as member. */
#include "groups.h"

#include <stdlib.h>
#include <string.h>

enum op { OP_CREATE, OP_JOIN, OP_LEAVE };

struct membership_job {
    struct groups *g;
    enum op op;
    char group[CHAT_NAME_MAX + 1];
    char user[CHAT_NAME_MAX + 1];
    int64_t group_id;
    int64_t since_msg;   /* the last message posted when the request arrived */
    const char *outcome; /* the result word, or NULL for success */
    const char *reason;
};

static struct chatd_value text(const char *s)
{
    return (struct chatd_value){.type = CHATD_PARAM_TEXT, .s = s, .len = strlen(s)};
}

/* Whether the user may be in one more group; sets the refusal when not. */
static int check_group_limit(struct chatd_db *db, struct membership_job *j, int *ok)
{
    struct chatd_value user = text(j->user);
    int64_t n = 0;
    int rc = chat_query_int64(j->g->host, db,
                              "SELECT COUNT(*) FROM groups_members WHERE user = ? FOR UPDATE",
                              &user, 1, &n);
    *ok = rc == 0 && n < j->g->max_groups_per_user;
    if (rc == 0 && !*ok) {
        j->outcome = j->op == OP_CREATE ? "failure" : "forbidden";
        j->reason = "you are in as many groups as the server allows";
    }
    return rc;
}

/* pair: the group's id and the user's name. The member's history starts after the last
 * message posted when the request arrived. */
static int add_member(struct chatd_db *db, const struct membership_job *j,
                      const struct chatd_value *pair)
{
    const struct chatd_value row[3] = {
        pair[0], pair[1], {.type = CHATD_PARAM_INT64, .i = j->since_msg}};
    return j->g->host->db_exec(
        db, "INSERT INTO groups_members (group_id, user, since_msg) VALUES (?, ?, ?)", row, 3, NULL,
        NULL);
}

static int create_group(struct chatd_db *db, struct membership_job *j)
{
    const struct chatd_host *host = j->g->host;
    int ok;
    int rc = check_group_limit(db, j, &ok);
    if (rc != 0 || !ok)
        return rc;
    struct chatd_value row[3] = {text(j->group), text(j->group), text(j->user)};
    uint64_t added = 0, id = 0;
    /* Ignored when the name is taken in any case (the unique name_folded). */
    rc = host->db_exec(db,
                       "INSERT IGNORE INTO groups_groups (name, name_folded, owner)"
                       " VALUES (?, LOWER(?), ?)",
                       row, 3, &added, &id);
    if (rc != 0)
        return rc;
    if (added == 0) {
        j->outcome = "failure";
        j->reason = "that group name is taken";
        return 0;
    }
    struct chatd_value member[2] = {{.type = CHATD_PARAM_INT64, .i = (int64_t)id}, text(j->user)};
    return add_member(db, j, member);
}

static int join_group(struct chatd_db *db, struct membership_job *j, const struct chatd_value *pair)
{
    const struct chatd_host *host = j->g->host;
    /* The contract's own answers come before the server's limits. */
    int64_t n = 0;
    int rc = chat_query_int64(host, db,
                              "SELECT COUNT(*) FROM groups_members WHERE group_id = ? AND user = ?",
                              pair, 2, &n);
    if (rc != 0)
        return rc;
    if (n > 0) {
        j->outcome = "already_member";
        return 0;
    }
    int ok;
    rc = check_group_limit(db, j, &ok);
    if (rc != 0 || !ok)
        return rc;
    rc = chat_query_int64(
        host, db, "SELECT COUNT(*) FROM groups_members WHERE group_id = ? FOR UPDATE", pair, 1, &n);
    if (rc != 0)
        return rc;
    if (n >= j->g->max_members_per_group) {
        j->outcome = "forbidden";
        j->reason = "the group is full";
        return 0;
    }
    /* A new member gets the group's messages from now on: nothing sent before. */
    return add_member(db, j, pair);
}

static int change(struct chatd_db *db, struct membership_job *j)
{
    const struct chatd_host *host = j->g->host;
    struct chatd_value name = text(j->group);
    struct chatd_value user = text(j->user);
    /* Lock the user's row (made on first use), then the group's: two requests cannot
     * both pass a limit. */
    int rc = host->db_exec(db,
                           "INSERT INTO groups_users (user) VALUES (?) "
                           "ON DUPLICATE KEY UPDATE user = VALUES(user)",
                           &user, 1, NULL, NULL);
    if (rc != 0)
        return rc;
    if (j->op == OP_CREATE)
        return create_group(db, j);
    rc = chat_query_int64(host, db, "SELECT id FROM groups_groups WHERE name = ? FOR UPDATE", &name,
                          1, &j->group_id);
    if (rc != 0)
        return rc;
    if (j->group_id == 0) {
        j->outcome = "group_not_exist";
        return 0;
    }
    struct chatd_value pair[2] = {{.type = CHATD_PARAM_INT64, .i = j->group_id}, user};
    if (j->op == OP_JOIN)
        return join_group(db, j, pair);
    uint64_t removed = 0;
    rc = host->db_exec(db, "DELETE FROM groups_members WHERE group_id = ? AND user = ?", pair, 2,
                       &removed, NULL);
    if (rc == 0 && removed == 0)
        j->outcome = "not_member";
    return rc;
}

/* Worker: the change in one transaction. */
static int membership_work(struct chatd_db *db, void *arg)
{
    struct membership_job *j = arg;
    const struct chatd_host *host = j->g->host;
    int rc = host->db_exec(db, "START TRANSACTION", NULL, 0, NULL, NULL);
    if (rc == 0)
        rc = change(db, j);
    if (rc == 0)
        return host->db_exec(db, "COMMIT", NULL, 0, NULL, NULL);
    host->db_exec(db, "ROLLBACK", NULL, 0, NULL, NULL);
    return rc;
}

static void membership_done(struct chatd_request *req, void *arg, int status)
{
    struct membership_job *j = arg;
    if (chat_job_failed(j->g->host, req, status, "the group could not be updated")) {
    } else if (j->outcome) {
        chat_refuse(j->g->host, req, j->outcome, j->reason);
    } else {
        j->g->host->reply(req, "success", NULL);
    }
    free(j);
}

static void submit(struct groups *g, struct chatd_request *req, const json_t *body, enum op op)
{
    const char *user = g->host->request_user(req);
    const char *group = json_string_value(json_object_get(body, "group"));
    if (!chat_valid_name(group)) {
        if (op == OP_CREATE)
            chat_refuse(g->host, req, "failure",
                        "a group name is 1 to 32 ASCII letters, digits or underscores");
        else
            g->host->reply(req, "group_not_exist", NULL);
        return;
    }
    struct membership_job *j = strlen(user) <= CHAT_NAME_MAX ? calloc(1, sizeof(*j)) : NULL;
    if (!j) {
        chat_refuse(g->host, req, "internal", "out of memory");
        return;
    }
    j->g = g;
    j->op = op;
    strcpy(j->group, group);
    strcpy(j->user, user);
    /* Taken now, on the loop thread: any message posted after this has a larger id. */
    j->since_msg = g->host->message_last_id(g->self);
    static const struct chatd_job job = {
        .work = membership_work, .done = membership_done, .flags = CHATD_JOB_DB};
    g->host->job_run(g->self, req, &job, j);
}

void groups_handle_create(struct chatd_request *req, const json_t *body, void *arg)
{
    submit(arg, req, body, OP_CREATE);
}

void groups_handle_join(struct chatd_request *req, const json_t *body, void *arg)
{
    submit(arg, req, body, OP_JOIN);
}

void groups_handle_leave(struct chatd_request *req, const json_t *body, void *arg)
{
    submit(arg, req, body, OP_LEAVE);
}
