/* groups.c - the groups plugin: create_group, join_group, leave_group, group_chat, the
 * list commands `groups` and `group_members`, "group" in login_reply (a user.login
 * hook), and the "groups" service (chatd_groups.h). Groups and memberships are stored
 * by user name; a group message is posted to the host (ABI 1.4 post, conversation
 * "#<group>"), which keeps it once for the group's history, pushes it to the members
 * online and keeps it for the others' next login. */
#include "groups.h"

#include <stdlib.h>

static const struct chatd_option options[] = {
    {"max_text_bytes", CHATD_OPT_INT, "4096", 1, 65535,
     "longest message text in bytes (longer: bad_request)"},
    {"max_groups_per_user", CHATD_OPT_INT, "100", 1, 100000, "groups one user may be in"},
    {"max_members_per_group", CHATD_OPT_INT, "10000", 2, 1000000, "members one group may have"},
    {NULL, 0, NULL, 0, 0, NULL},
};

static int register_commands(struct groups *g)
{
    static const struct chatd_field group_field[] = {
        {"group", CHATD_FIELD_STRING, 1, 1, 256},
        {NULL, 0, 0, 0, 0},
    };
    static const struct chatd_field chat_fields[] = {
        {"group", CHATD_FIELD_STRING, 1, 1, 256},
        {"text", CHATD_FIELD_STRING, 1, 0, 0},
        {"client_msg_id", CHATD_FIELD_STRING, 0, 1, 64},
        {NULL, 0, 0, 0, 0},
    };
    static const struct chatd_command commands[] = {
        {.name = "create_group", .handler = groups_handle_create, .fields = group_field},
        {.name = "join_group", .handler = groups_handle_join, .fields = group_field},
        {.name = "leave_group", .handler = groups_handle_leave, .fields = group_field},
        {.name = "group_chat",
         .handler = groups_handle_chat,
         .fields = chat_fields,
         .flags = CHATD_CMD_PIPELINED},
        {.name = "groups", .handler = groups_handle_groups},
        {.name = "group_members", .handler = groups_handle_members, .fields = group_field},
    };
    static const struct chatd_field_rule text_rule[] = {
        {.field = "text", .max_from_option = "max_text_bytes"},
        {.field = NULL},
    };
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        int rc = g->host->register_command(g->self, &commands[i]);
        if (rc != 0)
            return rc;
    }
    return g->host->command_rules(g->self, "group_chat", text_rule);
}

static int groups_init(struct chatd_plugin *self, const struct chatd_host *host)
{
    struct groups *g = calloc(1, sizeof(*g));
    if (!g)
        return CHATD_ENOMEM;
    host->instance_set(self, g);
    g->host = host;
    g->self = self;
    pthread_mutex_init(&g->open_reads_lock, NULL);
    host->option_int(self, "max_groups_per_user", &g->max_groups_per_user);
    host->option_int(self, "max_members_per_group", &g->max_members_per_group);
    host->option_int(self, "max_text_bytes", &g->max_text);
    int rc = register_commands(g);
    if (rc == 0)
        rc = host->hook_add(self, CHATD_HOOK_USER_LOGIN, 0, groups_on_login, NULL);
    if (rc == 0)
        rc = host->service_provide(self, CHATD_GROUPS_SERVICE, CHATD_GROUPS_VERSION,
                                   &groups_service_v1, NULL);
    return rc;
}

/* After shutdown: every members read has had its done, so none is open. */
static void groups_destroy(void *instance)
{
    struct groups *g = instance;
    pthread_mutex_destroy(&g->open_reads_lock);
    free(g);
}

/* Served through the accounts plugin's login (the user.login hook) and for its users. */
static const char *const requires[] = {"accounts", NULL};
static const char *const provides[] = {CHATD_GROUPS_SERVICE, NULL};

CHATD_PLUGIN_DEFINE(.name = "groups", .version = "1.0.0",
                    .description = "groups: create, join, leave, group_chat, groups, "
                                   "group_members, group at login",
                    .options = options, .migrations = groups_migrations, .init = groups_init,
                    .requires = requires, .provides = provides, .destroy = groups_destroy);
