/* fuzz_proxy_header.c - the PROXY header parser (host/proxy_header.c) on any bytes, as a
 * connection on a PROXY listener gives them: the first byte picks the versions accepted,
 * the rest is the start of the connection. Checks: a header taken lies within the bytes
 * and within PROXY_HEADER_MAX, with an IPv4 or IPv6 source when it has one; every prefix
 * of a taken header needs more (the reader takes such bytes as header before the rest
 * comes), and the same header is taken whatever follows it; a refusal says why. */
#include "proxy_header.h"

#include "fuzz_check.h"

#include <netinet/in.h>
#include <string.h>

static enum proxy_header_status parse_copy(const uint8_t *data, size_t len, unsigned versions,
                                           struct proxy_header *h, const char **why)
{
    /* A copy of exactly len bytes, so ASan sees any read past them. */
    uint8_t *copy = malloc(len ? len : 1);
    FUZZ_CHECK(copy != NULL);
    memcpy(copy, data, len);
    enum proxy_header_status st = proxy_header_parse(copy, len, versions, h, why);
    free(copy);
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned versions = (data[0] % 3) + 1; /* v1, v2 or both */
    data++;
    size--;
    struct proxy_header h;
    const char *why;
    enum proxy_header_status st = parse_copy(data, size, versions, &h, &why);
    if (st == PROXY_HEADER_BAD) {
        FUZZ_CHECK(why != NULL && why[0] != '\0');
        return 0;
    }
    if (st == PROXY_HEADER_NEED_MORE) {
        FUZZ_CHECK(size < PROXY_HEADER_MAX);
        return 0;
    }
    FUZZ_CHECK(h.len > 0 && h.len <= size && h.len <= PROXY_HEADER_MAX);
    FUZZ_CHECK(h.version == 1 || h.version == 2);
    FUZZ_CHECK((unsigned)h.version & versions);
    if (h.has_source)
        FUZZ_CHECK((h.source.ss_family == AF_INET && h.source_len == sizeof(struct sockaddr_in)) ||
                   (h.source.ss_family == AF_INET6 && h.source_len == sizeof(struct sockaddr_in6)));
    struct proxy_header alone;
    FUZZ_CHECK(parse_copy(data, h.len, versions, &alone, &why) == PROXY_HEADER_DONE);
    FUZZ_CHECK(alone.len == h.len && alone.has_source == h.has_source &&
               memcmp(&alone.source, &h.source, sizeof(h.source)) == 0);
    for (size_t n = 0; n < h.len; n++)
        FUZZ_CHECK(parse_copy(data, n, versions, &alone, &why) == PROXY_HEADER_NEED_MORE);
    return 0;
}
