/* delivery_internal.h - the state shared by the files of the delivery facility:
 * delivery.c (deliver, per-user holding, logins), inbox_store.c (writing the inbox),
 * delivery_drain.c (sending a user's inbox) and delivery_schema.c (the tables). Nothing
 * else includes it. Loop thread only, except where a job says otherwise. */
#ifndef CHATD_HOST_DELIVERY_INTERNAL_H
#define CHATD_HOST_DELIVERY_INTERNAL_H

#include "delivery.h"
#include "plugin_loader.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uthash.h>

/* The longest user name the inbox keeps (chatd_inbox.user is VARCHAR(32) ascii_bin). */
#define DELIVERY_NAME_MAX 32

/* What delivery knows of one user: kept while a store that names them is under way. */
struct dl_user {
    char *name;
    unsigned stores; /* store items queued or in flight that name the user */
    UT_hash_handle hh;
};

/* One message to be stored for some users: one chatd_messages row, one chatd_inbox row
 * per user, in one transaction. */
struct store_item {
    char *body; /* the push as JSON text, without "offline" */
    size_t len;
    char **users;
    size_t n_users;
    int64_t max_stored;         /* > 0 with one user: refuse when their inbox is this full */
    char *sender;               /* who sent it (kept in the inbox rows), or NULL */
    int64_t max_per_sender;     /* > 0 with one user and a sender: refuse at this many */
    int64_t sender_rows;        /* max_per_sender: the sender's rows for the user (-1: count) */
    chatd_deliver_done_fn done; /* may be NULL */
    void *arg;
    struct chatd_plugin *caller; /* kept loaded (pending_jobs) until done ran; or NULL */
    size_t online;               /* users the message was pushed or held for */
    int status;                  /* set by the worker */
    int64_t count_before;        /* max_stored: the user's inbox size (-1: count it) */
    struct store_item *next;
};

/* A known inbox size, for max_stored without a COUNT per message. */
struct inbox_count {
    char *name;
    int64_t rows;
    UT_hash_handle hh;
};

struct delivery_stats {
    uint64_t stored;         /* inbox rows written */
    uint64_t refused;        /* stores refused for max_stored */
    uint64_t refused_sender; /* stores refused for max_per_sender */
    uint64_t store_failed;   /* messages whose store failed */
    int64_t inbox_rows;      /* rows in chatd_inbox (-1 until first counted) */
};

struct delivery {
    struct server *srv;
    /* The host's own record as a plugin named "chatd": what its jobs and flush watches
     * are tied to, and the name its migrations are recorded under. */
    struct chatd_plugin self;
    struct dl_user *users; /* by name */
    /* Store items, in acceptance order; one batch in flight at a time, so inbox ids
     * follow acceptance order. */
    struct store_item *queue_head, **queue_tail;
    size_t queued;
    int batch_in_flight;
    struct inbox_count *counts;        /* by name */
    uint64_t count_epoch;              /* moves whenever a known size is forgotten */
    struct inbox_count *sender_counts; /* by "user\nsender": upper bounds (inbox_quota.c) */
    struct delivery_stats stats;
};

/* delivery.c */
/* The user's record, made when `create` is set; NULL when absent or out of memory. */
struct dl_user *delivery_user(struct delivery *d, const char *name, int create);
/* Free u if nothing needs it any more (offline, nothing in flight or held). */
void delivery_user_release(struct delivery *d, struct dl_user *u);

/* inbox_store.c */
/* Queue item (taken) for storing; counts it in each of its users' `stores`. Its done
 * runs once, on the loop thread, after the commit or the failure. */
void inbox_store_add(struct delivery *d, struct store_item *item);
/* A store item for one message (body copied) and one user, without a done callback. */
struct store_item *inbox_store_item(const char *body, size_t len, const char *user);
/* Free an item that was never queued. */
void inbox_store_item_free(struct store_item *item);
/* Forget the known inbox size of user (rows left it). */
void inbox_store_forget(struct delivery *d, const char *user);
/* Fail everything queued with CHATD_ESHUTDOWN and free the size cache. */
void inbox_store_free(struct delivery *d);
/* Submit a job counting chatd_inbox once, to start the inbox gauge. */
void inbox_store_count_all(struct delivery *d);

/* inbox_quota.c: a sender's share of one user's inbox */
/* Take the item's known bound into it as its batch is formed. */
void inbox_quota_prepare(struct delivery *d, struct store_item *item);
/* Worker, in the batch's transaction (first: the batch's first item): set item->status
 * to CHATD_EPERM when its sender already has max_per_sender rows for its user. 0, or
 * the database's error. */
int inbox_quota_check(struct chatd_db *db, const struct store_item *first, struct store_item *item);
/* The batch holding item was committed: keep the bounds it ended with. */
void inbox_quota_committed(struct delivery *d, const struct store_item *item);
void inbox_quota_free(struct delivery *d);

/* delivery_schema.c */
/* The descriptor of the host's pseudo-plugin "chatd": its migrations only. */
extern const struct chatd_plugin_descriptor delivery_descriptor;

#endif
