/* transport_ws.c - the [web] listener's connections: HTTP until a WebSocket upgrade
 * (web_http.c: the handshake, static files), then RFC 6455 (ws_stream.c) under the
 * session, plain or over TLS. With I/O threads, the upgraded connection is handed to
 * one (transport_io.c) once the upgrade's answer is written; without, it stays here.
 *
 * s->bev is a filter bufferevent over the connection's own bufferevent (`raw`: a socket
 * or an OpenSSL one). Its input function turns the client's bytes into what the session
 * reads: each text message, checked to hold exactly one JSON value, followed by a
 * newline. Its output function turns each line the session writes into one text
 * message, and moves messages into `raw` only while that holds less than WS_WIRE_MAX,
 * so a slow reader's backlog stays in the session's output, where its limits see it.
 * session.c and output.c work on s->bev as on the TLS transport's. See
 * docs/architecture.md, "WebSocket and the web listener". */
#include "transport.h"

#include "framer.h"
#include "log.h"
#include "ratelimit.h"
#include "server.h"
#include "session.h"
#include "web_http.h"
#include "ws_codec.h"
#include "ws_stream.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <http_parser.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>

/* Static-file requests on one connection at most. */
#define HTTP_REQUESTS_MAX 100
/* How long a closing connection may take to write its close frame. */
#define LINGER_S 5

struct ws_conn {
    struct session *s;
    /* The connection's own bufferevent (a socket or an OpenSSL one), which does not own
     * the socket or the SSL: they are handed to an I/O thread after the upgrade. */
    struct bufferevent *raw;
    evutil_socket_t fd;
    SSL *ssl; /* wss: the connection's TLS, else NULL */
    int upgraded;
    int handing_over; /* upgraded, for an I/O thread once the answer is written */
    int http_closing; /* the last HTTP answer is being written */
    int http_waiting; /* the next request waits until the answer before it is written */
    unsigned requests;
    struct evbuffer_cb_entry *raw_out_cb; /* before the upgrade: the answers' progress */
    /* Before the upgrade: resumes the HTTP side (or hands the connection over); after
     * it: the keepalive's timer. */
    struct event *timer;
    /* Before the upgrade: the TLS handshake and each request head must be complete
     * within request_timeout of the connection or of the answer before (a fixed
     * deadline, not a time without bytes, which one byte at a time would reset). Until
     * a hand-over, the upgrade's answer too. */
    struct event *deadline;
    struct ws_stream *stream; /* after the upgrade, on the loop */
};

static struct evbuffer *raw_out(struct ws_conn *w)
{
    return bufferevent_get_output(w->raw);
}

static void http_close(struct ws_conn *w)
{
    w->http_closing = 1;
}

static enum bufferevent_filter_result http_step(struct ws_conn *w, struct evbuffer *src);

/* Before the upgrade: an answer written out resumes the requests behind it, ends the
 * connection or hands it over; from a fresh callback, not inside the buffer's. */
static void on_raw_output(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct ws_conn *w = arg;
    if (info->n_deleted && evbuffer_get_length(buf) == 0 &&
        (w->http_closing || w->http_waiting || w->handing_over))
        event_active(w->timer, EV_TIMEOUT, 0);
}

/* The end of the WebSocket: the session reads what is left and ends as at the end of a
 * TCP stream (its replies go nowhere any more). */
static void ws_end(struct ws_conn *w)
{
    w->s->stream_ended = 1;
    event_active(w->s->read_ev, EV_READ, 0);
}

static void arm_deadline(struct ws_conn *w)
{
    struct timeval request = {(time_t)w->s->server->cfg->web.request_timeout_s, 0};
    evtimer_add(w->deadline, &request);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct ws_conn *w = arg;
    session_close(w->s, "web: no request in time");
}

static void keepalive_wait(struct ws_conn *w, int64_t seconds)
{
    struct timeval wait = {(time_t)seconds, 0};
    evtimer_add(w->timer, &wait);
}

/* The upgrade's answer is in raw's output. With I/O threads the connection goes to one
 * once that is written (hand_over): until then nothing more is read here, and the
 * request deadline bounds the wait. */
