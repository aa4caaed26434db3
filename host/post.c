/* post.c - post(): accepting a message, the commit queue, and what happens after a
 * commit (docs/architecture.md, "Delivery version 2" and "The cluster").
 *
 * Accepting (loop thread): the arguments are checked; a client_msg_id that a post of
 * the same sender still queued or in flight used makes this post a waiter on that one
 * (it gets the same outcome, as a repeat). Otherwise the post gets its time, and the
 * text to store (the push without "seq" and "msg_id"), and for each recipient stream.h
 * says whether a timeline row must be written with it (they are away, or have
 * devices). It has no id yet.
 *
 * Committing: posts queue in the order accepted; a batch takes up to [messages]
 * batch_max of them (with the timeline rows post_store_rows asked for) into one job and
 * one transaction (commit_batch.c), which numbers its new messages in queue order under
 * the counter's row lock. Up to POST_IN_FLIGHT batches are in flight: the next one forms
 * and does its reads while one commits. A batch whose limits must be counted exactly
 * goes alone.
 *
 * After a commit, on the loop thread and strictly in batch order (a batch done early
 * waits for the ones before it): each post, in id order, gets "seq" (and "msg_id") in
 * its push, is pushed to each recipient (stream_push), then its done runs. A recipient
 * who had no row written and now needs one (they left between acceptance and commit, or
 * logged in a device) gets a row with the next batch, and that post's done waits for it. */
#include "post_internal.h"

#include "cluster.h"
#include "cluster_route.h"
#include "db.h"
#include "host_self.h"
#include "json_emit.h"
#include "log.h"
#include "reply_order.h"
#include "server.h"
#include "stream.h"
#include "workers.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static int64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

int post_valid_name(const char *name)
{
    size_t n = 0;
    for (; name[n]; n++)
        if (n >= POST_NAME_MAX || (unsigned char)name[n] <= ' ' || (unsigned char)name[n] > '~')
            return 0;
    return n > 0;
}

int post_valid_client_id(const char *client_msg_id)
{
    size_t n = strlen(client_msg_id);
    return n >= 1 && n <= POST_CLIENT_ID_MAX;
}

