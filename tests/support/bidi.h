/* bidi.h - a headless Firefox for the browser tests, driven over WebDriver BiDi (the
 * WebSocket at ws://127.0.0.1:PORT/session that --remote-debugging-port opens; Firefox
 * speaks no DevTools protocol): launch it on a fresh profile, open pages, evaluate
 * JavaScript, type and press keys, close a page's WebSockets, go offline and online, and
 * save screenshots; cdp.h's calls, for Firefox. The WebSocket under it is ws_client.c.
 * For the test process's main thread; every call that waits has a deadline. */
#ifndef CHATD_TEST_BIDI_H
#define CHATD_TEST_BIDI_H

#include "browser_proc.h"

#include <jansson.h>

struct ws_client;

/* One browser, one BiDi session over one WebSocket; its pages are browsing contexts. */
struct bidi_browser {
    struct browser_proc proc; /* proc.port is its BiDi port */
    struct ws_client *ws;
    int next_id;
};

struct bidi_page {
    struct bidi_browser *browser;
    char context[128]; /* the tab's browsing context id */
};

/* The firefox binary ($CHATD_TEST_FIREFOX, else "firefox-esr" on the PATH), or NULL. */
const char *bidi_firefox(void);

/* Start a headless firefox on a profile of its own and open a session. NULL after
 * printing why. */
struct bidi_browser *bidi_launch(void);
/* Kill it (its whole process group) and remove its profile. */
void bidi_quit(struct bidi_browser *b);

/* Open a new tab at `url` and wait until it has loaded. NULL after printing why. */
struct bidi_page *bidi_open(struct bidi_browser *b, const char *url);
void bidi_close(struct bidi_page *p);

/* Call a command (params: may be NULL; the reference is stolen) and return its "result"
 * (a new reference); NULL after printing the error, or when nothing came in time. */
json_t *bidi_call(struct bidi_browser *b, const char *method, json_t *params);

/* Evaluate a JavaScript expression in the page (a promise is awaited) and return its
 * value as JSON (a new reference; JSON null for undefined). NULL after printing the
 * exception unless `quiet`. */
json_t *bidi_eval(struct bidi_page *p, const char *expr, int quiet);

/* Type text into the focused element key by key ("\n" as Shift+Enter). 0, or -1. */
int bidi_type(struct bidi_page *p, const char *text);
/* Press and release a key: "Enter", "Tab", "Escape". 0, or -1. */
int bidi_key(struct bidi_page *p, const char *key);

/* Cut the page off the network (offline: 1) or reconnect it (0). 0, or -1. */
int bidi_offline(struct bidi_page *p, int offline);
/* Close every open WebSocket of the page from the page's side; the number closed, or
 * -1. */
int bidi_close_websockets(struct bidi_page *p);

/* Draw the page at width x height CSS pixels (Firefox has no mobile emulation: the
 * layout follows the width alone). 0, or -1. */
int bidi_viewport(struct bidi_page *p, int width, int height);
/* Save a PNG of the page as it is drawn to `path`. 0, or -1. */
int bidi_screenshot(struct bidi_page *p, const char *path);

#endif