static void upgrade(struct ws_conn *w)
{
    const struct config *cfg = w->s->server->cfg;
    if (w->s->server->io) {
        w->handing_over = 1;
        bufferevent_disable(w->raw, EV_READ);
        if (evbuffer_get_length(raw_out(w)) == 0)
            event_active(w->timer, EV_TIMEOUT, 0);
        return;
    }
    evbuffer_remove_cb_entry(raw_out(w), w->raw_out_cb);
    w->raw_out_cb = NULL;
    evtimer_del(w->deadline);
    w->stream = ws_stream_new((size_t)cfg->max_frame_bytes);
    if (!w->stream) {
        session_close(w->s, "out of memory");
        return;
    }
    w->upgraded = 1;
    keepalive_wait(w, cfg->web.ping_interval_s);
    log_debug("session %llu (%s): WebSocket open", (unsigned long long)w->s->id, w->s->peer);
}

/* A WebSocket counts against [limits] connections_per_address when it asks to open;
 * the connections that fetch the page's files do not. 1 when refused (429). */
static int refuse_over_rate(struct ws_conn *w)
{
    const char *reason = NULL;
    int64_t wait = ratelimit_connection_token(w->s->server, &w->s->source, &reason);
    if (wait == 0)
        return 0;
    web_http_unavailable(raw_out(w), 429, wait, reason);
    http_close(w);
    log_debug("session %llu (%s): WebSocket refused: %s", (unsigned long long)w->s->id, w->s->peer,
              reason);
    return 1;
}

/* Answer the requests in `src`, one at a time: the next waits until the answer before it
 * is written, so a client cannot pile up answers. */
static enum bufferevent_filter_result http_step(struct ws_conn *w, struct evbuffer *src)
{
    const struct config *cfg = w->s->server->cfg;
    while (!w->upgraded && !w->handing_over && !w->http_closing && !w->s->dead) {
        size_t len = evbuffer_get_length(src);
        if (len == 0)
            return BEV_NEED_MORE;
        if (evbuffer_get_length(raw_out(w)) > 0) {
            w->http_waiting = 1;
            return BEV_NEED_MORE;
        }
        w->http_waiting = 0;
        size_t n = len < WEB_HEAD_MAX ? len : WEB_HEAD_MAX;
        const char *data = (const char *)evbuffer_pullup(src, (ev_ssize_t)n);
        struct web_request req;
        enum web_parse st = data ? web_http_parse(data, n, &req) : WEB_PARSE_BAD;
        if (st == WEB_PARSE_NEED_MORE)
            return BEV_NEED_MORE;
        if (st != WEB_PARSE_READY) {
            log_debug("session %llu (%s): bad HTTP request", (unsigned long long)w->s->id,
                      w->s->peer);
            web_http_refuse(st, raw_out(w));
            http_close(w);
            break;
        }
        evbuffer_drain(src, req.head_len);
        w->requests++;
        if (web_http_is_websocket(&req) && refuse_over_rate(w))
            break;
        struct web_site site = {cfg->web.root, cfg->web.allowed_origins, w->ssl != NULL};
        enum web_action action = web_http_answer(&req, &site, raw_out(w));
        log_debug("session %llu (%s): %s %s", (unsigned long long)w->s->id, w->s->peer,
                  http_method_str((enum http_method)req.method), req.path);
        if (action == WEB_UPGRADE)
            upgrade(w);
        else if (action == WEB_CLOSE || w->requests >= HTTP_REQUESTS_MAX)
            http_close(w);
        else
            arm_deadline(w); /* the next request's time starts now */
    }
    if (w->http_closing)
        evbuffer_drain(src, evbuffer_get_length(src));
    return BEV_OK;
}

static enum bufferevent_filter_result filter_in(struct evbuffer *src, struct evbuffer *dst,
                                                ev_ssize_t limit, enum bufferevent_flush_mode mode,
                                                void *arg);
static void hand_over(struct ws_conn *w);

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct ws_conn *w = arg;
    struct session *s = w->s;
    if (w->handing_over) {
        if (evbuffer_get_length(raw_out(w)) == 0 && !s->dead)
            hand_over(w);
        return;
    }
    if (!w->upgraded) {
        struct evbuffer *in = bufferevent_get_input(s->bev);
        size_t before = evbuffer_get_length(in);
        if (w->http_closing && evbuffer_get_length(raw_out(w)) == 0)
            session_close(s, "HTTP answered");
        else if (w->http_waiting)
            filter_in(bufferevent_get_input(w->raw), in, -1, BEV_NORMAL, w);
        if (evbuffer_get_length(in) > before)
            event_active(s->read_ev, EV_READ, 0);
        return;
    }
    const struct config *cfg = s->server->cfg;
    switch (ws_stream_keepalive(w->stream, s->reading, raw_out(w))) {
    case WS_KEEPALIVE_DEAD:
        transport_ws_log_no_pong(s);
        session_close(s, "no pong");
        break;
    case WS_KEEPALIVE_PINGED:
    case WS_KEEPALIVE_WAIT:
        keepalive_wait(w, cfg->web.pong_timeout_s);
        break;
    }
}

