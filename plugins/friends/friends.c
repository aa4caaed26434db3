/* friends.c - the friends plugin: add_friend (mutual and immediate), the list command
 * `friends`, presence pushes to online friends when a user's first session logs in and
 * their last one ends, and "fri" in login_reply (a user.login hook). Friendships are
 * stored by user name in friends_pairs; whether a user exists is asked of the accounts
 * service. */
#include "friends.h"

#include <stdlib.h>

static const struct chatd_option options[] = {
    {"presence", CHATD_OPT_BOOL, "yes", 0, 0, "tell online friends when a user comes and goes"},
    {NULL, 0, NULL, 0, 0, NULL},
};

static int friends_init(struct chatd_plugin *self, const struct chatd_host *host)
{
    struct friends *f = calloc(1, sizeof(*f));
    if (!f)
        return CHATD_ENOMEM;
    host->instance_set(self, f);
    f->host = host;
    f->self = self;
    host->option_bool(self, "presence", &f->presence);

    static const struct chatd_field add_fields[] = {
        {"friend", CHATD_FIELD_STRING, 1, 1, 256},
        {NULL, 0, 0, 0, 0},
    };
    static const struct chatd_command commands[] = {
        {.name = "add_friend", .handler = friends_handle_add, .fields = add_fields},
        {.name = "friends", .handler = friends_handle_list},
    };
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof(commands) / sizeof(commands[0]); i++)
        rc = host->register_command(self, &commands[i]);
    if (rc == 0)
        rc = host->subscribe(self, CHATD_EVENT_LOGIN, friends_on_event, NULL);
    if (rc == 0)
        rc = host->subscribe(self, CHATD_EVENT_LOGOUT, friends_on_event, NULL);
    if (rc == 0)
        rc = host->hook_add(self, CHATD_HOOK_USER_LOGIN, 0, friends_on_login, NULL);
    return rc;
}

static void friends_destroy(void *instance)
{
    struct friends *f = instance;
    friends_online_free(f);
    free(f);
}

static const char *const requires[] = {"accounts", NULL};

CHATD_PLUGIN_DEFINE(.name = "friends", .version = "1.0.0",
                    .description = "friends: add_friend, friends, presence, fri at login",
                    .options = options, .migrations = friends_migrations, .init = friends_init,
                    .requires = requires, .destroy = friends_destroy);
