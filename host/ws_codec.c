/* ws_codec.c - wslay over evbuffers (see ws_codec.h). */
#include "ws_codec.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <wslay/wslay.h>

struct ws_codec {
    wslay_event_context_ptr ctx;
    const struct ws_codec_handler *handler;
    void *arg;
    struct evbuffer *in;  /* during ws_codec_input */
    struct evbuffer *out; /* during any call that writes */
    int protocol_error;   /* a message wslay takes that RFC 6455 does not */
    int closed;           /* our own close frame went out instead of wslay's */
    unsigned fragments;   /* frames of the message being received */
};

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    (void)flags;
    struct ws_codec *c = user;
    int n = c->in ? evbuffer_remove(c->in, buf, len) : 0;
    if (n > 0)
        return n;
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    (void)flags;
    struct ws_codec *c = user;
    if (c->out && evbuffer_add(c->out, data, len) == 0)
        return (ssize_t)len;
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

/* Frames of one message at most: wslay keeps every fragment in a chunk of its own, so
 * a message of many tiny fragments would cost far more memory than its bytes. */
#define FRAGMENTS_MAX 256

static void on_frame_start(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_start_arg *arg, void *user)
{
    struct ws_codec *c = user;
    if (arg->opcode & 0x8)
        return; /* a control frame, between fragments or not */
    c->fragments = arg->opcode == WSLAY_CONTINUATION_FRAME ? c->fragments + 1 : 1;
    if (c->fragments > FRAGMENTS_MAX && !wslay_event_get_close_sent(ctx)) {
        wslay_event_queue_close(ctx, WS_CLOSE_TOO_BIG, (const uint8_t *)"too many fragments", 18);
        wslay_event_shutdown_read(ctx);
    }
}

static void on_message(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                       void *user)
{
    struct ws_codec *c = user;
    if (arg->opcode == WSLAY_CONNECTION_CLOSE && arg->msg_length == 1)
        c->protocol_error = 1; /* a close payload is empty or starts with a 2-byte code */
    else if (arg->opcode == WSLAY_TEXT_FRAME)
        c->handler->on_text(c->arg, arg->msg, arg->msg_length);
    else if (arg->opcode == WSLAY_BINARY_FRAME)
        wslay_event_queue_close(ctx, WS_CLOSE_UNSUPPORTED,
                                (const uint8_t *)"binary messages are not accepted", 32);
    else if (arg->opcode == WSLAY_PONG && c->handler->on_pong)
        c->handler->on_pong(c->arg);
}

struct ws_codec *ws_codec_new(size_t max_message, const struct ws_codec_handler *handler, void *arg)
{
    static const struct wslay_event_callbacks callbacks = {.recv_callback = on_recv,
                                                           .send_callback = on_send,
                                                           .on_frame_recv_start_callback =
                                                               on_frame_start,
                                                           .on_msg_recv_callback = on_message};
    struct ws_codec *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->handler = handler;
    c->arg = arg;
    if (wslay_event_context_server_init(&c->ctx, &callbacks, c) != 0) {
        free(c);
        return NULL;
    }
    wslay_event_config_set_max_recv_msg_length(c->ctx, max_message);
    return c;
}

void ws_codec_free(struct ws_codec *c)
{
    if (!c)
        return;
    wslay_event_context_free(c->ctx);
    free(c);
}

/* Write what wslay has queued. */
static int flush(struct ws_codec *c, struct evbuffer *out)
{
    if (c->closed)
        return -1;
    c->out = out;
    int rc = wslay_event_send(c->ctx);
    c->out = NULL;
    return rc;
}

/* wslay answers some protocol errors (a control frame fragmented or over 125 bytes, a
 * close payload of one byte) with an empty close frame, where RFC 6455 wants 1002; it
 * offers no way to change a queued close, so that one is never sent, and this is. */
static void write_protocol_error_close(struct ws_codec *c, struct evbuffer *out)
{
    static const uint8_t frame[] = {0x88, 0x02, WS_CLOSE_PROTOCOL_ERROR >> 8,
                                    WS_CLOSE_PROTOCOL_ERROR & 0xff};
    evbuffer_add(out, frame, sizeof(frame));
    c->closed = 1;
}

int ws_codec_input(struct ws_codec *c, struct evbuffer *in, struct evbuffer *out)
{
    if (c->closed) { /* its 1002 is written: nothing more is read, nor answered */
        evbuffer_drain(in, evbuffer_get_length(in));
        return -1;
    }
    c->in = in;
    c->out = out;
    int rc = wslay_event_get_read_enabled(c->ctx) ? wslay_event_recv(c->ctx) : 0;
    c->in = NULL;
    /* What wslay did not take (after a close) is dropped. */
    evbuffer_drain(in, evbuffer_get_length(in));
    if ((rc != 0 || c->protocol_error) && !wslay_event_get_close_sent(c->ctx)) {
        write_protocol_error_close(c, out);
        return -1;
    }
    if (flush(c, out) != 0 || rc != 0)
        return -1;
    return 0;
}

int ws_codec_send_text(struct ws_codec *c, const void *data, size_t len, struct evbuffer *out)
{
    struct wslay_event_msg msg = {WSLAY_TEXT_FRAME, data, len};
    if (wslay_event_queue_msg(c->ctx, &msg) != 0)
        return -1;
    return flush(c, out) == 0 ? 0 : -1;
}

int ws_codec_ping(struct ws_codec *c, struct evbuffer *out)
{
    struct wslay_event_msg msg = {WSLAY_PING, (const uint8_t *)"", 0};
    if (wslay_event_queue_msg(c->ctx, &msg) != 0)
        return -1;
    return flush(c, out) == 0 ? 0 : -1;
}

void ws_codec_close(struct ws_codec *c, uint16_t code, const char *reason, struct evbuffer *out)
{
    if (wslay_event_get_close_sent(c->ctx))
        return;
    wslay_event_queue_close(c->ctx, code, (const uint8_t *)reason, reason ? strlen(reason) : 0);
    wslay_event_shutdown_read(c->ctx);
    flush(c, out);
}

int ws_codec_closing(const struct ws_codec *c)
{
    return c->closed || wslay_event_get_close_sent(c->ctx) ||
           wslay_event_get_close_received(c->ctx);
}
