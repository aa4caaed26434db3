/* conn.c - connections to chatd with batched writes and chunked reads (see conn.h). */
#include "conn.h"
#include "bench.h"
#include "ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK (256 * 1024)

static struct event_base *loop_base;
static struct event *flush_ev;
static int flush_pending;
static struct conn *dirty_head;
static char *scratch;
static size_t scratch_cap;
static SSL_CTX *tls_ctx; /* --tls */
static const char *tls_host;
static int ws_on; /* --ws */
static uint64_t bytes_received;

static void do_write(struct conn *c);

/* Written after every other callback of this loop iteration: event_active puts the
 * flush event at the end of the active queue, behind the reads that made it. */
static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    flush_pending = 0;
    struct conn *c = dirty_head;
    dirty_head = NULL;
    while (c) {
        struct conn *next = c->next_dirty;
        c->dirty = 0;
        c->next_dirty = NULL;
        if (c->fd >= 0 && c->connected && !c->blocked)
            do_write(c);
        c = next;
    }
}

void conn_system_init(struct event_base *base)
{
    loop_base = base;
    flush_ev = event_new(base, -1, 0, flush_cb, NULL);
    scratch_cap = READ_CHUNK;
    scratch = malloc(scratch_cap);
    if (!flush_ev || !scratch)
        die("out of memory");
}

void conn_tls_init(const char *host, const char *ca_file, int insecure)
{
    tls_ctx = SSL_CTX_new(TLS_client_method());
    if (!tls_ctx)
        die("out of memory");
    SSL_CTX_set_min_proto_version(tls_ctx, TLS1_2_VERSION);
    /* A blocked SSL_write is retried from wherever the output buffer is by then (it may
     * have moved or grown meanwhile); the bytes are the same. */
    SSL_CTX_set_mode(tls_ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (!insecure) {
        if (!(ca_file ? SSL_CTX_load_verify_locations(tls_ctx, ca_file, NULL)
                      : SSL_CTX_set_default_verify_paths(tls_ctx)))
            die("cannot use the CA file %s", ca_file ? ca_file : "(system)");
        SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_PEER, NULL);
        tls_host = host;
    }
}

/* OpenSSL's reason for the last failure, for a connection's close. */
static const char *tls_reason(void)
{
    const char *reason = ERR_reason_error_string(ERR_peek_last_error());
    ERR_clear_error();
    return reason ? reason : "TLS error";
}

void conn_ws_init(void)
{
    ws_on = 1;
}

uint64_t conn_bytes_received(void)
{
    return bytes_received;
}

void conn_system_free(void)
{
    SSL_CTX_free(tls_ctx);
    tls_ctx = NULL;
    event_free(flush_ev);
    flush_ev = NULL;
    free(scratch);
    scratch = NULL;
}

static void mark_dirty(struct conn *c)
{
    if (!c->dirty) {
        c->dirty = 1;
        c->next_dirty = dirty_head;
        dirty_head = c;
    }
    if (!flush_pending) {
        flush_pending = 1;
        event_active(flush_ev, EV_TIMEOUT, 1);
    }
}

static void fail(struct conn *c, const char *why)
{
    conn_close(c);
    if (c->ops && c->ops->on_close)
        c->ops->on_close(c, why);
}

/* send(2) or SSL_write: bytes sent, or -1 with errno (EAGAIN: not now). */
static ssize_t conn_send(struct conn *c, const void *buf, size_t len)
{
    if (!c->ssl)
        return send(c->fd, buf, len, MSG_NOSIGNAL);
    int n = SSL_write(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    if (n > 0)
        return n;
    int err = SSL_get_error(c->ssl, n);
    errno = err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ ? EAGAIN : EPIPE;
    return -1;
}

/* recv(2) or SSL_read: bytes, 0 at the end, or -1 with errno (EAGAIN: nothing now). */
static ssize_t conn_recv(struct conn *c, void *buf, size_t len)
{
    if (!c->ssl)
        return recv(c->fd, buf, len, 0);
    int n = SSL_read(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    if (n > 0)
        return n;
    int err = SSL_get_error(c->ssl, n);
    if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0))
        return 0;
    errno = err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE ? EAGAIN : EPROTO;
    return -1;
}

static void connected(struct conn *c)
{
    c->connected = 1;
    event_add(c->rev, NULL);
    unsigned gen = c->gen;
    if (c->ops->on_connect)
        c->ops->on_connect(c);
    if (c->gen != gen)
        return;
    c->blocked = 0;
    do_write(c);
}

/* --ws: send the upgrade request (alone: the requests queued meanwhile wait for its
 * answer, as a browser's would); the connection is established at the answer. */
