/* test_chat_names.c - user and group names are unique regardless of case: a name taken
 * in one case is taken in every case, lookups go by the exact spelling, and a database
 * that already held names differing only in case upgrades without losing any. */
#include "chat_suite.h"

#include <check.h>
#include <string.h>

START_TEST(a_user_name_is_taken_in_every_case)
{
    start_chat();
    struct test_client *c = connect_client();
    do_register(c, "alice", PASSWD, "success");
    const char *const others[] = {"Alice", "ALICE", "aLiCe"};
    for (size_t i = 0; i < 3; i++) {
        json_t *reply =
            call(c, "failure", "{ssssss}", "cmd", "register", "user", others[i], "passwd", PASSWD);
        const char *reason = json_string_value(json_object_get(reply, "reason"));
        ck_assert_msg(reason && strstr(reason, "taken"), "want 'taken' in %s", check_dump(reply));
        json_decref(reply);
    }
    /* Names are looked up as spelled. */
    json_decref(do_login(c, "ALICE", PASSWD, "user_not_exist"));
    json_decref(do_login(c, "alice", PASSWD, "success"));
    /* The rule is otherwise the same: digits and underscores have no case. */
    do_register(c, "alice_2", PASSWD, "success");
    test_client_close(c);
    stop_chat();
}
END_TEST

START_TEST(a_group_name_is_taken_in_every_case)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    struct test_client *bob = new_user("bob");
    group_cmd(alice, "create_group", "Team", "success");
    json_t *reply = call(bob, "failure", "{ssss}", "cmd", "create_group", "group", "team");
    const char *reason = json_string_value(json_object_get(reply, "reason"));
    ck_assert_msg(reason && strstr(reason, "taken"), "want 'taken' in %s", check_dump(reply));
    json_decref(reply);
    group_cmd(bob, "join_group", "TEAM", "group_not_exist");
    group_cmd(bob, "join_group", "Team", "success");
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(names_differing_only_in_case_survive_the_upgrade)
{
    start_chat();
    struct test_client *alice = new_user("alice");
    group_cmd(alice, "create_group", "g1", "success");
    test_client_close(alice);
    /* Back to the schema before names were folded, with the duplicates it allowed. */
    exec_chat_db("ALTER TABLE accounts_users DROP KEY accounts_users_name_folded,"
                 " DROP COLUMN name_folded",
                 NULL, 0);
    exec_chat_db("ALTER TABLE groups_groups DROP KEY groups_groups_name_folded,"
                 " DROP COLUMN name_folded",
                 NULL, 0);
    exec_chat_db("UPDATE chatd_schema SET version = 3 WHERE plugin = 'accounts'", NULL, 0);
    exec_chat_db("ALTER TABLE groups_members DROP COLUMN since_msg", NULL, 0); /* migration 7 */
    exec_chat_db("UPDATE chatd_schema SET version = 5 WHERE plugin = 'groups'", NULL, 0);
    exec_chat_db("INSERT INTO accounts_users (name, password_hash)"
                 " SELECT 'ALICE', password_hash FROM accounts_users WHERE name = 'alice'",
                 NULL, 0);
    exec_chat_db("INSERT INTO groups_groups (name, owner) VALUES ('G1', 'ALICE')", NULL, 0);

    restart_chat(); /* the migrations must not fail */
    struct test_client *c = connect_client();
    json_decref(do_login(c, "alice", PASSWD, "success"));
    group_cmd(c, "join_group", "g1", "already_member"); /* alice made it */
    group_cmd(c, "join_group", "G1", "success");
    json_decref(do_login(c, "ALICE", PASSWD, "success"));
    do_register(c, "Alice", PASSWD, "failure");
    expect_failure_with_reason(c, "{ssss}", "cmd", "create_group", "group", "g1");
    expect_failure_with_reason(c, "{ssss}", "cmd", "create_group", "group", "G1");
    /* The oldest of each spelling owns the folded name. */
    struct chatd_rows *rows =
        query_chat_db("SELECT name, COALESCE(name_folded, '-') FROM accounts_users"
                      " WHERE LOWER(name) = 'alice' ORDER BY id",
                      NULL, 0);
    ck_assert_uint_eq(rows->n_rows, 2);
    ck_assert_str_eq(rows->values[1].s, "alice");
    ck_assert_str_eq(rows->values[3].s, "-");
    free_chat_rows(rows);
    test_client_close(c);
    stop_chat();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("chat_names");
    TCase *tc = tcase_create("case");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_user_name_is_taken_in_every_case);
    tcase_add_test(tc, a_group_name_is_taken_in_every_case);
    tcase_add_test(tc, names_differing_only_in_case_survive_the_upgrade);
    suite_add_tcase(s, tc);
    return chatd_proc_run_suite(s);
}
