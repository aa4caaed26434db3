/* private_chat.c - the private_chat plugin: one user to another.
 *
 * A message first runs the hook point "message.deliver" ({"kind":"private","user_from",
 * "user_to","text"}), whose hooks may refuse it (the sender gets their result word and
 * reason) or rewrite "text". A recipient with no session is looked up first through
 * the accounts service (`user_not_exist`). Then the message is posted (ABI 1.4) in the
 * conversation "<lower name>|<higher name>" (byte order): committed, then pushed, and
 * the sender is answered `success` (the recipient had a session when it was accepted)
 * or `offline` (they get it at their next login), with its msg_id, seq and ts. Away
 * recipients hold at most max_offline_messages, and max_offline_per_sender from one
 * sender (`forbidden`, the reason says which). A request's "client_msg_id" makes a
 * retry safe: a repeat is answered as the first was and delivers nothing, also when
 * it names another recipient (a refusal before the post asks the host first,
 * chat_refuse_send).
 * Accepted messages then run "message.accepted" (the payload plus msg_id, ts, result).
 *
 * This plugin keeps no table: messages live in the host's (chatd_messages). */
#include "common.h"
#include "known_users.h"
#include "read.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The longest client_msg_id (the field rule says the same). */
#define CLIENT_MSG_ID_MAX 64

struct private_chat {
    const struct chatd_host *host;
    struct chatd_plugin *self;
    int64_t max_offline;
    int64_t max_per_sender; /* 0: no limit */
    int64_t max_text;
    struct known_users known;
    struct read_command read; /* read.c */
};

/* One message on its way; owns everything it points at. */
struct message {
    struct private_chat *pc;
    struct chatd_request *req; /* held until answered */
    struct chatd_service accounts;
    int holds_accounts;
    json_t *text;                 /* the text, as message.deliver's hooks left it */
    char from[CHAT_NAME_MAX + 1]; /* the session's user: hooks cannot change it */
    char to[CHAT_NAME_MAX + 1];
    char client_msg_id[CLIENT_MSG_ID_MAX + 1]; /* "": none */
    int exists;
};

static void message_free(struct message *m)
{
    struct private_chat *pc = m->pc;
    if (m->holds_accounts)
        chat_accounts_release(pc->host, pc->self, &m->accounts);
    pc->host->request_release(m->req);
    json_decref(m->text);
    free(m);
}

/* Answer the sender with `result` and `fields` (taken, may be NULL), run
 * message.accepted for an accepted message that is not a repeat, and free m. */
static void finish(struct message *m, const char *result, json_t *fields,
                   const struct chatd_posted *posted)
{
    struct private_chat *pc = m->pc;
    pc->host->reply(m->req, result, fields);
    if (posted && !posted->repeat) {
        const struct chat_accepted a = {"private", m->from,        "user_to",  m->to,
                                        m->text,   posted->msg_id, posted->ts, result};
        chat_message_accepted(pc->host, pc->self, &a);
    }
    message_free(m);
}

/* Refuse m after its post was refused (the host found no repeat), and free m. */
static void refuse_posted(struct message *m, const char *result, const char *reason)
{
    finish(m, result, json_pack("{ss}", "reason", reason), NULL);
}

/* Refuse m before it was posted, unless its client_msg_id repeats one (then the first
 * message's answer), and free m. */
static void refuse(struct message *m, const char *result, const char *reason)
{
    struct private_chat *pc = m->pc;
    chat_refuse_send(pc->host, pc->self, m->req, m->from, m->client_msg_id, result, reason);
    message_free(m);
}

/* ---- posting ------------------------------------------------------------------------ */

