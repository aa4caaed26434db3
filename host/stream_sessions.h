/* stream_sessions.h - how the rest of the host drives the read side of delivery version
 * 2 (stream.h is its seam with the write side): setting it up, binding sessions at
 * login with their device, ack and since, the login's answer that starts a session's
 * drain, sessions ending, output written, read marks and the metrics. Loop thread
 * only. */
#ifndef CHATD_HOST_STREAM_SESSIONS_H
#define CHATD_HOST_STREAM_SESSIONS_H

#include <chatd/plugin.h>
#include <stdint.h>

struct server;
struct session;
struct evbuffer;
struct chatd_db;

/* Set up srv->stream and register the host's command `ack`. 0, or -1 out of memory. */
int stream_new(struct server *srv);
/* Apply the host's own schema migrations (plugin name "chatd" in chatd_schema) on db, a
 * connection of the start-up; call before any plugin's. -1 with the reason in err. */
int stream_migrate(struct server *srv, struct chatd_db *db, char *err, size_t errlen);
/* Start the hourly prune (the pool runs). */
void stream_start(struct server *srv);
/* Free everything (after pool_free). */
void stream_free(struct server *srv);

/* What a login asks of the stream (docs/protocol.md, "Devices"). */
struct stream_login {
    int ack;            /* "ack":true */
    const char *device; /* with ack: its device ("default" when not given) */
    int64_t since;      /* with ack: "since", or -1 */
};

/* Read "device", "ack" and "since" of a login request. 0, or CHATD_EINVAL when one of
 * them breaks its rule (reason set). */
int stream_login_parse(const json_t *body, struct stream_login *out, char *reason, size_t len);
/* Session s (logged in as nobody) is about to be bound to `user` by a login: its pushes
 * are held from now until stream_login_replied. Returns the login's number (0 out of
 * memory: then s is sent only what comes live). */
uint64_t stream_login_bound(struct server *srv, struct session *s, const char *user,
                            const struct stream_login *lg);
/* That login was answered: with success the session is sent its timeline after its
 * position, then its held pushes; otherwise the held pushes go out. */
void stream_login_replied(struct server *srv, chatd_session_id session, uint64_t login,
                          int success);
/* s is being unbound from its user (logout, close), or its bind failed: pushes it never wrote get
 * timeline rows again; at the user's last session their positions are written. */
void stream_session_end(struct server *srv, struct session *s);
/* s wrote some of its output. */
void stream_session_wrote(struct session *s);

/* The host table's read_mark (see chatd/plugin.h). */
int stream_read_mark(struct chatd_request *req, const char *peer, int64_t msg_id,
                     chatd_read_done_fn done, void *arg);

void stream_render_metrics(struct server *srv, struct evbuffer *out);

#endif
