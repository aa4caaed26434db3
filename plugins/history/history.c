/* history.c - the history plugin: `history`, one page of a private conversation or of a
 * group, read by the host (ABI 1.4 history_read) from the messages it keeps.
 *
 *   {"cmd":"history","with":"Bob"|"group":"g1","limit":N,"before":"<msg_id>"}
 *
 * Exactly one of with and group; limit 1 to 200 (50 when absent); before a msg_id (its
 * digits): only older messages. First one job asks the service that knows the other
 * side: accounts whether `with` exists (user_not_exist), or groups whether the group
 * exists and since which message the reader is a member (group_not_exist, not_member;
 * group_not_exist too when no plugin offers the groups service). Then the host reads
 * the page: the conversation "<lower>|<higher>" of the two names, or "#<group>" from the
 * member's first message. The reply: "messages" oldest first, "more" when older ones
 * exist. */
#include "chatd_accounts.h"
#include "chatd_groups.h"
#include "common.h"

#include <stdlib.h>
#include <string.h>

struct history {
    const struct chatd_host *host;
    struct chatd_plugin *self;
};

/* One history request on its way. */
struct page_request {
    struct history *h;
    struct chatd_request *req;
    struct chatd_service svc; /* accounts (with) or groups (group), held for the job */
    int is_group;
    char reader[CHAT_NAME_MAX + 1];
    char other[CHAT_NAME_MAX + 1]; /* the peer, or the group */
    int64_t before;
    int limit;
    int answer; /* set by the worker: exists (0/1), or a chatd_groups_membership */
    int64_t since_msg;
};

static void page_read(int status, json_t *messages, int more, void *arg)
{
    struct page_request *p = arg;
    const struct chatd_host *host = p->h->host;
    if (status != 0) {
        chat_refuse(host, p->req, chat_status_word(status), "the history could not be read");
    } else {
        json_t *fields = json_pack("{sOsb}", "messages", messages, "more", more);
        if (fields)
            host->reply(p->req, "success", fields);
        else
            chat_refuse(host, p->req, "internal", "out of memory");
    }
    free(p);
}

/* The other side is known: ask the host for the page. */
static void read_page(struct page_request *p, struct chatd_request *req)
{
    char conversation[CHAT_CONVERSATION_MAX + 1];
    struct chatd_history_query q = {
        .conversation = conversation, .before = p->before, .limit = p->limit, .viewer = p->reader};
    if (p->is_group) {
        conversation[0] = '#';
        strcpy(conversation + 1, p->other);
        q.floor = p->since_msg + 1;
    } else {
        chat_private_conversation(p->reader, p->other, conversation);
    }
    int rc = p->h->host->history_read(p->h->self, req, &q, page_read, p);
    if (rc != 0) {
        chat_refuse(p->h->host, req, chat_status_word(rc), chatd_strerror(rc));
        free(p);
    }
}

/* Worker: the other side, through its service on this job's connection. */
static int lookup_work(struct chatd_db *db, void *arg)
{
    struct page_request *p = arg;
    if (p->is_group) {
        const struct chatd_groups_v1 *groups = p->svc.fns;
        p->answer = groups->membership(p->svc.instance, db, p->other, p->reader, &p->since_msg);
    } else {
        const struct chatd_accounts_v1 *accounts = p->svc.fns;
        p->answer = accounts->user_exists(p->svc.instance, db, p->other);
    }
    return p->answer < 0 ? p->answer : 0;
}

static void looked_up(struct chatd_request *req, void *arg, int status)
{
    struct page_request *p = arg;
    const struct chatd_host *host = p->h->host;
    host->service_release(p->h->self, &p->svc);
    if (chat_job_failed(host, req, status, "the conversation could not be looked up")) {
        free(p);
    } else if (!p->is_group && !p->answer) {
        host->reply(req, "user_not_exist", NULL);
        free(p);
    } else if (p->is_group && p->answer != CHATD_GROUPS_MEMBER) {
        host->reply(req, p->answer == CHATD_GROUPS_NO_GROUP ? "group_not_exist" : "not_member",
                    NULL);
        free(p);
    } else {
        p->req = req;
        read_page(p, req);
    }
}

