/* friends.h - the friends plugin's instance and the parts its files share. */
#ifndef CHATD_PLUGIN_FRIENDS_H
#define CHATD_PLUGIN_FRIENDS_H

#include "common.h"

#include <chatd/plugin.h>
#include <stdint.h>
#include <uthash.h>

struct login_wait;

/* A user with at least one session, from their first LOGIN event to their last LOGOUT,
 * with their friends' names (read by a job, kept in step by add_friend) for presence
 * and for "fri" in login_reply. */
struct online_user {
    char name[CHAT_NAME_MAX + 1];
    uint64_t generation; /* tells this time online from the next */
    char (*friends)[CHAT_NAME_MAX + 1];
    size_t n_friends, cap_friends;
    int loaded, loading;
    /* The session of the first LOGIN: its user.login hook announces the user online.
     * (A LOGIN replayed to a reloaded instance gets no hook: nothing is announced.) */
    chatd_session_id announce;
    struct login_wait *waiting; /* user.login hooks deferred until the list is read */
    UT_hash_handle hh;
};

struct friends {
    const struct chatd_host *host;
    struct chatd_plugin *self;
    int presence;               /* tell online friends when a user comes and goes */
    struct online_user *online; /* by name */
    uint64_t next_generation;
};

/* schema.c */
extern const struct chatd_migration friends_migrations[];

/* list.c */
/* Worker: the friends of `user`, by name, into *out (rows of one column). */
int friends_query(const struct friends *f, struct chatd_db *db, const char *user,
                  struct chatd_rows **out);
void friends_handle_list(struct chatd_request *req, const json_t *body, void *arg);

/* add_friend.c */
void friends_handle_add(struct chatd_request *req, const json_t *body, void *arg);

/* online.c */
void friends_on_event(enum chatd_event event, chatd_session_id session, const char *user,
                      int first_or_last, void *arg);
int friends_on_login(struct chatd_hook_call *call, json_t *payload, void *arg);
/* Record a new friendship in the online entries of both users. */
void friends_online_add(struct friends *f, const char *user, const char *friend_name);
/* Forget every online user (shutdown). */
void friends_online_free(struct friends *f);

#endif
