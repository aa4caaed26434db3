/* status.c - a status line for chat users ("out for lunch", "in a meeting"), kept in
 * the database and pushed at once to everyone online. An example of a third-party
 * chatd plugin, built and tested against an installed chatd (see README.md).
 *
 *   > {"cmd":"set_status","text":"out for lunch","id":1}
 *   < {"cmd":"set_status_reply","result":"success","ts":1795802548732,"id":1}
 *   every other user online gets:
 *   < {"cmd":"status_recv","user":"ann","text":"out for lunch","ts":1795802548732}
 *   > {"cmd":"get_status","user":"ann","id":2}
 *   < {"cmd":"get_status_reply","result":"success","user":"ann","text":"out for lunch",
 *      "ts":1795802548732,"id":2}
 *
 * An empty text clears the status (the push then carries "text":""). Both commands
 * need a logged-in session. Results: `success`; `no_status` (get_status of a user who
 * has none); `bad_request` (a field missing or of the wrong type, or a text longer than
 * max_length); `busy` (the worker queue is full: try again); `internal` (the database
 * failed; nothing was changed half-way). The host answers `not_logged_in` itself.
 *
 * Config, in [plugin.status] (needs [database] enable = yes):
 *   max_length = 140   longest status text in bytes, 1 to 1000
 *   broadcast = yes    push each change to every user online; no: only get_status
 *
 * It shows, in about 250 lines: options, a migration and its own table, database jobs
 * (a write and a read, both idempotent), LOGIN/LOGOUT events (the set of users
 * online), pushes, and replies with the wire contract's words. */
#include <chatd/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The longest text the table holds; max_length may only lower it. */
#define TEXT_MAX 1000

static const struct chatd_host *host;
static struct chatd_plugin *plugin;
/* The users with at least one session, as a set: name -> true. Loop thread only. */
static json_t *online;

static const struct chatd_option options[] = {
    {"max_length", CHATD_OPT_INT, "140", 1, TEXT_MAX, "longest status text in bytes"},
    {"broadcast", CHATD_OPT_BOOL, "yes", 0, 0, "push each change to every user online"},
    {NULL, 0, NULL, 0, 0, NULL},
};

