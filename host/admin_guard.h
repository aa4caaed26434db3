/* admin_guard.h - who may use the admin listener: the bearer token from [admin]
 * token_file, and no request a web page in a browser could have sent. */
#ifndef CHATD_HOST_ADMIN_GUARD_H
#define CHATD_HOST_ADMIN_GUARD_H

#include <stddef.h>

struct evhttp_request;

/* The shortest token accepted, in bytes. */
#define ADMIN_TOKEN_MIN 16
#define ADMIN_TOKEN_MAX 1024

/* Read the token: the first line of `path`, which must be a regular file that other
 * users cannot read or write, holding at least ADMIN_TOKEN_MIN bytes. Malloc'ed into
 * *token; -1 with the reason in err. */
int admin_token_load(const char *path, char **token, char *err, size_t errlen);

/* Why req looks like it came from a web page (a browser's cross-site request), or NULL:
 * a Sec-Fetch-Site other than none or same-origin, or an Origin on a POST. */
const char *admin_cross_site(struct evhttp_request *req);

/* Whether req carries "Authorization: Bearer <token>" (compared in constant time). */
int admin_bearer_ok(struct evhttp_request *req, const char *token);

#endif
