/* service.c - the "accounts" service, version 1 (chatd_accounts.h): whether a user
 * exists, asked by friends and private_chat inside their own jobs. */
#include "accounts.h"

#include <stdlib.h>
#include <string.h>

static int user_exists(void *instance, struct chatd_db *db, const char *user)
{
    struct accounts *a = instance;
    if (!chat_valid_name(user))
        return 0;
    struct chatd_value name = {.type = CHATD_PARAM_TEXT, .s = user, .len = strlen(user)};
    int64_t exists = 0;
    int rc = chat_query_int64(a->host, db, "SELECT 1 FROM accounts_users WHERE name = ?", &name, 1,
                              &exists);
    return rc != 0 ? rc : exists != 0;
}

struct exists_job {
    struct accounts *a;
    char user[CHAT_NAME_MAX + 1];
    void (*cb)(int exists_or_error, void *arg);
    void *cb_arg;
    int exists;
};

static int exists_work(struct chatd_db *db, void *arg)
{
    struct exists_job *j = arg;
    j->exists = user_exists(j->a, db, j->user);
    return j->exists < 0 ? j->exists : 0;
}

static void exists_done(struct chatd_request *req, void *arg, int status)
{
    (void)req;
    struct exists_job *j = arg;
    j->cb(status != 0 ? status : j->exists, j->cb_arg);
    free(j);
}

static int user_exists_async(void *instance, const char *user,
                             void (*cb)(int exists_or_error, void *arg), void *arg)
{
    struct accounts *a = instance;
    if (!user || !cb)
        return CHATD_EINVAL;
    if (!chat_valid_name(user)) {
        cb(0, arg);
        return 0;
    }
    struct exists_job *j = calloc(1, sizeof(*j));
    if (!j)
        return CHATD_ENOMEM;
    j->a = a;
    strcpy(j->user, user);
    j->cb = cb;
    j->cb_arg = arg;
    static const struct chatd_job job = {
        .work = exists_work, .done = exists_done, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    /* On a failed submit job_run calls exists_done with the error: cb runs in any case. */
    a->host->job_run(a->self, NULL, &job, j);
    return 0;
}

const struct chatd_accounts_v1 accounts_service_v1 = {
    .user_exists = user_exists,
    .user_exists_async = user_exists_async,
};
