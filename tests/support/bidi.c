/* bidi.c - a headless Firefox driven over WebDriver BiDi (see bidi.h). */
#include "bidi.h"

#include "chatd_proc.h"
#include "ws_client.h"
#include "ws_rpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Where the page keeps its WebSockets for bidi_close_websockets: BiDi cannot list a
 * realm's objects the way DevTools' Runtime.queryObjects can, so a script that runs
 * before the page's own wraps the constructor and remembers each socket. */
#define SOCKETS_KEY "Symbol.for('chatd.test.websockets')"

static const char track_websockets[] =
    "() => { const sockets = []; window[" SOCKETS_KEY "] = sockets;"
    " window.WebSocket = new Proxy(window.WebSocket, { construct(target, args, newTarget) {"
    " const w = Reflect.construct(target, args, newTarget); sockets.push(w); return w; } }); }";

const char *bidi_firefox(void)
{
    return browser_proc_binary("CHATD_TEST_FIREFOX", "firefox-esr");
}

/* firefox writes {"ws_host": ..., "ws_port": N} to WebDriverBiDiServer.json in the
 * profile once the port listens. */
static int read_port(const char *dir)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/profile/WebDriverBiDiServer.json", dir);
    char *text = chatd_file_read(path);
    json_t *info = text ? json_loads(text, 0, NULL) : NULL;
    int port = (int)json_integer_value(json_object_get(info, "ws_port"));
    json_decref(info);
    free(text);
    return port;
}

static int open_session(struct bidi_browser *b)
{
    b->ws = ws_client_open("127.0.0.1", b->proc.port, 0);
    if (!b->ws)
        return -1;
    /* The remote agent refuses a handshake with an Origin; a client that is not a
     * browser sends none. */
    char host[64];
    snprintf(host, sizeof(host), "127.0.0.1:%d", b->proc.port);
    b->ws->path = "/session";
    int status = ws_client_handshake(b->ws, host, NULL, NULL, NULL, 0);
    b->ws->path = NULL;
    if (status != 101)
        return -1;
    json_t *r = bidi_call(b, "session.new", json_pack("{s:{}}", "capabilities"));
    json_decref(r);
    return r ? 0 : -1;
}

struct bidi_browser *bidi_launch(void)
{
    const char *binary = bidi_firefox();
    if (!binary) {
        fprintf(stderr, "bidi: no firefox (install Debian's firefox-esr)\n");
        return NULL;
    }
    struct bidi_browser *b = calloc(1, sizeof(*b));
    if (!b || browser_proc_make_dir(&b->proc) < 0) {
        free(b);
        return NULL;
    }
    char profile[PATH_MAX + 16];
    snprintf(profile, sizeof(profile), "%s/profile", b->proc.dir);
    if (mkdir(profile, 0700) < 0) {
        bidi_quit(b);
        return NULL;
    }
    const char *const argv[] = {binary,      "--headless",  "--no-remote",
                                "--profile", profile,       "--remote-debugging-port",
                                "0",         "about:blank", NULL};
    if (browser_proc_start(&b->proc, argv, read_port) < 0) {
        free(b);
        return NULL;
    }
    if (open_session(b) < 0) {
        fprintf(stderr, "bidi: no session with firefox on port %d\n", b->proc.port);
        bidi_quit(b);
        return NULL;
    }
    return b;
}

void bidi_quit(struct bidi_browser *b)
{
    if (!b)
        return;
    if (b->ws)
        ws_client_close(b->ws);
    browser_proc_stop(&b->proc);
    free(b);
}

json_t *bidi_call(struct bidi_browser *b, const char *method, json_t *params)
{
    return ws_rpc_call(b->ws, &b->next_id, "bidi", method, params, 0);
}

static int call_ok(struct bidi_browser *b, const char *method, json_t *params)
{
    json_t *r = bidi_call(b, method, params);
    json_decref(r);
    return r ? 0 : -1;
}

struct bidi_page *bidi_open(struct bidi_browser *b, const char *url)
{
    json_t *r = bidi_call(b, "browsingContext.create", json_pack("{s:s}", "type", "tab"));
    const char *id = json_string_value(json_object_get(r, "context"));
    struct bidi_page *p = id ? calloc(1, sizeof(*p)) : NULL;
    if (p) {
        p->browser = b;
        snprintf(p->context, sizeof(p->context), "%s", id);
    }
    json_decref(r);
    if (!p ||
        call_ok(b, "script.addPreloadScript",
                json_pack("{s:s, s:[s]}", "functionDeclaration", track_websockets, "contexts",
                          p->context)) < 0 ||
        call_ok(b, "browsingContext.navigate",
                json_pack("{s:s, s:s, s:s}", "context", p->context, "url", url, "wait",
                          "complete")) < 0) {
        fprintf(stderr, "bidi: cannot open a page at %s\n", url);
        bidi_close(p);
        return NULL;
    }
    return p;
}

