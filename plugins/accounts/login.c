/* login.c - login by password or by token, and logout.
 *
 * A password login reads the account (a database job), checks the password against its
 * hash (a job without a connection), stores a new login token (a database job; skipped
 * when token_lifetime_s is 0), binds the session (session_login), then runs the hook
 * point "user.login" with {"user","session","reply":{"fri":[],"group":[]}}: hooks of
 * other plugins put their members into "reply" (friends replaces "fri", groups
 * "group"), and login_reply carries them, plus "token". The empty lists are there
 * first so that login_reply always has both, as the wire contract wants, whatever is
 * enabled.
 *
 * A token login reads the account and looks the token's hash up in one database job,
 * then goes on exactly like a password login from session_login; its login_reply
 * carries the same token again (it stays valid until it expires: a token login never
 * extends or replaces it). Hooks never see a token, and cannot set "token".
 *
 * Every login first passes the host's admission (auth_attempt: attempts per address,
 * and for a password login the name's failed logins, before any hash is computed); a
 * login that fails is reported with auth_failed, which logs it and counts it against
 * the name. A token login is not held back by the name's failures, so that guessing a
 * user's password cannot lock them out of logging in by token. A password login finding
 * the hashing queue full (job_room) is answered busy before it reads the account.
 *
 * logout with "all":true revokes every token of the user (a database job), then ends
 * every other session of theirs (user_logout_all) and this one. */
#include "accounts.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

struct login_job {
    struct accounts *a;
    struct chatd_request *req; /* held while the user.login hooks run */
    char name[CHAT_NAME_MAX + 1];
    char *passwd;               /* NULL for a token login */
    struct chatd_rows *account; /* password_hash; no row: no such user */
    int verified;               /* the password or the token is right */
    int has_token;              /* token holds the token login_reply carries */
    struct accounts_token token;
};

/* Answer a failed login with `result` (and `reason`, may be NULL), reported to the
 * host as `why`. */
static void login_failed(struct login_job *j, struct chatd_request *req, const char *result,
                         const char *reason, const char *why)
{
    j->a->host->auth_failed(j->a->self, req, j->name, why);
    chat_refuse(j->a->host, req, result, reason);
}

static void login_free(struct login_job *j)
{
    if (j->passwd) {
        sodium_memzero(j->passwd, strlen(j->passwd));
        free(j->passwd);
    }
    j->a->host->rows_free(j->account);
    sodium_memzero(&j->token, sizeof(j->token));
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

/* Worker: the account, and whether the token the client sent is one of its own
 * that has not expired. */
static int token_read_work(struct chatd_db *db, void *arg)
{
    struct login_job *j = arg;
    int rc = read_work(db, arg);
    if (rc != 0 || j->account->n_rows == 0 || !j->has_token)
        return rc;
    rc = accounts_token_check(j->a, db, j->name, &j->token);
    if (rc < 0)
        return rc;
    j->verified = rc;
    return 0;
}

/* Worker: the new token of a password login. */
static int token_store_work(struct chatd_db *db, void *arg)
{
    struct login_job *j = arg;
    return accounts_token_store(j->a, db, j->name, &j->token);
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
            strcmp(key, "reason") != 0 && strcmp(key, "token") != 0)
            json_object_set(fields, key, value);
    }
    return fields;
}

/* The login's token, when it has one, added to login_reply's fields (taken). */
static json_t *with_token(const struct login_job *j, json_t *fields)
{
    if (fields && j->has_token)
        json_object_set_new(fields, "token", json_string(j->token.text));
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
        host->reply(j->req, "success", with_token(j, reply_fields(payload)));
    }
    host->request_release(j->req);
    login_free(j);
}

static void logged_in(struct login_job *j, struct chatd_request *req)
{
    const struct chatd_host *host = j->a->host;
    int rc = host->session_login(req, j->name);
    if (rc == CHATD_EINVAL) {
        /* The login's device, ack or since broke its rule (docs/protocol.md, "Devices"). */
        chat_refuse(host, req, "bad_request",
                    "device must be 1 to 64 of A-Z a-z 0-9 _ . -, ack true or false, since an "
                    "integer >= 0 with \"ack\":true");
        login_free(j);
        return;
    }
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
        host->reply(req, "success", with_token(j, json_pack("{s[]s[]}", "fri", "group")));
        host->request_release(req);
        login_free(j);
    }
}

static void token_stored(struct chatd_request *req, void *arg, int status)
{
    struct login_job *j = arg;
    /* Not logged in yet: a login whose token could not be kept is not half-done. */
    if (chat_job_failed(j->a->host, req, status, "the login token could not be stored"))
        login_free(j);
    else
        logged_in(j, req);
}

