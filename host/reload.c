/* reload.c - live reload: re-read the config, validate all of it without touching the
 * running server, then apply it (live settings; plugins enabled, disabled, or changed
 * on disk or in their options). Instances taken out of service retire through the
 * plugin registry (plugin_registry.c), which closes them once drained.
 * Everything here runs on the loop thread, except migrate_work. */
#include "reload.h"

#include "cidr.h"
#include "commands.h"
#include "descriptors.h"
#include "log.h"
#include "migrations.h"
#include "plugin_deps.h"
#include "plugin_loader.h"
#include "plugin_options.h"
#include "plugin_registry.h"
#include "plugin_trial.h"
#include "server.h"
#include "timers.h"
#include "tls_context.h"
#include "users.h"
#include "workers.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Migrations of a plugin started by a reload may take long: they run on a worker, with a
 * budget of their own instead of [database] job_timeout_ms. */
#define MIGRATION_BUDGET_MS 600000

static void say(char *report, size_t len, const char *fmt, ...) CHATD_PRINTF(3, 4);
static void say(char *report, size_t len, const char *fmt, ...)
{
    size_t used = strlen(report);
    if (used + 1 >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(report + used, len - used, fmt, ap);
    va_end(ap);
    used = strlen(report);
    if (used + 1 < len) {
        report[used] = '\n';
        report[used + 1] = '\0';
    }
}

/* Start a loaded, configured and migrated instance, and switch its commands over from
 * the instance it replaces (if any), which then retires. On failure the running
 * instance keeps serving and the new one is closed. */
static int activate(struct server *srv, struct chatd_plugin *p)
{
    size_t at = registry_find(srv, p->name);
    struct chatd_plugin *old = at == SIZE_MAX ? NULL : srv->plugins[at];
    struct chatd_plugin **grown = NULL;
    if (!old && !(grown = realloc(srv->plugins, (srv->n_plugins + 1) * sizeof(*grown)))) {
        log_error("reload: plugin %s not started: out of memory", p->name);
        registry_retire(srv, p, RETIRED_UNUSED);
        return -1;
    }
    if (grown)
        srv->plugins = grown;
    if (old)
        commands_retire_plugin(srv, old);
    char err[1024];
    if (plugin_start(p, srv, err, sizeof(err)) < 0) {
        log_error("reload: plugin %s not started: %s%s", p->name, err,
                  old ? "; the running instance keeps serving" : "");
        commands_remove_plugin(srv, p);
        registry_detach(srv, p);
        if (old)
            commands_restore_plugin(srv, old);
        registry_retire(srv, p, RETIRED_UNUSED);
        return -1;
    }
    if (old) {
        registry_retire(srv, old, RETIRED_SERVED);
        srv->plugins[at] = p;
    } else {
        srv->plugins[srv->n_plugins++] = p;
    }
    /* The new instance learns who is logged in before any request reaches it. */
    users_replay_logins(srv, p);
    return 0;
}

struct migrate_job {
    struct server *srv;
    struct chatd_plugin *plugin;
    char err[1024];
};

/* Worker thread: the plugin's code is mapped but none of it runs here; the
 * migrations are data in its descriptor. */
static int migrate_work(struct chatd_db *db, void *arg)
{
    struct migrate_job *j = arg;
    return migrations_apply(db, j->plugin, j->err, sizeof(j->err)) < 0 ? CHATD_EDB : 0;
}

static void migrate_done(struct chatd_request *req, void *arg, int status)
{
    (void)req;
    struct migrate_job *j = arg;
    struct server *srv = j->srv;
    srv->reloads_pending--;
    if (status != 0 || srv->stopping || srv->tearing_down) {
        if (status != 0)
            log_error("reload: plugin %s not started: %s", j->plugin->name,
                      j->err[0] ? j->err : chatd_strerror(status));
        /* The pool still counts this job against the plugin: closed once it is done. */
        registry_retire(srv, j->plugin, RETIRED_UNUSED);
    } else {
        activate(srv, j->plugin);
    }
    free(j);
}

/* Copy a plugin file to a private file and return its path: dlopen of a fresh file
 * gives a fresh handle (new code, new statics) even when only the options changed or
 * the file was overwritten in place, and nothing done later to the configured file can
 * touch the mapped copy. *st is the identity of the file copied. */
static char *private_copy(const char *src, struct stat *st, char *err, size_t errlen)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    size_t n = strlen(tmp) + 32;
    char *path = malloc(n);
    int in = open(src, O_RDONLY | O_CLOEXEC);
    int out = -1;
    if (path) {
        snprintf(path, n, "%s/chatd-plugin-XXXXXX", tmp);
        if (in >= 0 && fstat(in, st) == 0)
            out = mkstemp(path);
    }
    int ok = in >= 0 && out >= 0;
    char buf[65536];
    ssize_t got;
    while (ok && (got = read(in, buf, sizeof(buf))) != 0) {
        if (got < 0 || write(out, buf, (size_t)got) != got)
            ok = 0;
    }
    if (out >= 0 && close(out) != 0)
        ok = 0;
    if (!ok) {
        snprintf(err, errlen, "cannot copy %s to a private file in %s: %s", src, tmp,
                 strerror(errno));
        if (out >= 0)
            unlink(path);
        free(path);
        path = NULL;
    }
    if (in >= 0)
        close(in);
    return path;
}

