/* message.c - what private_chat and groups do alike around a message's hook points:
 * reading the verdict of "message.deliver" and running "message.accepted". Both build
 * a payload only when some plugin hooks the point. */
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
