/* test_names.c - the chat plugins' rule for user and group names (plugins/common). */
#include "names.h"

#include "run_suite.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

START_TEST(names_accept_letters_digits_and_underscore)
{
    ck_assert(chat_valid_name("LiHua"));
    ck_assert(chat_valid_name("bob_2"));
    ck_assert(chat_valid_name("_"));
    ck_assert(chat_valid_name("0"));
}
END_TEST

START_TEST(names_accept_1_to_32_bytes_only)
{
    char name[40];
    memset(name, 'a', sizeof(name));
    name[32] = '\0';
    ck_assert(chat_valid_name(name));
    name[32] = 'a';
    name[33] = '\0';
    ck_assert(!chat_valid_name(name));
    ck_assert(!chat_valid_name(""));
    ck_assert(!chat_valid_name(NULL));
}
END_TEST

START_TEST(names_refuse_everything_else)
{
    static const char *const bad[] = {
        "bad name", "a-b",   "a.b",     "Robert');", "x'--", "ü",
        "tab\t",    "semi;", "quote\"", "%",         "a\\b",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!chat_valid_name(bad[i]), "'%s' was accepted", bad[i]);
}
END_TEST

START_TEST(msg_ids_are_positive_decimal_int64s)
{
    ck_assert_int_eq(chat_msg_id_value("1"), 1);
    ck_assert_int_eq(chat_msg_id_value("9223372036854775807"), 9223372036854775807LL);
    const char *bad[] = {NULL,
                         "",
                         "0",
                         "00",
                         "-1",
                         "+1",
                         " 1",
                         "1 ",
                         "1e3",
                         "0x10",
                         "g12",
                         "9223372036854775808",
                         "12345678901234567890"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(chat_msg_id_value(bad[i]) == 0, "'%s' was accepted",
                      bad[i] ? bad[i] : "NULL");
}
END_TEST

START_TEST(private_conversation_is_the_same_from_both_sides)
{
    char ab[CHAT_CONVERSATION_MAX + 1], ba[CHAT_CONVERSATION_MAX + 1];
    chat_private_conversation("LiHua", "Bob", ab);
    chat_private_conversation("Bob", "LiHua", ba);
    ck_assert_str_eq(ab, "Bob|LiHua"); /* byte order: upper case first */
    ck_assert_str_eq(ba, ab);
    char longest[CHAT_NAME_MAX + 1];
    memset(longest, 'z', CHAT_NAME_MAX);
    longest[CHAT_NAME_MAX] = '\0';
    chat_private_conversation(longest, longest, ab);
    ck_assert_uint_eq(strlen(ab), CHAT_CONVERSATION_MAX);
}
END_TEST

START_TEST(a_copied_name_is_cut_at_the_longest_name)
{
    char out[CHAT_NAME_MAX + 1];
    ck_assert_uint_eq(chat_copy_name(out, "LiHua"), 5);
    ck_assert_str_eq(out, "LiHua");
    char longer[CHAT_NAME_MAX + 8];
    memset(longer, 'y', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    ck_assert_uint_eq(chat_copy_name(out, longer), CHAT_NAME_MAX);
    ck_assert_uint_eq(strlen(out), CHAT_NAME_MAX);
    char longest[CHAT_CONVERSATION_MAX + 1];
    chat_private_conversation(longer, "a", longest);
    ck_assert_uint_eq(strlen(longest), CHAT_NAME_MAX + 2);
    ck_assert_int_eq(longest[0], 'a');
}
END_TEST

int main(void)
{
    Suite *s = suite_create("names");
    TCase *tc = tcase_create("names");
    tcase_add_test(tc, names_accept_letters_digits_and_underscore);
    tcase_add_test(tc, names_accept_1_to_32_bytes_only);
    tcase_add_test(tc, names_refuse_everything_else);
    tcase_add_test(tc, msg_ids_are_positive_decimal_int64s);
    tcase_add_test(tc, private_conversation_is_the_same_from_both_sides);
    tcase_add_test(tc, a_copied_name_is_cut_at_the_longest_name);
    suite_add_tcase(s, tc);
    return chatd_run_suite(s);
}
