/* line_buffer.h - a growable byte buffer in which one outgoing line is built. The
 * server keeps one and reuses it for every reply and push, so formatting a line
 * allocates nothing once the buffer has grown to the largest line seen. */
#ifndef CHATD_LINE_BUFFER_H
#define CHATD_LINE_BUFFER_H

#include <stddef.h>
#include <string.h>

struct line_buffer {
    char *data;
    size_t len; /* bytes in use */
    size_t cap; /* bytes allocated */
};

/* Allocate cap bytes up front. Returns 0, or -1 when out of memory. */
int line_buffer_init(struct line_buffer *b, size_t cap);
void line_buffer_free(struct line_buffer *b);

/* Make room for `more` bytes past len. Returns 0, or -1 when out of memory. */
int line_buffer_grow(struct line_buffer *b, size_t more);

/* Append n bytes. Returns 0, or -1 when out of memory (the buffer is unchanged).
 * Inline: a line is built from many small pieces. */
static inline int line_buffer_append(struct line_buffer *b, const void *bytes, size_t n)
{
    if (b->cap - b->len < n && line_buffer_grow(b, n) < 0)
        return -1;
    memcpy(b->data + b->len, bytes, n);
    b->len += n;
    return 0;
}

#endif
