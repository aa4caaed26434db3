/* test_upgrade.c - a database made by the former `chat` plugin (ABI 1.1, one plugin for
 * every chat table) keeps its accounts, friendships, groups and undelivered messages
 * when chatd starts with the plugins that replaced it: accounts, friends, private_chat
 * and groups take the tables over in their first migrations, and the host moves the
 * stored messages into its inbox. The old schema is made here exactly as the chat
 * plugin's seven migrations made it. */
#include "chatd_proc.h"
#include "client.h"
#include "db.h"
#include "db_test_env.h"

#include <check.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

/* The chat plugin's migrations 1 to 7, as it shipped them. */
static const char *const old_schema[] = {
    /* users */
    "CREATE TABLE users ("
    " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " name VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
    " password_hash VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
    " created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),"
    " UNIQUE KEY users_name (name)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    /* friendships, one row per direction */
    "CREATE TABLE friendships ("
    " user_id BIGINT NOT NULL,"
    " friend_id BIGINT NOT NULL,"
    " created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),"
    " PRIMARY KEY (user_id, friend_id),"
    " KEY friendships_friend (friend_id),"
    " CONSTRAINT friendships_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,"
    " CONSTRAINT friendships_friend FOREIGN KEY (friend_id) REFERENCES users (id)"
    " ON DELETE CASCADE"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    /* groups */
    "CREATE TABLE chat_groups ("
    " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " name VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
    " owner_id BIGINT NOT NULL,"
    " created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),"
    " UNIQUE KEY chat_groups_name (name),"
    " CONSTRAINT chat_groups_owner FOREIGN KEY (owner_id) REFERENCES users (id)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    /* memberships with each member's read position in the group's log */
    "CREATE TABLE memberships ("
    " group_id BIGINT NOT NULL,"
    " user_id BIGINT NOT NULL,"
    " read_pos BIGINT NOT NULL DEFAULT 0,"
    " joined_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),"
    " PRIMARY KEY (group_id, user_id),"
    " KEY memberships_user (user_id),"
    " CONSTRAINT memberships_group FOREIGN KEY (group_id) REFERENCES chat_groups (id)"
    " ON DELETE CASCADE,"
    " CONSTRAINT memberships_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    /* private messages waiting for an offline recipient */
    "CREATE TABLE private_messages ("
    " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " recipient_id BIGINT NOT NULL,"
    " sender_id BIGINT NOT NULL,"
    " msg_id VARCHAR(40) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
    " text TEXT NOT NULL,"
    " ts BIGINT NOT NULL,"
    " KEY private_messages_recipient (recipient_id, id),"
    " CONSTRAINT private_messages_recipient FOREIGN KEY (recipient_id) REFERENCES users (id)"
    " ON DELETE CASCADE,"
    " CONSTRAINT private_messages_sender FOREIGN KEY (sender_id) REFERENCES users (id)"
    " ON DELETE CASCADE"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    /* group messages, stored once per message */
    "CREATE TABLE group_messages ("
    " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " group_id BIGINT NOT NULL,"
    " sender_id BIGINT NOT NULL,"
    " text TEXT NOT NULL,"
    " ts BIGINT NOT NULL,"
    " KEY group_messages_group (group_id, id),"
    " CONSTRAINT group_messages_group FOREIGN KEY (group_id) REFERENCES chat_groups (id)"
    " ON DELETE CASCADE,"
    " CONSTRAINT group_messages_sender FOREIGN KEY (sender_id) REFERENCES users (id)"
    " ON DELETE CASCADE"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    /* a private message stored twice (a repeated job) is kept once */
    "CREATE UNIQUE INDEX private_messages_msg_id ON private_messages (msg_id)",
};

/* chatd_schema as the host makes it, with the chat plugin at its last version. */
static const char *const old_records[] = {
    "CREATE TABLE IF NOT EXISTS chatd_schema (plugin VARCHAR(64) NOT NULL PRIMARY KEY, version "
    "INT UNSIGNED NOT NULL, applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE "
    "CURRENT_TIMESTAMP) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    "INSERT INTO chatd_schema (plugin, version) VALUES ('chat', 7)",
};

