/* test_deps.c - the service dependency check and start order (host/plugin_deps.c). */
#include "plugin_deps.h"
#include "run_suite.h"

#include <check.h>
#include <string.h>

static const char *const accounts[] = {"accounts", NULL};
static const char *const friends[] = {"friends", NULL};
static const char *const both[] = {"accounts", "friends", NULL};

static char err[512];
static size_t order[8];

START_TEST(providers_come_first_and_the_enable_order_stays_otherwise)
{
    const struct dep_plugin p[] = {
        {"ping", NULL, NULL, 1},
        {"private_chat", NULL, both, 2},
        {"friends", friends, accounts, 3},
        {"accounts", accounts, NULL, 4},
    };
    ck_assert_int_eq(deps_order(p, 4, "c.conf", order, err, sizeof(err)), 0);
    ck_assert_uint_eq(order[0], 0);
    ck_assert_uint_eq(order[1], 3);
    ck_assert_uint_eq(order[2], 2);
    ck_assert_uint_eq(order[3], 1);
}
END_TEST

START_TEST(a_missing_provider_is_refused_naming_both)
{
    const struct dep_plugin p[] = {{"ping", NULL, NULL, 7}, {"private_chat", NULL, accounts, 8}};
    ck_assert_int_eq(deps_order(p, 2, "c.conf", order, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "c.conf:8: plugin 'private_chat' requires service 'accounts', which no "
                          "enabled plugin provides (enable a plugin that provides it, or disable "
                          "'private_chat')");
}
END_TEST

START_TEST(two_providers_of_one_service_are_refused)
{
    const struct dep_plugin p[] = {{"a", accounts, NULL, 1}, {"b", accounts, NULL, 2}};
    ck_assert_int_eq(deps_order(p, 2, "c.conf", order, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "c.conf:2: plugins 'a' and 'b' both provide service 'accounts' "
                          "(disable one)");
}
END_TEST

START_TEST(a_cycle_is_refused_naming_the_plugins)
{
    const struct dep_plugin p[] = {
        {"ping", NULL, NULL, 1},
        {"a", accounts, friends, 2},
        {"b", friends, accounts, 3},
    };
    ck_assert_int_eq(deps_order(p, 3, "c.conf", order, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "c.conf:2: plugins depend on each other's services in a cycle: 'a' "
                          "requires service 'friends' of 'b', 'b' requires service 'accounts' "
                          "of 'a'");
}
END_TEST

START_TEST(a_plugin_may_use_its_own_service)
{
    const struct dep_plugin p[] = {{"a", accounts, accounts, 1}};
    ck_assert_int_eq(deps_order(p, 1, "c.conf", order, err, sizeof(err)), 0);
    ck_assert_uint_eq(order[0], 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("deps");
    TCase *tc = tcase_create("deps");
    tcase_add_test(tc, providers_come_first_and_the_enable_order_stays_otherwise);
    tcase_add_test(tc, a_missing_provider_is_refused_naming_both);
    tcase_add_test(tc, two_providers_of_one_service_are_refused);
    tcase_add_test(tc, a_cycle_is_refused_naming_the_plugins);
    tcase_add_test(tc, a_plugin_may_use_its_own_service);
    suite_add_tcase(s, tc);
    return chatd_run_suite(s);
}