static const struct chatd_migration migrations[] = {
    {1, "status table",
     "CREATE TABLE IF NOT EXISTS status_texts ("
     " user VARBINARY(64) NOT NULL PRIMARY KEY,"
     " text VARCHAR(1000) NOT NULL,"
     " updated_ms BIGINT NOT NULL"
     ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"},
    {0, NULL, NULL},
};

/* What a job needs, copied out of the request: no json_t goes to a worker. */
struct status_job {
    char user[65];
    char *text; /* set_status: the new text; get_status: the stored one, or NULL */
    size_t len;
    int64_t ts;
};

static void job_free(struct status_job *j)
{
    free(j->text);
    free(j);
}

static struct status_job *job_new(const char *user, const char *text, size_t len)
{
    struct status_job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    snprintf(j->user, sizeof(j->user), "%s", user);
    if (text && !(j->text = malloc(len + 1))) {
        free(j);
        return NULL;
    }
    if (text) {
        memcpy(j->text, text, len + 1);
        j->len = len;
    }
    return j;
}

/* Submit, or answer at once when the job cannot be queued. */
static void submit(struct chatd_request *req, const struct chatd_job *job, struct status_job *j)
{
    int rc = j ? host->job_submit(plugin, req, job, j) : CHATD_ENOMEM;
    if (rc == 0)
        return; /* its done callback replies */
    host->reply(req, rc == CHATD_EBUSY ? "busy" : "internal", NULL);
    if (j)
        job_free(j);
}

static struct chatd_value text_value(const char *s, size_t len)
{
    return (struct chatd_value){.type = CHATD_PARAM_TEXT, .s = s, .len = len};
}

/* -- set_status ------------------------------------------------------------------ */

/* A worker thread. Setting a value twice is setting it once: the job is idempotent. */
static int set_work(struct chatd_db *db, void *arg)
{
    struct status_job *j = arg;
    struct chatd_value params[3] = {text_value(j->user, strlen(j->user)),
                                    text_value(j->text, j->len),
                                    {.type = CHATD_PARAM_INT64, .i = j->ts}};
    if (j->len == 0)
        return host->db_exec(db, "DELETE FROM status_texts WHERE user = ?", params, 1, NULL, NULL);
    return host->db_exec(db,
                         "INSERT INTO status_texts (user, text, updated_ms) VALUES (?, ?, ?)"
                         " ON DUPLICATE KEY UPDATE text = VALUES(text),"
                         " updated_ms = VALUES(updated_ms)",
                         params, 3, NULL, NULL);
}

/* Push the change to every user online but its author, whose reply says it all. */
static void broadcast(const struct status_job *j)
{
    json_t *msg = json_pack("{ssssss%sI}", "cmd", "status_recv", "user", j->user, "text", j->text,
                            j->len, "ts", (json_int_t)j->ts);
    const char *user;
    json_t *ignored;
    json_object_foreach(online, user, ignored)
    {
        if (msg && strcmp(user, j->user) != 0)
            host->push_user(plugin, user, json_incref(msg), NULL); /* takes one reference */
    }
    json_decref(msg);
}

static void set_done(struct chatd_request *req, void *arg, int status)
{
    struct status_job *j = arg;
    int push = 0;
    if (status == 0) {
        host->reply(req, "success", json_pack("{sI}", "ts", (json_int_t)j->ts));
        host->option_bool(plugin, "broadcast", &push);
    } else {
        /* CHATD_ECLOSED: the client left before the job ran; nothing failed. */
        if (status != CHATD_ECLOSED)
            host->log(plugin, CHATD_LOG_WARN, "set_status for %s failed: %s", j->user,
                      chatd_strerror(status));
        host->reply(req, "internal", NULL);
    }
    if (push)
        broadcast(j);
    job_free(j);
}

static void handle_set(struct chatd_request *req, const json_t *body, void *arg)
{
    (void)arg;
    static const struct chatd_job job = {
        .work = set_work, .done = set_done, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    const json_t *text = json_object_get(body, "text");
    int64_t max = TEXT_MAX;
    host->option_int(plugin, "max_length", &max);
    if (json_string_length(text) > (size_t)max) {
        char reason[64];
        snprintf(reason, sizeof(reason), "'text' must be at most %lld bytes long", (long long)max);
        host->reply(req, "bad_request", json_pack("{ss}", "reason", reason));
        return;
    }
    struct status_job *j =
        job_new(host->request_user(req), json_string_value(text), json_string_length(text));
    if (j)
        j->ts = host->now_ms();
    submit(req, &job, j);
}

/* -- get_status ------------------------------------------------------------------ */

static int read_status(const struct chatd_value *cols, size_t ncols, void *arg)
{
    struct status_job *j = arg;
    if (ncols != 2 || cols[0].type != CHATD_PARAM_TEXT || cols[1].type != CHATD_PARAM_INT64)
        return 1;
    free(j->text); /* an idempotent job may run twice */
    j->text = malloc(cols[0].len + 1);
    if (!j->text)
        return 1;
    memcpy(j->text, cols[0].s, cols[0].len + 1); /* the host ends it with a NUL */
    j->len = cols[0].len;
    j->ts = cols[1].i;
    return 0;
}

static int get_work(struct chatd_db *db, void *arg)
{
    struct status_job *j = arg;
    struct chatd_value user = text_value(j->user, strlen(j->user));
    return host->db_query(db, "SELECT text, updated_ms FROM status_texts WHERE user = ?", &user, 1,
                          read_status, j);
}

static void get_done(struct chatd_request *req, void *arg, int status)
{
    struct status_job *j = arg;
    if (status != 0)
        host->reply(req, "internal", NULL);
    else if (!j->text)
        host->reply(req, "no_status", json_pack("{ss}", "user", j->user));
    else
        host->reply(req, "success",
                    json_pack("{ssss%sI}", "user", j->user, "text", j->text, j->len, "ts",
                              (json_int_t)j->ts));
    job_free(j);
}

static void handle_get(struct chatd_request *req, const json_t *body, void *arg)
{
    (void)arg;
    static const struct chatd_job job = {
        .work = get_work, .done = get_done, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    submit(req, &job, job_new(json_string_value(json_object_get(body, "user")), NULL, 0));
}

/* -- who is online --------------------------------------------------------------- */

static void on_event(enum chatd_event event, chatd_session_id session, const char *user,
                     int first_or_last, void *arg)
{
    (void)session;
    (void)arg;
    if (!first_or_last)
        return; /* another session of a user already online, or still online */
    if (event == CHATD_EVENT_LOGIN)
        json_object_set_new(online, user, json_true());
    else
        json_object_del(online, user);
}

/* -- init and shutdown ------------------------------------------------------------- */

static int status_init(struct chatd_plugin *self, const struct chatd_host *h)
{
    static const struct chatd_field set_fields[] = {
        {"text", CHATD_FIELD_STRING, 1, 0, TEXT_MAX},
        {NULL, 0, 0, 0, 0},
    };
    static const struct chatd_field get_fields[] = {
        {"user", CHATD_FIELD_STRING, 1, 1, 64},
        {NULL, 0, 0, 0, 0},
    };
    static const struct chatd_command commands[] = {
        {.name = "set_status", .handler = handle_set, .fields = set_fields},
        {.name = "get_status", .handler = handle_get, .fields = get_fields},
    };
    host = h;
    plugin = self;
    online = json_object();
    if (!online)
        return CHATD_ENOMEM;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof(commands) / sizeof(commands[0]); i++)
        rc = host->register_command(self, &commands[i]);
    if (rc == 0)
        rc = host->subscribe(self, CHATD_EVENT_LOGIN, on_event, NULL);
    if (rc == 0)
        rc = host->subscribe(self, CHATD_EVENT_LOGOUT, on_event, NULL);
    if (rc != 0) {
        host->log(self, CHATD_LOG_ERROR, "cannot register: %s", chatd_strerror(rc));
        json_decref(online);
        online = NULL;
    }
    return rc;
}

static void status_shutdown(struct chatd_plugin *self)
{
    (void)self;
    json_decref(online);
    online = NULL;
}

CHATD_PLUGIN_DEFINE(.name = "status", .version = "1.0.0",
                    .description = "a status line per user, pushed to everyone online",
                    .options = options, .migrations = migrations, .init = status_init,
                    .shutdown = status_shutdown);
