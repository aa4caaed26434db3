/* framer.c - a byte-at-a-time state machine that finds the end of each JSON value in a
 * stream (see framer.h for the contract). */
#include "framer.h"

#include <string.h>

enum framer_state {
    BETWEEN,         /* skipping whitespace before a value */
    IN_CONTAINER,    /* inside an object or array, outside strings */
    IN_INNER_STRING, /* inside a string nested in a container */
    IN_INNER_ESCAPE, /* just after a backslash in a nested string */
    IN_TOP_STRING,   /* a string that is itself the whole value */
    IN_TOP_ESCAPE,   /* just after a backslash in such a string */
    IN_SCALAR,       /* a number or literal that is the whole value */
};

void framer_init(struct framer *framer, size_t max_frame)
{
    memset(framer, 0, sizeof(*framer));
    framer->max_frame = max_frame;
    framer->state = BETWEEN;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Characters that may continue a bare number or literal (true, false, null, 1e-5). */
static int is_scalar_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '+' || c == '.';
}

static enum framer_status ready(struct framer *framer, const char *buf, size_t end,
                                struct frame *frame)
{
    frame->data = buf + framer->start;
    frame->len = end - framer->start;
    frame->consumed = end;
    size_t max_frame = framer->max_frame;
    framer_init(framer, max_frame);
    return FRAMER_READY;
}

enum framer_status framer_next(struct framer *framer, const char *buf, size_t len,
                               struct frame *frame)
{
    frame->data = NULL;
    frame->len = 0;
    frame->consumed = 0;

    size_t i = framer->pos;
    const char *quote = NULL; /* the next '"' at or after a string position, or buf + len */
    /* Only bytes up to the limit are ever examined, so a frame that is too large is
     * reported as soon as its first excess byte arrives. */
    size_t limit = framer->start + framer->max_frame;

    for (; i < len; i++) {
        char c = buf[i];
        /* A byte at or past the limit that belongs to the value makes it too large; the
         * byte that ends a bare scalar is not part of it. */
        if (i >= limit && framer->state != BETWEEN &&
            !(framer->state == IN_SCALAR && !is_scalar_char(c)))
            return FRAMER_TOO_LARGE;
        switch (framer->state) {
        case BETWEEN:
            if (is_space(c))
                continue;
            framer->start = i;
            limit = i + framer->max_frame;
            if (c == '{' || c == '[') {
                framer->state = IN_CONTAINER;
                framer->depth = 1;
            } else if (c == '"') {
                framer->state = IN_TOP_STRING;
            } else if (is_scalar_char(c)) {
                framer->state = IN_SCALAR;
            } else {
                return FRAMER_BAD;
            }
            break;
        case IN_CONTAINER:
            if (c == '"') {
                framer->state = IN_INNER_STRING;
            } else if (c == '{' || c == '[') {
                framer->depth++;
            } else if (c == '}' || c == ']') {
                if (--framer->depth == 0)
                    return ready(framer, buf, i + 1, frame);
            }
            break;
        case IN_INNER_STRING: {
            /* Most bytes of a request are string content: jump to the next backslash or
             * quote with memchr. The quote found is remembered until passed, so a string
             * dense with escapes is still scanned once, not once per escape. */
            const char *here = buf + i, *end = buf + len;
            if (!quote || quote < here) {
                quote = memchr(here, '"', (size_t)(end - here));
                if (!quote)
                    quote = end;
            }
            const char *stop = memchr(here, '\\', (size_t)(quote - here));
            if (!stop)
                stop = quote;
            if (stop == end) {
                i = len - 1;
                break;
            }
            i = (size_t)(stop - buf);
            if (i >= limit)
                return FRAMER_TOO_LARGE;
            framer->state = *stop == '"' ? IN_CONTAINER : IN_INNER_ESCAPE;
            break;
        }
        case IN_INNER_ESCAPE:
            framer->state = IN_INNER_STRING;
            break;
        case IN_TOP_STRING:
            if (c == '\\')
                framer->state = IN_TOP_ESCAPE;
            else if (c == '"')
                return ready(framer, buf, i + 1, frame);
            break;
        case IN_TOP_ESCAPE:
            framer->state = IN_TOP_STRING;
            break;
        case IN_SCALAR:
            if (!is_scalar_char(c))
                return ready(framer, buf, i, frame);
            break;
        default:
            return FRAMER_BAD;
        }
    }

    if (len > limit && framer->state != BETWEEN)
        return FRAMER_TOO_LARGE;
    if (framer->state == BETWEEN) {
        /* Only whitespace so far: let the caller drop it. */
        frame->consumed = len;
        framer->pos = 0;
        framer->start = 0;
    } else {
        frame->consumed = framer->start;
        framer->pos = len - framer->start;
        framer->start = 0;
    }
    return FRAMER_NEED_MORE;
}
