/* flush_watch.h - on_user_flushed (ABI 1.2): calling a plugin back once a user's queued
 * output has reached the network, instead of the plugin polling for it. */
#ifndef CHATD_HOST_FLUSH_WATCH_H
#define CHATD_HOST_FLUSH_WATCH_H

#include "server.h"

/* How long a watch waits when the plugin gives no time. */
#define FLUSH_WATCH_DEFAULT_MS 30000

int flush_watch_add(struct server *srv, struct chatd_plugin *p, const char *user,
                    uint32_t timeout_ms, chatd_flushed_fn fn, void *arg);
/* One of user's sessions has nothing left to write: call its watches with 0. */
void flush_watch_flushed(struct server *srv, const char *user);
/* User's last session ended: call its watches with CHATD_ECLOSED. */
void flush_watch_user_gone(struct server *srv, const char *user);
/* p is being retired or closed: call its watches with CHATD_ESHUTDOWN. */
void flush_watch_cancel_plugin(struct server *srv, struct chatd_plugin *p);
/* The server stops: drop every watch without calling it (plugins are closed next). */
void flush_watch_free_all(struct server *srv);

#endif
