/* proxy_accept.h - connections on a listener that takes a PROXY header first ([server]
 * proxy_protocol, proxy_accept.c): refused unless they come from a [server] proxy_from
 * address, then held, without a session, until their header has come whole; the
 * session (session_accept) then has the client's address the header gives, which its
 * limits, logs and everything else use. A header that is bad, cut short or late closes
 * that connection only, with a warning in the log (at most a few a window) and a count
 * in /metrics. The bytes after the header (a TLS handshake included) are the session's.
 * Loop thread only. */
#ifndef CHATD_HOST_PROXY_ACCEPT_H
#define CHATD_HOST_PROXY_ACCEPT_H

#include <event2/util.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct proxy_wait;
struct server;
struct sockaddr;
struct transport;

/* Why a connection on a PROXY listener was closed before it became a session. */
enum proxy_refusal {
    PROXY_REFUSED_SOURCE,    /* not from a proxy_from address */
    PROXY_REFUSED_MALFORMED, /* no header of an accepted version, or too large */
    PROXY_REFUSED_TRUNCATED, /* closed (or failed) before the header's end */
    PROXY_REFUSED_TIMEOUT,   /* no whole header in time */
    PROXY_REFUSALS
};

/* The server's part (struct server's `proxy`). */
struct proxy_waits {
    struct proxy_wait *list; /* connections waiting for their header */
    size_t n;
    uint64_t headers; /* headers taken (LOCAL included) */
    uint64_t refused[PROXY_REFUSALS];
    /* The warnings of the current window, and those left out of it. */
    int64_t log_window_ns;
    unsigned logged;
    uint64_t unlogged;
};

/* A connection accepted on a listener that takes PROXY headers of `versions`
 * (proxy_header.h) before speaking `transport`. */
void proxy_accept(struct server *srv, const struct transport *transport, unsigned versions,
                  evutil_socket_t fd, const struct sockaddr *addr);
/* Close every connection still waiting for its header (the listeners close). */
void proxy_accept_drop_all(struct server *srv);
/* Its counters, for /metrics. */
void proxy_accept_render_metrics(const struct server *srv, struct evbuffer *out);

#endif
