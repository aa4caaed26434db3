/* proxy_accept.c - connections waiting for their PROXY header (proxy_accept.h).
 *
 * The header is read off the socket without taking a byte past it: each read first
 * peeks at what is there, and takes (recv) only what the parser says is header. So the
 * session, or the TLS handshake, starts exactly where the client's own bytes do, and
 * a header that comes in pieces costs no busy loop (what was peeked is taken). */
#include "proxy_accept.h"

#include "cidr.h"
#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "proxy_header.h"
#include "server.h"
#include "session.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* At most this many warnings per window; the rest are counted, and said in one line
 * when the next window begins. */
#define LOG_BURST     10
#define LOG_WINDOW_NS (10 * (int64_t)1000000000)
/* The header's deadline when both frame_timeout and login_timeout are off. */
#define DEFAULT_DEADLINE_S 10

struct proxy_wait {
    struct server *srv;
    const struct transport *transport;
    unsigned versions;
    evutil_socket_t fd;
    struct sockaddr_storage peer; /* the proxy's address */
    socklen_t peer_len;
    char peer_text[64];
    struct event *ev;    /* readable, or the deadline passed */
    int64_t deadline_ns; /* the whole header by then, however it trickles in */
    size_t have;         /* header bytes taken so far */
    struct proxy_wait *prev, *next;
    unsigned char buf[PROXY_HEADER_MAX];
};

static const char *const refusal_names[PROXY_REFUSALS] = {"untrusted_source", "malformed",
                                                          "truncated", "timeout"};

/* A warning, unless this window has had its share. */
static void warn(struct server *srv, const char *fmt, ...) CHATD_PRINTF(2, 3);
static void warn(struct server *srv, const char *fmt, ...)
{
    struct proxy_waits *p = &srv->proxy;
    int64_t now = now_ns();
    if (now - p->log_window_ns >= LOG_WINDOW_NS) {
        if (p->unlogged)
            log_warn("%llu more connections refused on PROXY listeners in the last %llds were "
                     "not logged (chatd_proxy_refused_total counts them all)",
                     (unsigned long long)p->unlogged, (long long)(LOG_WINDOW_NS / 1000000000));
        p->log_window_ns = now;
        p->logged = 0;
        p->unlogged = 0;
    }
    if (p->logged >= LOG_BURST) {
        p->unlogged++;
        return;
    }
    p->logged++;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    log_warn("%s", line);
}

static void unlink_wait(struct proxy_wait *w)
{
    struct proxy_waits *p = &w->srv->proxy;
    if (w->prev)
        w->prev->next = w->next;
    else
        p->list = w->next;
    if (w->next)
        w->next->prev = w->prev;
    p->n--;
    event_free(w->ev);
}

/* Count and (within the window's share) log a refusal of the connection from peer. */
static void note_refusal(struct server *srv, enum proxy_refusal why, const char *peer,
                         const char *reason)
{
    srv->proxy.refused[why]++;
    warn(srv, "refused %s on a PROXY listener: %s", peer, reason);
}

static void close_wait(struct proxy_wait *w)
{
    unlink_wait(w);
    evutil_closesocket(w->fd);
    free(w);
}

/* Close the connection before it became a session. */
static void refuse(struct proxy_wait *w, enum proxy_refusal why, const char *reason)
{
    note_refusal(w->srv, why, w->peer_text, reason);
    close_wait(w);
}

/* The header is taken: the session begins, as from the client it names. */
static void hand_over(struct proxy_wait *w, const struct proxy_header *h)
{
    struct server *srv = w->srv;
    const struct sockaddr *addr = (const struct sockaddr *)&w->peer;
    if (h->has_source)
        addr = (const struct sockaddr *)&h->source;
    srv->proxy.headers++;
    if (log_level() >= CHATD_LOG_DEBUG) {
        char client[64];
        session_describe_peer(addr, client, sizeof(client));
        log_debug("PROXY v%d header from %s: the client is %s%s", h->version, w->peer_text, client,
                  h->has_source ? "" : " (the proxy itself)");
    }
    unlink_wait(w);
    session_accept(srv, w->transport, w->fd, addr, h->has_source ? h->source_len : w->peer_len);
    free(w);
}

/* Take n bytes the last peek saw (they are in the socket): 0, or -1. */
static int take(struct proxy_wait *w, size_t n)
{
    ssize_t got = recv(w->fd, w->buf + w->have, n, 0);
    if (got != (ssize_t)n)
        return -1;
    w->have += n;
    return 0;
}

/* Wait for more of the header until its deadline: 0, or -1 (refused). */
static int wait_more(struct proxy_wait *w)
{
    int64_t left_us = (w->deadline_ns - now_ns()) / 1000;
    struct timeval tv = {(time_t)(left_us / 1000000), (suseconds_t)(left_us % 1000000)};
    if (left_us <= 0) {
        refuse(w, PROXY_REFUSED_TIMEOUT, "no whole PROXY header in time");
        return -1;
    }
    if (event_add(w->ev, &tv) < 0) {
        refuse(w, PROXY_REFUSED_TRUNCATED, "cannot wait for the rest of its PROXY header");
        return -1;
    }
    return 0;
}

