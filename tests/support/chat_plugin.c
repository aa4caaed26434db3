/* chat_plugin.c - which plugin owns each chat option and gauge the tests use. */
#include "chat_plugin.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *option;
    const char *plugin;
} owners[] = {
    /* accounts */
    {"register", "accounts"},
    {"password_opslimit", "accounts"},
    {"password_memlimit_kib", "accounts"},
    {"token_lifetime_s", "accounts"},
    {"max_tokens_per_user", "accounts"},
    /* private chat */
    {"max_offline_messages", "private_chat"},
    {"max_offline_per_sender", "private_chat"},
    {"max_text_bytes", "private_chat"},
    /* groups */
    {"max_groups_per_user", "groups"},
    {"max_members_per_group", "groups"},
    {"max_text_bytes", "groups"},
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

size_t chat_plugin_sets(const char *option, const char *value, char out[][CHAT_PLUGIN_TEXT_MAX],
                        size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof(owners) / sizeof(owners[0]); i++) {
        if (strcmp(owners[i].option, option) != 0)
            continue;
        ck_assert(n < cap);
        int len = snprintf(out[n++], CHAT_PLUGIN_TEXT_MAX, "plugin.%s.%s=%s", owners[i].plugin,
                           option, value);
        ck_assert(len > 0 && len < CHAT_PLUGIN_TEXT_MAX);
    }
    ck_assert_msg(n > 0, "chat_plugin.c does not say which plugin owns \"%s\"", option);
    return n;
}
