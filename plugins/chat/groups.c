/* groups.c - create_group, join_group, leave_group and group_chat. A group message is
 * stored once; members online get it pushed at once, the others read it from the
 * group's log after their next login, from their own read position. Membership for the
 * hot path comes from memory: a group is loaded on its first message and kept in step
 * by join and leave. */
#include "chat.h"

#include <stdlib.h>
#include <string.h>

/* Bumped by every join and leave, so a group load that raced with one is not cached. */
static uint64_t membership_epoch;

static struct group *group_find(const char *name)
{
    struct group *g;
    HASH_FIND_STR(chat.groups, name, g);
    return g;
}

static void group_free(struct group *g)
{
    for (size_t i = 0; i < g->n_members; i++)
        free(g->members[i].name);
    free(g->members);
    free(g->name);
    free(g);
}

static void group_drop(struct group *g)
{
    HASH_DEL(chat.groups, g);
    group_free(g);
}

static int group_has(const struct group *g, const char *name)
{
    for (size_t i = 0; i < g->n_members; i++)
        if (strcmp(g->members[i].name, name) == 0)
            return 1;
    return 0;
}

static int group_add_member(struct group *g, int64_t user_id, const char *name)
{
    if (g->n_members == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 8;
        struct group_member *more = realloc(g->members, cap * sizeof(*more));
        if (!more)
            return -1;
        g->members = more;
        g->cap = cap;
    }
    char *copy = chat_strdup(name);
    if (!copy)
        return -1;
    g->members[g->n_members++] = (struct group_member){.user_id = user_id, .name = copy};
    return 0;
}

static void group_remove_member(struct group *g, const char *name)
{
    for (size_t i = 0; i < g->n_members; i++) {
        if (strcmp(g->members[i].name, name) == 0) {
            free(g->members[i].name);
            g->members[i] = g->members[--g->n_members];
            return;
        }
    }
}

/* ---- create, join, leave ------------------------------------------------------- */

enum membership_op { OP_CREATE, OP_JOIN, OP_LEAVE };

struct membership_job {
    enum membership_op op;
    char group[CHAT_NAME_MAX + 1];
    char user[CHAT_NAME_MAX + 1];
    int64_t user_id;
    int64_t group_id;
    int64_t max_groups, max_members;
    const char *outcome; /* the result word, or NULL for success */
    const char *reason;
};

static int count(struct chatd_db *db, const char *sql, int64_t id, int64_t *out)
{
    struct chatd_value v = {.type = CHATD_PARAM_INT64, .i = id};
    *out = 0;
    return HOST->db_query(db, sql, &v, 1, chat_read_int64, out);
}

/* Whether the user may be in one more group; sets the refusal when not. */
static int check_group_limit(struct chatd_db *db, struct membership_job *j, int *ok)
{
    int64_t n = 0;
    int rc =
        count(db, "SELECT COUNT(*) FROM memberships WHERE user_id = ? FOR UPDATE", j->user_id, &n);
    *ok = rc == 0 && n < j->max_groups;
    if (rc == 0 && !*ok) {
        j->outcome = j->op == OP_CREATE ? "failure" : "forbidden";
        j->reason = "you are in as many groups as the server allows";
    }
    return rc;
}

static int create_group(struct chatd_db *db, struct membership_job *j,
                        const struct chatd_value *name, const struct chatd_value *user)
{
    int ok;
    int rc = check_group_limit(db, j, &ok);
    if (rc != 0 || !ok)
        return rc;
    struct chatd_value row[2] = {*name, *user};
    uint64_t added = 0, id = 0;
    rc = HOST->db_exec(db, "INSERT IGNORE INTO chat_groups (name, owner_id) VALUES (?, ?)", row, 2,
                       &added, &id);
    if (rc != 0)
        return rc;
    if (added == 0) {
        j->outcome = "failure";
        j->reason = "that group name is taken";
        return 0;
    }
    j->group_id = (int64_t)id;
    struct chatd_value member[2] = {{.type = CHATD_PARAM_INT64, .i = j->group_id}, *user};
    return HOST->db_exec(db, "INSERT INTO memberships (group_id, user_id) VALUES (?, ?)", member, 2,
                         NULL, NULL);
}

