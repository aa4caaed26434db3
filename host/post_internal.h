/* post_internal.h - the state shared by the files of the write side: post.c (accepting
 * posts, the queue, pushing after a commit), commit_batch.c (the transaction, on a
 * worker), post_quota.c (max_stored and max_per_sender) and post_deliver.c (deliver on
 * top of post). Nothing else includes it. Loop thread only, except where a function
 * says "worker". */
#ifndef CHATD_HOST_POST_INTERNAL_H
#define CHATD_HOST_POST_INTERNAL_H

#include "line_buffer.h"
#include "plugin_loader.h"
#include "post.h"

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <uthash.h>

struct event;

/* The longest user name the timeline keeps (VARCHAR(32) ascii_bin), conversation and
 * client_msg_id (chatd_messages). */
#define POST_NAME_MAX         32
#define POST_CONVERSATION_MAX 70
#define POST_CLIENT_ID_MAX    64
/* Posts that may wait to be committed; more are refused with CHATD_EBUSY. */
#define POST_QUEUE_MAX 200000
/* Commit batches in flight at once: the next one does its reads while one commits; they
 * take their ids and commit in the order they were formed (commit_batch.c). */
#define POST_IN_FLIGHT 2

/* chatd_messages.flags beyond the post's own (CHATD_POST_PRIVATE): a recipient had a
 * session online when it was accepted, for a repeat's answer. (POST_FLAG_MSG_ID, post.h,
 * is the other.) */
#define POST_FLAG_ONLINE (1u << 8)

/* A later post with a client_msg_id that matched this one while it was queued or in
 * flight: it gets this post's outcome. A look-up (find, post_find.c) gets it only when
 * this post is committed, otherwise CHATD_ENOENT: a refused post left its id unused. */
struct post_waiter {
    chatd_post_done_fn done;
    void *arg;
    struct chatd_plugin *caller;
    int find;
    struct post_waiter *next;
};

/* One accepted post, from post() until its done ran. */
struct post_item {
    int64_t id; /* its place in the sequence, given by its batch's commit (0 before) */
    int64_t ts; /* Unix ms, at acceptance */
    char *sender;
    char *conversation;  /* or NULL */
    char *client_msg_id; /* or NULL */
    char *key;           /* "sender\nclient_msg_id" while in by_key, or NULL */
    char *staged_key;    /* the same, until the post is accepted (its turn came) */
    int own_fields;      /* deliver(): the push keeps its own msg_id and ts */
    uint32_t flags;      /* chatd_messages.flags */
    /* The recipients: users, held and needs_row are n_users long, and they and the
     * names are one allocation (item_new). */
    char **users;
    size_t n_users;
    /* Per user: the stream's record (stream_hold), taken at acceptance, or at the push
     * for a user who had none then; NULL while they have none. */
    struct stream_user **held;
    unsigned char *needs_row; /* per user: a timeline row is written with the message */
    json_t *msg;              /* the push: its ts at acceptance, seq (and msg_id) once committed */
    char *body;               /* msg as JSON text as stored, without seq and msg_id */
    size_t len;
    /* Limits for a single recipient with no session online at acceptance (0: none), and
     * the loop's upper bounds of what the recipient (and the sender for them) already
     * has waiting (-1: unknown), taken when the batch was formed (post_quota.c). */
    int64_t max_stored, max_per_sender;
    int64_t stored_bound, sender_bound;
    size_t online; /* recipients with a session when accepted */
    chatd_post_done_fn done;
    void *arg;
    struct chatd_plugin *caller; /* kept loaded (pending_jobs) until done ran */
    struct post_waiter *waiters;
    /* Set by the worker: 0, CHATD_EOVERFLOW or CHATD_EPERM (refused by a limit); repeat
     * when the client_msg_id was committed before (first_*: that message's), and the
     * counts the limits were checked with. */
    int status;
    int repeat;
    int64_t first_id, first_ts; /* repeat: the first post's */
    uint32_t first_flags;
    int64_t stored_count, sender_count;
    int late_rows; /* rows written after the push (recipients who had left): done waits */
    UT_hash_handle hh;
    struct post_item *next;
};

/* A timeline row for a message already committed (post_store_rows). */
struct post_row {
    char *user;
    int64_t message_id;
};

/* One transaction: posts, rows of earlier messages, and the counter. */
struct commit_batch {
    struct post_state *ps;
    uint64_t ticket; /* its turn to take ids and commit (commit_batch.c) */
    struct post_item *first;
    size_t n_items;
    struct post_row *rows;
    size_t n_rows;
    /* Posts whose done waits for this batch's rows (late_rows). */
    struct post_item *deferred;
    /* The ids its new messages got, first_id..last_id in queue order (0 and 0: none),
     * under chatd_counters' row lock, so every id at or below last_id is committed once
     * this batch is; first_id - 1 was the counter before it. Set by the worker, read on
     * the loop after the commit (what a cluster node orders and announces by). */
    int64_t first_id, last_id;
    int exact;     /* some post needs an exact count: nothing else may be in flight */
    int status;    /* the job's, once done */
    int finished;  /* the job's done ran */
    int turn_used; /* set by the worker once it passed its turn */
    struct commit_batch *next;
};

/* The most rows one INSERT of a batch takes is 1 << COMMIT_ROWS_SHIFT: message rows have
 * 7 columns, timeline rows 3, so 7 << COMMIT_ROWS_SHIFT parameters at most (the host's
 * statements may bind DB_HOST_MAX_PARAMS). Fewer rows go out as statements of 2^k rows,
 * so that a connection prepares COMMIT_SQL_SIZES texts per table, whatever the counts. */
