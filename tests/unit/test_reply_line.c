/* test_reply_line.c - reply lines written straight from their parts must be the JSON
 * the wire contract describes: cmd, result, the plugin's fields, id, one line. */
#include "reply_line.h"

#include "run_suite.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static struct line_buffer line;
static char *prefix;

static void setup(void)
{
    ck_assert_int_eq(line_buffer_init(&line, 16), 0); /* small: growth is exercised */
    prefix = reply_line_prefix("private_chat");
    ck_assert_ptr_nonnull(prefix);
}

static void teardown(void)
{
    line_buffer_free(&line);
    free(prefix);
}

/* The built line as a NUL-terminated string, checked to end in exactly one newline. */
static const char *text(void)
{
    ck_assert_uint_ge(line.len, 2);
    ck_assert_int_eq(line.data[line.len - 1], '\n');
    ck_assert_ptr_null(memchr(line.data, '\n', line.len - 1));
    ck_assert_int_eq(line_buffer_append(&line, "", 1), 0);
    line.len--;
    return line.data;
}

START_TEST(plain_reply_is_byte_exact)
{
    json_t *id = json_integer(-42);
    ck_assert_int_eq(reply_line_build(&line, prefix, "success", NULL, id), 0);
    ck_assert_str_eq(text(),
                     "{\"cmd\":\"private_chat_reply\",\"result\":\"success\",\"id\":-42}\n");
    ck_assert_int_eq(reply_line_build(&line, prefix, "offline", NULL, NULL), 0);
    ck_assert_str_eq(text(), "{\"cmd\":\"private_chat_reply\",\"result\":\"offline\"}\n");
    json_decref(id);
}
END_TEST

START_TEST(fields_keep_their_order_and_host_keys_win)
{
    json_t *fields = json_pack("{sssisbs[i]s{ss}}", "reason", "x", "cmd", 7, "ok", 1, "list", 1,
                               "nested", "k", "v");
    json_object_set_new(fields, "id", json_string("spoofed"));
    json_object_set_new(fields, "result", json_string("spoofed"));
    json_t *id = json_string("req-1");
    ck_assert_int_eq(reply_line_build(&line, prefix, "forbidden", fields, id), 0);
    ck_assert_str_eq(text(), "{\"cmd\":\"private_chat_reply\",\"result\":\"forbidden\","
                             "\"reason\":\"x\",\"ok\":true,\"list\":[1],\"nested\":{\"k\":\"v\"},"
                             "\"id\":\"req-1\"}\n");
    json_decref(fields);
    json_decref(id);
}
END_TEST

START_TEST(strings_needing_escapes_are_escaped)
{
    json_t *fields = json_object();
    json_object_set_new(fields, "quote\"key", json_string("line\nbreak \xc3\xa9"));
    json_t *id = json_string("a\"b\\c\x01");
    ck_assert_int_eq(reply_line_build(&line, prefix, "we\"ird\tword", fields, id), 0);
    json_error_t error;
    json_t *parsed = json_loads(text(), 0, &error);
    ck_assert_msg(parsed != NULL, "not JSON: %s", error.text);
    ck_assert_str_eq(json_string_value(json_object_get(parsed, "result")), "we\"ird\tword");
    ck_assert_str_eq(json_string_value(json_object_get(parsed, "quote\"key")),
                     "line\nbreak \xc3\xa9");
    ck_assert(json_equal(json_object_get(parsed, "id"), id));
    json_decref(parsed);
    json_decref(fields);
    json_decref(id);
}
END_TEST

START_TEST(invalid_utf8_result_is_refused)
{
    ck_assert_int_eq(reply_line_build(&line, prefix, "bad\xff", NULL, NULL), -1);
}
END_TEST

START_TEST(long_fields_grow_the_buffer)
{
    char *big = malloc(100001);
    memset(big, 'x', 100000);
    big[100000] = '\0';
    json_t *fields = json_pack("{ss}", "text", big);
    ck_assert_int_eq(reply_line_build(&line, prefix, "success", fields, NULL), 0);
    json_t *parsed = json_loads(text(), 0, NULL);
    ck_assert_ptr_nonnull(parsed);
    ck_assert_str_eq(json_string_value(json_object_get(parsed, "text")), big);
    json_decref(parsed);
    json_decref(fields);
    free(big);
}
END_TEST

static Suite *reply_line_suite(void)
{
    Suite *s = suite_create("reply_line");
    TCase *tc = tcase_create("build");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, plain_reply_is_byte_exact);
    tcase_add_test(tc, fields_keep_their_order_and_host_keys_win);
    tcase_add_test(tc, strings_needing_escapes_are_escaped);
    tcase_add_test(tc, invalid_utf8_result_is_refused);
    tcase_add_test(tc, long_fields_grow_the_buffer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_run_suite(reply_line_suite());
}
