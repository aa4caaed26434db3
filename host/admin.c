/* admin.c - the admin listener (off unless [admin] enable = yes): /metrics in the
 * Prometheus text format, /healthz and POST /reload, served by libevent's evhttp on the
 * loop thread, with small limits on a request's size and on connections (admin_conns.c),
 * the bearer token and the refusal of what a browser could send (admin_guard.c). */
#include "admin.h"

#include "admin_conns.h"
#include "admin_guard.h"
#include "cluster.h"
#include "log.h"
#include "metrics.h"
#include "reload.h"
#include "server.h"
#include "workers.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

/* Nothing the admin listener serves needs more. evhttp refuses a request over these
 * (413) as soon as its headers, or its Content-Length, show it, without buffering it. */
#define ADMIN_MAX_HEADER_BYTES 8192
#define ADMIN_MAX_BODY_BYTES   4096
/* A connection that sends nothing for this long is closed. */
#define ADMIN_TIMEOUT_S 10

struct admin {
    struct server *srv;
    struct evhttp *http;
    struct admin_conns *conns;
    char *token; /* from [admin] token_file, or NULL */
};

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain");
    evbuffer_add_printf(evhttp_request_get_output_buffer(req), "%s\n", text);
    evhttp_send_reply(req, code, reason, NULL);
}

/* Log a refusal (never with the request's headers: they may hold a token) and answer. */
static void refuse(struct evhttp_request *req, int code, const char *reason, const char *why)
{
    char *address = NULL;
    ev_uint16_t port = 0;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (evcon)
        evhttp_connection_get_peer(evcon, &address, &port);
    /* The path without the query, where someone may have put the token. */
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    log_warn("admin listener: refused %s from %s:%u: %s", path ? path : "?",
             address ? address : "?", (unsigned)port, why);
    if (code == 401)
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Bearer realm=\"chatd admin\"");
    reply_text(req, code, reason, why);
}

/* Whether req may go on: not from a web page, and with the token when `needs_token`.
 * Otherwise it has been answered. */
static int admitted(struct admin *admin, struct evhttp_request *req, int needs_token)
{
    admin_conns_served(admin->conns, req);
    const char *cross_site = admin_cross_site(req);
    if (cross_site) {
        refuse(req, 403, "Forbidden", cross_site);
        return 0;
    }
    if (!needs_token)
        return 1;
    if (!admin->token) {
        refuse(req, 403, "Forbidden", "no [admin] token_file is set, so this is off");
        return 0;
    }
    if (!admin_bearer_ok(req, admin->token)) {
        refuse(
            req, 401, "Unauthorized",
            "no or a wrong token (send Authorization: Bearer <the token of [admin] token_file>)");
        return 0;
    }
    return 1;
}

static void on_metrics(struct evhttp_request *req, void *arg)
{
    struct admin *admin = arg;
    if (!admitted(admin, req, (int)admin->srv->cfg->admin_metrics_token))
        return;
    metrics_render(admin->srv, evhttp_request_get_output_buffer(req));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4");
    evhttp_send_reply(req, HTTP_OK, "OK", NULL);
}

/* ok while the database answers (or none is configured). With [cluster], a second line
 * says whether Redis is up; its loss makes the answer 503 only with [cluster] required
 * = yes, since a node without Redis still serves its own users. */
static void on_healthz(struct evhttp_request *req, void *arg)
{
    struct admin *admin = arg;
    if (!admitted(admin, req, 0))
        return;
    struct server *srv = admin->srv;
    struct pool_stats stats = {.database_up = 1};
    if (srv->pool && srv->cfg->db.enable)
        pool_get_stats(srv->pool, &stats);
    int redis_up = cluster_redis_up(srv);
    int healthy = stats.database_up && (redis_up || !srv->cfg->cluster.required);
    char text[64];
    snprintf(text, sizeof(text), "%s%s", stats.database_up ? "ok" : "database down",
             !srv->cluster ? ""
             : redis_up    ? "\nredis: up"
                           : "\nredis: down");
    reply_text(req, healthy ? HTTP_OK : 503, healthy ? "OK" : "Service Unavailable", text);
}

