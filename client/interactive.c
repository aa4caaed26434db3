/* interactive.c - the interactive mode: typed lines become requests, and replies and
 * pushes are printed above the line being typed.
 *
 * A line that does not start with '/' goes to the conversation of your last /msg or /g
 * that the server accepted (a line starting with "//" sends the rest, starting with one
 * '/'); the prompt names it. Incoming messages do not change that conversation, so a
 * message arriving while you type never redirects what you send.
 *
 * Logins acknowledge (acks.h): every message shown is acknowledged after it was
 * printed, and a lost connection is replaced by a new one, after a growing random delay,
 * that logs in with the saved token and "since" the last message shown, so nothing is
 * shown twice and nothing is missed. The line being typed is untouched meanwhile. */
#include "acks.h"
#include "backoff.h"
#include "conn.h"
#include "editor.h"
#include "exit_codes.h"
#include "format.h"
#include "seen.h"
#include "sent.h"
#include "session.h"
#include "token_store.h"

#include <event2/event.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SEEN_IDS      10000
#define SENT_MESSAGES 1000 /* own messages remembered for their receipts */
#define HISTORY_PAGE  20   /* /history without N */
#define HISTORY_MAX   200  /* the contract's cap of "limit" */
#define READ_DELAY_MS 200  /* one read for a burst of messages in the conversation */
#define N_SIGNALS     6    /* handled in interactive mode (chat_interactive's list) */
#define TSTP_EVENT    4    /* the place of SIGTSTP in that list */

struct interactive {
    const struct chat_options *o;
    struct event_base *base;
    struct chat_conn *conn;
    struct chat_editor *ed;
    struct chat_seen *seen;
    struct chat_acks *acks;
    struct chat_sent *sent;
    int exit_code;
    char failure[400];    /* why the connection ended, printed once the screen is clean */
    int quitting;         /* leave once every request is answered */
    int failed;           /* piped input: a command failed, so the exit status is not 0 */
    char user[300];       /* logged in as, or "" */
    enum chat_cmd pw_cmd; /* /login or /register waiting for its password */
    char pw_name[300];
    char pw_first[1100]; /* /register: the first password, waiting to be typed again */
    int pw_confirming;
    enum chat_cmd to_cmd; /* the conversation plain lines go to: CHAT_CMD_MSG or _GROUP_MSG */
    char to_name[300];
    char hist_of[310];     /* the conversation of the last /history page, "" for none */
    char hist_before[80];  /* the msg_id of its oldest message: where the next page ends */
    int hist_more;         /* the server said older messages exist */
    char unread_from[300]; /* the newest private message shown, to mark read */
    char unread_id[80];
    char read_id[80]; /* the last one marked read */
    struct event *read_timer;
    struct event *reconnect; /* a timer: the next attempt after a lost connection */
    int attempts;            /* made since the connection was lost */
    int lost;                /* the connection is lost and being replaced */
    struct event *sig_events[N_SIGNALS];
};

static const struct chat_conn_handlers conn_handlers;

static void say(struct interactive *s, const char *line)
{
    chat_editor_print(s->ed, line);
}

__attribute__((format(printf, 2, 3))) static void sayf(struct interactive *s, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    say(s, line);
}

/* Print and free a formatted line. */
static void say_owned(struct interactive *s, char *text)
{
    say(s, text ? text : "(out of memory)");
    free(text);
}

/* A command that went wrong: said, and remembered for the exit status of piped input. */
static void say_failed(struct interactive *s, const char *line)
{
    say(s, line);
    if (!chat_editor_is_tty(s->ed))
        s->failed = 1;
}

static void quit(struct interactive *s, int code)
{
    s->exit_code = code;
    event_base_loopbreak(s->base);
}

/* "alice> ", "alice -> bob> " or "alice [friends]> ": who you are and where a line
 * without '/' goes. */
