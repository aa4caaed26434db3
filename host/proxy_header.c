/* proxy_header.c - parsing the PROXY protocol header, versions 1 (a text line) and 2
 * (binary), as HAProxy's proxy-protocol.txt describes them (proxy_header.h). */
#include "proxy_header.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

/* v1: "PROXY TCP4 <src> <dst> <sport> <dport>\r\n", at most 107 bytes with the CRLF. */
#define V1_MAX 107
static const char v1_prefix[] = "PROXY ";

/* v2: the signature, version and command, family and transport, then the length of
 * what follows (addresses, then TLVs), big-endian. */
static const unsigned char v2_signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                               0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
#define V2_FIXED      16
#define V2_CMD_LOCAL  0x0
#define V2_CMD_PROXY  0x1
#define V2_AF_UNSPEC  0x0
#define V2_AF_INET    0x1
#define V2_AF_INET6   0x2
#define V2_AF_UNIX    0x3
#define V2_INET_LEN   12  /* two IPv4 addresses, two ports */
#define V2_INET6_LEN  36  /* two IPv6 addresses, two ports */
#define V2_UNIX_LEN   216 /* two socket paths */
#define V2_TLV_HEADER 3   /* type, length (big-endian) */

static enum proxy_header_status bad(const char **why, const char *reason)
{
    *why = reason;
    return PROXY_HEADER_BAD;
}

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* A port of the v1 line: 0 to 65535 in decimal, without leading zeros. */
static int v1_port(const char *text, size_t n, uint16_t *out)
{
    if (n == 0 || n > 5 || (n > 1 && text[0] == '0'))
        return -1;
    unsigned value = 0;
    for (size_t i = 0; i < n; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        value = value * 10 + (unsigned)(text[i] - '0');
    }
    if (value > 65535)
        return -1;
    *out = (uint16_t)value;
    return 0;
}

/* The next field of the line, up to a single space (or the end for the last one). */
static int v1_field(const char **at, const char *end, int last, const char **field, size_t *n)
{
    const char *stop = memchr(*at, ' ', (size_t)(end - *at));
    if (last ? stop != NULL : stop == NULL)
        return -1;
    if (!stop)
        stop = end;
    *field = *at;
    *n = (size_t)(stop - *at);
    *at = stop < end ? stop + 1 : end;
    return *n > 0 ? 0 : -1;
}

/* One address field as family `af` into `addr` (a struct in_addr or in6_addr). */
static int v1_address(const char *text, size_t n, int af, void *addr)
{
    char copy[INET6_ADDRSTRLEN];
    if (n >= sizeof(copy))
        return -1;
    memcpy(copy, text, n);
    copy[n] = '\0';
    return inet_pton(af, copy, addr) == 1 ? 0 : -1;
}

/* The line line[0..n) without its CRLF, after "PROXY ". */
static enum proxy_header_status v1_line(const char *line, size_t n, struct proxy_header *out,
                                        const char **why)
{
    const char *at = line, *end = line + n;
    const char *field;
    size_t len;
    if (v1_field(&at, end, 0, &field, &len) < 0) {
        if (n >= 7 && memcmp(line, "UNKNOWN", 7) == 0 && (n == 7 || line[7] == ' '))
            return PROXY_HEADER_DONE; /* the rest of the line is to be ignored */
        return bad(why, "PROXY v1: no protocol (TCP4, TCP6 or UNKNOWN)");
    }
    int af;
    if (len == 4 && memcmp(field, "TCP4", 4) == 0)
        af = AF_INET;
    else if (len == 4 && memcmp(field, "TCP6", 4) == 0)
        af = AF_INET6;
    else if (len == 7 && memcmp(field, "UNKNOWN", 7) == 0)
        return PROXY_HEADER_DONE;
    else
        return bad(why, "PROXY v1: the protocol is not TCP4, TCP6 or UNKNOWN");
    unsigned char src[16], dst[16];
    const char *sport, *dport;
    size_t sport_len, dport_len;
    uint16_t source_port, dest_port;
    if (v1_field(&at, end, 0, &field, &len) < 0 || v1_address(field, len, af, src) < 0 ||
        v1_field(&at, end, 0, &field, &len) < 0 || v1_address(field, len, af, dst) < 0)
        return bad(why, "PROXY v1: a bad address");
    if (v1_field(&at, end, 0, &sport, &sport_len) < 0 ||
        v1_field(&at, end, 1, &dport, &dport_len) < 0 ||
        v1_port(sport, sport_len, &source_port) < 0 || v1_port(dport, dport_len, &dest_port) < 0)
        return bad(why, "PROXY v1: a bad port");
    memset(&out->source, 0, sizeof(out->source));
    if (af == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)(void *)&out->source;
        in->sin_family = AF_INET;
        memcpy(&in->sin_addr, src, 4);
        in->sin_port = htons(source_port);
        out->source_len = sizeof(*in);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)&out->source;
        in6->sin6_family = AF_INET6;
        memcpy(&in6->sin6_addr, src, 16);
        in6->sin6_port = htons(source_port);
        out->source_len = sizeof(*in6);
    }
    out->has_source = 1;
    return PROXY_HEADER_DONE;
}

