/* admin_conns.c - counting the admin listener's connections.
 *
 * libevent 2.1 has no evhttp_set_max_connections (2.2 has), and the only word of evhttp
 * closing a connection it accepted is the connection's close callback, which needs the
 * evhttp_connection; evhttp makes that after asking us for its bufferevent
 * (evhttp_set_bevcb). So the bevcb counts the connection, makes its bufferevent and
 * holds a reference to it, and activates a probe event. The probe runs once the accept
 * is over: evhttp has then set the bufferevent's callbacks with the connection as their
 * argument, and the probe sets the connection's close callback, which uncounts it. A
 * bufferevent without callbacks by then was freed by evhttp already (bufferevent_free
 * clears them; our reference keeps the memory). At the cap the listener stops accepting:
 * further connections wait in the kernel's backlog, holding no descriptor of ours. */
#include "admin_conns.h"

#include "log.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <stdlib.h>

struct admin_conn {
    struct admin_conns *owner;
    struct bufferevent *bev;
    struct evhttp_connection *evcon; /* set by the probe */
    struct event *probe;             /* until it has run */
    size_t received;                 /* bytes read from the peer */
    size_t served;                   /* of those, read when a handler last got a request */
    struct admin_conn *prev, *next;
};

struct admin_conns {
    struct evconnlistener *listener; /* NULL once evhttp_free is under way */
    size_t max, open;
    struct admin_conn *list;
};

static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)buf;
    struct admin_conn *c = arg;
    c->received += info->n_added;
}

static void conn_gone(struct admin_conn *c)
{
    struct admin_conns *conns = c->owner;
    evbuffer_remove_cb(bufferevent_get_input(c->bev), on_input, c);
    if (c->received > c->served) {
        char *address = NULL;
        ev_uint16_t port = 0;
        if (c->evcon)
            evhttp_connection_get_peer(c->evcon, &address, &port);
        log_warn("admin listener: connection from %s:%u closed on %zu bytes of a request no "
                 "handler served (over the size limits, malformed or unfinished)",
                 address ? address : "?", (unsigned)port, c->received - c->served);
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        conns->list = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (conns->open-- >= conns->max && conns->listener) {
        evconnlistener_enable(conns->listener);
        log_info("admin listener: accepting connections again");
    }
    free(c);
}

static void on_closed(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    conn_gone(arg);
}

static void on_probe(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct admin_conn *c = arg;
    struct bufferevent *bev = c->bev;
    bufferevent_data_cb readcb = NULL;
    void *evcon = NULL;
    bufferevent_getcb(bev, &readcb, NULL, NULL, &evcon);
    event_free(c->probe);
    c->probe = NULL;
    if (readcb && evcon) {
        c->evcon = evcon;
        evhttp_connection_set_closecb(c->evcon, on_closed, c);
    } else {
        conn_gone(c);
    }
    bufferevent_decref(bev);
}

/* evhttp's bevcb: a connection was accepted. NULL (evhttp then makes an uncounted
 * bufferevent itself) only when out of memory. */
static struct bufferevent *on_accept(struct event_base *base, void *arg)
{
    struct admin_conns *conns = arg;
    struct admin_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->owner = conns;
    c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    c->probe = event_new(base, -1, 0, on_probe, c);
    if (!c->bev || !c->probe || !evbuffer_add_cb(bufferevent_get_input(c->bev), on_input, c)) {
        if (c->bev)
            bufferevent_free(c->bev);
        if (c->probe)
            event_free(c->probe);
        free(c);
        return NULL;
    }
    bufferevent_incref(c->bev);
    event_active(c->probe, EV_TIMEOUT, 1);
    c->next = conns->list;
    if (c->next)
        c->next->prev = c;
    conns->list = c;
    if (++conns->open >= conns->max) {
        evconnlistener_disable(conns->listener);
        log_warn("admin listener: %zu connections open, the most [admin] max_connections "
                 "allows; accepting no more until one closes",
                 conns->open);
    }
    return c->bev;
}

struct admin_conns *admin_conns_new(struct evhttp *http, struct evhttp_bound_socket *bound,
                                    int64_t max)
{
    struct admin_conns *conns = calloc(1, sizeof(*conns));
    if (!conns)
        return NULL;
    conns->listener = evhttp_bound_socket_get_listener(bound);
    conns->max = (size_t)max;
    evhttp_set_bevcb(http, on_accept, conns);
    return conns;
}

void admin_conns_served(struct admin_conns *conns, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    for (struct admin_conn *c = conns->list; c; c = c->next)
        if (c->bev == bev)
            c->served = c->received;
}

size_t admin_conns_open(const struct admin_conns *conns)
{
    return conns->open;
}

void admin_conns_free(struct admin_conns *conns, struct evhttp *http)
{
    /* evhttp_free frees the listener before it closes the connections. */
    conns->listener = NULL;
    evhttp_free(http);
    /* Left: connections the probe has not seen yet, whose bufferevent we still hold. */
    while (conns->list) {
        struct admin_conn *c = conns->list;
        struct bufferevent *bev = c->probe ? c->bev : NULL;
        if (c->probe)
            event_free(c->probe);
        conn_gone(c);
        if (bev)
            bufferevent_decref(bev);
    }
    free(conns);
}
