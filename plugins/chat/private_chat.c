/* private_chat.c - one user to another. A recipient with a session on this server gets
 * the message at once, from memory, without the database; otherwise it is stored and
 * committed before the `offline` reply, and delivered after their next login. */
#include "chat.h"

#include <stdlib.h>
#include <string.h>

struct store_job {
    char to[CHAT_NAME_MAX + 1];
    int64_t sender_id;
    char msg_id[40];
    char *text;
    size_t len;
    int64_t ts;
    int64_t limit;
    int recipient_missing;
    int mailbox_full;
};

static void store_free(struct store_job *j)
{
    free(j->text);
    free(j);
}

/* Worker: find the recipient, check their backlog, store the message. The reply waits
 * for this job, so `offline` is only said of a committed message. */
static int store_work(struct chatd_db *db, void *arg)
{
    struct store_job *j = arg;
    struct chatd_value to = {.type = CHATD_PARAM_TEXT, .s = j->to, .len = strlen(j->to)};
    int64_t recipient = 0;
    int rc = HOST->db_query(db, "SELECT id FROM users WHERE name = ?", &to, 1, chat_read_int64,
                            &recipient);
    if (rc != 0)
        return rc;
    if (recipient == 0) {
        j->recipient_missing = 1;
        return 0;
    }
    struct chatd_value who = {.type = CHATD_PARAM_INT64, .i = recipient};
    int64_t waiting = 0;
    rc = HOST->db_query(db, "SELECT COUNT(*) FROM private_messages WHERE recipient_id = ?", &who, 1,
                        chat_read_int64, &waiting);
    if (rc != 0)
        return rc;
    if (waiting >= j->limit) {
        j->mailbox_full = 1;
        return 0;
    }
    struct chatd_value row[5] = {
        who,
        {.type = CHATD_PARAM_INT64, .i = j->sender_id},
        {.type = CHATD_PARAM_TEXT, .s = j->msg_id, .len = strlen(j->msg_id)},
        {.type = CHATD_PARAM_TEXT, .s = j->text, .len = j->len},
        {.type = CHATD_PARAM_INT64, .i = j->ts},
    };
    return HOST->db_exec(
        db,
        "INSERT IGNORE INTO private_messages (recipient_id, sender_id, msg_id, text, ts) "
        "VALUES (?, ?, ?, ?, ?)",
        row, 5, NULL, NULL);
}

static void store_done(struct chatd_request *req, void *arg, int status)
{
    struct store_job *j = arg;
    if (status != 0) {
        chat_refuse(req, chat_status_word(status), "the message could not be stored");
    } else if (j->recipient_missing) {
        HOST->reply(req, "user_not_exist", NULL);
    } else if (j->mailbox_full) {
        chat_refuse(req, "forbidden", "the recipient's offline mailbox is full");
    } else {
        HOST->reply(req, "offline", NULL);
        /* The recipient may have logged in while the message was being stored. */
        struct online_user *u = chat_online(j->to);
        if (u && chat.offline_delivery)
            chat_drain(u);
    }
    store_free(j);
}

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
    json_t *push = private_push(from, text, ts, msg_id);
    if (recipient && chat_deliver(recipient, push, 0, 0)) {
        HOST->reply(req, "success", NULL);
        return;
    }
    if (!recipient)
        json_decref(push);
    struct online_user *sender = chat_online(from);
    struct store_job *j = calloc(1, sizeof(*j));
    if (!sender || !j || !(j->text = malloc(json_string_length(text) + 1))) {
        free(j);
        chat_refuse(req, "internal", sender ? "out of memory" : "sender is not online");
        return;
    }
    strcpy(j->to, to);
    j->sender_id = sender->id;
    memcpy(j->msg_id, msg_id, sizeof(j->msg_id));
    j->len = json_string_length(text);
    memcpy(j->text, json_string_value(text), j->len + 1);
    j->ts = ts;
    j->limit = chat.max_offline;
    /* Safe to repeat: msg_id is unique, so a second insert of it changes nothing. */
    static const struct chatd_job job = {
        .work = store_work, .done = store_done, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    if (chat_submit(req, &job, j) < 0)
        store_free(j);
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