/* Replace every `copy` in text with `path`: refusals name the file the operator knows. */
static void name_file(char *text, size_t cap, const char *copy, const char *path)
{
    char out[1024];
    size_t used = 0;
    const char *at = text, *hit;
    while ((hit = strstr(at, copy)) && used < sizeof(out)) {
        used +=
            (size_t)snprintf(out + used, sizeof(out) - used, "%.*s%s", (int)(hit - at), at, path);
        at = hit + strlen(copy);
    }
    if (used >= sizeof(out) || at == text)
        return;
    snprintf(out + used, sizeof(out) - used, "%s", at);
    snprintf(text, cap, "%s", out);
}

/* Load a new instance of plugin `name` from `path` and configure it from cfg. */
static struct chatd_plugin *load_instance(const char *path, const char *name,
                                          const struct config *cfg, char *err, size_t errlen)
{
    struct stat st;
    char *copy = private_copy(path, &st, err, errlen);
    if (!copy)
        return NULL;
    struct chatd_plugin *p = NULL;
    int rc = plugin_open(copy, name, &p, err, errlen);
    /* The mapping stays valid without the file's name. */
    unlink(copy);
    if (rc < 0)
        name_file(err, errlen, copy, path);
    free(copy);
    if (rc < 0)
        return NULL;
    char *configured = strdup(path);
    if (!configured || plugin_configure(p, cfg, err, errlen) < 0) {
        if (!configured)
            snprintf(err, errlen, "out of memory");
        free(configured);
        plugin_close(p);
        return NULL;
    }
    free(p->path);
    p->path = configured;
    registry_note_file(p, &st);
    p->options_text = registry_options_text(cfg, name);
    return p;
}

/* Whether plugin `name` at `path` would load and accept its options in cfg, tried in a
 * child process so that a broken plugin's code (its constructors) never runs in chatd.
 * 0, or -1 with the reason in err. */
struct trial {
    const char *path, *name;
    const struct config *cfg;
    int db_enabled;
};

