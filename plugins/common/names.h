/* names.h - the chat plugins' name rule for users and groups: 1 to 32 ASCII letters,
 * digits or underscores, compared exactly (case matters). Part of the static helper
 * library plugins/common, linked into each chat plugin (nothing of it is exported). */
#ifndef CHATD_PLUGINS_COMMON_NAMES_H
#define CHATD_PLUGINS_COMMON_NAMES_H

#define CHAT_NAME_MAX 32

/* Non-zero when `name` (may be NULL) follows the rule. */
int chat_valid_name(const char *name);

#endif
