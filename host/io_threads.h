/* io_threads.h - the I/O threads ([server] io_threads): the TCP, TLS and upgraded
 * WebSocket sessions' reads and writes (TLS handshakes, WebSocket frames) on threads of their own,
 * each with its own event base, while everything else stays on the loop thread
 * (docs/architecture.md, "I/O threads").
 *
 * An io_conn is one session's socket on one I/O thread. The loop (transport_io.c)
 * asks it for input and hands it output; the thread reports back by session id (input
 * arrived or ended, output written, a write failed), once per batch. Every function here
 * is called on the loop thread. */
#ifndef CHATD_HOST_IO_THREADS_H
#define CHATD_HOST_IO_THREADS_H

#include "framer.h"
#include "request_parse.h"

#include <chatd/plugin.h>
#include <event2/util.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct config;
struct evbuffer;
struct server;
struct io_conn;

/* The threads [server] io_threads asks for on this machine: auto (-1) is the cores
 * chatd may run on (its CPU affinity) less one (none on one core), at most 16. */
int io_threads_wanted(const struct config *cfg);
/* Start them (none for 0). -1 with the reason in err. */
int io_threads_start(struct server *srv, char *err, size_t errlen);
/* Stop and join them; every connection must have been released. */
void io_threads_stop(struct server *srv);
/* Bytes the threads' connections hold of requests being read (0 without threads). */
size_t io_threads_input_bytes(const struct server *srv);

/* Take the accepted socket fd for session `id` onto the least-loaded thread, or NULL
 * when out of memory (fd is then still the caller's). With a TLS context (else NULL),
 * the thread does the handshake at once, within [tls] handshake_timeout of silence,
 * and reports TRANSPORT_IO_CONNECTED, or TRANSPORT_IO_FAILED, before any input. */
struct io_conn *io_conn_open(struct server *srv, evutil_socket_t fd, chatd_session_id id,
                             SSL_CTX *tls);
/* Take an upgraded WebSocket's socket fd for session `id` onto the least-loaded thread,
 * with its SSL when it is wss (established, its handshake done on the loop; else NULL)
 * and the bytes that came after the upgrade request (`early`, its first frames). The
 * thread answers pings, sends the keepalive's (reporting TRANSPORT_IO_NO_PONG when one
 * goes unanswered) and turns lines into messages. Takes fd, ssl and early whatever it
 * returns; NULL when out of memory (fd is then closed). */
struct io_conn *io_conn_open_ws(struct server *srv, evutil_socket_t fd, chatd_session_id id,
                                SSL *ssl, struct evbuffer *early);
/* The session is gone: its thread drops what was not written, closes the socket and
 * frees the connection; a WebSocket's thread first writes its last messages and a close
 * frame (1000, or 1001 when the server is `stopping`, then with one try only). c is not
 * touched again. */
void io_conn_release(struct io_conn *c, int stopping);
/* Want input (on) or not. Returns 1 when a frame (or the end, or an error) already
 * waits, to be taken now. */
int io_conn_want_input(struct io_conn *c, int on);
/* A frame the thread cut and parsed, or a mark where the input cannot go on. */
struct io_frame {
    struct io_frame *next;
    enum framer_status status; /* FRAMER_READY: parsed; FRAMER_TOO_LARGE or FRAMER_BAD */
    struct parsed_frame parsed;
    char bad_json[]; /* parsed.bad_json points here */
};
/* Frees f and its body, if not taken (NULL: nothing). */
void io_frame_free(struct io_frame *f);

struct io_input {
    struct io_frame *frame; /* the caller's */
    uint64_t bytes;         /* read since the last call, for the metrics */
    /* With no frame: */
    int ended;   /* the stream ended: every frame before the end was taken */
    int error;   /* a read failed (errno), or memory ran out */
    int partial; /* a begun frame waits for its rest */
};
/* The next of what the thread made of the input, in order: a frame (FRAMER_READY,
 * FRAMER_TOO_LARGE or FRAMER_BAD, the last two being the last), or FRAMER_NEED_MORE
 * with the state of the input. The thread reads on once the loop takes from a full
 * queue. */
enum framer_status io_conn_next(struct io_conn *c, struct io_input *in);
/* Hand over all of out to be written, in order after what was handed before. 0, or -1
 * with errno. */
int io_conn_write(struct io_conn *c, struct evbuffer *out);
/* Bytes handed over and not yet written. */
size_t io_conn_backlog(struct io_conn *c);
/* Report each write that makes progress (on), or stop. */
void io_conn_watch_writes(struct io_conn *c, int on);
/* Why c failed (a read's or a write's error, a report's): TLS's reason when it gave
 * one, else strerror(error). */
void io_conn_error_text(struct io_conn *c, int error, char *text, size_t cap);
/* A TLS connection's protocol version and cipher, once reported established. */
void io_conn_tls_names(struct io_conn *c, const char **version, const char **cipher);
/* A slow reader is cut off: drop what was handed over after the line being written (a
 * WebSocket's: every line not yet a message). Returns the bytes dropped. */
size_t io_conn_cut_after_line(struct io_conn *c);

#endif
