/* reload.h - live reload of the config and the plugins (reload.c). Loop thread only. */
#ifndef CHATD_HOST_RELOAD_H
#define CHATD_HOST_RELOAD_H

#include <stddef.h>

struct server;

/* Re-read the config (SIGHUP, POST /reload), validate all of it, and apply it, or keep
 * the running one on any error. Writes what happened (or why nothing did) to report.
 * 0 when applied (some plugins may still be migrating), -1 when refused. */
int server_reload(struct server *srv, char *report, size_t len);

#endif
