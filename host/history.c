/* history.c - history_read (ABI 1.4): one page of a conversation, a job of the host's
 * pseudo-plugin "chatd" (the stream's record, like read_mark's jobs), so that its
 * statement and its time budget are the host's whatever plugin asks. The caller stays loaded
 * (pending_jobs) until its done has run.
 *
 * A page is one prepared statement on the (conversation, id) key:
 *   WHERE conversation = ? AND id < before AND id >= floor ORDER BY id DESC LIMIT n+1
 * so it costs the same at ten million rows as at ten; the extra row only says whether
 * there are older ones. The same statement computes, for the viewer's own private
 * messages, whether the peer has them: "delivered" when a device of the peer
 * acknowledged them (chatd_devices, any device but the version 1 position "", or what
 * the loop knows of the peer's devices, since positions are written a second late), "read"
 * when the peer's read mark (chatd_reads) reached them. Those two look-ups do not
 * depend on the row, so MariaDB runs them once per page.
 *
 * The worker turns each row's body (the push as stored) into the page's object: "cmd"
 * and "offline" removed, "msg_id", "seq" and "ts" set from the row. */
#include "history.h"

#include "db.h"
#include "log.h"
#include "server.h"
#include "stream_internal.h"
#include "workers.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ABI limits (chatd/plugin.h): a page, a conversation key, a user name. */
#define HISTORY_LIMIT_MAX  1000
#define CONVERSATION_MAX   70
#define HISTORY_VIEWER_MAX 32

struct history_job {
    struct chatd_plugin *caller; /* kept loaded until done ran */
    chatd_history_done_fn done;
    void *arg;
    char conversation[CONVERSATION_MAX + 1];
    char viewer[HISTORY_VIEWER_MAX + 1]; /* "" for none */
    char peer[HISTORY_VIEWER_MAX + 1];   /* the viewer's partner in a private conversation */
    int64_t before, floor;
    int limit;
    /* The peer's highest acknowledged position as the loop knows it: acknowledgements
     * reach chatd_devices up to a second later (devices.c). */
    int64_t peer_acked;
    /* Set by the worker. */
    json_t *newest_first; /* the page as read, newest first */
    size_t rows;          /* rows read, the one past the page included */
    int out_of_memory;
};

/* The other name of a private conversation "<lower>|<higher>" that holds viewer; "" for
 * a group's (or one that does not hold the viewer). */
static void peer_of(const char *conversation, const char *viewer, char *peer, size_t cap)
{
    peer[0] = '\0';
    const char *bar = strchr(conversation, '|');
    if (!bar || !viewer[0])
        return;
    size_t first_len = (size_t)(bar - conversation);
    if (strlen(viewer) == first_len && strncmp(conversation, viewer, first_len) == 0)
        snprintf(peer, cap, "%s", bar + 1);
    else if (strcmp(bar + 1, viewer) == 0)
        snprintf(peer, cap, "%.*s", (int)first_len, conversation);
}

static int flag_set(const struct chatd_value *v)
{
    return v->type == CHATD_PARAM_INT64 && v->i != 0;
}

/* Worker, per row: id, ts, body, mine, delivered, read. */
static int on_row(const struct chatd_value *cols, size_t ncols, void *arg)
{
    struct history_job *j = arg;
    if (ncols != 6 || cols[0].type != CHATD_PARAM_INT64)
        return 1;
    if (++j->rows > (size_t)j->limit)
        return 1; /* the row past the page: there are older ones */
    int64_t id = cols[0].i;
    json_error_t err;
    json_t *msg =
        cols[2].type == CHATD_PARAM_TEXT ? json_loadb(cols[2].s, cols[2].len, 0, &err) : NULL;
    if (!json_is_object(msg)) {
        log_warn("history: message %" PRId64 " has a body that is not a JSON object; skipped", id);
        json_decref(msg);
        return 0;
    }
    char msg_id[24];
    snprintf(msg_id, sizeof(msg_id), "%" PRId64, id);
    json_object_del(msg, "cmd");
    json_object_del(msg, "offline");
    int rc = json_object_set_new(msg, "msg_id", json_string(msg_id));
    rc |= json_object_set_new(msg, "seq", json_integer(id));
    if (cols[1].type == CHATD_PARAM_INT64)
        rc |= json_object_set_new(msg, "ts", json_integer(cols[1].i));
    if (flag_set(&cols[3])) {
        rc |= json_object_set_new(msg, "delivered", json_boolean(flag_set(&cols[4])));
        rc |= json_object_set_new(msg, "read", json_boolean(flag_set(&cols[5])));
    }
    rc |= json_array_append_new(j->newest_first, msg);
    j->out_of_memory = rc != 0;
    return j->out_of_memory;
}

