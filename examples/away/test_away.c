/* test_away.c - the away plugin, tested with chatd's plugin test kit: the plugin file is
 * loaded by chatd's own loader, the sessions are clients of chatd's own request path, the
 * jobs run in a real MariaDB (CHATD_TESTKIT_DB_SOCKET), and the kit runs the hook point
 * "message.accepted" as private_chat does after accepting a private message. */
#include <chatd/testkit.h>

#include <stdlib.h>
#include <string.h>

#ifndef AWAY_PLUGIN
#define AWAY_PLUGIN "./away.so" /* the path of the plugin under test */
#endif

static struct chatd_testkit *kit;

/* A kit with the plugin started, after setting option `key` to `value` if not NULL. */
static void start(const char *key, const char *value)
{
    kit = chatd_testkit_new(AWAY_PLUGIN);
    ck_assert_msg(chatd_testkit_has_database(kit),
                  "set CHATD_TESTKIT_DB_SOCKET to a MariaDB socket: the plugin keeps its "
                  "away texts in the database");
    if (key)
        chatd_testkit_option(kit, key, value);
    ck_assert_msg(chatd_testkit_start(kit) == 0, "%s", chatd_testkit_error(kit));
}

static void stop(void)
{
    chatd_testkit_free(kit);
    kit = NULL;
}

static void set_away(struct chatd_testkit_session *s, const char *text)
{
    chatd_testkit_assert_reply(chatd_testkit_request(s, "{\"cmd\":\"away\",\"text\":\"%s\"}", text),
                               "away_reply", "success");
}

/* What private_chat does once it has accepted a message: run message.accepted. */
static void accepted(const char *kind, const char *from, const char *to, const char *result)
{
    static int n;
    json_t *out = chatd_testkit_run_hook(
        kit, CHATD_HOOK_MESSAGE_ACCEPTED,
        "{\"kind\":\"%s\",\"user_from\":\"%s\",\"%s\":\"%s\",\"text\":\"hello\","
        "\"msg_id\":\"test-%d\",\"ts\":1795802548732,\"result\":\"%s\"}",
        kind, from, strcmp(kind, "group") == 0 ? "group" : "user_to", to, ++n, result);
    ck_assert_msg(out != NULL, "%s", chatd_testkit_error(kit));
    ck_assert(!chatd_testkit_hook_refused(out));
}

static void assert_auto_answer(json_t *push, const char *from, const char *text)
{
    chatd_testkit_assert_reply(push, "private_chat_recv", NULL);
    ck_assert_str_eq(chatd_testkit_string(push, "user_from"), from);
    ck_assert_str_eq(chatd_testkit_string(push, "text"), text);
    ck_assert(json_is_true(json_object_get(push, "auto")));
    ck_assert(json_is_integer(json_object_get(push, "ts")));
    const char *msg_id = chatd_testkit_string(push, "msg_id");
    ck_assert_msg(msg_id && strncmp(msg_id, "away-", 5) == 0, "msg_id %s", msg_id);
    ck_assert_ptr_null(json_object_get(push, "id"));
}

/* Wait until every job is done and its pushes have arrived. */
static void settle(void)
{
    ck_assert_msg(chatd_testkit_settle(kit) == 0, "%s", chatd_testkit_error(kit));
}

START_TEST(a_private_message_to_an_away_user_is_answered_from_them)
{
    start(NULL, NULL);
    struct chatd_testkit_session *ann = chatd_testkit_login(kit, "ann");
    struct chatd_testkit_session *bob_phone = chatd_testkit_login(kit, "bob");
    struct chatd_testkit_session *bob_laptop = chatd_testkit_login(kit, "bob");
    set_away(ann, "on holiday");
    accepted("private", "bob", "ann", "success");
    assert_auto_answer(chatd_testkit_push(bob_phone), "ann", "[away] on holiday");
    assert_auto_answer(chatd_testkit_push(bob_laptop), "ann", "[away] on holiday");
    settle();
    ck_assert_uint_eq(chatd_testkit_pending_pushes(ann), 0); /* the answer is bob's only */
    stop();
}
END_TEST

START_TEST(an_away_user_who_is_offline_answers_too)
{
    start(NULL, NULL);
    struct chatd_testkit_session *ann = chatd_testkit_login(kit, "ann");
    set_away(ann, "gone fishing \xf0\x9f\x8e\xa3");
    chatd_testkit_logout(ann);
    struct chatd_testkit_session *bob = chatd_testkit_login(kit, "bob");
    accepted("private", "bob", "ann", "offline");
    assert_auto_answer(chatd_testkit_push(bob), "ann", "[away] gone fishing \xf0\x9f\x8e\xa3");
    stop();
}
END_TEST

START_TEST(a_sender_is_answered_once_within_the_interval)
{
    start(NULL, NULL);
    struct chatd_testkit_session *ann = chatd_testkit_login(kit, "ann");
    struct chatd_testkit_session *bob = chatd_testkit_login(kit, "bob");
    struct chatd_testkit_session *cid = chatd_testkit_login(kit, "cid");
    set_away(ann, "back at 3");
    accepted("private", "bob", "ann", "success");
    accepted("private", "bob", "ann", "success"); /* while the first is being checked */
    assert_auto_answer(chatd_testkit_push(bob), "ann", "[away] back at 3");
    accepted("private", "bob", "ann", "success"); /* after the first answer */
    accepted("private", "cid", "ann", "success"); /* another sender: answered */
    assert_auto_answer(chatd_testkit_push(cid), "ann", "[away] back at 3");
    settle();
    ck_assert_uint_eq(chatd_testkit_pending_pushes(bob), 0);
    ck_assert_uint_eq(chatd_testkit_pending_pushes(cid), 0);
    stop();
}
END_TEST

