/* test_client_format.c - unit tests of the terminal client's pure parts: parsing typed
 * commands, the requests they make, and how replies and pushes are shown. */
#include "acks.h"
#include "backoff.h"
#include "commands.h"
#include "config_file.h"
#include "format.h"
#include "seen.h"
#include "run_suite.h"

#include <check.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    check_request("/who", "{\"cmd\":\"friends\"}");
    check_request("/groups", "{\"cmd\":\"groups\"}");
    check_request("/members g1", "{\"cmd\":\"group_members\",\"group\":\"g1\"}");
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
        {"hello", CHAT_PARSE_NOT_SLASH},    {"/", CHAT_PARSE_UNKNOWN},
        {"/nope x", CHAT_PARSE_UNKNOWN},    {"/MSG bob x", CHAT_PARSE_UNKNOWN},
        {"/msg bob", CHAT_PARSE_USAGE},     {"/msg", CHAT_PARSE_USAGE},
        {"/friend", CHAT_PARSE_USAGE},      {"/friend a b", CHAT_PARSE_USAGE},
        {"/logout now", CHAT_PARSE_USAGE},  {"/login", CHAT_PARSE_USAGE},
        {"/members", CHAT_PARSE_USAGE},     {"/who me", CHAT_PARSE_USAGE},
        {"/history 5 6", CHAT_PARSE_USAGE}, {"/history", CHAT_PARSE_OK},
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

START_TEST(lists_show_online_and_owner_marks)
{
    check_reply(CHAT_CMD_WHO, NULL,
                "{\"cmd\":\"friends_reply\",\"result\":\"success\",\"friends\":[{\"user\":\"bob\","
                "\"online\":true},{\"user\":\"carol\",\"online\":false}]}",
                1, "friends: bob (online), carol");
    check_reply(CHAT_CMD_WHO, NULL, "{\"cmd\":\"friends_reply\",\"result\":\"success\"}", 1,
                "friends: none");
    check_reply(CHAT_CMD_GROUPS, NULL,
                "{\"cmd\":\"groups_reply\",\"result\":\"success\",\"groups\":[\"g1\",\"g2\"]}", 1,
                "groups: g1, g2");
    check_reply(CHAT_CMD_MEMBERS, "g1",
                "{\"cmd\":\"group_members_reply\",\"result\":\"success\",\"members\":[{\"user\":"
                "\"a\",\"online\":false,\"owner\":true},{\"user\":\"b\",\"online\":true,"
                "\"owner\":false},{\"user\":\"c\\u202e\",\"online\":true,\"owner\":true}]}",
                1, "members of g1: a (owner), b (online), c\\u202e (owner, online)");
}
END_TEST

/* A line without its "[time] " prefix. */
static const char *after_time(const char *text)
{
    const char *rest = strchr(text, ']');
    ck_assert_msg(text[0] == '[' && rest && rest[1] == ' ', "no time in %s", text);
    return rest + 2;
}

START_TEST(own_messages_history_and_receipts_read_as_sentences)
{
    json_t *reply = parse_json("{\"cmd\":\"private_chat_reply\",\"result\":\"offline\","
                               "\"msg_id\":\"7\",\"seq\":7,\"ts\":1700000000000}");
    char *text = chat_format_sent(CHAT_CMD_MSG, "bob", "hi", reply);
    ck_assert_str_eq(after_time(text), "you -> bob: hi (stored: bob is offline)");
    free(text);
    json_decref(reply);
    reply = parse_json("{\"cmd\":\"group_chat_reply\",\"result\":\"success\",\"ts\":1}");
    text = chat_format_sent(CHAT_CMD_GROUP_MSG, "g1", "all", reply);
    ck_assert_str_eq(after_time(text), "[g1] you: all");
    free(text);
    json_decref(reply);

    json_t *mine = parse_json("{\"user_from\":\"alice\",\"text\":\"hi\",\"ts\":1,\"msg_id\":\"7\","
                              "\"delivered\":true,\"read\":true}");
    json_t *theirs = parse_json("{\"user_from\":\"bob\",\"text\":\"yo\\u2066\",\"ts\":1}");
    json_t *group =
        parse_json("{\"user_from\":\"alice\",\"group\":\"g1\",\"text\":\"x\",\"ts\":1}");
    text = chat_format_history_entry(mine, "alice", "bob");
    ck_assert_str_eq(after_time(text), "you -> bob: hi (read)");
    free(text);
    json_object_set_new(mine, "read", json_false());
    text = chat_format_history_entry(mine, "alice", "bob");
    ck_assert_str_eq(after_time(text), "you -> bob: hi (delivered)");
    free(text);
    text = chat_format_history_entry(theirs, "alice", "bob");
    ck_assert_str_eq(after_time(text), "bob: yo\\u2066");
    free(text);
    text = chat_format_history_entry(group, "alice", NULL);
    ck_assert_str_eq(after_time(text), "[g1] you: x");
    free(text);
    json_decref(mine);
    json_decref(theirs);
    json_decref(group);

    json_t *receipt =
        parse_json("{\"cmd\":\"receipt\",\"msg_id\":\"7\",\"user\":\"bob\",\"status\":\"read\"}");
    text = chat_format_receipt(receipt, "hi", 1700000000000LL);
    ck_assert_ptr_nonnull(strstr(text, "* bob has read your message of ["));
    ck_assert_ptr_nonnull(strstr(text, "]: hi (and those before it)"));
    free(text);
    check_push("{\"cmd\":\"receipt\",\"msg_id\":\"7\",\"user\":\"bob\",\"status\":\"delivered\"}",
               "* bob has received your message 7");
    json_decref(receipt);
}
END_TEST