/* In the trial's child: load a private copy, configure it, check its needs. */
static int try_plugin(void *arg, char *reason, size_t cap)
{
    const struct trial *t = arg;
    struct chatd_plugin *p;
    struct stat st;
    /* A private copy here too: dlopen of a file overwritten in place (same inode) would
     * hand back the copy of chatd's old mapping instead of the new code. */
    char *copy = private_copy(t->path, &st, reason, cap);
    int rc = copy ? plugin_open(copy, t->name, &p, reason, cap) : -1;
    if (copy) {
        unlink(copy);
        name_file(reason, cap, copy, t->path);
    }
    if (rc == 0)
        rc = plugin_configure(p, t->cfg, reason, cap);
    if (rc == 0 && p->desc->migrations && p->desc->migrations->sql && !t->db_enabled) {
        snprintf(reason, cap, "it has schema migrations, so it needs [database] enable = yes");
        rc = -1;
    }
    if (rc == 0) {
        /* Tell the parent the plugin's services, one "P name" or "R name" line each. */
        struct dep_plugin d;
        deps_from_plugin(p, 0, &d);
        for (const char *const *s = d.provides; s && *s; s++)
            say(reason, cap, "P %s", *s);
        for (const char *const *s = d.requires; s && *s; s++)
            say(reason, cap, "R %s", *s);
    }
    return rc;
}

/* The services a trial child reported (P and R lines, see try_plugin) into two
 * NULL-terminated lists. 0, or -1 when out of memory. */
static int parse_services(const char *report, char ***provides, char ***requires)
{
    size_t lines = 1;
    for (const char *c = report; *c; c++)
        lines += *c == '\n';
    char **lists[2] = {calloc(lines, sizeof(char *)), calloc(lines, sizeof(char *))};
    *provides = lists[0];
    *requires = lists[1];
    if (!lists[0] || !lists[1])
        return -1;
    size_t used[2] = {0, 0};
    for (const char *line = report; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        int which = line[0] == 'R';
        if (len > 2 && (line[0] == 'P' || line[0] == 'R') &&
            !(lists[which][used[which]++] = strndup(line + 2, len - 2)))
            return -1;
        line += len + (end != NULL);
    }
    return 0;
}

static void names_free(char **list)
{
    for (size_t i = 0; list && list[i]; i++)
        free(list[i]);
    free(list);
}

static int trial_load(const char *path, const char *name, const struct config *cfg, int db_enabled,
                      char *err, size_t errlen)
{
    struct trial t = {path, name, cfg, db_enabled};
    return plugin_trial(try_plugin, &t, err, errlen);
}

enum plugin_action { KEEP, START, REPLACE };

struct plan_entry {
    char *name;
    char *path;
    enum plugin_action action;
    const char *why;
    /* The services of the instance that will serve (from the trial for a new one). */
    char **provides, **requires;
};

static int str_differs(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") != 0;
}

static int listeners_differ(const struct config *a, const struct config *b)
{
    if (a->n_listeners != b->n_listeners)
        return 1;
    for (size_t i = 0; i < a->n_listeners; i++)
        if (str_differs(a->listeners[i].host, b->listeners[i].host) ||
            str_differs(a->listeners[i].port, b->listeners[i].port) ||
            a->listeners[i].tls != b->listeners[i].tls ||
            a->listeners[i].direct != b->listeners[i].direct)
            return 1;
    return 0;
}

/* The PROXY protocol is part of how the listeners take connections. */
static int proxy_differs(const struct config *a, const struct config *b)
{
    return a->proxy_protocol != b->proxy_protocol || a->n_proxy_from != b->n_proxy_from ||
           memcmp(a->proxy_from, b->proxy_from, a->n_proxy_from * sizeof(*a->proxy_from)) != 0;
}

static int database_differs(const struct config_database *a, const struct config_database *b)
{
    return a->enable != b->enable || str_differs(a->socket, b->socket) ||
           str_differs(a->host, b->host) || a->port != b->port || str_differs(a->user, b->user) ||
           str_differs(a->password, b->password) ||
           str_differs(a->password_file, b->password_file) || str_differs(a->name, b->name) ||
           a->tls != b->tls || a->tls_verify != b->tls_verify ||
           str_differs(a->tls_ca, b->tls_ca) || str_differs(a->tls_cert, b->tls_cert) ||
           str_differs(a->tls_key, b->tls_key) || a->workers != b->workers ||
           a->queue_max != b->queue_max || a->job_timeout_ms != b->job_timeout_ms ||
           a->connect_timeout_s != b->connect_timeout_s;
}

