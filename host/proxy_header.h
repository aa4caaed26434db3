/* proxy_header.h - the PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1
 * and 2) that a proxy sends before a connection's own bytes to tell the client's
 * address. A pure parser (proxy_header.c): bytes in, a result out; it reads nothing past
 * the bytes it is given and keeps no state between calls. */
#ifndef CHATD_HOST_PROXY_HEADER_H
#define CHATD_HOST_PROXY_HEADER_H

#include <stddef.h>
#include <sys/socket.h>

/* The versions a listener accepts ([server] proxy_protocol), as a bit set. */
#define PROXY_V1 1u
#define PROXY_V2 2u

/* The longest header taken: a v1 line is at most 107 bytes; a v2 header is 16 bytes
 * and its addresses, then TLVs, which HAProxy keeps short (authority, unique id, TLS
 * facts). Anything longer is refused as too large. */
#define PROXY_HEADER_MAX 4096

enum proxy_header_status {
    PROXY_HEADER_NEED_MORE, /* every byte given is header so far; it goes on */
    PROXY_HEADER_DONE,      /* a whole header: see struct proxy_header */
    PROXY_HEADER_BAD,       /* no header of an accepted version, or too large */
};

struct proxy_header {
    size_t len;  /* DONE: the header's bytes; the connection's own start after them */
    int version; /* 1 or 2 */
    /* 1: source holds the client's address. 0: keep the connection's own peer (v2
     * LOCAL, as a proxy's health check sends; v1 UNKNOWN; a v2 family that is no IP). */
    int has_source;
    struct sockaddr_storage source; /* AF_INET or AF_INET6, port included */
    socklen_t source_len;
};

/* Parse the start of a connection, buf[0..len), as a header of one of `versions`.
 * DONE fills out; BAD sets *why to a static reason for the log. */
enum proxy_header_status proxy_header_parse(const void *buf, size_t len, unsigned versions,
                                            struct proxy_header *out, const char **why);

#endif
