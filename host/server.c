/* server.c - the event loop's life: plugins in, listeners up, signals, the graceful
 * stop, and everything torn down again. */
#include "server.h"

#include "admin.h"
#include "cluster.h"
#include "cluster_route.h"
#include "descriptors.h"
#include "commands.h"
#include "db.h"
#include "db_watchdog.h"
#include "post.h"
#include "stream_sessions.h"
#include "listener.h"
#include "log.h"
#include "flush_watch.h"
#include "hooks.h"
#include "io_threads.h"
#include "migrations.h"
#include "output.h"
#include "plugin_deps.h"
#include "plugin_loader.h"
#include "plugin_options.h"
#include "plugin_registry.h"
#include "reload.h"
#include "services.h"
#include "session.h"
#include "transport.h"
#include "users.h"
#include "workers.h"

#include <event2/thread.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    session_reap(arg);
}

struct server *server_new(struct config *cfg)
{
    static int threads_ready;
    /* Worker threads hand results to the loop with event_active(), which needs
     * libevent's locking switched on before the base exists; the MariaDB library must
     * be initialised once before any thread uses it. */
    if (!threads_ready && evthread_use_pthreads() == 0 && mysql_library_init(0, NULL, NULL) == 0)
        threads_ready = 1;
    if (!threads_ready)
        return NULL;
    struct server *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return NULL;
    srv->cfg = cfg;
    /* No epoll change list (and no environment variable may switch it on): it applies
     * an event_del at the next turn, after the socket may have been closed and its
     * number reused by a worker's database connection. */
    struct event_config *ev_cfg = event_config_new();
    if (ev_cfg) {
        event_config_set_flag(ev_cfg, EVENT_BASE_FLAG_IGNORE_ENV);
        srv->base = event_base_new_with_config(ev_cfg);
        event_config_free(ev_cfg);
    }
    if (!srv->base || line_buffer_init(&srv->out, 4096) < 0 || ratelimits_init(&srv->limits) < 0) {
        server_free(srv);
        return NULL;
    }
    srv->reaper = event_new(srv->base, -1, 0, on_reap, srv);
    if (!srv->reaper || output_init(srv) < 0) {
        server_free(srv);
        return NULL;
    }
    return srv;
}

/* Open the connection migrations run on, on first need. Start-up is the one time the
 * main thread talks to the database: no client is connected yet, and nothing may be
 * served before the schema is right. */
static int migration_db_open(struct server *srv, struct chatd_db *db, char *err, size_t errlen)
{
    if (db->conn)
        return 0;
    char *password = NULL;
    if (db_load_password(&srv->cfg->db, &password, err, errlen) < 0)
        return -1;
    int rc = db_open(db, &srv->cfg->db, password, err, errlen);
    free(password);
    return rc < 0 ? -1 : 0;
}

static int apply_migrations(struct server *srv, struct chatd_plugin *p, struct chatd_db *db,
                            char *err, size_t errlen)
{
    if (!p->desc->migrations || !p->desc->migrations->sql)
        return 0;
    if (!srv->cfg->db.enable) {
        snprintf(err, errlen, "it has schema migrations, so it needs [database] enable = yes");
        return -1;
    }
    if (srv->check_only)
        return 0;
    if (migration_db_open(srv, db, err, errlen) < 0)
        return -1;
    return migrations_apply(db, p, err, errlen);
}

/* "file:line: plugin 'name': reason", for refusals that do not name their line. */
static void locate(const struct config *cfg, size_t i, char *err, size_t errlen)
{
    char message[1024];
    snprintf(message, sizeof(message), "%s:%d: plugin '%s': %s", cfg->path ? cfg->path : "config",
             cfg->enabled_lines[i], cfg->enabled[i], err);
    snprintf(err, errlen, "%s", message);
}

/* Open every enabled plugin (reading its descriptor) and order them so that providers
 * of services start before their dependents. 0, or -1 with the reason in err. */
static int open_in_order(const struct config *cfg, struct chatd_plugin **opened, size_t *order,
                         char *err, size_t errlen)
{
    for (size_t i = 0; i < cfg->n_enabled; i++) {
        char *path = plugin_path(cfg->plugin_dir, cfg->enabled[i]);
        int rc = path ? plugin_open(path, cfg->enabled[i], &opened[i], err, errlen) : -1;
        free(path);
        if (rc < 0) {
            if (!path)
                snprintf(err, errlen, "out of memory");
            locate(cfg, i, err, errlen);
            return -1;
        }
    }
    struct dep_plugin *deps = calloc(cfg->n_enabled ? cfg->n_enabled : 1, sizeof(*deps));
    if (!deps) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < cfg->n_enabled; i++)
        deps_from_plugin(opened[i], cfg->enabled_lines[i], &deps[i]);
    int rc = deps_order(deps, cfg->n_enabled, cfg->path ? cfg->path : "config", order, err, errlen);
    free(deps);
    return rc;
}

