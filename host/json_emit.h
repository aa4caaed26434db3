/* json_emit.h - compact JSON text from a jansson value, written into a line buffer.
 *
 * jansson's own json_dumpb was a quarter of the server's instructions per relayed
 * message (it formats every object's address with snprintf to detect reference
 * cycles); this writes the same compact JSON, UTF-8 as it is, at a fraction of the
 * cost. jansson still owns the value model and all parsing. */
#ifndef CHATD_JSON_EMIT_H
#define CHATD_JSON_EMIT_H

#include "line_buffer.h"

#include <jansson.h>

/* Append v (any JSON value) as compact JSON. Returns 0, or -1 when v holds a string
 * that is not valid UTF-8, a real that is not finite, nests deeper than
 * JSON_EMIT_MAX_DEPTH (a reference cycle does), or memory runs out. On failure the
 * buffer's length is back where it was. */
int json_emit(struct line_buffer *b, const json_t *v);

/* Append text (n bytes) as a JSON string, quotes included. Same failures. */
int json_emit_string(struct line_buffer *b, const char *text, size_t n);

/* Append value in decimal. 0, or -1 out of memory. */
int json_emit_integer(struct line_buffer *b, json_int_t value);
/* Write value in decimal and a NUL to out; returns its length (snprintf costs several
 * hundred instructions). */
#define JSON_EMIT_DECIMAL_MAX 24
size_t json_emit_decimal(char out[JSON_EMIT_DECIMAL_MAX], json_int_t value);

#define JSON_EMIT_MAX_DEPTH 64

#endif
