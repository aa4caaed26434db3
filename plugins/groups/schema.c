/* schema.c - the groups plugin's tables, by user name:
 *   groups_groups    a group and its owner (a group is never deleted);
 *   groups_members   who is in which group, and since_msg: the last message id posted
 *                    before they joined (migration 7), where their history starts;
 *   groups_messages  the group's log before delivery version 2, kept for old data:
 *                    group messages are now posted to the host (chatd_messages,
 *                    conversation "#<group>") and nothing writes here any more;
 *   groups_users     one row per user who ever created or joined a group, locked first
 *                    by create and join so that two requests of one user cannot both
 *                    pass max_groups_per_user.
 *
 * Group names are unique regardless of case (migration 6), as account names are (see
 * the accounts plugin's schema.c): name_folded, unique, NULL for the younger groups of
 * a spelling that a database already held twice; lookups go by the exact spelling.
 *
 * Upgrade from the former `chat` plugin: migration 5 copies its chat_groups,
 * memberships and group_messages (ids kept, so group msg_ids "g<id>" stay the same),
 * turning user ids into names, when the chat plugin's schema is recorded in
 * chatd_schema and its tables are still there. The old tables are left as they were
 * (chatd moves the unread group messages into its inbox from them). */
#include "groups.h"

const struct chatd_migration groups_migrations[] = {
    {1, "groups",
     "CREATE TABLE groups_groups ("
     " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
     " name VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
     " owner VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
     " created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),"
     " UNIQUE KEY groups_groups_name (name)"
     ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"},
    {2, "members of each group",
     "CREATE TABLE groups_members ("
     " group_id BIGINT NOT NULL,"
     " user VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
     " joined_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),"
     " PRIMARY KEY (group_id, user),"
     " KEY groups_members_user (user),"
     " CONSTRAINT groups_members_group FOREIGN KEY (group_id) REFERENCES groups_groups (id)"
     " ON DELETE CASCADE"
     ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"},
    {3, "the log of each group",
     "CREATE TABLE groups_messages ("
     " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
     " group_id BIGINT NOT NULL,"
     " sender VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
     " text TEXT NOT NULL,"
     " ts BIGINT NOT NULL,"
     " KEY groups_messages_group (group_id, id),"
     " CONSTRAINT groups_messages_group FOREIGN KEY (group_id) REFERENCES groups_groups (id)"
     " ON DELETE CASCADE"
     ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"},
    {4, "a row per user to lock while their memberships change",
     "CREATE TABLE groups_users ("
     " user VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY"
     ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"},
    {5, "take over the groups, memberships and group log of the former chat plugin, if any",
     "BEGIN NOT ATOMIC"
     " IF EXISTS (SELECT 1 FROM chatd_schema WHERE plugin = 'chat')"
     " AND (SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()"
     " AND table_name IN ('users', 'chat_groups', 'memberships', 'group_messages')) = 4 THEN"
     " INSERT IGNORE INTO groups_groups (id, name, owner, created_at)"
     " SELECT g.id, g.name, u.name, g.created_at FROM chat_groups g"
     " JOIN users u ON u.id = g.owner_id;"
     " INSERT IGNORE INTO groups_members (group_id, user, joined_at)"
     " SELECT m.group_id, u.name, m.joined_at FROM memberships m"
     " JOIN users u ON u.id = m.user_id;"
     " INSERT IGNORE INTO groups_messages (id, group_id, sender, text, ts)"
     " SELECT m.id, m.group_id, u.name, m.text, m.ts FROM group_messages m"
     " JOIN users u ON u.id = m.sender_id;"
     " END IF;"
     " END"},
    {6, "names unique regardless of case: name_folded, unique, for the oldest of each spelling",
     "BEGIN NOT ATOMIC"
     " ALTER TABLE groups_groups ADD COLUMN name_folded VARCHAR(32) CHARACTER SET ascii"
     " COLLATE ascii_bin NULL AFTER name;"
     " UPDATE groups_groups t JOIN (SELECT MIN(id) AS id FROM groups_groups GROUP BY LOWER(name)) f"
     " ON f.id = t.id SET t.name_folded = LOWER(t.name);"
     " ALTER TABLE groups_groups ADD UNIQUE KEY groups_groups_name_folded (name_folded);"
     " END"},
    /* A member sees the group's messages from when they (last) joined: the id of the last
     * message posted when their join arrived. Members from before this migration get
     * 0, the whole history the host keeps (which starts with version 2). */
    {7, "where each member's view of the group's history starts",
     "ALTER TABLE groups_members ADD COLUMN since_msg BIGINT NOT NULL DEFAULT 0"},
    {0, NULL, NULL},
};