static void upgrade(struct conn *c)
{
    struct sockaddr_in peer;
    socklen_t plen = sizeof(peer);
    char addr[INET_ADDRSTRLEN], host[INET_ADDRSTRLEN + 8], req[WS_REQUEST_MAX];
    if (getpeername(c->fd, (struct sockaddr *)&peer, &plen) < 0 ||
        !inet_ntop(AF_INET, &peer.sin_addr, addr, sizeof(addr))) {
        fail(c, strerror(errno));
        return;
    }
    snprintf(host, sizeof(host), "%s:%u", addr, (unsigned)ntohs(peer.sin_port));
    size_t len = ws_request(req, host, c->ws_accept);
    /* A new socket's buffer takes these 200 bytes at once. */
    if (conn_send(c, req, len) != (ssize_t)len) {
        fail(c, "the upgrade request could not be sent");
        return;
    }
    c->upgrading = 1;
    event_add(c->rev, NULL);
}

/* The transport is up: connected, or first the upgrade. */
static void established(struct conn *c)
{
    if (ws_on)
        upgrade(c);
    else
        connected(c);
}

/* Drive the TLS handshake on whichever event it waits for. */
static void handshake(struct conn *c)
{
    int rc = SSL_do_handshake(c->ssl);
    if (rc == 1) {
        event_del(c->wev);
        established(c);
        return;
    }
    int err = SSL_get_error(c->ssl, rc);
    if (err == SSL_ERROR_WANT_READ)
        event_add(c->rev, NULL);
    else if (err == SSL_ERROR_WANT_WRITE)
        event_add(c->wev, NULL);
    else
        fail(c, tls_reason());
}

static void do_write(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = conn_send(c, c->out + c->out_off, c->out_len - c->out_off);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->blocked = 1;
            event_add(c->wev, NULL);
            return;
        }
        fail(c, n < 0 ? strerror(errno) : "write failed");
        return;
    }
    c->out_off = c->out_len = 0;
}

/* The lines in [p, end), each handed over; returns where the unfinished rest starts,
 * or NULL when a callback closed the connection. */
static char *take_lines(struct conn *c, char *p, char *end)
{
    unsigned gen = c->gen;
    for (;;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return p;
        *nl = '\0';
        c->ops->on_line(c, p, (size_t)(nl - p));
        if (c->gen != gen)
            return NULL; /* closed (and perhaps reopened) by the callback */
        p = nl + 1;
    }
}

static char *frame_room(struct conn *c, size_t len);
static void frame_commit(struct conn *c, size_t len, int opcode);

/* --ws: the frames in [p, end); each text message is handed over as a line (the byte
 * after it, the next frame's first, is set aside while it is the line's NUL). Returns
 * where the unfinished rest starts, or NULL when the connection was closed. */
static char *take_frames(struct conn *c, char *p, char *end)
{
    static char closed_why[64];
    unsigned gen = c->gen;
    struct ws_frame f;
    const char *why;
    int rc;
    while ((rc = ws_parse(p, (size_t)(end - p), &f, &why)) == 1) {
        p += f.size;
        if (f.opcode == WS_TEXT && f.fin) {
            char saved = f.payload[f.len];
            f.payload[f.len] = '\0';
            c->ops->on_line(c, f.payload, f.len);
            if (c->gen != gen)
                return NULL;
            f.payload[f.len] = saved;
        } else if (f.opcode == WS_PING) {
            memcpy(frame_room(c, f.len), f.payload, f.len);
            frame_commit(c, f.len, WS_PONG);
        } else if (f.opcode == WS_CLOSE) {
            unsigned code =
                f.len >= 2 ? (unsigned char)f.payload[0] << 8 | (unsigned char)f.payload[1] : 1005;
            snprintf(closed_why, sizeof(closed_why), "closed by the server (WebSocket close %u)",
                     code);
            fail(c, closed_why);
            return NULL;
        } else if (f.opcode != WS_PONG) {
            fail(c, f.opcode == WS_TEXT || f.opcode == WS_CONTINUATION
                        ? "a fragmented message (chatd sends none)"
                        : "a binary or unknown WebSocket message");
            return NULL;
        }
    }
    if (rc < 0) {
        fail(c, why);
        return NULL;
    }
    return p;
}

/* --ws: the upgrade's answer at [p, end). Returns where the frames after it start, p
 * itself while the head is incomplete, or NULL when the connection was closed. */
static char *take_answer(struct conn *c, char *p, char *end)
{
    const char *why;
    long head = ws_answer(p, (size_t)(end - p), c->ws_accept, &why);
    if (head == 0)
        return p;
    if (head < 0) {
        fail(c, why);
        return NULL;
    }
    unsigned gen = c->gen;
    c->upgrading = 0;
    connected(c);
    return c->gen == gen ? p + head : NULL;
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    (void)fd;
    struct conn *c = arg;
    if (c->ssl && !c->connected && !c->upgrading) {
        handshake(c);
        return;
    }
    size_t have = c->tail_len;
    if (have + READ_CHUNK / 2 > scratch_cap) {
        size_t cap = 2 * (have + READ_CHUNK / 2);
        char *more = realloc(scratch, cap);
        if (!more)
            die("out of memory");
        scratch = more;
        scratch_cap = cap;
    }
    if (have)
        memcpy(scratch, c->tail, have);
    /* One byte is kept free: a WebSocket message at the very end gets its NUL there. */
    ssize_t n = conn_recv(c, scratch + have, scratch_cap - have - 1);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        fail(c, n == 0 ? "closed by the server" : strerror(errno));
        return;
    }
    bytes_received += (uint64_t)n;
    c->tail_len = 0;
    char *p = scratch, *end = scratch + have + (size_t)n;
    if (c->upgrading && !(p = take_answer(c, p, end)))
        return;
    if (!c->upgrading && !(p = ws_on ? take_frames(c, p, end) : take_lines(c, p, end)))
        return;
    size_t rest = (size_t)(end - p);
    if (rest > c->tail_cap) {
        size_t cap = rest < 256 ? 256 : rest * 2;
        char *more = realloc(c->tail, cap);
        if (!more)
            die("out of memory");
        c->tail = more;
        c->tail_cap = cap;
    }
    if (rest)
        memcpy(c->tail, p, rest);
    c->tail_len = rest;
    /* OpenSSL may hold decrypted bytes the socket will not announce again. */
    if (c->ssl && SSL_pending(c->ssl) > 0)
        event_active(c->rev, EV_READ, 1);
}

