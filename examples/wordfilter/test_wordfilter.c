/* test_wordfilter.c - the wordfilter plugin, tested with chatd's plugin test kit: the
 * plugin file is loaded by chatd's own loader, and the kit runs the hook point
 * "message.deliver" as private_chat and groups do for every message, so
 * the tests see what the hook makes of a message without a chat plugin. No database. */
#include <chatd/testkit.h>

#include <stdlib.h>
#include <string.h>

#ifndef WORDFILTER_PLUGIN
#define WORDFILTER_PLUGIN "./wordfilter.so" /* the path of the plugin under test */
#endif

static struct chatd_testkit *kit;

/* A kit with the plugin started with these options (action NULL: the default). */
static void start(const char *words, const char *action)
{
    kit = chatd_testkit_new(WORDFILTER_PLUGIN);
    chatd_testkit_option(kit, "words", words);
    if (action)
        chatd_testkit_option(kit, "action", action);
    ck_assert_msg(chatd_testkit_start(kit) == 0, "%s", chatd_testkit_error(kit));
}

static void stop(void)
{
    chatd_testkit_free(kit);
    kit = NULL;
}

/* Run message.deliver for a private message from ann to bob; `text` is put into the
 * JSON as it is (no quotes or backslashes in it). */
static json_t *deliver_private(const char *text)
{
    json_t *out = chatd_testkit_run_hook(
        kit, CHATD_HOOK_MESSAGE_DELIVER,
        "{\"kind\":\"private\",\"user_from\":\"ann\",\"user_to\":\"bob\",\"text\":\"%s\"}", text);
    ck_assert_msg(out != NULL, "%s", chatd_testkit_error(kit));
    return out;
}

/* The text of the payload after the hooks. */
static const char *text_of(const json_t *outcome)
{
    return chatd_testkit_string(json_object_get(outcome, "payload"), "text");
}

START_TEST(listed_words_are_masked_as_whole_words_in_any_ascii_case)
{
    start("darn, heck", NULL);
    json_t *out = deliver_private("Darn, what the HECK_x heck! darned xdarn 2darn darn");
    ck_assert(!chatd_testkit_hook_refused(out));
    ck_assert_str_eq(text_of(out), "****, what the HECK_x ****! darned xdarn 2darn ****");
    /* The other members are the hook point's, left as they were. */
    json_t *payload = json_object_get(out, "payload");
    ck_assert_str_eq(chatd_testkit_string(payload, "kind"), "private");
    ck_assert_str_eq(chatd_testkit_string(payload, "user_from"), "ann");
    ck_assert_str_eq(chatd_testkit_string(payload, "user_to"), "bob");
    stop();
}
END_TEST

START_TEST(group_messages_are_masked_too)
{
    start("darn", NULL);
    json_t *out = chatd_testkit_run_hook(
        kit, CHATD_HOOK_MESSAGE_DELIVER,
        "{\"kind\":\"group\",\"user_from\":\"ann\",\"group\":\"g1\",\"text\":\"darn it\"}");
    ck_assert_msg(out != NULL, "%s", chatd_testkit_error(kit));
    ck_assert_str_eq(text_of(out), "**** it");
    ck_assert_str_eq(chatd_testkit_string(json_object_get(out, "payload"), "group"), "g1");
    stop();
}
END_TEST

START_TEST(a_text_without_listed_words_is_left_alone)
{
    start("darn", NULL);
    json_t *out = deliver_private("nothing to see \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80");
    ck_assert(!chatd_testkit_hook_refused(out));
    ck_assert_str_eq(text_of(out), "nothing to see \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80");
    stop();
}
END_TEST

START_TEST(non_ascii_bytes_bound_words_and_each_character_gets_one_star)
{
    /* "café" and "ÉTÉ": only ASCII letters fold, so "été" is another word. */
    start("caf\xc3\xa9, \xc3\x89T\xc3\x89", NULL);
    json_t *out = deliver_private("CAF\xc3\xa9 caf\xc3\xa9s \xe2\x82\xac"
                                  "caf\xc3\xa9\xe2\x82\xac \xc3\x89T\xc3\x89 \xc3\xa9t\xc3\xa9");
    ck_assert_str_eq(text_of(out), "**** caf\xc3\xa9s \xe2\x82\xac****\xe2\x82\xac *** "
                                   "\xc3\xa9t\xc3\xa9");
    stop();
}
END_TEST

START_TEST(the_longest_listed_word_wins_and_blanks_inside_it_stay)
{
    start("bad, bad word", NULL);
    ck_assert_str_eq(text_of(deliver_private("a bad word, a bad day")), "a *** ****, a *** day");
    stop();
}
END_TEST

START_TEST(refuse_stops_a_message_with_a_listed_word)
{
    start("darn", "refuse");
    json_t *out = deliver_private("well, DARN");
    ck_assert(chatd_testkit_hook_refused(out));
    ck_assert_str_eq(chatd_testkit_string(out, "result"), "forbidden");
    ck_assert_str_eq(chatd_testkit_string(out, "reason"), "message contains a blocked word");
    out = deliver_private("darned, but fine");
    ck_assert(!chatd_testkit_hook_refused(out));
    ck_assert_str_eq(text_of(out), "darned, but fine");
    stop();
}
END_TEST

START_TEST(an_unknown_action_stops_the_start)
{
    kit = chatd_testkit_new(WORDFILTER_PLUGIN);
    chatd_testkit_option(kit, "words", "darn");
    chatd_testkit_option(kit, "action", "hide");
    ck_assert_int_eq(chatd_testkit_start(kit), -1);
    ck_assert_msg(strstr(chatd_testkit_error(kit), "action: 'hide' is neither mask nor refuse"),
                  "%s", chatd_testkit_error(kit));
    stop();
}
END_TEST

START_TEST(words_are_required)
{
    kit = chatd_testkit_new(WORDFILTER_PLUGIN);
    ck_assert_int_eq(chatd_testkit_start(kit), -1);
    ck_assert_msg(strstr(chatd_testkit_error(kit), "words"), "%s", chatd_testkit_error(kit));
    stop();
}
END_TEST

int main(void)
{
    static const char *const settings[] = {"plugin.wordfilter.words=darn", NULL};
    Suite *suite = suite_create("wordfilter");
    TCase *tc = tcase_create("wordfilter");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, listed_words_are_masked_as_whole_words_in_any_ascii_case);
    tcase_add_test(tc, group_messages_are_masked_too);
    tcase_add_test(tc, a_text_without_listed_words_is_left_alone);
    tcase_add_test(tc, non_ascii_bytes_bound_words_and_each_character_gets_one_star);
    tcase_add_test(tc, the_longest_listed_word_wins_and_blanks_inside_it_stay);
    tcase_add_test(tc, refuse_stops_a_message_with_a_listed_word);
    tcase_add_test(tc, an_unknown_action_stops_the_start);
    tcase_add_test(tc, words_are_required);
    suite_add_tcase(suite, tc);
    /* And everything every plugin should pass. */
    return chatd_testkit_run_suites(
        suite, chatd_testkit_conformance_suite(WORDFILTER_PLUGIN, settings), NULL);
}
