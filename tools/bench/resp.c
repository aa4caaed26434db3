/* resp.c - the RESP3 line reader (see resp.h). */
#include "resp.h"
#include "bench.h"

#include <stdlib.h>
#include <string.h>

enum { RESP_KIND_OTHER, RESP_KIND_MESSAGE, RESP_KIND_SUBSCRIBE };

static int is_word(const char *s, size_t len, const char *word)
{
    return strlen(word) == len && memcmp(s, word, len) == 0;
}

/* An element of the innermost open aggregate is complete (or, at depth 0, a top-level
 * value): count it, and close every aggregate it completes. */
static enum resp_event element_done(struct resp_reader *r, enum resp_event ev)
{
    while (r->depth > 0) {
        if (r->depth == 1)
            r->index++;
        if (--r->left[r->depth - 1] > 0)
            return ev;
        r->depth--;
    }
    if (ev != RESP_NONE)
        return ev;
    return r->kind == RESP_KIND_SUBSCRIBE ? RESP_SUBSCRIBED : RESP_VALUE;
}

/* The line of a bulk string's data: a push's first element names its kind, and the
 * third of a "message" is its payload. */
static enum resp_event bulk_data(struct resp_reader *r, const char *line, size_t len)
{
    r->bulk = 0;
    enum resp_event ev = RESP_NONE;
    if (r->depth == 1 && r->index == 0)
        r->kind = is_word(line, len, "message")     ? RESP_KIND_MESSAGE
                  : is_word(line, len, "subscribe") ? RESP_KIND_SUBSCRIBE
                                                    : RESP_KIND_OTHER;
    else if (r->depth == 1 && r->index == 2 && r->kind == RESP_KIND_MESSAGE)
        ev = RESP_MESSAGE;
    return element_done(r, ev);
}

enum resp_event resp_feed(struct resp_reader *r, const char *line, size_t len, long long *value)
{
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (r->bulk)
        return bulk_data(r, line, len);
    if (len == 0)
        die("an empty RESP line");
    if (r->depth == 0)
        r->kind = RESP_KIND_OTHER;
    char *end;
    long long n = strtoll(line + 1, &end, 10);
    switch (line[0]) {
    case '$': /* bulk string: its data is the next line; $-1 is null */
    case '=': /* verbatim string */
        if (n < 0)
            return element_done(r, RESP_NONE);
        r->bulk = 1;
        return RESP_NONE;
    case '*':
    case '>':
    case '~':
    case '%': {
        long long count = line[0] == '%' ? 2 * n : n;
        if (count <= 0)
            return element_done(r, RESP_NONE);
        if (r->depth == RESP_MAX_DEPTH)
            die("a RESP value nested deeper than %d", RESP_MAX_DEPTH);
        if (r->depth == 0)
            r->index = 0;
        r->left[r->depth++] = (int)count;
        return RESP_NONE;
    }
    case ':':
        if (r->depth == 0) {
            *value = n;
            return RESP_INTEGER;
        }
        return element_done(r, RESP_NONE);
    case '-':
        if (r->depth == 0)
            return RESP_ERROR;
        return element_done(r, RESP_NONE);
    case '+':
    case '_':
    case '#':
    case ',':
    case '(':
        return element_done(r, RESP_NONE);
    default:
        die("not RESP3: %.*s", (int)len, line);
    }
}
