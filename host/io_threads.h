/* io_threads.h - the I/O threads ([server] io_threads): the plain TCP sessions' reads and
 * writes on threads of their own, each with its own event base, while everything else
 * stays on the loop thread (docs/architecture.md, "I/O threads").
 *
 * An io_conn is one session's socket on one I/O thread. The loop (transport_tcp_io.c)
 * asks it for input and hands it output; the thread reports back by session id (input
 * arrived or ended, output written, a write failed), once per batch. Every function here
 * is called on the loop thread. */
#ifndef CHATD_HOST_IO_THREADS_H
#define CHATD_HOST_IO_THREADS_H

#include <chatd/plugin.h>
#include <event2/util.h>
#include <stddef.h>
#include <sys/types.h>

struct config;
struct evbuffer;
struct server;
struct io_conn;

/* The threads [server] io_threads asks for on this machine: auto (-1) is the online
 * cores less one, at least 1 and at most 16. */
int io_threads_wanted(const struct config *cfg);
/* Start them (none for 0). -1 with the reason in err. */
int io_threads_start(struct server *srv, char *err, size_t errlen);
/* Stop and join them; every connection must have been released. */
void io_threads_stop(struct server *srv);

/* Take the accepted socket fd for session `id` onto the least-loaded thread, or NULL
 * when out of memory (fd is then still the caller's). */
struct io_conn *io_conn_open(struct server *srv, evutil_socket_t fd, chatd_session_id id);
/* The session is gone: its thread drops what was not written, closes the socket and
 * frees the connection. c is not touched again. */
void io_conn_release(struct io_conn *c);
/* Want input (on) or not. Returns 1 when input (or its end, or an error) already
 * waits, to be read now. */
int io_conn_want_input(struct io_conn *c, int on);
/* recv(2) for the session: from what the thread read; with nothing there, -1 with
 * errno EAGAIN, and the thread reads again. */
ssize_t io_conn_read(struct io_conn *c, void *buf, size_t len);
/* Hand over all of out to be written, in order after what was handed before. 0, or -1
 * with errno. */
int io_conn_write(struct io_conn *c, struct evbuffer *out);
/* Bytes handed over and not yet written. */
size_t io_conn_backlog(struct io_conn *c);
/* Report each write that makes progress (on), or stop. */
void io_conn_watch_writes(struct io_conn *c, int on);
/* A slow reader is cut off: drop what was handed over after the line being written.
 * Returns the bytes dropped. */
size_t io_conn_cut_after_line(struct io_conn *c);

#endif
