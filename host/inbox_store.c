/* inbox_store.c - writing messages into chatd's inbox. Items queue in acceptance order
 * and go to the database in batches: one job, one transaction and one commit for
 * everything that queued while the previous batch was being written (up to
 * BATCH_ITEMS messages). Only one batch is in flight at a time, so the inbox's ids
 * follow the order deliver() accepted the messages, for every user.
 *
 * Per message: one chatd_messages row, then its inbox rows by multi-row INSERTs of
 * CHUNK rows (the rest one by one), so a group message for 500 away members is one
 * message row and 500 inbox rows in the batch's transaction.
 *
 * max_stored needs the recipient's inbox size. COUNT(*) walks the user's whole index
 * range, so it is done once per user and the size kept here, grown by what is stored
 * and forgotten whenever rows leave the inbox (a drain's acknowledgement). With one
 * batch in flight the limit is exact; a drain deleting at the same time only makes a
 * batch see a size higher than the real one (it refuses early, never late). Rows that
 * come back to the inbox without a limit (held pushes at logout or on overflow) can
 * take a user past it. A sender's share (deliver_from's max_per_sender) is checked
 * after it, by inbox_quota.c; each inbox row keeps its sender for that. */
#include "delivery_internal.h"

#include "db.h"
#include "log.h"
#include "server.h"
#include "workers.h"

#include <stdlib.h>
#include <string.h>

#define BATCH_ITEMS 256
/* Inbox rows per multi-row INSERT. */
#define CHUNK 32
/* The size cache is dropped whole past this many users, to stay bounded. */
#define COUNTS_MAX 65536

struct batch {
    struct delivery *d;
    struct store_item *first; /* BATCH_ITEMS at most, linked */
    uint64_t epoch;           /* count_epoch when the batch was formed */
};

/* ---- worker side ----------------------------------------------------------------- */

/* The inbox size of item's one user as this batch sees it: from an earlier item of the
 * batch for the same user, from the loop's cache, or counted now. */
static int limited_size(struct chatd_db *db, struct batch *b, struct store_item *item)
{
    const struct store_item *last = NULL; /* the latest earlier item for the same user */
    for (const struct store_item *p = b->first; p != item; p = p->next)
        if (p->max_stored > 0 && p->n_users == 1 && strcmp(p->users[0], item->users[0]) == 0)
            last = p;
    if (last) {
        item->count_before = last->count_before + (last->status == 0 ? 1 : 0);
        return 0;
    }
    if (item->count_before >= 0)
        return 0;
    struct chatd_value who = {
        .type = CHATD_PARAM_TEXT, .s = item->users[0], .len = strlen(item->users[0])};
    item->count_before = 0;
    return db_query(db, "SELECT COUNT(*) FROM chatd_inbox WHERE user = ?", &who, 1, db_read_int64,
                    &item->count_before);
}

#define INBOX_HEAD "INSERT INTO chatd_inbox (user, message_id, sender) VALUES "
#define ROW        "(?, ?, ?)"
#define ROWS4      ROW ", " ROW ", " ROW ", " ROW
#define ROWS16     ROWS4 ", " ROWS4 ", " ROWS4 ", " ROWS4
#define ROWS32     ROWS16 ", " ROWS16

static void bind_row(struct chatd_value *v, const char *user, int64_t message_id,
                     const char *sender)
{
    v[0] = (struct chatd_value){.type = CHATD_PARAM_TEXT, .s = user, .len = strlen(user)};
    v[1] = (struct chatd_value){.type = CHATD_PARAM_INT64, .i = message_id};
    v[2] = sender
               ? (struct chatd_value){.type = CHATD_PARAM_TEXT, .s = sender, .len = strlen(sender)}
               : (struct chatd_value){.type = CHATD_PARAM_NULL};
}

