/* test_json_emit.c - the host's JSON writer must produce what jansson would: valid
 * compact JSON that parses back to an equal value, and refuse what jansson refuses. */
#include "json_emit.h"
#include "utf8.h"

#include "run_suite.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct line_buffer out;

static void setup(void)
{
    ck_assert_int_eq(line_buffer_init(&out, 8), 0);
}

static void teardown(void)
{
    line_buffer_free(&out);
}

/* Emit v, check it is byte for byte what jansson's compact dump gives, and that it
 * parses back to an equal value. */
static void assert_same_as_jansson(json_t *v)
{
    out.len = 0;
    ck_assert_int_eq(json_emit(&out, v), 0);
    char *expected = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    ck_assert_ptr_nonnull(expected);
    ck_assert_uint_eq(out.len, strlen(expected));
    ck_assert_msg(memcmp(out.data, expected, out.len) == 0, "emitted %.*s, jansson %s",
                  (int)out.len, out.data, expected);
    json_t *back = json_loadb(out.data, out.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    ck_assert(json_equal(back, v));
    json_decref(back);
    free(expected);
    json_decref(v);
}

START_TEST(scalars_match_jansson)
{
    assert_same_as_jansson(json_integer(0));
    assert_same_as_jansson(json_integer(-1));
    assert_same_as_jansson(json_integer(INT64_MAX));
    assert_same_as_jansson(json_integer(INT64_MIN));
    assert_same_as_jansson(json_real(0.1));
    assert_same_as_jansson(json_real(-2.5e300));
    assert_same_as_jansson(json_true());
    assert_same_as_jansson(json_false());
    assert_same_as_jansson(json_null());
    assert_same_as_jansson(json_string(""));
}
END_TEST

START_TEST(decimals_are_what_printf_writes)
{
    const json_int_t values[] = {0, 7, -7, 1234567890, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        char mine[JSON_EMIT_DECIMAL_MAX], printed[32];
        size_t n = json_emit_decimal(mine, values[i]);
        snprintf(printed, sizeof(printed), "%" JSON_INTEGER_FORMAT, values[i]);
        ck_assert_str_eq(mine, printed);
        ck_assert_uint_eq(n, strlen(printed));
    }
}
END_TEST

START_TEST(strings_escape_what_json_requires)
{
    char all_controls[40];
    for (int c = 1; c < 0x20; c++)
        all_controls[c - 1] = (char)c;
    memcpy(all_controls + 31, "\"\\/x", 5);
    assert_same_as_jansson(json_string(all_controls));
    assert_same_as_jansson(json_stringn("nul\0inside", 10));
    assert_same_as_jansson(json_string("\xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80 caf\xc3\xa9"));
    assert_same_as_jansson(json_string("a long enough run of plain ascii, then \"quotes\""));
}
END_TEST

START_TEST(special_bytes_are_found_at_every_position)
{
    /* Plain runs are copied eight bytes at a time: every offset must still see them. */
    static const char *const special[] = {
        "\"", "\\", "\n", "\x1f", "\x01", "\xc3\xa9", "\xf0\x9f\x98\x80", "\x7f", "~"};
    for (size_t k = 0; k < sizeof(special) / sizeof(special[0]); k++) {
        for (size_t at = 0; at < 24; at++) {
            char text[64];
            memset(text, 'a', 24);
            size_t n = strlen(special[k]);
            memcpy(text + at, special[k], n);
            text[24 + n] = '\0';
            memset(text + at + n, 'b', 24 - at);
            assert_same_as_jansson(json_string(text));
        }
    }
}
END_TEST

START_TEST(containers_keep_order_and_nesting)
{
    assert_same_as_jansson(json_object());
    assert_same_as_jansson(json_array());
    assert_same_as_jansson(json_pack("{sssis[iss{}]s{s{sn}}}", "cmd", "x", "ts", 1700000000000,
                                     "list", 1, "two", "\n", "nested", "deeper", "z"));
}
END_TEST

START_TEST(invalid_utf8_is_refused_and_leaves_the_buffer_as_it_was)
{
    static const char *const bad[] = {
        "\xff", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe4\xbd", "\x80",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *v = json_pack("{so}", "ok", json_stringn_nocheck(bad[i], strlen(bad[i])));
        out.len = 3;
        ck_assert_int_eq(json_emit(&out, v), -1);
        ck_assert_uint_eq(out.len, 3);
        json_decref(v);
    }
}
END_TEST

START_TEST(nesting_deeper_than_the_limit_is_refused)
{
    json_t *v = json_array();
    for (int i = 0; i < JSON_EMIT_MAX_DEPTH + 1; i++) {
        json_t *outer = json_array();
        json_array_append_new(outer, v);
        v = outer;
    }
    out.len = 0;
    ck_assert_int_eq(json_emit(&out, v), -1);
    ck_assert_uint_eq(out.len, 0);
    json_decref(v);
}
END_TEST

START_TEST(utf8_rules)
{
    ck_assert(utf8_valid("", 0));
    ck_assert(utf8_valid("plain ascii text, longer than eight bytes", 41));
    ck_assert(
        utf8_valid("\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", 18));
    ck_assert(!utf8_valid("\xc1\xbf", 2));          /* overlong 2-byte */
    ck_assert(!utf8_valid("\xe0\x9f\xbf", 3));      /* overlong 3-byte */
    ck_assert(!utf8_valid("\xf0\x8f\xbf\xbf", 4));  /* overlong 4-byte */
    ck_assert(!utf8_valid("\xed\xbf\xbf", 3));      /* surrogate */
    ck_assert(!utf8_valid("\xf4\x90\x80\x80", 4));  /* above U+10FFFF */
    ck_assert(!utf8_valid("abcdefgh\xe4\xbd", 10)); /* cut short after an ASCII word */
    ck_assert(!utf8_valid("\xe4\x3d\xa0", 3));      /* not a continuation byte */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("json_emit");
    TCase *tc = tcase_create("emit");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, scalars_match_jansson);
    tcase_add_test(tc, decimals_are_what_printf_writes);
    tcase_add_test(tc, strings_escape_what_json_requires);
    tcase_add_test(tc, special_bytes_are_found_at_every_position);
    tcase_add_test(tc, containers_keep_order_and_nesting);
    tcase_add_test(tc, invalid_utf8_is_refused_and_leaves_the_buffer_as_it_was);
    tcase_add_test(tc, nesting_deeper_than_the_limit_is_refused);
    tcase_add_test(tc, utf8_rules);
    suite_add_tcase(s, tc);
    return chatd_run_suite(s);
}
