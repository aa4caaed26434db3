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

int main(void)
{
    Suite *s = suite_create("names");
    TCase *tc = tcase_create("names");
    tcase_add_test(tc, names_accept_letters_digits_and_underscore);
    tcase_add_test(tc, names_accept_1_to_32_bytes_only);
    tcase_add_test(tc, names_refuse_everything_else);
    suite_add_tcase(s, tc);
    return chatd_run_suite(s);
}
