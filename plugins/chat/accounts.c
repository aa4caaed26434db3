/* accounts.c - register, login and logout; the login/logout events that make presence
 * and start offline delivery. The only code that binds a session to a user: the chat
 * plugin is the operator's authenticator. */
#include "chat.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* ---- register ------------------------------------------------------------------ */

struct register_job {
    char name[CHAT_NAME_MAX + 1];
    char *passwd;
    char hash[crypto_pwhash_STRBYTES];
    unsigned long long ops;
    size_t mem;
    int taken;
};

static void register_free(struct register_job *j)
{
    if (j->passwd) {
        sodium_memzero(j->passwd, strlen(j->passwd));
        free(j->passwd);
    }
    free(j);
}

/* Hashing is slow by design, so it runs as a job of its own, without a database
 * connection: a burst of registrations or logins cannot hold every connection while
 * messages wait to be stored. */

/* Worker, no connection: hash the password. */
static int register_hash_work(struct chatd_db *db, void *arg)
{
    (void)db;
    struct register_job *j = arg;
    if (crypto_pwhash_str(j->hash, j->passwd, strlen(j->passwd), j->ops, j->mem) != 0)
        return CHATD_ENOMEM;
    return 0;
}

/* Worker: store the account. */
static int register_store_work(struct chatd_db *db, void *arg)
{
    struct register_job *j = arg;
    struct chatd_value row[2] = {
        {.type = CHATD_PARAM_TEXT, .s = j->name, .len = strlen(j->name)},
        {.type = CHATD_PARAM_TEXT, .s = j->hash, .len = strlen(j->hash)},
    };
    uint64_t affected = 0;
    int rc = HOST->db_exec(db, "INSERT IGNORE INTO users (name, password_hash) VALUES (?, ?)", row,
                           2, &affected, NULL);
    j->taken = rc == 0 && affected == 0;
    return rc;
}

static void register_stored(struct chatd_request *req, void *arg, int status)
{
    struct register_job *j = arg;
    if (status != 0)
        chat_refuse(req, chat_status_word(status), "the account could not be stored");
    else if (j->taken)
        chat_refuse(req, "failure", "that name is taken");
    else
        HOST->reply(req, "success", NULL);
    register_free(j);
}

static void register_hashed(struct chatd_request *req, void *arg, int status)
{
    struct register_job *j = arg;
    if (status != 0) {
        chat_refuse(req, chat_status_word(status), "the password could not be hashed");
        register_free(j);
        return;
    }
    static const struct chatd_job store = {
        .work = register_store_work, .done = register_stored, .flags = CHATD_JOB_DB};
    if (chat_submit(req, &store, j) < 0)
        register_free(j);
}

static void handle_register(struct chatd_request *req, const json_t *body, void *arg)
{
    (void)arg;
    const char *name = json_string_value(json_object_get(body, "user"));
    const json_t *passwd = json_object_get(body, "passwd");
    if (!chat_valid_name(name)) {
        chat_refuse(req, "failure", "a name is 1 to 32 ASCII letters, digits or underscores");
        return;
    }
    if (json_string_length(passwd) == 0) {
        chat_refuse(req, "failure", "the password must not be empty");
        return;
    }
    struct register_job *j = calloc(1, sizeof(*j));
    if (!j || !(j->passwd = chat_strdup(json_string_value(passwd)))) {
        free(j);
        chat_refuse(req, "internal", "out of memory");
        return;
    }
    strcpy(j->name, name);
    j->ops = (unsigned long long)chat.pw_ops;
    j->mem = (size_t)chat.pw_mem_kib * 1024;
    static const struct chatd_job job = {
        .work = register_hash_work, .done = register_hashed, .timeout_ms = 30000};
    if (chat_submit(req, &job, j) < 0)
        register_free(j);
}

/* ---- login --------------------------------------------------------------------- */

/* The login job's results, kept for the LOGIN event that session_login raises. */
struct login_result {
    char name[CHAT_NAME_MAX + 1];
    char *passwd;
    char hash[crypto_pwhash_STRBYTES];
    int64_t id;
    int found, verified;
    char **friend_names;
    size_t n_friends, cap_friends;
    char **group_names;
    size_t n_groups, cap_groups;
    uint64_t generation; /* adopting: the online entry this load is for */
};

/* Set while session_login runs, so the LOGIN event can adopt the loaded lists. */
static struct login_result *logging_in;

