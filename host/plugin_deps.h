/* plugin_deps.h - the services enabled plugins provide and require: the config check
 * (every required service has an enabled provider, no cycles) and the start order
 * (providers before their dependents). Pure functions over descriptors' lists, used at
 * start, by chatd -t and by reload's validation. */
#ifndef CHATD_HOST_PLUGIN_DEPS_H
#define CHATD_HOST_PLUGIN_DEPS_H

#include <stddef.h>

struct chatd_plugin;

/* One enabled plugin as the check sees it. */
struct dep_plugin {
    const char *name;
    const char *const *provides; /* NULL-terminated; NULL for none */
    const char *const *requires; /* NULL-terminated; NULL for none */
    int line;                    /* its line of [plugins] enable */
};

/* Order the n plugins (in [plugins] enable order) so that each one's providers come
 * before it, keeping the enable order otherwise: order[k] is the index of the k-th to
 * start. 0, or -1 with "file:line: reason" in err naming the plugin and the service: a
 * required service no enabled plugin provides, one that two provide, or a cycle. */
int deps_order(const struct dep_plugin *plugins, size_t n, const char *file, size_t *order,
               char *err, size_t errlen);

/* Fill *out from an opened plugin's descriptor (the lists only when its size covers
 * them: plugins built before ABI 1.2 have none). */
void deps_from_plugin(const struct chatd_plugin *p, int line, struct dep_plugin *out);

#endif
