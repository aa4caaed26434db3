/* reply_line.c - the line that answers a request, written straight from its parts. */
#include "reply_line.h"

#include "json_emit.h"

#include <stdlib.h>
#include <string.h>

char *reply_line_prefix(const char *name)
{
    static const char head[] = "{\"cmd\":\"", tail[] = "_reply\",\"result\":";
    size_t n = strlen(name);
    char *prefix = malloc(sizeof(head) - 1 + n + sizeof(tail));
    if (!prefix)
        return NULL;
    memcpy(prefix, head, sizeof(head) - 1);
    memcpy(prefix + sizeof(head) - 1, name, n);
    memcpy(prefix + sizeof(head) - 1 + n, tail, sizeof(tail));
    return prefix;
}

static int append_string(struct line_buffer *b, const char *text)
{
    return json_emit_string(b, text, strlen(text));
}

static int is_host_key(const char *key)
{
    return strcmp(key, "cmd") == 0 || strcmp(key, "result") == 0 || strcmp(key, "id") == 0;
}

/* Each field as `,"key":value`. */
static int append_fields(struct line_buffer *b, json_t *fields)
{
    const char *key;
    json_t *value;
    json_object_foreach(fields, key, value)
    {
        if (is_host_key(key))
            continue;
        if (line_buffer_append(b, ",", 1) || append_string(b, key) ||
            line_buffer_append(b, ":", 1) || json_emit(b, value))
            return -1;
    }
    return 0;
}

static int append_id(struct line_buffer *b, const json_t *id)
{
    return line_buffer_append(b, ",\"id\":", 6) || json_emit(b, id) ? -1 : 0;
}

int reply_line_build(struct line_buffer *b, const char *prefix, const char *result, json_t *fields,
                     const json_t *id)
{
    b->len = 0;
    if (line_buffer_append(b, prefix, strlen(prefix)) < 0 || append_string(b, result) < 0)
        return -1;
    if (fields && append_fields(b, fields) < 0)
        return -1;
    if (id && append_id(b, id) < 0)
        return -1;
    return line_buffer_append(b, "}\n", 2);
}
