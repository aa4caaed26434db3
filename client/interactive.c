/* interactive.c - the interactive mode: typed lines become requests, and replies and
 * pushes are printed above the line being typed.
 *
 * A line that does not start with '/' goes to the conversation of your last /msg or /g
 * (a line starting with "//" sends the rest, starting with one '/'). Incoming messages
 * do not change that conversation, so a message arriving while you type never
 * redirects what you send. */
#include "conn.h"
#include "editor.h"
#include "exit_codes.h"
#include "format.h"
#include "seen.h"
#include "session.h"

#include <event2/event.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "token_store.h"

#define SEEN_IDS 10000

/* After a lost connection, a user with a saved login token is logged in again on a new
 * connection: this many attempts, the first after RECONNECT_FIRST_S, each delay
 * doubling. */
#define RECONNECT_ATTEMPTS 3
#define RECONNECT_FIRST_S  1

struct interactive {
    const struct chat_options *o;
    struct event_base *base;
    struct chat_conn *conn;
    struct chat_editor *ed;
    struct chat_seen *seen;
    int exit_code;
    char failure[400];    /* why the connection ended, printed once the screen is clean */
    int quitting;         /* leave once every request is answered (end of piped input) */
    char user[300];       /* logged in as, or "" */
    enum chat_cmd pw_cmd; /* /login or /register waiting for its password */
    char pw_name[300];
    enum chat_cmd to_cmd; /* the conversation plain lines go to: CHAT_CMD_MSG or _GROUP_MSG */
    char to_name[300];
    struct event *reconnect; /* a timer: the next attempt after a lost connection */
    int attempts;            /* made since the connection was lost */
    int lost_code;           /* the exit status if no attempt succeeds */
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

static void quit(struct interactive *s, int code)
{
    s->exit_code = code;
    event_base_loopbreak(s->base);
}

static void set_prompt(struct interactive *s)
{
    char prompt[320];
    snprintf(prompt, sizeof(prompt), "%s> ", s->user[0] ? s->user : "chat");
    chat_editor_set_prompt(s->ed, prompt);
}

/* Send command `c`; `password` replaces the typed one when not NULL. */
static void send_command(struct interactive *s, const struct chat_command *c, const char *password)
{
    json_t *req = chat_command_request(c, password);
    if (!req) {
        say(s, "error: cannot send that: it is not valid UTF-8 text");
        return;
    }
    if (chat_conn_send(s->conn, c->cmd, c->name, req) != 0)
        say(s, "error: cannot send: out of memory or not connected");
    json_decref(req);
}

/* ---- typed lines ---- */

static void send_to_conversation(struct interactive *s, const char *text)
{
    if (!s->to_name[0]) {
        say(s, "no conversation yet: start one with /msg USER TEXT or /g GROUP TEXT "
               "(/help lists the commands)");
        return;
    }
    struct chat_command c = {.cmd = s->to_cmd, .name = s->to_name, .text = text};
    send_command(s, &c, NULL);
}

static void on_line(void *ctx, char *line)
{
    struct interactive *s = ctx;
    if (!line[0] || s->quitting)
        return;
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
        say(s, "unknown command; /help lists the commands");
        return;
    }
    if (rc == CHAT_PARSE_USAGE) {
        sayf(s, "usage: %s", chat_command_usage(c.cmd));
        return;
    }
    switch (c.cmd) {
    case CHAT_CMD_HELP: {
        say(s, "commands:");
        char help[2048];
        snprintf(help, sizeof(help), "%s", chat_command_help());
        for (char *next, *l = help; *l; l = next) {
            next = strchr(l, '\n');
            *next++ = '\0';
            say(s, l);
        }
        say(s, "  a line without '/' goes to your last /msg or /g conversation; "
               "'//' sends a line starting with '/'");
        return;
    }
    case CHAT_CMD_QUIT:
        quit(s, CHAT_EXIT_OK);
        return;
    case CHAT_CMD_LOGIN:
    case CHAT_CMD_REGISTER:
        if (!c.extra) {
            char prompt[340];
            s->pw_cmd = c.cmd;
            snprintf(s->pw_name, sizeof(s->pw_name), "%s", c.name);
            snprintf(prompt, sizeof(prompt), "password for %s: ", c.name);
            chat_editor_ask_password(s->ed, prompt);
            return;
        }
        break;
    case CHAT_CMD_MSG:
    case CHAT_CMD_GROUP_MSG:
        s->to_cmd = c.cmd;
        snprintf(s->to_name, sizeof(s->to_name), "%s", c.name);
        break;
    default:
        break;
    }
    send_command(s, &c, NULL);
}

