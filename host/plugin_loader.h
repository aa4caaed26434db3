/* plugin_loader.h - opening plugin shared objects, checking their descriptors, and
 * starting and stopping them. Their options: plugin_options.h; trial loads in a child
 * process: plugin_trial.h. */
#ifndef CHATD_HOST_PLUGIN_LOADER_H
#define CHATD_HOST_PLUGIN_LOADER_H

#include "config.h"

#include <chatd/plugin.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

struct option_value;
struct server;

enum plugin_state {
    PLUGIN_OPENED,  /* descriptor checked, no plugin code has run */
    PLUGIN_INITING, /* inside init: registration allowed */
    PLUGIN_RUNNING,
    PLUGIN_STOPPING, /* inside shutdown: no new jobs or timers (nothing may outlive it) */
    PLUGIN_STOPPED,  /* shutdown has run */
};

/* The host's record of a plugin: the definition of the ABI's opaque handle. */
struct chatd_plugin {
    char *name;
    char *path;
    void *dl;
    const struct chatd_plugin_descriptor *desc;
    /* The plugin's own state (instance_set, ABI 1.2): the arg of callbacks registered
     * with a NULL one, and what the descriptor's destroy gets. */
    void *instance;
    struct option_value *options;
    size_t n_options;
    enum plugin_state state;
    struct server *server;
    int is_authenticator;
    /* Jobs submitted and not yet done: the plugin must stay loaded until it is 0. */
    unsigned pending_jobs;
    /* Requests routed to it and not yet released (held ones included): the same. */
    unsigned inflight;
    /* Hook runs it started whose done has not run yet, and deferrals of its hooks not yet
     * resumed (hooks.c): the same, since both call into it later. */
    unsigned pending_calls;
    /* Holds on services it provides (service_holds) and holds it took on services
     * (holds_taken), not yet released (services.c): the same. */
    unsigned service_holds;
    unsigned holds_taken;
    /* Non-zero once a reload took it out of service (1: it served; 2: a new instance
     * that never started): no requests, events, hooks or timers reach it any more, and
     * it is closed once every counter above is 0 (registry_plugin_busy). */
    int retiring;
    struct chatd_plugin *next_retiring;
    /* Its commands while retiring: out of the routing table, but the struct command of
     * each in-flight request must stay valid (by name, like srv->commands). */
    struct command *retired_commands;
    /* What it was loaded from, to tell at a reload whether the file or its options
     * changed: the configured file's identity, and its [plugin.<name>] lines. */
    dev_t file_dev;
    ino_t file_ino;
    off_t file_size;
    struct timespec file_mtime;
    char *options_text;
    /* The last error the plugin logged while in init, quoted if init fails. */
    char init_error[256];
    /* A refusal found while the plugin was in init (a duplicate command). */
    char load_error[512];
};

/* Whether the plugin's descriptor has `member` (it was built with a header that has it). */
#define PLUGIN_DESC_HAS(p, member)                                                                 \
    ((p)->desc->size >=                                                                            \
     offsetof(struct chatd_plugin_descriptor, member) + sizeof((p)->desc->member))
/* The ABI minor the plugin was built with (1.0 and 1.1 descriptors say it in abi_minor). */
#define PLUGIN_BUILT_MINOR(p)                                                                      \
    (PLUGIN_DESC_HAS(p, built_minor) ? (p)->desc->built_minor : (p)->desc->abi_minor)

/* The version gate of a host of ABI 1.<host_minor>: the majors equal, the minor the
 * plugin needs (`minor`, the descriptor's abi_minor) not newer, a descriptor at least as
 * large as ABI 1.0's, the same jansson major. -1 with the refusal in err. chatd uses
 * CHATD_ABI_MINOR; tests ask what an older host would say. */
int plugin_version_gate(const char *path, uint32_t major, uint32_t minor, uint32_t size,
                        uint32_t jansson_major, uint32_t host_minor, char *err, size_t errlen);

/* The host table handed to every plugin (host_api.c). */
extern const struct chatd_host host_api;

/* The path chatd loads plugin `name` from: DIR/NAME.so */
char *plugin_path(const char *dir, const char *name);

/* dlopen `path` and check its descriptor without running plugin code. `expected_name`
 * (may be NULL) must match the descriptor's name. -1 with the reason in err. */
int plugin_open(const char *path, const char *expected_name, struct chatd_plugin **out, char *err,
                size_t errlen);
/* Run the plugin's init with the host table. -1 with the reason in err (init failed,
 * or it registered a command another plugin has). */
int plugin_start(struct chatd_plugin *p, struct server *srv, char *err, size_t errlen);
/* Unregister everything of the plugin, run its shutdown, and close it. Keeps the
 * object mapped in sanitizer builds so leak reports can name plugin functions. */
void plugin_close(struct chatd_plugin *p);

/* Print the descriptor, options and whether this host would load it (--check-plugin).
 * Returns 0 when it would load. */
int plugin_describe(const char *path, FILE *out);

#endif
