/* transport_io.c - TCP, TLS and upgraded WebSocket sessions whose system calls, TLS
 * handshake and records, WebSocket frames, framing and parsing an I/O thread does (io_threads.c):
 * the session takes the frames its thread parsed for it (no `read`: session.c asks io_conn_next)
 * and hands its output to the thread at the end of each loop turn. s->bev has no socket: it holds
 * the output not yet handed over and carries the write and flush timeouts as timers, so session.c's
 * output rules stay as they are; s->read_ev has no socket either: it carries the idle timeout (from
 * the end of the TLS handshake, which has its own deadline on the thread) and is made active when
 * the thread reports input. */
#include "transport.h"

#include "io_threads.h"
#include "log.h"
#include "server.h"
#include "session.h"

#include <errno.h>
#include <event2/buffer.h>
#include <string.h>

static int io_open_with(struct session *s, evutil_socket_t fd, event_callback_fn on_input,
                        SSL_CTX *tls)
{
    s->read_ev = event_new(s->server->base, -1, EV_PERSIST, on_input, s);
    s->io = s->read_ev ? io_conn_open(s->server, fd, s->id, tls) : NULL;
    if (s->io)
        return 0;
    if (s->read_ev)
        event_free(s->read_ev);
    s->read_ev = NULL;
    evutil_closesocket(fd);
    return -1;
}

static int tcp_open(struct session *s, evutil_socket_t fd, event_callback_fn on_input)
{
    return io_open_with(s, fd, on_input, NULL);
}

/* New sessions take the context of the last reload (SSL_new holds a reference). */
static int tls_open(struct session *s, evutil_socket_t fd, event_callback_fn on_input)
{
    if (!s->server->tls_ctx) {
        evutil_closesocket(fd);
        return -1;
    }
    s->handshaking = 1;
    return io_open_with(s, fd, on_input, s->server->tls_ctx);
}

/* No socket: it holds the output not yet handed over, and the timeouts. */
static struct bufferevent *io_output_new(struct session *s)
{
    return bufferevent_socket_new(s->server->base, -1, 0);
}

/* The persistent read event re-arms its idle timeout each time it runs, as the plain
 * transport's socket event does. */
/* s->io is NULL only in a WebSocket session whose hand-over ran out of memory, which is
 * closing: nothing is read or written then. */
static int io_read_on(struct session *s, const struct timeval *idle)
{
    if (!s->io)
        return -1;
    if (event_add(s->read_ev, s->handshaking ? NULL : idle) < 0)
        return -1;
    if (io_conn_want_input(s->io, 1))
        event_active(s->read_ev, EV_READ, 0);
    return 0;
}

static void io_read_off(struct session *s)
{
    event_del(s->read_ev);
    if (s->io)
        io_conn_want_input(s->io, 0);
}

static int io_write(struct session *s, struct evbuffer *out)
{
    /* The socket bufferevent keeps its output's front frozen (transport_tcp.c). */
    if (!s->io) {
        errno = EPIPE;
        return -1;
    }
    evbuffer_unfreeze(out, 1);
    int rc = io_conn_write(s->io, out);
    int error = errno;
    evbuffer_freeze(out, 1);
    errno = error;
    return rc;
}

static void io_close(struct session *s)
{
    if (s->io)
        io_conn_release(s->io, s->server->stopping);
    s->io = NULL;
}

static size_t io_backlog(const struct session *s)
{
    return s->io ? io_conn_backlog(s->io) : 0;
}

static void io_watch_writes(struct session *s, int on)
{
    if (s->io)
        io_conn_watch_writes(s->io, on);
}

static size_t io_cut_after_line(struct session *s)
{
    return s->io ? io_conn_cut_after_line(s->io) : 0;
}

static void tls_established(struct session *s)
{
    const char *version, *cipher;
    io_conn_tls_names(s->io, &version, &cipher);
    log_debug("session %llu (%s): %s established, %s", (unsigned long long)s->id, s->peer, version,
              cipher);
    s->handshaking = 0;
    session_reading_restart(s);
}

int transport_io_adopt_ws(struct session *s, evutil_socket_t fd, SSL *ssl, struct evbuffer *early)
{
    struct event *read_ev =
        event_new(s->server->base, -1, EV_PERSIST, event_get_callback(s->read_ev), s);
    s->transport = ssl ? &transport_wss_io : &transport_ws_io;
    s->io = read_ev ? io_conn_open_ws(s->server, fd, s->id, ssl, early) : NULL;
    if (!s->io) {
        if (read_ev)
            event_free(read_ev);
        return -1;
    }
    event_free(s->read_ev);
    s->read_ev = read_ev;
    session_reading_restart(s);
    return 0;
}

void transport_io_report(struct server *srv, chatd_session_id id, unsigned what, int error)
{
    struct session *s = session_find(srv, id);
    if (!s)
        return; /* gone meanwhile */
    if (what & TRANSPORT_IO_CONNECTED)
        tls_established(s);
    if (what & TRANSPORT_IO_FAILED) {
        char why[160];
        io_conn_error_text(s->io, error, why, sizeof(why));
        if (s->handshaking) {
            log_info("TLS handshake with %s failed: %s", s->peer, why);
            session_close(s, "TLS handshake failed");
        } else {
            session_close(s, why);
        }
        return;
    }
    if (what & TRANSPORT_IO_NO_PONG) {
        transport_ws_log_no_pong(s);
        session_close(s, "no pong");
        return;
    }
    if (what & TRANSPORT_IO_UNREAD)
        transport_ws_log_unread(s);
    if (what & TRANSPORT_IO_WROTE)
        session_io_wrote(s);
    if ((what & TRANSPORT_IO_INPUT) && s->reading)
        event_active(s->read_ev, EV_READ, 0);
}

/* Every transport here does its I/O on a thread the same way; only how a session starts
 * differs (a WebSocket's is handed over by transport_ws.c, without an open). */
#define IO_TRANSPORT(transport_name, open_fn)                                                      \
    {                                                                                              \
        .name = transport_name, .open = open_fn, .output_new = io_output_new,                      \
        .read_on = io_read_on, .read_off = io_read_off, .write = io_write, .close = io_close,      \
        .backlog = io_backlog, .watch_writes = io_watch_writes,                                    \
        .cut_after_line = io_cut_after_line,                                                       \
    }

const struct transport transport_tcp_io = IO_TRANSPORT("tcp", tcp_open);
const struct transport transport_tls_io = IO_TRANSPORT("tls", tls_open);
/* The upgraded WebSocket sessions: their thread does the frames, the keepalive and the
 * close frame. */
const struct transport transport_ws_io = IO_TRANSPORT("ws", NULL);
const struct transport transport_wss_io = IO_TRANSPORT("wss", NULL);
