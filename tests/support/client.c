/* client.c - the test client: blocking-free socket I/O bounded by poll() timeouts. */
#include "client.h"

#include "chatd_proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Fill a sockaddr for an IPv4 or IPv6 literal. Returns its length, or 0. */
static socklen_t make_addr(const char *host, int port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *in = (struct sockaddr_in *)(void *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)ss;
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        return sizeof(*in);
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        return sizeof(*in6);
    }
    return 0;
}

static int set_flags(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    /* A chatd started later must not inherit the test's sockets. */
    return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static int addr_port(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET
               ? ntohs(((const struct sockaddr_in *)(const void *)ss)->sin_port)
               : ntohs(((const struct sockaddr_in6 *)(const void *)ss)->sin6_port);
}

int test_free_port(const char *host)
{
    struct sockaddr_storage ss;
    socklen_t len = make_addr(host, 0, &ss);
    if (len == 0)
        return -1;
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&ss, len) == 0 &&
        getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
        port = addr_port(&ss);
    }
    close(fd);
    return port;
}

/* source: the local address to connect from, or NULL for the system's choice. */
static struct test_client *client_open(const char *host, int port, int rcvbuf, int verbose,
                                       const char *source)
{
    struct sockaddr_storage ss;
    socklen_t len = make_addr(host, port, &ss);
    if (len == 0) {
        fprintf(stderr, "test_client: '%s' is not an IP address\n", host);
        return NULL;
    }
    struct test_client *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (c->fd < 0 || set_flags(c->fd) < 0) {
        fprintf(stderr, "test_client: socket: %s\n", strerror(errno));
        goto fail;
    }
    if (rcvbuf > 0 && setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0) {
        fprintf(stderr, "test_client: SO_RCVBUF: %s\n", strerror(errno));
        goto fail;
    }
    struct sockaddr_storage from;
    socklen_t from_len = source ? make_addr(source, 0, &from) : 0;
    if (source && (from_len == 0 || bind(c->fd, (struct sockaddr *)&from, from_len) < 0)) {
        fprintf(stderr, "test_client: cannot connect from %s: %s\n", source, strerror(errno));
        goto fail;
    }
    /* Each send goes out at once, so a request split into single bytes arrives that way. */
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&ss, len) < 0) {
        if (errno != EINPROGRESS) {
            if (verbose)
                fprintf(stderr, "test_client: connect %s port %d: %s\n", host, port,
                        strerror(errno));
            goto fail;
        }
        struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
        int err = 0;
        socklen_t errlen = sizeof(err);
        if (poll(&pfd, 1, TEST_CLIENT_TIMEOUT_MS) != 1 ||
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &errlen) < 0 || err != 0) {
            if (verbose)
                fprintf(stderr, "test_client: connect %s port %d: %s\n", host, port,
                        err ? strerror(err) : "timed out");
            goto fail;
        }
    }
    return c;
fail:
    if (c->fd >= 0)
        close(c->fd);
    free(c);
    return NULL;
}

struct test_client *test_client_connect(const char *host, int port, int rcvbuf)
{
    return client_open(host, port, rcvbuf, 1, NULL);
}

struct test_client *test_client_connect_from(const char *host, int port, const char *source)
{
    return client_open(host, port, 0, 1, source);
}

struct test_client *test_client_try_connect(const char *host, int port)
{
    return client_open(host, port, 0, 0, NULL);
}

/* Wait until the socket is ready for what OpenSSL asked for (its last result `rc`).
 * 0 to retry, -1 on a failure or at the deadline. */
static int tls_wait(struct test_client *c, int rc, long long deadline)
{
    int err = SSL_get_error(c->ssl, rc);
    short events = err == SSL_ERROR_WANT_READ ? POLLIN : err == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
    long long left = deadline - chatd_now_ms();
    if (!events || left <= 0)
        return -1;
    struct pollfd pfd = {.fd = c->fd, .events = events};
    return poll(&pfd, 1, (int)left) < 0 && errno != EINTR ? -1 : 0;
}

