/* away.c - an away message: a user who is away says so once, and whoever writes to them
 * privately gets an automatic answer, at most once an hour. An example of a third-party
 * chatd plugin that reacts to messages served by another plugin, through the hook point
 * "message.accepted" (see README.md).
 *
 *   > {"cmd":"away","text":"on holiday until Monday","id":1}
 *   < {"cmd":"away_reply","result":"success","id":1}
 *   bob writes to ann (private_chat) and, besides his private_chat_reply, gets:
 *   < {"cmd":"private_chat_recv","user_from":"ann","text":"[away] on holiday until Monday",
 *      "ts":1795802548732,"msg_id":"away-19a2b3c4d5e-1","auto":true}
 *   > {"cmd":"away","id":2}          (or "text":"") clears it
 *   < {"cmd":"away_reply","result":"success","id":2}
 *
 * Results: `success`; `bad_request` (text not a string, or longer than max_text_bytes);
 * `busy` (the worker queue is full: try again); `internal` (the database failed). The
 * host answers `not_logged_in` itself.
 *
 * Config, in [plugin.away] (needs [database] enable = yes):
 *   max_text_bytes = 200     longest away text in bytes, 1 to 1000
 *   reply_interval_s = 3600  one automatic answer per sender and away user in this time
 *
 * Where things are kept. The away texts live in the table away_texts, read by a job for
 * each accepted private message (a primary-key lookup on a worker thread, after the
 * sender has had his reply, so it never delays a message). When each sender was last
 * answered lives in away_replies, one row per (away user, sender), read and written by
 * that same job: a record that survives restarts and reloads, so a restart does not
 * answer everyone again. Its times are wall-clock milliseconds (now_ms) because they
 * outlive the process; a monotonic clock restarts with it. Two jobs for the same pair
 * could both read "not answered yet", so the loop thread lets only one job per pair run
 * at a time (`checking`); a message that arrives meanwhile is within the interval of
 * the answer that job may send, and needs no job of its own.
 *
 * ABI 1.2: an instance instead of globals, a hook, command_rules (the text's bound comes
 * from an option), job_run, db_query_rows, deliver, and tables named after the plugin. */
#include <chatd/plugin.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The longest text the table holds; max_text_bytes may only lower it. */
#define TEXT_MAX 1000
#define PREFIX   "[away] "

struct away {
    const struct chatd_host *host;
    struct chatd_plugin *self;
    int64_t interval_ms;
    /* Pairs whose check job is running: "<away user>\n<sender>" -> true. Loop thread. */
    json_t *checking;
    /* Automatic answers' msg_ids: "away-<start, hex ms>-<n>", unique across restarts. */
    int64_t started_ms;
    uint64_t sent;
};

static const struct chatd_option options[] = {
    {"max_text_bytes", CHATD_OPT_INT, "200", 1, TEXT_MAX, "longest away text in bytes"},
    {"reply_interval_s", CHATD_OPT_INT, "3600", 1, 7 * 24 * 3600,
     "seconds between two automatic answers to the same sender"},
    {NULL, 0, NULL, 0, 0, NULL},
};