START_TEST(a_sender_is_answered_again_after_the_interval)
{
    start("reply_interval_s", "1");
    struct chatd_testkit_session *ann = chatd_testkit_login(kit, "ann");
    struct chatd_testkit_session *bob = chatd_testkit_login(kit, "bob");
    set_away(ann, "away");
    accepted("private", "bob", "ann", "success");
    assert_auto_answer(chatd_testkit_push(bob), "ann", "[away] away");
    chatd_testkit_run(kit, 1100);
    accepted("private", "bob", "ann", "success");
    assert_auto_answer(chatd_testkit_push(bob), "ann", "[away] away");
    stop();
}
END_TEST

START_TEST(a_new_text_replaces_the_old_and_no_text_clears_it)
{
    start(NULL, NULL);
    struct chatd_testkit_session *ann = chatd_testkit_login(kit, "ann");
    struct chatd_testkit_session *bob = chatd_testkit_login(kit, "bob");
    set_away(ann, "lunch");
    set_away(ann, "meeting");
    accepted("private", "bob", "ann", "success");
    assert_auto_answer(chatd_testkit_push(bob), "ann", "[away] meeting");

    chatd_testkit_assert_reply(chatd_testkit_request(ann, "{\"cmd\":\"away\"}"), "away_reply",
                               "success");
    accepted("private", "bob", "ann", "success");
    settle();
    ck_assert_uint_eq(chatd_testkit_pending_pushes(bob), 0);

    /* Away again: clearing forgot whom ann answered, so bob hears it at once. */
    set_away(ann, "gym");
    accepted("private", "bob", "ann", "success");
    assert_auto_answer(chatd_testkit_push(bob), "ann", "[away] gym");

    set_away(ann, ""); /* an empty text clears it too */
    accepted("private", "cid", "ann", "success");
    settle();
    stop();
}
END_TEST

START_TEST(nothing_is_answered_for_users_not_away_groups_or_oneself)
{
    start(NULL, NULL);
    struct chatd_testkit_session *ann = chatd_testkit_login(kit, "ann");
    struct chatd_testkit_session *bob = chatd_testkit_login(kit, "bob");
    accepted("private", "bob", "ann", "success"); /* ann is not away */
    settle(); /* before she is: the check reads the table when its job runs */
    set_away(ann, "out");
    accepted("group", "bob", "g1", "success"); /* group messages are not answered */
    accepted("private", "ann", "ann", "success");
    settle();
    ck_assert_uint_eq(chatd_testkit_pending_pushes(bob), 0);
    ck_assert_uint_eq(chatd_testkit_pending_pushes(ann), 0);
    stop();
}
END_TEST

START_TEST(max_text_bytes_bounds_the_text)
{
    start("max_text_bytes", "5");
    struct chatd_testkit_session *ann = chatd_testkit_login(kit, "ann");
    json_t *reply = chatd_testkit_request(ann, "{\"cmd\":\"away\",\"text\":\"123456\"}");
    chatd_testkit_assert_reply(reply, "away_reply", "bad_request");
    ck_assert_msg(strstr(chatd_testkit_string(reply, "reason"), "'text'"), "%s",
                  chatd_testkit_string(reply, "reason"));
    set_away(ann, "12345");
    stop();
}
END_TEST

START_TEST(an_out_of_range_option_stops_the_start)
{
    kit = chatd_testkit_new(AWAY_PLUGIN);
    chatd_testkit_option(kit, "reply_interval_s", "0");
    ck_assert_int_eq(chatd_testkit_start(kit), -1);
    ck_assert_msg(strstr(chatd_testkit_error(kit), "reply_interval_s: 0 is out of range"), "%s",
                  chatd_testkit_error(kit));
    stop();
}
END_TEST

START_TEST(away_needs_a_logged_in_session)
{
    start(NULL, NULL);
    struct chatd_testkit_session *anon = chatd_testkit_connect(kit);
    chatd_testkit_assert_reply(chatd_testkit_request(anon, "{\"cmd\":\"away\",\"text\":\"x\"}"),
                               "away_reply", "not_logged_in");
    stop();
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("away");
    TCase *tc = tcase_create("away");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_private_message_to_an_away_user_is_answered_from_them);
    tcase_add_test(tc, an_away_user_who_is_offline_answers_too);
    tcase_add_test(tc, a_sender_is_answered_once_within_the_interval);
    tcase_add_test(tc, a_sender_is_answered_again_after_the_interval);
    tcase_add_test(tc, a_new_text_replaces_the_old_and_no_text_clears_it);
    tcase_add_test(tc, nothing_is_answered_for_users_not_away_groups_or_oneself);
    tcase_add_test(tc, max_text_bytes_bounds_the_text);
    tcase_add_test(tc, an_out_of_range_option_stops_the_start);
    tcase_add_test(tc, away_needs_a_logged_in_session);
    suite_add_tcase(suite, tc);
    /* And everything every plugin should pass. */
    return chatd_testkit_run_suites(suite, chatd_testkit_conformance_suite(AWAY_PLUGIN, NULL),
                                    NULL);
}
