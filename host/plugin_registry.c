/* plugin_registry.c - the plugin instances of a server (see plugin_registry.h): the
 * active ones by name, the retiring ones, and what each was loaded from.
 *
 * A plugin instance is never closed while anything can still call into it: a retired
 * instance loses its commands (they answer unknown_cmd or go to its successor), its
 * subscriptions, its hooks, its services and its timers at once, and is closed
 * (shutdown, then dlclose) from a timer of its own once its in-flight requests (held
 * ones included), jobs, hook runs and service holds are done (registry_plugin_busy).
 * Everything here runs on the loop thread. */
#include "plugin_registry.h"

#include "flush_watch.h"
#include "commands.h"
#include "hooks.h"
#include "log.h"
#include "plugin_loader.h"
#include "server.h"
#include "services.h"
#include "timers.h"
#include "users.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* How often retired instances are looked at while some wait to drain. */
#define RETIRE_CHECK_MS 20

/* The plugin's [plugin.<name>] lines as one string, to tell whether they changed. */
char *registry_options_text(const struct config *cfg, const char *name)
{
    size_t n = 1;
    for (size_t i = 0; i < cfg->n_plugin_entries; i++)
        if (strcmp(cfg->plugin_entries[i].plugin, name) == 0)
            n += strlen(cfg->plugin_entries[i].key) + strlen(cfg->plugin_entries[i].value) + 2;
    char *text = malloc(n);
    if (!text)
        return NULL;
    text[0] = '\0';
    for (size_t i = 0; i < cfg->n_plugin_entries; i++) {
        const struct config_entry *e = &cfg->plugin_entries[i];
        if (strcmp(e->plugin, name) == 0) {
            strcat(text, e->key);
            strcat(text, "=");
            strcat(text, e->value);
            strcat(text, "\n");
        }
    }
    return text;
}

void registry_note_file(struct chatd_plugin *p, const struct stat *st)
{
    p->file_dev = st->st_dev;
    p->file_ino = st->st_ino;
    p->file_size = st->st_size;
    p->file_mtime = st->st_mtim;
}

int registry_same_file(const struct chatd_plugin *p, const struct stat *st)
{
    return p->file_dev == st->st_dev && p->file_ino == st->st_ino && p->file_size == st->st_size &&
           p->file_mtime.tv_sec == st->st_mtim.tv_sec &&
           p->file_mtime.tv_nsec == st->st_mtim.tv_nsec;
}

void registry_note_plugin(struct chatd_plugin *p, const struct config *cfg)
{
    struct stat st;
    if (stat(p->path, &st) == 0)
        registry_note_file(p, &st);
    free(p->options_text);
    p->options_text = registry_options_text(cfg, p->name);
}

size_t registry_find(struct server *srv, const char *name)
{
    for (size_t i = 0; i < srv->n_plugins; i++)
        if (strcmp(srv->plugins[i]->name, name) == 0)
            return i;
    return SIZE_MAX;
}

struct chatd_plugin *server_plugin(struct server *srv, const char *name)
{
    size_t at = registry_find(srv, name);
    return at == SIZE_MAX ? NULL : srv->plugins[at];
}

int registry_plugin_busy(const struct chatd_plugin *p)
{
    return p->inflight || p->pending_jobs || p->pending_calls || p->service_holds || p->holds_taken;
}

void registry_detach(struct server *srv, struct chatd_plugin *p)
{
    users_unsubscribe_plugin(srv, p);
    timers_cancel_plugin(srv, p);
    flush_watch_cancel_plugin(srv, p);
    hooks_retire_plugin(srv, p);
    services_retire_plugin(srv, p);
}

static void on_retire_check(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    registry_close_retired(arg, 0);
}

void registry_close_retired(struct server *srv, int all)
{
    struct chatd_plugin **pp = &srv->retiring;
    while (*pp) {
        struct chatd_plugin *p = *pp;
        if (all || !registry_plugin_busy(p)) {
            *pp = p->next_retiring;
            if (p->retiring == RETIRED_UNUSED)
                log_info("plugin %s %s: the instance that did not start is closed", p->name,
                         p->desc->version ? p->desc->version : "");
            else
                log_info("plugin %s %s unloaded", p->name,
                         p->desc->version ? p->desc->version : "");
            plugin_close(p);
        } else {
            pp = &p->next_retiring;
        }
    }
    if (!srv->retiring && srv->retire_check)
        event_del(srv->retire_check);
}

/* Take p out of service at once; it is closed once its work has drained. `how` says
 * whether it served (RETIRED_SERVED) or never started (RETIRED_UNUSED). */
void registry_retire(struct server *srv, struct chatd_plugin *p, int how)
{
    if (p->server) {
        commands_retire_plugin(srv, p);
        registry_detach(srv, p);
    }
    p->retiring = how;
    p->next_retiring = srv->retiring;
    srv->retiring = p;
    if (!srv->retire_check)
        srv->retire_check = event_new(srv->base, -1, EV_PERSIST, on_retire_check, srv);
    struct timeval every = {0, RETIRE_CHECK_MS * 1000};
    if (srv->retire_check && !evtimer_pending(srv->retire_check, NULL))
        evtimer_add(srv->retire_check, &every);
}
