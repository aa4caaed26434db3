/* names.h - the chat plugins' name rule for users and groups: 1 to 32 ASCII letters,
 * digits or underscores, compared exactly (case matters). Part of the static helper
 * library plugins/common, linked into each chat plugin (nothing of it is exported). */
#ifndef CHATD_PLUGINS_COMMON_NAMES_H
#define CHATD_PLUGINS_COMMON_NAMES_H

#include <stddef.h>

#define CHAT_NAME_MAX 32

/* Non-zero when `name` (may be NULL) follows the rule. */
int chat_valid_name(const char *name);

/* Copy name, cut at CHAT_NAME_MAX bytes, and a NUL to out (room for CHAT_NAME_MAX + 1);
 * returns the bytes copied. (snprintf "%s" costs hundreds of instructions a call, and
 * these run for every message.) */
size_t chat_copy_name(char *out, const char *name);

/* The value of a msg_id as the host gives them (ABI 1.4: the message's id in decimal):
 * 1 to 19 digits, a positive int64. 0 when s (may be NULL) is not one. */
long long chat_msg_id_value(const char *s);

/* The longest history key of a private conversation: two names and the bar. */
#define CHAT_CONVERSATION_MAX (2 * CHAT_NAME_MAX + 1)

/* The history key (struct chatd_post's conversation) of the private conversation
 * between users a and b, valid names: "<lower>|<higher>" in byte order, the same
 * whoever of the two asks. */
void chat_private_conversation(const char *a, const char *b, char out[CHAT_CONVERSATION_MAX + 1]);

#endif
