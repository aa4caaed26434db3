/* admin_guard.c - the admin listener's token and its cross-site check. */
#include "admin_guard.h"

#include "secret_file.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int admin_token_load(const char *path, char **token, char *err, size_t errlen)
{
    char line[ADMIN_TOKEN_MAX + 2];
    if (secret_file_first_line("[admin] token_file", path, line, sizeof(line), err, errlen) < 0)
        return -1;
    size_t len = strlen(line);
    if (len < ADMIN_TOKEN_MIN || len > ADMIN_TOKEN_MAX || strpbrk(line, " \t")) {
        snprintf(err, errlen,
                 "[admin] token_file %s: the first line must be a token of %d to %d bytes "
                 "without blanks (e.g. openssl rand -hex 32)",
                 path, ADMIN_TOKEN_MIN, ADMIN_TOKEN_MAX);
        return -1;
    }
    *token = strdup(line);
    if (!*token) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

const char *admin_cross_site(struct evhttp_request *req)
{
    struct evkeyvalq *headers = evhttp_request_get_input_headers(req);
    const char *site = evhttp_find_header(headers, "Sec-Fetch-Site");
    if (site && strcmp(site, "none") != 0 && strcmp(site, "same-origin") != 0)
        return "sent by a web page (Sec-Fetch-Site is not none or same-origin)";
    if (evhttp_request_get_command(req) == EVHTTP_REQ_POST && evhttp_find_header(headers, "Origin"))
        return "sent by a web page (a POST with an Origin header)";
    return NULL;
}

/* Equal strings, in a time that depends on the lengths only. */
static int same_secret(const char *given, size_t given_len, const char *expected,
                       size_t expected_len)
{
    volatile unsigned char diff = given_len != expected_len;
    for (size_t i = 0; i < expected_len; i++)
        diff |= (unsigned char)expected[i] ^ (unsigned char)given[i < given_len ? i : 0];
    return diff == 0;
}

int admin_bearer_ok(struct evhttp_request *req, const char *token)
{
    const char *value = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (!value || strncasecmp(value, "Bearer ", 7) != 0)
        return 0;
    value += 7;
    while (*value == ' ')
        value++;
    size_t len = strlen(value);
    return len > 0 && same_secret(value, len, token, strlen(token));
}
