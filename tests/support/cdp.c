/* cdp.c - a headless Chromium driven over the Chrome DevTools Protocol (see cdp.h). */
#include "cdp.h"

#include "chatd_proc.h"
#include "ws_client.h"
#include "ws_rpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HTTP_TIMEOUT_MS 10000

const char *cdp_chromium(void)
{
    return browser_proc_binary("CHATD_TEST_CHROMIUM", "chromium");
}

/* chromium writes its port, then a newline and a path, to DevToolsActivePort. */
static int read_port(const char *dir)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/profile/DevToolsActivePort", dir);
    char *text = chatd_file_read(path);
    int port = text && strchr(text, '\n') ? atoi(text) : 0;
    free(text);
    return port;
}

struct cdp_browser *cdp_launch(void)
{
    const char *binary = cdp_chromium();
    if (!binary) {
        fprintf(stderr, "cdp: no chromium (install Debian's chromium)\n");
        return NULL;
    }
    struct cdp_browser *b = calloc(1, sizeof(*b));
    if (!b || browser_proc_make_dir(&b->proc) < 0) {
        free(b);
        return NULL;
    }
    char profile[PATH_MAX + 32];
    snprintf(profile, sizeof(profile), "--user-data-dir=%s/profile", b->proc.dir);
    const char *const argv[] = {binary,
                                "--headless",
                                "--no-sandbox",
                                "--disable-gpu",
                                "--disable-quic",
                                "--no-first-run",
                                "--disable-background-networking",
                                "--disable-component-update",
                                "--disable-sync",
                                "--remote-debugging-port=0",
                                profile,
                                "about:blank",
                                NULL};
    if (browser_proc_start(&b->proc, argv, read_port) < 0) {
        free(b);
        return NULL;
    }
    return b;
}

void cdp_quit(struct cdp_browser *b)
{
    if (!b)
        return;
    browser_proc_stop(&b->proc);
    free(b);
}

/* The Content-Length of an HTTP head, or 0. */
static size_t content_length(const char *head)
{
    static const char name[] = "\r\ncontent-length:";
    for (const char *p = head; *p; p++)
        if (strncasecmp(p, name, sizeof(name) - 1) == 0)
            return strtoul(p + sizeof(name) - 1, NULL, 10);
    return 0;
}

/* One HTTP request to the DevTools port; the JSON body of its answer, or NULL. */
static json_t *devtools_http(struct cdp_browser *b, const char *method, const char *target)
{
    struct ws_client *c = ws_client_open("127.0.0.1", b->proc.port, 0);
    if (!c)
        return NULL;
    char req[4096], head[4096];
    snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", method, target,
             b->proc.port);
    json_t *body = NULL;
    if (ws_client_send_raw(c, req, strlen(req)) == 0 &&
        ws_client_read_head(c, head, sizeof(head), HTTP_TIMEOUT_MS) == 200) {
        size_t n = content_length(head);
        char *text = n ? malloc(n + 1) : NULL;
        if (text && ws_client_read_body(c, text, n, HTTP_TIMEOUT_MS) == 0)
            body = json_loadb(text, n, 0, NULL);
        free(text);
    }
    ws_client_close(c);
    if (!body)
        fprintf(stderr, "cdp: %s %s failed\n", method, target);
    return body;
}

struct cdp_page *cdp_open(struct cdp_browser *b, const char *url)
{
    char target[2048];
    snprintf(target, sizeof(target), "/json/new?%s", url);
    json_t *t = devtools_http(b, "PUT", target);
    const char *id = json_string_value(json_object_get(t, "id"));
    struct cdp_page *p = id ? calloc(1, sizeof(*p)) : NULL;
    if (p) {
        p->browser = b;
        snprintf(p->target, sizeof(p->target), "%s", id);
        p->ws = ws_client_open("127.0.0.1", b->proc.port, 0);
    }
    json_decref(t);
    if (!p || !p->ws)
        goto fail;
    /* DevTools refuses a handshake with an Origin it was not told to allow; a client
     * that is not a browser sends none. */
    char path[256], host[64];
    snprintf(path, sizeof(path), "/devtools/page/%s", p->target);
    snprintf(host, sizeof(host), "127.0.0.1:%d", b->proc.port);
    p->ws->path = path;
    int status = ws_client_handshake(p->ws, host, NULL, NULL, NULL, 0);
    p->ws->path = NULL;
    if (status != 101)
        goto fail;
    return p;
fail:
    fprintf(stderr, "cdp: cannot open a page at %s\n", url);
    cdp_close(p);
    return NULL;
}

void cdp_close(struct cdp_page *p)
{
    if (!p)
        return;
    if (p->ws) {
        json_decref(cdp_call(p, "Page.close", NULL));
        ws_client_close(p->ws);
    }
    free(p);
}

