/* batch.c - the non-interactive mode: connect, log in when the command needs it, send
 * one command, print its reply and exit with a status a script can test. `listen` logs
 * in and prints pushes, one per line, for a while.
 *
 * A password login saves the login token the server sends (token_store.h); without
 * --password-file the login uses the saved token. A saved token the server no longer
 * knows (token_invalid) is forgotten, and the user is told to log in with the
 * password.
 *
 * Logging in makes the server deliver the user's stored messages to this connection, so
 * every push that arrives is printed (to stdout, one per line, like `listen`) rather
 * than silently dropped. The login acknowledges (acks.h), with the installation's device
 * name: what is printed is acknowledged before chat exits, so the next run does not get
 * it again. */
#include "acks.h"
#include "conn.h"
#include "exit_codes.h"
#include "format.h"
#include "seen.h"
#include "session.h"
#include "token_store.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SEEN_IDS 10000

struct batch {
    const struct chat_options *o;
    struct event_base *base;
    struct chat_conn *conn;
    struct chat_seen *seen;
    struct chat_acks *acks;
    struct event *stop_timer;
    struct event *sig_events[2];
    const char *verb; /* the subcommand, for messages */
    struct chat_command steps[2];
    size_t n_steps, next_step;
    char token[CHAT_TOKEN_MAX]; /* the saved login token, when steps[0] uses it */
    int listen;
    int stopping;
    int exit_code;
    int done;
};

static void finish(struct batch *b, int code)
{
    if (b->done)
        return;
    b->done = 1;
    b->exit_code = code;
    event_base_loopbreak(b->base);
}

static void print_json(const json_t *msg)
{
    char *text = json_dumps(msg, JSON_COMPACT);
    if (text)
        printf("%s\n", text);
    free(text);
}

/* Done: leave once the ack for what was printed has reached the server (the reply to a
 * ping sent after it says so). */
static void finish_acknowledged(struct batch *b)
{
    if (b->done)
        return;
    json_t *req = chat_acks_flush(b->acks) ? json_pack("{ss}", "cmd", "ping") : NULL;
    if (!req || chat_conn_send(b->conn, CHAT_CMD_SYNC, NULL, req) != 0)
        finish(b, CHAT_EXIT_OK);
    json_decref(req);
}

static void send_next(struct batch *b)
{
    if (b->next_step == b->n_steps) {
        if (!b->listen) {
            finish_acknowledged(b);
        } else {
            fprintf(stderr, "chat: listening as %s\n", b->o->user);
            if (b->o->listen_seconds > 0) {
                struct timeval tv = {.tv_sec = b->o->listen_seconds};
                evtimer_add(b->stop_timer, &tv);
            }
        }
        return;
    }
    const struct chat_command *c = &b->steps[b->next_step++];
    json_t *req = chat_command_request(c, NULL);
    if (req && c->cmd == CHAT_CMD_LOGIN && chat_acks_login_fields(b->acks, req, b->o->device, 0)) {
        json_decref(req);
        fprintf(stderr, "chat: out of memory\n");
        finish(b, CHAT_EXIT_USAGE);
        return;
    }
    if (!req) {
        fprintf(stderr, "chat: %s: the text is not valid UTF-8\n", b->verb);
        finish(b, CHAT_EXIT_USAGE);
        return;
    }
    if (chat_conn_send(b->conn, c->cmd, c->name, req) != 0) {
        fprintf(stderr, "chat: out of memory\n");
        finish(b, CHAT_EXIT_USAGE);
    }
    json_decref(req);
}

static void on_reply(void *ctx, enum chat_cmd cmd, const char *name, const json_t *req,
                     const json_t *reply)
{
    struct batch *b = ctx;
    (void)req;
    if (b->done)
        return;
    if (cmd == CHAT_CMD_SYNC) {
        finish(b, CHAT_EXIT_OK);
        return;
    }
    int ok = 0;
    const struct chat_options *o = b->o;
    const char *result = json_string_value(json_object_get(reply, "result"));
    if (cmd == CHAT_CMD_LOGIN && b->steps[0].token && result &&
        strcmp(result, "token_invalid") == 0) {
        chat_token_forget(o->host, o->port, o->user);
        fprintf(stderr, "chat: login: the saved login is no longer valid (forgotten); "
                        "log in with --password-file\n");
        finish(b, CHAT_EXIT_REFUSED);
        return;
    }
    char *text = chat_format_reply(cmd, name, reply, &ok);
    const char *token = json_string_value(json_object_get(reply, "token"));
    if (ok && cmd == CHAT_CMD_LOGIN && token && !b->steps[0].token &&
        chat_token_save(o->host, o->port, o->user, token) != 0)
        fprintf(stderr, "chat: warning: cannot save the login token\n");
    if (ok && cmd == CHAT_CMD_LOGOUT_ALL)
        chat_token_forget(o->host, o->port, o->user);
    /* The login before another command is a means, not the result: shown only if it fails. */
    int last = b->next_step == b->n_steps && !b->listen;
    if (!ok) {
        fprintf(stderr, "chat: %s: %s\n", cmd == CHAT_CMD_LOGIN ? "login" : b->verb,
                text ? text : "refused");
        if (b->o->json)
            print_json(reply);
    } else if (last) {
        if (b->o->json)
            print_json(reply);
        else
            printf("%s\n", text ? text : "done");
    }
    free(text);
    fflush(stdout);
    if (!ok)
        finish(b, CHAT_EXIT_REFUSED);
    else
        send_next(b);
}

