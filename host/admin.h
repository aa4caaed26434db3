/* admin.h - the admin HTTP listener: /metrics, /healthz and POST /reload. */
#ifndef CHATD_HOST_ADMIN_H
#define CHATD_HOST_ADMIN_H

#include <stddef.h>

struct server;

/* Start it if [admin] enable = yes. -1 with the reason in err. */
int admin_open(struct server *srv, char *err, size_t errlen);
void admin_close(struct server *srv);

#endif
