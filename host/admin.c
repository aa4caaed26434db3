/* admin.c - the admin listener (off unless [admin] enable = yes): /metrics in the
 * Prometheus text format and /healthz, served by libevent's evhttp on the loop thread. */
#include "admin.h"

#include "log.h"
#include "metrics.h"
#include "reload.h"
#include "server.h"
#include "workers.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

static void on_metrics(struct evhttp_request *req, void *arg)
{
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    metrics_render(arg, out);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4");
    evhttp_send_reply(req, HTTP_OK, "OK", NULL);
}

/* ok while the database answers (or none is configured). */
static void on_healthz(struct evhttp_request *req, void *arg)
{
    struct server *srv = arg;
    struct pool_stats stats = {.database_up = 1};
    if (srv->pool && srv->cfg->db.enable)
        pool_get_stats(srv->pool, &stats);
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    evbuffer_add_printf(out, "%s\n", stats.database_up ? "ok" : "database down");
    evhttp_send_reply(req, stats.database_up ? HTTP_OK : 503,
                      stats.database_up ? "OK" : "Service Unavailable", NULL);
}

/* POST /reload: what SIGHUP does, answered with what happened (200) or why nothing did
 * (409). */
static void on_reload(struct evhttp_request *req, void *arg)
{
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
        evbuffer_add_printf(out, "use POST /reload\n");
        evhttp_send_reply(req, 405, "Method Not Allowed", NULL);
        return;
    }
    char report[4096];
    int rc = server_reload(arg, report, sizeof(report));
    evbuffer_add(out, report, strlen(report));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain");
    evhttp_send_reply(req, rc == 0 ? HTTP_OK : 409, rc == 0 ? "OK" : "Conflict", NULL);
}

int admin_open(struct server *srv, char *err, size_t errlen)
{
    if (!srv->cfg->admin_enable)
        return 0;
    struct config_listen where = {0};
    if (config_parse_listen(srv->cfg->admin_listen, &where, err, errlen) < 0)
        return -1;
    srv->admin = evhttp_new(srv->base);
    int rc = -1;
    if (srv->admin) {
        evhttp_set_allowed_methods(srv->admin, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
        evhttp_set_cb(srv->admin, "/metrics", on_metrics, srv);
        evhttp_set_cb(srv->admin, "/healthz", on_healthz, srv);
        evhttp_set_cb(srv->admin, "/reload", on_reload, srv);
        rc = evhttp_bind_socket(srv->admin, where.host, (ev_uint16_t)atoi(where.port));
    }
    if (rc < 0)
        snprintf(err, errlen, "[admin] cannot listen on %s", srv->cfg->admin_listen);
    else
        log_info("admin listener on %s (/metrics, /healthz, POST /reload)", srv->cfg->admin_listen);
    free(where.host);
    free(where.port);
    return rc;
}

void admin_close(struct server *srv)
{
    if (srv->admin)
        evhttp_free(srv->admin);
    srv->admin = NULL;
}
