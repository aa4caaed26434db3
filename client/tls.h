/* tls.h - chat's TLS settings (--tls, --ca-file, --insecure) and the OpenSSL object a
 * connection speaks TLS with (tls.c). */
#ifndef CHAT_TLS_H
#define CHAT_TLS_H

#include <stddef.h>

struct ssl_st;

struct chat_tls {
    int enabled;         /* --tls */
    const char *ca_file; /* --ca-file: trust this CA; NULL: the system's CAs */
    int insecure;        /* --insecure: no check of the server's certificate at all */
};

/* An SSL for a client connection to `host`: TLS 1.2 or newer, SNI, and (unless
 * insecure) the certificate checked against the CAs and the host name. NULL with the
 * reason in err. */
struct ssl_st *chat_tls_new(const struct chat_tls *tls, const char *host, char *err, size_t cap);

/* Why the handshake or the connection failed, from OpenSSL's error `e` (0: unknown). */
void chat_tls_reason(unsigned long e, char *out, size_t cap);

#endif
