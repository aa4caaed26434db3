/* editor.c - libedit's native API in unbuffered mode, fed one key at a time when stdin
 * is readable. libedit keeps the line, the cursor and the history; to print a line from
 * the server, this file wipes the edit line from the screen (it knows the prompt and the
 * cursor's place, so how many rows to go up), prints, and has libedit draw the line
 * again with EL_REFRESH, which redraws from where the cursor now is.
 *
 * libedit reads its keys from this file (EL_GETCFN), out of a buffer filled from stdin,
 * and el_gets is called only once a whole key is buffered (an escape sequence such as
 * an arrow key may come in pieces), because a libedit that waits for the rest of a key
 * blocks the event loop, and with it the lines from the server. A lone Esc that nothing
 * follows within ESC_TIMEOUT_MS is dropped (in emacs mode: it only starts a Meta key),
 * and Ctrl-R and Ctrl-S search the history for the line typed so far in one key, instead
 * of libedit's incremental search, which reads keys until it ends. */
#define _XOPEN_SOURCE 700 /* wcwidth */
#include "editor.h"

#include <errno.h>
#include <event2/buffer.h>
#include <histedit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>
#include <wchar.h>

#define HISTORY_SIZE   1000
#define PASSWORD_MAX   1100 /* a little more than the server's 1024, so too long is seen */
#define KEYS_MAX       4096 /* typed bytes not yet given to libedit */
#define ESC_TIMEOUT_MS 300  /* how long an Esc waits for the rest of its key */

struct chat_editor {
    struct event_base *base;
    struct event *input;
    struct event *redraw;
    struct chat_editor_handlers h;
    void *ctx;
    int tty;
    EditLine *el;
    History *hist;
    char prompt[128];
    char pw_prompt[128];
    int editing;       /* libedit is in unbuffered mode with a line under way */
    int hidden;        /* ...and that line is wiped from the screen until the redraw */
    int want_password; /* the next line is a password */
    int password;      /* the line under way is a password, read here, not by libedit */
    int delivering;    /* inside on_line or on_password */
    char pw[PASSWORD_MAX + 1];
    size_t pw_len;
    struct evbuffer *plain;       /* stdin's bytes when it is no terminal */
    int held;                     /* ...whose lines wait (chat_editor_hold) */
    int plain_eof, eof_told;      /* the input ended; on_eof was called */
    struct event *release;        /* delivers the lines held, from the event loop */
    unsigned char keys[KEYS_MAX]; /* typed bytes; libedit reads them from keys[kpos] */
    size_t nkeys, kpos;
    mbstate_t mbs;           /* decoding UTF-8 for libedit */
    struct event *esc_timer; /* an incomplete key at the start of keys waits this long */
    int cols;                /* the terminal's width when the line was drawn */
    struct termios cooked;   /* the terminal as chat found it */
    struct termios raw;      /* ... and as libedit set it for editing */
    int have_termios;
    int suspended; /* stopped by Ctrl-Z: the terminal is given back */
};

/* ---- the screen ---- */

static int term_cols(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 80;
}

static const char *current_prompt(const struct chat_editor *e)
{
    return e->password ? e->pw_prompt : e->prompt;
}

static char *prompt_fn(EditLine *el)
{
    void *data = NULL;
    el_get(el, EL_CLIENTDATA, &data);
    struct chat_editor *e = data;
    return e->password ? e->pw_prompt : e->prompt;
}

/* Columns a character takes as libedit shows it: control characters as ^X. */
static size_t char_width(wchar_t c)
{
    if (c < 0x20 || c == 0x7f)
        return 2;
    int w = wcwidth(c);
    return w < 0 ? 4 : (size_t)w;
}

/* The screen row of the cursor, counted from the row where the prompt starts. */
static int cursor_row(struct chat_editor *e)
{
    size_t pos = strlen(current_prompt(e)); /* prompts are ASCII */
    if (!e->password) {
        const LineInfoW *li = el_wline(e->el);
        for (const wchar_t *p = li->buffer; p < li->cursor; p++)
            pos += char_width(*p);
    }
    return (int)(pos / (size_t)e->cols);
}

/* Wipe the prompt and the line from the screen, leaving the cursor at the start of the
 * row where the prompt was. The rows are counted at the width the line was drawn at: a
 * terminal widened since has not moved what is on it. */
static void hide(struct chat_editor *e)
{
    if (!e->tty || !e->editing || e->hidden)
        return;
    int up = cursor_row(e);
    if (up > 0)
        printf("\r\033[%dA\033[J", up);
    else
        fputs("\r\033[J", stdout);
    e->hidden = 1;
    event_active(e->redraw, EV_TIMEOUT, 0);
}