/* The host's own tables (messages, the timeline, devices) come before every plugin's. */
static int apply_host_migrations(struct server *srv, struct chatd_db *db, char *err, size_t errlen)
{
    if (!srv->cfg->db.enable || srv->check_only)
        return 0;
    if (migration_db_open(srv, db, err, errlen) < 0 || stream_migrate(srv, db, err, errlen) < 0 ||
        post_load_counter(srv, db, err, errlen) < 0)
        return -1;
    return 0;
}

/* Jobs (and hook runs) a plugin started in an init that then failed must end before it
 * is unmapped. Nothing serves yet at start, so the loop runs here for their callbacks
 * (each job within its time budget); a reload retires such an instance instead, and the
 * registry closes it once they are done (reload.c). */
static void on_init_wait_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static void wait_for_init_work(struct server *srv, struct chatd_plugin *p)
{
    /* Before the listeners open, the base may have no event added (the pool only
     * activates its own): a short timer keeps each turn of the loop waiting. */
    struct event *tick = evtimer_new(srv->base, on_init_wait_tick, NULL);
    while (tick && (p->pending_jobs > 0 || p->pending_calls > 0)) {
        struct timeval tv = {0, 10000};
        if (evtimer_add(tick, &tv) < 0 || event_base_loop(srv->base, EVLOOP_ONCE) < 0)
            break;
    }
    if (tick)
        event_free(tick);
}

int server_load_plugins(struct server *srv, char *err, size_t errlen)
{
    const struct config *cfg = srv->cfg;
    struct pool_cpu_config cpu = {.workers = cfg->cpu_workers, .queue_max = cfg->cpu_queue_max};
    srv->pool = pool_new(srv->base, &cfg->db, &cpu, err, errlen);
    if (!srv->pool)
        return -1;
    if (stream_new(srv) < 0 || post_new(srv) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t n = cfg->n_enabled;
    struct chatd_plugin **opened = calloc(n ? n : 1, sizeof(*opened));
    size_t *order = calloc(n ? n : 1, sizeof(*order));
    struct chatd_db migration_db = {0};
    int result = opened && order ? open_in_order(cfg, opened, order, err, errlen) : -1;
    if (!opened || !order)
        snprintf(err, errlen, "out of memory");
    if (result == 0)
        result = apply_host_migrations(srv, &migration_db, err, errlen);
    for (size_t k = 0; k < n && result == 0; k++) {
        size_t i = order[k];
        struct chatd_plugin *p = opened[i];
        opened[i] = NULL;
        int rc = 0;
        /* Option errors already point at their own line of the plugin's section. */
        int located = 0;
        if (plugin_configure(p, cfg, err, errlen) < 0) {
            plugin_close(p);
            rc = -1;
            located = 1;
        }
        if (rc == 0 && apply_migrations(srv, p, &migration_db, err, errlen) < 0) {
            plugin_close(p);
            rc = -1;
        }
        if (rc == 0 && plugin_start(p, srv, err, errlen) < 0) {
            wait_for_init_work(srv, p);
            plugin_close(p);
            rc = -1;
        }
        if (rc == 0) {
            struct chatd_plugin **grown =
                realloc(srv->plugins, (srv->n_plugins + 1) * sizeof(*grown));
            if (grown) {
                srv->plugins = grown;
                srv->plugins[srv->n_plugins++] = p;
                registry_note_plugin(p, cfg);
                continue;
            }
            plugin_close(p);
            snprintf(err, errlen, "out of memory");
        } else if (!located) {
            locate(cfg, i, err, errlen);
        }
        result = -1;
    }
    /* Whatever was opened but not started is closed unstarted. */
    for (size_t i = 0; opened && i < n; i++)
        if (opened[i])
            plugin_close(opened[i]);
    free(opened);
    free(order);
    db_close(&migration_db);
    if (result == 0)
        stream_start(srv);
    return result;
}

static void on_stop_check(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    server_session_gone(arg);
}

void server_session_gone(struct server *srv)
{
    if (!srv->stopping || srv->n_sessions > 0)
        return;
    /* Work that closing sessions started (saving state at logout) finishes too, within
     * shutdown_timeout. */
    if (srv->pool && pool_pending(srv->pool) > 0) {
        if (!srv->stop_check)
            srv->stop_check = evtimer_new(srv->base, on_stop_check, srv);
        struct timeval again = {0, 20000};
        if (srv->stop_check)
            evtimer_add(srv->stop_check, &again);
        return;
    }
    event_base_loopexit(srv->base, NULL);
}

static void on_shutdown_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *srv = arg;
    log_warn("shutdown_timeout passed with %zu sessions still open; closing them", srv->n_sessions);
    event_base_loopexit(srv->base, NULL);
}

