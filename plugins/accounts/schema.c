/* schema.c - the accounts plugin's tables: accounts_users, one row per account, and
 * accounts_tokens, one row per login token (its hash, whose user, created and
 * expires_at in Unix ms; see tokens.c).
 *
 * Upgrade from the former `chat` plugin: migration 2 copies its `users` table (names,
 * password hashes, ids) into accounts_users when the chat plugin's schema is recorded
 * in chatd_schema and the table is still there. The old table is left as it was; once
 * every plugin has taken its data over (and chatd has moved the stored messages into
 * its inbox), the operator may drop the chat plugin's tables (see docs/operations.md). */
#include "accounts.h"

const struct chatd_migration accounts_migrations[] = {
    {1, "accounts",
     "CREATE TABLE accounts_users ("
     " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
     " name VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
     " password_hash VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
     " created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),"
     " UNIQUE KEY accounts_users_name (name)"
     ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"},
    {2, "take over the accounts of the former chat plugin (table users), if any",
     "BEGIN NOT ATOMIC"
     " IF EXISTS (SELECT 1 FROM chatd_schema WHERE plugin = 'chat')"
     " AND EXISTS (SELECT 1 FROM information_schema.tables"
     " WHERE table_schema = DATABASE() AND table_name = 'users') THEN"
     " INSERT IGNORE INTO accounts_users (id, name, password_hash, created_at)"
     " SELECT id, name, password_hash, created_at FROM users;"
     " END IF;"
     " END"},
    {3, "login tokens: only their hashes",
     "CREATE TABLE accounts_tokens ("
     " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
     " token_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
     " user_name VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
     " created BIGINT NOT NULL,"
     " expires_at BIGINT NOT NULL,"
     " UNIQUE KEY accounts_tokens_hash (token_hash),"
     " KEY accounts_tokens_user (user_name, id)"
     ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"},
    {0, NULL, NULL},
};
