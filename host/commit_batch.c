/* commit_batch.c - one commit batch's transaction, on a database worker:
 *  1. the idempotency look-ups: posts with a client_msg_id are matched against
 *     chatd_messages by the unique key (sender, client_msg_id), 16 at a time; a match
 *     is a repeat (not written, answered with the first message's id and time);
 *  2. the limits (post_quota.c) of posts to one recipient who was offline;
 *  3. its turn (the ticket order), then the ids: the counter raised by the number of
 *     new messages (repeats and refused posts take none) under its row lock,
 *     `UPDATE chatd_counters SET value = LAST_INSERT_ID(value + n)`, and the messages
 *     numbered value - n + 1 .. value in queue order;
 *  4. the message rows, by multi-row INSERTs (up to 1 << COMMIT_ROWS_SHIFT rows a
 *     statement, texts made once for 2^k rows: commit_sql), then the timeline rows the
 *     same way (INSERT IGNORE: a row written twice is one row), then rows for earlier
 *     messages (post_store_rows); and COMMIT.
 * The row lock is held until the commit, so ids are handed out in commit order, across
 * every connection (and every node) that posts; a rolled-back batch rolls the counter
 * back with it, leaving no hole. Two batches may be in flight on two connections
 * (post.c): the later one does its reads while the earlier one writes and commits, and
 * takes its turn before the counter, so the batches formed earlier (the sends of one
 * session accepted earlier) get the smaller ids. */
#include "post_internal.h"

#include "db.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

void commit_order_init(struct commit_order *o)
{
    pthread_mutex_init(&o->lock, NULL);
    pthread_cond_init(&o->turn_changed, NULL);
    o->turn = 0;
}

void commit_order_destroy(struct commit_order *o)
{
    pthread_cond_destroy(&o->turn_changed);
    pthread_mutex_destroy(&o->lock);
}

static void turn_take(struct commit_order *o, uint64_t ticket)
{
    pthread_mutex_lock(&o->lock);
    while (o->turn != ticket)
        pthread_cond_wait(&o->turn_changed, &o->lock);
    pthread_mutex_unlock(&o->lock);
}

/* Move the turn on, past the tickets given up meanwhile. Under the lock. */
static void turn_advance(struct commit_order *o)
{
    o->turn++;
    for (size_t i = 0; i < o->n_skipped;) {
        if (o->skipped[i] == o->turn) {
            o->skipped[i] = o->skipped[--o->n_skipped];
            o->turn++;
            i = 0;
        } else {
            i++;
        }
    }
    pthread_cond_broadcast(&o->turn_changed);
}

static void turn_pass(struct commit_order *o)
{
    pthread_mutex_lock(&o->lock);
    turn_advance(o);
    pthread_mutex_unlock(&o->lock);
}

void commit_order_release(struct commit_order *o, struct commit_batch *b)
{
    if (b->turn_used)
        return;
    pthread_mutex_lock(&o->lock);
    if (o->turn == b->ticket)
        turn_advance(o);
    else if (o->n_skipped < POST_IN_FLIGHT)
        o->skipped[o->n_skipped++] = b->ticket;
    pthread_mutex_unlock(&o->lock);
}

static struct chatd_value text(const char *s)
{
    return s ? (struct chatd_value){.type = CHATD_PARAM_TEXT, .s = s, .len = strlen(s)}
             : (struct chatd_value){.type = CHATD_PARAM_NULL};
}

static struct chatd_value int64(int64_t i)
{
    return (struct chatd_value){.type = CHATD_PARAM_INT64, .i = i};
}

static int written(const struct post_item *item)
{
    return item->status == 0 && !item->repeat;
}

/* ---- 1. idempotency --------------------------------------------------------------- */

#define LOOKUP_N    16
#define PAIR        "(sender = ? AND client_msg_id = ?)"
#define PAIRS4      PAIR " OR " PAIR " OR " PAIR " OR " PAIR
#define LOOKUP_HEAD "SELECT sender, client_msg_id, id, ts, flags FROM chatd_messages WHERE "

struct lookup {
    struct post_item *items[LOOKUP_N];
    size_t n;
};

static int on_match(const struct chatd_value *cols, size_t ncols, void *arg)
{
    struct lookup *l = arg;
    if (ncols != 5 || cols[0].type != CHATD_PARAM_TEXT)
        return 0;
    for (size_t i = 0; i < l->n; i++) {
        struct post_item *item = l->items[i];
        if (strlen(item->sender) == cols[0].len &&
            memcmp(item->sender, cols[0].s, cols[0].len) == 0 &&
            strlen(item->client_msg_id) == cols[1].len &&
            memcmp(item->client_msg_id, cols[1].s, cols[1].len) == 0) {
            item->repeat = 1;
            item->first_id = cols[2].i;
            item->first_ts = cols[3].i;
            item->first_flags = (uint32_t)cols[4].i;
        }
    }
    return 0;
}

