/* tls_context.c - the OpenSSL server context from [tls] (see tls_context.h). */
#include "tls_context.h"

#include "config.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

/* OpenSSL's last queued error as text (the queue is emptied), or `fallback`. */
static const char *openssl_reason(char *buf, size_t len, const char *fallback)
{
    unsigned long last = 0, e;
    while ((e = ERR_get_error()) != 0)
        last = e;
    if (!last)
        return fallback;
    ERR_error_string_n(last, buf, len);
    return buf;
}

/* A file OpenSSL could not use: say first whether it could be read at all, which is
 * the usual mistake (a path, or a key readable only by root). */
static void file_error(const char *key, const char *path, char *err, size_t errlen)
{
    char reason[256];
    FILE *f = fopen(path, "r");
    if (!f) {
        int error = errno;
        ERR_clear_error();
        snprintf(err, errlen, "[tls] %s %s: cannot read: %s", key, path, strerror(error));
        return;
    }
    fclose(f);
    snprintf(err, errlen, "[tls] %s %s: not a usable PEM %s: %s", key, path,
             strcmp(key, "key") == 0 ? "private key" : "certificate chain",
             openssl_reason(reason, sizeof(reason), "unknown OpenSSL error"));
}

SSL_CTX *tls_context_new(const struct config_tls *tls, char *err, size_t errlen)
{
    char reason[256];
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errlen, "[tls]: cannot create a TLS context: %s",
                 openssl_reason(reason, sizeof(reason), "out of memory"));
        return NULL;
    }
    /* Compression leaks secrets through lengths (CRIME); renegotiation started by a
     * client costs the server a handshake whenever the client likes. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
    /* A client that closes its socket without close_notify has ended its stream, as on
     * a plain connection: no error, and no alert sent after its last replies. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
    /* An idle connection gives its read and write buffers back (about 34 KiB). */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (!SSL_CTX_set_min_proto_version(ctx,
                                       tls->min_version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION)) {
        snprintf(err, errlen, "[tls] min_version: %s",
                 openssl_reason(reason, sizeof(reason), "not supported by this OpenSSL"));
        goto fail;
    }
    if (!SSL_CTX_set_cipher_list(ctx, tls->ciphers)) {
        ERR_clear_error();
        snprintf(err, errlen, "[tls] ciphers: no cipher of '%s' is known to OpenSSL", tls->ciphers);
        goto fail;
    }
    if (!SSL_CTX_use_certificate_chain_file(ctx, tls->certificate)) {
        file_error("certificate", tls->certificate, err, errlen);
        goto fail;
    }
    int loaded = SSL_CTX_use_PrivateKey_file(ctx, tls->key, SSL_FILETYPE_PEM);
    if (!loaded && ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH) {
        file_error("key", tls->key, err, errlen);
        goto fail;
    }
    if (!loaded || !SSL_CTX_check_private_key(ctx)) {
        ERR_clear_error();
        snprintf(err, errlen, "[tls] key %s does not belong to [tls] certificate %s", tls->key,
                 tls->certificate);
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}
