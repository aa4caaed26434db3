/* plugin_deps.c - service dependencies between enabled plugins (see plugin_deps.h). */
#include "plugin_deps.h"

#include "plugin_loader.h"
#include "services.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void deps_from_plugin(const struct chatd_plugin *p, int line, struct dep_plugin *out)
{
    out->name = p->name;
    out->provides = PLUGIN_DESC_HAS(p, provides) ? p->desc->provides : NULL;
    out->requires = PLUGIN_DESC_HAS(p, requires) ? p->desc->requires : NULL;
    out->line = line;
}

/* The index of the enabled plugin providing `service`, SIZE_MAX for none. */
static size_t provider_of(const struct dep_plugin *plugins, size_t n, const char *service,
                          size_t from)
{
    for (size_t j = from; j < n; j++)
        if (services_list_has(plugins[j].provides, service))
            return j;
    return (size_t)-1;
}

/* Whether plugin i can start once the plugins marked in `placed` have. */
static int ready(const struct dep_plugin *plugins, size_t n, size_t i, const char *placed)
{
    for (const char *const *r = plugins[i].requires; r && *r; r++) {
        size_t j = provider_of(plugins, n, *r, 0);
        if (j != i && !placed[j])
            return 0;
    }
    return 1;
}

/* Some plugins cannot start: follow unmet requirements from the first of them until a
 * plugin repeats, and name that cycle. */
static void describe_cycle(const struct dep_plugin *plugins, size_t n, const char *placed,
                           const char *file, char *err, size_t errlen)
{
    size_t path[64], len = 0, at = 0;
    while (placed[at])
        at++;
    for (;;) {
        for (size_t k = 0; k < len; k++) {
            if (path[k] != at)
                continue;
            int used = snprintf(err, errlen,
                                "%s:%d: plugins depend on each other's services "
                                "in a cycle:",
                                file, plugins[at].line);
            for (size_t m = k; m < len && used > 0 && (size_t)used < errlen; m++) {
                size_t next = m + 1 < len ? path[m + 1] : path[k];
                const char *service = "?";
                for (const char *const *r = plugins[path[m]].requires; r && *r; r++)
                    if (provider_of(plugins, n, *r, 0) == next)
                        service = *r;
                used += snprintf(err + used, errlen - (size_t)used,
                                 "%s '%s' requires service '%s' of '%s'", m > k ? "," : "",
                                 plugins[path[m]].name, service, plugins[next].name);
            }
            return;
        }
        if (len == sizeof(path) / sizeof(path[0]))
            break;
        path[len++] = at;
        size_t next = at;
        for (const char *const *r = plugins[at].requires; r && *r && next == at; r++) {
            size_t j = provider_of(plugins, n, *r, 0);
            if (j != at && !placed[j])
                next = j;
        }
        if (next == at)
            break;
        at = next;
    }
    snprintf(err, errlen, "%s:%d: plugins depend on each other's services in a cycle", file,
             plugins[path[0]].line);
}

int deps_order(const struct dep_plugin *plugins, size_t n, const char *file, size_t *order,
               char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        for (const char *const *r = plugins[i].requires; r && *r; r++) {
            size_t j = provider_of(plugins, n, *r, 0);
            if (j == (size_t)-1) {
                snprintf(err, errlen,
                         "%s:%d: plugin '%s' requires service '%s', which no enabled plugin "
                         "provides (enable a plugin that provides it, or disable '%s')",
                         file, plugins[i].line, plugins[i].name, *r, plugins[i].name);
                return -1;
            }
        }
        for (const char *const *s = plugins[i].provides; s && *s; s++) {
            size_t j = provider_of(plugins, n, *s, i + 1);
            if (j != (size_t)-1) {
                snprintf(err, errlen,
                         "%s:%d: plugins '%s' and '%s' both provide service '%s' (disable one)",
                         file, plugins[j].line, plugins[i].name, plugins[j].name, *s);
                return -1;
            }
        }
    }
    char *placed = calloc(n ? n : 1, 1);
    if (!placed) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* Each round starts the first plugin in enable order whose providers have started. */
    for (size_t k = 0; k < n; k++) {
        size_t i = 0;
        while (i < n && (placed[i] || !ready(plugins, n, i, placed)))
            i++;
        if (i == n) {
            describe_cycle(plugins, n, placed, file, err, errlen);
            free(placed);
            return -1;
        }
        placed[i] = 1;
        order[k] = i;
    }
    free(placed);
    return 0;
}