static int join_group(struct chatd_db *db, struct membership_job *j, struct chatd_value *pair)
{
    /* The contract's own answers come before the server's limits. */
    int64_t n = 0;
    int rc =
        HOST->db_query(db, "SELECT COUNT(*) FROM memberships WHERE group_id = ? AND user_id = ?",
                       pair, 2, chat_read_int64, &n);
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
    rc = count(db, "SELECT COUNT(*) FROM memberships WHERE group_id = ? FOR UPDATE", j->group_id,
               &n);
    if (rc != 0)
        return rc;
    if (n >= j->max_members) {
        j->outcome = "forbidden";
        j->reason = "the group is full";
        return 0;
    }
    /* A new member starts at the end of the group's log: no history before joining. */
    struct chatd_value join[3] = {pair[0], pair[1], pair[0]};
    return HOST->db_exec(db,
                         "INSERT INTO memberships (group_id, user_id, read_pos) SELECT ?, ?, "
                         "COALESCE(MAX(id), 0) FROM group_messages WHERE group_id = ?",
                         join, 3, NULL, NULL);
}

static int membership_change(struct chatd_db *db, struct membership_job *j)
{
    struct chatd_value name = {.type = CHATD_PARAM_TEXT, .s = j->group, .len = strlen(j->group)};
    struct chatd_value user = {.type = CHATD_PARAM_INT64, .i = j->user_id};
    int64_t n = 0;
    /* Lock the user's row, then the group's: two requests cannot both pass a limit. */
    int rc = HOST->db_query(db, "SELECT id FROM users WHERE id = ? FOR UPDATE", &user, 1,
                            chat_read_int64, &n);
    if (rc != 0)
        return rc;
    if (j->op == OP_CREATE)
        return create_group(db, j, &name, &user);
    rc = HOST->db_query(db, "SELECT id FROM chat_groups WHERE name = ? FOR UPDATE", &name, 1,
                        chat_read_int64, &j->group_id);
    if (rc != 0)
        return rc;
    if (j->group_id == 0) {
        j->outcome = "group_not_exist";
        return 0;
    }
    struct chatd_value pair[2] = {{.type = CHATD_PARAM_INT64, .i = j->group_id}, user};
    if (j->op == OP_JOIN)
        return join_group(db, j, pair);
    uint64_t changed = 0;
    rc = HOST->db_exec(db, "DELETE FROM memberships WHERE group_id = ? AND user_id = ?", pair, 2,
                       &changed, NULL);
    if (rc == 0 && changed == 0)
        j->outcome = "not_member";
    return rc;
}

/* Worker: the change in one transaction, so a group is never created without its
 * owner as member, and a limit checked is a limit kept. */
static int membership_work(struct chatd_db *db, void *arg)
{
    int rc = HOST->db_exec(db, "START TRANSACTION", NULL, 0, NULL, NULL);
    if (rc == 0)
        rc = membership_change(db, arg);
    if (rc == 0)
        return HOST->db_exec(db, "COMMIT", NULL, 0, NULL, NULL);
    HOST->db_exec(db, "ROLLBACK", NULL, 0, NULL, NULL);
    return rc;
}

static void membership_done(struct chatd_request *req, void *arg, int status)
{
    struct membership_job *j = arg;
    if (status != 0) {
        chat_refuse(req, chat_status_word(status), "the group could not be updated");
    } else if (j->outcome) {
        chat_refuse(req, j->outcome, j->reason);
    } else {
        membership_epoch++;
        struct group *g = group_find(j->group);
        if (g && j->op == OP_JOIN && !group_has(g, j->user) &&
            group_add_member(g, j->user_id, j->user) < 0)
            group_drop(g); /* reloaded on its next message */
        else if (g && j->op == OP_LEAVE)
            group_remove_member(g, j->user);
        HOST->reply(req, "success", NULL);
    }
    free(j);
}

static void submit_membership(struct chatd_request *req, const json_t *body, enum membership_op op)
{
    const char *user = HOST->request_user(req);
    const char *group = json_string_value(json_object_get(body, "group"));
    struct online_user *me = chat_sender(req);
    if (!me)
        return;
    if (!chat_valid_name(group)) {
        if (op == OP_CREATE)
            chat_refuse(req, "failure",
                        "a group name is 1 to 32 ASCII letters, digits or underscores");
        else
            HOST->reply(req, "group_not_exist", NULL);
        return;
    }
    struct membership_job *j = calloc(1, sizeof(*j));
    if (!j) {
        chat_refuse(req, "internal", "out of memory");
        return;
    }
    j->op = op;
    strcpy(j->group, group);
    strcpy(j->user, user);
    j->user_id = me->id;
    j->max_groups = chat.max_groups_per_user;
    j->max_members = chat.max_members_per_group;
    static const struct chatd_job job = {
        .work = membership_work, .done = membership_done, .flags = CHATD_JOB_DB};
    if (chat_submit(req, &job, j) < 0)
        free(j);
}

