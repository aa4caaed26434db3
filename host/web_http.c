/* web_http.c - the [web] listener's HTTP requests (see web_http.h). */
#include "web_http.h"

#include "config.h"
#include "web_static.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <http_parser.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Sent with every answer. The page may load and connect only to its own origin (CSP 3
 * counts its ws(s):// under 'self'; older browsers need the schemes), may not be framed,
 * and sends no Referer anywhere. */
#define SECURITY_HEADERS                                                                           \
    "Content-Security-Policy: default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' "    \
    "data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'\r\n"                       \
    "X-Content-Type-Options: nosniff\r\n"                                                          \
    "X-Frame-Options: DENY\r\n"                                                                    \
    "Referrer-Policy: no-referrer\r\n"                                                             \
    "Cross-Origin-Opener-Policy: same-origin\r\n"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* One parse: where each header line goes. Field and value arrive in one piece each,
 * because the whole head is parsed at once. */
struct parse {
    struct web_request *req;
    char field[32]; /* the current header's name, cut to fit (no name we want is longer) */
    int n_headers;
    int overflow; /* a value we keep was too long */
    int done;
};

static void copy_bounded(struct parse *p, char *dst, size_t cap, const char *at, size_t len)
{
    if (len >= cap) {
        p->overflow = 1;
        len = cap - 1;
    }
    memcpy(dst, at, len);
    dst[len] = '\0';
}

static int on_url(http_parser *hp, const char *at, size_t len)
{
    struct parse *p = hp->data;
    copy_bounded(p, p->req->path, sizeof(p->req->path), at, len);
    return 0;
}

static int on_header_field(http_parser *hp, const char *at, size_t len)
{
    struct parse *p = hp->data;
    if (++p->n_headers > WEB_HEADERS_MAX)
        return -1;
    size_t n = len < sizeof(p->field) - 1 ? len : sizeof(p->field) - 1;
    memcpy(p->field, at, n);
    p->field[n] = '\0';
    if (len >= sizeof(p->field))
        p->field[0] = '\0'; /* longer than any name we read */
    return 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t len)
{
    struct parse *p = hp->data;
    struct web_request *r = p->req;
    static const struct {
        const char *name;
        size_t offset, cap;
    } kept[] = {
        {"Host", offsetof(struct web_request, host), sizeof(r->host)},
        {"Origin", offsetof(struct web_request, origin), sizeof(r->origin)},
        {"Upgrade", offsetof(struct web_request, upgrade), sizeof(r->upgrade)},
        {"Connection", offsetof(struct web_request, connection), sizeof(r->connection)},
        {"Sec-WebSocket-Key", offsetof(struct web_request, ws_key), sizeof(r->ws_key)},
        {"Sec-WebSocket-Version", offsetof(struct web_request, ws_version), sizeof(r->ws_version)},
        {"If-None-Match", offsetof(struct web_request, if_none_match), sizeof(r->if_none_match)},
    };
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
        if (strcasecmp(p->field, kept[i].name) != 0)
            continue;
        if (i == 0)
            r->n_host++;
        copy_bounded(p, (char *)r + kept[i].offset, kept[i].cap, at, len);
    }
    return 0;
}

/* The head is all we read: a request with a body is refused whatever it is. */
static int on_headers_complete(http_parser *hp)
{
    struct parse *p = hp->data;
    p->done = 1;
    p->req->method = (int)hp->method;
    p->req->keep_alive = http_should_keep_alive(hp);
    p->req->http_minor = (int)hp->http_minor;
    p->req->has_body =
        (hp->flags & F_CHUNKED) || (hp->content_length > 0 && hp->content_length != UINT64_MAX);
    http_parser_pause(hp, 1);
    return 0;
}

