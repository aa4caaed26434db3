/* io_tls.c - TLS on an I/O thread's connection (see io_tls.h). OpenSSL's error queue is
 * per thread: every failed call empties it, so no stale error is blamed on the next
 * connection of the same thread. */
#include "io_tls.h"

#include <errno.h>
#include <event2/buffer.h>
#include <openssl/err.h>
#include <string.h>

/* One TLS record's worth of plaintext: a write of that size is one record. */
#define IO_TLS_RECORD 16384

SSL *io_tls_new(SSL_CTX *ctx, evutil_socket_t fd)
{
    SSL *ssl = SSL_new(ctx);
    if (!ssl)
        return NULL;
    if (!SSL_set_fd(ssl, fd)) {
        SSL_free(ssl);
        ERR_clear_error();
        return NULL;
    }
    SSL_set_accept_state(ssl);
    io_tls_adopt(ssl);
    return ssl;
}

void io_tls_adopt(SSL *ssl)
{
    /* A write returns each record as it goes, and one repeated after WANT_WRITE may
     * come from another address (the head of an evbuffer made contiguous again). */
    SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

/* What the failed call `rc` on ssl means: a wait, or the end with the reason. */
static enum io_tls_wait outcome(SSL *ssl, int rc, int *error, char *reason, size_t cap)
{
    int saved = errno;
    int code = SSL_get_error(ssl, rc);
    *error = EAGAIN;
    if (code == SSL_ERROR_WANT_READ)
        return IO_TLS_WANTS_READ;
    if (code == SSL_ERROR_WANT_WRITE)
        return IO_TLS_WANTS_WRITE;
    unsigned long e = ERR_peek_error();
    *error = code == SSL_ERROR_SYSCALL && saved != 0 ? saved : EPROTO;
    if (e)
        ERR_error_string_n(e, reason, cap);
    else if (code == SSL_ERROR_SYSCALL && saved != 0)
        snprintf(reason, cap, "%s", strerror(saved));
    else
        snprintf(reason, cap, "connection closed");
    ERR_clear_error();
    return IO_TLS_FAILED;
}

enum io_tls_wait io_tls_handshake(SSL *ssl, char *reason, size_t cap)
{
    int rc = SSL_do_handshake(ssl);
    if (rc == 1)
        return IO_TLS_NONE;
    int error;
    return outcome(ssl, rc, &error, reason, cap);
}

ssize_t io_tls_read(SSL *ssl, void *buf, size_t len, enum io_tls_wait *wait, char *reason,
                    size_t cap)
{
    int n = SSL_read(ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    *wait = IO_TLS_NONE;
    if (n > 0)
        return n;
    /* The context ignores an unexpected EOF: a peer that closed without close_notify
     * ends here too, as bufferevent_openssl's dirty shutdown did. */
    if (SSL_get_error(ssl, n) == SSL_ERROR_ZERO_RETURN)
        return 0;
    int error;
    *wait = outcome(ssl, n, &error, reason, cap);
    errno = error;
    return -1;
}

ssize_t io_tls_write(SSL *ssl, struct evbuffer *out, size_t budget, size_t *retry,
                     enum io_tls_wait *wait, char *reason, size_t cap)
{
    size_t sent = 0;
    *wait = IO_TLS_NONE;
    while (sent < budget && evbuffer_get_length(out) > 0) {
        size_t len = *retry;
        if (len == 0) {
            len = evbuffer_get_length(out);
            len = len < IO_TLS_RECORD ? len : IO_TLS_RECORD;
        }
        unsigned char *data = evbuffer_pullup(out, (ev_ssize_t)len);
        if (!data) {
            errno = ENOMEM;
            snprintf(reason, cap, "out of memory");
            *wait = IO_TLS_FAILED;
            return -1;
        }
        int n = SSL_write(ssl, data, (int)len);
        if (n <= 0) {
            int error;
            *wait = outcome(ssl, n, &error, reason, cap);
            if (*wait != IO_TLS_FAILED) {
                *retry = len;
                return (ssize_t)sent;
            }
            *retry = 0;
            errno = error;
            return -1;
        }
        *retry = 0;
        evbuffer_drain(out, (size_t)n);
        sent += (size_t)n;
    }
    return (ssize_t)sent;
}

void io_tls_free(SSL *ssl, int established)
{
    if (established)
        SSL_shutdown(ssl);
    ERR_clear_error();
    SSL_free(ssl);
}