static void on_header_bytes(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_wait *w = arg;
    if (what & EV_TIMEOUT) {
        refuse(w, PROXY_REFUSED_TIMEOUT, "no whole PROXY header in time");
        return;
    }
    ssize_t n = recv(fd, w->buf + w->have, sizeof(w->buf) - w->have, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        wait_more(w);
        return;
    }
    if (n == 0 && w->have == 0) {
        /* Closed without a byte, as a port probe does: counted, but no warning. */
        log_debug("%s closed its connection to a PROXY listener without a byte", w->peer_text);
        w->srv->proxy.refused[PROXY_REFUSED_TRUNCATED]++;
        close_wait(w);
        return;
    }
    if (n <= 0) {
        refuse(w, PROXY_REFUSED_TRUNCATED,
               n == 0 ? "closed before the end of its PROXY header" : strerror(errno));
        return;
    }
    struct proxy_header h;
    const char *why;
    switch (proxy_header_parse(w->buf, w->have + (size_t)n, w->versions, &h, &why)) {
    case PROXY_HEADER_NEED_MORE:
        /* Every byte so far is header: take them, and wait for the rest. */
        if (take(w, (size_t)n) < 0)
            refuse(w, PROXY_REFUSED_TRUNCATED, "the PROXY header could not be read");
        else
            wait_more(w);
        return;
    case PROXY_HEADER_BAD:
        refuse(w, PROXY_REFUSED_MALFORMED, why);
        return;
    case PROXY_HEADER_DONE:
        if (take(w, h.len - w->have) < 0)
            refuse(w, PROXY_REFUSED_TRUNCATED, "the PROXY header could not be read");
        else
            hand_over(w, &h);
        return;
    }
}

/* The smaller of frame_timeout and login_timeout that is on. */
static int64_t deadline_s(const struct config *cfg)
{
    int64_t frame = cfg->frame_timeout_s, login = cfg->login_timeout_s;
    if (frame > 0 && login > 0)
        return frame < login ? frame : login;
    if (frame > 0 || login > 0)
        return frame > 0 ? frame : login;
    return DEFAULT_DEADLINE_S;
}

void proxy_accept(struct server *srv, const struct transport *transport, unsigned versions,
                  evutil_socket_t fd, const struct sockaddr *addr)
{
    char peer[64];
    session_describe_peer(addr, peer, sizeof(peer));
    if (!cidr_list_match(srv->cfg->proxy_from, srv->cfg->n_proxy_from, addr)) {
        note_refusal(srv, PROXY_REFUSED_SOURCE, peer, "not a [server] proxy_from address");
        evutil_closesocket(fd);
        return;
    }
    if (session_refuse_if_full(srv, transport, fd, peer))
        return;
    struct proxy_wait *w = calloc(1, sizeof(*w));
    struct timeval limit = {(time_t)deadline_s(srv->cfg), 0};
    if (w)
        w->ev = event_new(srv->base, fd, EV_READ, on_header_bytes, w);
    if (!w || !w->ev || event_add(w->ev, &limit) < 0) {
        if (w && w->ev)
            event_free(w->ev);
        free(w);
        evutil_closesocket(fd);
        log_error("cannot accept %s: out of memory", peer);
        return;
    }
    w->srv = srv;
    w->transport = transport;
    w->versions = versions;
    w->fd = fd;
    w->deadline_ns = now_ns() + (int64_t)limit.tv_sec * 1000000000;
    w->peer_len =
        addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    memcpy(&w->peer, addr, w->peer_len);
    memcpy(w->peer_text, peer, sizeof(peer));
    struct proxy_waits *p = &srv->proxy;
    w->next = p->list;
    if (p->list)
        p->list->prev = w;
    p->list = w;
    p->n++;
}

void proxy_accept_drop_all(struct server *srv)
{
    while (srv->proxy.list)
        close_wait(srv->proxy.list);
}

void proxy_accept_render_metrics(const struct server *srv, struct evbuffer *out)
{
    const struct proxy_waits *p = &srv->proxy;
    metrics_counter(out, "chatd_proxy_headers_total",
                    "PROXY headers taken on PROXY listeners (LOCAL ones included).", p->headers);
    evbuffer_add_printf(out, "# HELP chatd_proxy_refused_total Connections on PROXY listeners "
                             "closed before their session, by reason.\n"
                             "# TYPE chatd_proxy_refused_total counter\n");
    for (int i = 0; i < PROXY_REFUSALS; i++)
        evbuffer_add_printf(out, "chatd_proxy_refused_total{reason=\"%s\"} %llu\n",
                            refusal_names[i], (unsigned long long)p->refused[i]);
    metrics_gauge(out, "chatd_proxy_waiting", "Connections waiting for their PROXY header.",
                  (double)p->n);
}
