/* read_marks.c - read_mark (ABI 1.4): the request's user has read every private message
 * from a peer up to one of them. One job checks the message is a private message from
 * the peer to the reader (their conversation, the peer its sender) and moves
 * chatd_reads.upto forward; when it moved, the peer's sessions get a "read" receipt for
 * that message. A mark that does not move sends nothing: one receipt per message. */
#include "stream_internal.h"

#include "cluster_route.h"

#include "db.h"
#include "log.h"
#include "request.h"
#include "server.h"
#include "workers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct read_mark {
    struct stream *st;
    char reader[STREAM_NAME_MAX + 1];
    char peer[STREAM_NAME_MAX + 1];
    char conversation[2 * STREAM_NAME_MAX + 2];
    int64_t msg_id;
    int moved;
    chatd_read_done_fn done;
    void *arg;
};

struct message_row {
    int found;
    int ok;
    const struct read_mark *m;
};

static int on_message(const struct chatd_value *c, size_t n, void *arg)
{
    struct message_row *r = arg;
    const struct read_mark *m = r->m;
    (void)n;
    r->found = 1;
    r->ok = (c[0].i & CHATD_POST_PRIVATE) && c[1].type == CHATD_PARAM_TEXT &&
            c[1].len == strlen(m->peer) && memcmp(c[1].s, m->peer, c[1].len) == 0 &&
            c[2].type == CHATD_PARAM_TEXT && c[2].len == strlen(m->conversation) &&
            memcmp(c[2].s, m->conversation, c[2].len) == 0;
    return 1;
}

static int mark_work(struct chatd_db *db, void *arg)
{
    struct read_mark *m = arg;
    struct chatd_value id = {.type = CHATD_PARAM_INT64, .i = m->msg_id};
    struct message_row row = {0, 0, m};
    int rc = db_query(db, "SELECT flags, sender, conversation FROM chatd_messages WHERE id = ?",
                      &id, 1, on_message, &row);
    if (rc != 0)
        return rc;
    if (!row.ok)
        return CHATD_ENOENT;
    struct chatd_value v[3] = {
        {.type = CHATD_PARAM_TEXT, .s = m->reader, .len = strlen(m->reader)},
        {.type = CHATD_PARAM_TEXT, .s = m->peer, .len = strlen(m->peer)},
        {.type = CHATD_PARAM_INT64, .i = m->msg_id},
    };
    uint64_t affected = 0;
    /* Affected rows: 1 inserted, 2 raised, 0 already there or past it. */
    rc = db_exec(db,
                 "INSERT INTO chatd_reads (user, peer, upto) VALUES (?, ?, ?) "
                 "ON DUPLICATE KEY UPDATE upto = GREATEST(upto, VALUES(upto))",
                 v, 3, &affected, NULL);
    m->moved = rc == 0 && affected > 0;
    return rc;
}

static void mark_done(struct chatd_request *req, void *arg, int status)
{
    (void)req;
    struct read_mark *m = arg;
    struct stream *st = m->st;
    if (status == 0 && m->moved) {
        char id[24];
        snprintf(id, sizeof(id), "%lld", (long long)m->msg_id);
        json_t *msg = json_pack("{ssssssss}", "cmd", "receipt", "msg_id", id, "user", m->reader,
                                "status", "read");
        if (msg) {
            const char *peer = m->peer;
            cluster_route_push_live(st->srv, &peer, 1, msg, 0, NULL);
            json_decref(msg);
            st->stats.receipts_read++;
        }
    }
    m->done(status, m->arg);
    free(m);
}

static int name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    return n > 0 && n <= STREAM_NAME_MAX;
}

int stream_read_mark(struct chatd_request *req, const char *peer, int64_t msg_id,
                     chatd_read_done_fn done, void *arg)
{
    static const struct chatd_job job = {
        .work = mark_work, .done = mark_done, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    struct server *srv = req->server;
    struct stream *st = srv->stream;
    if (!req->user)
        return CHATD_ESTATE;
    if (!done || !name_ok(peer) || !name_ok(req->user) || msg_id <= 0)
        return CHATD_EINVAL;
    if (!st || !srv->cfg->db.enable || srv->check_only)
        return CHATD_ENOSYS;
    struct read_mark *m = calloc(1, sizeof(*m));
    if (!m)
        return CHATD_ENOMEM;
    m->st = st;
    snprintf(m->reader, sizeof(m->reader), "%s", req->user);
    snprintf(m->peer, sizeof(m->peer), "%s", peer);
    int low = strcmp(req->user, peer) < 0;
    snprintf(m->conversation, sizeof(m->conversation), "%s|%s", low ? req->user : peer,
             low ? peer : req->user);
    m->msg_id = msg_id;
    m->done = done;
    m->arg = arg;
    int rc = pool_submit(srv->pool, &st->self, req, &job, m);
    if (rc != 0)
        free(m);
    return rc;
}