/* POST /reload: what SIGHUP does, answered with what happened (200) or why nothing did
 * (409). */
static void on_reload(struct evhttp_request *req, void *arg)
{
    struct admin *admin = arg;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        admin_conns_served(admin->conns, req);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
        reply_text(req, 405, "Method Not Allowed", "use POST /reload");
        return;
    }
    if (!admitted(admin, req, 1))
        return;
    char report[4096];
    int rc = server_reload(admin->srv, report, sizeof(report));
    evbuffer_add(evhttp_request_get_output_buffer(req), report, strlen(report));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain");
    evhttp_send_reply(req, rc == 0 ? HTTP_OK : 409, rc == 0 ? "OK" : "Conflict", NULL);
}

/* Any other path. */
static void on_other(struct evhttp_request *req, void *arg)
{
    struct admin *admin = arg;
    admin_conns_served(admin->conns, req);
    reply_text(req, HTTP_NOTFOUND, "Not Found", "not found (/metrics, /healthz, POST /reload)");
}

static void admin_free(struct admin *admin)
{
    if (admin->conns)
        admin_conns_free(admin->conns, admin->http);
    else if (admin->http)
        evhttp_free(admin->http);
    free(admin->token);
    free(admin);
}

int admin_open(struct server *srv, char *err, size_t errlen)
{
    const struct config *cfg = srv->cfg;
    if (!cfg->admin_enable)
        return 0;
    struct admin *admin = calloc(1, sizeof(*admin));
    if (!admin) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    admin->srv = srv;
    if (cfg->admin_token_file[0] &&
        admin_token_load(cfg->admin_token_file, &admin->token, err, errlen) < 0) {
        admin_free(admin);
        return -1;
    }
    if (cfg->admin_metrics_token && !admin->token) {
        snprintf(err, errlen, "[admin] metrics_token = yes needs an [admin] token_file");
        admin_free(admin);
        return -1;
    }
    struct config_listen where = {0};
    if (config_parse_listen(cfg->admin_listen, &where, err, errlen) < 0) {
        admin_free(admin);
        return -1;
    }
    admin->http = evhttp_new(srv->base);
    struct evhttp_bound_socket *bound = NULL;
    if (admin->http) {
        evhttp_set_allowed_methods(admin->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
        evhttp_set_max_headers_size(admin->http, ADMIN_MAX_HEADER_BYTES);
        evhttp_set_max_body_size(admin->http, ADMIN_MAX_BODY_BYTES);
        evhttp_set_timeout(admin->http, ADMIN_TIMEOUT_S);
        evhttp_set_cb(admin->http, "/metrics", on_metrics, admin);
        evhttp_set_cb(admin->http, "/healthz", on_healthz, admin);
        evhttp_set_cb(admin->http, "/reload", on_reload, admin);
        evhttp_set_gencb(admin->http, on_other, admin);
        bound =
            evhttp_bind_socket_with_handle(admin->http, where.host, (ev_uint16_t)atoi(where.port));
    }
    free(where.host);
    free(where.port);
    if (bound)
        admin->conns = admin_conns_new(admin->http, bound, cfg->admin_max_connections);
    if (!admin->conns) {
        snprintf(err, errlen, "[admin] cannot listen on %s", cfg->admin_listen);
        admin_free(admin);
        return -1;
    }
    srv->admin = admin;
    log_info("admin listener on %s (/metrics%s, /healthz, POST /reload%s; at most %lld "
             "connections)",
             cfg->admin_listen, cfg->admin_metrics_token ? " with the token" : "",
             admin->token ? " with the token" : " off: no token_file",
             (long long)cfg->admin_max_connections);
    return 0;
}

void admin_close(struct server *srv)
{
    if (srv->admin)
        admin_free(srv->admin);
    srv->admin = NULL;
}