#ifndef COMMIT_ROWS_SHIFT
#define COMMIT_ROWS_SHIFT 9
#endif
#define COMMIT_SQL_SIZES (COMMIT_ROWS_SHIFT + 1)

/* The INSERT texts of the batches, made once at start, read by the workers. */
struct commit_sql {
    char *messages[COMMIT_SQL_SIZES]; /* messages[k]: 2^k rows */
    char *timeline[COMMIT_SQL_SIZES];
};

/* The order in which in-flight batches commit, across worker threads. */
struct commit_order {
    pthread_mutex_t lock;
    pthread_cond_t turn_changed;
    uint64_t turn; /* the ticket that commits next */
    /* Tickets of batches whose work never ran (no connection, the server stopping):
     * skipped when the turn reaches them. At most one per batch in flight. */
    uint64_t skipped[POST_IN_FLIGHT];
    size_t n_skipped;
};

/* An upper bound of a user's (or a user's and sender's) waiting timeline rows. */
struct post_bound {
    char *key;
    int64_t rows;
    UT_hash_handle hh;
};

struct post_stats {
    uint64_t posted;    /* messages committed */
    uint64_t repeats;   /* posts answered as repeats */
    uint64_t refused;   /* refused by max_stored or max_per_sender */
    uint64_t failed;    /* whose commit failed */
    uint64_t rows;      /* timeline rows written */
    uint64_t batches;   /* commit batches */
    uint64_t late_rows; /* rows written after the push, for recipients who had left */
};

struct post_state {
    struct server *srv;
    /* Forms batches at the end of the loop turn, so that the posts of every request
     * read in that turn go together. */
    struct event *submit_ev;
    struct chatd_plugin self; /* "chatd": what its jobs are tied to */
    int64_t last_id;          /* the last id committed (as far as the loop has seen) */
    int64_t batch_max;
    struct post_item *queue_head, **queue_tail;
    size_t queued;
    struct post_row *rows; /* waiting for the next batch */
    size_t n_rows, cap_rows;
    struct post_item *deferred, **deferred_tail; /* done waits for the next batch (late rows) */
    struct post_item *by_key;                    /* queued and in flight, by client_msg_id */
    struct commit_batch *flight_head, **flight_tail;
    unsigned in_flight;
    int exact_in_flight;
    uint64_t next_ticket;
    struct commit_order order;
    struct commit_sql sql;
    struct line_buffer body;          /* where item_prepare writes a post's stored text */
    struct post_bound *stored_bounds; /* by user */
    struct post_bound *sender_bounds; /* by "user\nsender" */
    struct post_stats stats;
};

/* post.c */
/* post() for `caller`; own_fields: the push keeps its own "msg_id" and "ts" (deliver),
 * only "seq" is added. */
int post_accept(struct chatd_plugin *caller, const struct chatd_post *p, int own_fields,
                chatd_post_done_fn done, void *arg);
/* Queue item (taken) to be committed; done runs once, after the commit. */
void post_enqueue(struct post_state *ps, struct post_item *item);
/* Free an item (not its waiters). */
void post_item_free(struct post_item *item);
/* A name the timeline keeps: 1 to POST_NAME_MAX printable ASCII bytes. */
int post_valid_name(const char *name);
/* A client_msg_id post keeps: 1 to POST_CLIENT_ID_MAX bytes. */
int post_valid_client_id(const char *client_msg_id);
/* The key of a sender's client_msg_id in by_key: "sender\nclient_msg_id" (malloc'd), or
 * NULL out of memory. */
char *post_twin_key(const char *sender, const char *client_msg_id);
/* The post with that key still queued or in flight, or NULL. */
struct post_item *post_pending_twin(struct post_state *ps, const char *key);
/* Make done(arg) a waiter on twin (find: a look-up, see struct post_waiter); caller is
 * kept loaded until it ran. 0, or CHATD_ENOMEM. */
int post_wait_on_twin(struct post_item *twin, chatd_post_done_fn done, void *arg,
                      struct chatd_plugin *caller, int find);

/* commit_batch.c */
/* Worker: the batch's transaction (its turn taken in ticket order). */
int commit_batch_work(struct chatd_db *db, void *arg);
void commit_order_init(struct commit_order *o);
void commit_order_destroy(struct commit_order *o);
/* Loop thread, from a batch's done: a batch whose work never ran gives up its turn, so
 * the batches after it do not wait for it for ever. */
void commit_order_release(struct commit_order *o, struct commit_batch *b);
/* Make the statement texts. 0, or -1 out of memory (commit_sql_free frees what was made). */
int commit_sql_init(struct commit_sql *sql);
void commit_sql_free(struct commit_sql *sql);

/* post_quota.c */
/* Take the loop's bounds into item as its batch forms; non-zero when the worker must
 * count exactly (the bound reaches a limit, or is unknown). */
int post_quota_prepare(struct post_state *ps, struct post_item *item);
/* Worker, in the batch's transaction: set item->status to CHATD_EOVERFLOW or
 * CHATD_EPERM when a limit refuses it. 0, or the database's error. */
int post_quota_check(struct chatd_db *db, const struct commit_batch *b, struct post_item *item);
/* The batch holding item was committed: keep the bounds it ended with. */
void post_quota_committed(struct post_state *ps, const struct post_item *item);
/* A timeline row for user (with sender, or NULL) was written: grow the bounds. */
void post_quota_grow(struct post_state *ps, const char *user, const char *sender);
void post_quota_free(struct post_state *ps);

#endif
