/* request.c - request lifetime (holds, the one reply, the `internal` answer for a
 * request a plugin forgot). */
#include "request.h"

#include "stream_sessions.h"
#include "log.h"
#include "plugin_loader.h"
#include "reply_line.h"
#include "session.h"

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
    req->source = s->source;
    memcpy(req->peer, s->peer, sizeof(req->peer));
    if (s->user && !(req->user = strdup(s->user->name))) {
        free(req);
        return NULL;
    }
    req->holds = 1;
    atomic_init(&req->gone, 0);
    cmd->plugin->inflight++;
    clock_gettime(CLOCK_MONOTONIC, &req->arrived);
    return req;
}

void request_mark_gone(struct chatd_request *req)
{
    atomic_store(&req->gone, 1);
}

int request_gone(struct chatd_request *req)
{
    return atomic_load(&req->gone);
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
    /* A retired plugin is closed from a timer of its own once this reaches 0, never
     * here, where its code may be on the stack. */
    req->command->plugin->inflight--;
    json_decref(req->body);
    free(req->user);
    free(req->login_user);
    free(req);
    session_request_done(srv, session);
}

void request_login_answered(struct chatd_request *req, int success)
{
    if (!req->login_user)
        return;
    char *user = req->login_user;
    req->login_user = NULL;
    stream_login_replied(req->server, req->session, req->login_generation, success);
    free(user);
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
    json_t *why = json_object_get(fields, "reason");
    if (strcmp(result, "internal") == 0 && json_is_string(why) &&
        strcmp(json_string_value(why), "out of memory") == 0)
        log_error("plugin %s answered a '%s' request 'internal': out of memory",
                  req->command->plugin->name, req->command->name);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    metrics_reply(&req->server->metrics, req->command, result,
                  (double)(now.tv_sec - req->arrived.tv_sec) +
                      (double)(now.tv_nsec - req->arrived.tv_nsec) / 1e9);

    struct session *s = session_find(req->server, req->session);
    int rc = 0;
    struct line_buffer *line = &req->server->out;
    if (s && reply_line_build(line, req->command->reply_prefix, result, fields, req->id) < 0) {
        /* The client still gets its one answer. */
        log_error("plugin %s gave a '%s' reply that cannot be serialised; answered 'internal'",
                  req->command->plugin->name, req->command->name);
        rc = CHATD_EINVAL;
        if (reply_line_build(line, req->command->reply_prefix, "internal", NULL, req->id) < 0) {
            /* Out of memory: the client sees its connection end rather than wait. */
            log_error("session %llu: no memory for a reply; disconnected",
                      (unsigned long long)req->session);
            session_close(s, "out of memory");
            s = NULL;
        }
    }
    if (s)
        session_send_line(s, line->data, line->len);
    json_decref(fields);
    request_login_answered(req, rc == 0 && strcmp(result, "success") == 0);
    return rc;
}

void request_accept_silently(struct chatd_request *req)
{
    req->replied = 1;
}

void request_refuse(struct chatd_request *req, const char *result, const char *reason)
{
    json_t *fields = reason ? json_pack("{ss}", "reason", reason) : NULL;
    request_reply(req, result, fields);
}
