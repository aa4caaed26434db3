/* json_emit.c - compact JSON text from a jansson value, written into a line buffer. */
#include "json_emit.h"

#include "utf8.h"

#include <stdint.h>
#include <string.h>

/* Bytes that must be escaped in a JSON string: control characters, '"' and '\'. */
static int needs_escape(unsigned char c)
{
    return c < 0x20 || c == '"' || c == '\\';
}

static int append_escape(struct line_buffer *b, unsigned char c)
{
    static const char hex[] = "0123456789ABCDEF";
    char esc[6] = {'\\', 0, 0, 0, 0, 0};
    size_t n = 2;
    switch (c) {
    case '"':
        esc[1] = '"';
        break;
    case '\\':
        esc[1] = '\\';
        break;
    case '\n':
        esc[1] = 'n';
        break;
    case '\r':
        esc[1] = 'r';
        break;
    case '\t':
        esc[1] = 't';
        break;
    case '\b':
        esc[1] = 'b';
        break;
    case '\f':
        esc[1] = 'f';
        break;
    default:
        memcpy(esc + 1, "u00", 3);
        esc[4] = hex[c >> 4];
        esc[5] = hex[c & 0xf];
        n = 6;
    }
    return line_buffer_append(b, esc, n);
}

int json_emit_string(struct line_buffer *b, const char *text, size_t n)
{
    if (!utf8_valid(text, n))
        return -1;
    size_t start = b->len;
    if (line_buffer_append(b, "\"", 1) < 0)
        goto fail;
    const unsigned char *s = (const unsigned char *)text;
    size_t run = 0; /* start of the bytes not yet copied */
    for (size_t i = 0; i < n; i++) {
        if (!needs_escape(s[i]))
            continue;
        if (line_buffer_append(b, text + run, i - run) < 0 || append_escape(b, s[i]) < 0)
            goto fail;
        run = i + 1;
    }
    if (line_buffer_append(b, text + run, n - run) < 0 || line_buffer_append(b, "\"", 1) < 0)
        goto fail;
    return 0;
fail:
    b->len = start;
    return -1;
}

static int append_integer(struct line_buffer *b, json_int_t value)
{
    char digits[24];
    size_t at = sizeof(digits);
    /* Work on the magnitude as unsigned, so the most negative value has one too. */
    unsigned long long magnitude =
        value < 0 ? 0ull - (unsigned long long)value : (unsigned long long)value;
    do {
        digits[--at] = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude);
    if (value < 0)
        digits[--at] = '-';
    return line_buffer_append(b, digits + at, sizeof(digits) - at);
}

/* Reals are rare on this wire; jansson formats them (shortest round-trip form). */
static int append_real(struct line_buffer *b, const json_t *v)
{
    char text[64];
    size_t n = json_dumpb(v, text, sizeof(text), JSON_ENCODE_ANY | JSON_COMPACT);
    if (n == 0 || n > sizeof(text))
        return -1;
    return line_buffer_append(b, text, n);
}

static int emit(struct line_buffer *b, const json_t *v, int depth);

static int emit_object(struct line_buffer *b, const json_t *v, int depth)
{
    if (line_buffer_append(b, "{", 1) < 0)
        return -1;
    const char *key;
    size_t key_len;
    json_t *value;
    int first = 1;
    /* jansson's iteration takes a non-const object; iterating changes nothing. */
    json_object_keylen_foreach((json_t *)(uintptr_t)v, key, key_len, value)
    {
        if ((!first && line_buffer_append(b, ",", 1) < 0) ||
            json_emit_string(b, key, key_len) < 0 || line_buffer_append(b, ":", 1) < 0 ||
            emit(b, value, depth + 1) < 0)
            return -1;
        first = 0;
    }
    return line_buffer_append(b, "}", 1);
}

static int emit_array(struct line_buffer *b, const json_t *v, int depth)
{
    if (line_buffer_append(b, "[", 1) < 0)
        return -1;
    for (size_t i = 0; i < json_array_size(v); i++) {
        if ((i > 0 && line_buffer_append(b, ",", 1) < 0) ||
            emit(b, json_array_get(v, i), depth + 1) < 0)
            return -1;
    }
    return line_buffer_append(b, "]", 1);
}

static int emit(struct line_buffer *b, const json_t *v, int depth)
{
    if (!v || depth > JSON_EMIT_MAX_DEPTH)
        return -1;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return emit_object(b, v, depth);
    case JSON_ARRAY:
        return emit_array(b, v, depth);
    case JSON_STRING:
        return json_emit_string(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return append_integer(b, json_integer_value(v));
    case JSON_REAL:
        return append_real(b, v);
    case JSON_TRUE:
        return line_buffer_append(b, "true", 4);
    case JSON_FALSE:
        return line_buffer_append(b, "false", 5);
    case JSON_NULL:
        return line_buffer_append(b, "null", 4);
    }
    return -1;
}

int json_emit(struct line_buffer *b, const json_t *v)
{
    size_t start = b->len;
    if (emit(b, v, 0) < 0) {
        b->len = start;
        return -1;
    }
    return 0;
}