static void set_prompt(struct interactive *s)
{
    char prompt[700];
    const char *me = s->user[0] ? s->user : "chat";
    if (!s->to_name[0])
        snprintf(prompt, sizeof(prompt), "%s> ", me);
    else if (s->to_cmd == CHAT_CMD_GROUP_MSG)
        snprintf(prompt, sizeof(prompt), "%s [%s]> ", me, s->to_name);
    else
        snprintf(prompt, sizeof(prompt), "%s -> %s> ", me, s->to_name);
    chat_editor_set_prompt(s->ed, prompt);
}

/* Send request `req` (taken) for command `cmd` about `name`. 0, or -1 after saying why. */
static int send_request(struct interactive *s, enum chat_cmd cmd, const char *name, json_t *req)
{
    int rc = chat_conn_send(s->conn, cmd, name, req);
    json_decref(req);
    if (rc == 0)
        return 0;
    if (s->lost)
        say_failed(s, "not sent: not connected; reconnecting (Up brings the line back)");
    else
        say_failed(s, "error: cannot send: out of memory or not connected");
    return -1;
}

/* Send command `c`; `password` replaces the typed one when not NULL. A login
 * acknowledges, and when `resume` continues after the last message shown. */
static void send_command(struct interactive *s, const struct chat_command *c, const char *password,
                         int resume)
{
    json_t *req = chat_command_request(c, password);
    if (!req) {
        say_failed(s, "error: cannot send that: it is not valid UTF-8 text");
        return;
    }
    if (c->cmd == CHAT_CMD_LOGIN &&
        chat_acks_login_fields(s->acks, req, s->o->device, resume) != 0) {
        json_decref(req);
        say_failed(s, "error: out of memory");
        return;
    }
    send_request(s, c->cmd, c->name, req);
}

/* ---- marking the conversation read ---- */

static void on_read_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct interactive *s = arg;
    if (s->lost || !s->unread_id[0] || strcmp(s->unread_id, s->read_id) == 0)
        return;
    chat_acks_flush(s->acks); /* received before read: the receipts come in that order */
    json_t *req =
        json_pack("{ssssss}", "cmd", "read", "with", s->unread_from, "msg_id", s->unread_id);
    if (req && chat_conn_send(s->conn, CHAT_CMD_READ, s->unread_from, req) == 0)
        snprintf(s->read_id, sizeof(s->read_id), "%s", s->unread_id);
    json_decref(req);
}

/* The newest private message shown is read once it is in the current conversation. */
static void maybe_mark_read(struct interactive *s)
{
    if (s->to_cmd == CHAT_CMD_MSG && s->unread_id[0] && strcmp(s->unread_from, s->to_name) == 0 &&
        strcmp(s->unread_id, s->read_id) != 0 && !evtimer_pending(s->read_timer, NULL)) {
        struct timeval tv = {.tv_sec = 0, .tv_usec = READ_DELAY_MS * 1000};
        evtimer_add(s->read_timer, &tv);
    }
}

/* Send the read mark that waits for its timer now (before leaving). */
static void send_due_read(struct interactive *s)
{
    if (evtimer_pending(s->read_timer, NULL)) {
        evtimer_del(s->read_timer);
        on_read_timer(-1, 0, s);
    }
}

/* Leave once what was shown is acknowledged and every request answered. */
static void quit_gracefully(struct interactive *s)
{
    if (s->lost || !s->conn) {
        quit(s, s->failed ? CHAT_EXIT_REFUSED : CHAT_EXIT_OK);
        return;
    }
    s->quitting = 1;
    send_due_read(s);
    if (chat_acks_flush(s->acks)) {
        /* The ping's reply says the ack before it has arrived. */
        json_t *req = json_pack("{ss}", "cmd", "ping");
        if (req)
            chat_conn_send(s->conn, CHAT_CMD_SYNC, NULL, req);
        json_decref(req);
    }
    if (chat_conn_pending(s->conn) == 0)
        quit(s, s->failed ? CHAT_EXIT_REFUSED : CHAT_EXIT_OK);
}

/* ---- typed lines ---- */