static int valid_conversation(const char *c)
{
    size_t n = strlen(c);
    if (n < 1 || n > POST_CONVERSATION_MAX)
        return 0;
    return strspn(c, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_|#:.-") == n;
}

/* own_fields (deliver): the sender may be NULL. */
static int valid_post(const struct chatd_post *p, int own_fields)
{
    if (!p || (!p->sender && !own_fields) || (p->sender && !post_valid_name(p->sender)) ||
        (p->n_users && !p->users) || (p->n_users == 0 && !p->conversation) ||
        !json_is_object(p->msg) || p->max_stored < 0 || p->max_per_sender < 0 ||
        (p->conversation && !valid_conversation(p->conversation)))
        return 0;
    if (p->client_msg_id && (!p->sender || !post_valid_client_id(p->client_msg_id)))
        return 0;
    for (size_t i = 0; i < p->n_users; i++)
        if (!p->users[i] || !post_valid_name(p->users[i]))
            return 0;
    return 1;
}

void post_item_free(struct post_item *item)
{
    for (size_t i = 0; item->held && i < item->n_users; i++)
        if (item->held[i])
            stream_release(item->caller->server, item->held[i]);
    free(item->users); /* the recipients' block */
    json_decref(item->msg);
    free(item->body);
    free(item->sender);
    free(item->conversation);
    free(item->client_msg_id);
    free(item->key);
    free(item->staged_key);
    free(item);
}

/* ---- outcomes --------------------------------------------------------------------- */

static void report(const struct chatd_posted *posted, chatd_post_done_fn done, void *arg,
                   struct chatd_plugin *caller)
{
    if (done)
        done(posted, arg);
    if (caller)
        caller->pending_jobs--;
}

/* Run item's done and its waiters' with `status` (0: committed, or a repeat), and free
 * it. */
static void item_finish(struct post_state *ps, struct post_item *item, int status)
{
    if (item->key) {
        HASH_DEL(ps->by_key, item);
        free(item->key);
        item->key = NULL;
    }
    if (status == 0)
        status = item->status;
    char id[JSON_EMIT_DECIMAL_MAX];
    struct chatd_posted posted = {.status = status, .repeat = item->repeat};
    if (status == 0) {
        int64_t seq = item->repeat ? item->first_id : item->id;
        uint32_t flags = item->repeat ? item->first_flags : item->flags;
        json_emit_decimal(id, seq);
        posted.msg_id = id;
        posted.seq = seq;
        posted.ts = item->repeat ? item->first_ts : item->ts;
        posted.online = item->repeat ? (flags & POST_FLAG_ONLINE ? 1 : 0) : item->online;
        posted.flags = flags & CHATD_POST_PRIVATE;
    }
    if (status == 0 && item->repeat)
        ps->stats.repeats++;
    else if (status == 0)
        ps->stats.posted++;
    else if (status == CHATD_EOVERFLOW || status == CHATD_EPERM)
        ps->stats.refused++;
    else
        ps->stats.failed++;
    report(&posted, item->done, item->arg, item->caller);
    /* Later posts with the same client_msg_id: the same answer, as repeats. */
    posted.repeat = status == 0;
    while (item->waiters) {
        struct post_waiter *w = item->waiters;
        item->waiters = w->next;
        if (status == 0)
            ps->stats.repeats++;
        if (w->find && status != 0) {
            const struct chatd_posted unused = {.status = CHATD_ENOENT};
            report(&unused, w->done, w->arg, w->caller);
        } else {
            report(&posted, w->done, w->arg, w->caller);
        }
        free(w);
    }
    post_item_free(item);
}

/* ---- the queue -------------------------------------------------------------------- */

static void submit_batches(struct post_state *ps);

static int rows_add(struct post_state *ps, const char *user, int64_t message_id)
{
    if (ps->n_rows == ps->cap_rows) {
        size_t cap = ps->cap_rows ? 2 * ps->cap_rows : 16;
        struct post_row *more = realloc(ps->rows, cap * sizeof(*more));
        if (!more)
            return -1;
        ps->rows = more;
        ps->cap_rows = cap;
    }
    char *copy = strdup(user);
    if (!copy)
        return -1;
    ps->rows[ps->n_rows++] = (struct post_row){copy, message_id};
    return 0;
}

static void rows_free(struct post_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(rows[i].user);
    free(rows);
}

void post_store_rows(struct server *srv, const char *user, const int64_t *ids, size_t n)
{
    struct post_state *ps = srv->post;
    if (!ps || !srv->cfg->db.enable || srv->check_only)
        return;
    for (size_t i = 0; i < n; i++) {
        if (rows_add(ps, user, ids[i]) != 0) {
            log_error("%zu messages for %s could not be kept for their next login: out of memory",
                      n - i, user);
            break;
        }
        post_quota_grow(ps, user, NULL);
    }
    submit_batches(ps);
}

/* Deferred posts (late rows) wait in a list, in id order; they are done after the
 * next commit. */
static void defer(struct post_state *ps, struct post_item *item)
{
    item->next = NULL;
    *ps->deferred_tail = item;
    ps->deferred_tail = &item->next;
}

/* Push one committed post to its recipients; 1 when some recipient who had no row
 * needs one now (a row was queued: its done waits for the next batch). */
static int push_committed(struct post_state *ps, struct post_item *item)
{
    int late = 0;
    const char *receipt_sender = item->flags & CHATD_POST_PRIVATE ? item->sender : NULL;
    for (size_t i = 0; i < item->n_users; i++) {
        if (!item->held[i]) /* they had no session here at the acceptance: maybe now */
            item->held[i] = stream_hold(ps->srv, item->users[i]);
        struct stream_user *u = item->held[i];
        size_t took = u ? stream_push_held(ps->srv, u, item->msg, item->id, receipt_sender) : 0;
        /* A session that took it may not keep it: one of a device that logged in since
         * the acceptance is sent it again from the row. */
        if (item->needs_row[i] || (took > 0 && !stream_needs_row(ps->srv, item->users[i], u)))
            continue;
        if (rows_add(ps, item->users[i], item->id) != 0) {
            log_error("message %" PRId64 " for %s is lost: out of memory", item->id,
                      item->users[i]);
            continue;
        }
        post_quota_grow(ps, item->users[i], item->sender);
        ps->stats.late_rows++;
        late = 1;
    }
    return late;
}

/* [cluster]: route one committed post (cluster_route.h). When its batch waits in the
 * merge, or a gap read passed over its ids first (a session may have been sent later
 * ones), a recipient here without a row gets one now: they may leave before it is
 * released, or their session may skip it (its done waits for the row, as for a late
 * one). */
static int route_committed(struct post_state *ps, struct cluster_route_batch *rb,
                           struct post_item *item)
{
    const char *receipt_sender = item->flags & CHATD_POST_PRIVATE ? item->sender : NULL;
    cluster_route_batch_message(rb, item->id, item->msg, item->users, item->n_users,
                                receipt_sender);
    int late = 0;
    for (size_t i = 0; cluster_route_batch_unsure(rb) && i < item->n_users; i++) {
        if (item->needs_row[i])
            continue;
        if (rows_add(ps, item->users[i], item->id) != 0) {
            log_error("message %" PRId64 " for %s is lost: out of memory", item->id,
                      item->users[i]);
            continue;
        }
        item->needs_row[i] = 1; /* push_committed writes no second one */
        post_quota_grow(ps, item->users[i], item->sender);
        ps->stats.late_rows++;
        late = 1;
    }
    if (!cluster_route_batch_waits(rb))
        late |= push_committed(ps, item);
    return late;
}

/* The push of a committed post gets its id: "seq", and "msg_id" unless deliver() gave
 * its own. -1 out of memory. */
static int item_number(struct post_item *item)
{
    char id[JSON_EMIT_DECIMAL_MAX];
    json_emit_decimal(id, item->id);
    if (json_object_set_new_nocheck(item->msg, "seq", json_integer(item->id)) != 0 ||
        (!item->own_fields &&
         json_object_set_new_nocheck(item->msg, "msg_id", json_string_nocheck(id)) != 0))
        return -1;
    return 0;
}

/* Without [cluster]: the push's line is its stored text with "seq" and "msg_id" added
 * (item_number added them after the stored members), so it is not serialised again;
 * then it is pushed. */
static int push_local(struct post_state *ps, struct post_item *item)
{
    stream_line_from_stored(ps->srv, item->msg, item->id, item->body, item->len, !item->own_fields);
    return push_committed(ps, item);
}

static void batch_apply(struct post_state *ps, struct commit_batch *b)
{
    ps->in_flight--;
    if (b->status == 0 && b->last_id > ps->last_id)
        ps->last_id = b->last_id;
    if (b->exact)
        ps->exact_in_flight = 0;
    ps->stats.batches++;
    if (b->status != 0)
        log_error("a commit batch of %zu messages failed: %s", b->n_items,
                  chatd_strerror(b->status));
    else
        ps->stats.rows += b->n_rows;
    for (struct post_item *item = b->first; item && b->status == 0; item = item->next)
        if (item->max_stored > 0 || item->max_per_sender > 0)
            post_quota_committed(ps, item);
    while (b->deferred) {
        struct post_item *item = b->deferred;
        b->deferred = item->next;
        if (b->status != 0)
            log_error("message %" PRId64 " is committed, but not kept for a recipient who left",
                      item->id);
        item_finish(ps, item, b->status);
    }
    /* With [cluster]: the other nodes are told of the batch, and its pushes may wait. */
    struct cluster_route_batch *rb =
        b->status == 0 ? cluster_route_batch_begin(ps->srv, b->first_id, b->last_id) : NULL;
    while (b->first) {
        struct post_item *item = b->first;
        b->first = item->next;
        if (b->status == 0 && item->status == 0 && !item->repeat) {
            for (size_t i = 0; i < item->n_users; i++)
                ps->stats.rows += item->needs_row[i];
            if (item_number(item) != 0)
                log_error("message %" PRId64 " is committed but cannot be pushed: out of memory",
                          item->id); /* its recipients get it from the timeline, or not */
            else if (rb ? route_committed(ps, rb, item) : push_local(ps, item)) {
                defer(ps, item);
                continue;
            }
        }
        item_finish(ps, item, b->status);
    }
    if (rb)
        cluster_route_batch_end(rb);
    rows_free(b->rows, b->n_rows);
    free(b);
}

static void batch_done(struct chatd_request *req, void *arg, int status)
{
    (void)req;
    struct commit_batch *b = arg;
    struct post_state *ps = b->ps;
    b->status = status;
    b->finished = 1;
    commit_order_release(&ps->order, b);
    /* In order: a batch done before an earlier one waits for it. */
    while (ps->flight_head && ps->flight_head->finished) {
        struct commit_batch *first = ps->flight_head;
        ps->flight_head = first->next;
        if (!ps->flight_head)
            ps->flight_tail = &ps->flight_head;
        batch_apply(ps, first);
    }
    submit_batches(ps);
}

/* Take posts off the queue into b, up to batch_max; stops before a post that needs an
 * exact count while other batches are in flight. */
static void batch_fill(struct post_state *ps, struct commit_batch *b)
{
    struct post_item **tail = &b->first;
    size_t max = (size_t)ps->srv->cfg->messages.batch_max;
    while (ps->queue_head && b->n_items < max) {
        struct post_item *item = ps->queue_head;
        int exact =
            (item->max_stored > 0 || item->max_per_sender > 0) && post_quota_prepare(ps, item);
        if (exact && ps->in_flight > 0)
            break;
        if (exact)
            b->exact = 1;
        ps->queue_head = item->next;
        ps->queued--;
        item->next = NULL;
        for (size_t i = 0; i < item->n_users; i++)
            if (item->needs_row[i])
                post_quota_grow(ps, item->users[i], item->sender);
        *tail = item;
        tail = &item->next;
        b->n_items++;
        if (b->exact)
            break; /* its counts are taken alone */
    }
    if (!ps->queue_head)
        ps->queue_tail = &ps->queue_head;
}

/* Fail a batch that could not be submitted. */
static void batch_fail(struct post_state *ps, struct commit_batch *b, int status)
{
    ps->in_flight++; /* batch_apply counts it down */
    b->status = status;
    batch_apply(ps, b);
}

static void submit_batches(struct post_state *ps)
{
    while (ps->in_flight < POST_IN_FLIGHT && !ps->exact_in_flight &&
           (ps->queue_head || ps->n_rows > 0 || ps->deferred)) {
        struct commit_batch *b = calloc(1, sizeof(*b));
        if (!b) {
            log_error("%zu messages wait to be committed: out of memory", ps->queued);
            return; /* the next post or commit tries again */
        }
        b->ps = ps;
        batch_fill(ps, b);
        if (!b->first && ps->n_rows == 0 && !ps->deferred) {
            free(b); /* the head needs an exact count: after the batches in flight */
            return;
        }
        b->rows = ps->rows;
        b->n_rows = ps->n_rows;
        ps->rows = NULL;
        ps->n_rows = ps->cap_rows = 0;
        b->deferred = ps->deferred;
        ps->deferred = NULL;
        ps->deferred_tail = &ps->deferred;
        b->ticket = ps->next_ticket;
        static const struct chatd_job job = {
            .work = commit_batch_work, .done = batch_done, .flags = CHATD_JOB_DB};
        int rc = pool_submit(ps->srv->pool, &ps->self, NULL, &job, b);
        if (rc != 0) {
            log_warn("%zu messages could not be queued for their commit (%s)", b->n_items,
                     chatd_strerror(rc));
            batch_fail(ps, b, rc);
            continue;
        }
        ps->next_ticket++;
        ps->in_flight++;
        ps->exact_in_flight = b->exact;
        *ps->flight_tail = b;
        ps->flight_tail = &b->next;
    }
}

static void on_submit(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    submit_batches(arg);
}

void post_enqueue(struct post_state *ps, struct post_item *item)
{
    item->next = NULL;
    *ps->queue_tail = item;
    ps->queue_tail = &item->next;
    ps->queued++;
    /* A commit that ends submits by itself; otherwise after this turn's requests. */
    if (ps->in_flight < POST_IN_FLIGHT && !event_pending(ps->submit_ev, EV_TIMEOUT, NULL))
        event_active(ps->submit_ev, EV_TIMEOUT, 0);
}

/* ---- accepting -------------------------------------------------------------------- */

/* A post of the same sender with the same client_msg_id, queued or in flight. */
struct post_item *post_pending_twin(struct post_state *ps, const char *key)
{
    struct post_item *twin;
    HASH_FIND_STR(ps->by_key, key, twin);
    return twin;
}

char *post_twin_key(const char *sender, const char *client_msg_id)
{
    size_t a = strlen(sender), b = strlen(client_msg_id);
    char *key = malloc(a + b + 2);
    if (key) {
        memcpy(key, sender, a);
        key[a] = '\n';
        memcpy(key + a + 1, client_msg_id, b + 1);
    }
    return key;
}

int post_wait_on_twin(struct post_item *twin, chatd_post_done_fn done, void *arg,
                      struct chatd_plugin *caller, int find)
{
    struct post_waiter *w = calloc(1, sizeof(*w));
    if (!w)
        return CHATD_ENOMEM;
    *w = (struct post_waiter){done, arg, caller, find, twin->waiters};
    twin->waiters = w;
    caller->pending_jobs++;
    return 0;
}

static char *dup_or_null(const char *s, int *nomem)
{
    char *copy = s ? strdup(s) : NULL;
    if (s && !copy)
        *nomem = 1;
    return copy;
}

/* The recipients' arrays and a copy of their names, in one allocation (a group message
 * to 500 members is one malloc, not 500): n name pointers, n held records, n needs_row
 * flags, then the names. -1 out of memory. */
static int recipients_copy(struct post_item *item, const char *const *users, size_t n)
{
    size_t pointers = n * (sizeof(*item->users) + sizeof(*item->held)), names = 0;
    for (size_t i = 0; i < n; i++)
        names += strlen(users[i]) + 1;
    char *block = calloc(1, pointers + n + names + 1);
    if (!block)
        return -1;
    item->users = (char **)block;
    item->held = (struct stream_user **)(block + n * sizeof(*item->users));
    item->needs_row = (unsigned char *)block + pointers;
    char *name = block + pointers + n;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(users[i]) + 1;
        memcpy(name, users[i], len);
        item->users[i] = name;
        name += len;
    }
    item->n_users = n;
    return 0;
}

