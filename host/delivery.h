/* delivery.h - the read side of the host's delivery: one stream of messages per user.
 * Pushes go out at once, or wait in order while the user's stored messages (their
 * chatd_timeline rows, written by post.c) are being sent with "offline":true after
 * their next successful login. Loop thread only. */
#ifndef CHATD_HOST_DELIVERY_H
#define CHATD_HOST_DELIVERY_H

#include <chatd/plugin.h>
#include <stdint.h>

struct server;
struct evbuffer;
struct chatd_db;

/* Set up srv->delivery (after the worker pool exists). 0, or -1 out of memory. */
int delivery_new(struct server *srv);
/* Apply the host's own schema migrations (plugin name "chatd" in chatd_schema) on db, a
 * connection of the start-up; call before any plugin's. -1 with the reason in err. */
int delivery_migrate(struct server *srv, struct chatd_db *db, char *err, size_t errlen);
/* Fail what still waits to be stored (done gets CHATD_ESHUTDOWN) and free everything.
 * Call after pool_free and before the plugins are closed. */
void delivery_free(struct server *srv);

/* Push msg (borrowed) to the sessions of `user`, or hold it while their stored
 * messages are sent. Returns 1 when it went out or waits, 0 otherwise. */
size_t delivery_push(struct server *srv, const char *user, json_t *msg);

/* A request is about to bind a session to `user` (session_login, not already that
 * user): live pushes for the user wait from now until the request's reply. Returns the
 * generation to hand back to delivery_login_replied. */
uint64_t delivery_login_begin(struct server *srv, const char *user);
/* That request was answered (after its reply was queued): with success, the user's
 * stored messages are sent next; otherwise whatever waited goes out. */
void delivery_login_replied(struct server *srv, const char *user, uint64_t generation, int success);
/* The user's last session ended: a running drain stops (what it sent but did not
 * see written stays stored), and held messages stored with CHATD_DELIVER_STORE go back
 * into the inbox, after everything in it. */
void delivery_user_gone(struct server *srv, const char *user);

/* delivery_unsent.c: pushes delivered to a session but not yet written to its socket,
 * stored for the user's next login if the session ends first. */
struct user;
struct session;
/* Queue a formatted line (len bytes) of msg, a message given CHATD_DELIVER_STORE, to
 * every session of u that is not closing, keeping for each where the line ends.
 * Returns how many sessions took it. */
size_t unsent_push_line(struct server *srv, const struct user *u, const char *line, size_t len,
                        json_t *msg);
/* s wrote some of its output: forget the pushes now wholly written. */
void unsent_written(struct session *s);
/* s is cut off or freed: store every push it has not wholly written, in order, for the
 * user it was delivered to, and forget them. */
void unsent_store(struct session *s);

/* Append the delivery counters and gauges to /metrics. */
void delivery_render_metrics(struct server *srv, struct evbuffer *out);

#endif
