/* schema.c - the accounts plugin's tables: accounts_users, one row per account, and
 * accounts_tokens, one row per login token (its hash, whose user, created and
 * expires_at in Unix ms; see tokens.c).
 *
 * Names are unique regardless of case (migration 4): name_folded holds the name in
 * lower case under a unique key, so `Alice` cannot register beside `alice`. Lookups
 * (login, the accounts service) still go by the exact spelling. A database that already
 * held names differing only in case keeps every one of those accounts, each still
 * logging in under its own spelling; the oldest (lowest id) owns the folded name, the
 * others have none (NULL), and no new spelling of it can be registered.
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
    {4, "names unique regardless of case: name_folded, unique, for the oldest of each spelling",
     "BEGIN NOT ATOMIC"
     " ALTER TABLE accounts_users ADD COLUMN name_folded VARCHAR(32) CHARACTER SET ascii"
     " COLLATE ascii_bin NULL AFTER name;"
     " UPDATE accounts_users t JOIN (SELECT MIN(id) AS id FROM accounts_users GROUP BY "
     "LOWER(name)) f"
     " ON f.id = t.id SET t.name_folded = LOWER(t.name);"
     " ALTER TABLE accounts_users ADD UNIQUE KEY accounts_users_name_folded (name_folded);"
     " END"},
    {0, NULL, NULL},
};
