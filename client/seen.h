/* seen.h - the msg_ids of recently shown messages, so a message the server delivers
 * twice (its delivery is at least once) is shown once. */
#ifndef CHAT_SEEN_H
#define CHAT_SEEN_H

#include <jansson.h>
#include <stddef.h>

struct chat_seen;

/* Remember at most `cap` ids; the oldest is forgotten first. NULL when out of memory. */
struct chat_seen *chat_seen_new(size_t cap);
void chat_seen_free(struct chat_seen *s);

/* Whether the push's msg_id (a string or an integer) was seen already; remembers it if
 * not. A push without a msg_id is never a repeat. */
int chat_seen_repeat(struct chat_seen *s, const json_t *push);

#endif