void server_stop(struct server *srv)
{
    if (srv->stopping) {
        log_warn("second stop signal: exiting now");
        event_base_loopexit(srv->base, NULL);
        return;
    }
    srv->stopping = 1;
    log_info("stopping: no new connections, finishing %zu sessions", srv->n_sessions);
    listeners_close(srv);
    admin_close(srv);
    session_begin_stop(srv);
    struct timeval limit = {(time_t)srv->cfg->shutdown_timeout_s, 0};
    srv->shutdown_timer = evtimer_new(srv->base, on_shutdown_timeout, srv);
    evtimer_add(srv->shutdown_timer, &limit);
    server_session_gone(srv);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    if (sig == SIGHUP) {
        char report[4096];
        log_info("received SIGHUP: reloading the config");
        server_reload(arg, report, sizeof(report));
        return;
    }
    log_info("received %s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    server_stop(arg);
}

int server_run(struct server *srv)
{
    char err[1024];
    signal(SIGPIPE, SIG_IGN);
    if (descriptors_reserve(srv->cfg, err, sizeof(err)) < 0 ||
        io_threads_start(srv, err, sizeof(err)) < 0 || listeners_open(srv, err, sizeof(err)) < 0 ||
        admin_open(srv, err, sizeof(err)) < 0 || cluster_start(srv, err, sizeof(err)) < 0) {
        log_error("%s", err);
        return 1;
    }
    if (cluster_route_start(srv) < 0) {
        log_error("cluster: cross-node delivery cannot start: out of memory");
        return 1;
    }
    srv->sigterm = evsignal_new(srv->base, SIGTERM, on_signal, srv);
    srv->sigint = evsignal_new(srv->base, SIGINT, on_signal, srv);
    srv->sighup = evsignal_new(srv->base, SIGHUP, on_signal, srv);
    evsignal_add(srv->sigterm, NULL);
    evsignal_add(srv->sigint, NULL);
    evsignal_add(srv->sighup, NULL);
    if (srv->pool)
        pool_watch_health(srv->pool);
    log_info("chatd %s ready (%zu plugins, %zu commands)", CHATD_VERSION, srv->n_plugins,
             (size_t)HASH_COUNT(srv->commands));

    event_base_dispatch(srv->base);

    log_info("stopped");
    return 0;
}

void server_free(struct server *srv)
{
    if (!srv)
        return;
    listeners_close(srv);
    admin_close(srv);
    cluster_stop(srv);
    srv->tearing_down = 1;
    if (srv->base) {
        session_free_all(srv);
        io_threads_stop(srv); /* after the sessions: they release their connections */
        transport_ws_free_lingering(srv);
        /* Jobs still queued run to the end; their done callbacks need their plugins. */
        pool_free(srv->pool);
        cluster_route_free(srv);
        /* Messages still waiting to be stored fail; their plugins are still loaded. */
        post_free(srv);
        stream_free(srv);
        /* Plugins go in reverse order of starting (providers of services started
         * before their dependents), so a later one may rely on an earlier one for as
         * long as it runs; instances retired by a reload last. */
        for (size_t i = srv->n_plugins; i-- > 0;)
            plugin_close(srv->plugins[i]);
        srv->n_plugins = 0;
        registry_close_retired(srv, 1);
        flush_watch_free_all(srv);
    }
    ratelimits_free(&srv->limits);
    hooks_free_all(srv);
    services_free_all(srv);
    metrics_free(&srv->metrics);
    free(srv->plugins);
    users_free_all(srv);
    if (srv->sigterm)
        event_free(srv->sigterm);
    if (srv->sigint)
        event_free(srv->sigint);
    if (srv->sighup)
        event_free(srv->sighup);
    if (srv->accept_pause)
        event_free(srv->accept_pause);
    if (srv->stop_check)
        event_free(srv->stop_check);
    if (srv->retire_check)
        event_free(srv->retire_check);
    if (srv->shutdown_timer)
        event_free(srv->shutdown_timer);
    if (srv->reaper)
        event_free(srv->reaper);
    output_free(srv);
    SSL_CTX_free(srv->tls_ctx);
    if (srv->base)
        event_base_free(srv->base);
    line_buffer_free(&srv->out);
    free(srv);
}
