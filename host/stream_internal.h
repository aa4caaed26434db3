/* stream_internal.h - the state shared by the files of the read side of delivery
 * version 2: stream.c (sessions, pushes, logins), stream_drain.c (sending a session its
 * timeline), devices.c (per-user positions, loaded and written), ack.c (the `ack`
 * command and delivered receipts), read_marks.c and prune.c. Nothing else includes it.
 * Loop thread only, except inside a job's work. */
#ifndef CHATD_HOST_STREAM_INTERNAL_H
#define CHATD_HOST_STREAM_INTERNAL_H

#include "line_buffer.h"
#include "plugin_loader.h"
#include "stream.h"
#include "stream_sessions.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uthash.h>

/* Pushes held per session while it is sent its timeline. Past it, message pushes are
 * dropped (they have timeline rows: the drain reads them again). */
#define STREAM_HELD_MAX 1000
/* Timeline rows read per page, and the text pushed per page (at least one message). */
#define STREAM_PAGE_ROWS  100
#define STREAM_PAGE_BYTES (64 * 1024)
/* Private messages a session remembers for delivered receipts. */
#define STREAM_RECEIPTS_MAX 4096
/* The longest user and device names the tables keep. */
#define STREAM_NAME_MAX   32
#define STREAM_DEVICE_MAX 64

/* One device of a user: its position, the highest seq it acknowledged. */
struct device {
    char name[STREAM_DEVICE_MAX + 1]; /* "" is the user's version 1 position */
    int64_t acked;
    int64_t seen_at; /* Unix ms */
    /* Made before the user's devices were read: takes the read "" position unless the
     * table had it. */
    int provisional;
};

struct stream_session;

/* What the stream knows of one user: kept while a session of theirs is bound, and while
 * a job that names them is in flight. */
struct stream_user {
    struct device *devices; /* devices[0] is "" */
    size_t n_devices, cap_devices;
    int64_t acked_max; /* the highest position of a device other than "" */
    size_t n_sessions; /* sessions bound through the stream */
    size_t n_draining; /* of them, being sent their timeline */
    struct stream_session *sessions;
    struct stream_user *dirty_next; /* on the stream's list of users to write */
    unsigned jobs;                  /* jobs in flight naming the user */
    unsigned held;                  /* holders (stream_hold): posts between acceptance and push */
    unsigned loaded : 1;            /* the devices were read from chatd_devices */
    unsigned loading : 1;           /* that read is in flight */
    unsigned has_devices : 1;       /* a device other than "" exists (or a login just made one) */
    unsigned forgot : 1; /* devices were forgotten (max_devices): the table must be trimmed */
    unsigned on_dirty_list : 1; /* dirty_next is its link */
    UT_hash_handle hh;
    char name[]; /* allocated with it */
};

/* A push held for a draining session. */
struct held_push {
    json_t *msg;          /* referenced */
    int64_t seq;          /* 0: not a message (presence and the like) */
    char *receipt_sender; /* owned, or NULL */
};

/* A private message a session was sent, for its delivered receipt. */
struct receipt_entry {
    int64_t seq;
    char sender[STREAM_NAME_MAX + 1];
};

/* A message push queued to the session's output and not yet wholly written. */
struct unsent_entry {
    uint64_t end; /* s->out_added just after it was queued */
    int64_t seq;
};

enum stream_state {
    SS_REPLY,    /* bound, its login not answered yet: pushes are held */
    SS_LOADING,  /* the user's devices are being read: pushes are held */
    SS_DRAINING, /* being sent its timeline: pushes are held */
    SS_LIVE,     /* pushes go out at once */
};

struct stream_drain;

/* The stream's part of one logged-in session. */
struct stream_session {
    struct session *s;
    struct stream_user *u;
    struct stream_session *next; /* the user's other sessions */
    enum stream_state state;
    int ack;          /* logged in with "ack":true */
    char *device;     /* with ack: its device (owned; a session without ack keeps none) */
    int64_t since;    /* with ack: the login's since, or -1 */
    int64_t position; /* what it is sent after */
    int64_t sent_max; /* the highest seq it was sent */
    /* The last message posted when it was bound: its drain reads the timeline up to
     * there; what came later reaches it live (held while it drains). */
    int64_t ceiling;
    uint64_t login; /* which login of the session this is */
    struct held_push *held;
    size_t n_held, cap_held;
    int reread;                     /* held message pushes were dropped: read once more */
    struct stream_drain *drain;     /* while draining */
    struct receipt_entry *receipts; /* ring, with ack only */
    size_t receipts_head, n_receipts, cap_receipts; /* grown on demand */
    struct unsent_entry *unsent;                    /* ring: q[head, head + n) */
    size_t unsent_head, n_unsent, cap_unsent;
};