int test_client_start_tls(struct test_client *c, const struct test_tls_options *tls, int quiet)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        goto fail;
    if (tls->max_version) {
        SSL_CTX_set_security_level(ctx, 0); /* old versions need the old ciphers */
        SSL_CTX_set_min_proto_version(ctx, 0);
        SSL_CTX_set_max_proto_version(ctx, tls->max_version);
    }
    if (tls->ca_file) {
        if (!SSL_CTX_load_verify_locations(ctx, tls->ca_file, NULL))
            goto fail_ctx;
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    c->ssl = SSL_new(ctx);
    SSL_CTX_free(ctx); /* the SSL holds it */
    if (!c->ssl || !SSL_set_fd(c->ssl, c->fd))
        goto fail;
    if (tls->ca_file)
        SSL_set1_host(c->ssl, "localhost");
    char name[] = "localhost"; /* OpenSSL's macro takes a mutable string */
    SSL_set_tlsext_host_name(c->ssl, name);
    long long deadline = chatd_now_ms() + TEST_CLIENT_TIMEOUT_MS;
    int rc;
    while ((rc = SSL_connect(c->ssl)) != 1) {
        if (tls_wait(c, rc, deadline) < 0)
            goto fail;
    }
    return 0;
fail_ctx:
    SSL_CTX_free(ctx);
fail:
    if (!quiet) {
        char reason[256] = "timed out or closed";
        unsigned long e = ERR_peek_last_error();
        if (e)
            ERR_error_string_n(e, reason, sizeof(reason));
        fprintf(stderr, "test_client: TLS handshake: %s\n", reason);
    }
    ERR_clear_error();
    return -1;
}

struct test_client *test_client_connect_tls(const char *host, int port,
                                            const struct test_tls_options *tls, int quiet)
{
    struct test_client *c = client_open(host, port, 0, !quiet, NULL);
    if (!c)
        return NULL;
    if (test_client_start_tls(c, tls, quiet) < 0) {
        if (!quiet)
            fprintf(stderr, "test_client: TLS with %s port %d failed\n", host, port);
        test_client_close(c);
        return NULL;
    }
    return c;
}

const char *test_client_tls_compression(const struct test_client *c)
{
    const COMP_METHOD *m = SSL_get_current_compression(c->ssl);
    return m ? SSL_COMP_get_name(m) : NULL;
}

int test_client_tls_peer_fingerprint(const struct test_client *c, char out[65])
{
    X509 *cert = SSL_get1_peer_certificate(c->ssl);
    unsigned char md[32];
    unsigned int n = 0;
    int ok = cert && X509_digest(cert, EVP_sha256(), md, &n) && n == 32;
    X509_free(cert);
    for (unsigned i = 0; ok && i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return ok ? 0 : -1;
}

void test_client_close(struct test_client *c)
{
    if (!c)
        return;
    SSL_free(c->ssl);
    close(c->fd);
    free(c);
}

int test_client_send(struct test_client *c, const void *data, size_t len, int timeout_ms)
{
    const char *p = data;
    long long deadline = chatd_now_ms() + timeout_ms;
    while (len > 0 && c->ssl) {
        int n = SSL_write(c->ssl, p, len > INT32_MAX ? INT32_MAX : (int)len);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        } else if (tls_wait(c, n, deadline) < 0) {
            errno = chatd_now_ms() >= deadline ? ETIMEDOUT : EPIPE;
            return -1;
        }
    }
    while (len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        long long left = deadline - chatd_now_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
        if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
            return -1;
    }
    return 0;
}

int test_client_send_str(struct test_client *c, const char *text)
{
    return test_client_send(c, text, strlen(text), TEST_CLIENT_TIMEOUT_MS);
}

int test_client_send_json(struct test_client *c, const json_t *msg)
{
    char *text = json_dumps(msg, JSON_COMPACT);
    if (!text)
        return -1;
    int rc = test_client_send_str(c, text);
    free(text);
    return rc;
}

int test_client_shutdown_write(struct test_client *c)
{
    if (c->ssl)
        SSL_shutdown(c->ssl); /* sends close_notify; reading goes on */
    return shutdown(c->fd, SHUT_WR);
}

void test_client_reset(struct test_client *c)
{
    struct linger now = {.l_onoff = 1, .l_linger = 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &now, sizeof(now));
    test_client_close(c);
}

/* fill() for a TLS client: a readable socket may hold only part of a record. */
static ssize_t fill_tls(struct test_client *c, int timeout_ms)
{
    long long deadline = chatd_now_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
    for (;;) {
        int n = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - c->len));
        if (n > 0) {
            c->len += (size_t)n;
            return n;
        }
        int err = SSL_get_error(c->ssl, n);
        if (err == SSL_ERROR_ZERO_RETURN || err == SSL_ERROR_SYSCALL || err == SSL_ERROR_SSL) {
            ERR_clear_error();
            c->reset = err != SSL_ERROR_ZERO_RETURN;
            return 0; /* closed, cleanly or not: the end either way */
        }
        if (tls_wait(c, n, deadline) < 0)
            return TEST_CLIENT_TIMEOUT;
    }
}

