/* format.h - how chat shows things to a person: pushes (messages, presence, friends)
 * and the replies to commands, as single lines of text safe to print on a terminal.
 * Pure functions apart from reading the clock and the local time zone. */
#ifndef CHAT_FORMAT_H
#define CHAT_FORMAT_H

#include "commands.h"

#include <jansson.h>
#include <stddef.h>

/* The line for a push (a message with no id), without a trailing newline, e.g.
 * "[14:03:27] bob: hi", "[14:03:27] (offline) [friends] bob: hi" or
 * "[14:03:27] * bob is online". A push this client does not know, or a known one with
 * missing fields, is shown as "[14:03:27] * message from the server: {...}".
 * The caller frees the result; NULL only when out of memory. */
char *chat_format_push(const json_t *push);

/* The line for the reply to command `cmd` about `name` (the user or group the command
 * named; may be NULL), e.g. "sent to bob", "stored for bob (offline)" or
 * "error: user_not_exist: no user is called bob". *ok is set to 1 when the command did
 * what was asked (success, or offline for a private message), else 0. The caller frees
 * the result; NULL only when out of memory. */
char *chat_format_reply(enum chat_cmd cmd, const char *name, const json_t *reply, int *ok);

/* The line for a history entry (history_reply's "messages"): like a push, but your own
 * messages (user_from is `me`) show as "you -> PEER: text" (private, `peer` being the
 * conversation's other user) with their mark, " (delivered)" or " (read)", or as
 * "[group] you: text". The caller frees the result; NULL only when out of memory. */
char *chat_format_history_entry(const json_t *msg, const char *me, const char *peer);

/* The line for your own message that the server accepted (the reply to /msg or /g, with
 * its ts): "[14:03:27] you -> bob: text", with " (stored: bob is offline)" for an
 * offline reply, or "[14:03:27] [friends] you: text". Frees like the others. */
char *chat_format_sent(enum chat_cmd cmd, const char *name, const char *text, const json_t *reply);

/* The line for a receipt push (status delivered or read): "[now] * bob has received your
 * message of 14:03:27: text" when the message's text and ts are known (text not NULL),
 * else naming its msg_id; a read receipt adds " (and those before it)". */
char *chat_format_receipt(const json_t *push, const char *text, long long sent_ts);

/* A human explanation of a result word of the wire contract, for `name` (may be NULL).
 * Writes into buf (always NUL-terminated) and returns it. */
const char *chat_explain_result(const char *word, const char *name, char *buf, size_t cap);

/* A copy of `text` with every control character (C0, DEL, and the C1 range U+0080 to
 * U+009F) replaced by a visible escape such as \n, \t or \x1b, so a message can neither
 * move the cursor nor break the one-line-per-message layout. The caller frees it; NULL
 * only when out of memory. */
char *chat_sanitize(const char *text);

/* "[HH:MM:SS]" in local time for Unix milliseconds `ts_ms`, with the date in front
 * ("[2025-01-31 HH:MM:SS]") when that is not today. */
void chat_format_time(long long ts_ms, char *out, size_t cap);

#endif
