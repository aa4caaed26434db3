/* inbox_quota.c - one sender's share of one user's inbox (deliver_from's max_per_sender),
 * so that one account cannot fill a mailbox for every other sender.
 *
 * Counting every message with COUNT(*) would add a round trip per stored message. The
 * loop keeps instead, per (user, sender), an upper bound of the rows stored: set from a
 * count, grown by every row stored with that sender for that user. Rows only leave the
 * inbox by being delivered, which lowers the real number, so the bound stays an upper
 * bound without being told about drains (only one batch writes at a time). Below the
 * limit it lets the message through at no cost; at the limit the worker counts for real
 * (inside the batch's transaction, so earlier items of the batch are in it), which both
 * refuses exactly and refreshes the bound after deliveries. */
#include "delivery_internal.h"

#include "db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The bounds are dropped whole past this many pairs, to stay bounded. */
#define PAIRS_MAX 65536

/* "user\nsender": names cannot hold a newline (storable_name). */
static int pair_key(char *out, size_t cap, const char *user, const char *sender)
{
    int n = snprintf(out, cap, "%s\n%s", user, sender);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

static struct inbox_count *pair_find(struct delivery *d, const char *user, const char *sender)
{
    char key[2 * DELIVERY_NAME_MAX + 2];
    if (pair_key(key, sizeof(key), user, sender) != 0)
        return NULL;
    struct inbox_count *c;
    HASH_FIND_STR(d->sender_counts, key, c);
    return c;
}

void inbox_quota_free(struct delivery *d)
{
    struct inbox_count *c, *tmp;
    HASH_ITER (hh, d->sender_counts, c, tmp) {
        HASH_DEL(d->sender_counts, c);
        free(c->name);
        free(c);
    }
}

void inbox_quota_prepare(struct delivery *d, struct store_item *item)
{
    item->sender_rows = -1;
    if (item->max_per_sender > 0) {
        const struct inbox_count *c = pair_find(d, item->users[0], item->sender);
        if (c)
            item->sender_rows = c->rows;
    }
}

/* ---- worker side ----------------------------------------------------------------- */

int inbox_quota_check(struct chatd_db *db, const struct store_item *first, struct store_item *item)
{
    /* The bound as this batch sees it: after the latest earlier item of the same pair,
     * else the loop's. */
    const struct store_item *last = NULL;
    for (const struct store_item *p = first; p != item; p = p->next)
        if (p->max_per_sender > 0 && strcmp(p->users[0], item->users[0]) == 0 &&
            strcmp(p->sender, item->sender) == 0)
            last = p;
    int64_t rows = last ? last->sender_rows + (last->status == 0 ? 1 : 0) : item->sender_rows;
    if (rows < 0 || rows >= item->max_per_sender) {
        struct chatd_value v[2] = {
            {.type = CHATD_PARAM_TEXT, .s = item->users[0], .len = strlen(item->users[0])},
            {.type = CHATD_PARAM_TEXT, .s = item->sender, .len = strlen(item->sender)},
        };
        rows = 0;
        int rc = db_query(db, "SELECT COUNT(*) FROM chatd_inbox WHERE user = ? AND sender = ?", v,
                          2, db_read_int64, &rows);
        if (rc != 0)
            return rc;
    }
    item->sender_rows = rows;
    if (rows >= item->max_per_sender)
        item->status = CHATD_EPERM;
    return 0;
}

/* ---- loop side, after the commit --------------------------------------------------- */

void inbox_quota_committed(struct delivery *d, const struct store_item *item)
{
    if (!item->sender)
        return;
    if (item->max_per_sender <= 0 || item->sender_rows < 0) {
        /* Stored without a limit (or refused before its share was looked at): a known
         * bound grows with what was stored. */
        for (size_t i = 0; item->status == 0 && i < item->n_users; i++) {
            struct inbox_count *c = pair_find(d, item->users[i], item->sender);
            if (c)
                c->rows++;
        }
        return;
    }
    struct inbox_count *c = pair_find(d, item->users[0], item->sender);
    if (!c) {
        char key[2 * DELIVERY_NAME_MAX + 2];
        if (pair_key(key, sizeof(key), item->users[0], item->sender) != 0)
            return;
        if (HASH_COUNT(d->sender_counts) >= PAIRS_MAX)
            inbox_quota_free(d);
        if (!(c = calloc(1, sizeof(*c))) || !(c->name = strdup(key))) {
            free(c);
            return; /* counted again next time */
        }
        HASH_ADD_KEYPTR(hh, d->sender_counts, c->name, strlen(c->name), c);
    }
    c->rows = item->sender_rows + (item->status == 0 ? 1 : 0);
}
