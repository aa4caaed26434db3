/* cdp.h - a headless Chromium for the browser tests, driven over the Chrome DevTools
 * Protocol: launch it on a fresh profile, open pages, evaluate JavaScript, type and press
 * keys, close a page's WebSockets, go offline and online, and save screenshots. The
 * WebSocket under it is ws_client.c; browser.h puts it and bidi.h (Firefox) behind one
 * interface. For the test process's main thread; every call
 * that waits has a deadline. */
#ifndef CHATD_TEST_CDP_H
#define CHATD_TEST_CDP_H

#include "browser_proc.h"

#include <jansson.h>

struct ws_client;

struct cdp_browser {
    struct browser_proc proc; /* proc.port is its DevTools port */
};

struct cdp_page {
    struct cdp_browser *browser;
    struct ws_client *ws;
    int next_id;
    char target[128]; /* the page's target id */
};

/* The chromium binary ($CHATD_TEST_CHROMIUM, else "chromium" on the PATH), or NULL. */
const char *cdp_chromium(void);

/* Start a headless chromium on a profile of its own (so each browser is one user with
 * its own localStorage) and wait for its DevTools port. NULL after printing why. */
struct cdp_browser *cdp_launch(void);
/* Kill it (its whole process group) and remove its profile. */
void cdp_quit(struct cdp_browser *b);

/* Open a new tab at `url` and attach to it. NULL after printing why. */
struct cdp_page *cdp_open(struct cdp_browser *b, const char *url);
void cdp_close(struct cdp_page *p);

/* Call a method (params: may be NULL; the reference is stolen) and return its "result"
 * (a new reference); NULL after printing the error, or when nothing came in time.
 * Events that arrive meanwhile are skipped. */
json_t *cdp_call(struct cdp_page *p, const char *method, json_t *params);

/* Evaluate a JavaScript expression (a promise is awaited) and return its value as JSON
 * (a new reference; JSON null for undefined). NULL after printing the exception unless
 * `quiet`. */
json_t *cdp_eval(struct cdp_page *p, const char *expr, int quiet);

/* Type text into the focused element, as an input method would. 0, or -1. */
int cdp_type(struct cdp_page *p, const char *text);
/* Press and release a key: "Enter", "Tab", "Escape". 0, or -1. */
int cdp_key(struct cdp_page *p, const char *key);

/* Cut the page off the network (offline: 1) or reconnect it (0): new connections fail
 * while offline. 0, or -1. */
int cdp_offline(struct cdp_page *p, int offline);
/* Close every open WebSocket of the page from the page's side (as a lost connection would
 * end it); the number closed, or -1. */
int cdp_close_websockets(struct cdp_page *p);

/* Draw the page at width x height CSS pixels, as a phone when `mobile`. 0, or -1. */
int cdp_viewport(struct cdp_page *p, int width, int height, int mobile);
/* Save a PNG of the page as it is drawn to `path`. 0, or -1. */
int cdp_screenshot(struct cdp_page *p, const char *path);

#endif
