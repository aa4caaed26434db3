/* plugin_registry.h - a server's plugin instances: the active one of each name
 * (srv->plugins), the retiring ones (srv->retiring) that a reload took out of service and
 * that are closed once their work has drained, and what each was loaded from, so that a
 * reload can tell whether its file or options changed. Loop thread only. */
#ifndef CHATD_HOST_PLUGIN_REGISTRY_H
#define CHATD_HOST_PLUGIN_REGISTRY_H

#include "config.h"

#include <stddef.h>
#include <sys/stat.h>

struct chatd_plugin;
struct server;

/* Values of chatd_plugin.retiring. */
#define RETIRED_SERVED 1 /* it served */
#define RETIRED_UNUSED 2 /* a new instance that never started */

/* The index in srv->plugins of the instance serving as `name`, or SIZE_MAX. */
size_t registry_find(struct server *srv, const char *name);
/* The plugin instance serving as `name` now, or NULL. */
struct chatd_plugin *server_plugin(struct server *srv, const char *name);

/* Whether p still has work that calls into it later (requests, jobs, hook runs and
 * deferrals, service holds either way): a retired instance is closed once it has none. */
int registry_plugin_busy(const struct chatd_plugin *p);
/* Stop everything that reaches p apart from its commands: event subscriptions, timers,
 * hooks (pending deferrals of it are cut) and the services it offers. */
void registry_detach(struct server *srv, struct chatd_plugin *p);

/* Take p out of service at once; it is closed once its work has drained. `how` says
 * whether it served (RETIRED_SERVED) or never started (RETIRED_UNUSED). */
void registry_retire(struct server *srv, struct chatd_plugin *p, int how);
/* Close the retiring plugins whose work has drained; all of them when tearing down. */
void registry_close_retired(struct server *srv, int all);

/* Remember a loaded plugin's file identity and options, for the next reload. */
void registry_note_plugin(struct chatd_plugin *p, const struct config *cfg);
/* Remember st as the identity of the file p was loaded from. */
void registry_note_file(struct chatd_plugin *p, const struct stat *st);
/* Whether st is the file p was loaded from, unchanged. */
int registry_same_file(const struct chatd_plugin *p, const struct stat *st);
/* The plugin's [plugin.<name>] lines of cfg as one string, to tell whether they changed
 * (malloc'ed; NULL when out of memory). */
char *registry_options_text(const struct config *cfg, const char *name);

#endif
