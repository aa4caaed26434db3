/* browser.h - one interface over the two browsers the web client is tested in: headless
 * Chromium (cdp.h, the DevTools protocol) and headless Firefox (bidi.h, WebDriver BiDi),
 * so that a test's scenario runs in either, chosen by a browser_kind. */
#ifndef CHATD_TEST_BROWSER_H
#define CHATD_TEST_BROWSER_H

#include <jansson.h>

enum browser_kind { BROWSER_CHROMIUM, BROWSER_FIREFOX, BROWSER_KINDS };

struct browser;
struct browser_page;

/* "chromium" or "firefox". */
const char *browser_name(enum browser_kind kind);
/* Whether its binary is installed. */
int browser_installed(enum browser_kind kind);

/* Start one on a profile of its own (one user, with its own localStorage). NULL after
 * printing why. */
struct browser *browser_launch(enum browser_kind kind);
void browser_quit(struct browser *b);

/* Open a new tab at `url`. NULL after printing why. */
struct browser_page *browser_open(struct browser *b, const char *url);
void browser_close(struct browser_page *p);

/* Evaluate a JavaScript expression (a promise is awaited): its value as JSON (a new
 * reference; JSON null for undefined), or NULL after printing the exception. */
json_t *browser_eval(struct browser_page *p, const char *expr);
/* browser_eval as a malloc'd string (a non-string value is given as JSON); NULL on
 * error. */
char *browser_eval_string(struct browser_page *p, const char *expr);
/* Poll the expression until it is truthy: 0, or -1 (after printing it) at the deadline. */
int browser_wait(struct browser_page *p, const char *expr, int timeout_ms);

/* Type text into the focused element ("\n" as Shift+Enter would). 0, or -1. */
int browser_type(struct browser_page *p, const char *text);
/* Press and release "Enter", "Tab" or "Escape". 0, or -1. */
int browser_key(struct browser_page *p, const char *key);
/* Cut the page off the network (1) or reconnect it (0). 0, or -1. */
int browser_offline(struct browser_page *p, int offline);
/* Close the page's open WebSockets from its side; how many, or -1. */
int browser_close_websockets(struct browser_page *p);
/* Draw the page at width x height CSS pixels, as a phone when `mobile` where the
 * browser can emulate one (Chromium; Firefox follows the width alone). 0, or -1. */
int browser_viewport(struct browser_page *p, int width, int height, int mobile);
/* Save a PNG of the page as it is drawn to `path`. 0, or -1. */
int browser_screenshot(struct browser_page *p, const char *path);

#endif
