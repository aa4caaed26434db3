/* fuzz_web.c - what the [web] listener reads from a client before and after the
 * upgrade. First byte even: the input is an HTTP request head, parsed (web_http.c) and,
 * when complete, answered against a small web root (the handshake's checks, static
 * files): every answer is one whole HTTP head, a head never ends past the input or the
 * bound, and nothing outside the root is served. First byte odd: the input is
 * WebSocket frames from a client, fed to the codec (ws_codec.c, wslay) in pieces whose
 * sizes come from the second byte: every message it hands on is valid UTF-8 within the
 * size limit, and a failed connection writes nothing more. */
#include "utf8.h"
#include "web_http.h"
#include "ws_codec.h"

#include "fuzz_check.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_MESSAGE 1024

static char root[64], top[64];

static void remove_root(void)
{
    char path[128];
    const char *files[] = {"root/index.html", "outside"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/%s", top, files[i]);
        unlink(path);
    }
    rmdir(root);
    rmdir(top);
}

/* A web root with one file, and one file beside it that must never be served. */
static void make_root(void)
{
    if (root[0])
        return;
    char dir[] = "/tmp/fuzz_web.XXXXXX";
    FUZZ_CHECK(mkdtemp(dir) != NULL);
    snprintf(top, sizeof(top), "%s", dir);
    snprintf(root, sizeof(root), "%s/root", dir);
    FUZZ_CHECK(mkdir(root, 0700) == 0);
    atexit(remove_root);
    char path[128];
    snprintf(path, sizeof(path), "%s/index.html", root);
    FILE *f = fopen(path, "w");
    FUZZ_CHECK(f && fputs("<h1>index</h1>\n", f) >= 0 && fclose(f) == 0);
    snprintf(path, sizeof(path), "%s/outside", dir);
    f = fopen(path, "w");
    FUZZ_CHECK(f && fputs("SECRET-OUTSIDE\n", f) >= 0 && fclose(f) == 0);
}

static int contains(const char *text, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(text + i, needle, n) == 0)
            return 1;
    return 0;
}

static void fuzz_http(const char *data, size_t size)
{
    struct web_request req;
    enum web_parse st = web_http_parse(data, size, &req);
    struct evbuffer *out = evbuffer_new();
    FUZZ_CHECK(out != NULL);
    if (st == WEB_PARSE_READY) {
        FUZZ_CHECK(req.head_len <= size && req.head_len <= WEB_HEAD_MAX);
        const struct web_site sites[] = {{root, "", 0}, {root, "*", 1}};
        for (size_t i = 0; i < 2; i++) {
            evbuffer_drain(out, evbuffer_get_length(out));
            enum web_action action = web_http_answer(&req, &sites[i], out);
            size_t len = evbuffer_get_length(out);
            const char *text = (const char *)evbuffer_pullup(out, (ev_ssize_t)len);
            FUZZ_CHECK(len > 13 && strncmp(text, "HTTP/1.1 ", 9) == 0);
            FUZZ_CHECK(contains(text, len, "\r\n\r\n"));
            FUZZ_CHECK(!contains(text, len, "SECRET-OUTSIDE"));
            FUZZ_CHECK((action == WEB_UPGRADE) == (strncmp(text + 9, "101", 3) == 0));
        }
    } else if (st != WEB_PARSE_NEED_MORE) {
        FUZZ_CHECK(web_http_refuse(st, out) == WEB_CLOSE);
    }
    evbuffer_free(out);
}

static void on_text(void *arg, const uint8_t *msg, size_t len)
{
    (void)arg;
    FUZZ_CHECK(len <= MAX_MESSAGE);
    FUZZ_CHECK(utf8_valid((const char *)msg, len));
}

static void fuzz_frames(const uint8_t *data, size_t size)
{
    static const struct ws_codec_handler handler = {.on_text = on_text};
    struct ws_codec *codec = ws_codec_new(MAX_MESSAGE, &handler, NULL);
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    FUZZ_CHECK(codec && in && out);
    size_t piece = size > 0 ? (size_t)data[0] % 64 + 1 : 1;
    size_t at = size > 0 ? 1 : 0;
    int failed = 0;
    while (at < size) {
        size_t n = size - at < piece ? size - at : piece;
        evbuffer_add(in, data + at, n);
        at += n;
        size_t before = evbuffer_get_length(out);
        int rc = ws_codec_input(codec, in, out);
        FUZZ_CHECK(evbuffer_get_length(in) == 0);
        if (failed)
            FUZZ_CHECK(evbuffer_get_length(out) == before);
        failed |= rc < 0;
    }
    if (!failed)
        ws_codec_send_text(codec, "{\"cmd\":\"ping\"}", 14, out);
    ws_codec_close(codec, WS_CLOSE_NORMAL, NULL, out);
    ws_codec_free(codec);
    evbuffer_free(in);
    evbuffer_free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    make_root();
    if (data[0] % 2 == 0)
        fuzz_http((const char *)data + 1, size - 1);
    else
        fuzz_frames(data + 1, size - 1);
    return 0;
}