static void handle_create(struct chatd_request *req, const json_t *body, void *arg)
{
    (void)arg;
    submit_membership(req, body, OP_CREATE);
}

static void handle_join(struct chatd_request *req, const json_t *body, void *arg)
{
    (void)arg;
    submit_membership(req, body, OP_JOIN);
}

static void handle_leave(struct chatd_request *req, const json_t *body, void *arg)
{
    (void)arg;
    submit_membership(req, body, OP_LEAVE);
}

/* ---- group_chat ---------------------------------------------------------------- */

struct send_job {
    char group[CHAT_NAME_MAX + 1];
    char sender[CHAT_NAME_MAX + 1];
    int64_t sender_id;
    char *text;
    size_t len;
    int64_t ts;
    int64_t group_id;
    int64_t message_id;
    uint64_t epoch;
    struct group *loaded; /* members read by this job when the group was not cached */
    int not_member;
};

static void send_free(struct send_job *j)
{
    if (j->loaded)
        group_free(j->loaded);
    free(j->text);
    free(j);
}

static int read_member(const struct chatd_value *cols, size_t ncols, void *arg)
{
    struct group *g = arg;
    return ncols == 2 ? group_add_member(g, cols[0].i, cols[1].s) != 0 : 1;
}

static int send_work(struct chatd_db *db, void *arg)
{
    struct send_job *j = arg;
    int rc;
    if (j->loaded) {
        struct chatd_value name = {
            .type = CHATD_PARAM_TEXT, .s = j->group, .len = strlen(j->group)};
        rc = HOST->db_query(db, "SELECT id FROM chat_groups WHERE name = ?", &name, 1,
                            chat_read_int64, &j->group_id);
        if (rc != 0 || j->group_id == 0)
            return rc;
        struct chatd_value id = {.type = CHATD_PARAM_INT64, .i = j->group_id};
        rc = HOST->db_query(db,
                            "SELECT u.id, u.name FROM memberships m JOIN users u ON u.id = "
                            "m.user_id WHERE m.group_id = ?",
                            &id, 1, read_member, j->loaded);
        if (rc != 0)
            return rc;
        j->loaded->id = j->group_id;
        if (!group_has(j->loaded, j->sender)) {
            j->not_member = 1;
            return 0;
        }
    }
    struct chatd_value row[4] = {{.type = CHATD_PARAM_INT64, .i = j->group_id},
                                 {.type = CHATD_PARAM_INT64, .i = j->sender_id},
                                 {.type = CHATD_PARAM_TEXT, .s = j->text, .len = j->len},
                                 {.type = CHATD_PARAM_INT64, .i = j->ts}};
    uint64_t id = 0;
    rc = HOST->db_exec(db,
                       "INSERT INTO group_messages (group_id, sender_id, text, ts) VALUES "
                       "(?, ?, ?, ?)",
                       row, 4, NULL, &id);
    j->message_id = (int64_t)id;
    return rc;
}

/* Messages of each group being stored right now, by group name. */
struct sends {
    char *group;
    int count;
    UT_hash_handle hh;
};
static struct sends *sends_in_flight;

static void sends_begin(const char *group)
{
    struct sends *e;
    HASH_FIND_STR(sends_in_flight, group, e);
    if (!e) {
        e = calloc(1, sizeof(*e));
        if (!e || !(e->group = chat_strdup(group))) {
            free(e);
            return;
        }
        HASH_ADD_KEYPTR(hh, sends_in_flight, e->group, strlen(e->group), e);
    }
    e->count++;
}

/* One fewer; returns how many are still being stored. */
static int sends_end(const char *group)
{
    struct sends *e;
    HASH_FIND_STR(sends_in_flight, group, e);
    if (!e)
        return 1; /* not counted (out of memory): do not move positions */
    if (--e->count > 0)
        return e->count;
    HASH_DEL(sends_in_flight, e);
    free(e->group);
    free(e);
    return 0;
}

/* Send to every other member online. Read positions move only when no other message
 * of the group is still being stored: one stored later could get a lower id, and a
 * position past it would skip it at the member's next login. */
