/* post_quota.c - max_stored and max_per_sender: how many messages may wait for a user
 * with no session online (their timeline rows above their version 1 position, the
 * chatd_devices row with device ''; none: 0), and how many of those from one sender.
 *
 * Counting for every message would cost a query per message. The loop keeps instead an
 * upper bound per user and per (user, sender): set from an exact count, grown by every
 * row a batch will write as the batch forms (also rows of posts refused later: still
 * an upper bound). Rows only leave by positions moving and the prune, which lower the
 * real number. Below the limit a post passes at no cost; at the limit, or when the
 * bound is unknown, the worker counts in the batch's transaction (adding the rows of
 * earlier posts of the same batch), and such a batch commits with nothing else in
 * flight (post.c), so its count sees everything before it. */
#include "post_internal.h"

#include "db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The bounds are dropped whole past this many entries, to stay bounded. */
#define BOUNDS_MAX 65536

/* "user\nsender": names cannot hold a newline (post_valid_name). */
static int pair_key(char *out, size_t cap, const char *user, const char *sender)
{
    int n = snprintf(out, cap, "%s\n%s", user, sender);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

static struct post_bound *bound_find(struct post_bound *table, const char *key)
{
    struct post_bound *b;
    HASH_FIND_STR(table, key, b);
    return b;
}

static void bounds_clear(struct post_bound **table)
{
    struct post_bound *b, *tmp;
    HASH_ITER (hh, *table, b, tmp) {
        HASH_DEL(*table, b);
        free(b->key);
        free(b);
    }
}

static void bound_set(struct post_bound **table, const char *key, int64_t rows)
{
    struct post_bound *b = bound_find(*table, key);
    if (!b) {
        if (HASH_COUNT(*table) >= BOUNDS_MAX)
            bounds_clear(table);
        if (!(b = calloc(1, sizeof(*b))) || !(b->key = strdup(key))) {
            free(b); /* an unknown bound is counted next time: still exact */
            return;
        }
        HASH_ADD_KEYPTR(hh, *table, b->key, strlen(b->key), b);
    }
    b->rows = rows;
}

int post_quota_prepare(struct post_state *ps, struct post_item *item)
{
    item->stored_bound = item->sender_bound = -1;
    int exact = 0;
    if (item->max_stored > 0) {
        const struct post_bound *b = bound_find(ps->stored_bounds, item->users[0]);
        item->stored_bound = b ? b->rows : -1;
        exact |= !b || b->rows >= item->max_stored;
    }
    if (item->max_per_sender > 0) {
        char key[2 * POST_NAME_MAX + 2];
        const struct post_bound *b = pair_key(key, sizeof(key), item->users[0], item->sender) == 0
                                         ? bound_find(ps->sender_bounds, key)
                                         : NULL;
        item->sender_bound = b ? b->rows : -1;
        exact |= !b || b->rows >= item->max_per_sender;
    }
    return exact;
}

void post_quota_grow(struct post_state *ps, const char *user, const char *sender)
{
    struct post_bound *b = bound_find(ps->stored_bounds, user);
    if (b)
        b->rows++;
    char key[2 * POST_NAME_MAX + 2];
    if (sender && pair_key(key, sizeof(key), user, sender) == 0 &&
        (b = bound_find(ps->sender_bounds, key)))
        b->rows++;
}

/* Rows for `user` (from `sender`, unless NULL) that earlier posts of the batch write. */
static int64_t earlier_rows(const struct commit_batch *b, const struct post_item *item,
                            const char *user, const char *sender)
{
    int64_t n = 0;
    for (const struct post_item *p = b->first; p != item; p = p->next) {
        if (p->status != 0 || p->repeat || (sender && (!p->sender || strcmp(p->sender, sender))))
            continue;
        for (size_t i = 0; i < p->n_users; i++)
            n += p->needs_row[i] && strcmp(p->users[i], user) == 0;
    }
    return n;
}

/* ---- worker side ----------------------------------------------------------------- */

#define WAITING                                                                                    \
    "SELECT COUNT(*) FROM chatd_timeline WHERE user = ? AND message_id > COALESCE("                \
    "(SELECT acked FROM chatd_devices WHERE user = ? AND device = ''), 0)"

int post_quota_check(struct chatd_db *db, const struct commit_batch *b, struct post_item *item)
{
    const char *user = item->users[0];
    struct chatd_value v[3] = {
        {.type = CHATD_PARAM_TEXT, .s = user, .len = strlen(user)},
        {.type = CHATD_PARAM_TEXT, .s = user, .len = strlen(user)},
        {.type = CHATD_PARAM_TEXT,
         .s = item->sender,
         .len = item->sender ? strlen(item->sender) : 0},
    };
    int rc = 0;
    if (item->max_stored > 0) {
        item->stored_count = item->stored_bound;
        if (item->stored_bound < 0 || item->stored_bound >= item->max_stored) {
            item->stored_count = 0;
            rc = db_query(db, WAITING, v, 2, db_read_int64, &item->stored_count);
            item->stored_count += earlier_rows(b, item, user, NULL);
        }
        if (rc == 0 && item->stored_count >= item->max_stored) {
            item->status = CHATD_EOVERFLOW;
            return 0;
        }
    }
    if (rc == 0 && item->max_per_sender > 0) {
        item->sender_count = item->sender_bound;
        if (item->sender_bound < 0 || item->sender_bound >= item->max_per_sender) {
            item->sender_count = 0;
            rc = db_query(db, WAITING " AND sender = ?", v, 3, db_read_int64, &item->sender_count);
            item->sender_count += earlier_rows(b, item, user, item->sender);
        }
        if (rc == 0 && item->sender_count >= item->max_per_sender)
            item->status = CHATD_EPERM;
    }
    return rc;
}

/* ---- loop side, after the commit ------------------------------------------------- */

void post_quota_committed(struct post_state *ps, const struct post_item *item)
{
    /* A repeat took no counts (post_quota_check skips it): its zeros would set the
     * bounds to 0, and every later post would pass the limits. */
    if (item->repeat)
        return;
    /* Only counts taken in this batch are news; the later rows of the batch for the
     * same user were added to the bound already, as the batch formed. */
    const struct post_item *p;
    int64_t later = 0, later_sender = 0;
    for (p = item->next; p; p = p->next) {
        for (size_t i = 0; i < p->n_users; i++) {
            if (!p->needs_row[i] || strcmp(p->users[i], item->users[0]) != 0)
                continue;
            later++;
            later_sender += p->sender && item->sender && strcmp(p->sender, item->sender) == 0;
        }
    }
    int own = item->status == 0;
    if (item->max_stored > 0 && item->stored_bound != item->stored_count)
        bound_set(&ps->stored_bounds, item->users[0], item->stored_count + own + later);
    char key[2 * POST_NAME_MAX + 2];
    if (item->max_per_sender > 0 && item->sender_bound != item->sender_count &&
        item->status != CHATD_EOVERFLOW &&
        pair_key(key, sizeof(key), item->users[0], item->sender) == 0)
        bound_set(&ps->sender_bounds, key, item->sender_count + own + later_sender);
}

void post_quota_free(struct post_state *ps)
{
    bounds_clear(&ps->stored_bounds);
    bounds_clear(&ps->sender_bounds);
}
