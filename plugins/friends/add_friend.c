/* add_friend.c - add_friend: mutual and immediate. Both directions are stored in one
 * statement, both users' online entries learn it (for presence), and the new friend's
 * online sessions are told (friend_added). */
#include "friends.h"

#include <stdlib.h>
#include <string.h>

enum outcome { ADDED, NO_SUCH_USER, ALREADY };

struct add_job {
    struct friends *f;
    struct chatd_service accounts; /* held until done */
    char user[CHAT_NAME_MAX + 1];
    char friend_name[CHAT_NAME_MAX + 1];
    enum outcome outcome;
};

/* Worker. Not idempotent: a repeat would answer already_friends for a friendship it
 * made. */
static int add_work(struct chatd_db *db, void *arg)
{
    struct add_job *j = arg;
    int exists = chat_accounts_user_exists(&j->accounts, db, j->friend_name);
    if (exists <= 0) {
        j->outcome = NO_SUCH_USER;
        return exists;
    }
    struct chatd_value me = {.type = CHATD_PARAM_TEXT, .s = j->user, .len = strlen(j->user)};
    struct chatd_value other = {
        .type = CHATD_PARAM_TEXT, .s = j->friend_name, .len = strlen(j->friend_name)};
    struct chatd_value pairs[4] = {me, other, other, me};
    uint64_t added = 0;
    int rc = j->f->host->db_exec(
        db, "INSERT IGNORE INTO friends_pairs (user, friend) VALUES (?, ?), (?, ?)", pairs, 4,
        &added, NULL);
    j->outcome = added == 0 ? ALREADY : ADDED;
    return rc;
}

static void add_done(struct chatd_request *req, void *arg, int status)
{
    struct add_job *j = arg;
    struct friends *f = j->f;
    chat_accounts_release(f->host, f->self, &j->accounts);
    if (chat_job_failed(f->host, req, status, "the friendship could not be stored")) {
    } else if (j->outcome == NO_SUCH_USER) {
        f->host->reply(req, "user_not_exist", NULL);
    } else if (j->outcome == ALREADY) {
        f->host->reply(req, "already_friends", NULL);
    } else {
        friends_online_add(f, j->user, j->friend_name);
        f->host->reply(req, "success", NULL);
        const char *to[] = {j->friend_name};
        f->host->deliver(f->self, to, 1,
                         json_pack("{ssss}", "cmd", "friend_added", "user_from", j->user), 0, 0,
                         NULL, NULL);
    }
    free(j);
}

void friends_handle_add(struct chatd_request *req, const json_t *body, void *arg)
{
    struct friends *f = arg;
    const char *user = f->host->request_user(req);
    const char *name = json_string_value(json_object_get(body, "friend"));
    if (strcmp(name, user) == 0) {
        chat_refuse(f->host, req, "bad_request", "you cannot add yourself");
        return;
    }
    if (!chat_valid_name(name) || !chat_valid_name(user)) {
        f->host->reply(req, "user_not_exist", NULL);
        return;
    }
    struct add_job *j = calloc(1, sizeof(*j));
    if (!j) {
        chat_refuse(f->host, req, "internal", "out of memory");
        return;
    }
    if (chat_accounts_acquire(f->host, f->self, &j->accounts) != 0) {
        free(j);
        chat_refuse(f->host, req, "internal", "the accounts service is not available");
        return;
    }
    j->f = f;
    strcpy(j->user, user);
    strcpy(j->friend_name, name);
    static const struct chatd_job job = {.work = add_work, .done = add_done, .flags = CHATD_JOB_DB};
    f->host->job_run(f->self, req, &job, j);
}
