/* session.h - one client connection (session.c): accepting it, reading frames off its
 * transport, sending replies and pushes, and closing it. Loop thread only. */
#ifndef CHATD_HOST_SESSION_H
#define CHATD_HOST_SESSION_H

#include <chatd/plugin.h>
#include <event2/util.h>
#include <stddef.h>

struct server;
struct session;
struct sockaddr;
struct transport;

/* "address:port" or "[v6-address]:port" of addr, for the log. */
void session_describe_peer(const struct sockaddr *addr, char *out, size_t len);
/* When chatd is stopping or has max_connections open (sessions, and connections
 * waiting for their PROXY header): refuse fd with a `busy` (the transport's refusal) and return 1;
 * else 0. */
int session_refuse_if_full(struct server *srv, const struct transport *transport,
                           evutil_socket_t fd, const char *peer);
/* A connection accepted on a listener whose sessions speak `transport`; addr is the
 * client's (from the PROXY header on a PROXY listener). */
void session_accept(struct server *srv, const struct transport *transport, evutil_socket_t fd,
                    const struct sockaddr *addr, int socklen);
struct session *session_find(struct server *srv, chatd_session_id id);
/* Send one JSON object as one line. Returns CHATD_ECLOSED for a dead session, and
 * disconnects a slow reader whose unsent backlog passes the limit. Does not take obj. */
int session_send(struct session *s, const json_t *obj);
/* Serialise obj once into the server's scratch buffer as one line (for sending the same
 * push to many sessions); returns its length, 0 on failure. */
size_t session_format_line(struct server *srv, const json_t *obj);
/* Queue an already formatted line; same checks as session_send. */
int session_send_line(struct session *s, const char *line, size_t len);
/* Send a generic error {"cmd":"error","result":word,...}; `id` may be NULL. */
void session_send_error(struct session *s, const char *word, json_t *id, const char *request,
                        const char *reason);
/* Stop reading, flush what is queued, then close. */
void session_close_after_flush(struct session *s, const char *why);
/* Close now (the actual free happens from a fresh loop callback). */
void session_close(struct session *s, const char *why);
/* The session's request finished: read the next frame. */
void session_request_done(struct server *srv, chatd_session_id id);
/* Some of s's output has been written (or none could be): arm or disarm the write
 * event for what is left, and resume requests paused for output room. */
void session_wrote(struct session *s);
/* Start the idle timeout again if s is reading (its TLS handshake, which has a
 * deadline of its own, is done). */
void session_reading_restart(struct session *s);
/* An I/O thread wrote some of s's output (transport_io.c). */
void session_io_wrote(struct session *s);
/* Output queued and not yet written: in s->bev, and handed to an I/O thread. */
size_t session_output_pending(const struct session *s);
/* s has queued no output since the sweep before last (output.c): unless it is waiting
 * for its output after all, free what an idle session does not need, made again when
 * needed: a bufferevent that only holds output (transport.h, output_new) and, with no
 * request in flight, the hang-up watch. */
void session_shed_idle(struct session *s);
void session_free_all(struct server *srv);
/* Free the sessions queued by session_close (the reaper event's work). */
void session_reap(struct server *srv);
/* Stopping: close every session without a request in flight once flushed. */
void session_begin_stop(struct server *srv);

#endif