static int push_name(char ***list, size_t *n, size_t *cap, const struct chatd_value *col)
{
    if (*n == *cap) {
        size_t grown = *cap ? *cap * 2 : 8;
        char **more = realloc(*list, grown * sizeof(*more));
        if (!more)
            return 1;
        *list = more;
        *cap = grown;
    }
    char *copy = malloc(col->len + 1);
    if (!copy)
        return 1;
    memcpy(copy, col->s, col->len + 1);
    (*list)[(*n)++] = copy;
    return 0;
}

static void free_names(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

static void login_free(struct login_result *j)
{
    if (j->passwd) {
        sodium_memzero(j->passwd, strlen(j->passwd));
        free(j->passwd);
    }
    free_names(j->friend_names, j->n_friends);
    free_names(j->group_names, j->n_groups);
    free(j);
}

static int read_account(const struct chatd_value *cols, size_t ncols, void *arg)
{
    struct login_result *j = arg;
    if (ncols != 2 || cols[1].len >= sizeof(j->hash))
        return 1;
    j->id = cols[0].i;
    memcpy(j->hash, cols[1].s, cols[1].len + 1);
    j->found = 1;
    return 0;
}

static int read_friend(const struct chatd_value *cols, size_t ncols, void *arg)
{
    struct login_result *j = arg;
    return ncols == 1 ? push_name(&j->friend_names, &j->n_friends, &j->cap_friends, &cols[0]) : 1;
}

static int read_group(const struct chatd_value *cols, size_t ncols, void *arg)
{
    struct login_result *j = arg;
    return ncols == 1 ? push_name(&j->group_names, &j->n_groups, &j->cap_groups, &cols[0]) : 1;
}

/* Worker: look the account up and load the lists for the reply (sent only if the
 * password checks out). */
static int login_read_work(struct chatd_db *db, void *arg)
{
    struct login_result *j = arg;
    struct chatd_value name = {.type = CHATD_PARAM_TEXT, .s = j->name, .len = strlen(j->name)};
    int rc = HOST->db_query(db, "SELECT id, password_hash FROM users WHERE name = ?", &name, 1,
                            read_account, j);
    if (rc != 0 || !j->found)
        return rc;
    struct chatd_value id = {.type = CHATD_PARAM_INT64, .i = j->id};
    rc = HOST->db_query(db,
                        "SELECT u.name FROM friendships f JOIN users u ON u.id = f.friend_id "
                        "WHERE f.user_id = ? ORDER BY u.name",
                        &id, 1, read_friend, j);
    if (rc == 0)
        rc = HOST->db_query(db,
                            "SELECT g.name FROM memberships m JOIN chat_groups g ON g.id = "
                            "m.group_id WHERE m.user_id = ? ORDER BY g.name",
                            &id, 1, read_group, j);
    return rc;
}

/* Worker, no connection: check the password against its hash. */
static int login_verify_work(struct chatd_db *db, void *arg)
{
    (void)db;
    struct login_result *j = arg;
    j->verified = crypto_pwhash_str_verify(j->hash, j->passwd, strlen(j->passwd)) == 0;
    return 0;
}

static json_t *names_array(char **names, size_t n)
{
    json_t *array = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(array, json_string(names[i]));
    return array;
}

static void login_verified(struct chatd_request *req, void *arg, int status)
{
    struct login_result *j = arg;
    if (status != 0) {
        chat_refuse(req, chat_status_word(status), "the password could not be checked");
    } else if (!j->verified) {
        HOST->reply(req, "passwd_error", NULL);
    } else {
        /* Built first: the LOGIN event takes the friend list over. */
        json_t *lists = json_pack("{soso}", "fri", names_array(j->friend_names, j->n_friends),
                                  "group", names_array(j->group_names, j->n_groups));
        logging_in = j;
        int rc = HOST->session_login(req, j->name);
        logging_in = NULL;
        if (rc != 0) {
            json_decref(lists);
            chat_refuse(req, "internal", chatd_strerror(rc));
        } else {
            HOST->reply(req, "success", lists);
            /* Stored messages follow the reply, oldest first. */
            struct online_user *u = chat_online(j->name);
            if (u && chat.offline_delivery)
                chat_drain(u);
        }
    }
    login_free(j);
}

static void login_read(struct chatd_request *req, void *arg, int status)
{
    struct login_result *j = arg;
    if (status != 0 || !j->found) {
        if (status != 0)
            chat_refuse(req, chat_status_word(status), "the account could not be read");
        else
            HOST->reply(req, "user_not_exist", NULL);
        login_free(j);
        return;
    }
    static const struct chatd_job verify = {
        .work = login_verify_work, .done = login_verified, .timeout_ms = 30000};
    if (chat_submit(req, &verify, j) < 0)
        login_free(j);
}

static void handle_login(struct chatd_request *req, const json_t *body, void *arg)
{
    (void)arg;
    const char *name = json_string_value(json_object_get(body, "user"));
    if (!chat_valid_name(name)) {
        HOST->reply(req, "user_not_exist", NULL);
        return;
    }
    struct login_result *j = calloc(1, sizeof(*j));
    if (!j || !(j->passwd = chat_strdup(json_string_value(json_object_get(body, "passwd"))))) {
        free(j);
        chat_refuse(req, "internal", "out of memory");
        return;
    }
    strcpy(j->name, name);
    static const struct chatd_job job = {
        .work = login_read_work, .done = login_read, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    if (chat_submit(req, &job, j) < 0)
        login_free(j);
}

/* ---- logout -------------------------------------------------------------------- */

static void handle_logout(struct chatd_request *req, const json_t *body, void *arg)
{
    (void)body;
    (void)arg;
    int rc = HOST->session_logout(req);
    if (rc != 0)
        chat_refuse(req, "internal", chatd_strerror(rc));
    else
        HOST->reply(req, "success", NULL);
}

/* ---- online users, presence ---------------------------------------------------- */

struct online_user *chat_online(const char *name)
{
    struct online_user *u;
    HASH_FIND_STR(chat.online, name, u);
    return u;
}

static void tell_friends(struct online_user *u, const char *status)
{
    json_t *push = json_pack("{ssssss}", "cmd", "presence", "user", u->name, "status", status);
    for (size_t i = 0; push && i < u->n_friends; i++) {
        struct online_user *f = chat_online(u->friends[i]);
        if (f)
            chat_deliver(f, json_incref(push));
    }
    json_decref(push);
}

static struct online_user *online_add(struct login_result *j)
{
    struct online_user *u = calloc(1, sizeof(*u));
    if (!u || !(u->name = chat_strdup(j->name))) {
        free(u);
        return NULL;
    }
    u->id = j->id;
    /* Adopt the friend list the login job loaded. */
    u->friends = j->friend_names;
    u->n_friends = j->n_friends;
    j->friend_names = NULL;
    j->n_friends = 0;
    j->cap_friends = 0;
    u->generation = ++chat.next_generation;
    HASH_ADD_KEYPTR(hh, chat.online, u->name, strlen(u->name), u);
    return u;
}

/* Write back how far into each group's log the user was sent while online. */
struct positions_job {
    char *user;
    int64_t user_id;
    size_t n;
    int64_t *group_ids, *positions;
};

static int positions_work(struct chatd_db *db, void *arg)
{
    struct positions_job *j = arg;
    for (size_t i = 0; i < j->n; i++) {
        struct chatd_value v[3] = {{.type = CHATD_PARAM_INT64, .i = j->positions[i]},
                                   {.type = CHATD_PARAM_INT64, .i = j->group_ids[i]},
                                   {.type = CHATD_PARAM_INT64, .i = j->user_id}};
        int rc = HOST->db_exec(db,
                               "UPDATE memberships SET read_pos = GREATEST(read_pos, ?) WHERE "
                               "group_id = ? AND user_id = ?",
                               v, 3, NULL, NULL);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void positions_done(struct chatd_request *req, void *arg, int status)
{
    (void)req;
    struct positions_job *j = arg;
    if (status != 0)
        HOST->log(chat.self, CHATD_LOG_WARN,
                  "could not save group read positions (%s): the user may see some group "
                  "messages again at next login",
                  chatd_strerror(status));
    if (j->user) {
        chat_write_end(j->user);
        free(j->user);
    }
    free(j->group_ids);
    free(j->positions);
    free(j);
}

static void save_positions(struct online_user *u)
{
    size_t n = HASH_COUNT(u->positions);
    if (n == 0 || !u->positions_dirty)
        return;
    u->positions_dirty = 0;
    struct positions_job *j = calloc(1, sizeof(*j));
    if (!j)
        return;
    j->user_id = u->id;
    j->user = chat_strdup(u->name);
    if (j->user)
        chat_write_begin(j->user);
    j->group_ids = calloc(n, sizeof(int64_t));
    j->positions = calloc(n, sizeof(int64_t));
    if (!j->group_ids || !j->positions) {
        positions_done(NULL, j, 0);
        return;
    }
    struct read_position *p, *tmp;
    HASH_ITER (hh, u->positions, p, tmp) {
        j->group_ids[j->n] = p->group_id;
        j->positions[j->n++] = p->position;
    }
    static const struct chatd_job job = {.work = positions_work,
                                         .done = positions_done,
                                         .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    if (HOST->job_submit(chat.self, NULL, &job, j) != 0)
        positions_done(NULL, j, CHATD_EBUSY);
}

void accounts_save_positions(void *arg)
{
    (void)arg;
    struct online_user *u, *tmp;
    HASH_ITER (hh, chat.online, u, tmp) {
        save_positions(u);
    }
}

static void online_remove(struct online_user *u)
{
    save_positions(u);
    HASH_DEL(chat.online, u);
    struct read_position *p, *tmp;
    HASH_ITER (hh, u->positions, p, tmp) {
        HASH_DEL(u->positions, p);
        free(p);
    }
    for (size_t i = 0; i < u->n_friends; i++)
        free(u->friends[i]);
    free(u->friends);
    chat_release_held(u);
    free(u->held);
    free(u->name);
    free(u);
}

/* A user logged in while another instance of this plugin served (before a reload): the
 * host replays their LOGIN to this instance, which puts them online at once (pushes
 * reach them) and loads in a job what their login loaded. Until then their id is 0 and
 * the commands that need it answer busy. No presence change: they never went away. */
static void adopt_loaded(struct chatd_request *req, void *arg, int status)
{
    (void)req;
    struct login_result *j = arg;
    struct online_user *u = chat_online(j->name);
    if (u && u->generation == j->generation) {
        if (status != 0 || !j->found) {
            HOST->log(chat.self, CHATD_LOG_ERROR, "cannot load %s, logged in before a reload: %s",
                      j->name, status ? chatd_strerror(status) : "no such account");
        } else {
            u->id = j->id;
            u->friends = j->friend_names;
            u->n_friends = j->n_friends;
            j->friend_names = NULL;
            j->n_friends = 0;
            if (chat.offline_delivery)
                chat_drain(u);
        }
    }
    login_free(j);
}

static void adopt(const char *user)
{
    struct login_result *j = calloc(1, sizeof(*j));
    if (!j || strlen(user) > CHAT_NAME_MAX) {
        free(j);
        return;
    }
    strcpy(j->name, user);
    struct online_user *u = online_add(j);
    if (!u) {
        login_free(j);
        return;
    }
    u->id = 0;
    j->generation = u->generation;
    static const struct chatd_job job = {.work = login_read_work,
                                         .done = adopt_loaded,
                                         .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    int rc = HOST->job_submit(chat.self, NULL, &job, j);
    if (rc != 0) {
        HOST->log(chat.self, CHATD_LOG_ERROR, "cannot load %s, logged in before a reload: %s", user,
                  chatd_strerror(rc));
        login_free(j);
    }
}

void accounts_on_event(enum chatd_event event, chatd_session_id session, const char *user,
                       int first_or_last, void *arg)
{
    (void)session;
    (void)arg;
    struct online_user *u = chat_online(user);
    if (event == CHATD_EVENT_LOGIN && first_or_last && !u && logging_in &&
        strcmp(logging_in->name, user) == 0) {
        u = online_add(logging_in);
        if (u && chat.presence)
            tell_friends(u, "online");
    } else if (event == CHATD_EVENT_LOGIN && first_or_last && !u && !logging_in) {
        adopt(user);
    } else if (event == CHATD_EVENT_LOGOUT && first_or_last && u) {
        if (chat.presence)
            tell_friends(u, "offline");
        online_remove(u);
    }
}

void accounts_shutdown(void)
{
    struct online_user *u, *tmp;
    HASH_ITER (hh, chat.online, u, tmp) {
        online_remove(u);
    }
}

int accounts_init(int enable_register, int enable_login, int enable_logout)
{
    static const struct chatd_field credentials[] = {
        {"user", CHATD_FIELD_STRING, 1, 1, 256},
        {"passwd", CHATD_FIELD_STRING, 1, 0, CHAT_PASSWD_MAX},
        {NULL, 0, 0, 0, 0},
    };
    static const struct chatd_command commands[] = {
        {.name = "register",
         .handler = handle_register,
         .flags = CHATD_CMD_ANONYMOUS,
         .fields = credentials},
        {.name = "login",
         .handler = handle_login,
         .flags = CHATD_CMD_ANONYMOUS,
         .fields = credentials},
        {.name = "logout", .handler = handle_logout},
    };
    int enabled[] = {enable_register, enable_login, enable_logout};
    return chat_register_commands(commands, enabled, 3);
}