static void on_redraw(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct chat_editor *e = arg;
    fflush(stdout);
    if (e->editing && e->hidden) {
        e->hidden = 0;
        el_set(e->el, EL_REFRESH);
    }
}

/* Begin a new line: libedit clears its buffer, takes the terminal raw and draws the
 * prompt. */
static void start_line(struct chat_editor *e)
{
    fflush(stdout);
    e->password = e->want_password;
    e->want_password = 0;
    e->pw_len = 0;
    if (e->tty) {
        el_set(e->el, EL_UNBUFFERED, 1);
        e->editing = 1;
        e->hidden = 0;
    }
}

/* The line is done (its newline is on the screen already): give the terminal back. */
static void end_line(struct chat_editor *e)
{
    if (e->tty && e->editing) {
        el_set(e->el, EL_UNBUFFERED, 0);
        e->editing = 0;
        e->hidden = 0;
    }
}

/* ---- input ---- */

static void deliver(struct chat_editor *e, char *line)
{
    e->delivering = 1;
    if (e->password)
        e->h.on_password(e->ctx, line);
    else
        e->h.on_line(e->ctx, line);
    e->delivering = 0;
}

static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

/* A password key: Enter ends it, Backspace and Ctrl-U edit it, Ctrl-D on nothing
 * gives up; nothing is echoed. */
static void password_key(struct chat_editor *e, unsigned char c)
{
    if (c == '\r' || c == '\n') {
        fputs("\n", stdout);
        e->pw[e->pw_len] = '\0';
        end_line(e);
        deliver(e, e->pw);
        wipe(e->pw, sizeof(e->pw));
        e->pw_len = 0;
        start_line(e);
    } else if (c == 0x7f || c == 0x08) {
        if (e->pw_len > 0)
            e->pw_len--;
    } else if (c == 0x15) {
        e->pw_len = 0;
    } else if (c == 0x04 && e->pw_len == 0) {
        fputs("\n", stdout);
        end_line(e);
        e->password = 0;
        e->h.on_eof(e->ctx);
    } else if (e->pw_len < PASSWORD_MAX) {
        e->pw[e->pw_len++] = (char)c;
    }
}

/* The length of the whole key at k (n bytes buffered): an escape sequence (CSI with its
 * parameters up to its final byte, SS3 and one more byte, or Esc and one byte: a Meta
 * key), a UTF-8 character, or one byte. 0 when the key is not complete yet. */
static size_t key_length(const unsigned char *k, size_t n)
{
    if (k[0] == 0x1b) {
        if (n < 2)
            return 0;
        if (k[1] == 'O')
            return n >= 3 ? 3 : 0;
        if (k[1] != '[')
            return 2;
        for (size_t i = 2; i < n; i++)
            if (k[i] >= 0x40 && k[i] <= 0x7e)
                return i + 1;
        return 0;
    }
    size_t want = k[0] >= 0xf0 ? 4 : k[0] >= 0xe0 ? 3 : k[0] >= 0xc0 ? 2 : 1;
    return n >= want ? want : 0;
}

/* libedit's key reader (EL_GETCFN): the next character from the buffer. Only when
 * libedit wants more than was typed (a sequence no key completes) does it wait for stdin. */
static int read_key(EditLine *el, wchar_t *out)
{
    void *data = NULL;
    el_get(el, EL_CLIENTDATA, &data);
    struct chat_editor *e = data;
    for (;;) {
        if (e->kpos == e->nkeys) {
            unsigned char c;
            ssize_t n = read(STDIN_FILENO, &c, 1);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return n == 0 ? 0 : -1;
            e->keys[0] = c;
            e->kpos = 0;
            e->nkeys = 1;
        }
        char c = (char)e->keys[e->kpos++];
        wchar_t wc;
        size_t r = mbrtowc(&wc, &c, 1, &e->mbs);
        if (r == (size_t)-2)
            continue;
        if (r == (size_t)-1) {
            memset(&e->mbs, 0, sizeof(e->mbs));
            wc = (unsigned char)c;
        }
        *out = wc;
        return 1;
    }
}

/* One command for libedit, and what it made of the line. */
static void edit_key(struct chat_editor *e)
{
    int count = 0;
    const char *line = el_gets(e->el, &count);
    if (!line || count <= 0)
        return;                          /* a key that left the line empty */
    if (count == 1 && line[0] == 0x04) { /* Ctrl-D on an empty line */
        fputs("\n", stdout);
        end_line(e);
        e->h.on_eof(e->ctx);
        return;
    }
    if (line[count - 1] != '\n')
        return; /* the line is still being typed */
    char *copy = strndup(line, (size_t)count - 1);
    end_line(e);
    if (copy)
        deliver(e, copy);
    free(copy);
    start_line(e);
}