/* What the old chat held: alice and bob are friends; g1 (alice's) has alice and bob;
 * bob has read the first group message only; two private messages wait for bob, one
 * older and one newer than the unread group message. carol is alone. */
static const char *const old_rows[] = {
    "INSERT INTO friendships (user_id, friend_id) VALUES (1, 2), (2, 1)",
    "INSERT INTO chat_groups (id, name, owner_id) VALUES (1, 'g1', 1)",
    "INSERT INTO memberships (group_id, user_id, read_pos) VALUES (1, 1, 2), (1, 2, 1)",
    "INSERT INTO group_messages (id, group_id, sender_id, text, ts) VALUES "
    "(1, 1, 1, 'hello g1', 1000), (2, 1, 1, 'second', 3000)",
    "INSERT INTO private_messages (recipient_id, sender_id, msg_id, text, ts) VALUES "
    "(2, 1, 'old-1', 'stored one', 2000), (2, 1, 'old-2', 'stored two', 4000)",
};

static struct config_database cfg;
static struct chatd_proc srv;

static void run_all(struct chatd_db *db, const char *const *sql, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(db_simple(db, sql[i]) == 0, "%s: %s", sql[i], db->last_error);
}

/* The old database, with alice, bob and carol whose password is "old-pw". */
static void make_old_database(void)
{
    struct chatd_db db = {0};
    char err[512];
    ck_assert_msg(db_open(&db, &cfg, "", err, sizeof(err)) == 0, "%s", err);
    run_all(&db, old_records, sizeof(old_records) / sizeof(old_records[0]));
    run_all(&db, old_schema, sizeof(old_schema) / sizeof(old_schema[0]));
    ck_assert(sodium_init() >= 0);
    char hash[crypto_pwhash_STRBYTES];
    ck_assert_int_eq(crypto_pwhash_str(hash, "old-pw", 6, 1, 8192), 0);
    static const char *const names[] = {"alice", "bob", "carol"};
    for (int i = 0; i < 3; i++) {
        struct chatd_value row[3] = {
            {.type = CHATD_PARAM_INT64, .i = i + 1},
            {.type = CHATD_PARAM_TEXT, .s = names[i], .len = strlen(names[i])},
            {.type = CHATD_PARAM_TEXT, .s = hash, .len = strlen(hash)},
        };
        ck_assert_int_eq(db_exec(&db,
                                 "INSERT INTO users (id, name, password_hash) VALUES (?, ?, ?)",
                                 row, 3, NULL, NULL),
                         0);
    }
    run_all(&db, old_rows, sizeof(old_rows) / sizeof(old_rows[0]));
    db_close(&db);
}

static json_t *request(struct test_client *c, const char *text)
{
    ck_assert_int_eq(test_client_send_str(c, text), 0);
    json_t *msg = test_client_read_json(c, 10000);
    ck_assert_msg(msg != NULL, "no reply to %s", text);
    return msg;
}

static const char *str(const json_t *msg, const char *key)
{
    const char *s = json_string_value(json_object_get(msg, key));
    return s ? s : "(none)";
}

/* Log `user` in with the old password; returns login_reply. */
static json_t *old_login(struct test_client *c, const char *user)
{
    char text[128];
    snprintf(text, sizeof(text), "{\"cmd\":\"login\",\"user\":\"%s\",\"passwd\":\"old-pw\"}", user);
    json_t *reply = request(c, text);
    ck_assert_str_eq(str(reply, "cmd"), "login_reply");
    ck_assert_str_eq(str(reply, "result"), "success");
    return reply;
}

static void assert_names(const json_t *array, const char *want)
{
    char got[128] = "";
    size_t i;
    json_t *v;
    json_array_foreach(array, i, v) snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s",
                                             i ? "," : "", json_string_value(v));
    ck_assert_str_eq(got, want);
}

/* The next push is `cmd` with `text`, stored (offline) or not. */
static json_t *expect_push(struct test_client *c, const char *cmd, const char *text, int offline)
{
    json_t *msg = test_client_read_json(c, 10000);
    ck_assert_msg(msg != NULL, "no %s \"%s\"", cmd, text);
    ck_assert_str_eq(str(msg, "cmd"), cmd);
    ck_assert_str_eq(str(msg, "text"), text);
    ck_assert_int_eq(json_is_true(json_object_get(msg, "offline")), offline);
    return msg;
}