static void send_to_conversation(struct interactive *s, const char *text)
{
    if (!s->to_name[0]) {
        say_failed(s, "no conversation yet: start one with /msg USER TEXT or /g GROUP TEXT "
                      "(/help lists the commands)");
        return;
    }
    struct chat_command c = {.cmd = s->to_cmd, .name = s->to_name, .text = text};
    send_command(s, &c, NULL, 0);
}

/* /history [N]: the page before the one shown last when repeated for the same
 * conversation. */
static void ask_history(struct interactive *s, const char *count)
{
    int limit = HISTORY_PAGE;
    if (count) {
        char *end;
        long v = strtol(count, &end, 10);
        if (*end || v < 1 || v > HISTORY_MAX) {
            say_failed(s, "usage: /history [N], N from 1 to 200");
            return;
        }
        limit = (int)v;
    }
    if (!s->to_name[0]) {
        say_failed(s, "no conversation yet: /history shows the one of your last /msg or /g");
        return;
    }
    char of[310];
    snprintf(of, sizeof(of), "%c:%s", s->to_cmd == CHAT_CMD_GROUP_MSG ? 'g' : 'u', s->to_name);
    int older = strcmp(of, s->hist_of) == 0 && s->hist_before[0];
    if (older && !s->hist_more) {
        say(s, "no older messages");
        return;
    }
    json_t *req =
        json_pack("{sssssi}", "cmd", "history", s->to_cmd == CHAT_CMD_GROUP_MSG ? "group" : "with",
                  s->to_name, "limit", limit);
    if (req && older)
        json_object_set_new(req, "before", json_string(s->hist_before));
    if (!req) {
        say_failed(s, "error: out of memory");
        return;
    }
    send_request(s, CHAT_CMD_HISTORY, s->to_name, req);
}

static int only_spaces(const char *line)
{
    return line[strspn(line, " \t")] == '\0';
}

static void handle_line(struct interactive *s, char *line);

/* Piped input: the next line waits for the replies to this one, so a plain line after
 * "/msg bob hi" goes to bob once the server accepted that. */
static void hold_while_pending(struct interactive *s)
{
    if (s->conn)
        chat_editor_hold(s->ed, chat_conn_pending(s->conn) > 0);
}

static void on_line(void *ctx, char *line)
{
    handle_line(ctx, line);
    hold_while_pending(ctx);
}

static void handle_line(struct interactive *s, char *line)
{
    if (only_spaces(line) || s->quitting)
        return; /* an empty or whitespace-only line sends nothing */
    if (line[0] != '/' || line[1] == '/') {
        chat_editor_remember(s->ed, line);
        send_to_conversation(s, line[0] == '/' ? line + 1 : line);
        return;
    }

    struct chat_command c;
    char remembered[400];
    snprintf(remembered, sizeof(remembered), "%s", line);
    int rc = chat_command_parse(line, &c);
    /* A password never goes into the history. */
    if (rc == CHAT_PARSE_OK && (c.cmd == CHAT_CMD_LOGIN || c.cmd == CHAT_CMD_REGISTER))
        snprintf(remembered, sizeof(remembered), "/%s %s",
                 c.cmd == CHAT_CMD_LOGIN ? "login" : "register", c.name);
    chat_editor_remember(s->ed, remembered);

    if (rc == CHAT_PARSE_UNKNOWN) {
        say_failed(s, "unknown command; /help lists the commands");
        return;
    }
    if (rc == CHAT_PARSE_USAGE) {
        char usage[300];
        snprintf(usage, sizeof(usage), "usage: %s", chat_command_usage(c.cmd));
        say_failed(s, usage);
        return;
    }
    switch (c.cmd) {
    case CHAT_CMD_HELP: {
        say(s, "commands:");
        char help[4096];
        snprintf(help, sizeof(help), "%s", chat_command_help());
        for (char *next, *l = help; *l; l = next) {
            next = strchr(l, '\n');
            *next++ = '\0';
            say(s, l);
        }
        say(s, "  a line without '/' goes to the conversation the prompt shows (your last "
               "/msg or /g); '//' sends a line starting with '/'");
        return;
    }
    case CHAT_CMD_QUIT:
        quit_gracefully(s);
        return;
    case CHAT_CMD_HISTORY:
        ask_history(s, c.name);
        return;
    case CHAT_CMD_LOGIN:
    case CHAT_CMD_REGISTER:
        if (!c.extra) {
            char prompt[340];
            s->pw_cmd = c.cmd;
            s->pw_confirming = 0;
            snprintf(s->pw_name, sizeof(s->pw_name), "%s", c.name);
            snprintf(prompt, sizeof(prompt), "password for %s: ", c.name);
            chat_editor_ask_password(s->ed, prompt);
            return;
        }
        break;
    default:
        break;
    }
    send_command(s, &c, NULL, 0);
}

