/* reply_line.c - the line that answers a request, written straight from its parts. */
#include "reply_line.h"

#include <stdio.h>
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

/* Result words and field names are nearly always plain (`success`, `user_not_exist`):
 * those are copied as they are; anything else goes through jansson, which escapes and
 * checks UTF-8. */
static int append_string(struct line_buffer *b, const char *word)
{
    size_t n = 0;
    for (; word[n]; n++) {
        unsigned char c = (unsigned char)word[n];
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
            break;
    }
    if (word[n] == '\0') {
        return line_buffer_append(b, "\"", 1) || line_buffer_append(b, word, n) ||
                       line_buffer_append(b, "\"", 1)
                   ? -1
                   : 0;
    }
    json_t *s = json_string(word);
    int rc = s ? line_buffer_append_json(b, s) : -1;
    json_decref(s);
    return rc;
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
            line_buffer_append(b, ":", 1) || line_buffer_append_json(b, value))
            return -1;
    }
    return 0;
}

static int append_id(struct line_buffer *b, const json_t *id)
{
    if (json_is_integer(id)) {
        char text[32];
        int n =
            snprintf(text, sizeof(text), ",\"id\":%" JSON_INTEGER_FORMAT, json_integer_value(id));
        return line_buffer_append(b, text, (size_t)n);
    }
    return line_buffer_append(b, ",\"id\":", 6) || line_buffer_append_json(b, id) ? -1 : 0;
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
