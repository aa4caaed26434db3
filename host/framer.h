/* framer.h - splits a byte stream into JSON values without parsing them.
 *
 * Clients send JSON values back to back, with or without whitespace between them, and
 * a value may arrive split across reads at any byte. The framer finds where each value
 * ends by tracking nesting, strings and escapes. It looks at every byte once, keeping
 * its position between calls, so the cost is linear in the bytes received however
 * slowly a large value trickles in. Validation (UTF-8, grammar) is left to the JSON
 * parser, which then sees exactly one complete value. */
#ifndef CHATD_HOST_FRAMER_H
#define CHATD_HOST_FRAMER_H

#include <stddef.h>
#include <stdint.h>

enum framer_status {
    FRAMER_NEED_MORE, /* no complete value yet: append bytes and call again */
    FRAMER_READY,     /* a complete value is in `frame` */
    FRAMER_TOO_LARGE, /* the value passes the size limit */
    FRAMER_BAD,       /* a byte that cannot start a JSON value */
};

struct framer {
    size_t max_frame; /* largest accepted value in bytes */
    size_t pos;       /* bytes of the pending input already scanned */
    size_t start;     /* where the pending value starts (after whitespace) */
    size_t depth;     /* open { and [ */
    uint8_t state;
};

struct frame {
    const char *data; /* FRAMER_READY: the value, inside the caller's buffer */
    size_t len;
    size_t consumed; /* bytes the caller must drop from the front of its buffer */
};

void framer_init(struct framer *framer, size_t max_frame);

/* Scan `buf`, the caller's pending input: the same bytes as last time (minus what was
 * consumed) plus any appended since. Always sets frame->consumed: the caller drops that
 * many bytes from the front of its buffer before the next call (whitespace between
 * values, or the whole value once READY). After READY the framer is ready for the next
 * value; after TOO_LARGE or BAD the stream cannot be resynchronised. */
enum framer_status framer_next(struct framer *framer, const char *buf, size_t len,
                               struct frame *frame);

#endif
