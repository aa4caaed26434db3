/* login.c - login by password, and logout.
 *
 * A login reads the account (a database job), checks the password against its hash (a
 * job without a connection), binds the session (session_login), then runs the hook
 * point "user.login" with {"user","session","reply":{"fri":[],"group":[]}}: hooks of
 * other plugins put their members into "reply" (friends replaces "fri", groups
 * "group"), and login_reply carries them. The empty lists are there first so that
 * login_reply always has both, as the wire contract wants, whatever is enabled. */
#include "accounts.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

struct login_job {
    struct accounts *a;
    struct chatd_request *req; /* held while the user.login hooks run */
    char name[CHAT_NAME_MAX + 1];
    char *passwd;
    struct chatd_rows *account; /* password_hash; no row: no such user */
    int verified;
};

static void login_free(struct login_job *j)
{
    if (j->passwd) {
        sodium_memzero(j->passwd, strlen(j->passwd));
        free(j->passwd);
    }
    j->a->host->rows_free(j->account);
    free(j);
}

/* Worker. */
static int read_work(struct chatd_db *db, void *arg)
{
    struct login_job *j = arg;
    struct chatd_value name = {.type = CHATD_PARAM_TEXT, .s = j->name, .len = strlen(j->name)};
    return j->a->host->db_query_rows(db, "SELECT password_hash FROM accounts_users WHERE name = ?",
                                     &name, 1, 1, &j->account);
}

/* Worker, no connection. */
static int verify_work(struct chatd_db *db, void *arg)
{
    (void)db;
    struct login_job *j = arg;
    const char *hash = chat_cell(j->account, 0, 0);
    j->verified = crypto_pwhash_str_verify(hash, j->passwd, strlen(j->passwd)) == 0;
    return 0;
}

/* login_reply's members from what the hooks made of "reply". */
static json_t *reply_fields(const json_t *payload)
{
    json_t *fields = json_object();
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)json_object_get(payload, "reply"), key, value)
    {
        if (strcmp(key, "cmd") != 0 && strcmp(key, "result") != 0 && strcmp(key, "id") != 0 &&
            strcmp(key, "reason") != 0)
            json_object_set(fields, key, value);
    }
    return fields;
}

static void hooked(const struct chatd_hook_outcome *outcome, json_t *payload, void *arg)
{
    struct login_job *j = arg;
    const struct chatd_host *host = j->a->host;
    if (outcome->refused) {
        /* A hook turned the login down (a ban, say): undo it and say why. */
        host->session_logout(j->req);
        chat_refuse(host, j->req, outcome->result ? outcome->result : "forbidden", outcome->reason);
    } else {
        host->reply(j->req, "success", reply_fields(payload));
    }
    host->request_release(j->req);
    login_free(j);
}

static void logged_in(struct login_job *j, struct chatd_request *req)
{
    const struct chatd_host *host = j->a->host;
    int rc = host->session_login(req, j->name);
    if (rc != 0) {
        chat_refuse(host, req, "internal", chatd_strerror(rc));
        login_free(j);
        return;
    }
    json_t *payload = json_pack("{sssIs{s[]s[]}}", "user", j->name, "session",
                                (json_int_t)host->request_session(req), "reply", "fri", "group");
    j->req = req;
    host->request_hold(req);
    rc = payload ? host->hook_run(j->a->self, CHATD_HOOK_USER_LOGIN, payload, hooked, j)
                 : CHATD_ENOMEM;
    if (rc != 0) {
        /* No hook ran: the session is logged in, with the lists left empty. */
        host->log(j->a->self, CHATD_LOG_WARN, "user.login hooks not run for %s: %s", j->name,
                  chatd_strerror(rc));
        host->reply(req, "success", json_pack("{s[]s[]}", "fri", "group"));
        host->request_release(req);
        login_free(j);
    }
}

static void verified(struct chatd_request *req, void *arg, int status)
{
    struct login_job *j = arg;
    if (chat_job_failed(j->a->host, req, status, "the password could not be checked")) {
        login_free(j);
    } else if (!j->verified) {
        j->a->host->reply(req, "passwd_error", NULL);
        login_free(j);
    } else {
        logged_in(j, req);
    }
}

static void read_done(struct chatd_request *req, void *arg, int status)
{
    struct login_job *j = arg;
    if (chat_job_failed(j->a->host, req, status, "the account could not be read")) {
        login_free(j);
        return;
    }
    if (j->account->n_rows == 0) {
        j->a->host->reply(req, "user_not_exist", NULL);
        login_free(j);
        return;
    }
    static const struct chatd_job verify = {
        .work = verify_work, .done = verified, .timeout_ms = ACCOUNTS_HASH_TIMEOUT_MS};
    j->a->host->job_run(j->a->self, req, &verify, j);
}

void accounts_handle_login(struct chatd_request *req, const json_t *body, void *arg)
{
    struct accounts *a = arg;
    const char *name = json_string_value(json_object_get(body, "user"));
    if (!chat_valid_name(name)) {
        a->host->reply(req, "user_not_exist", NULL);
        return;
    }
    struct login_job *j = calloc(1, sizeof(*j));
    if (!j || !(j->passwd = chat_strdup(json_string_value(json_object_get(body, "passwd"))))) {
        free(j);
        chat_refuse(a->host, req, "internal", "out of memory");
        return;
    }
    j->a = a;
    strcpy(j->name, name);
    static const struct chatd_job read = {
        .work = read_work, .done = read_done, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    a->host->job_run(a->self, req, &read, j);
}

void accounts_handle_logout(struct chatd_request *req, const json_t *body, void *arg)
{
    (void)body;
    struct accounts *a = arg;
    int rc = a->host->session_logout(req);
    if (rc != 0)
        chat_refuse(a->host, req, "internal", chatd_strerror(rc));
    else
        a->host->reply(req, "success", NULL);
}
