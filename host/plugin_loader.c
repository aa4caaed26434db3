/* plugin_loader.c - dlopen of plugins, the ABI checks that decide whether one may load,
 * and the init/shutdown calls. Option values are plugin_options.c's, the trial load in a
 * child process plugin_trial.c's. */
#include "plugin_loader.h"

#include "commands.h"
#include "hooks.h"
#include "log.h"
#include "plugin_options.h"
#include "plugin_registry.h"
#include "plugin_trial.h"
#include "server.h"
#include "services.h"
#include "timers.h"
#include "users.h"

#include "plugin_elf.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The descriptor members an ABI 1.0 plugin has: everything up to shutdown. */
#define DESCRIPTOR_V1_0_SIZE                                                                       \
    (offsetof(struct chatd_plugin_descriptor, shutdown) + sizeof(chatd_shutdown_fn))

char *plugin_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 5;
    char *path = malloc(n);
    if (path)
        snprintf(path, n, "%s/%s.so", dir, name);
    return path;
}

static void plugin_free(struct chatd_plugin *p)
{
    for (size_t i = 0; i < p->n_options; i++)
        free(p->options[i].text);
    free(p->options);
    free(p->options_text);
    free(p->name);
    free(p->path);
    free(p);
}

int plugin_version_gate(const char *path, uint32_t major, uint32_t minor, uint32_t size,
                        uint32_t jansson_major, uint32_t host_minor, char *err, size_t errlen)
{
    if (major != CHATD_ABI_MAJOR) {
        snprintf(err, errlen,
                 "%s was built for chatd plugin ABI %u.%u, but this chatd provides ABI %d.%u: "
                 "rebuild the plugin against this chatd's <chatd/plugin.h>, or run a chatd "
                 "with ABI %u.x",
                 path, major, minor, CHATD_ABI_MAJOR, host_minor, major);
        return -1;
    }
    if (minor > host_minor) {
        snprintf(err, errlen,
                 "%s needs chatd plugin ABI %u.%u, but this chatd provides ABI %d.%u: upgrade "
                 "chatd, or use a build of the plugin for ABI %d.%u or older",
                 path, major, minor, CHATD_ABI_MAJOR, host_minor, CHATD_ABI_MAJOR, host_minor);
        return -1;
    }
    if (size < DESCRIPTOR_V1_0_SIZE) {
        snprintf(err, errlen,
                 "%s has a descriptor of %u bytes, smaller than ABI %u.%u's %zu: it was not "
                 "built with CHATD_PLUGIN_DEFINE",
                 path, size, major, minor, (size_t)DESCRIPTOR_V1_0_SIZE);
        return -1;
    }
    if (jansson_major != JANSSON_MAJOR_VERSION) {
        snprintf(err, errlen,
                 "%s was built with jansson %u.x, but this chatd uses jansson %d.x: rebuild "
                 "the plugin",
                 path, jansson_major, JANSSON_MAJOR_VERSION);
        return -1;
    }
    return 0;
}

/* The version gate, read from the file before it is loaded: a plugin for another ABI
 * is refused without running any of its code (not even its constructors). */
static int check_file(const char *path, char *err, size_t errlen)
{
    struct elf_plugin *ep;
    if (elf_plugin_open(path, &ep, err, errlen) < 0)
        return -1;
    uint32_t major, minor, size, jansson;
    elf_plugin_versions(ep, &major, &minor, &size, &jansson);
    elf_plugin_close(ep);
    return plugin_version_gate(path, major, minor, size, jansson, CHATD_ABI_MINOR, err, errlen);
}

/* The checks that need the loaded descriptor (its strings and functions). */
static int check_descriptor(const struct chatd_plugin_descriptor *d, const char *path,
                            const char *expected_name, char *err, size_t errlen)
{
    if (plugin_version_gate(path, d->abi_major, d->abi_minor, d->size, d->jansson_major,
                            CHATD_ABI_MINOR, err, errlen) < 0)
        return -1;
    if (!d->name || !config_valid_name(d->name, 32)) {
        snprintf(err, errlen, "%s has no valid name (a-z, 0-9 and _, 1 to 32 bytes)", path);
        return -1;
    }
    if (strcmp(d->name, "chatd") == 0) {
        /* chatd_schema records the host's own tables under this name. */
        snprintf(err, errlen, "%s calls itself 'chatd', a name reserved for the host", path);
        return -1;
    }
    if (expected_name && strcmp(d->name, expected_name) != 0) {
        snprintf(err, errlen, "%s calls itself '%s', but was enabled as '%s'", path, d->name,
                 expected_name);
        return -1;
    }
    if (!d->init) {
        snprintf(err, errlen, "%s (plugin '%s') has no init function", path, d->name);
        return -1;
    }
    for (const struct chatd_option *o = d->options; o && o->key; o++) {
        char reason[CONFIG_ERROR_MAX];
        int64_t number;
        int flag;
        int bad = !config_valid_name(o->key, 64);
        if (!bad && o->default_value) {
            if (o->type == CHATD_OPT_INT)
                bad = config_parse_int(o->default_value, o->min, o->max, &number, reason,
                                       sizeof(reason)) < 0;
            else if (o->type == CHATD_OPT_BOOL)
                bad = config_parse_bool(o->default_value, &flag, reason, sizeof(reason)) < 0;
            else if (o->type != CHATD_OPT_STRING)
                bad = 1;
        }
        if (bad) {
            snprintf(err, errlen,
                     "%s (plugin '%s') declares option '%s' wrongly: bad name, "
                     "type or default",
                     path, d->name, o->key);
            return -1;
        }
    }
    return 0;
}

