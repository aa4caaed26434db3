/* test_fields.c - a command's field table as the host keeps and checks it: the copy of
 * the plugin's table, and the rules of ABI 1.2 (ranges, defaults, limits from options). */
#include "fields.h"
#include "plugin_loader.h"
#include "plugin_options.h"

#include "run_suite.h"

#include <check.h>
#include <string.h>

static const struct chatd_option limit_option = {"max_text", CHATD_OPT_INT, "8", 1, 100, ""};
static const struct chatd_option flag_option = {"flag", CHATD_OPT_BOOL, "no", 0, 0, ""};

/* A plugin with an integer option max_text = 8 and a boolean option flag. */
static struct chatd_plugin *plugin_with_options(void)
{
    static struct option_value values[2];
    static struct chatd_plugin p;
    values[0] = (struct option_value){.option = &limit_option, .number = 8};
    values[1] = (struct option_value){.option = &flag_option, .number = 0};
    p.name = (char *)(uintptr_t) "fixture";
    p.options = values;
    p.n_options = 2;
    return &p;
}

static const struct chatd_field table[] = {
    {"text", CHATD_FIELD_STRING, 1, 1, 0},
    {"limit", CHATD_FIELD_INT, 0, 0, 0},
    {"all", CHATD_FIELD_BOOL, 0, 0, 0},
    {NULL, 0, 0, 0, 0},
};

/* Check `json` against the table with the rules; returns the reason, "" when it passed. */
static const char *check(const struct chatd_field_rule *rules, const char *json, json_t **body_out)
{
    static char reason[200];
    struct field_table t;
    char why[200];
    ck_assert_int_eq(fields_copy(&t, table), 0);
    ck_assert_int_eq(fields_add_rules(&t, plugin_with_options(), rules, why, sizeof(why)), 0);
    json_t *body = json_loads(json, 0, NULL);
    ck_assert_ptr_nonnull(body);
    reason[0] = '\0';
    fields_check(&t, body, reason, sizeof(reason));
    fields_free(&t);
    if (body_out)
        *body_out = body;
    else
        json_decref(body);
    return reason;
}

START_TEST(the_table_is_checked_from_a_copy)
{
    struct chatd_field built[] = {{"text", CHATD_FIELD_STRING, 1, 0, 3}, {NULL, 0, 0, 0, 0}};
    struct field_table t;
    ck_assert_int_eq(fields_copy(&t, built), 0);
    built[0].max_len = 1000; /* the plugin's table may change or go; the copy stays */
    char reason[100] = "";
    json_t *body = json_pack("{ss}", "text", "long");
    ck_assert_int_eq(fields_check(&t, body, reason, sizeof(reason)), -1);
    ck_assert_str_eq(reason, "'text' must be 0 to 3 bytes long");
    json_decref(body);
    fields_free(&t);
}
END_TEST

START_TEST(integer_ranges_are_checked)
{
    const struct chatd_field_rule rules[] = {{.field = "limit", .min_int = 1, .max_int = 50},
                                             {.field = NULL}};
    ck_assert_str_eq(check(rules, "{\"text\":\"a\",\"limit\":50}", NULL), "");
    ck_assert_str_eq(check(rules, "{\"text\":\"a\",\"limit\":0}", NULL), "'limit' must be 1 to 50");
    ck_assert_str_eq(check(rules, "{\"text\":\"a\",\"limit\":51}", NULL),
                     "'limit' must be 1 to 50");
    ck_assert_str_eq(check(rules, "{\"text\":\"a\",\"limit\":\"5\"}", NULL),
                     "'limit' must be an integer");
}
END_TEST

START_TEST(defaults_fill_absent_fields_only)
{
    const struct chatd_field_rule rules[] = {{.field = "limit", .default_json = "20"},
                                             {.field = "all", .default_json = "true"},
                                             {.field = NULL}};
    json_t *body;
    ck_assert_str_eq(check(rules, "{\"text\":\"a\",\"all\":false}", &body), "");
    ck_assert_int_eq(json_integer_value(json_object_get(body, "limit")), 20);
    ck_assert(json_is_false(json_object_get(body, "all")));
    json_decref(body);
}
END_TEST

START_TEST(limits_come_from_options)
{
    const struct chatd_field_rule rules[] = {{.field = "text", .max_from_option = "max_text"},
                                             {.field = "limit", .max_from_option = "max_text"},
                                             {.field = NULL}};
    ck_assert_str_eq(check(rules, "{\"text\":\"12345678\",\"limit\":8}", NULL), "");
    ck_assert_str_eq(check(rules, "{\"text\":\"123456789\"}", NULL),
                     "'text' must be 1 to 8 bytes long");
    ck_assert_str_eq(check(rules, "{\"text\":\"a\",\"limit\":9}", NULL),
                     "'limit' must be at most 8");
}
END_TEST

START_TEST(bad_rules_are_refused_with_a_reason)
{
    static const struct {
        struct chatd_field_rule rule;
        int rc;
        const char *why;
    } cases[] = {
        {{.field = "nope", .default_json = "1"}, CHATD_ENOENT, "no field 'nope'"},
        {{.field = "limit", .default_json = "\"x\""}, CHATD_EINVAL, "field 'limit': the default"},
        {{.field = "limit", .default_json = "{"}, CHATD_EINVAL, "field 'limit': the default"},
        {{.field = "text", .default_json = "\"x\""}, CHATD_EINVAL, "field 'text': the default"},
        {{.field = "text", .min_int = 1, .max_int = 2}, CHATD_EINVAL, "field 'text': a range"},
        {{.field = "limit", .min_int = 5, .max_int = 2}, CHATD_EINVAL, "field 'limit': a range"},
        {{.field = "limit", .max_from_option = "flag"}, CHATD_EINVAL, "field 'limit': 'flag'"},
        {{.field = "all", .max_from_option = "max_text"}, CHATD_EINVAL, "field 'all': only"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct chatd_field_rule rules[2] = {cases[i].rule, {.field = NULL}};
        struct field_table t;
        char why[200] = "";
        ck_assert_int_eq(fields_copy(&t, table), 0);
        ck_assert_int_eq(fields_add_rules(&t, plugin_with_options(), rules, why, sizeof(why)),
                         cases[i].rc);
        ck_assert_msg(strncmp(why, cases[i].why, strlen(cases[i].why)) == 0, "case %zu: %s", i,
                      why);
        fields_free(&t);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fields");
    TCase *tc = tcase_create("rules");
    tcase_add_test(tc, the_table_is_checked_from_a_copy);
    tcase_add_test(tc, integer_ranges_are_checked);
    tcase_add_test(tc, defaults_fill_absent_fields_only);
    tcase_add_test(tc, limits_come_from_options);
    tcase_add_test(tc, bad_rules_are_refused_with_a_reason);
    suite_add_tcase(s, tc);
    return chatd_run_suite(s);
}
