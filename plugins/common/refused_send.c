/* refused_send.c - a send refused before it was posted, unless it repeats a
 * client_msg_id: then it gets the first message's answer (docs/protocol.md,
 * "Idempotent sends: client_msg_id"; the host's post_find). */
#include "common.h"

#include <stdlib.h>

/* A refusal waiting for the look-up; owns its copies. */
struct refused_send {
    const struct chatd_host *host;
    struct chatd_request *req; /* held until answered */
    char *result;
    char *reason; /* or NULL */
};

static void refused_send_free(struct refused_send *r)
{
    r->host->request_release(r->req);
    free(r->result);
    free(r->reason);
    free(r);
}

static void looked_up(const struct chatd_posted *posted, void *arg)
{
    struct refused_send *r = arg;
    if (posted->status == 0)
        r->host->reply(r->req, chat_posted_result(posted), chat_posted_fields(posted));
    else if (posted->status == CHATD_ENOENT)
        chat_refuse(r->host, r->req, r->result, r->reason);
    else
        chat_refuse(r->host, r->req, chat_status_word(posted->status),
                    "the client_msg_id could not be looked up");
    refused_send_free(r);
}

void chat_refuse_send(const struct chatd_host *host, struct chatd_plugin *self,
                      struct chatd_request *req, const char *sender, const char *client_msg_id,
                      const char *result, const char *reason)
{
    if (!client_msg_id || !*client_msg_id || !sender) {
        chat_refuse(host, req, result, reason);
        return;
    }
    struct refused_send *r = calloc(1, sizeof(*r));
    if (!r || !(r->result = chat_strdup(result)) ||
        (reason && !(r->reason = chat_strdup(reason)))) {
        if (r)
            free(r->result);
        free(r);
        chat_refuse(host, req, "internal", "out of memory");
        return;
    }
    r->host = host;
    r->req = req;
    host->request_hold(req);
    int rc = host->post_find(self, req, sender, client_msg_id, looked_up, r);
    if (rc == CHATD_ENOMEM)
        chat_refuse(host, req, "internal", "out of memory");
    else if (rc != 0) /* nothing could have been posted (no database) */
        chat_refuse(host, req, result, reason);
    if (rc != 0)
        refused_send_free(r);
}
