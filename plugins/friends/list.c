/* list.c - the friends of a user as stored, and the command `friends`:
 *   {"cmd":"friends"} -> "friends":[{"user":"Bob","online":true}], sorted by name. */
#include "friends.h"

#include <stdlib.h>
#include <string.h>

int friends_query(const struct friends *f, struct chatd_db *db, const char *user,
                  struct chatd_rows **out)
{
    struct chatd_value name = {.type = CHATD_PARAM_TEXT, .s = user, .len = strlen(user)};
    return f->host->db_query_rows(
        db, "SELECT friend FROM friends_pairs WHERE user = ? ORDER BY friend", &name, 1, 0, out);
}

struct list_job {
    struct friends *f;
    char user[CHAT_NAME_MAX + 1];
    struct chatd_rows *rows;
};

static int list_work(struct chatd_db *db, void *arg)
{
    struct list_job *j = arg;
    return friends_query(j->f, db, j->user, &j->rows);
}

static void list_done(struct chatd_request *req, void *arg, int status)
{
    struct list_job *j = arg;
    const struct chatd_host *host = j->f->host;
    if (!chat_job_failed(host, req, status, "the friend list could not be read")) {
        json_t *list = json_array();
        for (size_t r = 0; list && r < j->rows->n_rows; r++) {
            const char *name = chat_cell(j->rows, r, 0);
            if (json_array_append_new(
                    list, json_pack("{sssb}", "user", name, "online",
                                    host->user_session_count(j->f->self, name) > 0)) != 0) {
                json_decref(list); /* never a partial list */
                list = NULL;
            }
        }
        json_t *fields = list ? json_pack("{so}", "friends", list) : NULL;
        if (fields)
            host->reply(req, "success", fields);
        else {
            host->log(j->f->self, CHATD_LOG_ERROR, "friends: out of memory");
            chat_refuse(host, req, "internal", "out of memory");
        }
    }
    host->rows_free(j->rows);
    free(j);
}

void friends_handle_list(struct chatd_request *req, const json_t *body, void *arg)
{
    (void)body;
    struct friends *f = arg;
    const char *user = f->host->request_user(req);
    struct list_job *j = calloc(1, sizeof(*j));
    if (!j) {
        chat_refuse(f->host, req, "internal", "out of memory");
        return;
    }
    if (strlen(user) > CHAT_NAME_MAX) { /* logged in by another authenticator */
        free(j);
        f->host->reply(req, "success", json_pack("{s[]}", "friends"));
        return;
    }
    j->f = f;
    strcpy(j->user, user);
    static const struct chatd_job job = {
        .work = list_work, .done = list_done, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    f->host->job_run(f->self, req, &job, j);
}