START_TEST(accounts_friends_groups_and_stored_messages_survive_the_upgrade)
{
    db_test_config(&cfg);
    make_old_database();
    ck_assert_msg(db_test_start_sample(&srv, &cfg, NULL) == 0, "chatd did not start");

    struct test_client *bob = test_client_connect(srv.host, srv.port, 0);
    ck_assert(bob != NULL);
    json_t *reply = request(bob, "{\"cmd\":\"login\",\"user\":\"bob\",\"passwd\":\"wrong\"}");
    ck_assert_str_eq(str(reply, "result"), "passwd_error");
    json_decref(reply);
    reply = old_login(bob, "bob");
    assert_names(json_object_get(reply, "fri"), "alice");
    assert_names(json_object_get(reply, "group"), "g1");
    json_decref(reply);
    /* What bob had not got yet, oldest first; the group message he had read stays read. */
    json_t *msg = expect_push(bob, "private_chat_recv", "stored one", 1);
    ck_assert_str_eq(str(msg, "msg_id"), "old-1");
    ck_assert_str_eq(str(msg, "user_from"), "alice");
    json_decref(msg);
    msg = expect_push(bob, "group_chat_recv", "second", 1);
    ck_assert_str_eq(str(msg, "msg_id"), "g2");
    ck_assert_str_eq(str(msg, "group"), "g1");
    json_decref(msg);
    json_decref(expect_push(bob, "private_chat_recv", "stored two", 1));

    struct test_client *alice = test_client_connect(srv.host, srv.port, 0);
    ck_assert(alice != NULL);
    reply = old_login(alice, "alice");
    assert_names(json_object_get(reply, "fri"), "bob");
    json_decref(reply);
    /* bob sees alice come online; the chat goes on where it was. */
    msg = test_client_read_json(bob, 10000);
    ck_assert_str_eq(str(msg, "cmd"), "presence");
    json_decref(msg);
    reply = request(alice, "{\"cmd\":\"group_chat\",\"group\":\"g1\",\"text\":\"third\"}");
    ck_assert_str_eq(str(reply, "result"), "success");
    json_decref(reply);
    msg = expect_push(bob, "group_chat_recv", "third", 0);
    /* Since version 2 a group message's msg_id is the host's id (its seq), which never
     * looks like the log's "g<id>" the old messages kept. */
    char seq_text[32];
    snprintf(seq_text, sizeof(seq_text), "%" JSON_INTEGER_FORMAT,
             json_integer_value(json_object_get(msg, "seq")));
    ck_assert_str_eq(str(msg, "msg_id"), seq_text);
    json_decref(msg);
    reply = request(alice, "{\"cmd\":\"add_friend\",\"friend\":\"bob\"}");
    ck_assert_str_eq(str(reply, "result"), "already_friends");
    json_decref(reply);

    struct test_client *carol = test_client_connect(srv.host, srv.port, 0);
    ck_assert(carol != NULL);
    reply = old_login(carol, "carol");
    assert_names(json_object_get(reply, "fri"), "");
    assert_names(json_object_get(reply, "group"), "");
    json_decref(reply);
    /* A name the old chat had is still taken. */
    reply = request(carol, "{\"cmd\":\"register\",\"user\":\"alice\",\"passwd\":\"x\"}");
    ck_assert_str_eq(str(reply, "result"), "failure");
    json_decref(reply);

    test_client_close(alice);
    test_client_close(bob);
    test_client_close(carol);
    int rc = chatd_proc_stop(&srv, CHATD_PROC_STOP_TIMEOUT_MS);
    chatd_proc_cleanup(&srv);
    ck_assert_int_eq(rc, 0);
    db_test_cleanup(&cfg);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("upgrade");
    TCase *tc = tcase_create("from_chat");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, accounts_friends_groups_and_stored_messages_survive_the_upgrade);
    suite_add_tcase(s, tc);
    return chatd_proc_run_suite(s);
}