/* The item for p (msg taken): its copies, not yet numbered. NULL out of memory. */
static struct post_item *item_new(const struct chatd_post *p, int own_fields)
{
    struct post_item *item = calloc(1, sizeof(*item));
    if (!item) {
        json_decref(p->msg);
        return NULL;
    }
    item->msg = p->msg;
    item->own_fields = own_fields;
    item->flags = p->flags & CHATD_POST_PRIVATE;
    item->max_stored = p->max_stored;
    item->max_per_sender = p->max_per_sender;
    int nomem = 0;
    item->sender = dup_or_null(p->sender, &nomem);
    item->conversation = dup_or_null(p->conversation, &nomem);
    item->client_msg_id = dup_or_null(p->client_msg_id, &nomem);
    if (nomem || recipients_copy(item, p->users, p->n_users) != 0 ||
        (p->client_msg_id && !(item->staged_key = post_twin_key(p->sender, p->client_msg_id)))) {
        post_item_free(item);
        return NULL;
    }
    return item;
}

/* Give item its time and the text to store: the push without "seq" and "msg_id",
 * which the commit gives (readers of the row add them from its id), written by
 * json_emit into the state's buffer and copied (jansson's json_dumps costs several
 * times more: it formats integers with snprintf and tracks the containers it visits in
 * a hash table). -1 out of memory, or when the push cannot be serialised. */
