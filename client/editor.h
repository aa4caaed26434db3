/* editor.h - the input line of interactive chat: libedit's line editor and history,
 * driven one key at a time from the event loop, so that lines from the server can be
 * printed above the line being typed while it stays intact; also reads a password
 * without echo. When stdin is not a terminal, reads plain lines without editing. */
#ifndef CHAT_EDITOR_H
#define CHAT_EDITOR_H

#include <event2/event.h>

struct chat_editor_handlers {
    /* A typed line, without its newline. Borrowed until the call returns; the handler
     * may modify it. */
    void (*on_line)(void *ctx, char *line);
    /* The password asked for with chat_editor_ask_password. Borrowed, and wiped after
     * the call. */
    void (*on_password)(void *ctx, char *password);
    /* Ctrl-D on an empty line, or the end of the input. */
    void (*on_eof)(void *ctx);
};

struct chat_editor;

/* Start reading stdin on `base`. `prog` names the program for ~/.editrc. Puts the
 * terminal in raw mode while a line is edited; chat_editor_free restores it. NULL when
 * out of memory. */
struct chat_editor *chat_editor_new(struct event_base *base, const char *prog,
                                    const struct chat_editor_handlers *h, void *ctx);

/* Stop reading, restore the terminal and free everything. */
void chat_editor_free(struct chat_editor *e);

/* Set the prompt (copied) shown before the line, e.g. "alice> ". */
void chat_editor_set_prompt(struct chat_editor *e, const char *prompt);

/* Print one line (a newline is added) above the line being edited. The edit line is
 * redrawn, with what was typed and the cursor where they were, once the event loop has
 * run the current callbacks, so lines printed together cost one redraw. */
void chat_editor_print(struct chat_editor *e, const char *line);

/* Read the next line as a password, without echo, after showing `prompt`; it is given
 * to on_password instead of on_line. Call from on_line. */
void chat_editor_ask_password(struct chat_editor *e, const char *prompt);

/* Add a line to the history (up and down arrows). */
void chat_editor_remember(struct chat_editor *e, const char *line);

/* The terminal changed size (SIGWINCH): wipe the edit line as it was drawn (at the old
 * width) and draw it again at the new one. */
void chat_editor_resize(struct chat_editor *e);

/* Piped input only: hold the next lines (and the end of the input) back while `hold`,
 * e.g. until the reply to a command came, so that each line sees what the ones before
 * it did; released, they are delivered from the event loop. */
void chat_editor_hold(struct chat_editor *e, int hold);

/* Whether stdin and stdout are a terminal (else lines are read plainly, from a pipe). */
int chat_editor_is_tty(const struct chat_editor *e);

/* Ctrl-Z (SIGTSTP), before stopping: wipe the edit line and give the terminal back its
 * modes from before chat started. */
void chat_editor_suspend(struct chat_editor *e);

/* Continued (SIGCONT, or back from the stop of chat_editor_suspend): take the terminal
 * again in libedit's raw mode, and draw the prompt and the line as they were. */
void chat_editor_resume(struct chat_editor *e);

#endif