static enum proxy_header_status v1_parse(const char *buf, size_t len, struct proxy_header *out,
                                         const char **why)
{
    size_t prefix = sizeof(v1_prefix) - 1;
    if (memcmp(buf, v1_prefix, min_size(len, prefix)) != 0)
        return bad(why, "no PROXY header");
    /* The line ends at its first CR, which must be followed by LF. */
    size_t scan = min_size(len, V1_MAX);
    const char *cr = memchr(buf, '\r', scan);
    const char *lf = memchr(buf, '\n', scan);
    if (lf && (!cr || lf < cr))
        return bad(why, "PROXY v1: a line feed without a carriage return");
    if (!cr || (size_t)(cr - buf) + 1 >= len) {
        if (len >= V1_MAX)
            return bad(why, "PROXY v1: the line is longer than 107 bytes");
        return PROXY_HEADER_NEED_MORE;
    }
    if (cr[1] != '\n')
        return bad(why, "PROXY v1: a carriage return without a line feed");
    size_t line_len = (size_t)(cr - buf);
    if (line_len + 2 > V1_MAX)
        return bad(why, "PROXY v1: the line is longer than 107 bytes");
    if (line_len < prefix)
        return bad(why, "no PROXY header");
    out->version = 1;
    out->len = line_len + 2;
    return v1_line(buf + prefix, line_len - prefix, out, why);
}

static uint16_t be16(const unsigned char *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

/* The TLVs after the addresses: each one whole, none running past the header. */
static int v2_tlvs_whole(const unsigned char *p, size_t n)
{
    while (n > 0) {
        if (n < V2_TLV_HEADER)
            return 0;
        size_t value = be16(p + 1);
        if (value > n - V2_TLV_HEADER)
            return 0;
        p += V2_TLV_HEADER + value;
        n -= V2_TLV_HEADER + value;
    }
    return 1;
}

static enum proxy_header_status v2_parse(const unsigned char *buf, size_t len,
                                         struct proxy_header *out, const char **why)
{
    if (memcmp(buf, v2_signature, min_size(len, sizeof(v2_signature))) != 0)
        return bad(why, "no PROXY header");
    if (len > 12 && (buf[12] >> 4) != 2)
        return bad(why, "PROXY v2: the version is not 2");
    unsigned command = len > 12 ? buf[12] & 0x0F : V2_CMD_LOCAL;
    if (command != V2_CMD_LOCAL && command != V2_CMD_PROXY)
        return bad(why, "PROXY v2: the command is neither LOCAL nor PROXY");
    if (len < V2_FIXED)
        return PROXY_HEADER_NEED_MORE;
    size_t rest = be16(buf + 14);
    if (V2_FIXED + rest > PROXY_HEADER_MAX)
        return bad(why, "PROXY v2: the header is too large");
    if (len < V2_FIXED + rest)
        return PROXY_HEADER_NEED_MORE;
    const unsigned char *body = buf + V2_FIXED;
    unsigned family = buf[13] >> 4;
    size_t addresses = family == V2_AF_INET    ? V2_INET_LEN
                       : family == V2_AF_INET6 ? V2_INET6_LEN
                       : family == V2_AF_UNIX  ? V2_UNIX_LEN
                                               : 0;
    if (family > V2_AF_UNIX || (buf[13] & 0x0F) > 2)
        return bad(why, "PROXY v2: an unknown address family or transport");
    /* LOCAL: the proxy speaks for itself, and whatever follows is to be skipped. */
    if (command == V2_CMD_PROXY) {
        if (rest < addresses)
            return bad(why, "PROXY v2: the addresses are cut short");
        if (!v2_tlvs_whole(body + addresses, rest - addresses))
            return bad(why, "PROXY v2: a TLV runs past the header");
    }
    out->version = 2;
    out->len = V2_FIXED + rest;
    if (command != V2_CMD_PROXY || (family != V2_AF_INET && family != V2_AF_INET6))
        return PROXY_HEADER_DONE;
    memset(&out->source, 0, sizeof(out->source));
    if (family == V2_AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)(void *)&out->source;
        in->sin_family = AF_INET;
        memcpy(&in->sin_addr, body, 4);
        memcpy(&in->sin_port, body + 8, 2); /* both big-endian */
        out->source_len = sizeof(*in);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)&out->source;
        in6->sin6_family = AF_INET6;
        memcpy(&in6->sin6_addr, body, 16);
        memcpy(&in6->sin6_port, body + 32, 2);
        out->source_len = sizeof(*in6);
    }
    out->has_source = 1;
    return PROXY_HEADER_DONE;
}

enum proxy_header_status proxy_header_parse(const void *buf, size_t len, unsigned versions,
                                            struct proxy_header *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    *why = NULL;
    if (len == 0)
        return PROXY_HEADER_NEED_MORE;
    const unsigned char *bytes = buf;
    if (bytes[0] == (unsigned char)v1_prefix[0]) {
        if (!(versions & PROXY_V1))
            return bad(why, "a PROXY v1 header, where only v2 is accepted");
        return v1_parse(buf, len, out, why);
    }
    if (bytes[0] == v2_signature[0]) {
        if (!(versions & PROXY_V2))
            return bad(why, "a PROXY v2 header, where only v1 is accepted");
        return v2_parse(bytes, len, out, why);
    }
    return bad(why, "no PROXY header");
}