struct stream_stats {
    uint64_t drains;  /* session drains started */
    uint64_t drained; /* timeline messages pushed by drains */
    uint64_t drain_failures;
    uint64_t held_dropped; /* held message pushes dropped (read again from the timeline) */
    uint64_t live_dropped; /* held pushes without a row dropped (list full) */
    uint64_t held;         /* pushes held right now */
    uint64_t acks;         /* ack commands accepted */
    uint64_t receipts_delivered;
    uint64_t receipts_read;
    uint64_t positions_written; /* device rows written */
    uint64_t position_write_failures;
    uint64_t devices_forgotten; /* past max_devices */
    uint64_t unsent_rows;       /* timeline rows asked again for pushes never written */
    uint64_t prunes;            /* hourly prunes finished */
    uint64_t prune_failures;
    uint64_t pruned_messages;
    uint64_t pruned_timeline;
    uint64_t pruned_devices;
    uint64_t timeline_deleted_at_logout;
};

struct event;

struct stream {
    struct server *srv;
    /* The host's own record as a plugin named "chatd": what its jobs, its flush watches
     * and its command `ack` are tied to. */
    struct chatd_plugin self;
    struct stream_user *users; /* by name */
    struct stream_user *dirty; /* users whose positions wait to be written */
    struct event *write_timer; /* writes them, at most once a second */
    /* A position write is in flight: one at a time, so that a user's "" position, which
     * may go back at a logout, is never overwritten by an older write that ends later. */
    int writing;
    struct position_write *waiting, **waiting_tail; /* logout writes behind it */
    struct event *prune_timer;
    int pruning;
    /* The last message push formatted, kept for the next session or user it goes to
     * (a group message to 500 members is formatted once): by the message and its seq,
     * which no other message shares. The message is referenced, so that its address
     * cannot be reused by another copy of that seq (a drained one, "offline":true). */
    struct line_buffer line;
    json_t *line_msg;
    int64_t line_seq;
    struct stream_stats stats;
};

/* stream.c */
struct stream_user *stream_user(struct stream *st, const char *name, int create);
/* Free u when nothing needs it any more. */
void stream_user_release(struct stream *st, struct stream_user *u);
/* Queue one message push (or a non-message push, seq 0) to the session's output and
 * account for it: the highest seq sent, the user's "" position, the receipts ring, the
 * unsent ring. 0, or -1 when the session did not take it. */
int stream_send(struct stream *st, struct stream_session *ss, json_t *msg, int64_t seq,
                const char *receipt_sender);
/* The session is done draining: release its held pushes, skipping seqs already sent. */
void stream_go_live(struct stream *st, struct stream_session *ss);

/* The user's devices were read (ok) or could not be (then the sessions waiting for them
 * go live, sent nothing stored). */
void stream_sessions_loaded(struct stream *st, struct stream_user *u, int ok);

/* stream_drain.c */
void drain_start(struct stream *st, struct stream_session *ss);
/* The session ends: its drain stops (a job in flight frees it). */
void drain_abandon(struct stream_session *ss);
/* The session wrote some of its output: a drain waiting for room goes on. */
void drain_wrote(struct stream_session *ss);

/* devices.c */
/* Read u's devices (a job), then start every session of u waiting in SS_LOADING. */
void devices_load(struct stream *st, struct stream_user *u);
/* The session's device (made, at the session's starting position, when new). NULL out
 * of memory. */
struct device *devices_get(struct stream *st, struct stream_user *u, const char *name,
                           int64_t position);
/* u's positions changed: write them within a second. */
void devices_dirty(struct stream *st, struct stream_user *u);
/* u's last session ended: write its positions now, and delete its timeline rows below
 * all of them. */
void devices_logout(struct stream *st, struct stream_user *u);
void devices_free(struct stream *st);
int64_t stream_wall_ms(void);

/* ack.c */
int ack_register(struct stream *st);

/* delivery_schema.c: the descriptor of the host's pseudo-plugin "chatd", with the
 * migrations of its tables. */
extern const struct chatd_plugin_descriptor delivery_descriptor;

/* prune.c */
void prune_start(struct stream *st);
void prune_free(struct stream *st);

#endif
