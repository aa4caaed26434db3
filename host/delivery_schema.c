/* delivery_schema.c - the host's own tables, as migrations of the pseudo-plugin
 * "chatd" (recorded in chatd_schema like any plugin's, applied at start before every
 * plugin's):
 *  - chatd_messages: each stored message once, as the push's JSON text;
 *  - chatd_inbox: one row per recipient and message; its id is the acceptance order,
 *    and a user's rows are read in id order through (user, id).
 *  - migration 3 takes over, once, what the chat plugin of chatd 0.x left undelivered
 *    in its own tables (private_messages; group_messages past memberships.read_pos);
 *  - migration 4 records each inbox row's sender (when the plugin named one);
 *  - 5 to 11: delivery version 2's columns and tables (chatd_timeline, chatd_devices,
 *    chatd_reads, chatd_counters); 12 and 13 move the inbox into the timeline. */
#include "stream_internal.h"

static const struct chatd_migration migrations[] = {
    {1, "stored messages, each once",
     "CREATE TABLE chatd_messages ("
     " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
     " body MEDIUMTEXT NOT NULL,"
     " created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)"
     ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"},
    {2, "the inbox: one row per recipient, in acceptance order",
     "CREATE TABLE chatd_inbox ("
     " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
     " user VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
     " message_id BIGINT NOT NULL,"
     " KEY chatd_inbox_user (user, id),"
     " KEY chatd_inbox_message (message_id)"
     ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"},
    /* The chat plugin's undelivered messages (when its schema is recorded and its tables
     * are there), as the pushes it would have sent, oldest
     * (ts, then id) first. One message row per private message and per group message
     * someone has not read; the group's rows get an inbox row per member behind it
     * (not its sender). The old tables are left as they are. */
    {3, "take over the undelivered messages of the chat plugin's tables",
     "BEGIN NOT ATOMIC\n"
     "  DECLARE base BIGINT DEFAULT 0;\n"
     "  IF (SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()\n"
     "      AND table_name IN ('private_messages', 'users', 'group_messages', 'memberships',\n"
     "                         'chat_groups')) = 5\n"
     "     AND EXISTS (SELECT 1 FROM chatd_schema WHERE plugin = 'chat') THEN\n"
     "    CREATE TEMPORARY TABLE chatd_upgrade (\n"
     "      seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,\n"
     "      kind CHAR(1) NOT NULL, src BIGINT NOT NULL, body MEDIUMTEXT NOT NULL,\n"
     "      KEY chatd_upgrade_src (kind, src));\n"
     "    INSERT INTO chatd_upgrade (kind, src, body)\n"
     "      SELECT kind, src, body FROM (\n"
     "        SELECT 'p' AS kind, p.id AS src, p.ts AS ts,\n"
     "          JSON_OBJECT('cmd', 'private_chat_recv', 'user_from', u.name, 'text', p.text,\n"
     "                      'ts', p.ts, 'msg_id', p.msg_id) AS body\n"
     "        FROM private_messages p JOIN users u ON u.id = p.sender_id\n"
     "        UNION ALL\n"
     "        SELECT 'g', gm.id, gm.ts,\n"
     "          JSON_OBJECT('cmd', 'group_chat_recv', 'group', g.name, 'user_from', u.name,\n"
     "                      'text', gm.text, 'ts', gm.ts, 'msg_id', CONCAT('g', gm.id))\n"
     "        FROM group_messages gm JOIN chat_groups g ON g.id = gm.group_id\n"
     "        JOIN users u ON u.id = gm.sender_id\n"
     "        WHERE EXISTS (SELECT 1 FROM memberships m WHERE m.group_id = gm.group_id\n"
     "                      AND gm.id > m.read_pos AND m.user_id <> gm.sender_id)\n"
     "      ) old ORDER BY ts, src, kind;\n"
     "    SELECT COALESCE(MAX(id), 0) INTO base FROM chatd_messages;\n"
     "    INSERT INTO chatd_messages (id, body) SELECT base + seq, body FROM chatd_upgrade\n"
     "      ORDER BY seq;\n"
     "    INSERT INTO chatd_inbox (user, message_id)\n"
     "      SELECT name, base + seq FROM (\n"
     "        SELECT up.seq, r.name FROM chatd_upgrade up\n"
     "        JOIN private_messages p ON up.kind = 'p' AND p.id = up.src\n"
     "        JOIN users r ON r.id = p.recipient_id\n"
     "        UNION ALL\n"
     "        SELECT up.seq, r.name FROM chatd_upgrade up\n"
     "        JOIN group_messages gm ON up.kind = 'g' AND gm.id = up.src\n"
     "        JOIN memberships m ON m.group_id = gm.group_id AND gm.id > m.read_pos\n"
     "          AND m.user_id <> gm.sender_id\n"
     "        JOIN users r ON r.id = m.user_id\n"
     "      ) rows_in ORDER BY seq, name;\n"
     "    DROP TEMPORARY TABLE chatd_upgrade;\n"
     "  END IF;\n"
     "END"},
    /* Who sent each stored message, for a sender's share of one user's inbox
     * (deliver_from's max_per_sender); NULL for rows stored without one. */
    {4, "the sender of each inbox row, for per-sender limits",
     "ALTER TABLE chatd_inbox"
     " ADD COLUMN sender VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NULL,"
     " ADD KEY chatd_inbox_sender (user, sender)"},
    /* Delivery version 2 (docs/architecture.md, "Delivery version 2"): each message
     * kept for history and numbered by its id, which is every recipient's seq. */
    {5, "messages kept for history: sender, conversation, time, client id, flags",
     "ALTER TABLE chatd_messages"
     " ADD COLUMN sender VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NULL,"
     " ADD COLUMN conversation VARCHAR(70) CHARACTER SET ascii COLLATE ascii_bin NULL,"
     " ADD COLUMN ts BIGINT NOT NULL DEFAULT 0,"
     " ADD COLUMN client_msg_id VARBINARY(64) NULL,"
     " ADD COLUMN flags INT NOT NULL DEFAULT 0,"
     " ADD KEY chatd_messages_conversation (conversation, id),"
     " ADD UNIQUE KEY chatd_messages_client (sender, client_msg_id)"},
    {6, "times of the messages stored before version 2",
     "UPDATE chatd_messages SET ts = FLOOR(UNIX_TIMESTAMP(created_at) * 1000) WHERE ts = 0"},
    /* The inbox becomes the timeline: one row per recipient who must still be sent the
     * message, ordered by the message's id (inbox ids followed it already). The rows of
     * chatd_inbox are taken over by a later migration, with the code that uses it. */
    {7, "the timeline: the messages each user's devices must still be sent",
     "CREATE TABLE chatd_timeline ("
     " user VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
     " message_id BIGINT NOT NULL,"
     " sender VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NULL,"
     " PRIMARY KEY (user, message_id),"
     " KEY chatd_timeline_message (message_id)"
     ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"},
    /* Each device's position: the highest seq it acknowledged. Device '' is the user's
     * version 1 position (the newest message pushed to any session of theirs). */
    {8, "devices and their positions",
     "CREATE TABLE chatd_devices ("
     " user VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
     " device VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
     " acked BIGINT NOT NULL DEFAULT 0,"
     " seen_at BIGINT NOT NULL DEFAULT 0,"
     " PRIMARY KEY (user, device),"
     " KEY chatd_devices_seen (seen_at)"
     ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"},
    {9, "read marks: a user has read a peer's private messages up to an id",
     "CREATE TABLE chatd_reads ("
     " user VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
     " peer VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
     " upto BIGINT NOT NULL,"
     " PRIMARY KEY (user, peer)"
     ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"},
    /* The highest message id ever committed, so that ids are never used twice even
     * when retention has deleted every message. */
    {10, "counters",
     "CREATE TABLE chatd_counters ("
     " name VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,"
     " value BIGINT NOT NULL"
     ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"},
    {11, "the message id counter",
     "INSERT INTO chatd_counters (name, value)"
     " SELECT 'message_id', COALESCE(MAX(id), 0) FROM chatd_messages"},
    /* The inbox's rows become timeline rows (post.c writes only the timeline): in the
     * inbox's order, which followed the messages' ids. Then the inbox goes. */
    {12, "the inbox's rows move to the timeline",
     "INSERT IGNORE INTO chatd_timeline (user, message_id, sender)"
     " SELECT user, message_id, sender FROM chatd_inbox ORDER BY id"},
    {13, "the inbox is gone", "DROP TABLE chatd_inbox"},
    {0, NULL, NULL},
};

const struct chatd_plugin_descriptor delivery_descriptor = {
    .abi_major = CHATD_ABI_MAJOR,
    .abi_minor = CHATD_ABI_MINOR,
    .size = (uint32_t)sizeof(struct chatd_plugin_descriptor),
    .jansson_major = JANSSON_MAJOR_VERSION,
    .name = "chatd",
    .version = CHATD_VERSION,
    .description = "the host's message stream: messages, timeline, devices, ack, receipts",
    .migrations = migrations,
    .built_minor = CHATD_ABI_MINOR,
};
