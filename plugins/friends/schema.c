/* schema.c - the friends plugin's table: friends_pairs, one row per direction of each
 * friendship, by user name (names are never reused or renamed).
 *
 * Upgrade from the former `chat` plugin: migration 2 copies its `friendships` (user
 * ids) as names, when the chat plugin's schema is recorded in chatd_schema and its
 * tables are still there. The old tables are left as they were. */
#include "friends.h"

const struct chatd_migration friends_migrations[] = {
    {1, "friendships, one row per direction",
     "CREATE TABLE friends_pairs ("
     " user VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
     " friend VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
     " created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),"
     " PRIMARY KEY (user, friend),"
     " KEY friends_pairs_friend (friend)"
     ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"},
    {2, "take over the friendships of the former chat plugin, if any",
     "BEGIN NOT ATOMIC"
     " IF EXISTS (SELECT 1 FROM chatd_schema WHERE plugin = 'chat')"
     " AND (SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()"
     " AND table_name IN ('users', 'friendships')) = 2 THEN"
     " INSERT IGNORE INTO friends_pairs (user, friend, created_at)"
     " SELECT u.name, f.name, p.created_at FROM friendships p"
     " JOIN users u ON u.id = p.user_id JOIN users f ON f.id = p.friend_id;"
     " END IF;"
     " END"},
    {0, NULL, NULL},
};
