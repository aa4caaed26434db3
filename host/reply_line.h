/* reply_line.h - the line that answers a request, written straight from its parts:
 * {"cmd":"<command>_reply","result":"<word>",<the plugin's fields>,"id":<id>}
 * Building a JSON object only to serialise it at once costs a dozen allocations per
 * reply; this writes the same bytes with none. */
#ifndef CHATD_REPLY_LINE_H
#define CHATD_REPLY_LINE_H

#include "line_buffer.h"

#include <jansson.h>

/* The fixed start of every reply to one command: `{"cmd":"<name>_reply","result":`.
 * name must be a valid command name (a-z, 0-9, _). Returns a malloc'ed string, or NULL
 * when out of memory. */
char *reply_line_prefix(const char *name);

/* Write the whole reply line, newline included, into b (emptied first). result is the
 * result word; fields (may be NULL) the plugin's extra fields, whose "cmd", "result"
 * and "id" keys are ignored (the host sets those); id the request's id or NULL.
 * Returns 0, or -1 when result is not valid UTF-8, a field cannot be serialised or
 * memory runs out. */
int reply_line_build(struct line_buffer *b, const char *prefix, const char *result, json_t *fields,
                     const json_t *id);

#endif