static int item_prepare(struct post_state *ps, struct post_item *item)
{
    item->ts = wall_ms();
    json_object_del(item->msg, "offline");
    json_object_del(item->msg, "id");
    json_object_del(item->msg, "seq");
    if (!item->own_fields) {
        json_object_del(item->msg, "msg_id");
        item->flags |= POST_FLAG_MSG_ID;
    }
    if (!item->own_fields &&
        json_object_set_new_nocheck(item->msg, "ts", json_integer(item->ts)) != 0)
        return -1;
    ps->body.len = 0;
    if (json_emit(&ps->body, item->msg) < 0 || !(item->body = malloc(ps->body.len + 1)))
        return -1;
    memcpy(item->body, ps->body.data, ps->body.len);
    item->body[ps->body.len] = '\0';
    item->len = ps->body.len;
    return 0;
}

/* The post's turn has come (reply_order.h): accept it now, which is what gives it its
 * place in the queue, and so in the sequence; or drop it when its session closed first. */
static void accept_item(void *arg, int cancelled)
{
    struct post_item *item = arg;
    struct server *srv = item->caller->server;
    struct post_state *ps = srv->post;
    struct post_item *twin =
        !cancelled && item->staged_key ? post_pending_twin(ps, item->staged_key) : NULL;
    if (twin && post_wait_on_twin(twin, item->done, item->arg, item->caller, 0) == 0) {
        /* The post with that client_msg_id still being committed answers this one. */
        item->caller->pending_jobs--;
        post_item_free(item);
        return;
    }
    int status = cancelled                      ? CHATD_ECLOSED
                 : twin                         ? CHATD_ENOMEM
                 : ps->queued >= POST_QUEUE_MAX ? CHATD_EBUSY
                 : item_prepare(ps, item) < 0   ? CHATD_ENOMEM
                                                : 0;
    if (status != 0) {
        item_finish(ps, item, status);
        return;
    }
    for (size_t i = 0; i < item->n_users; i++) {
        /* Looked up once: the push finds them through what is held. */
        struct stream_user *u = item->held[i] = stream_hold(srv, item->users[i]);
        /* Online in the cluster: here, or on another node as the replica knows it. */
        item->online +=
            (u && stream_sessions(u) > 0) || cluster_remote_sessions(srv, item->users[i]) > 0;
        item->needs_row[i] = stream_needs_row(srv, item->users[i], u) != 0;
    }
    item->flags |= item->online > 0 ? POST_FLAG_ONLINE : 0;
    if (item->n_users != 1 || item->online != 0)
        item->max_stored = item->max_per_sender = 0;
    if (item->staged_key) {
        item->key = item->staged_key;
        item->staged_key = NULL;
        HASH_ADD_KEYPTR(hh, ps->by_key, item->key, strlen(item->key), item);
    }
    post_enqueue(ps, item);
}