/* Control and bidirectional-override characters come out escaped; the rest of UTF-8
 * stays as it is. */
START_TEST(control_and_bidi_characters_are_escaped)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"plain caf\xc3\xa9 \xe2\x80\xa9 \xe2\x80\x8f",
         "plain caf\xc3\xa9 \xe2\x80\xa9 \xe2\x80\x8f"},
        {"a\x1b[31mred", "a\\x1b[31mred"},
        {"\x7f\r\n\t", "\\x7f\\r\\n\\t"},
        {"c1 \xc2\x85 \xc2\x9f", "c1 \\u0085 \\u009f"},
        {"\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad\xe2\x80\xae",
         "\\u202a\\u202b\\u202c\\u202d\\u202e"},
        {"\xe2\x81\xa6x\xe2\x81\xa7\xe2\x81\xa8\xe2\x81\xa9", "\\u2066x\\u2067\\u2068\\u2069"},
        {"\xe2\x81\xa5 \xe2\x81\xaa \xe2\x80\xa9", "\xe2\x81\xa5 \xe2\x81\xaa \xe2\x80\xa9"},
        {"cut \xe2\x80", "cut \xe2\x80"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = chat_sanitize(cases[i].in);
        ck_assert_msg(strcmp(out, cases[i].want) == 0, "case %zu: got %s", i, out);
        free(out);
    }
}
END_TEST

START_TEST(the_reconnect_delay_doubles_to_a_cap_with_jitter)
{
    /* The least and the most each attempt may wait. */
    ck_assert_int_eq(chat_backoff_ms(0, 0), 500);
    ck_assert_int_eq(chat_backoff_ms(0, 500), 1000);
    ck_assert_int_eq(chat_backoff_ms(1, 0), 1000);
    ck_assert_int_eq(chat_backoff_ms(1, 1000), 2000);
    ck_assert_int_eq(chat_backoff_ms(4, 0), 8000);
    ck_assert_int_eq(chat_backoff_ms(5, 0), 15000);
    ck_assert_int_eq(chat_backoff_ms(5, 15000), 30000);
    ck_assert_int_eq(chat_backoff_ms(1000, 15000), 30000);
    for (long r = 0; r < 100000; r += 777) {
        int ms = chat_backoff_ms(3, r);
        ck_assert(ms >= 4000 && ms <= 8000);
    }
    ck_assert(chat_backoff_ms(2, -5) >= 2000);
}
END_TEST

static int load_config_text(const char *text, struct chat_config *cfg, char *err, size_t cap)
{
    char path[] = "/tmp/chat-conf-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    int rc = chat_config_load(path, 1, cfg, err, cap);
    unlink(path);
    return rc;
}