static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

static void on_password(void *ctx, char *password)
{
    struct interactive *s = ctx;
    struct chat_command c = {.cmd = s->pw_cmd, .name = s->pw_name};
    if (s->pw_cmd == CHAT_CMD_REGISTER && !s->pw_confirming) {
        /* A new password is typed twice, so a typo does not lock the account. */
        snprintf(s->pw_first, sizeof(s->pw_first), "%s", password);
        s->pw_confirming = 1;
        chat_editor_ask_password(s->ed, "the same password again: ");
        return;
    }
    if (s->pw_confirming) {
        int same = strcmp(s->pw_first, password) == 0;
        wipe(s->pw_first, sizeof(s->pw_first));
        s->pw_confirming = 0;
        if (!same) {
            say_failed(s, "the two passwords differ; not registered (/register to try again)");
            return;
        }
    }
    send_command(s, &c, password, 0);
    hold_while_pending(s);
}

static void on_eof(void *ctx)
{
    quit_gracefully(ctx);
}

/* ---- the server's lines ---- */

static void on_login_reply(struct interactive *s, const char *name, const json_t *reply, int ok)
{
    const char *token = json_string_value(json_object_get(reply, "token"));
    if (!ok)
        return;
    if (strcmp(s->user, name) != 0) {
        s->to_name[0] = '\0'; /* another user: another set of conversations */
        s->hist_of[0] = '\0';
    }
    snprintf(s->user, sizeof(s->user), "%s", name);
    set_prompt(s);
    if (token && chat_token_save(s->o->host, s->o->port, name, token) != 0)
        say(s, "warning: cannot save the login token; the next login asks for the password");
}

/* A history page, oldest first, and where the next one ends. */
static void show_history(struct interactive *s, const json_t *req, const json_t *reply)
{
    const json_t *messages = json_object_get(reply, "messages");
    const char *with = json_string_value(json_object_get(req, "with"));
    const char *group = json_string_value(json_object_get(req, "group"));
    size_t i, n = json_array_size(messages);
    const json_t *m;
    snprintf(s->hist_of, sizeof(s->hist_of), "%c:%s", group ? 'g' : 'u', group ? group : with);
    s->hist_more = json_is_true(json_object_get(reply, "more"));
    const char *oldest = json_string_value(json_object_get(json_array_get(messages, 0), "msg_id"));
    snprintf(s->hist_before, sizeof(s->hist_before), "%s", oldest ? oldest : "");
    if (n == 0) {
        say(s, "no messages");
        return;
    }
    sayf(s, "-- %zu message%s%s --", n, n == 1 ? "" : "s",
         s->hist_more ? " (/history again for older ones)" : ", from the first");
    json_array_foreach(messages, i, m) say_owned(s, chat_format_history_entry(m, s->user, with));
}

/* Your own message was accepted: show it with its time, and it is the conversation now. */
static void show_sent(struct interactive *s, enum chat_cmd cmd, const char *name, const json_t *req,
                      const json_t *reply)
{
    const char *text = json_string_value(json_object_get(req, "text"));
    const char *msg_id = json_string_value(json_object_get(reply, "msg_id"));
    const json_t *ts = json_object_get(reply, "ts");
    if (msg_id && text && cmd == CHAT_CMD_MSG)
        chat_sent_add(s->sent, msg_id, text, json_is_integer(ts) ? json_integer_value(ts) : 0);
    say_owned(s, chat_format_sent(cmd, name, text ? text : "", reply));
    if (s->to_cmd != cmd || strcmp(s->to_name, name) != 0) {
        s->to_cmd = cmd;
        snprintf(s->to_name, sizeof(s->to_name), "%s", name);
        set_prompt(s);
        maybe_mark_read(s);
    }
}

