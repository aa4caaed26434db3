/* proto.c - finding fields in reply lines and the bench's message text (see proto.h). */
#include "proto.h"

#include <string.h>

static const char *find(const char *hay, size_t len, const char *needle, size_t nlen)
{
    if (nlen == 0 || len < nlen)
        return NULL;
    const char *end = hay + len - nlen + 1;
    for (const char *p = hay; p < end; p++) {
        p = memchr(p, needle[0], (size_t)(end - p));
        if (!p)
            return NULL;
        if (memcmp(p, needle, nlen) == 0)
            return p;
    }
    return NULL;
}

const char *proto_cmd(const char *line, size_t len, size_t *n)
{
    static const char key[] = "\"cmd\":\"";
    const size_t klen = sizeof(key) - 1;
    const char *v;
    /* chatd puts cmd first; look there before searching. */
    if (len > klen + 1 && line[0] == '{' && memcmp(line + 1, key, klen) == 0)
        v = line + 1 + klen;
    else if ((v = find(line, len, key, klen)) != NULL)
        v += klen;
    else
        return NULL;
    const char *q = memchr(v, '"', (size_t)(line + len - v));
    if (!q)
        return NULL;
    *n = (size_t)(q - v);
    return v;
}

int proto_cmd_is(const char *cmd, size_t n, const char *want)
{
    return cmd && strlen(want) == n && memcmp(cmd, want, n) == 0;
}

int proto_result_is(const char *line, size_t len, const char *word)
{
    char needle[64];
    size_t wl = strlen(word);
    if (wl + 12 > sizeof(needle))
        return 0;
    memcpy(needle, "\"result\":\"", 10);
    memcpy(needle + 10, word, wl);
    needle[10 + wl] = '"';
    return find(line, len, needle, wl + 11) != NULL;
}

int proto_has(const char *line, size_t len, const char *needle)
{
    return find(line, len, needle, strlen(needle)) != NULL;
}

static const char *get_u64(const char *p, const char *end, uint64_t *out)
{
    uint64_t v = 0;
    const char *start = p;
    while (p < end && *p >= '0' && *p <= '9' && p - start < 20)
        v = v * 10 + (uint64_t)(*p++ - '0');
    if (p == start)
        return NULL;
    *out = v;
    return p;
}

const char *proto_text(const char *line, size_t len, size_t *n)
{
    static const char key[] = "\"text\":\"";
    const char *p = find(line, len, key, sizeof(key) - 1);
    if (!p)
        return NULL;
    p += sizeof(key) - 1;
    *n = (size_t)(line + len - p);
    return p;
}

int proto_parse_msg(const char *text, size_t len, struct proto_msg *m)
{
    const char *p = text, *end = text + len;
    uint64_t from, seq, sent;
    if (len < 2 || p[0] != 'b' || p[1] != ' ')
        return -1;
    p += 2;
    if (!(p = get_u64(p, end, &from)) || p >= end || *p++ != ' ' || !(p = get_u64(p, end, &seq)) ||
        p >= end || *p++ != ' ' || !(p = get_u64(p, end, &sent)))
        return -1;
    if (from > 0x7fffffff || sent > INT64_MAX)
        return -1;
    m->from = (int)from;
    m->seq = seq;
    m->sent_ns = (int64_t)sent;
    return 0;
}

size_t proto_put_u64(char *out, uint64_t n)
{
    char tmp[20];
    size_t i = 0;
    do {
        tmp[i++] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    for (size_t j = 0; j < i; j++)
        out[j] = tmp[i - 1 - j];
    return i;
}

size_t proto_put_msg(char *out, int from, uint64_t seq, int64_t sent_ns, int pad)
{
    size_t n = 0;
    out[n++] = 'b';
    out[n++] = ' ';
    n += proto_put_u64(out + n, (uint64_t)from);
    out[n++] = ' ';
    n += proto_put_u64(out + n, seq);
    out[n++] = ' ';
    n += proto_put_u64(out + n, (uint64_t)sent_ns);
    if (pad > 0 && (size_t)pad > n + 1) {
        out[n++] = ' ';
        memset(out + n, 'x', (size_t)pad - n);
        n = (size_t)pad;
    }
    return n;
}