static int store_one(struct chatd_db *db, const struct store_item *item)
{
    struct chatd_value body = {.type = CHATD_PARAM_TEXT, .s = item->body, .len = item->len};
    uint64_t message_id = 0;
    int rc =
        db_exec(db, "INSERT INTO chatd_messages (body) VALUES (?)", &body, 1, NULL, &message_id);
    struct chatd_value v[CHUNK * 3];
    size_t i = 0;
    for (; rc == 0 && i + CHUNK <= item->n_users; i += CHUNK) {
        for (size_t k = 0; k < CHUNK; k++)
            bind_row(v + 3 * k, item->users[i + k], (int64_t)message_id, item->sender);
        rc = db_exec(db, INBOX_HEAD ROWS32, v, CHUNK * 3, NULL, NULL);
    }
    for (; rc == 0 && i < item->n_users; i++) {
        bind_row(v, item->users[i], (int64_t)message_id, item->sender);
        rc = db_exec(db, INBOX_HEAD ROW, v, 3, NULL, NULL);
    }
    return rc;
}

/* The whole batch in one transaction: committed together, or (on any error, which
 * the host follows with a ROLLBACK) not at all. */
static int batch_try(struct chatd_db *db, struct batch *b)
{
    int rc = db_simple(db, "START TRANSACTION");
    for (struct store_item *item = b->first; rc == 0 && item; item = item->next) {
        item->status = 0;
        if (item->max_stored > 0 && item->n_users == 1) {
            rc = limited_size(db, b, item);
            if (rc == 0 && item->count_before >= item->max_stored) {
                item->status = CHATD_EOVERFLOW;
                continue;
            }
        }
        if (rc == 0 && item->max_per_sender > 0) {
            rc = inbox_quota_check(db, b->first, item);
            if (item->status != 0)
                continue;
        }
        if (rc == 0)
            rc = store_one(db, item);
    }
    if (rc == 0)
        rc = db_simple(db, "COMMIT");
    return rc;
}

/* A drain's acknowledgement deleting a user's rows while a batch inserts some can
 * deadlock with it in InnoDB, which then rolls one back; that is no failure of the
 * messages (some already answered as delivered, whose senders nobody could tell): the
 * batch runs again. What it read before stays valid: counts only fall meanwhile. */
#define BATCH_TRIES 4

static int batch_work(struct chatd_db *db, void *arg)
{
    struct batch *b = arg;
    int rc = batch_try(db, b);
    for (int tries = 1;
         rc == CHATD_EDB && db_error_is_conflict(db->last_errno) && tries < BATCH_TRIES; tries++) {
        log_info("storing %s: %s; trying again", b->first->users[0], db->last_error);
        db_simple(db, "ROLLBACK");
        rc = batch_try(db, b);
    }
    return rc;
}

/* ---- loop side ------------------------------------------------------------------- */

void inbox_store_item_free(struct store_item *item)
{
    for (size_t i = 0; i < item->n_users; i++)
        free(item->users[i]);
    free(item->users);
    free(item->body);
    free(item->sender);
    free(item);
}

struct store_item *inbox_store_item(const char *body, size_t len, const char *user)
{
    struct store_item *item = calloc(1, sizeof(*item));
    if (!item)
        return NULL;
    item->body = malloc(len + 1);
    item->users = calloc(1, sizeof(*item->users));
    if (item->users)
        item->users[0] = strdup(user);
    if (!item->body || !item->users || !item->users[0]) {
        free(item->body);
        if (item->users)
            free(item->users[0]);
        free(item->users);
        free(item);
        return NULL;
    }
    memcpy(item->body, body, len);
    item->body[len] = '\0';
    item->len = len;
    item->n_users = 1;
    return item;
}

static struct inbox_count *count_find(struct delivery *d, const char *name)
{
    struct inbox_count *c;
    HASH_FIND_STR(d->counts, name, c);
    return c;
}

static void counts_clear(struct delivery *d)
{
    struct inbox_count *c, *tmp;
    HASH_ITER (hh, d->counts, c, tmp) {
        HASH_DEL(d->counts, c);
        free(c->name);
        free(c);
    }
}