static void fan_out(const struct group *g, const struct send_job *j, int may_advance)
{
    char msg_id[32];
    snprintf(msg_id, sizeof(msg_id), "g%lld", (long long)j->message_id);
    json_t *msg =
        json_pack("{sssssssssIss}", "cmd", "group_chat_recv", "group", g->name, "user_from",
                  j->sender, "text", j->text, "ts", (json_int_t)j->ts, "msg_id", msg_id);
    for (size_t i = 0; msg && i < g->n_members; i++) {
        if (strcmp(g->members[i].name, j->sender) == 0)
            continue;
        struct online_user *u = chat_online(g->members[i].name);
        if (u) /* else it reads it from the log at next login */
            chat_deliver_group(u, json_incref(msg), g->id, j->message_id, may_advance);
    }
    json_decref(msg);
}

static void send_done(struct chatd_request *req, void *arg, int status)
{
    struct send_job *j = arg;
    struct group *g = group_find(j->group);
    int may_advance = sends_end(j->group) == 0;
    if (status != 0) {
        chat_refuse(req, chat_status_word(status), "the message could not be stored");
    } else if (j->loaded && j->group_id == 0) {
        HOST->reply(req, "group_not_exist", NULL);
    } else if (j->not_member) {
        HOST->reply(req, "not_member", NULL);
    } else {
        if (j->loaded && !g && j->epoch == membership_epoch) {
            /* Cache what was read, unless a join or leave may have changed it since. */
            g = j->loaded;
            j->loaded = NULL;
            HASH_ADD_KEYPTR(hh, chat.groups, g->name, strlen(g->name), g);
        }
        fan_out(g ? g : j->loaded, j, may_advance);
        HOST->reply(req, "success", NULL);
    }
    send_free(j);
}

static void handle_group_chat(struct chatd_request *req, const json_t *body, void *arg)
{
    (void)arg;
    const char *user = HOST->request_user(req);
    const char *group = json_string_value(json_object_get(body, "group"));
    const json_t *text = json_object_get(body, "text");
    if ((int64_t)json_string_length(text) > chat.max_text) {
        chat_refuse(req, "bad_request", "'text' is longer than the server accepts");
        return;
    }
    if (!chat_valid_name(group)) {
        HOST->reply(req, "group_not_exist", NULL);
        return;
    }
    struct group *g = group_find(group);
    if (g && !group_has(g, user)) {
        HOST->reply(req, "not_member", NULL);
        return;
    }
    struct online_user *me = chat_sender(req);
    if (!me)
        return;
    struct send_job *j = calloc(1, sizeof(*j));
    if (!j || !(j->text = malloc(json_string_length(text) + 1))) {
        free(j);
        chat_refuse(req, "internal", "out of memory");
        return;
    }
    strcpy(j->group, group);
    strcpy(j->sender, user);
    j->sender_id = me->id;
    j->len = json_string_length(text);
    memcpy(j->text, json_string_value(text), j->len + 1);
    j->ts = HOST->now_ms();
    j->epoch = membership_epoch;
    if (g) {
        j->group_id = g->id;
    } else if (!(j->loaded = calloc(1, sizeof(*j->loaded))) ||
               !(j->loaded->name = chat_strdup(group))) {
        send_free(j);
        chat_refuse(req, "internal", "out of memory");
        return;
    }
    static const struct chatd_job job = {
        .work = send_work, .done = send_done, .flags = CHATD_JOB_DB};
    if (chat_submit(req, &job, j) < 0) {
        send_free(j);
        return;
    }
    sends_begin(group);
}

void groups_shutdown(void)
{
    struct sends *e, *etmp;
    HASH_ITER (hh, sends_in_flight, e, etmp) {
        HASH_DEL(sends_in_flight, e);
        free(e->group);
        free(e);
    }
    struct group *g, *tmp;
    HASH_ITER (hh, chat.groups, g, tmp) {
        group_drop(g);
    }
}

int groups_init(int enable_create, int enable_join, int enable_leave, int enable_chat)
{
    static const struct chatd_field group_field[] = {
        {"group", CHATD_FIELD_STRING, 1, 1, 256},
        {NULL, 0, 0, 0, 0},
    };
    static const struct chatd_field chat_fields[] = {
        {"group", CHATD_FIELD_STRING, 1, 1, 256},
        {"text", CHATD_FIELD_STRING, 1, 0, 0},
        {NULL, 0, 0, 0, 0},
    };
    static const struct chatd_command commands[] = {
        {.name = "create_group", .handler = handle_create, .fields = group_field},
        {.name = "join_group", .handler = handle_join, .fields = group_field},
        {.name = "leave_group", .handler = handle_leave, .fields = group_field},
        {.name = "group_chat", .handler = handle_group_chat, .fields = chat_fields},
    };
    int enabled[] = {enable_create, enable_join, enable_leave, enable_chat};
    return chat_register_commands(commands, enabled, 4);
}
