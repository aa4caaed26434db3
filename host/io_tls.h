/* io_tls.h - TLS on an I/O thread's connection (io_threads.c): the handshake, SSL_read
 * and SSL_write on a non-blocking socket. Each call says what it waits for when it
 * cannot go on: TLS may need the socket readable to write (a write that wants to read)
 * or writable to read (a read that wants to write), whatever the caller asked. Apart
 * from io_tls_new, every function is called on the connection's I/O thread. */
#ifndef CHATD_HOST_IO_TLS_H
#define CHATD_HOST_IO_TLS_H

#include <event2/util.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <sys/types.h>

struct evbuffer;

/* What a TLS call waits for before it is called again. */
enum io_tls_wait {
    IO_TLS_NONE,        /* done, or nothing to wait for */
    IO_TLS_WANTS_READ,  /* the socket readable */
    IO_TLS_WANTS_WRITE, /* the socket writable */
    IO_TLS_FAILED,      /* the connection cannot go on: the reason was given */
};

/* The server side of a connection on the accepted socket fd, with the context's
 * certificate (the loop thread, at accept). NULL when out of memory. */
SSL *io_tls_new(SSL_CTX *ctx, evutil_socket_t fd);
/* An established connection's SSL, made elsewhere (a wss connection's, by the loop's
 * OpenSSL bufferevent), set up to be written as io_tls_write does. */
void io_tls_adopt(SSL *ssl);
/* One step of the handshake: IO_TLS_NONE once it is done, what it waits for, or
 * IO_TLS_FAILED with OpenSSL's reason in reason ("connection closed" without one). */
enum io_tls_wait io_tls_handshake(SSL *ssl, char *reason, size_t cap);
/* Decrypted bytes into buf: the count, 0 at the end of the stream (close_notify, or a
 * peer that closed without one, as a plain stream ends), or -1 with *wait (and errno:
 * EAGAIN, or EPROTO or the socket's error with the reason in reason). */
ssize_t io_tls_read(SSL *ssl, void *buf, size_t len, enum io_tls_wait *wait, char *reason,
                    size_t cap);
/* Encrypt and send from the head of out, one record of up to 16 KiB at a time, until
 * `budget` bytes are sent or the socket takes no more; what is sent is drained from
 * out. Returns the bytes sent, with *wait saying what a write cut short waits for;
 * *retry is then the length of the record TLS must be given again (the head of out
 * must keep it), else 0. -1 with errno and the reason when the connection failed. */
ssize_t io_tls_write(SSL *ssl, struct evbuffer *out, size_t budget, size_t *retry,
                     enum io_tls_wait *wait, char *reason, size_t cap);
/* Best effort, without waiting: close_notify when established, then free. */
void io_tls_free(SSL *ssl, int established);

#endif