static void posted(const struct chatd_posted *p, void *arg)
{
    struct message *m = arg;
    struct private_chat *pc = m->pc;
    char why[128];
    if (p->status == CHATD_EOVERFLOW) {
        refuse_posted(m, "forbidden", "the recipient's offline mailbox is full");
    } else if (p->status == CHATD_EPERM) {
        snprintf(why, sizeof(why),
                 "you already have %lld messages waiting for %s (max_offline_per_sender)",
                 (long long)pc->max_per_sender, m->to);
        refuse_posted(m, "forbidden", why);
    } else if (p->status != 0) {
        snprintf(why, sizeof(why), "the message could not be stored: %s",
                 chatd_strerror(p->status));
        refuse_posted(m, chat_status_word(p->status), why);
    } else {
        finish(m, chat_posted_result(p), chat_posted_fields(p), p);
    }
}

/* Post the message to m->to: the host commits it, pushes it, then calls posted. */
static void post_message(struct message *m)
{
    struct private_chat *pc = m->pc;
    /* The conversation's name is the same whoever writes (history reads it too). */
    char conversation[CHAT_CONVERSATION_MAX + 1];
    chat_private_conversation(m->from, m->to, conversation);
    const char *to[] = {m->to};
    const struct chatd_post post = {
        .sender = m->from,
        .conversation = conversation,
        .users = to,
        .n_users = 1,
        .msg = chat_push_new("private_chat_recv", NULL, m->from, m->text),
        .client_msg_id = m->client_msg_id[0] ? m->client_msg_id : NULL,
        .flags = CHATD_POST_PRIVATE,
        .max_stored = pc->max_offline,
        .max_per_sender = pc->max_per_sender,
        .req = m->req,
    };
    int rc = post.msg ? pc->host->post(pc->self, &post, posted, m) : CHATD_ENOMEM;
    if (rc != 0)
        refuse_posted(m, chat_status_word(rc), chatd_strerror(rc));
}

/* ---- a recipient with no session: do they exist? ------------------------------------ */

/* Worker. */
static int exists_work(struct chatd_db *db, void *arg)
{
    struct message *m = arg;
    m->exists = chat_accounts_user_exists(&m->accounts, db, m->to);
    return m->exists < 0 ? m->exists : 0;
}

static void exists_done(struct chatd_request *req, void *arg, int status)
{
    (void)req;
    struct message *m = arg;
    if (status != 0) {
        refuse(m, chat_status_word(status), "the recipient could not be looked up");
        return;
    }
    if (!m->exists) {
        refuse(m, "user_not_exist", NULL);
        return;
    }
    known_users_add(&m->pc->known, m->to);
    post_message(m);
}

/* After the hooks: a recipient who is online or known to exist gets it posted at once;
 * otherwise the accounts service is asked first. */
