/* test_json_fast.c - the fast request parser must never disagree with jansson: what it
 * accepts, jansson accepts as an equal value; everything else it leaves to jansson. */
#include "json_fast.h"

#include "run_suite.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static json_t *jansson_parse(const char *data, size_t len)
{
    return json_loadb(data, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
}

/* The invariant, for any bytes at all. Returns whether the fast path took them. */
static int agrees_with_jansson(const char *data, size_t len)
{
    json_t *fast = json_fast_parse_flat_object(data, len);
    if (!fast)
        return 0;
    json_t *slow = jansson_parse(data, len);
    ck_assert_msg(slow != NULL, "fast path accepted what jansson refuses: %.*s", (int)len, data);
    ck_assert_msg(json_equal(fast, slow), "fast path differs from jansson on: %.*s", (int)len,
                  data);
    json_decref(slow);
    json_decref(fast);
    return 1;
}

static int takes(const char *text)
{
    return agrees_with_jansson(text, strlen(text));
}

START_TEST(common_requests_take_the_fast_path)
{
    ck_assert(takes("{\"cmd\":\"private_chat\",\"user_from\":\"alice\",\"user_to\":\"bob\","
                    "\"text\":\"hi there\",\"id\":42}"));
    ck_assert(takes("  {\"cmd\" : \"ping\" , \"id\" : \"abc\" }\r\n"));
    ck_assert(takes("{}"));
    ck_assert(takes("{\"a\":true,\"b\":false,\"c\":null,\"d\":-0,\"e\":0}"));
    ck_assert(takes("{\"max\":9223372036854775807,\"min\":-9223372036854775808}"));
    ck_assert(takes("{\"text\":\"line\\nbreak \\\"quoted\\\" back\\\\slash \\/ \\t\\b\\f\\r\"}"));
    ck_assert(takes("{\"text\":\"\xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80\"}"));
    ck_assert(takes("{\"\":\"empty key\"}"));
}
END_TEST

START_TEST(everything_else_is_left_to_jansson)
{
    static const char *const other[] = {
        "[1]",
        "\"text\"",
        "12",
        "{\"a\":{\"b\":1}}",
        "{\"a\":[1]}",
        "{\"a\":1.5}",
        "{\"a\":1e3}",
        "{\"a\":\"\\u00e9\"}",
        "{\"a\":\"\\u0000\"}",
        "{\"a\":1,\"a\":2}",
        "{\"a\":9223372036854775808}",
        "{\"a\":-9223372036854775809}",
        "{\"a\":12345678901234567890}",
        "{\"a\":01}",
        "{\"a\":-}",
        "{\"a\":tru}",
        "{\"a\":truex}",
        "{\"a\":\"\xff\"}",
        "{\"a\":\"\xed\xa0\x80\"}",
        "{\"a\":\"tab\there\"}",
        "{\"a\":1,}",
        "{,}",
        "{\"a\" 1}",
        "{\"a\":1} x",
        "{\"a\":1}{}",
        "{\"a\":\"unterminated}",
        "{\"a\":\"bad escape \\x\"}",
        "{'a':1}",
        "",
        "{",
    };
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
        ck_assert_msg(!takes(other[i]), "fast path took %s", other[i]);
    ck_assert(!agrees_with_jansson("{\"a\":\"nul\0byte\"}", 16));
}
END_TEST

/* A small deterministic generator, so a failure reproduces. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t next_random(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

START_TEST(mutated_requests_never_disagree)
{
    static const char *const seeds[] = {
        "{\"cmd\":\"private_chat\",\"user_to\":\"bob\",\"text\":\"hi \\\"you\\\"\",\"id\":7}",
        "{\"cmd\":\"login\",\"user\":\"alice\",\"password\":\"p\xc3\xa4ss\",\"id\":\"x\"}",
        "{\"a\":true,\"b\":null,\"c\":-12,\"d\":\"\\n\"}",
    };
    static const char alphabet[] = "{}[]\":,\\ntrufalse-0123456789.eE \t\x80\xc3\xa4\xff\x01u/";
    char buf[256];
    size_t taken = 0;
    for (int round = 0; round < 100000; round++) {
        const char *seed = seeds[next_random() % 3];
        size_t len = strlen(seed);
        memcpy(buf, seed, len);
        int edits = 1 + (int)(next_random() % 3);
        for (int e = 0; e < edits && len > 0; e++) {
            size_t at = next_random() % len;
            char ch = alphabet[next_random() % (sizeof(alphabet) - 1)];
            switch (next_random() % 4) {
            case 0: /* replace */
                buf[at] = ch;
                break;
            case 1: /* insert */
                if (len < sizeof(buf) - 1) {
                    memmove(buf + at + 1, buf + at, len - at);
                    buf[at] = ch;
                    len++;
                }
                break;
            case 2: /* delete */
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
                break;
            default: /* cut short */
                len = at;
            }
        }
        taken += (size_t)agrees_with_jansson(buf, len);
    }
    /* Some mutations keep the request valid; the fast path must have taken those. */
    ck_assert_uint_gt(taken, 1000);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("json_fast");
    TCase *tc = tcase_create("parse");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, common_requests_take_the_fast_path);
    tcase_add_test(tc, everything_else_is_left_to_jansson);
    tcase_add_test(tc, mutated_requests_never_disagree);
    suite_add_tcase(s, tc);
    return chatd_run_suite(s);
}
