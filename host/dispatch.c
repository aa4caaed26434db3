/* dispatch.c - from one complete frame to a plugin handler: its parse (request_parse.c), the
 * generic errors of the wire contract, login and user_from rules, and field checks. */
#include "dispatch.h"

#include "commands.h"
#include "log.h"
#include "plugin_loader.h"
#include "ratelimit.h"
#include "reply_order.h"
#include "request.h"
#include "request_parse.h"
#include "server.h"
#include "session.h"

#include <string.h>

static void call_handler(struct chatd_request *req)
{
    const struct chatd_command *spec = &req->command->spec;
    char reason[160];

    if (!(spec->flags & CHATD_CMD_ANONYMOUS)) {
        if (!req->user) {
            request_refuse(req, "not_logged_in", "log in first");
            return;
        }
        const json_t *from = json_object_get(req->body, "user_from");
        if (from && (!json_is_string(from) || strcmp(json_string_value(from), req->user) != 0)) {
            request_refuse(req, "forbidden", "user_from must be the user you are logged in as");
            return;
        }
    }
    if (fields_check(&req->command->fields, req->body, reason, sizeof(reason)) < 0) {
        request_refuse(req, "bad_request", reason);
        return;
    }
    spec->handler(req, req->body, spec->arg ? spec->arg : req->command->plugin->instance);
}

void dispatch_frame(struct session *s, const char *data, size_t len)
{
    json_error_t error;
    struct parsed_frame frame;
    request_parse(data, len, &frame, &error);
    dispatch_parsed(s, &frame);
}

void dispatch_parsed(struct session *s, struct parsed_frame *frame)
{
    json_t *body = frame->body;
    frame->body = NULL;
    if (frame->unsupported) {
        session_send_error(s, "bad_request", NULL, NULL, frame->unsupported);
        return;
    }
    if (frame->bad_json) {
        /* Where, never what: jansson's text quotes the bytes it stumbled on, which can be
         * a password or a token (the client gets the text, it sent those bytes). */
        log_debug("session %llu: bad JSON at byte %d of a %zu-byte frame (jansson error %d)",
                  (unsigned long long)s->id, frame->bad_position, frame->len, frame->bad_code);
        session_send_error(s, "bad_json", NULL, NULL, frame->bad_json);
        session_close_after_flush(s, "bad JSON");
        return;
    }
    if (!json_is_object(body)) {
        session_send_error(s, "bad_request", NULL, NULL, "a request must be a JSON object");
        json_decref(body);
        return;
    }
    json_t *id = json_object_get(body, "id");
    if (id && !json_is_string(id) && !json_is_integer(id)) {
        session_send_error(s, "bad_request", NULL, NULL, "'id' must be a string or an integer");
        json_decref(body);
        return;
    }
    const json_t *cmd = json_object_get(body, "cmd");
    if (!json_is_string(cmd)) {
        session_send_error(s, "bad_request", id, NULL, "'cmd' must be a string");
        json_decref(body);
        return;
    }
    if (ratelimit_request(s, json_string_value(cmd), id) > 0) {
        json_decref(body);
        return;
    }
    struct command *command = commands_find(s->server, json_string_value(cmd));
    if (!command) {
        session_send_error(s, "unknown_cmd", id, json_string_value(cmd), NULL);
        json_decref(body);
        return;
    }

    struct chatd_request *req = request_new(s, command, body, id);
    if (!req) {
        session_send_error(s, "internal", id, NULL, "out of memory");
        json_decref(body);
        return;
    }
    if (reply_order_add(s, req) < 0) {
        request_drop_unstarted(req);
        session_send_error(s, "internal", id, NULL, "out of memory");
        return;
    }
    if (command->spec.flags & CHATD_CMD_PIPELINED) {
        /* The next frame is read at once, up to max_pipelined in flight. */
        s->busy = s->n_inflight >= (unsigned)s->server->cfg->max_pipelined;
    } else if (s->n_inflight > 1) {
        /* It waits for the pipelined requests before it (session_process). */
        s->parked = req;
        s->busy = 1;
        return;
    } else {
        s->serial = 1;
        s->busy = 1;
    }
    call_handler(req);
    request_release(req);
}

void dispatch_parked(struct session *s)
{
    struct chatd_request *req = s->parked;
    s->parked = NULL;
    s->serial = 1;
    s->busy = 1;
    call_handler(req);
    request_release(req);
}
