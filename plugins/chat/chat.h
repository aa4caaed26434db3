/* chat.h - state shared by the files of the chat plugin: options, the users online on
 * this server (with what their presence and delivery need), the group cache, and the
 * helpers every command uses. Everything here lives on the loop thread; jobs copy
 * what they need into their own structs. */
#ifndef CHATD_PLUGIN_CHAT_H
#define CHATD_PLUGIN_CHAT_H

/* Built as a plugin for ABI 1.1 hosts: its tables predate the table-name rule. */
#define CHATD_PLUGIN_MIN_MINOR 1

#include "names.h"

#include <chatd/plugin.h>
#include <stddef.h>
#include <stdint.h>
#include <uthash.h>

#define CHAT_PASSWD_MAX  1024 /* bytes */
#define CHAT_DRAIN_BATCH 100  /* stored messages read per list and drain batch */

/* A group message position a member has been sent, kept in memory while the member is
 * online and written back when their last session ends. */
struct read_position {
    int64_t group_id;
    int64_t position;
    UT_hash_handle hh;
};

/* A push held back while stored messages drain; group messages carry their place in
 * the group's log, so the read position moves only once one is really sent. */
struct held_push {
    json_t *msg;
    int64_t group_id, group_msg_id; /* 0 for anything but group messages */
    int may_advance;                /* a group message that may move the read position */
};

/* A user with at least one session on this server. */
struct online_user {
    char *name;
    int64_t id;          /* users.id */
    uint64_t generation; /* distinguishes this time online from the next one */
    char **friends;      /* names, for presence */
    size_t n_friends;
    struct read_position *positions;
    /* While stored messages are being delivered, live pushes wait here so that nothing
     * overtakes an older stored message. */
    int draining;
    int drain_again;
    struct held_push *held;
    size_t n_held, cap_held;
    int64_t last_private; /* highest stored private message sent this time online */
    int positions_dirty;  /* read positions moved since they were last saved */
    /* Live group pushes may move read positions only once the stored backlog is out:
     * before that, a position past an unsent older message would skip it for good. */
    int caught_up;
    int drain_failures; /* drain attempts failed in a row */
    UT_hash_handle hh;
};

struct group_member {
    int64_t user_id;
    char *name;
};

/* A group whose members are known in memory (loaded on first use). */
struct group {
    char *name;
    int64_t id;
    struct group_member *members;
    size_t n_members, cap;
    UT_hash_handle hh;
};

/* Writes for a user still under way (removing delivered messages, saving read
 * positions). A drain for the user waits for them, or it would read what they are
 * about to change and deliver it again. */
struct pending_writes {
    char *name;
    int count;
    int drain_waiting;
    UT_hash_handle hh;
};

struct chat {
    const struct chatd_host *host;
    struct chatd_plugin *self;
    int64_t max_text;
    int64_t pw_ops, pw_mem_kib;
    int64_t max_groups_per_user, max_members_per_group, max_offline;
    int presence;                  /* tell online friends when a user comes and goes */
    int offline_delivery;          /* deliver stored messages after login */
    struct online_user *online;    /* by name */
    struct group *groups;          /* by name */
    struct pending_writes *writes; /* by user name */
    char boot[16];                 /* makes msg_id unique across restarts */
    uint64_t next_msg;
    uint64_t next_generation;
};

extern struct chat chat;

#define HOST (chat.host)

/* A new server-unique msg_id for a message accepted now. */
void chat_new_msg_id(char *out, size_t len);
/* Reply with `result` and a reason. */
void chat_refuse(struct chatd_request *req, const char *result, const char *reason);
/* The word to answer with for a failed job status (busy, internal). */
const char *chat_status_word(int status);
/* Submit a job for req, answering `busy`/`internal` itself on failure. Returns 0 when
 * submitted (done will run), -1 when answered here (the caller frees its arg). */
int chat_submit(struct chatd_request *req, const struct chatd_job *job, void *arg);
char *chat_strdup(const char *s);
/* Row callback for a query of one integer column: stores it in *(int64_t *)arg. */
int chat_read_int64(const struct chatd_value *cols, size_t ncols, void *arg);
/* Register commands[i] for every i whose enabled[i] is set. */
int chat_register_commands(const struct chatd_command *commands, const int *enabled, size_t n);

struct online_user *chat_online(const char *name);
/* The user who sent req, online here with their account loaded; or NULL once req has
 * been answered: `busy` while the account of a user logged in before a reload of this
 * plugin is still loading, `internal` when the user is not online here at all. */
struct online_user *chat_sender(struct chatd_request *req);
/* Deliver a push to every session of `u`, or hold it while stored messages drain.
 * Takes msg. Returns 1 when sent or held, 0 when no session took it. */
int chat_deliver(struct online_user *u, json_t *msg);
/* The same for a group message: group_id and group_msg_id place it in the group's log;
 * may_advance says whether sending it may move u's read position (see groups.c). */
int chat_deliver_group(struct online_user *u, json_t *msg, int64_t group_id, int64_t group_msg_id,
                       int may_advance);
/* The user's last session ended: keep what was held for them (private messages are
 * stored for the next login; group messages stay in the group's log). */
void chat_release_held(struct online_user *u);
/* Deliver what is stored for u (private messages and group backlog), oldest first,
 * then what was held meanwhile. */
void chat_drain(struct online_user *u);
/* Store a private message for `to`, who is not online here, and answer req (`offline`,
 * `user_not_exist`, `forbidden` for a full mailbox) once it is committed. */
void offline_store(struct chatd_request *req, const char *to, int64_t sender_id, const char *msg_id,
                   const json_t *text, int64_t ts);
/* Forget what is known of user's mailbox size: messages left it or came in another way. */
void offline_store_forget(const char *user);
/* Move the /metrics gauge of stored private messages by change. */
void offline_backlog_add(int64_t change);
/* Timer callback: count the stored private messages once, to start the gauge. */
void offline_backlog_count(void *arg);
/* Free what offline_store keeps (at shutdown). */
void offline_store_free(void);
/* Count a write for `user` that a later drain must wait for, and its end. */
void chat_write_begin(const char *user);
void chat_write_end(const char *user);
void chat_writes_free(void);
/* Remember that group message `id` of group `group_id` reached u. */
void chat_advance_position(struct online_user *u, int64_t group_id, int64_t id);

/* accounts.c */
/* Save the read positions of every online user whose positions moved (a timer calls
 * it, so that a crash resends at most that much). */
void accounts_save_positions(void *arg);
int accounts_init(int enable_register, int enable_login, int enable_logout);
void accounts_on_event(enum chatd_event event, chatd_session_id session, const char *user,
                       int first_or_last, void *arg);
void accounts_shutdown(void);

/* private_chat.c */
int private_chat_init(void);

/* friends.c */
int friends_init(void);
/* Record a new friendship in the online caches of both users. */
void friends_cache_add(const char *user, const char *friend_name);

/* groups.c */
int groups_init(int enable_create, int enable_join, int enable_leave, int enable_chat);
void groups_shutdown(void);

#endif