/* The node's name and lease are part of what other nodes know of it: [cluster] changes
 * only with a restart. */
static int cluster_differs(const struct config_cluster *a, const struct config_cluster *b)
{
    return a->enable != b->enable || str_differs(a->node, b->node) ||
           str_differs(a->redis, b->redis) ||
           str_differs(a->redis_password_file, b->redis_password_file) ||
           a->lease_ms != b->lease_ms || a->connect_timeout_ms != b->connect_timeout_ms ||
           a->gap_wait_ms != b->gap_wait_ms || a->required != b->required;
}

#define SWAP(a, b)                                                                                 \
    do {                                                                                           \
        __typeof__(a) swap_tmp_ = (a);                                                             \
        (a) = (b);                                                                                 \
        (b) = swap_tmp_;                                                                           \
    } while (0)

/* Apply what can change in a running server, report what cannot, and take the new
 * plugin sections over (the old ones are freed with `next`). */
static void apply_settings(struct server *srv, struct config *next, char *report, size_t len)
{
    struct config *cur = srv->cfg;
    struct {
        const char *name;
        int64_t *live;
        int64_t value;
    } limits[] = {
        {"[server] max_connections", &cur->max_connections, next->max_connections},
        {"[server] idle_timeout", &cur->idle_timeout_s, next->idle_timeout_s},
        {"[server] max_frame_bytes", &cur->max_frame_bytes, next->max_frame_bytes},
        {"[server] max_output_bytes", &cur->max_output_bytes, next->max_output_bytes},
        {"[server] output_pause_bytes", &cur->output_pause_bytes, next->output_pause_bytes},
        {"[server] max_pipelined", &cur->max_pipelined, next->max_pipelined},
        {"[server] frame_timeout", &cur->frame_timeout_s, next->frame_timeout_s},
        {"[server] login_timeout", &cur->login_timeout_s, next->login_timeout_s},
        {"[server] shutdown_timeout", &cur->shutdown_timeout_s, next->shutdown_timeout_s},
        {"[server] hook_timeout_ms", &cur->hook_timeout_ms, next->hook_timeout_ms},
        {"[log] level", &cur->log_level, next->log_level},
        {"[tls] handshake_timeout", &cur->tls.handshake_timeout_s, next->tls.handshake_timeout_s},
        {"[messages] batch_max", &cur->messages.batch_max, next->messages.batch_max},
        {"[web] ping_interval", &cur->web.ping_interval_s, next->web.ping_interval_s},
        {"[web] pong_timeout", &cur->web.pong_timeout_s, next->web.pong_timeout_s},
        {"[web] request_timeout", &cur->web.request_timeout_s, next->web.request_timeout_s},
    };
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        if (*limits[i].live == limits[i].value)
            continue;
        say(report, len, "%s: %lld -> %lld", limits[i].name, (long long)*limits[i].live,
            (long long)limits[i].value);
        *limits[i].live = limits[i].value;
    }
    if (memcmp(&cur->limits, &next->limits, sizeof(cur->limits)) != 0) {
        say(report, len, "[limits] changed");
        cur->limits = next->limits;
    }
    log_configure((enum chatd_log_level)cur->log_level, (int)cur->log_syslog, cur->log_ident);
    const char *restart[10];
    size_t n_restart = 0;
    if (listeners_differ(cur, next))
        restart[n_restart++] = "[server] listen";
    if (proxy_differs(cur, next))
        restart[n_restart++] = "[server] proxy_protocol/proxy_from";
    if (cur->log_syslog != next->log_syslog || str_differs(cur->log_ident, next->log_ident))
        restart[n_restart++] = "[log] syslog/ident";
    if (cur->admin_enable != next->admin_enable ||
        str_differs(cur->admin_listen, next->admin_listen) ||
        cur->admin_max_connections != next->admin_max_connections ||
        str_differs(cur->admin_token_file, next->admin_token_file) ||
        cur->admin_metrics_token != next->admin_metrics_token)
        restart[n_restart++] = "[admin]";
    if (database_differs(&cur->db, &next->db))
        restart[n_restart++] = "[database]";
    if (cur->cpu_workers != next->cpu_workers || cur->cpu_queue_max != next->cpu_queue_max)
        restart[n_restart++] = "[server] cpu_workers/cpu_queue_max";
    if (cur->io_threads != next->io_threads)
        restart[n_restart++] = "[server] io_threads";
    if (cluster_differs(&cur->cluster, &next->cluster))
        restart[n_restart++] = "[cluster]";
    if (cur->web.enable != next->web.enable || cur->web.tls != next->web.tls ||
        str_differs(cur->web.listen, next->web.listen))
        restart[n_restart++] = "[web] enable/listen/tls";
    if (str_differs(cur->web.allowed_origins, next->web.allowed_origins) ||
        str_differs(cur->web.root, next->web.root))
        say(report, len, "[web] allowed_origins/root changed");
    for (size_t i = 0; i < n_restart; i++)
        say(report, len, "%s changed: it needs a restart (kept as it was)", restart[i]);

    SWAP(cur->tls, next->tls); /* its context is built by server_reload */
    SWAP(cur->web.allowed_origins, next->web.allowed_origins);
    SWAP(cur->web.root, next->web.root);
    SWAP(cur->plugin_dir, next->plugin_dir);
    SWAP(cur->enabled, next->enabled);
    SWAP(cur->enabled_lines, next->enabled_lines);
    SWAP(cur->n_enabled, next->n_enabled);
    SWAP(cur->authenticator, next->authenticator);
    SWAP(cur->authenticator_line, next->authenticator_line);
    SWAP(cur->plugin_entries, next->plugin_entries);
    SWAP(cur->n_plugin_entries, next->n_plugin_entries);
}

