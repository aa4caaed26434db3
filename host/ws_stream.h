/* ws_stream.h - a WebSocket session's traffic in the session's terms, over ws_codec:
 * the client's frames in, each text message that holds one JSON value handed on as a
 * line; the session's lines out as text messages; the keepalive's pings. The loop's
 * transport (transport_ws.c, io_threads = 0, and the HTTP side before the upgrade) and
 * an I/O thread's connection (io_threads.c) use it alike. No I/O and no lock: one thread
 * at a time. */
#ifndef CHATD_HOST_WS_STREAM_H
#define CHATD_HOST_WS_STREAM_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct ws_stream;

/* Bytes of messages waiting for the socket at most: lines become messages only while
 * less than this waits, so a slow reader's backlog stays in the session's lines, where
 * its output limits see it. */
#define WS_WIRE_MAX 16384

/* A stream taking messages of at most max_message bytes. NULL when out of memory. */
struct ws_stream *ws_stream_new(size_t max_message);
void ws_stream_free(struct ws_stream *ws);

/* What ws_stream_input saw besides messages. */
#define WS_STREAM_ENDED  1u /* the stream ends: a close, a protocol error, or UNREAD */
#define WS_STREAM_PONG   2u /* the keepalive's pong came: the next ping is due in an interval */
#define WS_STREAM_UNREAD 4u /* the client sends pings and does not read: closed with 1008 */

/* Take all of `in` (the client's bytes). Each text message holding exactly one JSON
 * value goes to `lines` with a newline after it; one that does not becomes "]" (no value
 * starts with it, so the session answers bad_json and closes after what came before)
 * and nothing after it is taken. What the protocol answers (pongs, a close) goes to
 * `wire`. Returns WS_STREAM_* bits. */
unsigned ws_stream_input(struct ws_stream *ws, struct evbuffer *in, struct evbuffer *lines,
                         struct evbuffer *wire);
/* Whole lines from `lines` into text messages in `wire`: at least one if there is one,
 * then while `wire` holds less than WS_WIRE_MAX, or all of them (`all`). After a close,
 * lines are dropped. Returns the line bytes taken. */
size_t ws_stream_send_lines(struct ws_stream *ws, struct evbuffer *lines, struct evbuffer *wire,
                            int all);

/* The keepalive's timer came. */
enum ws_keepalive {
    WS_KEEPALIVE_PINGED, /* a ping went to `wire`: wait pong_timeout for its pong */
    WS_KEEPALIVE_WAIT,   /* the pong may wait behind input the session does not read yet:
                          * wait pong_timeout again */
    WS_KEEPALIVE_DEAD,   /* no pong: a close 1001 went to `wire`; disconnect */
};
/* `reading`: the session takes input now (a pong would have been seen). */
enum ws_keepalive ws_stream_keepalive(struct ws_stream *ws, int reading, struct evbuffer *wire);

/* A close frame with `code` to `wire` (once), after which nothing more is read or sent. */
void ws_stream_close(struct ws_stream *ws, uint16_t code, const char *reason,
                     struct evbuffer *wire);

#endif