static void verified(struct chatd_request *req, void *arg, int status)
{
    struct login_job *j = arg;
    if (chat_job_failed(j->a->host, req, status, "the password could not be checked")) {
        login_free(j);
    } else if (!j->verified) {
        login_failed(j, req, "passwd_error", NULL, "wrong password");
        login_free(j);
    } else if (j->a->token_lifetime_ms > 0) {
        accounts_token_new(&j->token);
        j->has_token = 1;
        /* Idempotent: a retry stores the same token (INSERT IGNORE). */
        static const struct chatd_job store = {.work = token_store_work,
                                               .done = token_stored,
                                               .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
        j->a->host->job_run(j->a->self, req, &store, j);
    } else {
        logged_in(j, req);
    }
}

static void token_read_done(struct chatd_request *req, void *arg, int status)
{
    struct login_job *j = arg;
    if (chat_job_failed(j->a->host, req, status, "the account could not be read")) {
        login_free(j);
    } else if (j->account->n_rows == 0) {
        login_failed(j, req, "user_not_exist", NULL, "unknown user");
        login_free(j);
    } else if (!j->verified) {
        login_failed(j, req, "token_invalid",
                     "the token is unknown, expired or revoked: log in with the password",
                     "bad token");
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
        login_failed(j, req, "user_not_exist", NULL, "unknown user");
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
    const char *passwd = json_string_value(json_object_get(body, "passwd"));
    const char *token = json_string_value(json_object_get(body, "token"));
    if (!passwd == !token) {
        chat_refuse(a->host, req, "bad_request",
                    passwd ? "give 'passwd' or 'token', not both"
                           : "'passwd' or 'token' is required");
        return;
    }
    /* A password login is held back by the name's failed logins, a token login not. */
    if (a->host->auth_attempt(a->self, req, passwd ? name : NULL) != 0)
        return; /* answered rate_limited */
    if (!chat_valid_name(name)) {
        a->host->auth_failed(a->self, req, name, "not a valid user name");
        a->host->reply(req, "user_not_exist", NULL);
        return;
    }
    /* A password login reads the account, then hashes. With the hashing queue full it
     * would be answered busy after the read: answered so now, so that a login flood
     * costs the database nothing and logged-in users' database work never waits
     * behind it. */
    if (passwd && a->host->job_room(a->self, 0) == 0) {
        chat_refuse(a->host, req, "busy", "too many logins at once, try again");
        return;
    }
    struct login_job *j = calloc(1, sizeof(*j));
    if (!j || (passwd && !(j->passwd = chat_strdup(passwd)))) {
        free(j);
        chat_refuse(a->host, req, "internal", "out of memory");
        return;
    }
    j->a = a;
    strcpy(j->name, name);
    if (passwd) {
        static const struct chatd_job read = {
            .work = read_work, .done = read_done, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
        a->host->job_run(a->self, req, &read, j);
        return;
    }
    /* With tokens switched off every token is unknown; one that is not in the one
     * spelling this plugin issues is unknown too. Either way the account is still read,
     * so that an unknown user is user_not_exist as with a password. */
    j->has_token = a->token_lifetime_ms > 0 && accounts_token_parse(&j->token, token) == 0;
    static const struct chatd_job read = {.work = token_read_work,
                                          .done = token_read_done,
                                          .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    a->host->job_run(a->self, req, &read, j);
}

static void logout_here(struct accounts *a, struct chatd_request *req)
{
    int rc = a->host->session_logout(req);
    if (rc != 0 && rc != CHATD_ECLOSED)
        chat_refuse(a->host, req, "internal", chatd_strerror(rc));
    else
        a->host->reply(req, "success", NULL);
}

struct logout_all_job {
    struct accounts *a;
    char name[CHAT_NAME_MAX + 1];
};

/* Worker. */
static int revoke_work(struct chatd_db *db, void *arg)
{
    struct logout_all_job *j = arg;
    return accounts_token_revoke_all(j->a, db, j->name);
}

static void revoked(struct chatd_request *req, void *arg, int status)
{
    struct logout_all_job *j = arg;
    struct accounts *a = j->a;
    /* Nothing was revoked: every session stays as it was. */
    if (!chat_job_failed(a->host, req, status, "the login tokens could not be revoked")) {
        int ended = a->host->user_logout_all(req);
        if (ended < 0) {
            chat_refuse(a->host, req, "internal", chatd_strerror(ended));
        } else {
            a->host->log(a->self, CHATD_LOG_INFO,
                         "%s logged out everywhere: tokens revoked, %d other sessions ended",
                         j->name, ended);
            logout_here(a, req);
        }
    }
    free(j);
}

void accounts_handle_logout(struct chatd_request *req, const json_t *body, void *arg)
{
    struct accounts *a = arg;
    if (!json_is_true(json_object_get(body, "all"))) {
        logout_here(a, req);
        return;
    }
    const char *name = a->host->request_user(req);
    struct logout_all_job *j = calloc(1, sizeof(*j));
    if (!j || !name || strlen(name) > CHAT_NAME_MAX) {
        const char *why = j ? "no user to log out" : "out of memory";
        free(j);
        chat_refuse(a->host, req, "internal", why);
        return;
    }
    j->a = a;
    strcpy(j->name, name);
    static const struct chatd_job revoke = {
        .work = revoke_work, .done = revoked, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    a->host->job_run(a->self, req, &revoke, j);
}
