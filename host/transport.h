/* transport.h - how a session's bytes arrive and leave: plain TCP (transport_tcp.c),
 * TLS (transport_tls.c) or WebSocket over either (transport_ws.c). session.c frames what `read`
 * gives it and appends replies to the output of s->bev; the transport says where input comes from
 * and how output gets onto the network. Loop thread only. */
#ifndef CHATD_HOST_TRANSPORT_H
#define CHATD_HOST_TRANSPORT_H

#include <event2/bufferevent.h>
#include <chatd/plugin.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <sys/types.h>

struct server;
struct session;
struct evbuffer;
struct timeval;

struct transport {
    const char *name; /* for the log: "tcp", "tls" */
    /* Make s->read_ev (whose callback `on_input` session.c runs to read: EV_READ for
     * input or the end of it, EV_TIMEOUT when the session was idle too long) and, unless
     * the transport has output_new, s->bev (output, and input when the transport reads
     * through it) for the accepted socket fd, which the transport then owns. 0, or -1
     * with nothing made (fd closed). */
    int (*open)(struct session *s, evutil_socket_t fd, event_callback_fn on_input);
    /* For a transport whose bufferevent only holds output (plain TCP, with or without
     * an I/O thread): make one for s, with no callbacks (session.c sets them), or NULL
     * out of memory. session.c makes it when output comes and output.c frees it when
     * the output has stayed empty (an idle session holds none). NULL: s->bev lives as
     * long as the session. */
    struct bufferevent *(*output_new)(struct session *s);
    /* Extra bufferevent read callback (NULL: the bufferevent does not read). */
    bufferevent_data_cb on_bev_read;
    /* A bufferevent event for the transport; returns 1 when handled, 0 to leave it to
     * session.c's output handling (NULL: none). */
    int (*on_bev_event)(struct session *s, short what);
    /* Wait for input, with the idle limit (NULL: none); -1 when that fails. */
    int (*read_on)(struct session *s, const struct timeval *idle);
    void (*read_off)(struct session *s);
    /* recv(2) for the session: bytes read, 0 at the end of the stream, -1 with errno
     * (EAGAIN: nothing more for now). NULL: its I/O thread frames and parses. */
    ssize_t (*read)(struct session *s, void *buf, size_t len);
    /* End of a loop turn: put on the network what it takes of `out` now (what is left
     * goes out through the bufferevent's write event). 0, or -1 with errno. */
    int (*write)(struct session *s, struct evbuffer *out);
    /* The session is being freed (its events are off): a last word to the peer, if any,
     * and the socket closed when the transport owns it outside a bufferevent (NULL:
     * none). */
    void (*close)(struct session *s);
    /* Refusing the accepted socket fd over a limit, before any session (the caller then
     * closes it): the last words for the peer, `result` "busy" or "rate_limited" with
     * the wait and reason (NULL: the TCP protocol's error line). */
    void (*refuse)(evutil_socket_t fd, const char *result, int64_t retry_after_ms,
                   const char *reason);
    /* For a transport whose writes another thread does (transport_io.c): bytes handed
     * over and not yet written; reporting each write that makes progress (on) or not
     * (session_io_wrote gets them); and a slow reader's cut-off, dropping what was handed
     * over after the line being written (returns the bytes dropped). NULL: none. */
    size_t (*backlog)(const struct session *s);
    void (*watch_writes)(struct session *s, int on);
    size_t (*cut_after_line)(struct session *s);
    /* The new-connection rate limit is taken when the connection upgrades to
     * WebSocket, not at accept (web pages open several connections for their files). */
    int rate_at_upgrade;
};

/* For the transports that read through s->bev (transport_bev.c): read_off, read (its
 * input buffer; the end once s->stream_ended) and on_bev_read (wakes s->read_ev). */
void transport_bev_read_off(struct session *s);
ssize_t transport_bev_read(struct session *s, void *buf, size_t len);
void transport_bev_on_read(struct bufferevent *bev, void *arg);
/* The end of reading (EOF, or the read timeout) reported by s->bev: marks the stream
 * ended and wakes s->read_ev from a fresh callback (the bufferevent may not have
 * committed the bytes it read just before the end). 1 when `what` was that. */
int transport_bev_read_end(struct session *s, short what);
/* The OpenSSL error behind a TLS bufferevent's event, in reason (left as it is when
 * there is none); the bufferevent's error queue is emptied. */
void transport_tls_error(struct bufferevent *bev, char *reason, size_t cap);

/* Free the WebSocket connections still writing their last bytes (server_free). */
void transport_ws_free_lingering(struct server *srv);
/* The log lines of a WebSocket session disconnected by its keepalive (no pong) or for
 * not reading while it sends pings, on the loop or an I/O thread. */
void transport_ws_log_no_pong(const struct session *s);
void transport_ws_log_unread(const struct session *s);
/* A WebSocket session whose upgrade is answered goes on on an I/O thread: its socket
 * fd, its SSL (wss; NULL for ws) and the bytes read after the upgrade request, all of
 * which the call takes, whatever it returns. s->bev and s->ws are gone; s->read_ev is
 * replaced, and reading resumes if it was on. -1 when out of memory: the socket is
 * closed, and the caller closes the session. */
int transport_io_adopt_ws(struct session *s, evutil_socket_t fd, SSL *ssl, struct evbuffer *early);

/* What an I/O thread reports for a session (io_threads.c), on the loop thread: input
 * arrived or ended, output was written, a write or the TLS handshake failed (with
 * error), the TLS handshake is done. */
#define TRANSPORT_IO_INPUT     1u
#define TRANSPORT_IO_WROTE     2u
#define TRANSPORT_IO_FAILED    4u
#define TRANSPORT_IO_CONNECTED 8u
#define TRANSPORT_IO_NO_PONG   16u /* a WebSocket's keepalive gave up: close 1001 is sent */
#define TRANSPORT_IO_UNREAD    32u /* a WebSocket client pings and does not read: closed */
void transport_io_report(struct server *srv, chatd_session_id id, unsigned what, int error);

extern const struct transport transport_tcp;
extern const struct transport transport_tcp_io; /* plain TCP on an I/O thread */
extern const struct transport transport_tls;
extern const struct transport transport_tls_io; /* TLS on an I/O thread */
extern const struct transport transport_ws;     /* the [web] listener, plain */
extern const struct transport transport_wss;    /* the [web] listener with tls = yes */
extern const struct transport transport_ws_io;  /* ws, upgraded, on an I/O thread */
extern const struct transport transport_wss_io; /* wss, upgraded, on an I/O thread */

#endif