/* Read what is available into the buffer, waiting up to timeout_ms for something.
 * Returns bytes read (> 0), 0 at the end of the stream, TEST_CLIENT_TIMEOUT or
 * TEST_CLIENT_ERROR. */
static ssize_t fill(struct test_client *c, int timeout_ms)
{
    if (c->len == sizeof(c->buf))
        return TEST_CLIENT_ERROR;
    if (c->ssl)
        return fill_tls(c, timeout_ms);
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    int rc = poll(&pfd, 1, timeout_ms < 0 ? 0 : timeout_ms);
    if (rc < 0)
        return errno == EINTR ? TEST_CLIENT_TIMEOUT : TEST_CLIENT_ERROR;
    if (rc == 0)
        return TEST_CLIENT_TIMEOUT;
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
    if (n > 0) {
        c->len += (size_t)n;
        return n;
    }
    if (n == 0)
        return 0;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return TEST_CLIENT_TIMEOUT;
    if (errno == ECONNRESET) {
        /* A server closing with unread input resets the connection: still a close. */
        c->reset = 1;
        return 0;
    }
    return TEST_CLIENT_ERROR;
}

ssize_t test_client_read_line(struct test_client *c, char *line, size_t cap, int timeout_ms)
{
    long long deadline = chatd_now_ms() + timeout_ms;
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (nl) {
            size_t n = (size_t)(nl - c->buf) + 1;
            if (n + 1 > cap)
                return TEST_CLIENT_ERROR;
            memcpy(line, c->buf, n);
            line[n] = '\0';
            memmove(c->buf, c->buf + n, c->len - n);
            c->len -= n;
            return (ssize_t)n;
        }
        ssize_t got = fill(c, (int)(deadline - chatd_now_ms()));
        if (got == 0)
            return c->len == 0 ? TEST_CLIENT_EOF : TEST_CLIENT_ERROR;
        if (got < 0)
            return got;
    }
}

json_t *test_client_read_json(struct test_client *c, int timeout_ms)
{
    char *line = malloc(TEST_CLIENT_BUF_SIZE + 1);
    if (!line)
        return NULL;
    ssize_t n = test_client_read_line(c, line, TEST_CLIENT_BUF_SIZE + 1, timeout_ms);
    if (n <= 0) {
        free(line);
        fprintf(stderr, "test_client: expected a line, got %s\n",
                n == TEST_CLIENT_EOF       ? "the end of the connection"
                : n == TEST_CLIENT_TIMEOUT ? "nothing (timed out)"
                                           : "an error or a partial line");
        return NULL;
    }
    json_error_t error;
    /* The whole line up to its '\n' must be one object: a raw newline inside a reply
     * would have cut it short, and the parse below would fail. */
    json_t *msg = json_loadb(line, (size_t)n - 1, 0, &error);
    if (!msg) {
        fprintf(stderr, "test_client: line is not one JSON object (%s): %s", error.text, line);
    } else if (!json_is_object(msg)) {
        fprintf(stderr, "test_client: line is not a JSON object: %s", line);
        json_decref(msg);
        msg = NULL;
    }
    free(line);
    return msg;
}

char *test_client_read_to_eof(struct test_client *c, int timeout_ms)
{
    long long deadline = chatd_now_ms() + timeout_ms;
    size_t cap = 2 * (TEST_CLIENT_BUF_SIZE + 1), len = 0;
    char *all = malloc(cap);
    if (!all)
        return NULL;
    all[0] = '\0';
    for (;;) {
        /* Room for the longest line test_client_read_line returns, with its NUL. */
        if (cap - len < TEST_CLIENT_BUF_SIZE + 1) {
            char *more = realloc(all, cap * 2);
            if (!more) {
                free(all);
                return NULL;
            }
            all = more;
            cap *= 2;
        }
        ssize_t n =
            test_client_read_line(c, all + len, cap - len, (int)(deadline - chatd_now_ms()));
        if (n == TEST_CLIENT_EOF)
            return all;
        if (n < 0) {
            fprintf(stderr, "test_client: no end of the stream (%s) after: %s\n",
                    n == TEST_CLIENT_TIMEOUT ? "timed out" : "an error or a partial line", all);
            free(all);
            return NULL;
        }
        len += (size_t)n;
    }
}