static int lookup_run(struct chatd_db *db, struct lookup *l)
{
    struct chatd_value v[2 * LOOKUP_N];
    for (size_t i = 0; i < LOOKUP_N; i++) {
        /* The last pair repeats: one statement text serves every chunk. */
        const struct post_item *item = l->items[i < l->n ? i : l->n - 1];
        v[2 * i] = text(item->sender);
        v[2 * i + 1] = text(item->client_msg_id);
    }
    int rc = db_query(db, LOOKUP_HEAD PAIRS4 " OR " PAIRS4 " OR " PAIRS4 " OR " PAIRS4, v,
                      2 * LOOKUP_N, on_match, l);
    l->n = 0;
    return rc;
}

static int find_repeats(struct chatd_db *db, struct commit_batch *b)
{
    struct lookup l = {.n = 0};
    int rc = 0;
    for (struct post_item *item = b->first; rc == 0 && item; item = item->next) {
        if (!item->client_msg_id)
            continue;
        l.items[l.n++] = item;
        if (l.n == LOOKUP_N)
            rc = lookup_run(db, &l);
    }
    return rc == 0 && l.n > 0 ? lookup_run(db, &l) : rc;
}

/* ---- 3. ids ----------------------------------------------------------------------- */

/* Take the next n ids from the counter (its row stays locked until the commit) and
 * number the batch's new messages with them, in queue order. */
static int take_ids(struct chatd_db *db, struct commit_batch *b)
{
    int64_t n = 0;
    for (const struct post_item *item = b->first; item; item = item->next)
        n += written(item);
    b->first_id = b->last_id = 0;
    if (n == 0)
        return 0;
    struct chatd_value v = int64(n);
    uint64_t affected = 0, value = 0;
    int rc = db_exec(db,
                     "UPDATE chatd_counters SET value = LAST_INSERT_ID(value + ?) "
                     "WHERE name = 'message_id'",
                     &v, 1, &affected, &value);
    if (rc != 0)
        return rc;
    if (affected != 1 || value < (uint64_t)n) {
        log_error("the message id counter (chatd_counters, 'message_id') is missing");
        return CHATD_EDB;
    }
    b->last_id = (int64_t)value;
    b->first_id = b->last_id - n + 1;
    int64_t id = b->first_id;
    for (struct post_item *item = b->first; item; item = item->next)
        item->id = written(item) ? id++ : 0;
    return 0;
}

/* ---- 4. rows ---------------------------------------------------------------------- */

#define MSG_HEAD                                                                                   \
    "INSERT INTO chatd_messages (id, body, sender, conversation, ts, client_msg_id, flags) "       \
    "VALUES "
#define MSG_COLS 7
#define MSG_ROW  "(?, ?, ?, ?, ?, ?, ?)"
#define TL_HEAD  "INSERT IGNORE INTO chatd_timeline (user, message_id, sender) VALUES "
#define TL_COLS  3
#define TL_ROW   "(?, ?, ?)"
#define BIG_ROWS ((size_t)1 << COMMIT_ROWS_SHIFT)
_Static_assert(MSG_COLS *BIG_ROWS <= DB_HOST_MAX_PARAMS && TL_COLS <= MSG_COLS,
               "a statement binds at most DB_HOST_MAX_PARAMS parameters");

/* head, then n times row, comma separated. */
static char *rows_sql(const char *head, const char *row, size_t n)
{
    size_t hl = strlen(head), rl = strlen(row);
    char *sql = malloc(hl + n * (rl + 2) + 1);
    if (!sql)
        return NULL;
    char *p = sql;
    memcpy(p, head, hl);
    p += hl;
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            memcpy(p, ", ", 2);
            p += 2;
        }
        memcpy(p, row, rl);
        p += rl;
    }
    *p = '\0';
    return sql;
}

int commit_sql_init(struct commit_sql *sql)
{
    for (size_t k = 0; k < COMMIT_SQL_SIZES; k++)
        if (!(sql->messages[k] = rows_sql(MSG_HEAD, MSG_ROW, (size_t)1 << k)) ||
            !(sql->timeline[k] = rows_sql(TL_HEAD, TL_ROW, (size_t)1 << k)))
            return -1;
    return 0;
}

void commit_sql_free(struct commit_sql *sql)
{
    for (size_t k = 0; k < COMMIT_SQL_SIZES; k++) {
        free(sql->messages[k]);
        free(sql->timeline[k]);
    }
}

/* Rows are bound into a chunk of up to BIG_ROWS rows, which goes out as statements of
 * 2^k rows, largest first. */
struct inserter {
    struct chatd_db *db;
    char *const *sql; /* sql[k]: 2^k rows */
    size_t cols, n;
    struct chatd_value *v; /* BIG_ROWS rows */
};

static int inserter_init(struct inserter *in, struct chatd_db *db, char *const *sql, size_t cols)
{
    *in = (struct inserter){.db = db, .sql = sql, .cols = cols};
    in->v = malloc(BIG_ROWS * cols * sizeof(*in->v));
    return in->v ? 0 : CHATD_ENOMEM;
}

static int flush_rows(struct inserter *in)
{
    int rc = 0;
    for (size_t done = 0, k = COMMIT_ROWS_SHIFT; rc == 0 && done < in->n; k--) {
        size_t rows = (size_t)1 << k;
        if (in->n - done < rows)
            continue;
        rc = db_exec(in->db, in->sql[k], in->v + done * in->cols, rows * in->cols, NULL, NULL);
        done += rows;
    }
    in->n = 0;
    return rc;
}