START_TEST(the_config_file_is_read_and_bad_lines_are_named)
{
    struct chat_config cfg;
    char err[512];
    ck_assert_int_eq(load_config_text("; chat\n# settings\nhost = chat.example.org\nport=8001\n"
                                      "user = alice\ndevice = laptop-1\ntls = yes\n"
                                      "ca_file = /etc/ca.pem\ninsecure = no\ntimeout = 30\n",
                                      &cfg, err, sizeof(err)),
                     0);
    ck_assert_str_eq(cfg.host, "chat.example.org");
    ck_assert_str_eq(cfg.port, "8001");
    ck_assert_str_eq(cfg.user, "alice");
    ck_assert_str_eq(cfg.device, "laptop-1");
    ck_assert_str_eq(cfg.ca_file, "/etc/ca.pem");
    ck_assert_int_eq(cfg.tls, 1);
    ck_assert_int_eq(cfg.insecure, 0);
    ck_assert_int_eq(cfg.timeout_s, 30);
    ck_assert_int_eq(load_config_text("", &cfg, err, sizeof(err)), 0);
    ck_assert_int_eq(cfg.tls, -1);
    ck_assert_str_eq(cfg.host, "");

    static const struct {
        const char *text, *want;
    } bad[] = {
        {"host = h\n\nnope = 1\n", ":3: unknown key 'nope'"},
        {"[server]\nport = 1\n", ":2: sections are not used: [server]"},
        {"port = 0\n", ":1: port wants a number from 1 to 65535, not '0'"},
        {"port = 80x\n", ":1: port wants a number"},
        {"tls = maybe\n", ":1: wants yes or no, not 'maybe'"},
        {"device = a b\n", ":1: device wants 1 to 64 of"},
        {"timeout = 0\n", ":1: timeout wants whole seconds"},
        {"just words\n", ":1: not a 'key = value' line"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(load_config_text(bad[i].text, &cfg, err, sizeof(err)), -1);
        ck_assert_msg(strstr(err, bad[i].want), "case %zu: %s", i, err);
    }
    ck_assert_int_eq(chat_config_load("/nonexistent/c.conf", 0, &cfg, err, sizeof(err)), 0);
    ck_assert_int_eq(chat_config_load("/nonexistent/c.conf", 1, &cfg, err, sizeof(err)), -1);
}
END_TEST

/* The login acknowledges, with since only when resuming after something was shown, and
 * a push at or below the last seq shown is a repeat. */
START_TEST(logins_acknowledge_and_resume_after_the_last_seq_shown)
{
    struct event_base *base = event_base_new();
    struct chat_acks *a = chat_acks_new(base);
    json_t *req = json_object();
    ck_assert_int_eq(chat_acks_login_fields(a, req, "dev-1", 1), 0);
    char *text = json_dumps(req, JSON_COMPACT | JSON_SORT_KEYS);
    ck_assert_str_eq(text, "{\"ack\":true,\"device\":\"dev-1\"}");
    free(text);
    json_t *p5 = parse_json("{\"cmd\":\"private_chat_recv\",\"seq\":5}");
    json_t *p3 = parse_json("{\"cmd\":\"private_chat_recv\",\"seq\":3}");
    json_t *none = parse_json("{\"cmd\":\"private_chat_recv\"}");
    ck_assert_int_eq(chat_acks_is_repeat(a, p5), 0);
    chat_acks_shown(a, p5);
    ck_assert_int_eq(chat_acks_is_repeat(a, p5), 1);
    ck_assert_int_eq(chat_acks_is_repeat(a, p3), 1);
    ck_assert_int_eq(chat_acks_is_repeat(a, none), 0);
    ck_assert_int_eq(chat_acks_login_fields(a, req, "dev-1", 0), 0);
    ck_assert_ptr_null(json_object_get(req, "since"));
    ck_assert_int_eq(chat_acks_login_fields(a, req, "dev-1", 1), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(req, "since")), 5);
    ck_assert_int_eq(chat_acks_flush(a), 0); /* no connection: nothing sent */
    json_t *answer =
        parse_json("{\"cmd\":\"error\",\"result\":\"unknown_cmd\",\"request\":\"ack\"}");
    ck_assert(chat_acks_is_answer(answer));
    ck_assert(!chat_acks_is_answer(p5));
    ck_assert_int_eq(chat_acks_refused(a), 1);
    ck_assert_int_eq(chat_acks_refused(a), 0);
    json_decref(answer);
    json_decref(p5);
    json_decref(p3);
    json_decref(none);
    json_decref(req);
    chat_acks_free(a);
    event_base_free(base);
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
    tcase_add_test(tc, lists_show_online_and_owner_marks);
    tcase_add_test(tc, own_messages_history_and_receipts_read_as_sentences);
    tcase_add_test(tc, control_and_bidi_characters_are_escaped);
    suite_add_tcase(s, tc);
    tc = tcase_create("settings");
    tcase_add_test(tc, the_reconnect_delay_doubles_to_a_cap_with_jitter);
    tcase_add_test(tc, the_config_file_is_read_and_bad_lines_are_named);
    tcase_add_test(tc, logins_acknowledge_and_resume_after_the_last_seq_shown);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_run_suite(client_format_suite());
}
