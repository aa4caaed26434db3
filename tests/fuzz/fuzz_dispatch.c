/* fuzz_dispatch.c - requests from a client's bytes to the point where a handler would
 * run, through chatd's own code: a session reading a socket, the framer, both JSON
 * parsers, the generic errors, the login and user_from rules, and the field tables of
 * the real chat plugins (accounts, private_chat, groups, friends, ping), loaded from
 * their .so files by the real loader as `chatd -t` loads them (no database touched).
 * Only the handlers are replaced, by one that answers success: what is fuzzed is what
 * every request goes through before a plugin sees it.
 *
 * Each input is one connection: its first byte says whether the session is logged in
 * (as "alice"), the rest is what the client sends before closing its end. The session
 * must then close by itself (nothing left waiting), every line it sent must be a JSON
 * object with a `cmd`, and its last line must be complete. */
#include "commands.h"
#include "config.h"
#include "log.h"
#include "request.h"
#include "server.h"
#include "session.h"
#include "transport.h"
#include "users.h"

#include "fuzz_check.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static struct config cfg;
static struct server *srv;

static void answer_success(struct chatd_request *req, const json_t *body, void *arg)
{
    (void)body;
    (void)arg;
    request_reply(req, "success", NULL);
}

static void set(const char *assignment)
{
    char err[1024];
    int rc = config_override(&cfg, assignment, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "fuzz_dispatch: %s\n", err);
    FUZZ_CHECK(rc == 0);
}

static void start_server(void)
{
    config_defaults(&cfg);
    cfg.path = strdup("fuzz_dispatch");
    set("plugins.dir=" CHATD_PLUGIN_DIR);
    set("plugins.enable=accounts,friends,private_chat,groups,ping");
    set("plugins.authenticator=accounts");
    set("database.enable=yes");
    set("log.level=error");
    /* Every input is a new connection from the one unix-socket "address": the
     * per-address connection limits would refuse all but the first few. The request
     * limits stay on, so their path is fuzzed too. */
    set("limits.connections_per_address=off");
    set("limits.max_connections_per_address=0");
    log_configure((enum chatd_log_level)cfg.log_level, 0, "fuzz_dispatch");
    srv = server_new(&cfg);
    FUZZ_CHECK(srv != NULL);
    srv->check_only = 1; /* plugins start without their migrations; no job reaches a database */
    char err[2048];
    if (server_load_plugins(srv, err, sizeof(err)) < 0)
        fprintf(stderr, "fuzz_dispatch: %s\n", err);
    FUZZ_CHECK(srv->n_plugins == 5);
    struct command *c, *tmp;
    HASH_ITER (hh, srv->commands, c, tmp) {
        c->spec.handler = answer_success;
        c->spec.arg = NULL;
    }
}

/* Read what the session sent so far; each complete line must be a JSON object with a
 * string `cmd`. Returns 0 once the host has closed its end. */
static int read_replies(int fd, char *buf, size_t cap, size_t *used)
{
    for (;;) {
        ssize_t n = read(fd, buf + *used, cap - *used);
        if (n == 0)
            return 0;
        if (n < 0) {
            FUZZ_CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
            return 1;
        }
        *used += (size_t)n;
        char *line = buf, *nl;
        while ((nl = memchr(line, '\n', *used - (size_t)(line - buf)))) {
            json_error_t error;
            json_t *reply = json_loadb(line, (size_t)(nl - line), 0, &error);
            if (!reply)
                fprintf(stderr, "a reply that is not JSON: %.*s\n", (int)(nl - line), line);
            FUZZ_CHECK(json_is_object(reply) && json_is_string(json_object_get(reply, "cmd")));
            json_decref(reply);
            line = nl + 1;
        }
        *used -= (size_t)(line - buf);
        memmove(buf, line, *used);
        FUZZ_CHECK(*used < cap); /* no reply line is that long */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!srv)
        start_server();
    if (size < 1)
        return 0;
    int fds[2];
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) == 0);
    struct sockaddr_un peer = {.sun_family = AF_UNIX};
    chatd_session_id before = srv->next_session_id;
    session_accept(srv, &transport_tcp, fds[0], (const struct sockaddr *)&peer, (int)sizeof(peer));
    chatd_session_id id = srv->next_session_id;
    FUZZ_CHECK(id != before && session_find(srv, id));
    if (data[0] & 1)
        FUZZ_CHECK(users_bind(srv, session_find(srv, id), "alice") == 0);

    /* The whole input fits the socket's buffer (libFuzzer's -max_len keeps it small). */
    size_t sent = 0;
    while (sent < size - 1) {
        ssize_t n = write(fds[1], data + 1 + sent, size - 1 - sent);
        FUZZ_CHECK(n > 0);
        sent += (size_t)n;
    }
    shutdown(fds[1], SHUT_WR);

    static char replies[1 << 20];
    size_t used = 0;
    int open = 1;
    for (int turn = 0; turn < 10000 && (open || session_find(srv, id)); turn++) {
        event_base_loop(srv->base, EVLOOP_NONBLOCK);
        if (open)
            open = read_replies(fds[1], replies, sizeof(replies), &used);
    }
    if (session_find(srv, id))
        fprintf(stderr, "the session did not close after the client's end of stream\n");
    FUZZ_CHECK(!session_find(srv, id) && !open);
    FUZZ_CHECK(used == 0); /* the last reply line was complete */
    close(fds[1]);
    return 0;
}
