/* admin_conns.h - the admin listener's connections: at most [admin] max_connections at
 * once (the listener stops accepting at the cap and resumes when one closes), and a log
 * line for a connection that closes on a request no handler served (refused by evhttp's
 * size limits, malformed or unfinished). */
#ifndef CHATD_HOST_ADMIN_CONNS_H
#define CHATD_HOST_ADMIN_CONNS_H

#include <stddef.h>
#include <stdint.h>

struct admin_conns;
struct evhttp;
struct evhttp_bound_socket;
struct evhttp_request;

/* Count the connections of `http`, accepted on `bound`, against `max`. NULL when out of
 * memory. */
struct admin_conns *admin_conns_new(struct evhttp *http, struct evhttp_bound_socket *bound,
                                    int64_t max);
/* A handler has the whole of req: what its connection read so far is served. */
void admin_conns_served(struct admin_conns *conns, struct evhttp_request *req);
/* Connections open now. */
size_t admin_conns_open(const struct admin_conns *conns);
/* Free `http` (evhttp_free, which closes its connections), then conns. */
void admin_conns_free(struct admin_conns *conns, struct evhttp *http);

#endif