static void on_password(void *ctx, char *password)
{
    struct interactive *s = ctx;
    struct chat_command c = {.cmd = s->pw_cmd, .name = s->pw_name};
    send_command(s, &c, password);
}

static void on_eof(void *ctx)
{
    struct interactive *s = ctx;
    /* Piped input may end before the replies to it arrive: wait for them. */
    if (chat_conn_pending(s->conn) == 0)
        quit(s, CHAT_EXIT_OK);
    else
        s->quitting = 1;
}

/* ---- the server's lines ---- */

static void on_reply(void *ctx, enum chat_cmd cmd, const char *name, const json_t *reply)
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
    char *text = chat_format_reply(cmd, name, reply, &ok);
    const char *token = json_string_value(json_object_get(reply, "token"));
    if (ok && cmd == CHAT_CMD_LOGIN) {
        snprintf(s->user, sizeof(s->user), "%s", name ? name : "");
        set_prompt(s);
        if (token && name && chat_token_save(host, port, name, token) != 0)
            say(s, "warning: cannot save the login token; the next login asks for the password");
    } else if (ok && (cmd == CHAT_CMD_LOGOUT || cmd == CHAT_CMD_LOGOUT_ALL)) {
        if (cmd == CHAT_CMD_LOGOUT_ALL)
            chat_token_forget(host, port, s->user);
        s->user[0] = '\0';
        set_prompt(s);
    }
    say(s, text ? text : "(out of memory)");
    free(text);
    if (s->quitting && chat_conn_pending(s->conn) == 0)
        quit(s, CHAT_EXIT_OK);
}

static void on_push(void *ctx, const json_t *push)
{
    struct interactive *s = ctx;
    if (chat_seen_repeat(s->seen, push))
        return;
    char *text = chat_format_push(push);
    say(s, text ? text : "(out of memory)");
    free(text);
}

static void schedule_reconnect(struct interactive *s)
{
    struct timeval delay = {.tv_sec = RECONNECT_FIRST_S << s->attempts};
    sayf(s, "reconnecting in %ld s", (long)delay.tv_sec);
    evtimer_add(s->reconnect, &delay);
}

/* The reconnect timer: a new connection, and a login with the saved token. Requests
 * that were waiting for a reply on the old connection are not sent again. */
static void on_reconnect(evutil_socket_t fd_unused, short what, void *arg)
{
    (void)fd_unused;
    (void)what;
    struct interactive *s = arg;
    char err[400], token[CHAT_TOKEN_MAX] = "";
    s->attempts++;
    if (chat_token_load(s->o->host, s->o->port, s->user, token) != 0) {
        quit(s, s->lost_code); /* the token is gone (logout all elsewhere): nothing to use */
        return;
    }
    /* The failed connection stays until a new one is ready: commands typed meanwhile
     * are refused by it ("not connected"). */
    int fd = chat_connect(s->o->host, s->o->port, s->o->timeout_ms, err, sizeof(err));
    struct chat_conn *conn = fd >= 0
                                 ? chat_conn_new(s->base, fd, s->o->timeout_ms, &s->o->tls,
                                                 s->o->host, &conn_handlers, s, err, sizeof(err))
                                 : NULL;
    if (conn && chat_conn_keepalive(conn, CHAT_KEEPALIVE_MS) == 0) {
        chat_conn_free(s->conn);
        s->conn = conn;
        s->attempts = 0;
        s->failure[0] = '\0';
        sayf(s, "connected to %s:%s again", s->o->host, s->o->port);
        struct chat_command c = {.cmd = CHAT_CMD_LOGIN, .name = s->user, .token = token};
        send_command(s, &c, NULL);
        return;
    }
    chat_conn_free(conn);
    if (s->attempts < RECONNECT_ATTEMPTS)
        schedule_reconnect(s);
    else
        quit(s, s->lost_code);
}

