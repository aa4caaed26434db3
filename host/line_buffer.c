/* line_buffer.c - a growable byte buffer in which one outgoing line is built. */
#include "line_buffer.h"

#include <stdlib.h>

int line_buffer_init(struct line_buffer *b, size_t cap)
{
    b->len = 0;
    b->cap = cap;
    b->data = malloc(cap);
    return b->data ? 0 : -1;
}

void line_buffer_free(struct line_buffer *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int line_buffer_grow(struct line_buffer *b, size_t more)
{
    if (b->cap - b->len >= more)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < more) {
        if (cap > ((size_t)-1) / 2)
            return -1;
        cap *= 2;
    }
    char *grown = realloc(b->data, cap);
    if (!grown)
        return -1;
    b->data = grown;
    b->cap = cap;
    return 0;
}
