/* chat.c - the chat plugin: the commands of the original chat room (register, login,
 * private_chat, add_friend, create_group, group_chat) and the ones added to it
 * (logout, join_group, leave_group, presence, offline delivery).
 *
 * One plugin owns every table of the chat (users, friendships, chat_groups,
 * memberships, private_messages, group_messages), because the login reply joins them
 * all; each command can still be switched off on its own with the boolean option of
 * the same name, e.g. in the config file:
 *
 *   [plugins]
 *   enable = ping, chat
 *   authenticator = chat
 *   [plugin.chat]
 *   register = no          ; closed registration
 *
 * Passwords are Argon2id hashes (libsodium), made and checked on worker threads. */
#include "chat.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct chat chat;

/* How often moved group read positions of online users are written back. */
#define POSITION_SAVE_MS 30000

static const struct chatd_option options[] = {
    {"register", CHATD_OPT_BOOL, "yes", 0, 0, "serve register (no: closed registration)"},
    {"login", CHATD_OPT_BOOL, "yes", 0, 0, "serve login"},
    {"logout", CHATD_OPT_BOOL, "yes", 0, 0, "serve logout"},
    {"private_chat", CHATD_OPT_BOOL, "yes", 0, 0, "serve private_chat"},
    {"add_friend", CHATD_OPT_BOOL, "yes", 0, 0, "serve add_friend"},
    {"create_group", CHATD_OPT_BOOL, "yes", 0, 0, "serve create_group"},
    {"join_group", CHATD_OPT_BOOL, "yes", 0, 0, "serve join_group"},
    {"leave_group", CHATD_OPT_BOOL, "yes", 0, 0, "serve leave_group"},
    {"group_chat", CHATD_OPT_BOOL, "yes", 0, 0, "serve group_chat"},
    {"presence", CHATD_OPT_BOOL, "yes", 0, 0, "tell online friends when a user comes and goes"},
    {"offline_delivery", CHATD_OPT_BOOL, "yes", 0, 0,
     "deliver stored messages after login (no: they wait until it is turned on)"},
    {"max_text_bytes", CHATD_OPT_INT, "4096", 1, 65535, "longest message text"},
    {"password_opslimit", CHATD_OPT_INT, "2", 1, 20, "Argon2id passes (libsodium opslimit)"},
    {"password_memlimit_kib", CHATD_OPT_INT, "65536", 8, 4194304,
     "Argon2id memory per hash, KiB (libsodium memlimit / 1024)"},
    {"max_groups_per_user", CHATD_OPT_INT, "100", 1, 100000, "groups one user may be in"},
    {"max_members_per_group", CHATD_OPT_INT, "10000", 2, 1000000, "members one group may have"},
    {"max_offline_messages", CHATD_OPT_INT, "10000", 1, 10000000,
     "private messages stored for one user; more are refused with forbidden"},
    {NULL, 0, NULL, 0, 0, NULL},
};

