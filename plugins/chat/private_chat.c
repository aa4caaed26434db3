/* private_chat.c - one user to another. A recipient with a session on this server gets
 * the message at once, from memory, without the database; otherwise it is stored
 * (offline_store.c) and committed before the `offline` reply, and delivered after
 * their next login. */
#include "chat.h"

#include <stdlib.h>
#include <string.h>

/* The push a recipient gets. Built key by key rather than with json_pack: every string
 * is already valid UTF-8 (a parsed request, a checked name, our own msg_id), so the
 * checks json_pack repeats would be wasted on the hottest path of the server. */
static json_t *private_push(const char *from, const json_t *text, int64_t ts, const char *msg_id)
{
    json_t *push = json_object();
    if (!push)
        return NULL;
    int failed = json_object_set_new_nocheck(push, "cmd", json_string_nocheck("private_chat_recv"));
    failed |= json_object_set_new_nocheck(push, "user_from", json_string_nocheck(from));
    failed |= json_object_set_new_nocheck(
        push, "text", json_stringn_nocheck(json_string_value(text), json_string_length(text)));
    failed |= json_object_set_new_nocheck(push, "ts", json_integer(ts));
    failed |= json_object_set_new_nocheck(push, "msg_id", json_string_nocheck(msg_id));
    if (failed) {
        json_decref(push);
        return NULL;
    }
    return push;
}

static void handle_private_chat(struct chatd_request *req, const json_t *body, void *arg)
{
    (void)arg;
    const char *from = HOST->request_user(req);
    const char *to = json_string_value(json_object_get(body, "user_to"));
    const json_t *text = json_object_get(body, "text");
    if ((int64_t)json_string_length(text) > chat.max_text) {
        chat_refuse(req, "bad_request", "'text' is longer than the server accepts");
        return;
    }
    if (!chat_valid_name(to)) {
        HOST->reply(req, "user_not_exist", NULL);
        return;
    }
    char msg_id[40];
    chat_new_msg_id(msg_id, sizeof(msg_id));
    int64_t ts = HOST->now_ms();

    /* A recipient online here gets it at once; if none of their sessions takes it
     * (all closing), it is stored as for an offline recipient. */
    struct online_user *recipient = chat_online(to);
    if (recipient && chat_deliver(recipient, private_push(from, text, ts, msg_id))) {
        HOST->reply(req, "success", NULL);
        return;
    }
    struct online_user *sender = chat_sender(req);
    if (!sender)
        return;
    offline_store(req, to, sender->id, msg_id, text, ts);
}

int private_chat_init(void)
{
    static const struct chatd_field fields[] = {
        {"user_to", CHATD_FIELD_STRING, 1, 1, 256},
        {"text", CHATD_FIELD_STRING, 1, 0, 0},
        {NULL, 0, 0, 0, 0},
    };
    static const struct chatd_command command = {
        .name = "private_chat", .handler = handle_private_chat, .fields = fields};
    return HOST->register_command(chat.self, &command);
}
