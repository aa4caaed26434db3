/* chat_plugin.h - the one place where the tests name the plugin behind the chat commands
 * (accounts, friends, private and group chat): its options in --set values
 * ("plugin.<name>.<option>=<value>") and its gauges on /metrics ("chatd_<name>_<key>").
 *
 * When the chat plugin is split into several plugins, the table in chat_plugin.c says
 * which of them owns each option and gauge; no test spells a plugin name itself. */
#ifndef CHATD_TEST_CHAT_PLUGIN_H
#define CHATD_TEST_CHAT_PLUGIN_H

#include <stddef.h>

/* Longest text chat_plugin_set or chat_plugin_metric writes, NUL included. */
#define CHAT_PLUGIN_TEXT_MAX 160

/* The plugin that owns `option` (an option or a gauge key of the chat commands). The
 * test fails when the option is not in the table. */
const char *chat_plugin_of(const char *option);

/* Write the --set value "plugin.<owner>.<option>=<value>" to out; returns out. */
const char *chat_plugin_set(char out[CHAT_PLUGIN_TEXT_MAX], const char *option, const char *value);

/* Write the /metrics name "chatd_<owner>_<key>" of the owner's gauge `key`; returns out. */
const char *chat_plugin_metric(char out[CHAT_PLUGIN_TEXT_MAX], const char *key);

#endif
