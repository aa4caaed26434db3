/* private_chat.c - the private_chat plugin: one user to another.
 *
 * A message first runs the hook point "message.deliver" ({"kind":"private","user_from",
 * "user_to","text"}), whose hooks may refuse it (the sender gets their result word and
 * reason) or rewrite "text". Then a recipient with a session gets it at once through
 * the host's delivery (`success`), without the database. Otherwise a job asks the
 * accounts service whether the recipient exists (`user_not_exist`), and the host's
 * delivery stores it in chatd's inbox (`offline`), refused past max_offline_messages or
 * past max_offline_per_sender from this sender (`forbidden`, the reason says which); if
 * the recipient came online meanwhile it went to them (`success`).
 * Accepted messages then run "message.accepted" (the payload plus msg_id, ts, result).
 *
 * This plugin keeps no table: stored messages live in the host's inbox, which delivers
 * them after the recipient's next login_reply. */
#include "common.h"
#include "known_users.h"
#include "read.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct private_chat {
    const struct chatd_host *host;
    struct chatd_plugin *self;
    int64_t max_offline;
    int64_t max_per_sender; /* 0: no limit */
    int64_t max_text;
    char boot[20];     /* makes msg_id unique across restarts and reloads */
    uint64_t next_msg; /* msg_ids are "<boot>-<n>" */
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
    char msg_id[40];
    int64_t ts;
    int exists;
};

static void finish(struct message *m, const char *result, const char *reason)
{
    struct private_chat *pc = m->pc;
    chat_refuse(pc->host, m->req, result, reason);
    if (strcmp(result, "success") == 0 || strcmp(result, "offline") == 0) {
        const struct chat_accepted a = {"private", m->from,   "user_to", m->to,
                                        m->text,   m->msg_id, m->ts,     result};
        chat_message_accepted(pc->host, pc->self, &a);
    }
    if (m->holds_accounts)
        chat_accounts_release(pc->host, pc->self, &m->accounts);
    pc->host->request_release(m->req);
    json_decref(m->text);
    free(m);
}

/* The push the recipient gets. */
static json_t *push_of(const struct message *m)
{
    return json_pack("{sssssOsIss}", "cmd", "private_chat_recv", "user_from", m->from, "text",
                     m->text, "ts", (json_int_t)m->ts, "msg_id", m->msg_id);
}

/* ---- a recipient with no session: check, then store --------------------------- */

/* Where the host's delivery put the message. Stored for a user who is online means
 * their held pushes were full while their stored messages were being sent: it reaches
 * them right after those, so the sender is told success. */
static void delivered(int status, size_t online, size_t n_stored, void *arg)
{
    struct message *m = arg;
    struct private_chat *pc = m->pc;
    char why[128];
    if (status == CHATD_EOVERFLOW) {
        finish(m, "forbidden", "the recipient's offline mailbox is full");
    } else if (status == CHATD_EPERM) {
        snprintf(why, sizeof(why),
                 "you already have %lld messages waiting for %s (max_offline_per_sender)",
                 (long long)pc->max_per_sender, m->to);
        finish(m, "forbidden", why);
    } else if (status != 0) {
        snprintf(why, sizeof(why), "the message could not be stored: %s", chatd_strerror(status));
        finish(m, chat_status_word(status), why);
    } else if (online > 0 || (n_stored > 0 && pc->host->user_session_count(pc->self, m->to) > 0)) {
        finish(m, "success", NULL);
    } else {
        finish(m, n_stored > 0 ? "offline" : "internal", NULL);
    }
}

/* Worker. */
static int exists_work(struct chatd_db *db, void *arg)
{
    struct message *m = arg;
    m->exists = chat_accounts_user_exists(&m->accounts, db, m->to);
    return m->exists < 0 ? m->exists : 0;
}

/* The recipient has an account: send to their sessions, or store for them (the host
 * decides, at the moment it delivers). */
static void deliver_known(struct message *m)
{
    struct private_chat *pc = m->pc;
    const char *to[] = {m->to};
    /* The host counts the sender's share: it needs the sender's name with the message
     * (deliver_from, ABI 1.3); this plugin keeps no table in which to count it. */
    int rc = pc->host->deliver_from(pc->self, m->from, to, 1, push_of(m), CHATD_DELIVER_STORE,
                                    pc->max_offline, pc->max_per_sender, delivered, m);
    if (rc != 0)
        finish(m, chat_status_word(rc), chatd_strerror(rc));
}

static void exists_done(struct chatd_request *req, void *arg, int status)
{
    (void)req;
    struct message *m = arg;
    if (status != 0) {
        finish(m, chat_status_word(status), "the recipient could not be looked up");
        return;
    }
    if (!m->exists) {
        finish(m, "user_not_exist", NULL);
        return;
    }
    known_users_add(&m->pc->known, m->to);
    deliver_known(m);
}

static void store(struct message *m)
{
    struct private_chat *pc = m->pc;
    if (known_users_has(&pc->known, m->to)) {
        deliver_known(m);
        return;
    }
    if (chat_accounts_acquire(pc->host, pc->self, &m->accounts) != 0) {
        finish(m, "internal", "the accounts service is not available");
        return;
    }
    m->holds_accounts = 1;
    static const struct chatd_job job = {
        .work = exists_work, .done = exists_done, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    /* req stays held by this plugin, so the job is not tied to it: exists_done answers
     * every outcome, a failed submit included. */
    pc->host->job_run(pc->self, NULL, &job, m);
}

/* ---- after the hooks: live, or stored --------------------------------------------- */

/* The message goes: to the recipient's sessions, or stored for them. */
static void send_message(struct message *m)
{
    struct private_chat *pc = m->pc;
    snprintf(m->msg_id, sizeof(m->msg_id), "%s-%llu", pc->boot, (unsigned long long)++pc->next_msg);
    m->ts = pc->host->now_ms();
    if (pc->host->user_session_count(pc->self, m->to) == 0) {
        store(m);
        return;
    }
    known_users_add(&pc->known, m->to); /* online, so they have an account */
    /* Stored too when it cannot wait in memory, or every session went away meanwhile. */
    deliver_known(m);
}

static void decided(const struct chatd_hook_outcome *outcome, json_t *payload, void *arg)
{
    struct message *m = arg;
    const char *result, *reason;
    if (chat_deliver_verdict(outcome, payload, m->pc->max_text, &result, &reason) < 0) {
        finish(m, result, reason);
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
    if (!chat_valid_name(to)) {
        pc->host->reply(req, "user_not_exist", NULL);
        return;
    }
    struct message *m = calloc(1, sizeof(*m));
    if (!m) {
        chat_refuse(pc->host, req, "internal", "out of memory");
        return;
    }
    m->pc = pc;
    m->req = req;
    snprintf(m->from, sizeof(m->from), "%s", pc->host->request_user(req));
    strcpy(m->to, to);
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
        finish(m, "internal", chatd_strerror(rc));
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
    /* The boot part differs at every start and reload. */
    snprintf(pc->boot, sizeof(pc->boot), "%llx", (unsigned long long)host->now_ms());

    static const struct chatd_field fields[] = {
        {"user_to", CHATD_FIELD_STRING, 1, 1, 256},
        {"text", CHATD_FIELD_STRING, 1, 0, 0},
        {NULL, 0, 0, 0, 0},
    };
    static const struct chatd_command command = {
        .name = "private_chat", .handler = handle_private_chat, .fields = fields};
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
