/* request_parse.c - one frame's bytes to a JSON value or a refusal (see request_parse.h). */
#include "request_parse.h"

#include "json_fast.h"

void request_parse(const char *data, size_t len, struct parsed_frame *out, json_error_t *error)
{
    out->body = json_fast_parse_flat_object(data, len);
    out->unsupported = NULL;
    out->bad_json = NULL;
    out->bad_position = 0;
    out->bad_code = 0;
    out->len = len;
    if (out->body)
        return;
    out->body = json_loadb(data, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, error);
    if (out->body)
        return;
    /* Well-formed JSON that this server cannot represent is a bad request, and the
     * stream is still in step; only bytes that are not JSON end the connection. */
    switch (json_error_code(error)) {
    case json_error_null_character:
    case json_error_null_byte_in_key:
        out->unsupported = "strings may not contain \\u0000";
        return;
    case json_error_numeric_overflow:
        out->unsupported = "a number is out of range (integers are 64-bit)";
        return;
    case json_error_duplicate_key:
        out->unsupported = "an object has the same key twice";
        return;
    case json_error_stack_overflow:
        out->unsupported = "values are nested too deeply";
        return;
    default:
        break;
    }
    out->bad_json = error->text;
    out->bad_position = error->position;
    out->bad_code = (int)json_error_code(error);
}
