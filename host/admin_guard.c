/* admin_guard.c - the admin listener's token and its cross-site check. */
#include "admin_guard.h"

#include <errno.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

int admin_token_load(const char *path, char **token, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errlen, "[admin] token_file %s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    char line[ADMIN_TOKEN_MAX + 2];
    ssize_t n = -1;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        snprintf(err, errlen, "[admin] token_file %s: not a regular file", path);
    else if (st.st_mode & (S_IROTH | S_IWOTH))
        snprintf(err, errlen,
                 "[admin] token_file %s: other users can read or write it (mode %03o); "
                 "chmod 600 it",
                 path, (unsigned)(st.st_mode & 0777));
    else if ((n = read(fd, line, sizeof(line) - 1)) < 0)
        snprintf(err, errlen, "[admin] token_file %s: cannot read: %s", path, strerror(errno));
    close(fd);
    if (n < 0)
        return -1;
    line[n] = '\0';
    size_t len = strcspn(line, "\r\n");
    while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    line[len] = '\0';
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