static json_t *call(struct cdp_page *p, const char *method, json_t *params, int quiet)
{
    return ws_rpc_call(p->ws, &p->next_id, "cdp", method, params, quiet);
}

json_t *cdp_call(struct cdp_page *p, const char *method, json_t *params)
{
    return call(p, method, params, 0);
}

json_t *cdp_eval(struct cdp_page *p, const char *expr, int quiet)
{
    json_t *r = call(
        p, "Runtime.evaluate",
        json_pack("{s:s, s:b, s:b}", "expression", expr, "awaitPromise", 1, "returnByValue", 1),
        quiet);
    json_t *value = NULL;
    if (r && !json_object_get(r, "exceptionDetails")) {
        value = json_object_get(json_object_get(r, "result"), "value");
        value = value ? json_incref(value) : json_null();
    } else if (r && !quiet) {
        char *dump = json_dumps(json_object_get(r, "exceptionDetails"), 0);
        fprintf(stderr, "cdp: %s threw: %s\n", expr, dump ? dump : "?");
        free(dump);
    }
    json_decref(r);
    return value;
}

static int call_ok(struct cdp_page *p, const char *method, json_t *params)
{
    json_t *r = cdp_call(p, method, params);
    json_decref(r);
    return r ? 0 : -1;
}

int cdp_type(struct cdp_page *p, const char *text)
{
    return call_ok(p, "Input.insertText", json_pack("{s:s}", "text", text));
}

int cdp_key(struct cdp_page *p, const char *key)
{
    static const struct {
        const char *key;
        int code;
        const char *text;
    } keys[] = {{"Enter", 13, "\r"}, {"Tab", 9, NULL}, {"Escape", 27, NULL}};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (strcmp(keys[i].key, key) != 0)
            continue;
        json_t *down = json_pack("{s:s, s:s, s:s, s:i}", "type", "keyDown", "key", key, "code", key,
                                 "windowsVirtualKeyCode", keys[i].code);
        if (keys[i].text)
            json_object_set_new(down, "text", json_string(keys[i].text));
        if (call_ok(p, "Input.dispatchKeyEvent", down) < 0)
            return -1;
        return call_ok(p, "Input.dispatchKeyEvent",
                       json_pack("{s:s, s:s, s:s, s:i}", "type", "keyUp", "key", key, "code", key,
                                 "windowsVirtualKeyCode", keys[i].code));
    }
    fprintf(stderr, "cdp: no key %s\n", key);
    return -1;
}

int cdp_offline(struct cdp_page *p, int offline)
{
    if (call_ok(p, "Network.enable", NULL) < 0)
        return -1;
    return call_ok(p, "Network.emulateNetworkConditions",
                   json_pack("{s:b, s:i, s:i, s:i}", "offline", offline, "latency", 0,
                             "downloadThroughput", -1, "uploadThroughput", -1));
}

int cdp_close_websockets(struct cdp_page *p)
{
    /* Runtime.queryObjects finds every object of a prototype, so the page needs no hook
     * of its own for this. */
    json_t *proto =
        cdp_call(p, "Runtime.evaluate", json_pack("{s:s}", "expression", "WebSocket.prototype"));
    const char *proto_id =
        json_string_value(json_object_get(json_object_get(proto, "result"), "objectId"));
    json_t *all = proto_id ? cdp_call(p, "Runtime.queryObjects",
                                      json_pack("{s:s}", "prototypeObjectId", proto_id))
                           : NULL;
    const char *all_id =
        json_string_value(json_object_get(json_object_get(all, "objects"), "objectId"));
    json_t *r =
        all_id ? cdp_call(p, "Runtime.callFunctionOn",
                          json_pack("{s:s, s:s, s:b}", "objectId", all_id, "functionDeclaration",
                                    "function () { const open = this.filter((w) =>"
                                    " w.readyState === WebSocket.OPEN);"
                                    " open.forEach((w) => w.close());"
                                    " return open.length; }",
                                    "returnByValue", 1))
               : NULL;
    json_t *n = json_object_get(json_object_get(r, "result"), "value");
    int closed = json_is_integer(n) ? (int)json_integer_value(n) : -1;
    json_decref(proto);
    json_decref(all);
    json_decref(r);
    return closed;
}

int cdp_viewport(struct cdp_page *p, int width, int height, int mobile)
{
    return call_ok(p, "Emulation.setDeviceMetricsOverride",
                   json_pack("{s:i, s:i, s:i, s:b}", "width", width, "height", height,
                             "deviceScaleFactor", 1, "mobile", mobile));
}

int cdp_screenshot(struct cdp_page *p, const char *path)
{
    json_t *r = cdp_call(p, "Page.captureScreenshot", json_pack("{s:s}", "format", "png"));
    int saved = r ? browser_save_png(json_string_value(json_object_get(r, "data")), path) : -1;
    json_decref(r);
    return saved;
}
