/* json_emit.c - compact JSON text from a jansson value, written into a line buffer. */
#include "json_emit.h"

#include "utf8.h"

#include <stdint.h>
#include <string.h>

/* Whether any of the 8 bytes in w needs a look: a control character, '"', '\\' or a
 * byte of a multi-byte UTF-8 sequence. (The usual zero-byte test, three times.) */
static int word_needs_look(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t quote = w ^ (ones * '"'), backslash = w ^ (ones * '\\');
    uint64_t control = (w - ones * 0x20) & ~w;
    uint64_t is_quote = (quote - ones) & ~quote, is_backslash = (backslash - ones) & ~backslash;
    return ((w | control | is_quote | is_backslash) & highs) != 0;
}

/* Write the escape for c (a control character, '"' or '\\') at out; returns its length. */
static size_t write_escape(char *out, unsigned char c)
{
    static const char hex[] = "0123456789ABCDEF";
    out[0] = '\\';
    switch (c) {
    case '"':
        out[1] = '"';
        return 2;
    case '\\':
        out[1] = '\\';
        return 2;
    case '\n':
        out[1] = 'n';
        return 2;
    case '\r':
        out[1] = 'r';
        return 2;
    case '\t':
        out[1] = 't';
        return 2;
    case '\b':
        out[1] = 'b';
        return 2;
    case '\f':
        out[1] = 'f';
        return 2;
    default:
        memcpy(out + 1, "u00", 3);
        out[4] = hex[c >> 4];
        out[5] = hex[c & 0xf];
        return 6;
    }
}

int json_emit_string(struct line_buffer *b, const char *text, size_t n)
{
    size_t start = b->len;
    /* Escaping can grow a byte to six; room for all of it at once, then plain stores
     * (the call only when the room is not there: most strings are a few bytes). */
    if (n > ((size_t)-1) / 8 || (b->cap - b->len < 6 * n + 2 && line_buffer_grow(b, 6 * n + 2) < 0))
        return -1;
    const unsigned char *s = (const unsigned char *)text;
    char *out = b->data + b->len;
    *out++ = '"';
    size_t i = 0;
    while (i < n) {
        if (n - i >= 8) {
            uint64_t word;
            memcpy(&word, s + i, sizeof(word));
            if (!word_needs_look(word)) {
                memcpy(out, s + i, 8);
                out += 8;
                i += 8;
                continue;
            }
        }
        unsigned char c = s[i];
        if (c >= 0x80) {
            size_t len = utf8_sequence_length(s + i, n - i);
            if (len == 0) {
                b->len = start;
                return -1;
            }
            memcpy(out, s + i, len);
            out += len;
            i += len;
        } else if (c < 0x20 || c == '"' || c == '\\') {
            out += write_escape(out, c);
            i++;
        } else {
            *out++ = (char)c;
            i++;
        }
    }
    *out++ = '"';
    b->len = (size_t)(out - b->data);
    return 0;
}

size_t json_emit_decimal(char out[JSON_EMIT_DECIMAL_MAX], json_int_t value)
{
    char digits[JSON_EMIT_DECIMAL_MAX];
    size_t at = sizeof(digits);
    /* Work on the magnitude as unsigned, so the most negative value has one too. */
    unsigned long long magnitude =
        value < 0 ? 0ull - (unsigned long long)value : (unsigned long long)value;
    digits[--at] = '\0';
    do {
        digits[--at] = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude);
    if (value < 0)
        digits[--at] = '-';
    memcpy(out, digits + at, sizeof(digits) - at);
    return sizeof(digits) - at - 1;
}

int json_emit_integer(struct line_buffer *b, json_int_t value)
{
    char digits[JSON_EMIT_DECIMAL_MAX];
    return line_buffer_append(b, digits, json_emit_decimal(digits, value));
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
        return json_emit_integer(b, json_integer_value(v));
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