static void plan_free(struct plan_entry *plan, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(plan[i].name);
        free(plan[i].path);
        names_free(plan[i].provides);
        names_free(plan[i].requires);
    }
    free(plan);
}

/* Check the services of the plugins next enables (each required one provided) and find
 * the order to start new instances in (providers first) into order. */
static int plan_order(struct server *srv, const struct config *next, const struct plan_entry *plan,
                      size_t *order, char *err, size_t errlen)
{
    struct dep_plugin *deps = calloc(next->n_enabled ? next->n_enabled : 1, sizeof(*deps));
    if (!deps) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < next->n_enabled; i++) {
        struct chatd_plugin *running = server_plugin(srv, plan[i].name);
        if (plan[i].action == KEEP && running) {
            deps_from_plugin(running, next->enabled_lines[i], &deps[i]);
        } else {
            deps[i] = (struct dep_plugin){.name = plan[i].name,
                                          .provides = (const char *const *)plan[i].provides,
                                          .requires = (const char *const *)plan[i].requires,
                                          .line = next->enabled_lines[i]};
        }
    }
    int rc =
        deps_order(deps, next->n_enabled, next->path ? next->path : "config", order, err, errlen);
    free(deps);
    return rc;
}

/* Decide what each enabled plugin needs and check every new instance in a child, and
 * the services they provide and require; order (n_enabled entries) gets the order to
 * start them in. */