enum web_parse web_http_parse(const char *data, size_t len, struct web_request *req)
{
    size_t scan = len < WEB_HEAD_MAX ? len : WEB_HEAD_MAX;
    const char *end = NULL;
    for (size_t i = 3; i < scan && !end; i++)
        if (data[i] == '\n' && data[i - 1] == '\r' && data[i - 2] == '\n' && data[i - 3] == '\r')
            end = data + i + 1;
    if (!end)
        return len >= WEB_HEAD_MAX ? WEB_PARSE_TOO_LARGE : WEB_PARSE_NEED_MORE;
    memset(req, 0, sizeof(*req));
    req->head_len = (size_t)(end - data);
    struct parse p = {.req = req};
    http_parser hp;
    http_parser_init(&hp, HTTP_REQUEST);
    hp.data = &p;
    http_parser_settings settings;
    http_parser_settings_init(&settings);
    settings.on_url = on_url;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_headers_complete = on_headers_complete;
    http_parser_execute(&hp, &settings, data, req->head_len);
    if (!p.done || p.overflow || hp.http_major != 1)
        return WEB_PARSE_BAD;
    return WEB_PARSE_READY;
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 503:
        return "Service Unavailable";
    default:
        return "Request Header Fields Too Large";
    }
}

/* An error answer with a one-line text body; the connection closes after it. */
static enum web_action answer_error(struct evbuffer *out, int status, const char *extra,
                                    const char *text)
{
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\n%s" SECURITY_HEADERS
                        "Content-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n"
                        "Cache-Control: no-store\r\nConnection: close\r\n\r\n%s\n",
                        status, reason_phrase(status), extra ? extra : "", strlen(text) + 1, text);
    return WEB_CLOSE;
}

enum web_action web_http_refuse(enum web_parse why, struct evbuffer *out)
{
    if (why == WEB_PARSE_TOO_LARGE)
        return answer_error(out, 431, NULL, "request head too large");
    return answer_error(out, 400, NULL, "bad request");
}

void web_http_unavailable(struct evbuffer *out, int status, int64_t retry_after_ms,
                          const char *reason)
{
    char retry[48];
    snprintf(retry, sizeof(retry), "Retry-After: %lld\r\n",
             (long long)(retry_after_ms > 0 ? (retry_after_ms + 999) / 1000 : 1));
    answer_error(out, status, retry, reason);
}

int web_http_is_websocket(const struct web_request *req)
{
    return strcspn(req->path, "?#") == 3 && strncmp(req->path, "/ws", 3) == 0;
}

/* Whether a comma-separated header value holds `token` (without case). */
static int has_token(const char *value, const char *token)
{
    size_t n = strlen(token);
    for (const char *p = value; *p;) {
        p += strspn(p, " \t,");
        size_t len = strcspn(p, ",");
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len == n && strncasecmp(p, token, n) == 0)
            return 1;
        p += strcspn(p, ",");
    }
    return 0;
}

/* Whether a Host header names the machine by an address or as localhost (not by a DNS
 * name: a name can be made to point at this address by someone else's DNS). */
static int host_is_address(const char *host)
{
    char name[256];
    const char *end;
    if (host[0] == '[') {
        host++;
        end = strchr(host, ']');
    } else {
        end = strrchr(host, ':');
        end = end ? end : host + strlen(host);
    }
    if (!end || (size_t)(end - host) >= sizeof(name))
        return 0;
    memcpy(name, host, (size_t)(end - host));
    name[end - host] = '\0';
    unsigned char addr[sizeof(struct in6_addr)];
    return strcasecmp(name, "localhost") == 0 || inet_pton(AF_INET, name, addr) == 1 ||
           inet_pton(AF_INET6, name, addr) == 1;
}

/* The listener's own origin is this page's: the scheme of the listener and the Host
 * the browser used, when that Host is an address or localhost (a page reached by a DNS
 * name could be another site's whose name was pointed here: DNS rebinding); else the
 * configured list, which is where a public name goes. */
static int origin_allowed(const struct web_request *req, const struct web_site *site)
{
    if (!req->origin[0])
        return 1; /* not a browser */
    if (site->allowed_origins[0]) {
        int allowed = 0;
        char err[CONFIG_ERROR_MAX];
        return config_parse_origins(site->allowed_origins, req->origin, &allowed, err,
                                    sizeof(err)) == 0 &&
               allowed;
    }
    const char *scheme = site->tls ? "https://" : "http://";
    size_t n = strlen(scheme);
    return strncasecmp(req->origin, scheme, n) == 0 &&
           strcasecmp(req->origin + n, req->host) == 0 && host_is_address(req->host);
}

