/* chat_plugin.h - the one place where the tests name the plugin behind the chat commands
 * (accounts, friends, private and group chat): their options in --set values
 * ("plugin.<name>.<option>=<value>").
 *
 * The table in chat_plugin.c says which of the chat's plugins owns each option; no test
 * spells a plugin name itself. */
#ifndef CHATD_TEST_CHAT_PLUGIN_H
#define CHATD_TEST_CHAT_PLUGIN_H

#include <stddef.h>

/* Longest text chat_plugin_set writes, NUL included. */
#define CHAT_PLUGIN_TEXT_MAX 160

/* The plugin that owns `option` (an option or a gauge key of the chat commands), the
 * first when several have it. The test fails when the option is not in the table. */
const char *chat_plugin_of(const char *option);

/* Write the --set value "plugin.<owner>.<option>=<value>" to out; returns out. */
const char *chat_plugin_set(char out[CHAT_PLUGIN_TEXT_MAX], const char *option, const char *value);

/* Write "plugin.<owner>.<option>=<value>" for every plugin that has `option` (e.g.
 * max_text_bytes: private_chat and groups) to out[0..]; returns how many (at most cap). */
size_t chat_plugin_sets(const char *option, const char *value, char out[][CHAT_PLUGIN_TEXT_MAX],
                        size_t cap);

#endif
