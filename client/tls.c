/* tls.c - see tls.h. */
#include "tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

void chat_tls_reason(unsigned long e, char *out, size_t cap)
{
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    snprintf(out, cap, "%s", reason ? reason : "TLS error");
}

static int is_ip_address(const char *host)
{
    unsigned char addr[16];
    return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

SSL *chat_tls_new(const struct chat_tls *tls, const char *host, char *err, size_t cap)
{
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = NULL;
    if (!ctx)
        goto fail;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (!tls->insecure) {
        int loaded = tls->ca_file ? SSL_CTX_load_verify_locations(ctx, tls->ca_file, NULL)
                                  : SSL_CTX_set_default_verify_paths(ctx);
        if (!loaded) {
            char reason[200];
            chat_tls_reason(ERR_get_error(), reason, sizeof(reason));
            snprintf(err, cap, "cannot use the CA file %s: %s", tls->ca_file ? tls->ca_file : "",
                     reason);
            SSL_CTX_free(ctx);
            return NULL;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    ssl = SSL_new(ctx);
    SSL_CTX_free(ctx); /* the SSL holds it */
    if (!ssl)
        goto fail;
    /* SNI, for a server with several names (OpenSSL's macro takes a mutable string). */
    char name[256];
    snprintf(name, sizeof(name), "%s", host);
    if (!is_ip_address(host))
        SSL_set_tlsext_host_name(ssl, name);
    /* The certificate must name the host we were asked to reach (an address too). */
    if (!tls->insecure) {
        X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
        if (!(is_ip_address(host) ? X509_VERIFY_PARAM_set1_ip_asc(param, host)
                                  : SSL_set1_host(ssl, host)))
            goto fail;
    }
    return ssl;
fail:
    SSL_free(ssl);
    snprintf(err, cap, "cannot set up TLS: out of memory");
    return NULL;
}