static int history_work(struct chatd_db *db, void *arg)
{
    struct history_job *j = arg;
    /* A retry on a fresh connection starts the page again. */
    if (!j->newest_first && !(j->newest_first = json_array()))
        return CHATD_ENOMEM;
    json_array_clear(j->newest_first);
    j->rows = 0;
    j->out_of_memory = 0;
    struct chatd_value viewer = {.type = CHATD_PARAM_NULL}, peer = {.type = CHATD_PARAM_NULL};
    if (j->viewer[0])
        viewer = (struct chatd_value){CHATD_PARAM_TEXT, 0, j->viewer, strlen(j->viewer)};
    if (j->peer[0])
        peer = (struct chatd_value){CHATD_PARAM_TEXT, 0, j->peer, strlen(j->peer)};
    const struct chatd_value params[] = {
        viewer,
        {CHATD_PARAM_INT64, j->peer_acked, NULL, 0},
        peer,
        peer,
        viewer,
        {CHATD_PARAM_TEXT, 0, j->conversation, strlen(j->conversation)},
        {CHATD_PARAM_INT64, j->before > 0 ? j->before : INT64_MAX, NULL, 0},
        {CHATD_PARAM_INT64, j->floor, NULL, 0},
        {CHATD_PARAM_INT64, (int64_t)j->limit + 1, NULL, 0},
    };
    static const char sql[] =
        "SELECT m.id, m.ts, m.body, m.sender = ? AND (m.flags & 1) <> 0,"
        " m.id <= GREATEST(?, (SELECT COALESCE(MAX(d.acked), 0)"
        "          FROM chatd_devices d WHERE d.user = ? AND d.device <> '')),"
        " m.id <= (SELECT COALESCE(MAX(r.upto), 0) FROM chatd_reads r"
        "          WHERE r.user = ? AND r.peer = ?)"
        " FROM chatd_messages m"
        " WHERE m.conversation = ? AND m.id < ? AND m.id >= ?"
        " ORDER BY m.id DESC LIMIT ?";
    int rc = db_query(db, sql, params, sizeof(params) / sizeof(params[0]), on_row, j);
    return rc == 0 && j->out_of_memory ? CHATD_ENOMEM : rc;
}

/* The page oldest first (newest is taken). NULL when out of memory. */
static json_t *oldest_first(json_t *newest)
{
    json_t *page = json_array();
    for (size_t i = json_array_size(newest); page && i-- > 0;)
        if (json_array_append(page, json_array_get(newest, i)) != 0) {
            json_decref(page);
            page = NULL;
        }
    json_decref(newest);
    return page;
}

static void history_done(struct chatd_request *req, void *arg, int status)
{
    (void)req;
    struct history_job *j = arg;
    json_t *page = NULL;
    if (status == 0 && !(page = oldest_first(j->newest_first)))
        status = CHATD_ENOMEM;
    else if (status != 0)
        json_decref(j->newest_first);
    j->done(status, status == 0 ? page : NULL, j->rows > (size_t)j->limit, j->arg);
    json_decref(page);
    j->caller->pending_jobs--;
    free(j);
}

int history_read(struct chatd_plugin *self, struct chatd_request *req,
                 const struct chatd_history_query *query, chatd_history_done_fn done, void *arg)
{
    /* A key that breaks post's rule was never posted to: its page is empty. */
    size_t key_len = query && query->conversation ? strlen(query->conversation) : 0;
    if (!done || key_len == 0 || key_len > CONVERSATION_MAX || query->limit < 1 ||
        query->limit > HISTORY_LIMIT_MAX || query->before < 0 || query->floor < 0 ||
        (query->viewer && strlen(query->viewer) > HISTORY_VIEWER_MAX))
        return CHATD_EINVAL;
    struct server *srv = self->server;
    if (!srv->stream || !srv->cfg->db.enable || srv->check_only)
        return CHATD_ENOSYS;
    struct history_job *j = calloc(1, sizeof(*j));
    if (!j)
        return CHATD_ENOMEM;
    j->caller = self;
    j->done = done;
    j->arg = arg ? arg : self->instance;
    strcpy(j->conversation, query->conversation);
    snprintf(j->viewer, sizeof(j->viewer), "%s", query->viewer ? query->viewer : "");
    peer_of(j->conversation, j->viewer, j->peer, sizeof(j->peer));
    const struct stream_user *peer = j->peer[0] ? stream_user(srv->stream, j->peer, 0) : NULL;
    j->peer_acked = peer && peer->loaded ? peer->acked_max : 0;
    j->before = query->before;
    j->floor = query->floor;
    j->limit = query->limit;
    static const struct chatd_job job = {
        .work = history_work, .done = history_done, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    int rc = pool_submit(srv->pool, &srv->stream->self, req, &job, j);
    if (rc != 0) {
        free(j);
        return rc;
    }
    self->pending_jobs++;
    return 0;
}
