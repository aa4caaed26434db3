/* client.h - a minimal test client for chatd's wire protocol: connect, send raw bytes,
 * read one reply line with a timeout, and parse it with jansson.
 *
 * Every call that waits takes a timeout, so no test can hang on a silent server. */
#ifndef CHATD_TEST_CLIENT_H
#define CHATD_TEST_CLIENT_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

/* A generous default for one reply; no test asserts on how fast a reply comes. */
#define TEST_CLIENT_TIMEOUT_MS 5000

/* Results of test_client_read_line besides a line's length. */
#define TEST_CLIENT_EOF     0    /* the server closed the connection (or reset it) */
#define TEST_CLIENT_TIMEOUT (-1) /* nothing complete within the timeout */
#define TEST_CLIENT_ERROR   (-2) /* a socket error, or the line does not fit */

/* The longest line a client can receive. */
#define TEST_CLIENT_BUF_SIZE 65536

struct ssl_st;

struct test_client {
    int fd;
    struct ssl_st *ssl;             /* a TLS connection (test_client_connect_tls), or NULL */
    size_t len;                     /* bytes buffered in buf */
    int reset;                      /* the last read failed with ECONNRESET */
    char buf[TEST_CLIENT_BUF_SIZE]; /* received bytes not yet returned as lines */
};

/* Connect to host:port (IPv4 or IPv6 literal). rcvbuf > 0 sets SO_RCVBUF before the
 * connection is made. Returns a client the caller frees with test_client_close, or NULL
 * after printing why. */
struct test_client *test_client_connect(const char *host, int port, int rcvbuf);

/* test_client_connect from the local address `source` (such as 127.0.0.2: all of
 * 127.0.0.0/8 is this machine's). */
struct test_client *test_client_connect_from(const char *host, int port, const char *source);

/* test_client_connect without the message: for polling until a server listens. */
struct test_client *test_client_try_connect(const char *host, int port);

/* How a TLS test client checks the server. */
struct test_tls_options {
    const char *ca_file; /* trust this PEM certificate (name checked: localhost); NULL: no check */
    int max_version;     /* 0, or TLS1_1_VERSION etc. to offer no newer version */
};

/* Connect and do a TLS handshake; later calls speak TLS. NULL after printing why (the
 * handshake's failure included) unless quiet. */
struct test_client *test_client_connect_tls(const char *host, int port,
                                            const struct test_tls_options *tls, int quiet);

/* Do a TLS handshake on a client connected in plain (after bytes sent in plain, such as
 * a PROXY header); later calls speak TLS. 0, or -1 (printing why unless quiet). */
int test_client_start_tls(struct test_client *c, const struct test_tls_options *tls, int quiet);

/* The TLS connection's compression method's name, or NULL when there is none. */
const char *test_client_tls_compression(const struct test_client *c);
/* The server's certificate's SHA-256 fingerprint as hex (65 bytes with the NUL). */
int test_client_tls_peer_fingerprint(const struct test_client *c, char out[65]);

void test_client_close(struct test_client *c);

/* Send all `len` bytes, waiting at most timeout_ms in total. Returns 0, or -1 when the
 * connection failed (errno: EPIPE, ECONNRESET, ...) or ETIMEDOUT when the server did
 * not take the bytes in time. Never raises SIGPIPE. */
int test_client_send(struct test_client *c, const void *data, size_t len, int timeout_ms);

/* test_client_send of a NUL-terminated string. */
int test_client_send_str(struct test_client *c, const char *text);

/* Serialise `msg` compactly and send it. */
int test_client_send_json(struct test_client *c, const json_t *msg);

/* Half-close: tell the server no more bytes will come (shutdown SHUT_WR). */
int test_client_shutdown_write(struct test_client *c);

/* Close with a reset (SO_LINGER 0), as a client that is gone for good, and free c. */
void test_client_reset(struct test_client *c);

/* Read one line, '\n' included, into `line` (NUL-terminated). Returns its length, or
 * TEST_CLIENT_EOF, TEST_CLIENT_TIMEOUT or TEST_CLIENT_ERROR. Bytes received after the
 * line stay buffered for the next call. EOF is returned only once every complete line
 * was read; a partial line before EOF is returned as TEST_CLIENT_ERROR. */
ssize_t test_client_read_line(struct test_client *c, char *line, size_t cap, int timeout_ms);

/* Read one line and parse it. Fails (returns NULL, printing why) unless the line is one
 * JSON object followed by exactly one '\n' with no other raw newline in it. */
json_t *test_client_read_json(struct test_client *c, int timeout_ms);

/* Read every line until the server closes the connection, waiting at most timeout_ms
 * in all: the lines as they came, '\n' and all, joined in one NUL-terminated string the
 * caller frees ("" when the stream ends with no line). NULL, printing why and what came
 * before, on a timeout, an error or a partial line before the end. Plain and TLS alike. */
char *test_client_read_to_eof(struct test_client *c, int timeout_ms);

/* Wait until the server closes the connection, discarding any lines that come first.
 * Returns the number of complete lines discarded (>= 0) once the connection is closed,
 * or -1 if it is still open after timeout_ms (or on error). */
long test_client_wait_closed(struct test_client *c, int timeout_ms);

/* Whether the server closes the connection with no further byte: returns 1 if the next
 * read (waiting up to timeout_ms) reports the end of the stream, 0 otherwise. */
int test_client_expect_eof(struct test_client *c, int timeout_ms);

/* Wait up to timeout_ms for something to read (bytes already buffered count). Returns 1
 * when there is, 0 when nothing came in time, -1 on error. */
int test_client_wait_readable(struct test_client *c, int timeout_ms);

/* Wait until the server has read every byte this client sent: the client's send queue
 * and the server socket's receive queue are both empty (Linux: /proc/net/tcp and tcp6).
 * The server may still be acting on the last bytes it read. Returns 0, or -1 on timeout
 * or when the queues cannot be seen. */
int test_client_wait_peer_read(struct test_client *c, int timeout_ms);

/* Pick a port that is free on `host` now, by binding port 0. Returns it, or -1. */
int test_free_port(const char *host);

/* One HTTP/1.0 request (`method` `path`, empty body) to 127.0.0.1:port, the admin
 * listener; the whole response, headers and body (caller frees), or NULL when it cannot
 * connect. test_http_get is the GET. */
char *test_http(int port, const char *method, const char *path);
/* test_http with more header lines, each ended by "\r\n" (e.g. an Authorization). */
char *test_http_with(int port, const char *method, const char *path, const char *headers);
/* Send `request` as it is; the whole response, or NULL when it cannot connect. */
char *test_http_raw(int port, const char *request);
char *test_http_get(int port, const char *path);
/* A series' value on the admin listener's /metrics at `port` (-1: not shown or no answer). */
double test_metric(int port, const char *name);

#endif