static const struct chatd_migration migrations[] = {
    {1, "users",
     "CREATE TABLE users ("
     " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
     " name VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
     " password_hash VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
     " created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),"
     " UNIQUE KEY users_name (name)"
     ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"},
    {2, "friendships, one row per direction",
     "CREATE TABLE friendships ("
     " user_id BIGINT NOT NULL,"
     " friend_id BIGINT NOT NULL,"
     " created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),"
     " PRIMARY KEY (user_id, friend_id),"
     " KEY friendships_friend (friend_id),"
     " CONSTRAINT friendships_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,"
     " CONSTRAINT friendships_friend FOREIGN KEY (friend_id) REFERENCES users (id)"
     " ON DELETE CASCADE"
     ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"},
    {3, "groups",
     "CREATE TABLE chat_groups ("
     " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
     " name VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
     " owner_id BIGINT NOT NULL,"
     " created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),"
     " UNIQUE KEY chat_groups_name (name),"
     " CONSTRAINT chat_groups_owner FOREIGN KEY (owner_id) REFERENCES users (id)"
     ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"},
    {4, "memberships with each member's read position in the group's log",
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
     ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"},
    {5, "private messages waiting for an offline recipient",
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
     ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"},
    {6, "group messages, stored once per message",
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
     ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"},
    {7, "a private message stored twice (a repeated job) is kept once",
     "CREATE UNIQUE INDEX private_messages_msg_id ON private_messages (msg_id)"},
    {0, NULL, NULL},
};

void chat_new_msg_id(char *out, size_t len)
{
    snprintf(out, len, "%s-%llu", chat.boot, (unsigned long long)++chat.next_msg);
}

void chat_refuse(struct chatd_request *req, const char *result, const char *reason)
{
    HOST->reply(req, result, reason ? json_pack("{ss}", "reason", reason) : NULL);
}

struct online_user *chat_sender(struct chatd_request *req)
{
    struct online_user *u = chat_online(HOST->request_user(req));
    if (!u)
        chat_refuse(req, "internal", "the sender is not online");
    else if (u->id == 0)
        chat_refuse(req, "busy", "the chat was just reloaded: try again");
    return u && u->id ? u : NULL;
}

const char *chat_status_word(int status)
{
    return status == CHATD_EBUSY ? "busy" : "internal";
}

int chat_submit(struct chatd_request *req, const struct chatd_job *job, void *arg)
{
    int rc = HOST->job_submit(chat.self, req, job, arg);
    if (rc == 0)
        return 0;
    chat_refuse(req, chat_status_word(rc),
                rc == CHATD_EBUSY ? "the server is busy, try again" : chatd_strerror(rc));
    return -1;
}

char *chat_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    if (copy)
        memcpy(copy, s, n);
    return copy;
}

int chat_read_int64(const struct chatd_value *cols, size_t ncols, void *arg)
{
    if (ncols == 1 && cols[0].type == CHATD_PARAM_INT64)
        *(int64_t *)arg = cols[0].i;
    return 0;
}

int chat_register_commands(const struct chatd_command *commands, const int *enabled, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!enabled[i])
            continue;
        int rc = HOST->register_command(chat.self, &commands[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int option_on(const char *key)
{
    int on = 0;
    HOST->option_bool(chat.self, key, &on);
    return on;
}

static int chat_init(struct chatd_plugin *self, const struct chatd_host *host)
{
    memset(&chat, 0, sizeof(chat));
    chat.host = host;
    chat.self = self;
    if (sodium_init() < 0) {
        host->log(self, CHATD_LOG_ERROR, "libsodium failed to initialise");
        return CHATD_EPLUGIN;
    }
    host->option_int(self, "max_text_bytes", &chat.max_text);
    host->option_int(self, "password_opslimit", &chat.pw_ops);
    host->option_int(self, "password_memlimit_kib", &chat.pw_mem_kib);
    host->option_int(self, "max_groups_per_user", &chat.max_groups_per_user);
    host->option_int(self, "max_members_per_group", &chat.max_members_per_group);
    host->option_int(self, "max_offline_messages", &chat.max_offline);
    chat.presence = option_on("presence");
    chat.offline_delivery = option_on("offline_delivery");
    /* msg_ids are "<boot>-<n>": the boot part differs at every start. */
    snprintf(chat.boot, sizeof(chat.boot), "%llx", (unsigned long long)host->now_ms());

    if ((option_on("login") || option_on("logout")) && !host->is_authenticator(self)) {
        host->log(self, CHATD_LOG_ERROR,
                  "chat serves login, so it must be the authenticator: add 'authenticator = "
                  "chat' to [plugins] (or turn login and logout off)");
        return CHATD_EPERM;
    }
    int rc = accounts_init(option_on("register"), option_on("login"), option_on("logout"));
    if (rc == 0 && option_on("private_chat"))
        rc = private_chat_init();
    if (rc == 0 && option_on("add_friend"))
        rc = friends_init();
    if (rc == 0)
        rc = groups_init(option_on("create_group"), option_on("join_group"),
                         option_on("leave_group"), option_on("group_chat"));
    if (rc == 0)
        rc = host->subscribe(self, CHATD_EVENT_LOGIN, accounts_on_event, NULL);
    if (rc == 0)
        rc = host->subscribe(self, CHATD_EVENT_LOGOUT, accounts_on_event, NULL);
    /* Group read positions of users online move in memory; saving them now and then
     * bounds what a crash makes the server send again. */
    if (rc == 0)
        rc = host->timer_add(self, POSITION_SAVE_MS, 1, accounts_save_positions, NULL, NULL);
    if (rc == 0)
        rc = host->timer_add(self, 0, 0, offline_backlog_count, NULL, NULL);
    return rc;
}

static void chat_shutdown(struct chatd_plugin *self)
{
    (void)self;
    accounts_shutdown();
    groups_shutdown();
    chat_writes_free();
    offline_store_free();
}

CHATD_PLUGIN_DEFINE(.name = "chat", .version = "1.0.0",
                    .description = "accounts, private and group chat, friends, presence and "
                                   "offline delivery",
                    .options = options, .migrations = migrations, .init = chat_init,
                    .shutdown = chat_shutdown);