static enum bufferevent_filter_result filter_in(struct evbuffer *src, struct evbuffer *dst,
                                                ev_ssize_t limit, enum bufferevent_flush_mode mode,
                                                void *arg)
{
    (void)limit;
    (void)mode;
    struct ws_conn *w = arg;
    if (!w->upgraded) {
        enum bufferevent_filter_result rc = http_step(w, src);
        /* Handing over: what follows the request is the thread's (BEV_OK would have the
         * filter call again at once, for as long as src holds bytes). */
        if (w->handing_over)
            return BEV_NEED_MORE;
        if (!w->upgraded)
            return rc;
    }
    if (evbuffer_get_length(src) == 0)
        return BEV_NEED_MORE;
    unsigned seen = ws_stream_input(w->stream, src, dst, raw_out(w));
    if (seen & WS_STREAM_PONG)
        keepalive_wait(w, w->s->server->cfg->web.ping_interval_s);
    if (seen & WS_STREAM_UNREAD)
        transport_ws_log_unread(w->s);
    if (seen & WS_STREAM_ENDED)
        ws_end(w);
    return BEV_OK;
}

static enum bufferevent_filter_result filter_out(struct evbuffer *src, struct evbuffer *dst,
                                                 ev_ssize_t limit, enum bufferevent_flush_mode mode,
                                                 void *arg)
{
    (void)limit;
    (void)mode;
    struct ws_conn *w = arg;
    if (!w->stream) {
        /* Before the upgrade the session has nobody to talk JSON to (its login
         * deadline's `timeout`, say): dropped. */
        evbuffer_drain(src, evbuffer_get_length(src));
        return BEV_OK;
    }
    return ws_stream_send_lines(w->stream, src, dst, 0) > 0 ? BEV_OK : BEV_NEED_MORE;
}

void transport_ws_log_no_pong(const struct session *s)
{
    log_info("session %llu (%s): no WebSocket pong within %llds, disconnected",
             (unsigned long long)s->id, s->peer, (long long)s->server->cfg->web.pong_timeout_s);
}

void transport_ws_log_unread(const struct session *s)
{
    log_info("session %llu (%s): WebSocket output not read (pings keep coming), disconnected",
             (unsigned long long)s->id, s->peer);
}

/* raw does not own the socket and the SSL, which are closed here. Its free may finish
 * later (while the filter still holds it, until the filter's own free has finished), so
 * its events come off the socket first: nothing of raw's waits on a closed descriptor,
 * or on one the next connection is given. */
static void raw_free(struct bufferevent *raw, SSL *ssl, evutil_socket_t fd)
{
    bufferevent_disable(raw, EV_READ | EV_WRITE);
    bufferevent_free(raw);
    if (ssl)
        SSL_free(ssl);
    evutil_closesocket(fd);
}

static int ws_open_common(struct session *s, evutil_socket_t fd, event_callback_fn on_input,
                          int tls)
{
    struct server *srv = s->server;
    struct ws_conn *w = calloc(1, sizeof(*w));
    SSL *ssl = w && tls && srv->tls_ctx ? SSL_new(srv->tls_ctx) : NULL;
    if (w && (!tls || ssl))
        w->raw =
            tls ? bufferevent_openssl_socket_new(srv->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, 0)
                : bufferevent_socket_new(srv->base, fd, 0);
    if (!w || !w->raw) {
        if (ssl)
            SSL_free(ssl);
        evutil_closesocket(fd);
        free(w);
        return -1;
    }
    w->s = s;
    w->fd = fd;
    w->ssl = ssl;
    if (tls)
        bufferevent_openssl_set_allow_dirty_shutdown(w->raw, 1);
    s->bev = bufferevent_filter_new(w->raw, filter_in, filter_out, 0, NULL, w);
    s->read_ev = s->bev ? event_new(srv->base, -1, 0, on_input, s) : NULL;
    w->timer = s->read_ev ? evtimer_new(srv->base, on_timer, w) : NULL;
    w->deadline = w->timer ? evtimer_new(srv->base, on_deadline, w) : NULL;
    w->raw_out_cb = w->deadline ? evbuffer_add_cb(raw_out(w), on_raw_output, w) : NULL;
    if (!w->raw_out_cb) {
        if (w->deadline)
            event_free(w->deadline);
        if (w->timer)
            event_free(w->timer);
        if (s->read_ev)
            event_free(s->read_ev);
        if (s->bev)
            bufferevent_free(s->bev);
        raw_free(w->raw, ssl, fd);
        s->bev = NULL;
        s->read_ev = NULL;
        free(w);
        return -1;
    }
    bufferevent_setwatermark(w->raw, EV_WRITE, 0, WS_WIRE_MAX);
    s->ws = w;
    arm_deadline(w);
    return 0;
}