int post_accept(struct chatd_plugin *caller, const struct chatd_post *p, int own_fields,
                chatd_post_done_fn done, void *arg)
{
    struct server *srv = caller->server;
    struct post_state *ps = srv->post;
    if (!ps || !valid_post(p, own_fields)) {
        if (p && json_is_object(p->msg))
            json_decref(p->msg);
        return CHATD_EINVAL;
    }
    if (!srv->cfg->db.enable || srv->check_only) {
        json_decref(p->msg);
        return CHATD_ENOSYS;
    }
    struct post_item *item = item_new(p, own_fields);
    if (!item)
        return CHATD_ENOMEM;
    item->done = done;
    item->arg = arg;
    item->caller = caller;
    caller->pending_jobs++;
    /* A pipelined request's post waits for the session's earlier requests to post or
     * be answered, so one sender's messages are numbered in the order sent. */
    if (reply_order_when_turn(p->req, accept_item, item, 1) != 0) {
        caller->pending_jobs--;
        post_item_free(item);
        return CHATD_ENOMEM;
    }
    return 0;
}

int post_message(struct chatd_plugin *caller, const struct chatd_post *post,
                 chatd_post_done_fn done, void *arg)
{
    return post_accept(caller, post, 0, done, arg);
}

int64_t post_last_id(struct server *srv)
{
    return srv->post ? srv->post->last_id : 0;
}

