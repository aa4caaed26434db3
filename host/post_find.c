/* post_find.c - post_find(): the message a sender posted with a client_msg_id, for a send
 * its plugin refuses before posting it (docs/architecture.md, "Idempotent sends").
 *
 * A repeat must get the first message's answer whatever it names, but a plugin's own
 * checks (the recipient exists, the group exists and the sender is a member, the hooks)
 * run before post(), whose commit finds repeats. So a plugin that refuses a send with a
 * client_msg_id asks here first: the look-up takes its turn among the session's
 * pipelined requests (an earlier request's post with the same id is then queued or
 * committed), waits for a post with the same key still queued or in flight, and
 * otherwise reads chatd_messages by its unique key (sender, client_msg_id) on a worker.
 * Only refused sends pay for it: a send that is posted is matched in its commit batch. */
#include "post_internal.h"

#include "db.h"
#include "json_emit.h"
#include "reply_order.h"
#include "server.h"
#include "workers.h"

#include <stdlib.h>
#include <string.h>

struct post_lookup {
    struct post_state *ps;
    struct chatd_plugin *caller; /* kept loaded (pending_jobs) until done ran */
    chatd_post_done_fn done;
    void *arg;
    char *key; /* post_twin_key: the sender, '\n', the client_msg_id */
    size_t sender_len;
    /* Set by the worker: found, and the first message's id, ts and flags. */
    int found;
    int64_t id, ts;
    uint32_t flags;
};

static void lookup_free(struct post_lookup *l)
{
    free(l->key);
    free(l);
}

static void lookup_report(struct post_lookup *l, int status)
{
    char id[JSON_EMIT_DECIMAL_MAX];
    struct chatd_posted posted = {.status = status};
    if (status == 0 && !l->found) {
        posted.status = CHATD_ENOENT;
    } else if (status == 0) {
        json_emit_decimal(id, l->id);
        posted.repeat = 1;
        posted.msg_id = id;
        posted.seq = l->id;
        posted.ts = l->ts;
        posted.online = l->flags & POST_FLAG_ONLINE ? 1 : 0;
        posted.flags = l->flags & CHATD_POST_PRIVATE;
        l->ps->stats.repeats++;
    }
    if (l->done)
        l->done(&posted, l->arg);
    l->caller->pending_jobs--;
    lookup_free(l);
}

/* Worker. */
static int read_first(const struct chatd_value *cols, size_t ncols, void *arg)
{
    struct post_lookup *l = arg;
    if (ncols != 3)
        return CHATD_EDB;
    l->found = 1;
    l->id = cols[0].i;
    l->ts = cols[1].i;
    l->flags = (uint32_t)cols[2].i;
    return 0;
}

/* Worker. */
static int lookup_work(struct chatd_db *db, void *arg)
{
    struct post_lookup *l = arg;
    const char *client_msg_id = l->key + l->sender_len + 1;
    const struct chatd_value v[2] = {
        {.type = CHATD_PARAM_TEXT, .s = l->key, .len = l->sender_len},
        {.type = CHATD_PARAM_BLOB, .s = client_msg_id, .len = strlen(client_msg_id)},
    };
    l->found = 0;
    return db_query(
        db, "SELECT id, ts, flags FROM chatd_messages WHERE sender = ? AND client_msg_id = ?", v, 2,
        read_first, l);
}

static void lookup_done(struct chatd_request *req, void *arg, int status)
{
    (void)req;
    lookup_report(arg, status);
}

/* Its turn has come: every earlier request of the session has posted or been answered. */
static void lookup_turn(void *arg, int cancelled)
{
    struct post_lookup *l = arg;
    struct post_state *ps = l->ps;
    if (cancelled) {
        lookup_report(l, CHATD_ECLOSED);
        return;
    }
    struct post_item *twin = post_pending_twin(ps, l->key);
    if (twin) {
        int rc = post_wait_on_twin(twin, l->done, l->arg, l->caller, 1);
        if (rc != 0) {
            lookup_report(l, rc);
            return;
        }
        l->caller->pending_jobs--; /* the waiter holds the caller now */
        lookup_free(l);
        return;
    }
    static const struct chatd_job job = {
        .work = lookup_work, .done = lookup_done, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    int rc = pool_submit(ps->srv->pool, &ps->self, NULL, &job, l);
    if (rc != 0)
        lookup_report(l, rc);
}

int post_find(struct chatd_plugin *caller, struct chatd_request *req, const char *sender,
              const char *client_msg_id, chatd_post_done_fn done, void *arg)
{
    struct server *srv = caller->server;
    if (!srv->cfg->db.enable || srv->check_only || !srv->post)
        return CHATD_ENOSYS;
    if (!sender || !client_msg_id || !post_valid_name(sender) ||
        !post_valid_client_id(client_msg_id))
        return CHATD_EINVAL;
    struct post_lookup *l = calloc(1, sizeof(*l));
    if (!l || !(l->key = post_twin_key(sender, client_msg_id))) {
        free(l);
        return CHATD_ENOMEM;
    }
    l->ps = srv->post;
    l->caller = caller;
    l->done = done;
    l->arg = arg;
    l->sender_len = strlen(sender);
    caller->pending_jobs++;
    /* req stays unsettled until it is answered: a later request of the session with the
     * same client_msg_id posts only then, so this look-up cannot find it and answer an
     * earlier refused send as its repeat. */
    if (reply_order_when_turn(req, lookup_turn, l, 0) != 0) {
        caller->pending_jobs--;
        lookup_free(l);
        return CHATD_ENOMEM;
    }
    return 0;
}