/* Give libedit (or the password) every whole key buffered; an incomplete one at the end
 * waits for its rest, or for the Esc timeout. */
static void feed_keys(struct chat_editor *e)
{
    evtimer_del(e->esc_timer);
    while (e->kpos < e->nkeys && e->editing) {
        if (e->password) {
            password_key(e, e->keys[e->kpos]);
            e->keys[e->kpos++] = 0;
            continue;
        }
        if (key_length(e->keys + e->kpos, e->nkeys - e->kpos) == 0) {
            struct timeval tv = {.tv_sec = 0, .tv_usec = ESC_TIMEOUT_MS * 1000};
            evtimer_add(e->esc_timer, &tv);
            break;
        }
        size_t before = e->kpos;
        edit_key(e);
        if (e->kpos == before && e->editing)
            break; /* libedit took nothing: leave the rest for the next key */
    }
    memmove(e->keys, e->keys + e->kpos, e->nkeys - e->kpos);
    e->nkeys -= e->kpos;
    e->kpos = 0;
}

/* Nothing completed the key at the start of the buffer in time: in emacs mode it is
 * dropped (a lone Esc only starts a Meta key); in vi mode libedit gets it (Esc leaves
 * insert mode). */
static void on_esc_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct chat_editor *e = arg;
    const char *mode = NULL;
    if (!e->editing || e->kpos == e->nkeys)
        return;
    on_redraw(-1, 0, e);
    if (el_get(e->el, EL_EDITOR, &mode) == 0 && mode && strcmp(mode, "vi") == 0) {
        edit_key(e);
    } else {
        e->kpos = e->nkeys;
        memset(&e->mbs, 0, sizeof(e->mbs));
    }
    feed_keys(e);
    fflush(stdout);
}

static void read_tty(struct chat_editor *e)
{
    ssize_t n = read(STDIN_FILENO, e->keys + e->nkeys, sizeof(e->keys) - e->nkeys);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) { /* the terminal is gone */
        end_line(e);
        e->h.on_eof(e->ctx);
        return;
    }
    e->nkeys += (size_t)n;
    feed_keys(e);
}

/* Piped input: deliver the buffered lines, unless held; at the end of the input, the
 * last line (even without a newline) and then the end. */
static void deliver_plain(struct chat_editor *e)
{
    while (!e->held) {
        size_t len;
        char *line = evbuffer_readln(e->plain, &len, EVBUFFER_EOL_CRLF);
        if (!line)
            break;
        e->password = e->want_password;
        e->want_password = 0;
        deliver(e, line);
        wipe(line, len);
        free(line);
    }
    if (e->held || !e->plain_eof || e->eof_told)
        return;
    size_t len = evbuffer_get_length(e->plain);
    if (len > 0) {
        char *line = calloc(1, len + 1);
        if (line) {
            evbuffer_remove(e->plain, line, len);
            deliver(e, line);
            free(line);
        }
        if (e->held)
            return;
    }
    e->eof_told = 1;
    e->h.on_eof(e->ctx);
}

static void on_release(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    deliver_plain(arg);
}

static void read_plain(struct chat_editor *e)
{
    int n = evbuffer_read(e->plain, STDIN_FILENO, 4096);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        e->plain_eof = 1;
        event_del(e->input);
    }
    deliver_plain(e);
}

static void on_input(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct chat_editor *e = arg;
    /* Lines printed before this key were drawn over by nothing yet: redraw first. */
    on_redraw(-1, 0, e);
    if (e->tty)
        read_tty(e);
    else
        read_plain(e);
    fflush(stdout);
}

/* ---- the public functions ---- */

