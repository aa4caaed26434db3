/* listener.h - the client listeners, one listening socket per [server] listen address
 * (listener.c): plain or TLS, taking a PROXY header first or not. Loop thread only. */
#ifndef CHATD_HOST_LISTENER_H
#define CHATD_HOST_LISTENER_H

#include <stddef.h>

struct evconnlistener;
struct server;
struct transport;

/* One listening socket. */
struct listener {
    struct evconnlistener *lev;
    struct server *srv;
    const struct transport *transport; /* what its sessions speak */
    unsigned proxy_versions;           /* PROXY headers it takes first (proxy_accept.h); 0: none */
};

/* Open a listener on every configured address. -1 with the reason in err. */
int listeners_open(struct server *srv, char *err, size_t errlen);
/* Close them all (a stop begins, or the server is freed). */
void listeners_close(struct server *srv);

#endif