static void write_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct conn *c = arg;
    if (c->ssl && !c->connected) {
        handshake(c);
        return;
    }
    if (!c->connected) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err) {
            fail(c, strerror(err));
            return;
        }
        if (tls_ctx) {
            c->ssl = SSL_new(tls_ctx);
            if (!c->ssl || !SSL_set_fd(c->ssl, fd) ||
                (tls_host && !X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), tls_host)))
                die("out of memory");
            SSL_set_connect_state(c->ssl);
            handshake(c);
            return;
        }
        established(c);
        return;
    }
    c->blocked = 0;
    do_write(c);
}

void conn_init(struct conn *c)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

int conn_open(struct conn *c, const struct sockaddr_in *addr, const struct conn_ops *ops,
              void *owner)
{
    c->ops = ops;
    c->owner = owner;
    c->connected = 0;
    c->upgrading = 0;
    c->blocked = 0;
    c->out_off = c->out_len = 0;
    c->tail_len = 0;
    c->connect_start_ns = now_ns();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    if (connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0 && errno != EINPROGRESS) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    c->fd = fd;
    c->rev = event_new(loop_base, fd, EV_READ | EV_PERSIST, read_cb, c);
    c->wev = event_new(loop_base, fd, EV_WRITE, write_cb, c);
    if (!c->rev || !c->wev)
        die("out of memory");
    /* Connected or not, the first writable event says how the connect went. */
    event_add(c->wev, NULL);
    return 0;
}

void conn_close(struct conn *c)
{
    if (c->fd < 0)
        return;
    event_free(c->rev);
    event_free(c->wev);
    c->rev = c->wev = NULL;
    SSL_free(c->ssl);
    c->ssl = NULL;
    close(c->fd);
    c->fd = -1;
    c->connected = 0;
    c->upgrading = 0;
    c->blocked = 0;
    c->out_off = c->out_len = 0;
    c->tail_len = 0;
    c->gen++;
}

void conn_free(struct conn *c)
{
    conn_close(c);
    if (c->dirty) {
        for (struct conn **p = &dirty_head; *p; p = &(*p)->next_dirty) {
            if (*p == c) {
                *p = c->next_dirty;
                break;
            }
        }
        c->dirty = 0;
    }
    free(c->out);
    free(c->tail);
    c->out = c->tail = NULL;
    c->out_cap = c->tail_cap = 0;
}

/* Room for len more bytes at the end of the output. */
static char *reserve(struct conn *c, size_t len)
{
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (c->out_cap - c->out_len >= len)
        return c->out + c->out_len;
    if (c->out_off) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
        if (c->out_cap - c->out_len >= len)
            return c->out + c->out_len;
    }
    size_t cap = c->out_cap ? c->out_cap : 512;
    while (cap - c->out_len < len)
        cap *= 2;
    char *more = realloc(c->out, cap);
    if (!more)
        die("out of memory");
    c->out = more;
    c->out_cap = cap;
    return c->out + c->out_len;
}

static void commit(struct conn *c, size_t len)
{
    c->out_len += len;
    if (c->fd >= 0)
        mark_dirty(c);
}

/* --ws: room for a payload of len bytes, behind room for its frame header. */
static char *frame_room(struct conn *c, size_t len)
{
    return reserve(c, WS_HEADER_MAX + len) + WS_HEADER_MAX;
}

/* --ws: the payload written at frame_room leaves as one frame. */
static void frame_commit(struct conn *c, size_t len, int opcode)
{
    commit(c, ws_frame(c->out + c->out_len, len, opcode));
}

char *conn_reserve(struct conn *c, size_t len)
{
    return ws_on ? frame_room(c, len) : reserve(c, len);
}

void conn_commit(struct conn *c, size_t len)
{
    if (!ws_on) {
        commit(c, len);
        return;
    }
    const char *text = c->out + c->out_len + WS_HEADER_MAX;
    if (len == 0 || text[len - 1] != '\n' || memchr(text, '\n', len - 1))
        die("a WebSocket message is committed as exactly one line");
    frame_commit(c, len - 1, WS_TEXT);
}
