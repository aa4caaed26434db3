/* sent.h - your own recent messages by msg_id (their text and time), so that a receipt,
 * which names only the msg_id, can say which message was delivered or read. */
#ifndef CHAT_SENT_H
#define CHAT_SENT_H

#include <stddef.h>

struct chat_sent;

/* Remember at most `cap` messages; the oldest is forgotten first. NULL when out of
 * memory. */
struct chat_sent *chat_sent_new(size_t cap);
void chat_sent_free(struct chat_sent *s);

/* Remember the message `msg_id` with its text and ts (Unix ms). Nothing when out of
 * memory: its receipt then names the msg_id only. */
void chat_sent_add(struct chat_sent *s, const char *msg_id, const char *text, long long ts);

/* The text of the message `msg_id` (and its ts into *ts), or NULL if it is not known. */
const char *chat_sent_find(const struct chat_sent *s, const char *msg_id, long long *ts);

#endif