static const struct chatd_migration migrations[] = {
    {1, "away texts",
     "CREATE TABLE IF NOT EXISTS away_texts ("
     " user VARBINARY(64) NOT NULL PRIMARY KEY,"
     " text VARCHAR(1000) NOT NULL,"
     " updated_ms BIGINT NOT NULL"
     ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"},
    {2, "last automatic answer per away user and sender",
     "CREATE TABLE IF NOT EXISTS away_replies ("
     " user VARBINARY(64) NOT NULL,"
     " sender VARBINARY(64) NOT NULL,"
     " replied_ms BIGINT NOT NULL,"
     " PRIMARY KEY (user, sender)"
     ") ENGINE=InnoDB"},
    {0, NULL, NULL},
};

/* What a job needs, copied out of the request or the payload: no json_t goes to a
 * worker. */
struct away_job {
    struct away *away;
    char *user;   /* the away user */
    char *sender; /* check: who wrote to them */
    char *text;   /* set: the new text ("" clears); check: the text to answer with */
    size_t len;
    int64_t now_ms;
};

static void job_free(struct away_job *j)
{
    if (!j)
        return;
    free(j->user);
    free(j->sender);
    free(j->text);
    free(j);
}

static char *copy(const char *s, size_t len)
{
    char *c = malloc(len + 1);
    if (c) {
        memcpy(c, s, len);
        c[len] = '\0';
    }
    return c;
}

static struct away_job *job_new(struct away *a, const char *user, const char *sender,
                                const char *text, size_t len)
{
    struct away_job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->away = a;
    j->len = len;
    j->now_ms = a->host->now_ms();
    j->user = copy(user, strlen(user));
    j->sender = sender ? copy(sender, strlen(sender)) : NULL;
    j->text = text ? copy(text, len) : NULL;
    if (!j->user || (sender && !j->sender) || (text && !j->text)) {
        job_free(j);
        return NULL;
    }
    return j;
}

static struct chatd_value text_value(const char *s, size_t len)
{
    return (struct chatd_value){.type = CHATD_PARAM_TEXT, .s = s, .len = len};
}

/* -- away ------------------------------------------------------------------------ */

/* A worker thread. Setting a text twice is setting it once: idempotent. Clearing also
 * forgets whom the user answered, so the next time away starts afresh. */
static int set_work(struct chatd_db *db, void *arg)
{
    struct away_job *j = arg;
    const struct chatd_host *host = j->away->host;
    struct chatd_value params[3] = {text_value(j->user, strlen(j->user)),
                                    text_value(j->text, j->len),
                                    {.type = CHATD_PARAM_INT64, .i = j->now_ms}};
    if (j->len > 0)
        return host->db_exec(db,
                             "INSERT INTO away_texts (user, text, updated_ms) VALUES (?, ?, ?)"
                             " ON DUPLICATE KEY UPDATE text = VALUES(text),"
                             " updated_ms = VALUES(updated_ms)",
                             params, 3, NULL, NULL);
    int rc = host->db_exec(db, "START TRANSACTION", NULL, 0, NULL, NULL);
    if (rc == 0)
        rc = host->db_exec(db, "DELETE FROM away_texts WHERE user = ?", params, 1, NULL, NULL);
    if (rc == 0)
        rc = host->db_exec(db, "DELETE FROM away_replies WHERE user = ?", params, 1, NULL, NULL);
    if (rc == 0)
        rc = host->db_exec(db, "COMMIT", NULL, 0, NULL, NULL);
    return rc; /* on an error the host rolls the transaction back */
}

static void set_done(struct chatd_request *req, void *arg, int status)
{
    struct away_job *j = arg;
    const struct chatd_host *host = j->away->host;
    /* req is NULL when job_run could not queue the job: it has answered busy/internal. */
    if (req && status == 0)
        host->reply(req, "success", NULL);
    else if (req)
        host->reply(req, "internal", NULL);
    /* CHATD_ECLOSED: the client left before the job ran; nothing failed. */
    if (status != 0 && status != CHATD_ECLOSED)
        host->log(j->away->self, CHATD_LOG_WARN, "away for %s failed: %s", j->user,
                  chatd_strerror(status));
    job_free(j);
}

static void handle_away(struct chatd_request *req, const json_t *body, void *arg)
{
    struct away *a = arg;
    static const struct chatd_job job = {
        .work = set_work, .done = set_done, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    /* Checked by the host: absent, or a string of at most max_text_bytes. */
    const json_t *text = json_object_get(body, "text");
    struct away_job *j =
        job_new(a, a->host->request_user(req), NULL,
                json_string_value(text) ? json_string_value(text) : "", json_string_length(text));
    if (!j) {
        a->host->reply(req, "internal", NULL);
        return;
    }
    a->host->job_run(a->self, req, &job, j); /* set_done runs in any case */
}

/* -- the automatic answer ----------------------------------------------------------- */

/* A worker thread. Not idempotent: a second run would find its own record and answer
 * nobody, so a job whose connection was lost answers nobody rather than twice. */
static int check_work(struct chatd_db *db, void *arg)
{
    struct away_job *j = arg;
    const struct chatd_host *host = j->away->host;
    struct chatd_value params[3] = {text_value(j->sender, strlen(j->sender)),
                                    text_value(j->user, strlen(j->user)),
                                    {.type = CHATD_PARAM_INT64, .i = j->now_ms}};
    struct chatd_rows *rows = NULL;
    int rc = host->db_query_rows(db,
                                 "SELECT t.text, r.replied_ms FROM away_texts t"
                                 " LEFT JOIN away_replies r ON r.user = t.user AND r.sender = ?"
                                 " WHERE t.user = ?",
                                 params, 2, 1, &rows);
    if (rc != 0 || rows->n_rows == 0 || rows->n_cols != 2) {
        host->rows_free(rows);
        return rc; /* not away: nothing to say */
    }
    const struct chatd_value *text = &rows->values[0], *replied = &rows->values[1];
    /* Due when never answered, answered long enough ago, or "answered" in the future
     * (the wall clock was set back: better one answer too many than none for hours). */
    int due = text->type == CHATD_PARAM_TEXT &&
              (replied->type != CHATD_PARAM_INT64 ||
               j->now_ms - replied->i >= j->away->interval_ms || replied->i > j->now_ms);
    if (due) {
        /* Recorded before it is sent: at most one answer per interval, never two. */
        struct chatd_value record[3] = {params[1], params[0], params[2]};
        rc = host->db_exec(db,
                           "INSERT INTO away_replies (user, sender, replied_ms) VALUES (?, ?, ?)"
                           " ON DUPLICATE KEY UPDATE replied_ms = VALUES(replied_ms)",
                           record, 3, NULL, NULL);
        if (rc == 0 && !(j->text = copy(text->s, text->len)))
            rc = CHATD_ENOMEM;
        j->len = text->len;
    }
    host->rows_free(rows);
    return rc;
}

static void pair_key(char *key, size_t size, const char *user, const char *sender)
{
    /* User names never hold a newline (chatd's name rule is [A-Za-z0-9_]). */
    snprintf(key, size, "%s\n%s", user, sender);
}

static void check_done(struct chatd_request *req, void *arg, int status)
{
    (void)req;
    struct away_job *j = arg;
    struct away *a = j->away;
    char key[160];
    pair_key(key, sizeof(key), j->user, j->sender);
    json_object_del(a->checking, key);
    if (status != 0) {
        a->host->log(a->self, CHATD_LOG_WARN, "no automatic answer from %s to %s: %s", j->user,
                     j->sender, chatd_strerror(status));
    } else if (j->text) {
        char msg_id[64];
        snprintf(msg_id, sizeof(msg_id), "away-%" PRIx64 "-%" PRIu64, (uint64_t)a->started_ms,
                 ++a->sent);
        json_t *push = json_pack("{ssssss+%sIsssb}", "cmd", "private_chat_recv", "user_from",
                                 j->user, "text", PREFIX, j->text, j->len, "ts",
                                 (json_int_t)j->now_ms, "msg_id", msg_id, "auto", 1);
        const char *to[] = {j->sender};
        /* Behind whatever the sender is still being sent; not stored if he has left. */
        if (push)
            a->host->deliver(a->self, to, 1, push, 0, 0, NULL, NULL);
    }
    job_free(j);
}

/* message.accepted: observe only. Payload: kind, user_from, user_to, text, msg_id, ts,
 * result. */
static int on_accepted(struct chatd_hook_call *call, json_t *payload, void *arg)
{
    (void)call;
    struct away *a = arg;
    static const struct chatd_job job = {
        .work = check_work, .done = check_done, .flags = CHATD_JOB_DB};
    const char *kind = json_string_value(json_object_get(payload, "kind"));
    const char *from = json_string_value(json_object_get(payload, "user_from"));
    const char *to = json_string_value(json_object_get(payload, "user_to"));
    if (!kind || strcmp(kind, "private") != 0 || !from || !to || strcmp(from, to) == 0)
        return CHATD_HOOK_CONTINUE;
    char key[160];
    if (strlen(from) > 64 || strlen(to) > 64)
        return CHATD_HOOK_CONTINUE; /* not a name the tables hold */
    pair_key(key, sizeof(key), to, from);
    if (json_object_get(a->checking, key))
        return CHATD_HOOK_CONTINUE; /* the running job answers, or nobody needs to */
    struct away_job *j = job_new(a, to, from, NULL, 0);
    if (!j || json_object_set_new(a->checking, key, json_true()) != 0) {
        job_free(j);
        return CHATD_ENOMEM;
    }
    a->host->job_run(a->self, NULL, &job, j); /* check_done runs in any case */
    return CHATD_HOOK_CONTINUE;
}

/* -- init and destroy -------------------------------------------------------------- */

static void away_destroy(void *instance)
{
    struct away *a = instance;
    json_decref(a->checking);
    free(a);
}

static int away_init(struct chatd_plugin *self, const struct chatd_host *host)
{
    static const struct chatd_field fields[] = {
        {"text", CHATD_FIELD_STRING, 0, 0, TEXT_MAX},
        {NULL, 0, 0, 0, 0},
    };
    static const struct chatd_field_rule rules[] = {
        {.field = "text", .max_from_option = "max_text_bytes"},
        {.field = NULL},
    };
    static const struct chatd_command command = {
        .name = "away", .handler = handle_away, .fields = fields};
    struct away *a = calloc(1, sizeof(*a));
    if (!a)
        return CHATD_ENOMEM;
    a->host = host;
    a->self = self;
    host->instance_set(self, a); /* from here on, destroy frees it */
    int64_t interval_s = 3600;
    host->option_int(self, "reply_interval_s", &interval_s);
    a->interval_ms = interval_s * 1000;
    a->started_ms = host->now_ms();
    if (!(a->checking = json_object()))
        return CHATD_ENOMEM;
    int rc = host->register_command(self, &command);
    if (rc == 0)
        rc = host->command_rules(self, "away", rules);
    if (rc == 0)
        rc = host->hook_add(self, CHATD_HOOK_MESSAGE_ACCEPTED, 0, on_accepted, NULL);
    if (rc != 0)
        host->log(self, CHATD_LOG_ERROR, "cannot register: %s", chatd_strerror(rc));
    return rc;
}

CHATD_PLUGIN_DEFINE(.name = "away", .version = "1.0.0",
                    .description = "an away text, answered automatically to private messages",
                    .options = options, .migrations = migrations, .init = away_init,
                    .destroy = away_destroy);
