/* ws_client.c - see ws_client.h. */
#include "ws_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct ws_client *ws_client_open(const char *host, int port, int tls)
{
    struct ws_client *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->auto_pong = 1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &addr.sin_addr);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        fprintf(stderr, "ws_client: cannot connect to %s:%d: %s\n", host, port, strerror(errno));
        ws_client_close(c);
        return NULL;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (!tls)
        return c;
    c->ctx = SSL_CTX_new(TLS_client_method());
    c->ssl = c->ctx ? SSL_new(c->ctx) : NULL;
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1 || SSL_connect(c->ssl) != 1) {
        fprintf(stderr, "ws_client: TLS handshake with %s:%d failed\n", host, port);
        ERR_print_errors_fp(stderr);
        ws_client_close(c);
        return NULL;
    }
    return c;
}

void ws_client_close(struct ws_client *c)
{
    if (!c)
        return;
    if (c->ssl)
        SSL_free(c->ssl);
    if (c->ctx)
        SSL_CTX_free(c->ctx);
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}

int ws_client_send_raw(struct ws_client *c, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = c->ssl ? SSL_write(c->ssl, p, (int)len) : send(c->fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read more bytes into the buffer: >0, 0 at the end, -1 on timeout or error. */
static int fill(struct ws_client *c, long long deadline)
{
    if (c->len >= sizeof(c->buf))
        return -1;
    if (!c->ssl || SSL_pending(c->ssl) == 0) {
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        long long left = deadline - now_ms();
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            return -1;
    }
    size_t room = sizeof(c->buf) - c->len;
    ssize_t n = c->ssl ? SSL_read(c->ssl, c->buf + c->len, (int)room)
                       : recv(c->fd, c->buf + c->len, room, 0);
    if (n < 0 && !c->ssl && errno == ECONNRESET)
        return 0;
    if (n <= 0)
        return n == 0 || c->ssl ? 0 : -1;
    c->len += (size_t)n;
    return 1;
}

static void consume(struct ws_client *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

int ws_client_read_head(struct ws_client *c, char *out, size_t cap, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        for (size_t i = 3; i < c->len; i++) {
            if (memcmp(c->buf + i - 3, "\r\n\r\n", 4) != 0)
                continue;
            size_t n = i + 1 < cap ? i + 1 : cap - 1;
            memcpy(out, c->buf, n);
            out[n] = '\0';
            consume(c, i + 1);
            int status = -1;
            return sscanf(out, "HTTP/1.1 %d", &status) == 1 ? status : -1;
        }
        if (fill(c, deadline) <= 0)
            return -1;
    }
}

int ws_client_read_body(struct ws_client *c, char *out, size_t n, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    while (c->len < n)
        if (fill(c, deadline) <= 0)
            return -1;
    memcpy(out, c->buf, n);
    out[n] = '\0';
    consume(c, n);
    return 0;
}

int ws_client_handshake(struct ws_client *c, const char *host_header, const char *origin,
                        const char *extra, char *head, size_t cap)
{
    char req[4096], origin_line[512] = "", local[4096];
    if (origin)
        snprintf(origin_line, sizeof(origin_line), "Origin: %s\r\n", origin);
    snprintf(req, sizeof(req),
             "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s%s\r\n",
             c->path ? c->path : "/ws", host_header, origin_line, extra ? extra : "");
    if (ws_client_send_raw(c, req, strlen(req)) < 0)
        return -1;
    return ws_client_read_head(c, head ? head : local, head ? cap : sizeof(local), 5000);
}

struct ws_client *ws_client_connect(const char *host, int port, int tls)
{
    struct ws_client *c = ws_client_open(host, port, tls);
    if (!c)
        return NULL;
    char host_header[128], origin[160], head[4096];
    snprintf(host_header, sizeof(host_header), "%s:%d", host, port);
    snprintf(origin, sizeof(origin), "%s://%s", tls ? "https" : "http", host_header);
    int status = ws_client_handshake(c, host_header, origin, NULL, head, sizeof(head));
    if (status != 101 || !strstr(head, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")) {
        fprintf(stderr, "ws_client: handshake refused (%d):\n%s\n", status, head);
        ws_client_close(c);
        return NULL;
    }
    return c;
}

int ws_client_send_frame(struct ws_client *c, int fin, int opcode, const void *payload, size_t len,
                         int masked)
{
    unsigned char *frame = malloc(len + 14);
    if (!frame)
        return -1;
    size_t n = 0;
    frame[n++] = (unsigned char)((fin ? 0x80 : 0) | (opcode & 0x0f));
    unsigned char mask_bit = masked ? 0x80 : 0;
    if (len < 126) {
        frame[n++] = (unsigned char)(mask_bit | len);
    } else if (len < 65536) {
        frame[n++] = mask_bit | 126;
        frame[n++] = (unsigned char)(len >> 8);
        frame[n++] = (unsigned char)len;
    } else {
        frame[n++] = mask_bit | 127;
        for (int i = 7; i >= 0; i--)
            frame[n++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    static const unsigned char key[4] = {0x37, 0xfa, 0x21, 0x3d};
    if (masked) {
        memcpy(frame + n, key, 4);
        n += 4;
    }
    const unsigned char *p = payload;
    for (size_t i = 0; i < len; i++)
        frame[n + i] = masked ? p[i] ^ key[i % 4] : p[i];
    int rc = ws_client_send_raw(c, frame, n + len);
    free(frame);
    return rc;
}

int ws_client_send_text(struct ws_client *c, const char *text)
{
    return ws_client_send_frame(c, 1, WS_OP_TEXT, text, strlen(text), 1);
}

int ws_client_send_json(struct ws_client *c, const json_t *msg)
{
    char *text = json_dumps(msg, JSON_COMPACT);
    int rc = text ? ws_client_send_text(c, text) : -1;
    free(text);
    return rc;
}

/* One frame from the buffer, if it is all there: its size, else 0. */
static size_t parse_frame(struct ws_client *c, struct ws_frame *f)
{
    if (c->len < 2)
        return 0;
    size_t n = 2;
    uint64_t len = c->buf[1] & 0x7f;
    if (len == 126) {
        if (c->len < 4)
            return 0;
        len = ((uint64_t)c->buf[2] << 8) | c->buf[3];
        n = 4;
    } else if (len == 127) {
        if (c->len < 10)
            return 0;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = (len << 8) | c->buf[2 + i];
        n = 10;
    }
    f->masked = (c->buf[1] & 0x80) != 0;
    if (f->masked)
        n += 4;
    if (len > WS_CLIENT_MAX_PAYLOAD || c->len < n + len)
        return 0;
    f->fin = (c->buf[0] & 0x80) != 0;
    f->opcode = c->buf[0] & 0x0f;
    f->len = (size_t)len;
    f->payload = c->buf + n;
    return n + (size_t)len;
}

int ws_client_read_frame(struct ws_client *c, struct ws_frame *f, int timeout_ms)
{
    static unsigned char frame_copy[WS_CLIENT_MAX_PAYLOAD + 1];
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        size_t size = parse_frame(c, f);
        if (size == 0) {
            int got = fill(c, deadline);
            if (got <= 0)
                return got;
            continue;
        }
        /* The payload is copied out so that the buffer can move on. */
        memcpy(frame_copy, f->payload, f->len);
        frame_copy[f->len] = '\0';
        f->payload = frame_copy;
        consume(c, size);
        if (f->opcode == WS_OP_PING && c->auto_pong) {
            ws_client_send_frame(c, 1, WS_OP_PONG, f->payload, f->len, 1);
            continue;
        }
        return 1;
    }
}

json_t *ws_client_read_json(struct ws_client *c, int timeout_ms)
{
    struct ws_frame f;
    int got = ws_client_read_frame(c, &f, timeout_ms);
    if (got != 1 || f.opcode != WS_OP_TEXT || !f.fin || f.masked) {
        fprintf(stderr, "ws_client: wanted a text message, got %d (opcode %d, fin %d)\n", got,
                got == 1 ? f.opcode : -1, got == 1 ? f.fin : -1);
        return NULL;
    }
    json_error_t err;
    json_t *msg = json_loadb((const char *)f.payload, f.len, 0, &err);
    if (!msg)
        fprintf(stderr, "ws_client: not JSON: %.*s\n", (int)f.len, f.payload);
    return msg;
}

int ws_client_read_close(struct ws_client *c, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    struct ws_frame f;
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0 || ws_client_read_frame(c, &f, (int)left) != 1)
            return -1;
        if (f.opcode == WS_OP_CLOSE)
            return f.len >= 2 ? (f.payload[0] << 8) | f.payload[1] : 0;
    }
}