void bidi_close(struct bidi_page *p)
{
    if (!p)
        return;
    if (p->context[0])
        call_ok(p->browser, "browsingContext.close", json_pack("{s:s}", "context", p->context));
    free(p);
}

json_t *bidi_eval(struct bidi_page *p, const char *expr, int quiet)
{
    /* The value comes back as JSON text: BiDi's own serialization of objects is a tree
     * of typed nodes. */
    size_t cap = strlen(expr) + 128;
    char *wrapped = malloc(cap);
    if (!wrapped)
        return NULL;
    snprintf(wrapped, cap, "(async () => JSON.stringify(await (%s)) ?? 'null')()", expr);
    json_t *r =
        ws_rpc_call(p->browser->ws, &p->browser->next_id, "bidi", "script.evaluate",
                    json_pack("{s:s, s:{s:s}, s:b, s:s}", "expression", wrapped, "target",
                              "context", p->context, "awaitPromise", 1, "resultOwnership", "none"),
                    quiet);
    free(wrapped);
    const char *text = json_string_value(json_object_get(json_object_get(r, "result"), "value"));
    json_t *value = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    if (r && !value && !quiet) {
        char *dump = json_dumps(json_object_get(r, "exceptionDetails"), 0);
        fprintf(stderr, "bidi: %s threw: %s\n", expr, dump ? dump : "?");
        free(dump);
    }
    json_decref(r);
    return value;
}

/* WebDriver's code points for the keys that type no character. */
static const char *key_value(const char *key)
{
    static const struct {
        const char *key;
        const char *value;
    } keys[] = {{"Enter", "\xee\x80\x87"},
                {"Tab", "\xee\x80\x84"},
                {"Escape", "\xee\x80\x8c"},
                {"Shift", "\xee\x80\x88"}};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcmp(keys[i].key, key) == 0)
            return keys[i].value;
    return NULL;
}

static void add_key(json_t *actions, const char *type, const char *value)
{
    json_array_append_new(actions, json_pack("{s:s, s:s}", "type", type, "value", value));
}

/* Press and release each value in turn. */
static void add_press(json_t *actions, const char *value)
{
    add_key(actions, "keyDown", value);
    add_key(actions, "keyUp", value);
}

static int perform(struct bidi_page *p, json_t *actions)
{
    return call_ok(p->browser, "input.performActions",
                   json_pack("{s:s, s:[{s:s, s:s, s:o}]}", "context", p->context, "actions", "type",
                             "key", "id", "keyboard", "actions", actions));
}

int bidi_type(struct bidi_page *p, const char *text)
{
    json_t *actions = json_array();
    for (const char *c = text; *c;) {
        if (*c == '\n') {
            add_key(actions, "keyDown", key_value("Shift"));
            add_press(actions, key_value("Enter"));
            add_key(actions, "keyUp", key_value("Shift"));
            c++;
            continue;
        }
        /* One key per character: a UTF-8 lead byte and its continuation bytes. */
        size_t n = 1;
        while (((unsigned char)c[n] & 0xC0) == 0x80)
            n++;
        char ch[8];
        snprintf(ch, sizeof(ch), "%.*s", (int)n, c);
        add_press(actions, ch);
        c += n;
    }
    return perform(p, actions);
}

int bidi_key(struct bidi_page *p, const char *key)
{
    const char *value = key_value(key);
    if (!value) {
        fprintf(stderr, "bidi: no key %s\n", key);
        return -1;
    }
    json_t *actions = json_array();
    add_press(actions, value);
    return perform(p, actions);
}

int bidi_offline(struct bidi_page *p, int offline)
{
    json_t *conditions = offline ? json_pack("{s:s}", "type", "offline") : json_null();
    return call_ok(
        p->browser, "emulation.setNetworkConditions",
        json_pack("{s:o, s:[s]}", "networkConditions", conditions, "contexts", p->context));
}

int bidi_close_websockets(struct bidi_page *p)
{
    json_t *n = bidi_eval(p,
                          "(() => { const open = window[" SOCKETS_KEY "].filter((w) =>"
                          " w.readyState === WebSocket.OPEN);"
                          " open.forEach((w) => w.close()); return open.length; })()",
                          0);
    int closed = json_is_integer(n) ? (int)json_integer_value(n) : -1;
    json_decref(n);
    return closed;
}

int bidi_viewport(struct bidi_page *p, int width, int height)
{
    return call_ok(p->browser, "browsingContext.setViewport",
                   json_pack("{s:s, s:{s:i, s:i}, s:i}", "context", p->context, "viewport", "width",
                             width, "height", height, "devicePixelRatio", 1));
}

int bidi_screenshot(struct bidi_page *p, const char *path)
{
    json_t *r = bidi_call(p->browser, "browsingContext.captureScreenshot",
                          json_pack("{s:s}", "context", p->context));
    int saved = r ? browser_save_png(json_string_value(json_object_get(r, "data")), path) : -1;
    json_decref(r);
    return saved;
}