/* ---- life ------------------------------------------------------------------------- */

int post_new(struct server *srv)
{
    struct post_state *ps = calloc(1, sizeof(*ps));
    if (!ps || host_self_init(&ps->self, srv) != 0) {
        free(ps);
        return -1;
    }
    ps->srv = srv;
    ps->queue_tail = &ps->queue_head;
    ps->flight_tail = &ps->flight_head;
    ps->deferred_tail = &ps->deferred;
    if (commit_sql_init(&ps->sql) != 0 ||
        !(ps->submit_ev = event_new(srv->base, -1, 0, on_submit, ps))) {
        commit_sql_free(&ps->sql);
        host_self_free(&ps->self);
        free(ps);
        return -1;
    }
    commit_order_init(&ps->order);
    srv->post = ps;
    return 0;
}

int post_load_counter(struct server *srv, struct chatd_db *db, char *err, size_t errlen)
{
    /* Retention may have deleted the newest messages: the counter keeps their ids. */
    int64_t last = 0;
    int rc = db_simple(db, "INSERT INTO chatd_counters (name, value) "
                           "SELECT 'message_id', COALESCE(MAX(id), 0) FROM chatd_messages "
                           "ON DUPLICATE KEY UPDATE value = GREATEST(value, VALUES(value))");
    if (rc == 0)
        rc = db_query(db, "SELECT value FROM chatd_counters WHERE name = 'message_id'", NULL, 0,
                      db_read_int64, &last);
    if (rc != 0) {
        snprintf(err, errlen, "reading the message id counter: %s", db->last_error);
        return -1;
    }
    srv->post->last_id = last;
    return 0;
}

