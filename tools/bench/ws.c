/* ws.c - RFC 6455, the client's side, for chatd-bench (see ws.h). */
#include "ws.h"
#include "bench.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

/* The masks and keys come from xorshift64*, seeded from the clock: RFC 6455 asks a
 * browser for masks an attacker cannot predict (against cache poisoning of proxies);
 * a load generator on a test network only needs them to differ, and to cost little. */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
    if (rng_state == 0)
        rng_state = (uint64_t)now_ns() | 1;
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

size_t ws_request(char *out, const char *host, char accept[WS_ACCEPT_LEN + 1])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char nonce[16], digest[SHA_DIGEST_LENGTH];
    char key[64], joined[64 + sizeof(guid)];
    uint64_t r1 = rng_next(), r2 = rng_next();
    memcpy(nonce, &r1, 8);
    memcpy(nonce + 8, &r2, 8);
    int key_len = EVP_EncodeBlock((unsigned char *)key, nonce, sizeof(nonce));
    memcpy(joined, key, (size_t)key_len);
    memcpy(joined + key_len, guid, sizeof(guid) - 1);
    SHA1((const unsigned char *)joined, (size_t)key_len + sizeof(guid) - 1, digest);
    EVP_EncodeBlock((unsigned char *)accept, digest, sizeof(digest));
    int n = snprintf(out, WS_REQUEST_MAX,
                     "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: "
                     "Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     host, key);
    return n > 0 && n < WS_REQUEST_MAX ? (size_t)n : 0;
}

static const char *find(const char *hay, size_t len, const char *needle, size_t nlen)
{
    for (size_t i = 0; i + nlen <= len; i++)
        if (hay[i] == needle[0] && memcmp(hay + i, needle, nlen) == 0)
            return hay + i;
    return NULL;
}

long ws_answer(const char *buf, size_t len, const char *accept, const char **why)
{
    static char reason[96];
    const char *end = find(buf, len, "\r\n\r\n", 4);
    if (!end) {
        if (len < WS_ANSWER_MAX)
            return 0;
        *why = "the upgrade answer's head is too long";
        return -1;
    }
    size_t head = (size_t)(end - buf) + 4;
    if (head < 13 || memcmp(buf, "HTTP/1.1 101 ", 13) != 0) {
        /* The status line (or chatd's one-line JSON refusal) says why. */
        size_t n = strcspn(buf, "\r\n");
        snprintf(reason, sizeof(reason), "upgrade refused: %.*s", (int)(n < 80 ? n : 80), buf);
        *why = reason;
        return -1;
    }
    if (!find(buf, head, accept, WS_ACCEPT_LEN)) {
        *why = "the upgrade answer has not the right Sec-WebSocket-Accept";
        return -1;
    }
    return (long)head;
}

size_t ws_frame(char *p, size_t len, int opcode)
{
    size_t h = len < 126 ? 6 : len < 65536 ? 8 : 14;
    p[0] = (char)(0x80 | opcode);
    if (len < 126) {
        p[1] = (char)(0x80 | len);
    } else if (len < 65536) {
        p[1] = (char)(0x80 | 126);
        p[2] = (char)(len >> 8);
        p[3] = (char)len;
    } else {
        p[1] = (char)(0x80 | 127);
        for (int i = 0; i < 8; i++)
            p[2 + i] = (char)((uint64_t)len >> (56 - 8 * i));
    }
    uint32_t mask32 = (uint32_t)rng_next();
    memcpy(p + h - 4, &mask32, 4);
    /* Mask while moving the payload down to its header, 8 bytes at a time: each block
     * is read whole before it is written, and a write never reaches bytes not yet read. */
    uint64_t mask64 = (uint64_t)mask32 | (uint64_t)mask32 << 32;
    const char *src = p + WS_HEADER_MAX;
    char *dst = p + h;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v;
        memcpy(&v, src + i, 8);
        v ^= mask64;
        memcpy(dst + i, &v, 8);
    }
    const unsigned char *m = (const unsigned char *)&mask32;
    for (; i < len; i++)
        dst[i] = (char)(src[i] ^ m[i & 3]);
    return h + len;
}

int ws_parse(char *buf, size_t len, struct ws_frame *f, const char **why)
{
    if (len < 2)
        return 0;
    const unsigned char *u = (const unsigned char *)buf;
    if (u[0] & 0x70) {
        *why = "a server frame with reserved bits set";
        return -1;
    }
    if (u[1] & 0x80) {
        *why = "a masked server frame";
        return -1;
    }
    f->fin = (u[0] & 0x80) != 0;
    f->opcode = u[0] & 0x0F;
    uint64_t n = u[1] & 0x7F;
    size_t h = 2;
    if (n == 126) {
        if (len < 4)
            return 0;
        n = (uint64_t)u[2] << 8 | u[3];
        h = 4;
    } else if (n == 127) {
        if (len < 10)
            return 0;
        n = 0;
        for (int i = 0; i < 8; i++)
            n = n << 8 | u[2 + i];
        h = 10;
    }
    if (n > WS_FRAME_MAX) {
        *why = "a server frame over 64 MiB";
        return -1;
    }
    if (f->opcode >= WS_CLOSE && (n > 125 || !f->fin)) {
        *why = "a control frame over 125 bytes or fragmented";
        return -1;
    }
    if (n > len - h)
        return 0;
    f->payload = buf + h;
    f->len = (size_t)n;
    f->size = h + (size_t)n;
    return 1;
}