long test_client_wait_closed(struct test_client *c, int timeout_ms)
{
    long long deadline = chatd_now_ms() + timeout_ms;
    long lines = 0;
    for (;;) {
        char *nl;
        while ((nl = memchr(c->buf, '\n', c->len)) != NULL) {
            size_t n = (size_t)(nl - c->buf) + 1;
            memmove(c->buf, c->buf + n, c->len - n);
            c->len -= n;
            lines++;
        }
        if (c->len == sizeof(c->buf))
            c->len = 0; /* an over-long line: drop it, only the close matters here */
        long long left = deadline - chatd_now_ms();
        if (left <= 0)
            return -1;
        ssize_t got = fill(c, (int)left);
        if (got == 0)
            return lines;
        if (got == TEST_CLIENT_ERROR)
            return -1;
    }
}

int test_client_expect_eof(struct test_client *c, int timeout_ms)
{
    if (c->len > 0)
        return 0;
    return fill(c, timeout_ms) == 0;
}

/* Look up the queues of the connection between local port `mine` and `theirs` in a
 * /proc/net/tcp file: the send queue of our end and the receive queue of theirs.
 * Returns 0 when both ends were found. */
static int read_queues(const char *path, int mine, int theirs, unsigned long *our_tx,
                       unsigned long *their_rx)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[512];
    int found = 0;
    while (fgets(line, sizeof(line), f)) {
        unsigned local, remote, state;
        unsigned long tx, rx;
        if (sscanf(line, " %*d: %*[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%x %x %lx:%lx", &local, &remote,
                   &state, &tx, &rx) != 5)
            continue;
        if ((int)local == mine && (int)remote == theirs) {
            *our_tx = tx;
            found |= 1;
        } else if ((int)local == theirs && (int)remote == mine) {
            *their_rx = rx;
            found |= 2;
        }
    }
    fclose(f);
    return found == 3 ? 0 : -1;
}

int test_client_wait_readable(struct test_client *c, int timeout_ms)
{
    if (c->len > 0 || (c->ssl && SSL_pending(c->ssl) > 0))
        return 1;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int n = poll(&p, 1, timeout_ms);
    return n < 0 ? -1 : n > 0;
}

int test_client_wait_peer_read(struct test_client *c, int timeout_ms)
{
    struct sockaddr_storage me, peer;
    socklen_t len = sizeof(me);
    if (getsockname(c->fd, (struct sockaddr *)&me, &len) < 0)
        return -1;
    len = sizeof(peer);
    if (getpeername(c->fd, (struct sockaddr *)&peer, &len) < 0)
        return -1;
    const char *path = me.ss_family == AF_INET ? "/proc/net/tcp" : "/proc/net/tcp6";
    long long deadline = chatd_now_ms() + timeout_ms;
    for (;;) {
        unsigned long tx = 1, rx = 1;
        if (read_queues(path, addr_port(&me), addr_port(&peer), &tx, &rx) < 0)
            return -1;
        if (tx == 0 && rx == 0)
            return 0;
        if (chatd_now_ms() >= deadline)
            return -1;
        chatd_sleep_ms(10);
    }
}

char *test_http_raw(int port, const char *request)
{
    struct test_client *c = test_client_connect("127.0.0.1", port, 0);
    if (!c)
        return NULL;
    test_client_send_str(c, request);
    size_t cap = 1 << 16, used = 0;
    char *text = calloc(1, cap);
    char line[4096];
    ssize_t n;
    while (text &&
           (n = test_client_read_line(c, line, sizeof(line), 3 * TEST_CLIENT_TIMEOUT_MS)) > 0 &&
           used + (size_t)n + 1 < cap) {
        memcpy(text + used, line, (size_t)n);
        used += (size_t)n;
    }
    test_client_close(c);
    return text;
}

char *test_http(int port, const char *method, const char *path)
{
    return test_http_with(port, method, path, "");
}

char *test_http_with(int port, const char *method, const char *path, const char *headers)
{
    char request[4096];
    snprintf(request, sizeof(request), "%s %s HTTP/1.0\r\nHost: x\r\nContent-Length: 0\r\n%s\r\n",
             method, path, headers);
    return test_http_raw(port, request);
}

char *test_http_get(int port, const char *path)
{
    return test_http(port, "GET", path);
}

double test_metric(int port, const char *name)
{
    char *text = test_http_get(port, "/metrics");
    if (!text)
        return -1;
    char line[128];
    snprintf(line, sizeof(line), "\n%s ", name);
    const char *at = strstr(text, line);
    double value = at ? strtod(at + strlen(line), NULL) : -1;
    free(text);
    return value;
}
