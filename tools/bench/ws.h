/* ws.h - the client side of RFC 6455 that chatd-bench speaks with --ws: the HTTP
 * upgrade request and the check of its answer, client frames (masked) built in place
 * in a connection's output, and server frames read where they lie in the read buffer.
 * No I/O and no allocation here: conn.c calls it.
 *
 * chatd sends every message as one frame (wslay's wslay_event_queue_msg), so a
 * fragmented message is refused as a protocol error rather than reassembled. */
#ifndef CHATD_BENCH_WS_H
#define CHATD_BENCH_WS_H

#include <stddef.h>
#include <stdint.h>

/* Opcodes. */
#define WS_CONTINUATION 0x0
#define WS_TEXT         0x1
#define WS_BINARY       0x2
#define WS_CLOSE        0x8
#define WS_PING         0x9
#define WS_PONG         0xA

/* The longest client frame header: 2 bytes, an 8-byte length, a 4-byte mask. */
#define WS_HEADER_MAX 14
/* The upgrade request's longest form, and Sec-WebSocket-Accept's length. */
#define WS_REQUEST_MAX 256
#define WS_ACCEPT_LEN  28
/* A server frame larger than this is refused (chatd's are at most max_frame_bytes). */
#define WS_FRAME_MAX (64u << 20)
/* The answer's head may take this many bytes at most. */
#define WS_ANSWER_MAX 8192

/* Write the upgrade request to `host` ("ADDR:PORT") for the path /ws at out (room for
 * WS_REQUEST_MAX bytes), with a new key; the Sec-WebSocket-Accept the server must answer
 * goes to accept (NUL-terminated). Returns the request's length. */
size_t ws_request(char *out, const char *host, char accept[WS_ACCEPT_LEN + 1]);

/* Check the answer's head at buf: its length when it is complete and a 101 with
 * `accept` (the frames start after it), 0 when more bytes are needed, -1 with the
 * reason in *why (valid until the next call) when it refuses. */
long ws_answer(const char *buf, size_t len, const char *accept, const char **why);

/* The payload of len bytes lies at p + WS_HEADER_MAX, the bytes before it free: write
 * a masked, final client frame of `opcode` there, starting at p. Returns the frame's
 * length. */
size_t ws_frame(char *p, size_t len, int opcode);

struct ws_frame {
    int opcode;
    int fin;
    char *payload; /* in the buffer given to ws_parse */
    size_t len;    /* of the payload */
    size_t size;   /* of the whole frame */
};

/* Read the server frame at buf: 1 with *f filled, 0 when it is not complete yet, -1
 * with the reason in *why when it breaks RFC 6455 (a masked server frame, reserved bits,
 * a control frame over 125 bytes or fragmented, a frame over WS_FRAME_MAX). */
int ws_parse(char *buf, size_t len, struct ws_frame *f, const char **why);

#endif