static void on_reply(void *ctx, enum chat_cmd cmd, const char *name, const json_t *req,
                     const json_t *reply)
{
    struct interactive *s = ctx;
    int ok = 0;
    const char *host = s->o->host, *port = s->o->port;
    const char *result = json_string_value(json_object_get(reply, "result"));
    if (cmd == CHAT_CMD_LOGIN && name && result && strcmp(result, "token_invalid") == 0) {
        /* The saved login has expired or was revoked: forget it, ask for the password. */
        chat_token_forget(host, port, name);
        char line[400];
        snprintf(line, sizeof(line), "/login %s", name);
        on_line(s, line);
        return;
    }
    if (cmd == CHAT_CMD_READ || cmd == CHAT_CMD_SYNC) {
        /* Marks the client sends of itself: a server without `read` is no error of yours. */
    } else if (cmd == CHAT_CMD_HISTORY && result && strcmp(result, "success") == 0) {
        show_history(s, req, reply);
    } else if ((cmd == CHAT_CMD_MSG || cmd == CHAT_CMD_GROUP_MSG) && result &&
               (strcmp(result, "success") == 0 ||
                (cmd == CHAT_CMD_MSG && strcmp(result, "offline") == 0))) {
        show_sent(s, cmd, name, req, reply);
    } else {
        char *text = chat_format_reply(cmd, name, reply, &ok);
        if (cmd == CHAT_CMD_LOGIN && name)
            on_login_reply(s, name, reply, ok);
        else if (ok && (cmd == CHAT_CMD_LOGOUT || cmd == CHAT_CMD_LOGOUT_ALL)) {
            if (cmd == CHAT_CMD_LOGOUT_ALL)
                chat_token_forget(host, port, s->user);
            s->user[0] = '\0';
            s->to_name[0] = '\0';
            s->hist_of[0] = '\0';
            set_prompt(s);
        }
        if (ok)
            say_owned(s, text);
        else {
            say_failed(s, text ? text : "(out of memory)");
            free(text);
        }
    }
    hold_while_pending(s);
    if (s->quitting)
        send_due_read(s); /* the reply switched the conversation while leaving */
    if (s->quitting && chat_conn_pending(s->conn) == 0)
        quit(s, s->failed ? CHAT_EXIT_REFUSED : CHAT_EXIT_OK);
}

static void on_push(void *ctx, const json_t *push)
{
    struct interactive *s = ctx;
    const char *cmd = json_string_value(json_object_get(push, "cmd"));
    if (chat_acks_is_answer(push)) {
        if (chat_acks_refused(s->acks))
            say(s, "note: the server takes no acknowledgements; messages may come again "
                   "after a reconnect");
        return;
    }
    if (cmd && strcmp(cmd, "receipt") == 0) {
        const char *msg_id = json_string_value(json_object_get(push, "msg_id"));
        long long ts = 0;
        const char *text = msg_id ? chat_sent_find(s->sent, msg_id, &ts) : NULL;
        const char *status = json_string_value(json_object_get(push, "status"));
        if (json_string_value(json_object_get(push, "user")) && status &&
            (strcmp(status, "delivered") == 0 || strcmp(status, "read") == 0))
            say_owned(s, chat_format_receipt(push, text, ts));
        else
            say_owned(s, chat_format_push(push));
        return;
    }
    if (chat_acks_is_repeat(s->acks, push) || chat_seen_repeat(s->seen, push))
        return;
    say_owned(s, chat_format_push(push));
    chat_acks_shown(s->acks, push);
    const char *from = json_string_value(json_object_get(push, "user_from"));
    const char *msg_id = json_string_value(json_object_get(push, "msg_id"));
    if (cmd && strcmp(cmd, "private_chat_recv") == 0 && from && msg_id &&
        strlen(msg_id) < sizeof(s->unread_id)) {
        snprintf(s->unread_from, sizeof(s->unread_from), "%s", from);
        snprintf(s->unread_id, sizeof(s->unread_id), "%s", msg_id);
        maybe_mark_read(s);
    }
}