static int ws_open(struct session *s, evutil_socket_t fd, event_callback_fn on_input)
{
    return ws_open_common(s, fd, on_input, 0);
}

static int wss_open(struct session *s, evutil_socket_t fd, event_callback_fn on_input)
{
    return ws_open_common(s, fd, on_input, 1);
}

/* Until the hand-over the session waits: reading is taken up by its new transport. */
static int ws_read_on(struct session *s, const struct timeval *idle)
{
    const struct config *cfg = s->server->cfg;
    struct timeval idle_limit = {(time_t)cfg->idle_timeout_s, 0};
    if (s->ws->handing_over)
        return 0;
    bufferevent_set_timeouts(s->bev, idle, cfg->idle_timeout_s > 0 ? &idle_limit : NULL);
    return bufferevent_enable(s->bev, EV_READ);
}

/* End of a loop turn: messages into the connection's bufferevent, which writes them. */
static int ws_write(struct session *s, struct evbuffer *out)
{
    struct ws_conn *w = s->ws;
    if (!w->stream)
        evbuffer_drain(out, evbuffer_get_length(out));
    else if (evbuffer_get_length(raw_out(w)) < WS_WIRE_MAX)
        ws_stream_send_lines(w->stream, out, raw_out(w), 0);
    return 0;
}

static int ws_on_bev_event(struct session *s, short what)
{
    struct ws_conn *w = s->ws;
    if (what & BEV_EVENT_CONNECTED)
        return 1; /* TLS: the handshake is done */
    /* Before the upgrade the request deadline (w->deadline) bounds time, not the
     * bufferevent: only an error or the end comes here. */
    if (!w->upgraded && (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF))) {
        if (w->ssl && (what & BEV_EVENT_ERROR)) {
            char reason[256] = "connection closed";
            transport_tls_error(w->raw, reason, sizeof(reason));
            log_info("web: TLS with %s failed: %s", s->peer, reason);
        }
        session_close(s, "web: connection ended");
        return 1;
    }
    return transport_bev_read_end(s, what);
}

/* The loop's part of the connection, freed; the socket and SSL stay open. */
static void loop_part_free(struct session *s)
{
    struct ws_conn *w = s->ws;
    if (w->raw_out_cb)
        evbuffer_remove_cb_entry(raw_out(w), w->raw_out_cb);
    event_free(w->timer);
    event_free(w->deadline);
    ws_stream_free(w->stream);
    free(w);
    s->ws = NULL;
}

/* The upgrade's answer is written: the connection goes on on an I/O thread, with the
 * bytes that came after the request (the first frames) and, for wss, its SSL in the
 * state the handshake left it. What the session wrote meanwhile had nobody to go to,
 * as before any upgrade. */
static void hand_over(struct ws_conn *w)
{
    struct session *s = w->s;
    struct evbuffer *early = evbuffer_new();
    if (!early || evbuffer_add_buffer(early, bufferevent_get_input(w->raw)) < 0) {
        if (early)
            evbuffer_free(early);
        session_close(s, "out of memory");
        return;
    }
    struct bufferevent *raw = w->raw;
    SSL *ssl = w->ssl;
    evutil_socket_t fd = w->fd;
    transport_bev_read_off(s);
    loop_part_free(s);
    bufferevent_free(s->bev);
    s->bev = NULL;
    bufferevent_free(raw);
    if (transport_io_adopt_ws(s, fd, ssl, early) < 0) {
        session_close(s, "out of memory");
        return;
    }
    log_debug("session %llu (%s): WebSocket open, on an I/O thread", (unsigned long long)s->id,
              s->peer);
}

static void linger_free(struct bufferevent *raw)
{
    SSL *ssl = bufferevent_openssl_get_ssl(raw);
    if (ssl && SSL_is_init_finished(ssl))
        SSL_shutdown(ssl);
    ERR_clear_error();
    raw_free(raw, ssl, bufferevent_getfd(raw));
}