struct chat_editor *chat_editor_new(struct event_base *base, const char *prog,
                                    const struct chat_editor_handlers *h, void *ctx)
{
    struct chat_editor *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->base = base;
    e->h = *h;
    e->ctx = ctx;
    e->tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    snprintf(e->prompt, sizeof(e->prompt), "> ");
    e->input = event_new(base, STDIN_FILENO, EV_READ | EV_PERSIST, on_input, e);
    e->redraw = event_new(base, -1, 0, on_redraw, e);
    e->esc_timer = evtimer_new(base, on_esc_timeout, e);
    e->release = event_new(base, -1, 0, on_release, e);
    e->cols = term_cols();
    if (!e->input || !e->redraw || !e->esc_timer || !e->release)
        goto fail;
    if (e->tty) {
        HistEvent ev;
        e->hist = history_init();
        e->el = el_init(prog, stdin, stdout, stderr);
        if (!e->hist || !e->el)
            goto fail;
        history(e->hist, &ev, H_SETSIZE, HISTORY_SIZE);
        history(e->hist, &ev, H_SETUNIQUE, 1);
        e->have_termios = tcgetattr(STDIN_FILENO, &e->cooked) == 0;
        el_set(e->el, EL_CLIENTDATA, e);
        el_set(e->el, EL_GETCFN, read_key);
        el_set(e->el, EL_EDITOR, "emacs");
        el_set(e->el, EL_PROMPT, prompt_fn);
        el_set(e->el, EL_HIST, history, e->hist);
        /* Searches that take one key (see the top of the file); ~/.editrc may differ. */
        el_set(e->el, EL_BIND, "^R", "ed-search-prev-history", NULL);
        el_set(e->el, EL_BIND, "^S", "ed-search-next-history", NULL);
        el_source(e->el, NULL); /* the user's ~/.editrc, if any */
    } else {
        e->plain = evbuffer_new();
        if (!e->plain)
            goto fail;
    }
    if (event_add(e->input, NULL) != 0)
        goto fail;
    start_line(e);
    if (e->tty && e->have_termios)
        e->have_termios = tcgetattr(STDIN_FILENO, &e->raw) == 0;
    return e;
fail:
    chat_editor_free(e);
    return NULL;
}

void chat_editor_free(struct chat_editor *e)
{
    if (!e)
        return;
    /* Leave a clean screen: no prompt left behind after the last line. */
    hide(e);
    fflush(stdout);
    end_line(e);
    if (e->el)
        el_end(e->el);
    if (e->hist)
        history_end(e->hist);
    if (e->input)
        event_free(e->input);
    if (e->redraw)
        event_free(e->redraw);
    if (e->esc_timer)
        event_free(e->esc_timer);
    if (e->release)
        event_free(e->release);
    if (e->plain)
        evbuffer_free(e->plain);
    wipe(e->pw, sizeof(e->pw));
    free(e);
}

void chat_editor_set_prompt(struct chat_editor *e, const char *prompt)
{
    hide(e);
    snprintf(e->prompt, sizeof(e->prompt), "%s", prompt);
}

void chat_editor_print(struct chat_editor *e, const char *line)
{
    hide(e);
    fputs(line, stdout);
    fputs("\n", stdout);
}

void chat_editor_ask_password(struct chat_editor *e, const char *prompt)
{
    snprintf(e->pw_prompt, sizeof(e->pw_prompt), "%s", prompt);
    e->want_password = 1;
    /* Outside a handler the current line is still empty: turn it into the password. */
    if (!e->delivering) {
        hide(e);
        end_line(e);
        start_line(e);
    }
}

void chat_editor_remember(struct chat_editor *e, const char *line)
{
    HistEvent ev;
    if (e->hist && line[0])
        history(e->hist, &ev, H_ENTER, line);
}

void chat_editor_resize(struct chat_editor *e)
{
    if (!e->tty)
        return;
    hide(e);
    e->cols = term_cols();
    el_resize(e->el);
}

void chat_editor_hold(struct chat_editor *e, int hold)
{
    if (e->tty || e->held == hold)
        return;
    e->held = hold;
    if (!hold)
        event_active(e->release, EV_TIMEOUT, 0);
}

int chat_editor_is_tty(const struct chat_editor *e)
{
    return e->tty;
}

void chat_editor_suspend(struct chat_editor *e)
{
    if (!e->tty || e->suspended)
        return;
    hide(e);
    fflush(stdout);
    if (e->have_termios) {
        tcgetattr(STDIN_FILENO, &e->raw);
        tcsetattr(STDIN_FILENO, TCSADRAIN, &e->cooked);
    }
    e->suspended = 1;
}

void chat_editor_resume(struct chat_editor *e)
{
    if (!e->tty)
        return;
    /* Continued without a Ctrl-Z of ours (after SIGSTOP): the shell may have printed
     * below the line and changed the terminal; start the line afresh there. */
    if (!e->suspended)
        hide(e);
    e->suspended = 0;
    if (e->have_termios && e->editing)
        tcsetattr(STDIN_FILENO, TCSADRAIN, &e->raw);
    e->cols = term_cols();
    el_resize(e->el);
    e->hidden = e->editing;
    on_redraw(-1, 0, e);
}
