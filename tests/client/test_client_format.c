/* test_client_format.c - unit tests of the terminal client's pure parts: parsing typed
 * commands, the requests they make, and how replies and pushes are shown. */
#include "commands.h"
#include "format.h"
#include "seen.h"
#include "run_suite.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static json_t *parse_json(const char *text)
{
    json_error_t err;
    json_t *v = json_loads(text, 0, &err);
    ck_assert_msg(v != NULL, "bad test JSON: %s", err.text);
    return v;
}

/* The request a typed line makes, compact, or "" when it makes none. */
static void check_request(const char *typed, const char *want)
{
    char line[256];
    snprintf(line, sizeof(line), "%s", typed);
    struct chat_command c;
    ck_assert_int_eq(chat_command_parse(line, &c), CHAT_PARSE_OK);
    json_t *req = chat_command_request(&c, NULL);
    char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    ck_assert_str_eq(text ? text : "", want);
    free(text);
    json_decref(req);
}

START_TEST(typed_commands_make_the_contracts_requests)
{
    check_request("/register LiHua 11111", "{\"cmd\":\"register\",\"user\":\"LiHua\","
                                           "\"passwd\":\"11111\"}");
    check_request("/login  bob   my pass word ",
                  "{\"cmd\":\"login\",\"user\":\"bob\",\"passwd\":\"my pass word \"}");
    check_request("/msg bob hello  there", "{\"cmd\":\"private_chat\",\"user_to\":\"bob\","
                                           "\"text\":\"hello  there\"}");
    check_request("/friend bob", "{\"cmd\":\"add_friend\",\"friend\":\"bob\"}");
    check_request("/create g1", "{\"cmd\":\"create_group\",\"group\":\"g1\"}");
    check_request("/join g1", "{\"cmd\":\"join_group\",\"group\":\"g1\"}");
    check_request("/leave g1", "{\"cmd\":\"leave_group\",\"group\":\"g1\"}");
    check_request("/g g1 hi all", "{\"cmd\":\"group_chat\",\"group\":\"g1\",\"text\":\"hi all\"}");
    check_request("/logout", "{\"cmd\":\"logout\"}");
    check_request("/quit", "");
    check_request("/help", "");
}
END_TEST

