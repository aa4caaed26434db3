/* listener.c - the listening sockets named by [server] listen and [web] listen, IPv4 and
 * IPv6. */
#include "listener.h"

#include "log.h"
#include "server.h"
#include "session.h"
#include "transport.h"

#include <event2/listener.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* How long accepting pauses after accept() fails for lack of descriptors. */
#define ACCEPT_PAUSE_MS 250

static void on_accept(struct evconnlistener *listener, evutil_socket_t fd, struct sockaddr *addr,
                      int socklen, void *arg)
{
    (void)listener;
    session_accept(arg, &transport_tcp, fd, addr, socklen);
}

static void on_accept_tls(struct evconnlistener *listener, evutil_socket_t fd,
                          struct sockaddr *addr, int socklen, void *arg)
{
    (void)listener;
    session_accept(arg, &transport_tls, fd, addr, socklen);
}

static void on_accept_ws(struct evconnlistener *listener, evutil_socket_t fd, struct sockaddr *addr,
                         int socklen, void *arg)
{
    (void)listener;
    session_accept(arg, &transport_ws, fd, addr, socklen);
}

static void on_accept_wss(struct evconnlistener *listener, evutil_socket_t fd,
                          struct sockaddr *addr, int socklen, void *arg)
{
    (void)listener;
    session_accept(arg, &transport_wss, fd, addr, socklen);
}

static void on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *srv = arg;
    for (size_t i = 0; i < srv->n_listeners; i++)
        evconnlistener_enable(srv->listeners[i]);
}

/* Typically EMFILE: the pending connection stays in the backlog, and the listener would
 * fire again at once, spinning a core. Pause accepting for a moment instead; sessions
 * that close meanwhile free descriptors. */
static void on_accept_error(struct evconnlistener *listener, void *arg)
{
    (void)listener;
    struct server *srv = arg;
    log_error("accept failed: %s; pausing new connections for %d ms (raise ulimit -n?)",
              evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()), ACCEPT_PAUSE_MS);
    for (size_t i = 0; i < srv->n_listeners; i++)
        evconnlistener_disable(srv->listeners[i]);
    if (!srv->accept_pause)
        srv->accept_pause = evtimer_new(srv->base, on_accept_resume, srv);
    struct timeval pause = {0, ACCEPT_PAUSE_MS * 1000};
    if (srv->accept_pause)
        evtimer_add(srv->accept_pause, &pause);
}

/* `what` names the listener in the log: "" for plain TCP, " (TLS)", " (web)"... */
static int open_one(struct server *srv, const struct config_listen *l, evconnlistener_cb on_new,
                    const char *what, char *err, size_t errlen)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res;
    int rc = getaddrinfo(l->host, l->port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "listen %s:%s: %s", l->host, l->port, gai_strerror(rc));
        return -1;
    }
    int ok = -1;
    for (struct addrinfo *ai = res; ai && ok < 0; ai = ai->ai_next) {
        /* An IPv6 listener takes only IPv6, so [::] and 0.0.0.0 can be listed together. */
        unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;
        if (ai->ai_family == AF_INET6)
            flags |= LEV_OPT_BIND_IPV6ONLY;
        struct evconnlistener *lev = evconnlistener_new_bind(srv->base, on_new, srv, flags, 1024,
                                                             ai->ai_addr, (int)ai->ai_addrlen);
        if (!lev) {
            snprintf(err, errlen, "cannot listen on %s%s%s:%s: %s",
                     ai->ai_family == AF_INET6 ? "[" : "", l->host,
                     ai->ai_family == AF_INET6 ? "]" : "", l->port,
                     evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
            continue;
        }
        evconnlistener_set_error_cb(lev, on_accept_error);
        struct evconnlistener **grown =
            realloc(srv->listeners, (srv->n_listeners + 1) * sizeof(*grown));
        if (!grown) {
            evconnlistener_free(lev);
            snprintf(err, errlen, "out of memory");
            break;
        }
        srv->listeners = grown;
        srv->listeners[srv->n_listeners++] = lev;
        struct sockaddr_storage bound;
        socklen_t len = sizeof(bound);
        getsockname(evconnlistener_get_fd(lev), (struct sockaddr *)&bound, &len);
        char host[64], port[16];
        getnameinfo((struct sockaddr *)&bound, len, host, sizeof(host), port, sizeof(port),
                    NI_NUMERICHOST | NI_NUMERICSERV);
        if (bound.ss_family == AF_INET6)
            log_info("listening on [%s]:%s%s", host, port, what);
        else
            log_info("listening on %s:%s%s", host, port, what);
        ok = 0;
    }
    freeaddrinfo(res);
    return ok;
}

int listeners_open(struct server *srv, char *err, size_t errlen)
{
    if (srv->cfg->n_listeners == 0) {
        snprintf(err, errlen, "%s: no [server] listen address (and no --listen)",
                 srv->cfg->path ? srv->cfg->path : "config");
        return -1;
    }
    for (size_t i = 0; i < srv->cfg->n_listeners; i++) {
        const struct config_listen *l = &srv->cfg->listeners[i];
        if (open_one(srv, l, l->tls ? on_accept_tls : on_accept, l->tls ? " (TLS)" : "", err,
                     errlen) < 0) {
            listeners_close(srv);
            return -1;
        }
    }
    if (!srv->cfg->web.enable)
        return 0;
    /* The web listener: its address was checked with the config. */
    struct config_listen web = {0};
    int tls = (int)srv->cfg->web.tls;
    int rc = config_parse_listen(srv->cfg->web.listen, &web, err, errlen);
    if (rc == 0)
        rc = open_one(srv, &web, tls ? on_accept_wss : on_accept_ws, tls ? " (web, TLS)" : " (web)",
                      err, errlen);
    free(web.host);
    free(web.port);
    if (rc < 0)
        listeners_close(srv);
    return rc;
}

void listeners_close(struct server *srv)
{
    if (srv->accept_pause)
        evtimer_del(srv->accept_pause);
    for (size_t i = 0; i < srv->n_listeners; i++)
        evconnlistener_free(srv->listeners[i]);
    free(srv->listeners);
    srv->listeners = NULL;
    srv->n_listeners = 0;
}
