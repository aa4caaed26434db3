/* test_chat_admission.c - a flood of password logins against the real password cost
 * does not hold up the database commands of a user who is logged in: hashing has its
 * own bounded queue, and a full one answers busy at once. See chat_suite.h for the
 * server and the helpers. */
#include "chat_suite.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

enum { FLOODERS = 150, LOGINS_EACH = 2 };

/* Fire and forget: every flooder pipelines its wrong-password logins in one write and
 * reads nothing until the end. */
static void flood(struct test_client **flooders)
{
    static const char login[] = "{\"cmd\":\"login\",\"user\":\"victim\",\"passwd\":\"wrong\"}";
    char burst[LOGINS_EACH * sizeof(login)];
    size_t used = 0;
    for (int i = 0; i < LOGINS_EACH; i++) {
        memcpy(burst + used, login, sizeof(login) - 1);
        used += sizeof(login) - 1;
    }
    for (int i = 0; i < FLOODERS; i++) {
        flooders[i] = connect_client();
        check_send(flooders[i], burst, used);
    }
}

/* Read every flooder's answers: wrong passwords, or refusals (busy from the full hashing
 * queue, or a limit's word). Returns how many were refusals. */
static int drain_flood(struct test_client **flooders)
{
    int refused = 0;
    for (int i = 0; i < FLOODERS; i++) {
        for (int n = 0; n < LOGINS_EACH; n++) {
            json_t *msg = test_client_read_json(flooders[i], 120000);
            ck_assert_msg(msg != NULL, "flooder %d: no answer %d", i, n);
            const char *result = json_string_value(json_object_get(msg, "result"));
            ck_assert_ptr_nonnull(result);
            if (strcmp(result, "passwd_error") != 0) {
                ck_assert_msg(strcmp(result, "busy") == 0 || strcmp(result, "rate_limited") == 0,
                              "a flood login was answered %s", result);
                refused++;
            }
            json_decref(msg);
        }
        test_client_close(flooders[i]);
    }
    return refused;
}

/* Under the flood, alice's private_chat to an offline user, join_group and group_chat
 * are answered success (offline), not busy or internal: they wait behind no hash. The
 * replies are read with the test client's usual bound, well under job_timeout_ms plus
 * the time the flood's hashes take. */
START_TEST(a_login_flood_does_not_hold_up_database_commands)
{
    start_chat_for_flood(NULL);
    register_only("victim");
    register_only("bob");
    struct test_client *alice = new_user("alice");
    struct test_client *carol = new_user("carol");
    group_cmd(carol, "create_group", "g1", "success");

    struct test_client *flooders[FLOODERS];
    flood(flooders);
    for (int round = 0; round < 3; round++) {
        char text[32];
        snprintf(text, sizeof(text), "during the flood %d", round);
        send_private(alice, "bob", text, "offline");
        group_cmd(alice, round == 0 ? "join_group" : "leave_group", "g1", "success");
        if (round == 0)
            send_group(alice, "g1", text, "success");
        else
            group_cmd(alice, "join_group", "g1", "success");
    }
    int refused = drain_flood(flooders);
    ck_assert_msg(refused > 0,
                  "%d logins in flight and none refused: the hashing queue is "
                  "not bounded",
                  FLOODERS);
    test_client_close(alice);
    test_client_close(carol);
    stop_chat();
}
END_TEST

/* With one hashing thread and a queue of one, most of a stream of password logins finds
 * the hashing queue full before its account is read: answered busy at once, with the
 * reason that says so, so that a flood costs the database nothing. The logins arrive
 * 25 ms apart (one hash at this cost takes longer): sent all at once, on a loaded
 * machine chatd could read them all before the first account read had finished, and
 * none would find the queue full yet. */
START_TEST(a_login_finding_the_hashing_queue_full_is_refused_before_reading_the_account)
{
    static const char *const one_hasher[] = {"server.cpu_workers=1", "server.cpu_queue_max=1",
                                             NULL};
    start_chat_for_flood(one_hasher);
    register_only("victim");
    enum { BURST = 40 };
    struct test_client *c[BURST];
    for (int i = 0; i < BURST; i++) {
        c[i] = connect_client();
        check_send_str(c[i], "{\"cmd\":\"login\",\"user\":\"victim\",\"passwd\":\"wrong\"}");
        chatd_sleep_ms(25);
    }
    int early = 0, wrong = 0;
    for (int i = 0; i < BURST; i++) {
        json_t *msg = test_client_read_json(c[i], 120000);
        ck_assert_msg(msg != NULL, "login %d: no answer", i);
        const char *result = json_string_value(json_object_get(msg, "result"));
        const char *reason = json_string_value(json_object_get(msg, "reason"));
        ck_assert_ptr_nonnull(result);
        if (strcmp(result, "passwd_error") == 0)
            wrong++;
        else if (strcmp(result, "busy") == 0 && reason && strstr(reason, "too many logins"))
            early++;
        else
            ck_assert_msg(strcmp(result, "busy") == 0, "a login was answered %s", result);
        json_decref(msg);
        test_client_close(c[i]);
    }
    ck_assert_msg(wrong > 0, "no login of %d was checked", BURST);
    ck_assert_msg(early > 0, "%d logins, %d checked, none refused before the account was read",
                  BURST, wrong);
    stop_chat();
}
END_TEST

static Suite *chat_admission_suite(void)
{
    Suite *s = suite_create("chat_admission");
    TCase *tc = tcase_create("flood");
    tcase_set_timeout(tc, 280);
    tcase_add_test(tc, a_login_flood_does_not_hold_up_database_commands);
    tcase_add_test(tc,
                   a_login_finding_the_hashing_queue_full_is_refused_before_reading_the_account);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(chat_admission_suite());
}