static void send_message(struct message *m)
{
    struct private_chat *pc = m->pc;
    if (pc->host->user_session_count(pc->self, m->to) > 0) {
        known_users_add(&pc->known, m->to); /* online, so they have an account */
        post_message(m);
        return;
    }
    if (known_users_has(&pc->known, m->to)) {
        post_message(m);
        return;
    }
    if (chat_accounts_acquire(pc->host, pc->self, &m->accounts) != 0) {
        refuse(m, "internal", "the accounts service is not available");
        return;
    }
    m->holds_accounts = 1;
    static const struct chatd_job job = {
        .work = exists_work, .done = exists_done, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    /* req stays held by this plugin, so the job is not tied to it: exists_done answers
     * every outcome, a failed submit included. */
    pc->host->job_run(pc->self, NULL, &job, m);
}

static void decided(const struct chatd_hook_outcome *outcome, json_t *payload, void *arg)
{
    struct message *m = arg;
    const char *result, *reason;
    if (chat_deliver_verdict(outcome, payload, m->pc->max_text, &result, &reason) < 0) {
        refuse(m, result, reason);
        return;
    }
    /* Only "text" is the hooks' to change. */
    m->text = json_incref(json_object_get(payload, "text"));
    send_message(m);
}

static void handle_private_chat(struct chatd_request *req, const json_t *body, void *arg)
{
    struct private_chat *pc = arg;
    const char *to = json_string_value(json_object_get(body, "user_to"));
    const char *client_msg_id = json_string_value(json_object_get(body, "client_msg_id"));
    if (!chat_valid_name(to)) {
        chat_refuse_send(pc->host, pc->self, req, pc->host->request_user(req), client_msg_id,
                         "user_not_exist", NULL);
        return;
    }
    struct message *m = calloc(1, sizeof(*m));
    if (!m) {
        chat_refuse(pc->host, req, "internal", "out of memory");
        return;
    }
    m->pc = pc;
    m->req = req;
    chat_copy_name(m->from, pc->host->request_user(req));
    strcpy(m->to, to);
    if (client_msg_id) /* the field rule keeps it within 1 to 64 bytes */
        snprintf(m->client_msg_id, sizeof(m->client_msg_id), "%s", client_msg_id);
    pc->host->request_hold(req);
    json_t *text = json_object_get(body, "text");
    if (!pc->host->hook_has(pc->self, CHATD_HOOK_MESSAGE_DELIVER)) {
        m->text = json_incref(text);
        send_message(m);
        return;
    }
    json_t *payload = json_pack("{sssssssO}", "kind", "private", "user_from", m->from, "user_to",
                                to, "text", text);
    int rc = payload ? pc->host->hook_run(pc->self, CHATD_HOOK_MESSAGE_DELIVER, payload, decided, m)
                     : CHATD_ENOMEM;
    if (rc != 0)
        refuse(m, "internal", chatd_strerror(rc));
}

static const struct chatd_option options[] = {
    {"max_text_bytes", CHATD_OPT_INT, "4096", 1, 65535,
     "longest message text in bytes (longer: bad_request)"},
    {"max_offline_messages", CHATD_OPT_INT, "10000", 1, 10000000,
     "messages stored for one user; more are refused with forbidden"},
    {"max_offline_per_sender", CHATD_OPT_INT, "1000", 0, 10000000,
     "messages one sender may have stored for one user (0: no limit); more are refused "
     "with forbidden, while other senders still get through"},
    {NULL, 0, NULL, 0, 0, NULL},
};

static int private_chat_init(struct chatd_plugin *self, const struct chatd_host *host)
{
    struct private_chat *pc = calloc(1, sizeof(*pc));
    if (!pc)
        return CHATD_ENOMEM;
    host->instance_set(self, pc);
    pc->host = host;
    pc->self = self;
    host->option_int(self, "max_offline_messages", &pc->max_offline);
    host->option_int(self, "max_offline_per_sender", &pc->max_per_sender);
    host->option_int(self, "max_text_bytes", &pc->max_text);
    if (!CHATD_HOST_HAS(host, post_find))
        return CHATD_ENOSYS; /* messages are posted (ABI 1.4), repeats found first (1.5) */

    static const struct chatd_field fields[] = {
        {"user_to", CHATD_FIELD_STRING, 1, 1, 256},
        {"text", CHATD_FIELD_STRING, 1, 0, 0},
        {"client_msg_id", CHATD_FIELD_STRING, 0, 1, CLIENT_MSG_ID_MAX},
        {NULL, 0, 0, 0, 0},
    };
    static const struct chatd_command command = {.name = "private_chat",
                                                 .handler = handle_private_chat,
                                                 .fields = fields,
                                                 .flags = CHATD_CMD_PIPELINED};
    static const struct chatd_field_rule rules[] = {
        {.field = "text", .max_from_option = "max_text_bytes"},
        {.field = NULL},
    };
    int rc = host->register_command(self, &command);
    if (rc == 0)
        rc = host->command_rules(self, "private_chat", rules);
    if (rc == 0)
        rc = read_register(&pc->read, host, self);
    return rc;
}

static void private_chat_destroy(void *instance)
{
    struct private_chat *pc = instance;
    known_users_free(&pc->known);
    free(pc);
}

static const char *const requires[] = {"accounts", NULL};

CHATD_PLUGIN_DEFINE(.name = "private_chat", .version = "1.0.0",
                    .description = "private_chat: messages from one user to another, stored "
                                   "for recipients who are away",
                    .options = options, .init = private_chat_init, .requires = requires,
                    .destroy = private_chat_destroy);
