/* json_fast.c - a fast path for parsing flat JSON objects (see json_fast.h). */
#include "json_fast.h"

#include "utf8.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Strings longer than this take jansson's path (they are rare, and the decoded copy of
 * an escaped string is built on the stack). */
#define FAST_STRING_MAX 4096

struct cursor {
    const char *p, *end;
};

static void skip_space(struct cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

/* Read a string whose opening quote is at c->p. Its decoded bytes are either the frame
 * itself (no escapes: *out points into it) or copied into scratch. Returns the length,
 * or -1 to give up. */
static ptrdiff_t read_string(struct cursor *c, char *scratch, const char **out)
{
    const char *start = ++c->p;
    const char *p = start;
    while (p < c->end && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
        p++;
    if (p >= c->end || (unsigned char)*p < 0x20)
        return -1;
    size_t n = (size_t)(p - start);
    if (*p == '"') {
        if (n > FAST_STRING_MAX || !utf8_valid(start, n))
            return -1;
        c->p = p + 1;
        *out = start;
        return (ptrdiff_t)n;
    }
    /* Escapes: decode the simple ones into scratch; \u is left to jansson. */
    if (n > FAST_STRING_MAX)
        return -1;
    memcpy(scratch, start, n);
    while (p < c->end && *p != '"') {
        unsigned char ch = (unsigned char)*p;
        if (ch < 0x20 || n >= FAST_STRING_MAX)
            return -1;
        if (ch != '\\') {
            scratch[n++] = (char)ch;
            p++;
            continue;
        }
        if (++p >= c->end)
            return -1;
        switch (*p) {
        case '"':
        case '\\':
        case '/':
            scratch[n++] = *p;
            break;
        case 'b':
            scratch[n++] = '\b';
            break;
        case 'f':
            scratch[n++] = '\f';
            break;
        case 'n':
            scratch[n++] = '\n';
            break;
        case 'r':
            scratch[n++] = '\r';
            break;
        case 't':
            scratch[n++] = '\t';
            break;
        default:
            return -1;
        }
        p++;
    }
    if (p >= c->end || !utf8_valid(scratch, n))
        return -1;
    c->p = p + 1;
    *out = scratch;
    return (ptrdiff_t)n;
}

/* An integer as JSON writes it: -?(0|[1-9][0-9]*), not followed by a fraction or an
 * exponent, and within 64 bits. */
static json_t *read_integer(struct cursor *c)
{
    const char *p = c->p;
    int negative = 0;
    if (p < c->end && *p == '-') {
        negative = 1;
        p++;
    }
    if (p >= c->end || *p < '0' || *p > '9')
        return NULL;
    if (*p == '0' && p + 1 < c->end && p[1] >= '0' && p[1] <= '9')
        return NULL; /* a leading zero */
    uint64_t magnitude = 0;
    const char *digits = p;
    while (p < c->end && *p >= '0' && *p <= '9') {
        if (p - digits >= 19)
            return NULL; /* 20 digits or more: leave range checks to jansson */
        magnitude = magnitude * 10 + (uint64_t)(*p - '0');
        p++;
    }
    if (p < c->end && (*p == '.' || *p == 'e' || *p == 'E'))
        return NULL;
    if (magnitude > (uint64_t)INT64_MAX + (uint64_t)negative)
        return NULL;
    c->p = p;
    int64_t value = negative ? (int64_t)(0 - magnitude) : (int64_t)magnitude;
    return json_integer(value);
}

static json_t *read_literal(struct cursor *c, const char *word, size_t n, json_t *value)
{
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
        return NULL;
    c->p += n;
    return value;
}

static json_t *read_value(struct cursor *c, char *scratch)
{
    if (c->p >= c->end)
        return NULL;
    switch (*c->p) {
    case '"': {
        const char *text;
        ptrdiff_t n = read_string(c, scratch, &text);
        return n < 0 ? NULL : json_stringn_nocheck(text, (size_t)n);
    }
    case 't':
        return read_literal(c, "true", 4, json_true());
    case 'f':
        return read_literal(c, "false", 5, json_false());
    case 'n':
        return read_literal(c, "null", 4, json_null());
    default:
        return read_integer(c);
    }
}

/* Parse `"key": value` pairs up to and including the closing brace. */
static int read_members(struct cursor *c, json_t *obj)
{
    char key_scratch[FAST_STRING_MAX], value_scratch[FAST_STRING_MAX];
    skip_space(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        return 0;
    }
    for (;;) {
        if (c->p >= c->end || *c->p != '"')
            return -1;
        const char *key;
        ptrdiff_t key_len = read_string(c, key_scratch, &key);
        if (key_len < 0 || json_object_getn(obj, key, (size_t)key_len))
            return -1; /* a bad key, or a duplicate: jansson says which */
        skip_space(c);
        if (c->p >= c->end || *c->p != ':')
            return -1;
        c->p++;
        skip_space(c);
        json_t *value = read_value(c, value_scratch);
        if (!value || json_object_setn_new_nocheck(obj, key, (size_t)key_len, value) < 0)
            return -1;
        skip_space(c);
        if (c->p >= c->end)
            return -1;
        if (*c->p == '}') {
            c->p++;
            return 0;
        }
        if (*c->p != ',')
            return -1;
        c->p++;
        skip_space(c);
    }
}

json_t *json_fast_parse_flat_object(const char *data, size_t len)
{
    struct cursor c = {data, data + len};
    skip_space(&c);
    if (c.p >= c.end || *c.p != '{')
        return NULL;
    c.p++;
    json_t *obj = json_object();
    if (!obj)
        return NULL;
    if (read_members(&c, obj) < 0) {
        json_decref(obj);
        return NULL;
    }
    skip_space(&c);
    if (c.p != c.end) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}
