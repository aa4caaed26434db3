/* chat_plugin.c - which plugin owns each chat option and gauge the tests use. */
#include "chat_plugin.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

/* Today one plugin serves every chat command. */
#define CHAT_PLUGIN "chat"

static const struct {
    const char *option;
    const char *plugin;
} owners[] = {
    /* accounts */
    {"register", CHAT_PLUGIN},
    {"password_opslimit", CHAT_PLUGIN},
    {"password_memlimit_kib", CHAT_PLUGIN},
    /* private chat and offline delivery */
    {"max_text_bytes", CHAT_PLUGIN},
    {"max_offline_messages", CHAT_PLUGIN},
    {"offline_messages", CHAT_PLUGIN}, /* the gauge */
    /* groups */
    {"max_groups_per_user", CHAT_PLUGIN},
    {"max_members_per_group", CHAT_PLUGIN},
};

const char *chat_plugin_of(const char *option)
{
    for (size_t i = 0; i < sizeof(owners) / sizeof(owners[0]); i++)
        if (strcmp(owners[i].option, option) == 0)
            return owners[i].plugin;
    ck_abort_msg("chat_plugin.c does not say which plugin owns \"%s\"", option);
    return NULL;
}

const char *chat_plugin_set(char out[CHAT_PLUGIN_TEXT_MAX], const char *option, const char *value)
{
    int n = snprintf(out, CHAT_PLUGIN_TEXT_MAX, "plugin.%s.%s=%s", chat_plugin_of(option), option,
                     value);
    ck_assert(n > 0 && n < CHAT_PLUGIN_TEXT_MAX);
    return out;
}

const char *chat_plugin_metric(char out[CHAT_PLUGIN_TEXT_MAX], const char *key)
{
    int n = snprintf(out, CHAT_PLUGIN_TEXT_MAX, "chatd_%s_%s", chat_plugin_of(key), key);
    ck_assert(n > 0 && n < CHAT_PLUGIN_TEXT_MAX);
    return out;
}