void inbox_store_forget(struct delivery *d, const char *user)
{
    struct inbox_count *c = count_find(d, user);
    if (c) {
        HASH_DEL(d->counts, c);
        free(c->name);
        free(c);
    }
    d->count_epoch++;
}

/* Keep the sizes the committed batch ended with, unless a size was forgotten
 * meanwhile (then the batch's numbers may be stale). */
static void remember_size(struct delivery *d, const struct batch *b, const struct store_item *item)
{
    if (b->epoch != d->count_epoch || item->max_stored <= 0 || item->n_users != 1 ||
        item->count_before < 0)
        return;
    int64_t rows = item->count_before + (item->status == 0 ? 1 : 0);
    struct inbox_count *c = count_find(d, item->users[0]);
    if (!c) {
        if (HASH_COUNT(d->counts) >= COUNTS_MAX)
            counts_clear(d);
        if (!(c = calloc(1, sizeof(*c))) || !(c->name = strdup(item->users[0]))) {
            free(c);
            return;
        }
        HASH_ADD_KEYPTR(hh, d->counts, c->name, strlen(c->name), c);
    }
    c->rows = rows;
}

/* Grow a known size by rows stored without a limit (the cache stays exact). */
static void grow_size(struct delivery *d, const struct store_item *item)
{
    if (item->max_stored > 0 && item->n_users == 1)
        return; /* remember_size did it */
    for (size_t i = 0; i < item->n_users; i++) {
        struct inbox_count *c = count_find(d, item->users[i]);
        if (c)
            c->rows++;
    }
}

static void submit_batch(struct delivery *d);

/* Give back the store counts of the item's first n users (taken by inbox_store_add). */
static void release_stores(struct delivery *d, struct store_item *item, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct dl_user *u = delivery_user(d, item->users[i], 0);
        if (!u)
            continue;
        u->stores--;
        delivery_user_release(d, u);
    }
}

/* Tell the item's caller how it went, and free it. */
static void item_report(struct delivery *d, struct store_item *item, int status)
{
    size_t stored = 0;
    if (status == 0 && item->status == 0) {
        stored = item->n_users;
        d->stats.stored += stored;
        if (d->stats.inbox_rows >= 0)
            d->stats.inbox_rows += (int64_t)stored;
    } else if (status == 0 && item->status == CHATD_EOVERFLOW) {
        d->stats.refused++;
    } else if (status == 0 && item->status == CHATD_EPERM) {
        d->stats.refused_sender++;
    } else {
        d->stats.store_failed++;
        if (!item->done) /* nobody else will say it */
            log_error("a message for %s could not be stored (%s): it is lost", item->users[0],
                      chatd_strerror(status));
    }
    if (item->done)
        item->done(status != 0 ? status : item->status, item->online, stored, item->arg);
    if (item->caller)
        item->caller->pending_jobs--;
    inbox_store_item_free(item);
}

/* Tell the item's caller, and its users' drains, how it went. */
static void item_finish(struct delivery *d, struct store_item *item, int status)
{
    release_stores(d, item, item->n_users);
    item_report(d, item, status);
}

static void batch_done(struct chatd_request *req, void *arg, int status)
{
    (void)req;
    struct batch *b = arg;
    struct delivery *d = b->d;
    d->batch_in_flight = 0;
    for (struct store_item *item = b->first; item; item = item->next) {
        if (status == 0) {
            remember_size(d, b, item);
            inbox_quota_committed(d, item);
            if (item->status == 0)
                grow_size(d, item);
        }
    }
    while (b->first) {
        struct store_item *item = b->first;
        b->first = item->next;
        item_finish(d, item, status);
    }
    free(b);
    submit_batch(d);
}

