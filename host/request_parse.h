/* request_parse.h - one frame's bytes to a JSON value, or to the exact answer those bytes
 * get (request_parse.c). Touches no session or server state, so it runs on the loop
 * thread for sessions without I/O threads and on an I/O thread for theirs
 * (docs/architecture.md, "I/O threads"); either way dispatch_parsed answers it. */
#ifndef CHATD_HOST_REQUEST_PARSE_H
#define CHATD_HOST_REQUEST_PARSE_H

#include <jansson.h>
#include <stddef.h>

struct parsed_frame {
    json_t *body;               /* the value (owned), or NULL */
    const char *unsupported;    /* well-formed JSON chatd cannot represent: why (static) */
    const char *bad_json;       /* not JSON: jansson's text for the client (the session ends) */
    int bad_position, bad_code; /* for the log: where, never what */
    size_t len;                 /* the frame's bytes */
};

/* Parse the len bytes at data (one complete frame): the flat-object fast path, then
 * jansson with its depth limit and duplicate-key check. With a bad frame, out->bad_json
 * points into *error, which must live as long as out. */
void request_parse(const char *data, size_t len, struct parsed_frame *out, json_error_t *error);

#endif
