/* test_table_names.c - the table-name rule for migrations of ABI 1.2 plugins. */
#include "table_names.h"

#include "run_suite.h"

#include <check.h>
#include <string.h>

/* Statements plugin `accounts` may run: its own tables, other tables only read. */
static const char *const allowed[] = {
    "CREATE TABLE accounts_users (id BIGINT PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS `accounts_users` (id INT)",
    "create table accounts (id int)",
    "CREATE TABLE accounts_x (u BIGINT, CONSTRAINT f FOREIGN KEY (u) REFERENCES users (id) "
    "ON DELETE CASCADE ON UPDATE CASCADE, t TIMESTAMP ON UPDATE CURRENT_TIMESTAMP)",
    "ALTER TABLE accounts_users ADD COLUMN x INT",
    "ALTER ONLINE IGNORE TABLE accounts_users RENAME TO accounts_people",
    "DROP TABLE IF EXISTS accounts_a, accounts_b",
    "RENAME TABLE accounts_a TO accounts_b, accounts_c TO accounts_d",
    "TRUNCATE TABLE accounts_users",
    "CREATE UNIQUE INDEX users_name ON accounts_users (name)",
    "DROP INDEX i ON accounts_users",
    "INSERT INTO accounts_users (name) SELECT name FROM users",
    "INSERT IGNORE INTO accounts_users SELECT * FROM users ON DUPLICATE KEY UPDATE name = "
    "VALUES(name)",
    "UPDATE accounts_users SET name = REPLACE(name, 'a', 'b')",
    "DELETE FROM accounts_users WHERE id IN (SELECT id FROM users)",
    "-- CREATE TABLE users (id INT)\nCREATE TABLE accounts_t (a INT) /* DROP TABLE users */",
    "INSERT INTO accounts_t (s) VALUES ('DROP TABLE users; CREATE TABLE x')",
    "BEGIN NOT ATOMIC IF EXISTS (SELECT 1 FROM information_schema.tables WHERE table_name = "
    "'users') THEN INSERT INTO accounts_users SELECT * FROM users; END IF; END",
};

/* And what it may not, with the table the check names. */
static const struct {
    const char *sql, *table;
} refused[] = {
    {"CREATE TABLE users (id INT)", "users"},
    {"CREATE TABLE IF NOT EXISTS users (id INT)", "users"},
    {"CREATE TEMPORARY TABLE tmp (id INT)", "tmp"},
    {"CREATE TABLE accountsx (id INT)", "accountsx"},
    {"CREATE TABLE Accounts_users (id INT)", "Accounts_users"},
    {"CREATE TABLE other.accounts_users (id INT)", "other.accounts_users"},
    {"ALTER TABLE users ADD COLUMN x INT", "users"},
    {"ALTER TABLE accounts_users RENAME TO users", "users"},
    {"DROP TABLE accounts_a, users", "users"},
    {"RENAME TABLE accounts_a TO users", "users"},
    {"RENAME TABLE users TO accounts_users", "users"},
    {"TRUNCATE users", "users"},
    {"CREATE INDEX i ON users (name)", "users"},
    {"DROP INDEX i ON users", "users"},
    {"INSERT INTO users (name) VALUES ('x')", "users"},
    {"REPLACE INTO users VALUES (1)", "users"},
    {"UPDATE users SET name = 'x'", "users"},
    {"DELETE FROM users", "users"},
    {"CREATE TABLE accounts_a (a INT); DROP TABLE `users`", "users"},
    {"BEGIN NOT ATOMIC IF 1 THEN UPDATE friends_pairs SET a = 1; END IF; END", "friends_pairs"},
};

START_TEST(own_tables_and_reads_are_allowed)
{
    char bad[128];
    ck_assert_msg(table_names_check(allowed[_i], "accounts", bad, sizeof(bad)) == 0,
                  "refused (%s): %s", bad, allowed[_i]);
}
END_TEST

START_TEST(other_tables_are_refused_by_name)
{
    char bad[128] = "";
    ck_assert_msg(table_names_check(refused[_i].sql, "accounts", bad, sizeof(bad)) == -1,
                  "allowed: %s", refused[_i].sql);
    ck_assert_str_eq(bad, refused[_i].table);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("table_names");
    TCase *tc = tcase_create("rule");
    tcase_add_loop_test(tc, own_tables_and_reads_are_allowed, 0,
                        (int)(sizeof(allowed) / sizeof(allowed[0])));
    tcase_add_loop_test(tc, other_tables_are_refused_by_name, 0,
                        (int)(sizeof(refused) / sizeof(refused[0])));
    suite_add_tcase(s, tc);
    return chatd_run_suite(s);
}
