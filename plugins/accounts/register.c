/* register.c - register: hash the password (a job without a database connection, so a
 * burst of registrations cannot hold every connection), then store the account, then
 * run the hook point "user.registered". */
#include "accounts.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

struct register_job {
    struct accounts *a;
    char name[CHAT_NAME_MAX + 1];
    char *passwd;
    char hash[crypto_pwhash_STRBYTES];
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

/* Worker, no connection. */
static int hash_work(struct chatd_db *db, void *arg)
{
    (void)db;
    struct register_job *j = arg;
    if (crypto_pwhash_str(j->hash, j->passwd, strlen(j->passwd), j->a->pw_ops, j->a->pw_mem) != 0)
        return CHATD_ENOMEM;
    return 0;
}

/* Worker. Not idempotent: a repeat would find the name taken by its own first run. */
static int store_work(struct chatd_db *db, void *arg)
{
    struct register_job *j = arg;
    struct chatd_value row[3] = {
        {.type = CHATD_PARAM_TEXT, .s = j->name, .len = strlen(j->name)},
        {.type = CHATD_PARAM_TEXT, .s = j->name, .len = strlen(j->name)},
        {.type = CHATD_PARAM_TEXT, .s = j->hash, .len = strlen(j->hash)},
    };
    uint64_t added = 0;
    /* Ignored when the name is taken in any case (the unique name_folded). */
    int rc =
        j->a->host->db_exec(db,
                            "INSERT IGNORE INTO accounts_users (name, name_folded, password_hash)"
                            " VALUES (?, LOWER(?), ?)",
                            row, 3, &added, NULL);
    j->taken = rc == 0 && added == 0;
    return rc;
}

static void stored(struct chatd_request *req, void *arg, int status)
{
    struct register_job *j = arg;
    const struct chatd_host *host = j->a->host;
    if (chat_job_failed(host, req, status, "the account could not be stored")) {
    } else if (j->taken) {
        chat_refuse(host, req, "failure", "that name is taken");
    } else {
        host->reply(req, "success", NULL);
        json_t *payload = json_pack("{ss}", "user", j->name);
        if (payload)
            host->hook_run(j->a->self, CHATD_HOOK_USER_REGISTERED, payload, NULL, NULL);
    }
    register_free(j);
}

static void hashed(struct chatd_request *req, void *arg, int status)
{
    struct register_job *j = arg;
    if (chat_job_failed(j->a->host, req, status, "the password could not be hashed")) {
        register_free(j);
        return;
    }
    static const struct chatd_job store = {
        .work = store_work, .done = stored, .flags = CHATD_JOB_DB};
    j->a->host->job_run(j->a->self, req, &store, j);
}

void accounts_handle_register(struct chatd_request *req, const json_t *body, void *arg)
{
    struct accounts *a = arg;
    const char *name = json_string_value(json_object_get(body, "user"));
    const json_t *passwd = json_object_get(body, "passwd");
    if (a->host->auth_attempt(a->self, req, NULL) != 0)
        return; /* answered rate_limited */
    if (!chat_valid_name(name)) {
        chat_refuse(a->host, req, "failure",
                    "a name is 1 to 32 ASCII letters, digits or underscores");
        return;
    }
    if (json_string_length(passwd) == 0) {
        chat_refuse(a->host, req, "failure", "the password must not be empty");
        return;
    }
    struct register_job *j = calloc(1, sizeof(*j));
    if (!j || !(j->passwd = chat_strdup(json_string_value(passwd)))) {
        free(j);
        chat_refuse(a->host, req, "internal", "out of memory");
        return;
    }
    j->a = a;
    strcpy(j->name, name);
    static const struct chatd_job hash = {
        .work = hash_work, .done = hashed, .timeout_ms = ACCOUNTS_HASH_TIMEOUT_MS};
    a->host->job_run(a->self, req, &hash, j);
}
