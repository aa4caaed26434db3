/* delivery_internal.h - the state shared by the files of the delivery facility:
 * delivery.c (per-user holding, logins), delivery_drain.c (sending a user's timeline),
 * delivery_schema.c (the tables) and stream_interim.c. Nothing else includes it. Loop thread only,
 * except where a job says otherwise. */
#ifndef CHATD_HOST_DELIVERY_INTERNAL_H
#define CHATD_HOST_DELIVERY_INTERNAL_H

#include "delivery.h"
#include "plugin_loader.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uthash.h>

/* Live pushes held for one user while their stored messages drain; past it they are
 * dropped. */
#define DELIVERY_HELD_MAX 1000
/* Rows read per drain batch, and the text pushed per batch (at least one message). */
#define DELIVERY_BATCH_ROWS  100
#define DELIVERY_BATCH_BYTES (64 * 1024)
/* The longest user name the inbox keeps (chatd_inbox.user is VARCHAR(32) ascii_bin). */
#define DELIVERY_NAME_MAX 32

/* A push waiting for a user's drain to end. */
struct held_push {
    json_t *msg;
};

struct drain;

/* What delivery knows of one user: kept while they are online, and while work that
 * names them (a store, an acknowledgement, a drain) is under way. */
struct dl_user {
    char *name;
    int online;              /* between the first login_begin and user_gone */
    uint64_t generation;     /* bumped at user_gone: tells one time online from the next */
    unsigned logins_pending; /* logins bound, reply not yet sent */
    int draining;            /* a drain runs: live pushes are held */
    int drain_again;         /* a login came during the drain: read once more at its end */
    /* Something was stored for the user during this hold (held list full): everything
     * after it is stored too, until the drain has sent the inbox to the end. */
    int spilling;
    struct held_push *held;
    size_t n_held, cap_held;
    unsigned stores;     /* store items queued or in flight that name the user */
    unsigned acks;       /* drain acknowledgements (inbox deletes) in flight */
    struct drain *drain; /* the running drain, or NULL */
    UT_hash_handle hh;
};

struct delivery_stats {
    uint64_t drains;         /* drains started */
    uint64_t drain_failures; /* drains given up after their retries */
    uint64_t drained;        /* stored messages pushed by drains */
    uint64_t dropped;        /* pushes that could not wait (held list full, user left) */
    uint64_t unsent_stored;  /* pushes stored because their session ended before writing them */
    uint64_t held;           /* pushes held right now */
};

struct delivery {
    struct server *srv;
    /* The host's own record as a plugin named "chatd": what its jobs and flush watches
     * are tied to, and the name its migrations are recorded under. */
    struct chatd_plugin self;
    struct dl_user *users; /* by name */
    struct delivery_stats stats;
};

/* delivery.c */
/* The user's record, made when `create` is set; NULL when absent or out of memory. */
struct dl_user *delivery_user(struct delivery *d, const char *name, int create);
/* Free u if nothing needs it any more (offline, nothing in flight or held). */
void delivery_user_release(struct delivery *d, struct dl_user *u);
/* The drain of u ended (or gave up): stop holding, unless another login is pending,
 * and push what was held, in order. */
void delivery_release_held(struct delivery *d, struct dl_user *u);

/* delivery_drain.c */
/* Start sending u's inbox (u->draining is set by the caller). */
void drain_start(struct delivery *d, struct dl_user *u);
/* The last store naming u finished: a drain waiting to conclude looks again. */
void drain_stores_done(struct delivery *d, struct dl_user *u);
/* u's last session ended: stop its drain; the rows it sent and did not acknowledge
 * stay stored. */
void drain_abandon(struct delivery *d, struct dl_user *u);
/* Free a drain at teardown (the loop no longer runs). */
void drain_free_at_exit(struct drain *dr);

/* delivery_schema.c */
/* The descriptor of the host's pseudo-plugin "chatd": its migrations only. */
extern const struct chatd_plugin_descriptor delivery_descriptor;

#endif
