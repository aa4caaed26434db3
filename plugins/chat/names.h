/* names.h - the chat's name rule: 1 to 32 ASCII letters, digits or underscores. Names
 * are compared exactly (case matters). */
#ifndef CHATD_PLUGIN_CHAT_NAMES_H
#define CHATD_PLUGIN_CHAT_NAMES_H

#define CHAT_NAME_MAX 32

/* Non-zero when `name` (may be NULL) follows the rule. */
int chat_valid_name(const char *name);

#endif