static void on_fail(void *ctx, int exit_code, const char *message)
{
    struct interactive *s = ctx;
    snprintf(s->failure, sizeof(s->failure), "%s", message);
    char token[CHAT_TOKEN_MAX];
    /* A lost connection of a logged-in user with a saved login: log in again. Replies
     * that make no sense (exit 4) end chat as before. */
    if (exit_code == CHAT_EXIT_CONNECTION && s->user[0] && !s->quitting && s->reconnect &&
        chat_token_load(s->o->host, s->o->port, s->user, token) == 0) {
        say(s, message);
        s->lost_code = exit_code;
        s->attempts = 0;
        schedule_reconnect(s);
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
    else
        quit(s, CHAT_EXIT_OK);
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
    static const struct chat_editor_handlers editor_handlers = {on_line, on_password, on_eof};
    static const int signals[] = {SIGINT, SIGTERM, SIGHUP, SIGWINCH};
    struct event *sig_events[4] = {0};
    s.base = event_base_new();
    s.seen = chat_seen_new(SEEN_IDS);
    if (!s.base || !s.seen)
        goto oom;
    s.conn = chat_conn_new(s.base, fd, o->timeout_ms, &o->tls, o->host, &conn_handlers, &s, err,
                           sizeof(err));
    fd = -1;
    if (!s.conn) {
        fprintf(stderr, "chat: %s\n", err); /* out of memory, or a CA file it cannot use */
        s.exit_code = CHAT_EXIT_USAGE;
        goto done;
    }
    s.reconnect = evtimer_new(s.base, on_reconnect, &s);
    if (!s.reconnect || chat_conn_keepalive(s.conn, CHAT_KEEPALIVE_MS) != 0)
        goto oom;
    for (size_t i = 0; i < 4; i++) {
        sig_events[i] = evsignal_new(s.base, signals[i], on_signal, &s);
        if (!sig_events[i] || evsignal_add(sig_events[i], NULL) != 0)
            goto oom;
    }
    s.ed = chat_editor_new(s.base, prog, &editor_handlers, &s);
    if (!s.ed)
        goto oom;
    set_prompt(&s);
    sayf(&s, "connected to %s:%s; /help lists the commands", o->host, o->port);
    char token[CHAT_TOKEN_MAX];
    if (o->user && o->password) {
        struct chat_command c = {.cmd = CHAT_CMD_LOGIN, .name = o->user};
        send_command(&s, &c, o->password);
    } else if (o->user && chat_token_load(o->host, o->port, o->user, token) == 0) {
        struct chat_command c = {.cmd = CHAT_CMD_LOGIN, .name = o->user, .token = token};
        send_command(&s, &c, NULL);
    } else if (o->user) {
        struct chat_command c = {.cmd = CHAT_CMD_LOGIN, .name = o->user};
        char line[400];
        snprintf(line, sizeof(line), "/login %s", c.name);
        on_line(&s, line);
    }
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
    for (size_t i = 0; i < 4; i++)
        if (sig_events[i])
            event_free(sig_events[i]);
    if (s.reconnect)
        event_free(s.reconnect);
    chat_conn_free(s.conn);
    chat_seen_free(s.seen);
    if (s.base)
        event_base_free(s.base);
    fflush(stdout);
    if (s.failure[0])
        fprintf(stderr, "chat: %s\n", s.failure);
    return s.exit_code;
}