static int make_plan(struct server *srv, const struct config *next, struct plan_entry **out,
                     size_t *order, char *err, size_t errlen)
{
    const char *file = next->path ? next->path : "config";
    struct plan_entry *plan = calloc(next->n_enabled ? next->n_enabled : 1, sizeof(*plan));
    if (!plan) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char reason[1024];
    for (size_t i = 0; i < next->n_enabled; i++) {
        struct plan_entry *e = &plan[i];
        const char *name = next->enabled[i];
        if (!(e->name = strdup(name)) || !(e->path = plugin_path(next->plugin_dir, name))) {
            snprintf(err, errlen, "out of memory");
            plan_free(plan, next->n_enabled);
            return -1;
        }
        struct stat st;
        if (stat(e->path, &st) != 0) {
            snprintf(err, errlen, "%s:%d: plugin '%s': cannot read %s: %s", file,
                     next->enabled_lines[i], name, e->path, strerror(errno));
            plan_free(plan, next->n_enabled);
            return -1;
        }
        size_t at = registry_find(srv, name);
        char *options = registry_options_text(next, name);
        if (at == SIZE_MAX) {
            e->action = START;
            e->why = "newly enabled";
        } else if (strcmp(srv->plugins[at]->path, e->path) != 0 ||
                   !registry_same_file(srv->plugins[at], &st)) {
            e->action = REPLACE;
            e->why = "its file changed";
        } else if (!options || str_differs(options, srv->plugins[at]->options_text)) {
            e->action = REPLACE;
            e->why = "its options changed";
        } else if (srv->plugins[at]->is_authenticator !=
                   (next->authenticator && strcmp(next->authenticator, name) == 0)) {
            /* Its init may depend on the role (accounts refuses to start without it). */
            e->action = REPLACE;
            e->why = "it was named or unnamed as the authenticator";
        } else {
            e->action = KEEP;
        }
        free(options);
        if (e->action == KEEP)
            continue;
        if (trial_load(e->path, name, next, (int)srv->cfg->db.enable, reason, sizeof(reason)) < 0) {
            /* Option errors already name their own line. */
            if (strncmp(reason, file, strlen(file)) == 0)
                snprintf(err, errlen, "%s", reason);
            else
                snprintf(err, errlen, "%s:%d: plugin '%s': %s", file, next->enabled_lines[i], name,
                         reason);
            plan_free(plan, next->n_enabled);
            return -1;
        }
        if (parse_services(reason, &e->provides, &e->requires) < 0) {
            snprintf(err, errlen, "out of memory");
            plan_free(plan, next->n_enabled);
            return -1;
        }
    }
    if (plan_order(srv, next, plan, order, err, errlen) < 0) {
        plan_free(plan, next->n_enabled);
        return -1;
    }
    *out = plan;
    return 0;
}

/* Open, configure and migrate (in a job) or start one new instance. */
static void start_instance(struct server *srv, const struct plan_entry *e, char *report, size_t len)
{
    char err[1024];
    struct chatd_plugin *p = load_instance(e->path, e->name, srv->cfg, err, sizeof(err));
    if (!p) {
        say(report, len, "plugin %s not started: %s", e->name, err);
        log_error("reload: plugin %s not started: %s", e->name, err);
        return;
    }
    if (!p->desc->migrations || !p->desc->migrations->sql) {
        if (activate(srv, p) == 0)
            say(report, len, "plugin %s %s: %s, serving", e->name,
                p->desc->version ? p->desc->version : "", e->why);
        else
            say(report, len, "plugin %s: %s, but it did not start (see the log)", e->name, e->why);
        return;
    }
    struct migrate_job *j = calloc(1, sizeof(*j));
    static const struct chatd_job job = {.work = migrate_work,
                                         .done = migrate_done,
                                         .flags = CHATD_JOB_DB,
                                         .timeout_ms = MIGRATION_BUDGET_MS};
    int rc = j ? 0 : CHATD_ENOMEM;
    if (j) {
        j->srv = srv;
        j->plugin = p;
        rc = pool_submit(srv->pool, p, NULL, &job, j);
    }
    if (rc != 0) {
        free(j);
        say(report, len, "plugin %s not started: its migrations could not be queued (%s)", e->name,
            chatd_strerror(rc));
        log_error("reload: plugin %s not started: its migrations could not be queued (%s)", e->name,
                  chatd_strerror(rc));
        registry_retire(srv, p, RETIRED_UNUSED);
        return;
    }
    srv->reloads_pending++;
    say(report, len, "plugin %s %s: %s, migrating; it serves once migrated", e->name,
        p->desc->version ? p->desc->version : "", e->why);
}

