/* message.c - what private_chat and groups do alike around a message: reading the
 * verdict of "message.deliver" and running "message.accepted" (both build a payload
 * only when some plugin hooks the point), and building the push and the answer
 * without jansson's json_pack, which scans its format and every string again. */
#include "common.h"

#include <string.h>

int chat_deliver_verdict(const struct chatd_hook_outcome *outcome, const json_t *payload,
                         int64_t max_text, const char **result, const char **reason)
{
    const json_t *text = json_object_get(payload, "text");
    if (outcome->refused) {
        *result = outcome->result ? outcome->result : "forbidden";
        *reason = outcome->reason;
    } else if (!json_is_string(text)) {
        *result = "internal";
        *reason = "a message.deliver hook broke the text";
    } else if ((int64_t)json_string_length(text) > max_text) {
        /* The client's text was checked against the limit; a rewrite must keep to it. */
        *result = "internal";
        *reason = "a message.deliver hook made the text longer than the server accepts";
    } else {
        return 0;
    }
    return -1;
}

void chat_message_accepted(const struct chatd_host *host, struct chatd_plugin *self,
                           const struct chat_accepted *a)
{
    /* Built only for someone to read: this runs for every message. */
    if (!host->hook_has(self, CHATD_HOOK_MESSAGE_ACCEPTED))
        return;
    json_t *payload = json_pack("{sssssssOsssIss}", "kind", a->kind, "user_from", a->from,
                                a->to_key, a->to, "text", a->text, "msg_id", a->msg_id, "ts",
                                (json_int_t)a->ts, "result", a->result);
    if (!payload) {
        host->log(self, CHATD_LOG_ERROR, "message %s: out of memory for message.accepted",
                  a->msg_id);
        return;
    }
    host->hook_run(self, CHATD_HOOK_MESSAGE_ACCEPTED, payload, NULL, NULL);
}

int chat_set_name(json_t *obj, const char *key, const char *value)
{
    return json_object_set_new_nocheck(obj, key, json_string_nocheck(value));
}

json_t *chat_posted_fields(const struct chatd_posted *posted)
{
    json_t *fields = json_object();
    if (fields && (chat_set_name(fields, "msg_id", posted->msg_id) != 0 ||
                   json_object_set_new_nocheck(fields, "seq", json_integer(posted->seq)) != 0 ||
                   json_object_set_new_nocheck(fields, "ts", json_integer(posted->ts)) != 0)) {
        json_decref(fields);
        return NULL;
    }
    return fields;
}

const char *chat_posted_result(const struct chatd_posted *posted)
{
    return posted->flags & CHATD_POST_PRIVATE && posted->online == 0 ? "offline" : "success";
}

json_t *chat_push_new(const char *cmd, const char *group, const char *from, json_t *text)
{
    json_t *msg = json_object();
    if (msg && (chat_set_name(msg, "cmd", cmd) != 0 ||
                (group && chat_set_name(msg, "group", group) != 0) ||
                chat_set_name(msg, "user_from", from) != 0 ||
                json_object_set_nocheck(msg, "text", text) != 0)) {
        json_decref(msg);
        return NULL;
    }
    return msg;
}
