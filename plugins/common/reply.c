/* reply.c - refusals and the words failed jobs are answered with. */
#include "common.h"

#include <stdlib.h>
#include <string.h>

void chat_refuse(const struct chatd_host *host, struct chatd_request *req, const char *result,
                 const char *reason)
{
    host->reply(req, result, reason ? json_pack("{ss}", "reason", reason) : NULL);
}

const char *chat_status_word(int status)
{
    return status == CHATD_EBUSY ? "busy" : "internal";
}

int chat_job_failed(const struct chatd_host *host, struct chatd_request *req, int status,
                    const char *reason)
{
    if (status == 0)
        return 0;
    if (req)
        chat_refuse(host, req, chat_status_word(status), reason);
    return 1;
}

char *chat_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    if (copy)
        memcpy(copy, s, n);
    return copy;
}