int plugin_open(const char *path, const char *expected_name, struct chatd_plugin **out, char *err,
                size_t errlen)
{
    *out = NULL;
    if (check_file(path, err, errlen) < 0)
        return -1;
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        snprintf(err, errlen, "cannot load plugin %s: %s", path, dlerror());
        return -1;
    }
    const struct chatd_plugin_descriptor *d = dlsym(dl, CHATD_PLUGIN_SYMBOL);
    if (!d) {
        snprintf(err, errlen,
                 "%s has no '%s' symbol: it is not a chatd plugin, or it was built without "
                 "CHATD_PLUGIN_DEFINE",
                 path, CHATD_PLUGIN_SYMBOL);
        dlclose(dl);
        return -1;
    }
    if (check_descriptor(d, path, expected_name, err, errlen) < 0) {
        dlclose(dl);
        return -1;
    }
    struct chatd_plugin *p = calloc(1, sizeof(*p));
    if (!p || !(p->name = strdup(d->name)) || !(p->path = strdup(path))) {
        if (p)
            plugin_free(p);
        dlclose(dl);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    p->dl = dl;
    p->desc = d;
    p->state = PLUGIN_OPENED;
    *out = p;
    return 0;
}

int plugin_start(struct chatd_plugin *p, struct server *srv, char *err, size_t errlen)
{
    p->server = srv;
    p->is_authenticator = srv->cfg->authenticator && strcmp(srv->cfg->authenticator, p->name) == 0;
    p->state = PLUGIN_INITING;
    p->init_error[0] = '\0';
    p->load_error[0] = '\0';
    int rc = p->desc->init(p, srv->host_table ? srv->host_table : &host_api);
    if (rc == 0 && p->load_error[0] == '\0') {
        p->state = PLUGIN_RUNNING;
        log_info("plugin %s %s loaded from %s", p->name, p->desc->version ? p->desc->version : "",
                 p->path);
        return 0;
    }
    if (rc != 0) {
        snprintf(err, errlen, "init failed: %s%s(%s)", p->init_error, p->init_error[0] ? " " : "",
                 chatd_strerror(rc));
        /* init cleaned up after itself when it failed; only host-side state remains. */
        commands_remove_plugin(srv, p);
        registry_detach(srv, p);
        p->state = PLUGIN_STOPPED;
    } else {
        snprintf(err, errlen, "%s", p->load_error);
        p->state = PLUGIN_RUNNING; /* init succeeded: plugin_close must run shutdown */
    }
    return -1;
}

void plugin_close(struct chatd_plugin *p)
{
    struct server *srv = p->server;
    if (srv) {
        commands_remove_plugin(srv, p);
        registry_detach(srv, p);
        /* Runs it started end now (done sees the refusal "shutdown"): never after its
         * shutdown. */
        hooks_stop_plugin(srv, p);
        /* A retired instance's successor owns the plugin's gauges now. */
        if (!p->retiring || !server_plugin(srv, p->name))
            metrics_forget_plugin(&srv->metrics, p->name);
    }
    if (p->pending_jobs)
        log_error("plugin %s closed with %u jobs not done: their callbacks are lost", p->name,
                  p->pending_jobs);
    if (p->state == PLUGIN_RUNNING && p->desc->shutdown) {
        /* A job or timer it started now would call into it after it is unmapped. */
        p->state = PLUGIN_STOPPING;
        p->desc->shutdown(p);
    }
    if (p->instance && PLUGIN_DESC_HAS(p, destroy) && p->desc->destroy)
        p->desc->destroy(p->instance);
    p->instance = NULL;
    p->state = PLUGIN_STOPPED;
    if (srv) {
        /* Handles of its hooks' cut deferrals were valid until now. */
        hooks_forget_plugin(srv, p);
        services_forget_plugin(srv, p);
    }
#ifndef CHATD_KEEP_PLUGINS_MAPPED
    dlclose(p->dl);
#endif
    plugin_free(p);
}

static int open_only(void *arg, char *reason, size_t cap)
{
    struct chatd_plugin *p;
    return plugin_open(arg, NULL, &p, reason, cap);
}

/* Whether the object loads and its descriptor passes every check, tried in a child
 * process: loading runs the plugin's constructors, which must not run in chatd itself
 * just to describe a plugin. Returns 0, or -1 with the reason in err. */
static int try_load_in_child(const char *path, char *err, size_t errlen)
{
    return plugin_trial(open_only, (void *)(uintptr_t)path, err, errlen);
}

int plugin_describe(const char *path, FILE *out)
{
    char err[1024];
    struct elf_plugin *ep;
    if (elf_plugin_open(path, &ep, err, sizeof(err)) < 0) {
        fprintf(out, "file:          %s\nloadable:      no: %s\n", path, err);
        return 1;
    }
    uint32_t major, minor, size, jansson;
    elf_plugin_versions(ep, &major, &minor, &size, &jansson);
    /* The first three members are readable whatever the plugin's ABI. */
    fprintf(out, "file:          %s\nabi:           %u.%u (this chatd: %d.%d)\n", path, major,
            minor, CHATD_ABI_MAJOR, CHATD_ABI_MINOR);
    int ok = plugin_version_gate(path, major, minor, size, jansson, CHATD_ABI_MINOR, err,
                                 sizeof(err)) == 0;
    if (ok)
        elf_plugin_print(ep, out);
    elf_plugin_close(ep);
    if (ok)
        ok = try_load_in_child(path, err, sizeof(err)) == 0;
    if (!ok) {
        fprintf(out, "loadable:      no: %s\n", err);
        return 1;
    }
    fprintf(out, "loadable:      yes\n");
    return 0;
}
