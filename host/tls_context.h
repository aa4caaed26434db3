/* tls_context.h - the OpenSSL server context of the TLS listeners, built from [tls]
 * (tls_context.c): at start (and chatd -t) and again at every reload, so that a renewed
 * certificate serves new connections while established ones keep theirs. */
#ifndef CHATD_HOST_TLS_CONTEXT_H
#define CHATD_HOST_TLS_CONTEXT_H

#include <openssl/ssl.h>
#include <stddef.h>

struct config_tls;

/* A context with the certificate chain and key of `tls` loaded and checked against each
 * other: TLS 1.2 (or `min_version`) and newer, no compression, no renegotiation, the
 * configured TLS 1.2 ciphers. NULL with the reason (naming the key and file) in err. */
SSL_CTX *tls_context_new(const struct config_tls *tls, char *err, size_t errlen);

#endif
