/* conn.h - one TCP connection to chatd: a non-blocking connect (then a TLS handshake
 * with --tls, and a WebSocket upgrade with --ws), output gathered in a buffer and
 * written once per loop iteration (however many requests were queued in that
 * iteration), input read in large chunks and handed over as lines.
 *
 * With --ws (ws.c) each request committed leaves as one masked text frame, and each
 * text message from the server is handed over as a line; pings are answered.
 *
 * Reads go into one scratch buffer shared by all connections; only the unfinished end
 * of a chunk is kept per connection, so 10,000 idle connections cost little memory.
 * Nothing here allocates per message. */
#ifndef CHATD_BENCH_CONN_H
#define CHATD_BENCH_CONN_H

#include <event2/event.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

struct conn;
struct ssl_st;

struct conn_ops {
    /* The connection is established (what was queued before is being sent). */
    void (*on_connect)(struct conn *c);
    /* One line from the server, without its '\n'; line[len] is writable scratch. The
     * callback may close, or close and reopen, the connection. */
    void (*on_line)(struct conn *c, char *line, size_t len);
    /* The server closed the connection, or it failed; the connection is closed now. */
    void (*on_close)(struct conn *c, const char *why);
};

struct conn {
    int fd; /* -1 when closed */
    int connected;
    unsigned gen; /* changes at every close, so a read loop sees a reopen */
    const struct conn_ops *ops;
    void *owner; /* the workload's */
    struct event *rev, *wev;
    char *out;
    size_t out_off, out_len, out_cap;
    char *tail; /* an unfinished line from the last read */
    size_t tail_len, tail_cap;
    int dirty, blocked;
    struct ssl_st *ssl; /* with --tls, once connecting */
    int upgrading;      /* --ws: the upgrade request is sent, its answer awaited */
    char ws_accept[29]; /* --ws: the Sec-WebSocket-Accept the answer must carry */
    struct conn *next_dirty;
    int64_t connect_start_ns;
};

/* Make c a closed connection with no buffers (what zeroed memory is not: fd 0). */
void conn_init(struct conn *c);

/* Set up the flush event and the read scratch for this loop. Call once. */
void conn_system_init(struct event_base *base);
/* From now on every connection speaks TLS with the server at `host` (an IPv4 address,
 * which its certificate must name unless insecure), trusting ca_file (NULL: the
 * system's CAs). Exits on an unusable CA file. */
void conn_tls_init(const char *host, const char *ca_file, int insecure);
/* From now on every connection speaks WebSocket (after TLS, if on): it is established
 * once the server has answered the upgrade. */
void conn_ws_init(void);
/* Free them, once every connection is freed. */
void conn_system_free(void);
/* Bytes received on every connection so far (after TLS, before WebSocket unframing). */
uint64_t conn_bytes_received(void);

/* Start connecting. Returns 0, or -1 with errno set (e.g. EMFILE). */
int conn_open(struct conn *c, const struct sockaddr_in *addr, const struct conn_ops *ops,
              void *owner);

/* Close now; unsent output is dropped. Buffers are kept for a reopen. */
void conn_close(struct conn *c);

/* Free the buffers of a closed connection. */
void conn_free(struct conn *c);

/* Room for len more bytes at the end of the output; write them, then conn_commit.
 * Each commit is whole lines (with --ws: exactly one, the frame's text and '\n'). */
char *conn_reserve(struct conn *c, size_t len);
void conn_commit(struct conn *c, size_t len);

#endif