void post_free(struct server *srv)
{
    struct post_state *ps = srv->post;
    if (!ps)
        return;
    while (ps->queue_head) {
        struct post_item *item = ps->queue_head;
        ps->queue_head = item->next;
        item_finish(ps, item, CHATD_ESHUTDOWN);
    }
    while (ps->deferred) {
        struct post_item *item = ps->deferred;
        ps->deferred = item->next;
        item_finish(ps, item, CHATD_ESHUTDOWN);
    }
    if (ps->n_rows)
        log_error("%zu messages pushed to sessions that ended are not kept: chatd stopped",
                  ps->n_rows);
    rows_free(ps->rows, ps->n_rows);
    post_quota_free(ps);
    event_free(ps->submit_ev);
    commit_sql_free(&ps->sql);
    line_buffer_free(&ps->body);
    commit_order_destroy(&ps->order);
    host_self_free(&ps->self);
    free(ps);
    srv->post = NULL;
}

void post_render_metrics(struct server *srv, struct evbuffer *out)
{
    const struct post_state *ps = srv->post;
    if (!ps)
        return;
    const struct post_stats *s = &ps->stats;
    metrics_gauge(out, "chatd_post_queue", "Posted messages waiting for their commit batch.",
                  (double)ps->queued);
    metrics_counter(out, "chatd_post_committed_total", "Messages posted and committed.", s->posted);
    metrics_counter(out, "chatd_post_repeats_total",
                    "Posts answered as repeats of an earlier client_msg_id.", s->repeats);
    metrics_counter(out, "chatd_post_refused_total",
                    "Posts refused by max_stored or max_per_sender.", s->refused);
    metrics_counter(out, "chatd_post_failed_total", "Posts whose commit failed.", s->failed);
    metrics_counter(out, "chatd_post_timeline_rows_total", "Timeline rows written.", s->rows);
    metrics_counter(out, "chatd_post_late_rows_total",
                    "Timeline rows written after the push, for recipients who had left.",
                    s->late_rows);
    metrics_counter(out, "chatd_post_batches_total", "Commit batches.", s->batches);
}
