/* check_client.c - see check_client.h. */
#include "check_client.h"

#include <check.h>
#include <errno.h>
#include <string.h>

struct test_client *check_connect(const struct chatd_proc *p)
{
    struct test_client *c = test_client_connect(p->host, p->port, 0);
    ck_assert_msg(c != NULL, "cannot connect to chatd on port %d", p->port);
    return c;
}

void check_send(struct test_client *c, const void *data, size_t len)
{
    ck_assert_msg(test_client_send(c, data, len, TEST_CLIENT_TIMEOUT_MS) == 0, "send failed: %s",
                  strerror(errno));
}

void check_send_str(struct test_client *c, const char *text)
{
    check_send(c, text, strlen(text));
}

json_t *check_read_json(struct test_client *c)
{
    json_t *msg = test_client_read_json(c, TEST_CLIENT_TIMEOUT_MS);
    ck_assert_msg(msg != NULL, "no line (a JSON object) from chatd");
    return msg;
}

char *check_dump(const json_t *msg)
{
    static char nothing[] = "(nothing)";
    char *text = msg ? json_dumps(msg, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (text && strlen(text) > 1500)
        strcpy(text + 1480, " ... (cut short)");
    return text ? text : nothing;
}

int check_json_str_is(const json_t *msg, const char *key, const char *want)
{
    const json_t *v = json_object_get(msg, key);
    return json_is_string(v) && strcmp(json_string_value(v), want) == 0;
}

void check_json_str(const json_t *msg, const char *key, const char *want)
{
    if (!check_json_str_is(msg, key, want))
        ck_abort_msg("want \"%s\":\"%s\" in %s", key, want, check_dump(msg));
}

void check_json_no_key(const json_t *msg, const char *key)
{
    if (json_object_get(msg, key))
        ck_abort_msg("want no \"%s\" in %s", key, check_dump(msg));
}