/* ---- reconnecting ---- */

static void schedule_reconnect(struct interactive *s, const char *why)
{
    int ms = chat_backoff_ms(s->attempts, rand());
    sayf(s, "%s; reconnecting in %.1f s", why, ms / 1000.0);
    struct timeval delay = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    evtimer_add(s->reconnect, &delay);
}

/* The reconnect timer: a new connection, and a login with the saved token that resumes
 * after the last message shown. Requests that were waiting for a reply on the old
 * connection are not sent again. */
static void on_reconnect(evutil_socket_t fd_unused, short what, void *arg)
{
    (void)fd_unused;
    (void)what;
    struct interactive *s = arg;
    char err[400], token[CHAT_TOKEN_MAX] = "";
    s->attempts++;
    int fd = chat_connect(s->o->host, s->o->port, s->o->timeout_ms, err, sizeof(err));
    struct chat_conn *conn = fd >= 0
                                 ? chat_conn_new(s->base, fd, s->o->timeout_ms, &s->o->tls,
                                                 s->o->host, &conn_handlers, s, err, sizeof(err))
                                 : NULL;
    if (!conn || chat_conn_keepalive(conn, CHAT_KEEPALIVE_MS) != 0) {
        chat_conn_free(conn);
        schedule_reconnect(s, err);
        return;
    }
    chat_conn_free(s->conn);
    s->conn = conn;
    chat_acks_attach(s->acks, conn);
    s->attempts = 0;
    s->lost = 0;
    s->failure[0] = '\0';
    sayf(s, "connected to %s:%s again", s->o->host, s->o->port);
    if (!s->user[0])
        return;
    if (chat_token_load(s->o->host, s->o->port, s->user, token) != 0) {
        /* No saved login (revoked by /logout all elsewhere): the password is needed. */
        char line[400];
        snprintf(line, sizeof(line), "/login %s", s->user);
        on_line(s, line);
        return;
    }
    struct chat_command c = {.cmd = CHAT_CMD_LOGIN, .name = s->user, .token = token};
    send_command(s, &c, NULL, 1);
}

static void on_fail(void *ctx, int exit_code, const char *message)
{
    struct interactive *s = ctx;
    snprintf(s->failure, sizeof(s->failure), "%s", message);
    chat_acks_attach(s->acks, NULL);
    /* At a terminal, a lost connection is replaced, whoever is logged in. Replies that
     * make no sense (exit 4) end chat, as does a lost connection with piped input. */
    if (exit_code == CHAT_EXIT_CONNECTION && !s->quitting && chat_editor_is_tty(s->ed)) {
        s->lost = 1;
        s->attempts = 0;
        s->failure[0] = '\0';
        schedule_reconnect(s, message);
        return;
    }
    quit(s, exit_code);
}

static const struct chat_conn_handlers conn_handlers = {on_reply, on_push, on_fail};

/* ---- signals ---- */

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct interactive *s = arg;
    if (sig == SIGWINCH)
        chat_editor_resize(s->ed);
    else if (sig == SIGTSTP) {
        /* Give the terminal back as it was, stop for real (libevent's handler is taken
         * away for that), and take it again when continued. */
        chat_editor_suspend(s->ed);
        event_del(s->sig_events[TSTP_EVENT]);
        raise(SIGTSTP);
        event_add(s->sig_events[TSTP_EVENT], NULL);
        chat_editor_resume(s->ed);
    } else if (sig == SIGCONT)
        chat_editor_resume(s->ed);
    else if (sig == SIGINT && !s->quitting)
        quit_gracefully(s);
    else
        quit(s, s->failed ? CHAT_EXIT_REFUSED : CHAT_EXIT_OK);
}

