/* ws_codec.h - RFC 6455 frames with wslay, between evbuffers: bytes from the client in,
 * whole text messages out to a callback; text messages and control frames to the
 * client written into an evbuffer. No I/O of its own, so the transport (transport_ws.c)
 * and the fuzz target use it alike. One codec is used by one thread at a time. */
#ifndef CHATD_HOST_WS_CODEC_H
#define CHATD_HOST_WS_CODEC_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct ws_codec;

/* Close codes chatd sends. */
#define WS_CLOSE_NORMAL         1000
#define WS_CLOSE_GOING_AWAY     1001
#define WS_CLOSE_PROTOCOL_ERROR 1002
#define WS_CLOSE_UNSUPPORTED    1003 /* a binary message */
#define WS_CLOSE_POLICY         1008
#define WS_CLOSE_TOO_BIG        1009 /* over the message size, or in too many fragments */

struct ws_codec_handler {
    /* A complete text message (reassembled, UTF-8 checked), borrowed for the call. */
    void (*on_text)(void *arg, const uint8_t *msg, size_t len);
    /* A pong came (the keepalive's answer). NULL: not told. */
    void (*on_pong)(void *arg);
};

/* A server side codec taking messages of at most max_message bytes (larger: close
 * 1009). NULL when out of memory. */
struct ws_codec *ws_codec_new(size_t max_message, const struct ws_codec_handler *handler,
                              void *arg);
void ws_codec_free(struct ws_codec *c);

/* Take all of `in` (the client's bytes): messages go to the handler, and what the
 * protocol answers (pong, close) is written to `out`. -1 when the connection is to end
 * (a protocol error, whose close frame is in `out`, or out of memory). */
int ws_codec_input(struct ws_codec *c, struct evbuffer *in, struct evbuffer *out);
/* Write one text message to `out`. -1 when no more may be sent (a close went out). */
int ws_codec_send_text(struct ws_codec *c, const void *data, size_t len, struct evbuffer *out);
/* Write a ping (the keepalive). */
int ws_codec_ping(struct ws_codec *c, struct evbuffer *out);
/* Write a close frame with `code` (once; later calls do nothing) and stop reading. */
void ws_codec_close(struct ws_codec *c, uint16_t code, const char *reason, struct evbuffer *out);
/* 1 once a close frame was sent or received: the connection is ending. */
int ws_codec_closing(const struct ws_codec *c);

#endif
