/* request.c - request lifetime (holds, the one reply, the `internal` answer for a
 * request a plugin forgot). */
#include "request.h"

#include "log.h"
#include "plugin_loader.h"

#include <stdlib.h>
#include <string.h>

struct chatd_request *request_new(struct session *s, struct command *cmd, json_t *body, json_t *id)
{
    struct chatd_request *req = calloc(1, sizeof(*req));
    if (!req)
        return NULL;
    req->server = s->server;
    req->command = cmd;
    req->session = s->id;
    req->body = body;
    req->id = id;
    if (s->user && !(req->user = strdup(s->user->name))) {
        free(req);
        return NULL;
    }
    req->holds = 1;
    clock_gettime(CLOCK_MONOTONIC, &req->arrived);
    return req;
}

void request_hold(struct chatd_request *req)
{
    req->holds++;
}

void request_release(struct chatd_request *req)
{
    if (--req->holds > 0)
        return;
    if (!req->replied) {
        log_error("plugin %s left a '%s' request unanswered; answered 'internal'",
                  req->command->plugin->name, req->command->name);
        request_refuse(req, "internal", "the command's plugin did not answer");
    }
    struct server *srv = req->server;
    chatd_session_id session = req->session;
    json_decref(req->body);
    free(req->user);
    free(req);
    session_request_done(srv, session);
}

int request_reply(struct chatd_request *req, const char *result, json_t *fields)
{
    if (req->replied) {
        log_error("plugin %s replied twice to one '%s' request; second reply dropped",
                  req->command->plugin->name, req->command->name);
        json_decref(fields);
        return CHATD_ESTATE;
    }
    if (!result || (fields && !json_is_object(fields))) {
        json_decref(fields);
        return CHATD_EINVAL;
    }
    req->replied = 1;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    metrics_reply(&req->server->metrics, req->command, result,
                  (double)(now.tv_sec - req->arrived.tv_sec) +
                      (double)(now.tv_nsec - req->arrived.tv_nsec) / 1e9);

    struct session *s = session_find(req->server, req->session);
    if (!s) {
        json_decref(fields);
        return 0; /* the client left; nothing to send */
    }
    json_t *msg = json_object();
    char cmd[80];
    snprintf(cmd, sizeof(cmd), "%s_reply", req->command->name);
    json_object_set_new(msg, "cmd", json_string(cmd));
    json_object_set_new(msg, "result", json_string(result));
    if (fields)
        json_object_update_missing(msg, fields);
    json_decref(fields);
    if (req->id)
        json_object_set(msg, "id", req->id);
    else
        json_object_del(msg, "id");
    session_send(s, msg);
    json_decref(msg);
    return 0;
}

void request_refuse(struct chatd_request *req, const char *result, const char *reason)
{
    json_t *fields = reason ? json_pack("{ss}", "reason", reason) : NULL;
    request_reply(req, result, fields);
}