/* Hold the service that answers for the other side into p->svc. 0, or the result word
 * to answer (the groups plugin may be left out: then no group exists). */
static const char *hold_service(struct page_request *p)
{
    const struct chatd_host *host = p->h->host;
    const char *name = p->is_group ? CHATD_GROUPS_SERVICE : CHATD_ACCOUNTS_SERVICE;
    uint32_t version = p->is_group ? CHATD_GROUPS_VERSION : CHATD_ACCOUNTS_VERSION;
    int rc = host->service_get(p->h->self, name, version, &p->svc);
    if (rc == CHATD_ENOENT && p->is_group)
        return "group_not_exist";
    if (rc == 0)
        rc = host->service_hold(p->h->self, &p->svc);
    if (rc != 0) {
        host->log(p->h->self, CHATD_LOG_ERROR, "the %s service is not available: %s", name,
                  chatd_strerror(rc));
        return "internal";
    }
    return NULL;
}

static void handle_history(struct chatd_request *req, const json_t *body, void *arg)
{
    struct history *h = arg;
    const char *with = json_string_value(json_object_get(body, "with"));
    const char *group = json_string_value(json_object_get(body, "group"));
    const json_t *before = json_object_get(body, "before");
    if (!with == !group) {
        chat_refuse(h->host, req, "bad_request", "give exactly one of with and group");
        return;
    }
    int64_t before_id = before ? chat_msg_id_value(json_string_value(before)) : 0;
    if (before && before_id == 0) {
        chat_refuse(h->host, req, "bad_request", "before must be a message id (its digits)");
        return;
    }
    if (!chat_valid_name(with ? with : group)) {
        h->host->reply(req, with ? "user_not_exist" : "group_not_exist", NULL);
        return;
    }
    const char *reader = h->host->request_user(req);
    struct page_request *p = strlen(reader) <= CHAT_NAME_MAX ? calloc(1, sizeof(*p)) : NULL;
    if (!p) {
        chat_refuse(h->host, req, "internal", "out of memory");
        return;
    }
    p->h = h;
    p->is_group = group != NULL;
    strcpy(p->reader, reader);
    strcpy(p->other, with ? with : group);
    p->before = before_id;
    p->limit = (int)json_integer_value(json_object_get(body, "limit"));
    const char *refusal = hold_service(p);
    if (refusal) {
        h->host->reply(req, refusal, NULL);
        free(p);
        return;
    }
    static const struct chatd_job job = {
        .work = lookup_work, .done = looked_up, .flags = CHATD_JOB_DB | CHATD_JOB_IDEMPOTENT};
    /* On a failed submit job_run answers busy or internal and runs looked_up. */
    h->host->job_run(h->self, req, &job, p);
}

static int history_init(struct chatd_plugin *self, const struct chatd_host *host)
{
    struct history *h = calloc(1, sizeof(*h));
    if (!h)
        return CHATD_ENOMEM;
    host->instance_set(self, h);
    h->host = host;
    h->self = self;
    static const struct chatd_field fields[] = {
        {"with", CHATD_FIELD_STRING, 0, 1, 256},
        {"group", CHATD_FIELD_STRING, 0, 1, 256},
        {"limit", CHATD_FIELD_INT, 0, 0, 0},
        {"before", CHATD_FIELD_STRING, 0, 1, 64},
        {NULL, 0, 0, 0, 0},
    };
    static const struct chatd_command command = {
        .name = "history", .handler = handle_history, .fields = fields};
    static const struct chatd_field_rule rules[] = {
        {.field = "limit", .min_int = 1, .max_int = 200, .default_json = "50"},
        {.field = NULL},
    };
    int rc = host->register_command(self, &command);
    if (rc == 0)
        rc = host->command_rules(self, "history", rules);
    return rc;
}

static void history_destroy(void *instance)
{
    free(instance);
}

/* accounts answers for `with`; groups, when enabled, for `group` (asked at each request,
 * so it is not required). */
static const char *const requires[] = {CHATD_ACCOUNTS_SERVICE, NULL};

CHATD_PLUGIN_DEFINE(.name = "history", .version = "1.0.0",
                    .description = "history: pages of a private conversation or a group",
                    .init = history_init, .requires = requires, .destroy = history_destroy);
