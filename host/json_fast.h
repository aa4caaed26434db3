/* json_fast.h - a fast path for parsing the requests clients send most: one flat JSON
 * object whose values are strings, integers, true, false or null.
 *
 * jansson's parser reads a character at a time through callbacks and was four tenths
 * of the server's instructions per relayed message. This one parses that common shape
 * straight into the same jansson objects. It accepts only a strict subset of what
 * jansson accepts, and gives up (NULL) on anything else: nested values, reals, \u
 * escapes, duplicate keys, overflowing integers, bad UTF-8, any syntax error. The
 * caller then parses with jansson, which gives the precise answer, so a frame means
 * exactly the same either way. */
#ifndef CHATD_JSON_FAST_H
#define CHATD_JSON_FAST_H

#include <jansson.h>
#include <stddef.h>

/* The object in the len bytes at data (a complete frame, whitespace around it
 * allowed), or NULL when the frame is not of the shape described above. */
json_t *json_fast_parse_flat_object(const char *data, size_t len);

#endif