/* A connection whose session is gone, writing its last bytes; on the server's list so
 * that one still lingering when the server is freed is freed with it. */
struct ws_linger {
    struct bufferevent *raw;
    struct ws_linger *next, **prev;
};

static void linger_end(struct ws_linger *l)
{
    *l->prev = l->next;
    if (l->next)
        l->next->prev = l->prev;
    linger_free(l->raw);
    free(l);
}

static void on_linger_written(struct bufferevent *raw, void *arg)
{
    (void)raw;
    linger_end(arg);
}

static void on_linger_event(struct bufferevent *raw, short what, void *arg)
{
    (void)raw;
    (void)what;
    linger_end(arg);
}

void transport_ws_free_lingering(struct server *srv)
{
    while (srv->ws_lingering)
        linger_end(srv->ws_lingering);
}

/* The session is freed: its last messages and a close frame still go out from the
 * connection's own bufferevent, which lives on until they are written (at most
 * LINGER_S), without the session. */
static void ws_close(struct session *s)
{
    struct ws_conn *w = s->ws;
    if (w->stream) {
        uint16_t code = s->server->stopping ? WS_CLOSE_GOING_AWAY : WS_CLOSE_NORMAL;
        ws_stream_send_lines(w->stream, bufferevent_get_output(s->bev), raw_out(w), 1);
        ws_stream_close(w->stream, code, NULL, raw_out(w));
    }
    struct bufferevent *raw = w->raw;
    loop_part_free(s);
    bufferevent_disable(raw, EV_READ);
    struct evbuffer *out = bufferevent_get_output(raw);
    if (s->server->stopping && evbuffer_get_length(out) > 0 && !bufferevent_openssl_get_ssl(raw)) {
        /* Stopping: the loop ends soon and nothing may linger past it; one try. */
        evbuffer_unfreeze(out, 1);
        evbuffer_write(out, bufferevent_getfd(raw));
    }
    struct ws_linger *l = NULL;
    if (evbuffer_get_length(out) == 0 || s->server->stopping || !(l = calloc(1, sizeof(*l)))) {
        linger_free(raw);
        return;
    }
    struct server *srv = s->server;
    *l = (struct ws_linger){raw, srv->ws_lingering, &srv->ws_lingering};
    if (l->next)
        l->next->prev = &l->next;
    srv->ws_lingering = l;
    struct timeval linger = {LINGER_S, 0};
    bufferevent_setcb(raw, NULL, on_linger_written, on_linger_event, l);
    bufferevent_setwatermark(raw, EV_WRITE, 0, 0);
    bufferevent_set_timeouts(raw, NULL, &linger);
    bufferevent_enable(raw, EV_WRITE);
}

/* Before the TLS handshake there is nobody to tell: the connection just closes. */
static void wss_refuse(evutil_socket_t fd, const char *result, int64_t retry_after_ms,
                       const char *reason)
{
    (void)fd;
    (void)result;
    (void)retry_after_ms;
    (void)reason;
}

/* An HTTP answer a browser understands, written with the socket's first bytes. */
static void ws_refuse(evutil_socket_t fd, const char *result, int64_t retry_after_ms,
                      const char *reason)
{
    struct evbuffer *answer = evbuffer_new();
    if (!answer)
        return;
    web_http_unavailable(answer, strcmp(result, "busy") == 0 ? 503 : 429, retry_after_ms, reason);
    evbuffer_write(answer, fd);
    evbuffer_free(answer);
}

const struct transport transport_ws = {
    .name = "ws",
    .open = ws_open,
    .on_bev_read = transport_bev_on_read,
    .on_bev_event = ws_on_bev_event,
    .read_on = ws_read_on,
    .read_off = transport_bev_read_off,
    .read = transport_bev_read,
    .write = ws_write,
    .close = ws_close,
    .refuse = ws_refuse,
    .rate_at_upgrade = 1,
};

const struct transport transport_wss = {
    .name = "wss",
    .open = wss_open,
    .on_bev_read = transport_bev_on_read,
    .on_bev_event = ws_on_bev_event,
    .read_on = ws_read_on,
    .read_off = transport_bev_read_off,
    .read = transport_bev_read,
    .write = ws_write,
    .close = ws_close,
    .refuse = wss_refuse,
    .rate_at_upgrade = 1,
};