static enum web_action answer_upgrade(const struct web_request *req, const struct web_site *site,
                                      struct evbuffer *out)
{
    static const char version_hint[] = "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n";
    if (req->method != HTTP_GET)
        return answer_error(out, 405, "Allow: GET\r\n", "a WebSocket handshake is a GET");
    if (req->http_minor < 1) /* RFC 6455 4.1: HTTP/1.1 or later */
        return answer_error(out, 400, NULL, "a WebSocket handshake needs HTTP/1.1");
    if (!has_token(req->upgrade, "websocket") || !has_token(req->connection, "upgrade"))
        return answer_error(out, 426, version_hint, "this is a WebSocket endpoint");
    if (strcmp(req->ws_version, "13") != 0)
        return answer_error(out, 426, version_hint, "WebSocket version 13 only");
    unsigned char key[64];
    size_t key_len = strlen(req->ws_key);
    /* 16 random bytes in base64: 24 characters ending in "==". */
    if (key_len != 24 || EVP_DecodeBlock(key, (const unsigned char *)req->ws_key, 24) != 18 ||
        req->ws_key[22] != '=' || req->ws_key[23] != '=')
        return answer_error(out, 400, NULL, "bad Sec-WebSocket-Key");
    if (!origin_allowed(req, site))
        return answer_error(out, 403, NULL, "this Origin may not open a WebSocket here");
    char joined[24 + sizeof(WS_GUID)];
    memcpy(joined, req->ws_key, 24);
    memcpy(joined + 24, WS_GUID, sizeof(WS_GUID));
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    char accept[64];
    if (!EVP_Digest(joined, 24 + sizeof(WS_GUID) - 1, digest, &digest_len, EVP_sha1(), NULL))
        return answer_error(out, 400, NULL, "cannot compute the accept key");
    EVP_EncodeBlock((unsigned char *)accept, digest, (int)digest_len);
    evbuffer_add_printf(out,
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                        accept);
    return WEB_UPGRADE;
}

static enum web_action answer_file(const struct web_request *req, const struct web_site *site,
                                   struct evbuffer *out)
{
    struct web_file file;
    int status = web_static_open(site->root, req->path, &file);
    if (status == 400)
        return answer_error(out, 400, NULL, "bad path");
    if (status != 200)
        return answer_error(out, 404, NULL, "not found");
    int fresh = req->if_none_match[0] && strcmp(req->if_none_match, file.etag) == 0;
    int with_body = !fresh && req->method == HTTP_GET && file.size > 0;
    evbuffer_add_printf(out,
                        "HTTP/1.1 %s\r\n" SECURITY_HEADERS
                        "Content-Type: %s\r\nContent-Length: %lld\r\nETag: %s\r\n"
                        "Last-Modified: %s\r\nCache-Control: no-cache\r\n%s\r\n",
                        fresh ? "304 Not Modified" : "200 OK", file.type,
                        fresh ? 0LL : (long long)file.size, file.etag, file.last_modified,
                        req->keep_alive ? "" : "Connection: close\r\n");
    struct evbuffer_file_segment *seg =
        with_body ? evbuffer_file_segment_new(file.fd, 0, file.size,
                                              EVBUF_FS_CLOSE_ON_FREE | EVBUF_FS_DISABLE_SENDFILE)
                  : NULL;
    if (!seg) {
        close(file.fd);
        if (with_body)
            return WEB_CLOSE; /* the client sees its answer cut short */
    } else {
        int added = evbuffer_add_file_segment(out, seg, 0, file.size);
        evbuffer_file_segment_free(seg); /* the buffer holds its own reference */
        if (added < 0)
            return WEB_CLOSE;
    }
    return req->keep_alive ? WEB_KEEP : WEB_CLOSE;
}

enum web_action web_http_answer(const struct web_request *req, const struct web_site *site,
                                struct evbuffer *out)
{
    if (req->method != HTTP_GET && req->method != HTTP_HEAD)
        return answer_error(out, 405, "Allow: GET, HEAD\r\n", "GET or HEAD only");
    if (req->has_body)
        return answer_error(out, 400, NULL, "no request body here");
    if (req->n_host != 1 || !req->host[0])
        return answer_error(out, 400, NULL, "one Host header is needed");
    if (web_http_is_websocket(req))
        return answer_upgrade(req, site, out);
    if (req->upgrade[0] && has_token(req->connection, "upgrade"))
        return answer_error(out, 404, NULL, "WebSocket is at /ws");
    return answer_file(req, site, out);
}
