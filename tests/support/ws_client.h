/* ws_client.h - a WebSocket (RFC 6455) client for the tests, framing written out by hand
 * so that tests can also send what a good client never would (unmasked frames, binary,
 * bad UTF-8, fragments, garbage): connect and shake hands, send frames, read frames
 * (answering pings unless told not to), and plain HTTP exchanges with the [web]
 * listener. Plain TCP or TLS. Every call that waits takes a timeout. */
#ifndef CHATD_TEST_WS_CLIENT_H
#define CHATD_TEST_WS_CLIENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define WS_OP_CONT   0x0
#define WS_OP_TEXT   0x1
#define WS_OP_BINARY 0x2
#define WS_OP_CLOSE  0x8
#define WS_OP_PING   0x9
#define WS_OP_PONG   0xA

/* The largest frame payload a client reads (a browser's DevTools screenshots are big). */
#define WS_CLIENT_MAX_PAYLOAD (8 << 20)

struct ssl_st;
struct ssl_ctx_st;

struct ws_client {
    int fd;
    struct ssl_ctx_st *ctx;
    struct ssl_st *ssl;
    int auto_pong;    /* answer pings while reading (default 1) */
    const char *path; /* what the handshake asks for (NULL, the default: chatd's /ws) */
    size_t len;
    unsigned char buf[WS_CLIENT_MAX_PAYLOAD + 16];
};

struct ws_frame {
    int fin;
    int opcode;
    int masked;
    size_t len;
    unsigned char *payload; /* inside the client's buffer; valid until its next read */
};

/* Open a connection to host:port (TLS without checking the certificate when tls).
 * NULL after printing why. */
struct ws_client *ws_client_open(const char *host, int port, int tls);
void ws_client_close(struct ws_client *c);

/* Send raw bytes. 0, or -1. */
int ws_client_send_raw(struct ws_client *c, const void *data, size_t len);

/* Read an HTTP response head (to the blank line) into out (NUL-terminated); returns its
 * status code, or -1. Bytes after the head stay buffered. */
int ws_client_read_head(struct ws_client *c, char *out, size_t cap, int timeout_ms);
/* Read exactly n body bytes into out (NUL-terminated; cap > n). 0, or -1. */
int ws_client_read_body(struct ws_client *c, char *out, size_t n, int timeout_ms);

/* Send the handshake for c->path with these extra header lines (each ending in "\r\n";
 * may be NULL), Origin when origin is not NULL. Returns the status code (101 for a
 * WebSocket), the head in head (may be NULL). */
int ws_client_handshake(struct ws_client *c, const char *host_header, const char *origin,
                        const char *extra, char *head, size_t cap);
/* ws_client_open + a good handshake (Origin http://HOST:PORT); NULL after printing why. */
struct ws_client *ws_client_connect(const char *host, int port, int tls);

/* Send one frame, masked when `masked`. 0, or -1. */
int ws_client_send_frame(struct ws_client *c, int fin, int opcode, const void *payload, size_t len,
                         int masked);
/* A masked, final text frame. */
int ws_client_send_text(struct ws_client *c, const char *text);
int ws_client_send_json(struct ws_client *c, const json_t *msg);

/* Read one frame. 1, 0 when the connection ended, -1 on timeout or error. Pings are
 * answered and skipped when auto_pong. */
int ws_client_read_frame(struct ws_client *c, struct ws_frame *f, int timeout_ms);
/* The next text message as JSON (NULL on anything else, after printing it). */
json_t *ws_client_read_json(struct ws_client *c, int timeout_ms);
/* Read until a close frame: its code (0 without one), or -1 when the connection ended
 * without a close frame or nothing came in time. Frames before it are skipped. */
int ws_client_read_close(struct ws_client *c, int timeout_ms);

#endif
