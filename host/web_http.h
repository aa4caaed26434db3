/* web_http.h - the [web] listener's HTTP side: one request head parsed with
 * http-parser (web_http_parse), then answered (web_http_answer): the WebSocket
 * handshake of /ws with its Host, Origin, key and version checks, a static file
 * (web_static.h), or an error. Pure functions over memory and an evbuffer, so the fuzz
 * target drives them as the transport does. Loop thread only. */
#ifndef CHATD_HOST_WEB_HTTP_H
#define CHATD_HOST_WEB_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

/* Bounds on a request head. */
#define WEB_HEAD_MAX    8192
#define WEB_HEADERS_MAX 64
#define WEB_PATH_MAX    1024

enum web_parse {
    WEB_PARSE_NEED_MORE, /* no complete head yet */
    WEB_PARSE_READY,     /* a head of `head_len` bytes is in the request */
    WEB_PARSE_BAD,       /* not HTTP/1.x, or over a bound: answer 400 and close */
    WEB_PARSE_TOO_LARGE, /* no head within WEB_HEAD_MAX bytes: 431 and close */
};

struct web_request {
    size_t head_len;             /* bytes of the input the head took */
    int method;                  /* enum http_method */
    int keep_alive;              /* http_should_keep_alive */
    int http_minor;              /* HTTP/1.<http_minor> */
    int has_body;                /* Content-Length above 0, or chunked */
    int n_host;                  /* Host lines */
    char path[WEB_PATH_MAX + 1]; /* the request target, as sent */
    char host[256];
    char origin[256]; /* "" when absent */
    char upgrade[64];
    char connection[128];
    char ws_key[64];
    char ws_version[16];
    char if_none_match[128];
};

/* Parse the head at the start of `data` (the connection's pending input). */
enum web_parse web_http_parse(const char *data, size_t len, struct web_request *req);

/* What the listener serves, from the [web] config. */
struct web_site {
    const char *root;            /* the folder of static files */
    const char *allowed_origins; /* [web] allowed_origins: "" for the listener's own */
    int tls;                     /* the listener speaks TLS: own origin is https:// */
};

enum web_action {
    WEB_KEEP,    /* answered; read the next request */
    WEB_CLOSE,   /* answered; close once the answer is written */
    WEB_UPGRADE, /* answered 101: the connection speaks WebSocket from the next byte */
};

/* Answer `req` into `out` (head and body). */
enum web_action web_http_answer(const struct web_request *req, const struct web_site *site,
                                struct evbuffer *out);

/* Answer a request that did not parse: 400, or 431 for TOO_LARGE. Always WEB_CLOSE. */
enum web_action web_http_refuse(enum web_parse why, struct evbuffer *out);

/* Whether `req` is for the WebSocket endpoint, /ws. */
int web_http_is_websocket(const struct web_request *req);

/* Refuse a connection over a limit: `status` 503 (busy) or 429 (rate limited), with
 * Retry-After in whole seconds (at least 1) and `reason` as the body; then close. */
void web_http_unavailable(struct evbuffer *out, int status, int64_t retry_after_ms,
                          const char *reason);

#endif
