/* cidr.c - address prefixes (cidr.h). */
#include "cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int cidr_parse(const char *text, struct cidr *out)
{
    char address[INET6_ADDRSTRLEN];
    const char *slash = strchr(text, '/');
    size_t n = slash ? (size_t)(slash - text) : strlen(text);
    if (n == 0 || n >= sizeof(address))
        return -1;
    memcpy(address, text, n);
    address[n] = '\0';
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, address, out->addr) == 1)
        out->family = AF_INET;
    else if (inet_pton(AF_INET6, address, out->addr) == 1)
        out->family = AF_INET6;
    else
        return -1;
    unsigned max = out->family == AF_INET ? 32 : 128;
    out->bits = max;
    if (slash) {
        char *end;
        const char *digits = slash + 1;
        if (*digits < '0' || *digits > '9')
            return -1;
        unsigned long bits = strtoul(digits, &end, 10);
        if (*end != '\0' || bits > max)
            return -1;
        out->bits = (unsigned)bits;
    }
    return 0;
}

/* The first `bits` bits of a and b are equal. */
static int prefix_equal(const unsigned char *a, const unsigned char *b, unsigned bits)
{
    size_t whole = bits / 8;
    if (memcmp(a, b, whole) != 0)
        return 0;
    unsigned rest = bits % 8;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xFF << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

int cidr_list_match(const struct cidr *list, size_t n, const struct sockaddr *addr)
{
    static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    int family = addr->sa_family;
    const unsigned char *bytes;
    if (family == AF_INET) {
        bytes = (const unsigned char *)&((const struct sockaddr_in *)(const void *)addr)->sin_addr;
    } else if (family == AF_INET6) {
        bytes =
            (const unsigned char *)&((const struct sockaddr_in6 *)(const void *)addr)->sin6_addr;
        if (memcmp(bytes, v4_mapped, sizeof(v4_mapped)) == 0) {
            family = AF_INET;
            bytes += sizeof(v4_mapped);
        }
    } else {
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        if (list[i].family == family && prefix_equal(list[i].addr, bytes, list[i].bits))
            return 1;
    return 0;
}
