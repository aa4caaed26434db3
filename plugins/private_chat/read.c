/* read.c - `read`: the reader has read every private message from `with` up to msg_id.
 *
 * A `with` that breaks the name rule, or that the accounts service does not know, is
 * user_not_exist; a msg_id that is not a string of digits is bad_request. The host's
 * read_mark then checks that msg_id is a private message from `with` to the reader
 * (CHATD_ENOENT: bad_request, with a reason), moves the reader's mark forward only, and
 * sends `with` one "read" receipt when the mark moved: reading the same message again,
 * or an older one, sends nothing and still answers success. */
#include "read.h"

#include "chatd_accounts.h"
#include "common.h"

#include <stdlib.h>
#include <string.h>

struct read_request {
    struct read_command *r;
    struct chatd_request *req; /* held until answered */
    struct chatd_service accounts;
    char with[CHAT_NAME_MAX + 1];
    int64_t msg_id;
};

static void finish(struct read_request *rr, const char *result, const char *reason)
{
    chat_refuse(rr->r->host, rr->req, result, reason);
    rr->r->host->request_release(rr->req);
    free(rr);
}

static void marked(int status, void *arg)
{
    struct read_request *rr = arg;
    if (status == 0)
        finish(rr, "success", NULL);
    else if (status == CHATD_ENOENT)
        finish(rr, "bad_request", "msg_id is not a private message to you from that user");
    else
        finish(rr, chat_status_word(status), chatd_strerror(status));
}

static void looked_up(int exists, void *arg)
{
    struct read_request *rr = arg;
    const struct chatd_host *host = rr->r->host;
    chat_accounts_release(host, rr->r->self, &rr->accounts);
    if (exists < 0) {
        finish(rr, chat_status_word(exists), "the user could not be looked up");
        return;
    }
    if (!exists) {
        finish(rr, "user_not_exist", NULL);
        return;
    }
    int rc = host->read_mark(rr->req, rr->with, rr->msg_id, marked, rr);
    if (rc != 0)
        finish(rr, chat_status_word(rc), chatd_strerror(rc));
}

static void handle_read(struct chatd_request *req, const json_t *body, void *arg)
{
    struct read_command *r = arg;
    const char *with = json_string_value(json_object_get(body, "with"));
    int64_t msg_id = chat_msg_id_value(json_string_value(json_object_get(body, "msg_id")));
    if (msg_id == 0) {
        chat_refuse(r->host, req, "bad_request", "msg_id must be a message id (its digits)");
        return;
    }
    if (!chat_valid_name(with)) {
        r->host->reply(req, "user_not_exist", NULL);
        return;
    }
    struct read_request *rr = calloc(1, sizeof(*rr));
    if (!rr) {
        chat_refuse(r->host, req, "internal", "out of memory");
        return;
    }
    rr->r = r;
    rr->req = req;
    strcpy(rr->with, with);
    rr->msg_id = msg_id;
    if (chat_accounts_acquire(r->host, r->self, &rr->accounts) != 0) {
        chat_refuse(r->host, req, "internal", "the accounts service is not available");
        free(rr);
        return;
    }
    r->host->request_hold(req);
    const struct chatd_accounts_v1 *accounts = rr->accounts.fns;
    /* looked_up runs exactly once, possibly before this returns. */
    int rc = accounts->user_exists_async(rr->accounts.instance, with, looked_up, rr);
    if (rc != 0) {
        chat_accounts_release(r->host, r->self, &rr->accounts);
        finish(rr, "internal", chatd_strerror(rc));
    }
}

int read_register(struct read_command *r, const struct chatd_host *host, struct chatd_plugin *self)
{
    r->host = host;
    r->self = self;
    static const struct chatd_field fields[] = {
        {"with", CHATD_FIELD_STRING, 1, 1, 256},
        {"msg_id", CHATD_FIELD_STRING, 1, 1, 64},
        {NULL, 0, 0, 0, 0},
    };
    const struct chatd_command command = {
        .name = "read", .handler = handle_read, .arg = r, .fields = fields};
    return host->register_command(self, &command);
}
