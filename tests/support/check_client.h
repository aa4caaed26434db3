/* check_client.h - the test client (client.h) for Check tests against a running chatd:
 * each call fails the test instead of returning an error, and JSON checks that say what
 * was wanted and what came. For the test process's main thread. */
#ifndef CHATD_TEST_CHECK_CLIENT_H
#define CHATD_TEST_CHECK_CLIENT_H

#include "chatd_proc.h"
#include "client.h"

#include <jansson.h>
#include <stddef.h>

/* A connection to the running server p. */
struct test_client *check_connect(const struct chatd_proc *p);

/* Send `len` bytes, or the NUL-terminated `text`. */
void check_send(struct test_client *c, const void *data, size_t len);
void check_send_str(struct test_client *c, const char *text);

/* The next line, one JSON object (see test_client_read_json); the caller frees it. */
json_t *check_read_json(struct test_client *c);

/* For failure messages only: msg (or any JSON value; NULL is "(nothing)") as compact
 * JSON, cut short, since Check cannot carry a very long message. Never freed: the test
 * ends right after. */
char *check_dump(const json_t *msg);

/* Whether msg[key] is the string want. */
int check_json_str_is(const json_t *msg, const char *key, const char *want);

/* msg[key] must be the string want; msg must have no key `key`. */
void check_json_str(const json_t *msg, const char *key, const char *want);
void check_json_no_key(const json_t *msg, const char *key);

#endif
