/* conn.h - the client's connection to chatd: connecting with a timeout, sending
 * requests with ids, reading the server's lines (one JSON object per line), telling
 * replies from pushes, and failing cleanly on a closed connection, a bad line or a
 * reply that does not come in time. Runs on a libevent base; one thread. */
#ifndef CHAT_CONN_H
#define CHAT_CONN_H

#include "commands.h"
#include "tls.h"

#include <event2/event.h>
#include <jansson.h>
#include <stddef.h>

/* The longest line accepted from the server; anything longer is a bad reply. */
#define CHAT_CONN_MAX_LINE (1024 * 1024)

/* What the connection tells its owner. Every json_t is borrowed until the call returns.
 * A handler may send more requests; it must not free the connection (break the event
 * loop instead, and free it afterwards). */
struct chat_conn_handlers {
    /* The reply to a request sent with chat_conn_send: the command and the name it was
     * sent with, the request as sent, and the reply, which is "<cmd>_reply" or a generic
     * "error" with our id and always has a string "result". */
    void (*on_reply)(void *ctx, enum chat_cmd cmd, const char *name, const json_t *req,
                     const json_t *reply);
    /* A line that is no reply: a push (*_recv, presence, friend_added, receipt, or one
     * this client does not know), an ack_reply (acks carry no id), or a generic error
     * without an id, such as
     * {"cmd":"error","result":"busy","reason":"too many connections"}. */
    void (*on_push)(void *ctx, const json_t *push);
    /* The connection is over. `exit_code` is CHAT_EXIT_CONNECTION (closed, lost, no
     * reply in time) or CHAT_EXIT_PROTOCOL (a bad line); `message` says what happened,
     * in a sentence without "chat: " and without a newline. Called at most once; after
     * it nothing else is called. */
    void (*on_fail)(void *ctx, int exit_code, const char *message);
};

struct chat_conn;

/* Connect to host:port (a name, an IPv4 or an IPv6 address), trying each address in
 * turn, waiting at most timeout_ms in all. Returns a connected, non-blocking socket, or
 * -1 with the reason in err, e.g. "cannot connect to 127.0.0.1:8000: Connection refused". */
int chat_connect(const char *host, const char *port, int timeout_ms, char *err, size_t cap);

/* Take over the connected socket `fd` (closed by chat_conn_free), speaking TLS with the
 * server `host` when tls->enabled. A request not answered within reply_timeout_ms fails
 * the connection. `h` is copied; `ctx` is passed to the handlers. NULL with the reason
 * in err (fd is then closed). */
struct chat_conn *chat_conn_new(struct event_base *base, int fd, int reply_timeout_ms,
                                const struct chat_tls *tls, const char *host,
                                const struct chat_conn_handlers *h, void *ctx, char *err,
                                size_t cap);

void chat_conn_free(struct chat_conn *c);

/* Send `req` (borrowed; an "id" is added to it) for command `cmd` about `name` (copied,
 * may be NULL), to be matched with its reply. Returns 0, or -1 when out of memory or
 * the connection has failed. */
int chat_conn_send(struct chat_conn *c, enum chat_cmd cmd, const char *name, json_t *req);

/* Send `req` (borrowed) as it is, without an id and expecting no reply (an ack). 0, or
 * -1 when out of memory or the connection has failed. */
int chat_conn_send_oneway(struct chat_conn *c, json_t *req);

/* Requests sent and not answered yet (keep-alive pings included). */
size_t chat_conn_pending(const struct chat_conn *c);

/* Send a ping whenever nothing was sent for interval_ms, so that the server's idle
 * timeout never closes a connection that only listens. Its replies are not reported. */
int chat_conn_keepalive(struct chat_conn *c, int interval_ms);

#endif
