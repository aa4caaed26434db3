/* line_buffer.h - a growable byte buffer in which one outgoing line is built. The
 * server keeps one and reuses it for every reply and push, so formatting a line
 * allocates nothing once the buffer has grown to the largest line seen. */
#ifndef CHATD_LINE_BUFFER_H
#define CHATD_LINE_BUFFER_H

#include <stddef.h>

struct line_buffer {
    char *data;
    size_t len; /* bytes in use */
    size_t cap; /* bytes allocated */
};

/* Allocate cap bytes up front. Returns 0, or -1 when out of memory. */
int line_buffer_init(struct line_buffer *b, size_t cap);
void line_buffer_free(struct line_buffer *b);

/* Append n bytes. Returns 0, or -1 when out of memory (the buffer is unchanged). */
int line_buffer_append(struct line_buffer *b, const void *bytes, size_t n);

#endif