/* Log in at the start when --user (or the config file) says who. */
static void first_login(struct interactive *s)
{
    const struct chat_options *o = s->o;
    char token[CHAT_TOKEN_MAX];
    if (o->user && o->password) {
        struct chat_command c = {.cmd = CHAT_CMD_LOGIN, .name = o->user};
        send_command(s, &c, o->password, 0);
    } else if (o->user && chat_token_load(o->host, o->port, o->user, token) == 0) {
        struct chat_command c = {.cmd = CHAT_CMD_LOGIN, .name = o->user, .token = token};
        send_command(s, &c, NULL, 0);
    } else if (o->user) {
        char line[400];
        snprintf(line, sizeof(line), "/login %s", o->user);
        on_line(s, line);
    }
}

int chat_interactive(const struct chat_options *o, const char *prog)
{
    struct interactive s = {.o = o, .exit_code = CHAT_EXIT_OK};
    char err[400];
    int fd = chat_connect(o->host, o->port, o->timeout_ms, err, sizeof(err));
    if (fd < 0) {
        fprintf(stderr, "chat: %s\n", err);
        return CHAT_EXIT_CONNECTION;
    }
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    static const struct chat_editor_handlers editor_handlers = {on_line, on_password, on_eof};
    static const int signals[N_SIGNALS] = {SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGTSTP, SIGCONT};
    struct event **sig_events = s.sig_events;
    s.base = event_base_new();
    s.seen = chat_seen_new(SEEN_IDS);
    s.sent = chat_sent_new(SENT_MESSAGES);
    s.acks = s.base ? chat_acks_new(s.base) : NULL;
    if (!s.base || !s.seen || !s.sent || !s.acks)
        goto oom;
    s.conn = chat_conn_new(s.base, fd, o->timeout_ms, &o->tls, o->host, &conn_handlers, &s, err,
                           sizeof(err));
    fd = -1;
    if (!s.conn) {
        fprintf(stderr, "chat: %s\n", err); /* out of memory, or a CA file it cannot use */
        s.exit_code = CHAT_EXIT_USAGE;
        goto done;
    }
    chat_acks_attach(s.acks, s.conn);
    s.reconnect = evtimer_new(s.base, on_reconnect, &s);
    s.read_timer = evtimer_new(s.base, on_read_timer, &s);
    if (!s.reconnect || !s.read_timer || chat_conn_keepalive(s.conn, CHAT_KEEPALIVE_MS) != 0)
        goto oom;
    s.ed = chat_editor_new(s.base, prog, &editor_handlers, &s);
    if (!s.ed)
        goto oom;
    /* Suspending and resuming matter only at a terminal; elsewhere they keep their
     * default meaning. */
    for (size_t i = 0; i < N_SIGNALS; i++) {
        if ((signals[i] == SIGTSTP || signals[i] == SIGCONT) && !chat_editor_is_tty(s.ed))
            continue;
        sig_events[i] = evsignal_new(s.base, signals[i], on_signal, &s);
        if (!sig_events[i] || evsignal_add(sig_events[i], NULL) != 0)
            goto oom;
    }
    set_prompt(&s);
    sayf(&s, "connected to %s:%s; /help lists the commands", o->host, o->port);
    first_login(&s);
    fflush(stdout);
    event_base_dispatch(s.base);
    goto done;
oom:
    if (fd >= 0)
        close(fd);
    fprintf(stderr, "chat: out of memory\n");
    s.exit_code = CHAT_EXIT_USAGE;
done:
    chat_editor_free(s.ed);
    for (size_t i = 0; i < N_SIGNALS; i++)
        if (sig_events[i])
            event_free(sig_events[i]);
    if (s.reconnect)
        event_free(s.reconnect);
    if (s.read_timer)
        event_free(s.read_timer);
    chat_conn_free(s.conn);
    chat_acks_free(s.acks);
    chat_seen_free(s.seen);
    chat_sent_free(s.sent);
    if (s.base)
        event_base_free(s.base);
    fflush(stdout);
    if (s.failure[0])
        fprintf(stderr, "chat: %s\n", s.failure);
    return s.exit_code;
}