START_TEST(wrong_lines_are_unknown_or_usage_errors)
{
    static const struct {
        const char *line;
        int rc;
    } cases[] = {
        {"hello", CHAT_PARSE_NOT_SLASH},   {"/", CHAT_PARSE_UNKNOWN},
        {"/nope x", CHAT_PARSE_UNKNOWN},   {"/MSG bob x", CHAT_PARSE_UNKNOWN},
        {"/msg bob", CHAT_PARSE_USAGE},    {"/msg", CHAT_PARSE_USAGE},
        {"/friend", CHAT_PARSE_USAGE},     {"/friend a b", CHAT_PARSE_USAGE},
        {"/logout now", CHAT_PARSE_USAGE}, {"/login", CHAT_PARSE_USAGE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char line[64];
        struct chat_command c;
        snprintf(line, sizeof(line), "%s", cases[i].line);
        ck_assert_msg(chat_command_parse(line, &c) == cases[i].rc, "%s", cases[i].line);
    }
    char line[] = "/login bob";
    struct chat_command c;
    ck_assert_int_eq(chat_command_parse(line, &c), CHAT_PARSE_OK);
    ck_assert_ptr_null(c.extra); /* the password is to be asked for */
    ck_assert_str_eq(chat_command_usage(CHAT_CMD_GROUP_MSG), "/g GROUP TEXT");
    ck_assert_ptr_nonnull(strstr(chat_command_help(), "/msg USER TEXT"));
}
END_TEST

START_TEST(text_that_is_not_utf8_makes_no_request)
{
    char line[] = "/msg bob caf\xe9";
    struct chat_command c;
    ck_assert_int_eq(chat_command_parse(line, &c), CHAT_PARSE_OK);
    ck_assert_ptr_null(chat_command_request(&c, NULL));
}
END_TEST

static void check_reply(enum chat_cmd cmd, const char *name, const char *reply, int want_ok,
                        const char *want)
{
    json_t *r = parse_json(reply);
    int ok = -1;
    char *text = chat_format_reply(cmd, name, r, &ok);
    ck_assert_str_eq(text, want);
    ck_assert_int_eq(ok, want_ok);
    free(text);
    json_decref(r);
}

START_TEST(replies_read_as_sentences_and_refusals_name_the_word)
{
    check_reply(CHAT_CMD_MSG, "bob", "{\"cmd\":\"private_chat_reply\",\"result\":\"success\"}", 1,
                "sent to bob");
    check_reply(CHAT_CMD_MSG, "bob", "{\"cmd\":\"private_chat_reply\",\"result\":\"offline\"}", 1,
                "stored for bob (offline)");
    check_reply(CHAT_CMD_MSG, "bob",
                "{\"cmd\":\"private_chat_reply\",\"result\":\"user_not_exist\"}", 0,
                "error: user_not_exist: no user is called bob");
    check_reply(CHAT_CMD_REGISTER, "bob",
                "{\"cmd\":\"register_reply\",\"result\":\"failure\",\"reason\":\"that name is "
                "taken\"}",
                0, "error: failure: that name is taken");
    check_reply(CHAT_CMD_LOGIN, "bob",
                "{\"cmd\":\"login_reply\",\"result\":\"success\",\"fri\":[\"a\",\"b\"],"
                "\"group\":[]}",
                1, "logged in as bob; friends: a, b; groups: none");
    check_reply(CHAT_CMD_JOIN, "g", "{\"cmd\":\"error\",\"result\":\"unknown_cmd\"}", 0,
                "error: unknown_cmd: the server does not offer this command");
    check_reply(CHAT_CMD_JOIN, "g", "{\"cmd\":\"join_group_reply\",\"result\":\"brand_new\"}", 0,
                "error: brand_new: the server answered with a word this client does not know");
    /* offline is only a success for a private message */
    check_reply(CHAT_CMD_FRIEND, "b", "{\"cmd\":\"add_friend_reply\",\"result\":\"offline\"}", 0,
                "error: offline: the server answered with a word this client does not know");
}
END_TEST

/* The push's line without its "[time] " prefix. */
static void check_push(const char *push, const char *want)
{
    json_t *p = parse_json(push);
    char *text = chat_format_push(p);
    ck_assert_ptr_nonnull(text);
    const char *rest = strchr(text, ']');
    ck_assert_msg(text[0] == '[' && rest && rest[1] == ' ', "no time in %s", text);
    ck_assert_str_eq(rest + 2, want);
    free(text);
    json_decref(p);
}

START_TEST(pushes_show_sender_group_and_offline_mark)
{
    check_push("{\"cmd\":\"private_chat_recv\",\"user_from\":\"bob\",\"text\":\"hi\",\"ts\":1,"
               "\"msg_id\":\"x\"}",
               "bob: hi");
    check_push("{\"cmd\":\"private_chat_recv\",\"user_from\":\"bob\",\"text\":\"hi\",\"ts\":1,"
               "\"msg_id\":\"x\",\"offline\":true}",
               "(offline) bob: hi");
    check_push("{\"cmd\":\"group_chat_recv\",\"group\":\"g\",\"user_from\":\"bob\",\"text\":"
               "\"a\\tb\\nc\\u0007\\u009b\",\"ts\":1,\"msg_id\":\"g1\"}",
               "[g] bob: a\\tb\\nc\\x07\\u009b");
    check_push("{\"cmd\":\"presence\",\"user\":\"bob\",\"status\":\"online\"}", "* bob is online");
    check_push("{\"cmd\":\"friend_added\",\"user_from\":\"bob\"}", "* bob added you as a friend");
    check_push("{\"cmd\":\"presence\",\"user\":3}",
               "* message from the server: {\"cmd\":\"presence\",\"user\":3}");
}
END_TEST

START_TEST(a_repeated_msg_id_is_seen_and_old_ids_are_forgotten)
{
    struct chat_seen *s = chat_seen_new(2);
    json_t *a = parse_json("{\"msg_id\":\"a\"}"), *b = parse_json("{\"msg_id\":\"b\"}");
    json_t *c = parse_json("{\"msg_id\":3}"), *c_str = parse_json("{\"msg_id\":\"3\"}");
    json_t *none = parse_json("{}");
    ck_assert_int_eq(chat_seen_repeat(s, a), 0);
    ck_assert_int_eq(chat_seen_repeat(s, a), 1);
    ck_assert_int_eq(chat_seen_repeat(s, none), 0);
    ck_assert_int_eq(chat_seen_repeat(s, none), 0);
    ck_assert_int_eq(chat_seen_repeat(s, b), 0);
    ck_assert_int_eq(chat_seen_repeat(s, c), 0); /* forgets a */
    ck_assert_int_eq(chat_seen_repeat(s, c_str), 0);
    ck_assert_int_eq(chat_seen_repeat(s, a), 0);
    json_decref(a);
    json_decref(b);
    json_decref(c);
    json_decref(c_str);
    json_decref(none);
    chat_seen_free(s);
}
END_TEST

static Suite *client_format_suite(void)
{
    Suite *s = suite_create("client_format");
    TCase *tc = tcase_create("commands");
    tcase_add_test(tc, typed_commands_make_the_contracts_requests);
    tcase_add_test(tc, wrong_lines_are_unknown_or_usage_errors);
    tcase_add_test(tc, text_that_is_not_utf8_makes_no_request);
    suite_add_tcase(s, tc);
    tc = tcase_create("format");
    tcase_add_test(tc, replies_read_as_sentences_and_refusals_name_the_word);
    tcase_add_test(tc, pushes_show_sender_group_and_offline_mark);
    tcase_add_test(tc, a_repeated_msg_id_is_seen_and_old_ids_are_forgotten);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_run_suite(client_format_suite());
}
