/* friends.c - add_friend: mutual and immediate. Both directions are stored, both users'
 * online caches learn it (for presence), and an online friend is told. */
#include "chat.h"

#include <stdlib.h>
#include <string.h>

enum friend_outcome { FRIEND_ADDED, FRIEND_NO_USER, FRIEND_ALREADY };

struct friend_job {
    int64_t user_id;
    char friend_name[CHAT_NAME_MAX + 1];
    enum friend_outcome outcome;
};

static int friend_work(struct chatd_db *db, void *arg)
{
    struct friend_job *j = arg;
    struct chatd_value name = {
        .type = CHATD_PARAM_TEXT, .s = j->friend_name, .len = strlen(j->friend_name)};
    int64_t friend_id = 0;
    int rc = HOST->db_query(db, "SELECT id FROM users WHERE name = ?", &name, 1, chat_read_int64,
                            &friend_id);
    if (rc != 0)
        return rc;
    if (friend_id == 0) {
        j->outcome = FRIEND_NO_USER;
        return 0;
    }
    struct chatd_value pair[4] = {{.type = CHATD_PARAM_INT64, .i = j->user_id},
                                  {.type = CHATD_PARAM_INT64, .i = friend_id},
                                  {.type = CHATD_PARAM_INT64, .i = friend_id},
                                  {.type = CHATD_PARAM_INT64, .i = j->user_id}};
    uint64_t added = 0;
    rc = HOST->db_exec(db,
                       "INSERT IGNORE INTO friendships (user_id, friend_id) VALUES (?, ?), (?, ?)",
                       pair, 4, &added, NULL);
    if (rc == 0)
        j->outcome = added == 0 ? FRIEND_ALREADY : FRIEND_ADDED;
    return rc;
}

static void cache_add(const char *user, const char *friend_name)
{
    struct online_user *u = chat_online(user);
    if (!u)
        return;
    for (size_t i = 0; i < u->n_friends; i++)
        if (strcmp(u->friends[i], friend_name) == 0)
            return;
    char **more = realloc(u->friends, (u->n_friends + 1) * sizeof(*more));
    char *copy = chat_strdup(friend_name);
    if (!more || !copy) {
        free(copy);
        if (more)
            u->friends = more;
        return;
    }
    u->friends = more;
    u->friends[u->n_friends++] = copy;
}

void friends_cache_add(const char *user, const char *friend_name)
{
    cache_add(user, friend_name);
    cache_add(friend_name, user);
}

static void friend_done(struct chatd_request *req, void *arg, int status)
{
    struct friend_job *j = arg;
    const char *user = HOST->request_user(req);
    if (status != 0) {
        chat_refuse(req, chat_status_word(status), "the friendship could not be stored");
    } else if (j->outcome == FRIEND_NO_USER) {
        HOST->reply(req, "user_not_exist", NULL);
    } else if (j->outcome == FRIEND_ALREADY) {
        HOST->reply(req, "already_friends", NULL);
    } else {
        friends_cache_add(user, j->friend_name);
        HOST->reply(req, "success", NULL);
        struct online_user *f = chat_online(j->friend_name);
        if (f)
            chat_deliver(f, json_pack("{ssss}", "cmd", "friend_added", "user_from", user));
    }
    free(j);
}

static void handle_add_friend(struct chatd_request *req, const json_t *body, void *arg)
{
    (void)arg;
    const char *user = HOST->request_user(req);
    const char *name = json_string_value(json_object_get(body, "friend"));
    if (strcmp(name, user) == 0) {
        chat_refuse(req, "bad_request", "you cannot add yourself");
        return;
    }
    if (!chat_valid_name(name)) {
        HOST->reply(req, "user_not_exist", NULL);
        return;
    }
    struct online_user *me = chat_sender(req);
    if (!me)
        return;
    struct friend_job *j = calloc(1, sizeof(*j));
    if (!j) {
        chat_refuse(req, "internal", "out of memory");
        return;
    }
    j->user_id = me->id;
    strcpy(j->friend_name, name);
    /* Not idempotent: a repeat would answer already_friends for a friendship it made. */
    static const struct chatd_job job = {
        .work = friend_work, .done = friend_done, .flags = CHATD_JOB_DB};
    if (chat_submit(req, &job, j) < 0)
        free(j);
}

int friends_init(void)
{
    static const struct chatd_field fields[] = {
        {"friend", CHATD_FIELD_STRING, 1, 1, 256},
        {NULL, 0, 0, 0, 0},
    };
    static const struct chatd_command command = {
        .name = "add_friend", .handler = handle_add_friend, .fields = fields};
    return HOST->register_command(chat.self, &command);
}