int server_reload(struct server *srv, char *report, size_t len)
{
    report[0] = '\0';
    const char *refusal = NULL;
    if (!srv->source)
        refusal = "this chatd was not started from a config file";
    else if (srv->stopping)
        refusal = "chatd is stopping";
    else if (srv->reloads_pending)
        refusal = "plugins of the last reload are still migrating; try again once they serve";
    if (refusal) {
        say(report, len, "reload refused: %s", refusal);
        log_warn("reload refused: %s", refusal);
        return -1;
    }
    log_info("reloading %s", srv->source->path);
    char err[2048];
    struct config next;
    struct plan_entry *plan = NULL;
    if (config_build(&next, srv->source, err, sizeof(err)) < 0) {
        say(report, len, "reload refused, the running config is kept: %s", err);
        log_error("reload refused, the running config is kept: %s", err);
        return -1;
    }
    /* Of the limits on descriptors only max_connections changes without a restart. */
    struct config will_run = *srv->cfg;
    will_run.max_connections = next.max_connections;
    if (descriptors_reserve(&will_run, err, sizeof(err)) < 0) {
        config_free(&next);
        say(report, len, "reload refused, the running config is kept: %s", err);
        log_error("reload refused, the running config is kept: %s", err);
        return -1;
    }
    /* Certificates are re-read: a renewed one serves the connections accepted from now
     * on. A bad one refuses the whole reload, and the running one stays. */
    SSL_CTX *tls_ctx = NULL;
    if (srv->tls_ctx && config_has_tls_listener(&next) &&
        !(tls_ctx = tls_context_new(&next.tls, err, sizeof(err)))) {
        config_free(&next);
        say(report, len, "reload refused, the running config is kept: %s", err);
        log_error("reload refused, the running config is kept: %s", err);
        return -1;
    }
    size_t *order = calloc(next.n_enabled ? next.n_enabled : 1, sizeof(*order));
    if (!order || make_plan(srv, &next, &plan, order, err, sizeof(err)) < 0) {
        if (!order)
            snprintf(err, sizeof(err), "out of memory");
        free(order);
        config_free(&next);
        SSL_CTX_free(tls_ctx);
        say(report, len, "reload refused, the running config is kept: %s", err);
        log_error("reload refused, the running config is kept: %s", err);
        return -1;
    }
    size_t n_plan = next.n_enabled;

    /* Disabled plugins first: their commands answer unknown_cmd from now on. */
    size_t kept = 0;
    for (size_t i = 0; i < srv->n_plugins; i++) {
        struct chatd_plugin *p = srv->plugins[i];
        int enabled = 0;
        for (size_t k = 0; k < n_plan && !enabled; k++)
            enabled = strcmp(plan[k].name, p->name) == 0;
        if (enabled) {
            srv->plugins[kept++] = p;
        } else {
            say(report, len, "plugin %s: disabled; unloads once its work is done", p->name);
            registry_retire(srv, p, RETIRED_SERVED);
        }
    }
    srv->n_plugins = kept;

    apply_settings(srv, &next, report, len);
    config_free(&next);
    if (tls_ctx) {
        SSL_CTX_free(srv->tls_ctx); /* sessions keep it alive for as long as they run */
        srv->tls_ctx = tls_ctx;
        say(report, len, "[tls] certificate and key re-read: new connections get them");
    }

    /* Providers of services first, as at start. */
    for (size_t k = 0; k < n_plan; k++) {
        const struct plan_entry *e = &plan[order[k]];
        if (e->action == KEEP)
            say(report, len, "plugin %s: unchanged", e->name);
        else
            start_instance(srv, e, report, len);
    }
    free(order);
    plan_free(plan, n_plan);
    log_info("reload of %s applied:", srv->source->path);
    char *line = report;
    while (*line) {
        char *end = strchr(line, '\n');
        log_info("  %.*s", (int)(end ? end - line : (long)strlen(line)), line);
        if (!end)
            break;
        line = end + 1;
    }
    return 0;
}
