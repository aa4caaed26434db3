/* resp.h - a line-at-a-time reader of RESP3, what Redis sends after HELLO 3: it follows
 * the nesting of aggregates (arrays, maps, sets, pushes) and bulk strings, and says when
 * a value at the top is complete and what it was to the bench: an integer reply (to
 * PUBLISH), a pub/sub message (its payload line), the confirmation of a SUBSCRIBE, an
 * error, or anything else (HELLO's map). Bulk strings must not hold a line break,
 * which is true of everything the bench sends and subscribes to. */
#ifndef CHATD_BENCH_RESP_H
#define CHATD_BENCH_RESP_H

#include <stddef.h>

#define RESP_MAX_DEPTH 4

struct resp_reader {
    int depth;                /* aggregates open */
    int left[RESP_MAX_DEPTH]; /* elements still to come in each */
    int index;                /* of the element being read in the top-level value */
    int bulk;                 /* the next line is a bulk string's data */
    int kind;                 /* of the top-level push: RESP_KIND_* */
};

enum resp_event {
    RESP_NONE,       /* the value goes on */
    RESP_INTEGER,    /* a top-level integer */
    RESP_MESSAGE,    /* the payload of a "message" push (the line just fed) */
    RESP_SUBSCRIBED, /* a "subscribe" push is complete */
    RESP_ERROR,      /* a top-level error (the line just fed) */
    RESP_VALUE,      /* another top-level value is complete */
};

/* Feed one line (without its '\n'; a '\r' before it is ignored). *value is set to the
 * integer of RESP_INTEGER. Exits on what is not RESP3 or is nested too deep. */
enum resp_event resp_feed(struct resp_reader *r, const char *line, size_t len, long long *value);

#endif