/* Take up to BATCH_ITEMS items off the queue into one job, if none is in flight. */
static void submit_batch(struct delivery *d)
{
    if (d->batch_in_flight || !d->queue_head)
        return;
    struct batch *b = calloc(1, sizeof(*b));
    if (!b) {
        /* Not left waiting for a next add that may never come: every queued item fails
         * now (its done runs with CHATD_ENOMEM, its caller's pending_jobs comes down).
         * The queue is taken first: a done may add again. */
        struct store_item *item = d->queue_head;
        log_error("%zu messages could not be stored: out of memory", d->queued);
        d->queue_head = NULL;
        d->queue_tail = &d->queue_head;
        d->queued = 0;
        while (item) {
            struct store_item *next = item->next;
            item_finish(d, item, CHATD_ENOMEM);
            item = next;
        }
        return;
    }
    b->d = d;
    b->epoch = d->count_epoch;
    struct store_item **tail = &b->first;
    size_t n = 0;
    for (; n < BATCH_ITEMS && d->queue_head; n++) {
        struct store_item *item = d->queue_head;
        d->queue_head = item->next;
        d->queued--;
        item->next = NULL;
        item->count_before = -1;
        if (item->max_stored > 0 && item->n_users == 1) {
            struct inbox_count *c = count_find(d, item->users[0]);
            if (c)
                item->count_before = c->rows;
        }
        inbox_quota_prepare(d, item);
        *tail = item;
        tail = &item->next;
    }
    if (!d->queue_head)
        d->queue_tail = &d->queue_head;
    static const struct chatd_job job = {
        .work = batch_work, .done = batch_done, .flags = CHATD_JOB_DB};
    d->batch_in_flight = 1;
    int rc = pool_submit(d->srv->pool, &d->self, NULL, &job, b);
    if (rc != 0) {
        log_warn("%zu messages could not be queued for storing (%s)", n, chatd_strerror(rc));
        batch_done(NULL, b, rc);
    }
}

void inbox_store_add(struct delivery *d, struct store_item *item)
{
    for (size_t i = 0; i < item->n_users; i++) {
        struct dl_user *u = delivery_user(d, item->users[i], 1);
        if (!u) {
            /* Without its count a drain could read the inbox before the item is in it:
             * fail the item rather than store it unseen. */
            if (item->done) /* item_report says it otherwise */
                log_error("a message for %s could not be stored: out of memory", item->users[i]);
            release_stores(d, item, i);
            item_report(d, item, CHATD_ENOMEM);
            return;
        }
        u->stores++;
    }
    item->next = NULL;
    *d->queue_tail = item;
    d->queue_tail = &item->next;
    d->queued++;
    submit_batch(d);
}

void inbox_store_free(struct delivery *d)
{
    while (d->queue_head) {
        struct store_item *item = d->queue_head;
        d->queue_head = item->next;
        item_finish(d, item, CHATD_ESHUTDOWN);
    }
    d->queue_tail = &d->queue_head;
    d->queued = 0;
    counts_clear(d);
    inbox_quota_free(d);
}

struct count_job {
    struct delivery *d;
    int64_t rows;
};

static int count_all_work(struct chatd_db *db, void *arg)
{
    struct count_job *j = arg;
    return db_query(db, "SELECT COUNT(*) FROM chatd_inbox", NULL, 0, db_read_int64, &j->rows);
}

/* Rows stored or deleted while the count ran are not in the gauge (it stayed -1 until
 * now): it is exact at start, when nothing else writes yet. */
static void count_all_done(struct chatd_request *req, void *arg, int status)
{
    (void)req;
    struct count_job *j = arg;
    if (status == 0)
        j->d->stats.inbox_rows = j->rows;
    free(j);
}

void inbox_store_count_all(struct delivery *d)
{
    static const struct chatd_job job = {
        .work = count_all_work, .done = count_all_done, .flags = CHATD_JOB_DB};
    d->stats.inbox_rows = -1;
    struct count_job *j = calloc(1, sizeof(*j));
    if (!j) {
        log_error("the inbox could not be counted for /metrics: out of memory");
        return;
    }
    j->d = d;
    if (pool_submit(d->srv->pool, &d->self, NULL, &job, j) != 0) {
        log_warn("the inbox could not be counted for /metrics");
        free(j);
    }
}
