/* browser.c - Chromium or Firefox behind one interface (see browser.h). */
#include "browser.h"

#include "bidi.h"
#include "cdp.h"
#include "chatd_proc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POLL_MS 50

struct browser {
    enum browser_kind kind;
    struct cdp_browser *cdp;
    struct bidi_browser *bidi;
};

struct browser_page {
    enum browser_kind kind;
    struct cdp_page *cdp;
    struct bidi_page *bidi;
};

const char *browser_name(enum browser_kind kind)
{
    return kind == BROWSER_FIREFOX ? "firefox" : "chromium";
}

int browser_installed(enum browser_kind kind)
{
    return (kind == BROWSER_FIREFOX ? bidi_firefox() : cdp_chromium()) != NULL;
}

struct browser *browser_launch(enum browser_kind kind)
{
    struct browser *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->kind = kind;
    if (kind == BROWSER_FIREFOX)
        b->bidi = bidi_launch();
    else
        b->cdp = cdp_launch();
    if (!b->cdp && !b->bidi) {
        free(b);
        return NULL;
    }
    return b;
}

void browser_quit(struct browser *b)
{
    if (!b)
        return;
    cdp_quit(b->cdp);
    bidi_quit(b->bidi);
    free(b);
}

struct browser_page *browser_open(struct browser *b, const char *url)
{
    struct browser_page *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->kind = b->kind;
    if (b->kind == BROWSER_FIREFOX)
        p->bidi = bidi_open(b->bidi, url);
    else
        p->cdp = cdp_open(b->cdp, url);
    if (!p->cdp && !p->bidi) {
        free(p);
        return NULL;
    }
    return p;
}

void browser_close(struct browser_page *p)
{
    if (!p)
        return;
    cdp_close(p->cdp);
    bidi_close(p->bidi);
    free(p);
}

static json_t *eval(struct browser_page *p, const char *expr, int quiet)
{
    return p->bidi ? bidi_eval(p->bidi, expr, quiet) : cdp_eval(p->cdp, expr, quiet);
}

json_t *browser_eval(struct browser_page *p, const char *expr)
{
    return eval(p, expr, 0);
}

char *browser_eval_string(struct browser_page *p, const char *expr)
{
    json_t *v = browser_eval(p, expr);
    char *s = NULL;
    if (json_is_string(v))
        s = strdup(json_string_value(v));
    else if (v)
        s = json_dumps(v, JSON_ENCODE_ANY);
    json_decref(v);
    return s;
}

int browser_wait(struct browser_page *p, const char *expr, int timeout_ms)
{
    char wrapped[8192];
    snprintf(wrapped, sizeof(wrapped), "!!(%s)", expr);
    long long deadline = chatd_now_ms() + timeout_ms;
    do {
        json_t *v = eval(p, wrapped, 1); /* it may throw until the page is ready */
        int ok = json_is_true(v);
        json_decref(v);
        if (ok)
            return 0;
        chatd_sleep_ms(POLL_MS);
    } while (chatd_now_ms() < deadline);
    fprintf(stderr, "%s: still false after %d ms: %s\n", browser_name(p->kind), timeout_ms, expr);
    return -1;
}

int browser_type(struct browser_page *p, const char *text)
{
    return p->bidi ? bidi_type(p->bidi, text) : cdp_type(p->cdp, text);
}

int browser_key(struct browser_page *p, const char *key)
{
    return p->bidi ? bidi_key(p->bidi, key) : cdp_key(p->cdp, key);
}

int browser_offline(struct browser_page *p, int offline)
{
    return p->bidi ? bidi_offline(p->bidi, offline) : cdp_offline(p->cdp, offline);
}

int browser_close_websockets(struct browser_page *p)
{
    return p->bidi ? bidi_close_websockets(p->bidi) : cdp_close_websockets(p->cdp);
}

int browser_viewport(struct browser_page *p, int width, int height, int mobile)
{
    return p->bidi ? bidi_viewport(p->bidi, width, height)
                   : cdp_viewport(p->cdp, width, height, mobile);
}

int browser_screenshot(struct browser_page *p, const char *path)
{
    return p->bidi ? bidi_screenshot(p->bidi, path) : cdp_screenshot(p->cdp, path);
}