/* Flush what is left and free. */
static int inserter_end(struct inserter *in, int rc)
{
    rc = rc == 0 ? flush_rows(in) : rc;
    free(in->v);
    return rc;
}

static struct chatd_value *row_slot(struct inserter *in, int *rc)
{
    if (in->n == BIG_ROWS)
        *rc = flush_rows(in);
    return in->v + in->cols * in->n++;
}

static int write_messages(struct chatd_db *db, struct commit_batch *b)
{
    struct inserter in;
    int rc = inserter_init(&in, db, b->ps->sql.messages, MSG_COLS);
    for (struct post_item *item = b->first; rc == 0 && item; item = item->next) {
        if (!written(item))
            continue;
        struct chatd_value *v = row_slot(&in, &rc);
        v[0] = int64(item->id);
        v[1] = (struct chatd_value){.type = CHATD_PARAM_TEXT, .s = item->body, .len = item->len};
        v[2] = text(item->sender);
        v[3] = text(item->conversation);
        v[4] = int64(item->ts);
        v[5] = item->client_msg_id ? (struct chatd_value){.type = CHATD_PARAM_BLOB,
                                                          .s = item->client_msg_id,
                                                          .len = strlen(item->client_msg_id)}
                                   : text(NULL);
        v[6] = int64(item->flags);
    }
    return inserter_end(&in, rc);
}

static int write_timeline(struct chatd_db *db, struct commit_batch *b)
{
    struct inserter in;
    int rc = inserter_init(&in, db, b->ps->sql.timeline, TL_COLS);
    for (struct post_item *item = b->first; rc == 0 && item; item = item->next) {
        for (size_t i = 0; rc == 0 && written(item) && i < item->n_users; i++) {
            if (!item->needs_row[i])
                continue;
            struct chatd_value *v = row_slot(&in, &rc);
            v[0] = text(item->users[i]);
            v[1] = int64(item->id);
            v[2] = text(item->sender);
        }
    }
    rc = inserter_end(&in, rc);
    /* Rows of messages committed before: their sender is the message's. */
    for (size_t i = 0; rc == 0 && i < b->n_rows; i++) {
        struct chatd_value v[2] = {text(b->rows[i].user), int64(b->rows[i].message_id)};
        rc = db_exec(db,
                     "INSERT IGNORE INTO chatd_timeline (user, message_id, sender) "
                     "SELECT ?, id, sender FROM chatd_messages WHERE id = ?",
                     v, 2, NULL, NULL);
    }
    return rc;
}

/* ---- the transaction -------------------------------------------------------------- */

static int batch_try(struct chatd_db *db, struct commit_batch *b, int *have_turn)
{
    for (struct post_item *item = b->first; item; item = item->next)
        item->status = item->repeat = 0;
    int rc = db_simple(db, "START TRANSACTION");
    if (rc == 0)
        rc = find_repeats(db, b);
    for (struct post_item *item = b->first; rc == 0 && item; item = item->next)
        if (!item->repeat && (item->max_stored > 0 || item->max_per_sender > 0))
            rc = post_quota_check(db, b, item);
    if (!*have_turn) {
        turn_take(&b->ps->order, b->ticket);
        *have_turn = 1;
    }
    if (rc == 0)
        rc = take_ids(db, b);
    if (rc == 0)
        rc = write_messages(db, b);
    if (rc == 0)
        rc = write_timeline(db, b);
    if (rc == 0)
        rc = db_simple(db, "COMMIT");
    return rc;
}

/* A transaction that lost to another (deadlock, lock wait) runs again. So does one
 * whose message row met a duplicate (sender, client_msg_id): a post with the same id,
 * made on another node (or another connection) after this batch's look-ups, committed
 * first; run again, the look-up finds it and the post is answered as its repeat,
 * instead of failing every post of the batch. */
#define BATCH_TRIES 4

static int worth_retrying(const struct chatd_db *db, int rc)
{
    return rc == CHATD_EDB &&
           (db_error_is_conflict(db->last_errno) || db_error_is_duplicate(db->last_errno));
}

int commit_batch_work(struct chatd_db *db, void *arg)
{
    struct commit_batch *b = arg;
    int have_turn = 0;
    int rc = batch_try(db, b, &have_turn);
    for (int tries = 1; worth_retrying(db, rc) && tries < BATCH_TRIES; tries++) {
        log_info("a commit batch of %zu messages: %s; trying again", b->n_items, db->last_error);
        db_simple(db, "ROLLBACK");
        rc = batch_try(db, b, &have_turn);
    }
    if (rc != 0) {
        db_simple(db, "ROLLBACK");    /* the counter's row lock goes before the next turn */
        b->first_id = b->last_id = 0; /* rolled back: the ids were not used */
    }
    if (!have_turn)
        turn_take(&b->ps->order, b->ticket);
    turn_pass(&b->ps->order);
    b->turn_used = 1;
    return rc;
}
