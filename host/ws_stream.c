/* ws_stream.c - a WebSocket session's traffic over ws_codec (see ws_stream.h). */
#include "ws_stream.h"

#include "framer.h"
#include "ws_codec.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

/* Control frames (pongs, a close) waiting beyond the messages' share of `wire` at most:
 * a client that sends pings and never reads is disconnected past it. */
#define WS_CONTROL_MAX 65536

struct ws_stream {
    struct ws_codec *codec;
    size_t max_message;
    struct evbuffer *lines; /* during ws_stream_input: where messages go */
    unsigned seen;          /* during ws_stream_input: WS_STREAM_* */
    int refused;            /* a message was not one JSON value: nothing more is taken */
    int awaiting_pong;      /* a ping went out and no pong came yet */
    char *scratch;          /* a message and its newline, for the one-value check */
    size_t scratch_cap;
};

/* 1 when the len bytes at text (the last a newline) hold exactly one JSON value and
 * whitespace around it: the session's framer then finds that value again by itself. */
static int one_value(const char *text, size_t len)
{
    struct framer check;
    struct frame frame;
    framer_init(&check, len);
    if (framer_next(&check, text, len, &frame) != FRAMER_READY)
        return 0;
    for (size_t i = frame.consumed; i < len; i++) {
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r' && text[i] != '\n')
            return 0;
    }
    return 1;
}

static void on_text(void *arg, const uint8_t *msg, size_t len)
{
    struct ws_stream *ws = arg;
    if (ws->refused)
        return;
    if (len + 1 > ws->scratch_cap) {
        char *grown = realloc(ws->scratch, len + 1);
        if (!grown) {
            /* Out of memory: refused as if it were not JSON, which ends the session. */
            ws->refused = 1;
            evbuffer_add(ws->lines, "]", 1);
            return;
        }
        ws->scratch = grown;
        ws->scratch_cap = len + 1;
    }
    if (len > 0) /* an empty message's msg may be NULL */
        memcpy(ws->scratch, msg, len);
    ws->scratch[len] = '\n';
    if (one_value(ws->scratch, len + 1)) {
        evbuffer_add(ws->lines, ws->scratch, len + 1);
        return;
    }
    ws->refused = 1;
    evbuffer_add(ws->lines, "]", 1);
}

static void on_pong(void *arg)
{
    struct ws_stream *ws = arg;
    ws->awaiting_pong = 0;
    ws->seen |= WS_STREAM_PONG;
}

static const struct ws_codec_handler handler = {.on_text = on_text, .on_pong = on_pong};

struct ws_stream *ws_stream_new(size_t max_message)
{
    struct ws_stream *ws = calloc(1, sizeof(*ws));
    if (!ws)
        return NULL;
    ws->max_message = max_message;
    ws->codec = ws_codec_new(max_message, &handler, ws);
    if (!ws->codec) {
        free(ws);
        return NULL;
    }
    return ws;
}

void ws_stream_free(struct ws_stream *ws)
{
    if (!ws)
        return;
    ws_codec_free(ws->codec);
    free(ws->scratch);
    free(ws);
}

unsigned ws_stream_input(struct ws_stream *ws, struct evbuffer *in, struct evbuffer *lines,
                         struct evbuffer *wire)
{
    if (evbuffer_get_length(in) == 0)
        return 0;
    ws->lines = lines;
    ws->seen = 0;
    int rc = ws_codec_input(ws->codec, in, wire);
    ws->lines = NULL;
    unsigned seen = ws->seen;
    /* Messages go to `wire` only while it holds less than WS_WIRE_MAX (one may go past
     * it); beyond that it is pongs and closes for a client that does not read. */
    if (rc == 0 && evbuffer_get_length(wire) > WS_WIRE_MAX + ws->max_message + WS_CONTROL_MAX) {
        ws_codec_close(ws->codec, WS_CLOSE_POLICY, "output not read", wire);
        return seen | WS_STREAM_UNREAD | WS_STREAM_ENDED;
    }
    if (rc < 0 || ws_codec_closing(ws->codec))
        seen |= WS_STREAM_ENDED;
    return seen;
}

size_t ws_stream_send_lines(struct ws_stream *ws, struct evbuffer *lines, struct evbuffer *wire,
                            int all)
{
    size_t moved = 0;
    while (evbuffer_get_length(lines) > 0 &&
           (all || moved == 0 || evbuffer_get_length(wire) < WS_WIRE_MAX)) {
        struct evbuffer_ptr nl = evbuffer_search(lines, "\n", 1, NULL);
        if (nl.pos < 0)
            break;
        size_t n = (size_t)nl.pos;
        const unsigned char *line = evbuffer_pullup(lines, (ev_ssize_t)n + 1);
        if (!line || ws_codec_send_text(ws->codec, line, n, wire) < 0) {
            /* Closed: nothing more goes out. */
            moved += evbuffer_get_length(lines);
            evbuffer_drain(lines, evbuffer_get_length(lines));
            break;
        }
        evbuffer_drain(lines, n + 1);
        moved += n + 1;
    }
    return moved;
}

enum ws_keepalive ws_stream_keepalive(struct ws_stream *ws, int reading, struct evbuffer *wire)
{
    if (ws->awaiting_pong && !reading)
        return WS_KEEPALIVE_WAIT;
    if (ws->awaiting_pong) {
        ws_codec_close(ws->codec, WS_CLOSE_GOING_AWAY, "no pong", wire);
        return WS_KEEPALIVE_DEAD;
    }
    if (ws_codec_ping(ws->codec, wire) < 0)
        return WS_KEEPALIVE_WAIT; /* closing: the session ends by itself */
    ws->awaiting_pong = 1;
    return WS_KEEPALIVE_PINGED;
}

void ws_stream_close(struct ws_stream *ws, uint16_t code, const char *reason, struct evbuffer *wire)
{
    ws_codec_close(ws->codec, code, reason, wire);
}