static void on_push(void *ctx, const json_t *push)
{
    struct batch *b = ctx;
    if (chat_acks_is_answer(push)) {
        chat_acks_refused(b->acks); /* a server without acks: nothing to say to a script */
        return;
    }
    if (b->done || chat_acks_is_repeat(b->acks, push) || chat_seen_repeat(b->seen, push))
        return;
    if (b->o->json) {
        print_json(push);
    } else {
        char *text = chat_format_push(push);
        printf("%s\n", text ? text : "(out of memory)");
        free(text);
    }
    fflush(stdout);
    chat_acks_shown(b->acks, push);
}

static void on_fail(void *ctx, int exit_code, const char *message)
{
    struct batch *b = ctx;
    if (b->done)
        return;
    fprintf(stderr, "chat: %s\n", message);
    finish(b, exit_code);
}

/* listen's time is up, or it was interrupted (SIGINT, SIGTERM). */
static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct batch *b = arg;
    if (b->stopping++)
        finish(b, CHAT_EXIT_OK); /* asked twice, or the ack's answer is late: leave now */
    else
        finish_acknowledged(b);
}

/* The steps for a subcommand; main.c has checked the number of arguments. */
static void plan(struct batch *b, int argc, char **argv)
{
    static const struct {
        const char *verb;
        enum chat_cmd cmd;
    } verbs[] = {
        {"send", CHAT_CMD_MSG},
        {"gsend", CHAT_CMD_GROUP_MSG},
        {"friend", CHAT_CMD_FRIEND},
        {"create", CHAT_CMD_CREATE},
        {"join", CHAT_CMD_JOIN},
        {"leave", CHAT_CMD_LEAVE},
        {"login", CHAT_CMD_LOGIN},
        {"listen", CHAT_CMD_LOGIN},
        {"logout-all", CHAT_CMD_LOGOUT_ALL},
    };
    const struct chat_options *o = b->o;
    b->verb = argv[0];
    if (strcmp(argv[0], "register") == 0) {
        b->steps[b->n_steps++] =
            (struct chat_command){.cmd = CHAT_CMD_REGISTER, .name = o->user, .extra = o->password};
        return;
    }
    b->steps[b->n_steps++] =
        (struct chat_command){.cmd = CHAT_CMD_LOGIN, .name = o->user, .extra = o->password};
    if (!o->password && chat_token_load(o->host, o->port, o->user, b->token) == 0)
        b->steps[0].token = b->token;
    b->listen = strcmp(argv[0], "listen") == 0;
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        if (strcmp(argv[0], verbs[i].verb) != 0 || verbs[i].cmd == CHAT_CMD_LOGIN)
            continue;
        b->steps[b->n_steps++] = (struct chat_command){
            .cmd = verbs[i].cmd, .name = argv[1], .text = argc > 2 ? argv[2] : NULL};
    }
}

int chat_batch(const struct chat_options *o, int argc, char **argv)
{
    struct batch b = {.o = o, .exit_code = CHAT_EXIT_OK};
    plan(&b, argc, argv);
    char err[400];
    int fd = chat_connect(o->host, o->port, o->timeout_ms, err, sizeof(err));
    if (fd < 0) {
        fprintf(stderr, "chat: %s\n", err);
        return CHAT_EXIT_CONNECTION;
    }
    static const struct chat_conn_handlers handlers = {on_reply, on_push, on_fail};
    b.base = event_base_new();
    if (b.base) {
        b.conn = chat_conn_new(b.base, fd, o->timeout_ms, &o->tls, o->host, &handlers, &b, err,
                               sizeof(err));
        b.stop_timer = evtimer_new(b.base, on_stop, &b);
    } else {
        close(fd);
    }
    b.seen = chat_seen_new(SEEN_IDS);
    b.acks = b.base ? chat_acks_new(b.base) : NULL;
    if (b.acks)
        chat_acks_attach(b.acks, b.conn);
    static const int signals[2] = {SIGINT, SIGTERM};
    for (size_t i = 0; b.base && i < 2; i++) {
        b.sig_events[i] = evsignal_new(b.base, signals[i], on_stop, &b);
        if (b.sig_events[i])
            evsignal_add(b.sig_events[i], NULL);
    }
    if (b.base && !b.conn) {
        fprintf(stderr, "chat: %s\n", err); /* out of memory, or a CA file it cannot use */
        b.exit_code = CHAT_EXIT_USAGE;
    } else if (!b.conn || !b.stop_timer || !b.seen || !b.acks || !b.sig_events[0] ||
               !b.sig_events[1] || chat_conn_keepalive(b.conn, CHAT_KEEPALIVE_MS)) {
        fprintf(stderr, "chat: out of memory\n");
        b.exit_code = CHAT_EXIT_USAGE;
    } else {
        send_next(&b);
        if (!b.done)
            event_base_dispatch(b.base);
    }
    if (b.stop_timer)
        event_free(b.stop_timer);
    for (size_t i = 0; i < 2; i++)
        if (b.sig_events[i])
            event_free(b.sig_events[i]);
    chat_conn_free(b.conn);
    chat_acks_free(b.acks);
    chat_seen_free(b.seen);
    if (b.base)
        event_base_free(b.base);
    fflush(stdout);
    return b.exit_code;
}
