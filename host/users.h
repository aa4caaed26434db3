/* users.h - which sessions are logged in as which user, and the login/logout events
 * plugins subscribe to. */
#ifndef CHATD_HOST_USERS_H
#define CHATD_HOST_USERS_H

#include "server.h"

/* Bind session s to user `name`, unbinding any earlier user first. Raises the events. */
int users_bind(struct server *srv, struct session *s, const char *name);
/* Unbind s if it is logged in, raising CHATD_EVENT_LOGOUT. */
void users_unbind(struct server *srv, struct session *s);
/* Unbind every session logged in as `name` except `keep` (a session id, possibly not
 * logged in or gone), raising CHATD_EVENT_LOGOUT for each (presence goes offline when
 * none is left). The sessions stay open. Returns how many were unbound. */
size_t users_unbind_others(struct server *srv, const char *name, chatd_session_id keep);
struct user *users_find(struct server *srv, const char *name);
/* Queue one formatted line (len bytes, '\n' included) to every session of user u.
 * Returns how many sessions took it. */
size_t users_push_line(struct server *srv, const struct user *u, const char *line, size_t len);
/* Serialise msg once (borrowed; its "id" member removed first) and queue it to every
 * session of user `name`. Returns how many sessions took it (0: none, or not online). */
size_t users_push(struct server *srv, const char *name, json_t *msg);
/* [cluster]: this node raises `name`'s change of presence for the cluster, where no
 * session's event told it (cluster_route.c: a node found dead, last sessions ending at
 * once, a change made while Redis was down): a LOGIN (online) or LOGOUT event with
 * session 0 and first_or_last set, and presence.changed. Not a logout while they are
 * online here. */
void users_raise_presence(struct server *srv, const char *name, int online);

int users_subscribe(struct server *srv, struct chatd_plugin *p, enum chatd_event event,
                    chatd_event_fn fn, void *arg);
void users_unsubscribe_plugin(struct server *srv, struct chatd_plugin *p);
/* Raise CHATD_EVENT_LOGIN to p alone for every session logged in now (first_or_last
 * on each user's first), so that a plugin started by a reload learns who is online. */
void users_replay_logins(struct server *srv, struct chatd_plugin *p);
void users_free_all(struct server *srv);

#endif
