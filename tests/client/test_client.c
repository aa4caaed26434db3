/* test_client.c - chat, the terminal client, driven as a person and a script would drive
 * it: the real binary runs in a pseudo-terminal (forkpty) against the real chatd with the
 * sample config and a fresh database of the test MariaDB ($CHATD_TEST_DB_SOCKET), and
 * the non-interactive mode runs with pipes. Fake servers made here (a listening socket
 * in the test process) refuse, close, stay silent and send garbage.
 *
 * Nothing waits a fixed time: every expectation waits for the text it wants, up to a
 * generous deadline that only a hung client reaches. */
#include "chatd_proc.h"
#include "client.h"
#include "tls_files.h"
#include "../db/db_test_env.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

/* Generous: a client under a sanitizer on a loaded machine still answers well within it. */
#define DEADLINE_MS 20000
#define MAX_ARGS    24

static struct config_database cfg;
static struct chatd_proc srv;
static char port_arg[16];
static char state_dir[PATH_MAX + 16]; /* the clients' $XDG_STATE_HOME: saved tokens */

/* ---- the server ---- */

/* chatd with the sample config, as scripts/run starts it, with only the database (the
 * test's own) and a cheap password hash from the command line. */
static void start_chat(void)
{
    db_test_config(&cfg);
    ck_assert_msg(db_test_start_sample(&srv, &cfg, NULL) == 0, "chatd did not start");
    snprintf(port_arg, sizeof(port_arg), "%d", srv.port);
    /* Every client of the test (they inherit it) saves its login tokens in the server's
     * folder, never in the home of whoever runs the tests. */
    snprintf(state_dir, sizeof(state_dir), "%s/state", srv.dir);
    setenv("XDG_STATE_HOME", state_dir, 1);
}

static void stop_chat(void)
{
    int rc = chatd_proc_stop(&srv, CHATD_PROC_STOP_TIMEOUT_MS);
    chatd_proc_cleanup(&srv);
    db_test_cleanup(&cfg);
    ck_assert_msg(rc == 0, "chatd exited with %d after SIGTERM, want 0", rc);
}

/* The password file of `user` (its password is "pw-" and the name), made on first use. */
static const char *password_file(const char *user)
{
    static char paths[8][PATH_MAX + 64];
    static char users[8][64];
    size_t i;
    for (i = 0; i < 8 && users[i][0]; i++)
        if (strcmp(users[i], user) == 0)
            return paths[i];
    ck_assert_uint_lt(i, 8);
    char text[100];
    snprintf(text, sizeof(text), "pw-%s\n", user);
    snprintf(users[i], sizeof(users[i]), "%s", user);
    ck_assert_int_eq(chatd_file_write(srv.dir, user, text, paths[i], sizeof(paths[i])), 0);
    return paths[i];
}

/* ---- the client in a pseudo-terminal ---- */

struct term {
    pid_t pid;
    int fd;    /* the terminal's master side */
    char *out; /* everything the client wrote, NUL-terminated */
    size_t len, cap;
    size_t mark; /* expectations look from here on */
    int eof;
};

/* Mutable copies of arguments for execv, which wants char *; valid until the next
 * build_argv (execv copies them). */
static char arg_pool[16384];
static size_t arg_used;

static char *arg_copy(const char *a)
{
    size_t len = strlen(a) + 1;
    ck_assert_uint_le(arg_used + len, sizeof(arg_pool));
    char *copy = memcpy(arg_pool + arg_used, a, len);
    arg_used += len;
    return copy;
}

static void build_argv(char **argv, const char *first, va_list ap)
{
    size_t n = 0;
    arg_used = 0;
    argv[n++] = arg_copy("chat");
    for (const char *a = first; a && n < MAX_ARGS - 1; a = va_arg(ap, const char *))
        argv[n++] = arg_copy(a);
    argv[n] = NULL;
}

/* Start chat with these arguments (NULL-terminated) in a 120x40 terminal. */
static void term_start(struct term *t, const char *first, ...)
{
    char *argv[MAX_ARGS];
    va_list ap;
    va_start(ap, first);
    build_argv(argv, first, ap);
    va_end(ap);
    memset(t, 0, sizeof(*t));
    struct winsize ws = {.ws_row = 40, .ws_col = 120};
    pid_t pid = forkpty(&t->fd, NULL, NULL, &ws);
    ck_assert_msg(pid >= 0, "forkpty: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        setenv("TERM", "xterm", 1);
        setenv("LC_ALL", "C.UTF-8", 1);
        setenv("HOME", "/nonexistent", 1); /* no ~/.editrc */
        execv(CHAT_BINARY, argv);
        _exit(127);
    }
    t->pid = pid;
    fcntl(t->fd, F_SETFL, fcntl(t->fd, F_GETFL) | O_NONBLOCK);
    t->cap = 65536;
    t->out = calloc(1, t->cap);
    ck_assert_ptr_nonnull(t->out);
}

/* Read what the client wrote, waiting up to timeout_ms for something. */
static void term_pump(struct term *t, int timeout_ms)
{
    struct pollfd p = {.fd = t->fd, .events = POLLIN};
    if (t->eof || poll(&p, 1, timeout_ms) <= 0)
        return;
    for (;;) {
        if (t->cap - t->len < 4096) {
            t->cap *= 2;
            t->out = realloc(t->out, t->cap);
            ck_assert_ptr_nonnull(t->out);
        }
        ssize_t n = read(t->fd, t->out + t->len, t->cap - t->len - 1);
        if (n > 0) {
            t->len += (size_t)n;
            t->out[t->len] = '\0';
            continue;
        }
        if (n < 0 && errno == EAGAIN)
            return;
        t->eof = 1; /* EIO: the client is gone */
        return;
    }
}

/* The output from the mark on, with escape characters shown, for failure messages. */
static const char *term_dump(const struct term *t)
{
    static char shown[1800];
    size_t from = t->mark, n = 0;
    if (t->len - from > 1500)
        from = t->len - 1500;
    for (size_t i = from; i < t->len && n + 5 < sizeof(shown); i++) {
        unsigned char c = (unsigned char)t->out[i];
        if (c == 0x1b) {
            memcpy(shown + n, "\\e", 2);
            n += 2;
        } else if (c == '\r') {
            memcpy(shown + n, "\\r", 2);
            n += 2;
        } else {
            shown[n++] = (char)c;
        }
    }
    shown[n] = '\0';
    return shown;
}

/* Wait until `text` appears after the mark; move the mark past it. */
static void term_expect(struct term *t, const char *text)
{
    long long deadline = chatd_now_ms() + DEADLINE_MS;
    for (;;) {
        char *at = strstr(t->out + t->mark, text);
        if (at) {
            t->mark = (size_t)(at - t->out) + strlen(text);
            return;
        }
        long long left = deadline - chatd_now_ms();
        if (left <= 0 || t->eof)
            ck_abort_msg("want \"%s\" from chat; it wrote:\n%s", text, term_dump(t));
        term_pump(t, (int)(left > 200 ? 200 : left));
    }
}

static void term_type(struct term *t, const char *keys)
{
    size_t len = strlen(keys), done = 0;
    while (done < len) {
        ssize_t n = write(t->fd, keys + done, len - done);
        if (n < 0 && errno == EAGAIN) {
            term_pump(t, 10);
            continue;
        }
        ck_assert_msg(n > 0, "cannot type into chat's terminal: %s", strerror(errno));
        done += (size_t)n;
    }
}

/* Type a line and press Enter. */
static void term_line(struct term *t, const char *line)
{
    term_type(t, line);
    term_type(t, "\r");
}

/* Wait for the client to exit; returns its exit code (128 + signal if one ended it). */
static int term_wait_exit(struct term *t)
{
    long long deadline = chatd_now_ms() + DEADLINE_MS;
    int status;
    for (;;) {
        term_pump(t, 50);
        pid_t r = waitpid(t->pid, &status, WNOHANG);
        if (r == t->pid)
            break;
        if (chatd_now_ms() > deadline)
            ck_abort_msg("chat did not exit; it wrote:\n%s", term_dump(t));
    }
    while (!t->eof && poll(&(struct pollfd){.fd = t->fd, .events = POLLIN}, 1, 0) > 0)
        term_pump(t, 0);
    close(t->fd);
    t->pid = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void term_free(struct term *t)
{
    free(t->out);
    t->out = NULL;
}

/* /quit, and the client must exit 0. */
static void term_quit(struct term *t)
{
    term_line(t, "/quit");
    int rc = term_wait_exit(t);
    ck_assert_msg(rc == 0, "chat exited with %d after /quit; it wrote:\n%s", rc, term_dump(t));
    term_free(t);
}

/* An interactive chat logged in as `user` (registered before). */
static void term_login(struct term *t, const char *user)
{
    char line[200], want[200];
    term_start(t, "--port", port_arg, NULL);
    term_expect(t, "chat> ");
    snprintf(line, sizeof(line), "/login %s pw-%s", user, user);
    term_line(t, line);
    snprintf(want, sizeof(want), "logged in as %s", user);
    term_expect(t, want);
}

/* ---- the client run with pipes ---- */

struct run {
    int status;
    char out[65536];
    char err[65536];
};

struct child {
    pid_t pid;
    int out_fd, err_fd;
    int in_fd; /* the write end of stdin's pipe, or -1 */
};

/* Start chat with argv (argv[0] included) and pipes for stdout and stderr; stdin is
 * /dev/null, or (input not NULL) a pipe that gives `input` and ends when child_finish
 * begins. */
static void child_start(struct child *c, char **argv, const char *input)
{
    int out[2], err[2], in[2];
    ck_assert_int_eq(pipe(out), 0);
    ck_assert_int_eq(pipe(err), 0);
    ck_assert_int_eq(pipe(in), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (!input) {
            int null = open("/dev/null", O_RDONLY);
            dup2(null, 0);
        } else {
            dup2(in[0], 0);
        }
        close(in[0]);
        close(in[1]);
        dup2(out[1], 1);
        dup2(err[1], 2);
        close(out[0]);
        close(err[0]);
        execv(CHAT_BINARY, argv);
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    close(in[0]);
    c->in_fd = -1;
    if (input) { /* small: it fits in the pipe */
        ck_assert_int_eq(write(in[1], input, strlen(input)), (ssize_t)strlen(input));
        c->in_fd = in[1];
    } else {
        close(in[1]);
    }
    c->pid = pid;
    c->out_fd = out[0];
    c->err_fd = err[0];
}

/* Collect the child's output until it exits. */
static void child_finish(struct child *c, struct run *r)
{
    size_t lens[2] = {0, 0};
    char *bufs[2] = {r->out, r->err};
    int fds[2] = {c->out_fd, c->err_fd};
    long long deadline = chatd_now_ms() + DEADLINE_MS;
    if (c->in_fd >= 0)
        close(c->in_fd);
    while (fds[0] >= 0 || fds[1] >= 0) {
        struct pollfd p[2] = {{.fd = fds[0], .events = POLLIN}, {.fd = fds[1], .events = POLLIN}};
        long long left = deadline - chatd_now_ms();
        if (left <= 0) {
            kill(c->pid, SIGKILL);
            ck_abort_msg("chat did not exit; stdout:\n%s\nstderr:\n%s", r->out, r->err);
        }
        poll(p, 2, (int)left);
        for (int i = 0; i < 2; i++) {
            if (fds[i] < 0 || !p[i].revents)
                continue;
            ssize_t n = read(fds[i], bufs[i] + lens[i], sizeof(r->out) - 1 - lens[i]);
            if (n > 0) {
                lens[i] += (size_t)n;
                bufs[i][lens[i]] = '\0';
            } else {
                close(fds[i]);
                fds[i] = -1;
            }
        }
    }
    int status;
    ck_assert_int_eq(waitpid(c->pid, &status, 0), c->pid);
    r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Run chat with these arguments (NULL-terminated) to the end. */
static void run_chat(struct run *r, const char *first, ...)
{
    struct child c;
    char *argv[MAX_ARGS];
    va_list ap;
    va_start(ap, first);
    build_argv(argv, first, ap);
    va_end(ap);
    child_start(&c, argv, NULL);
    memset(r, 0, sizeof(*r));
    child_finish(&c, r);
}

/* run_chat with `input` piped to its stdin. */
static void run_chat_input(struct run *r, const char *input, const char *first, ...)
{
    struct child c;
    char *argv[MAX_ARGS];
    va_list ap;
    va_start(ap, first);
    build_argv(argv, first, ap);
    va_end(ap);
    child_start(&c, argv, input);
    memset(r, 0, sizeof(*r));
    child_finish(&c, r);
}

static void expect_run(const struct run *r, int status, const char *out, const char *err)
{
    if (r->status != status || (out && !strstr(r->out, out)) || (err && !strstr(r->err, err)))
        ck_abort_msg("want exit %d, stdout with \"%s\", stderr with \"%s\"; got exit %d,\n"
                     "stdout:\n%s\nstderr:\n%s",
                     status, out ? out : "", err ? err : "", r->status, r->out, r->err);
}

static void register_user(const char *user)
{
    struct run r;
    char want[100];
    snprintf(want, sizeof(want), "registered %s", user);
    run_chat(&r, "--port", port_arg, "--user", user, "--password-file", password_file(user),
             "register", NULL);
    expect_run(&r, 0, want, NULL);
}

/* ---- fake servers ---- */

static int fake_listen(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, len), 0);
    ck_assert_int_eq(listen(fd, 4), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static int fake_accept(int lfd)
{
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    ck_assert_msg(poll(&p, 1, DEADLINE_MS) == 1, "chat did not connect to the fake server");
    int fd = accept(lfd, NULL, NULL);
    ck_assert_int_ge(fd, 0);
    return fd;
}

/* Read one request (the client sends each as one write, ending in '}'). */
static void fake_read_request(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    long long deadline = chatd_now_ms() + DEADLINE_MS;
    while (len == 0 || buf[len - 1] != '}') {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        long long left = deadline - chatd_now_ms();
        ck_assert_msg(left > 0 && poll(&p, 1, (int)left) == 1, "no request from chat");
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        ck_assert_msg(n > 0, "chat closed the connection before its request was complete");
        len += (size_t)n;
        buf[len] = '\0';
    }
}

static void fake_send(int fd, const char *data, size_t len)
{
    ck_assert_int_eq(send(fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* `chat send bob hi` as alice, with --timeout 5, against a fake server on `port`;
 * left running. */
static void fake_client(struct child *c, int port)
{
    char port_text[16], dir[PATH_MAX], pw[PATH_MAX + 64];
    snprintf(port_text, sizeof(port_text), "%d", port);
    ck_assert_int_eq(chatd_tmpdir_make(dir, sizeof(dir)), 0);
    ck_assert_int_eq(chatd_file_write(dir, "pw", "secret\n", pw, sizeof(pw)), 0);
    const char *args[] = {"chat",  "--port",          port_text, "--timeout", "5",   "--user",
                          "alice", "--password-file", pw,        "send",      "bob", "hi"};
    char *argv[MAX_ARGS];
    size_t n = sizeof(args) / sizeof(args[0]);
    arg_used = 0;
    for (size_t i = 0; i < n; i++)
        argv[i] = arg_copy(args[i]);
    argv[n] = NULL;
    child_start(c, argv, NULL);
}

/* A fake server with `chat send bob hi` connected to it and its first request (the
 * login) read into req. */
struct fake {
    int lfd, fd;
    struct child c;
    struct run r;
    char req[4096];
};

static void fake_start(struct fake *f)
{
    int port;
    memset(f, 0, sizeof(*f));
    f->lfd = fake_listen(&port);
    fake_client(&f->c, port);
    f->fd = fake_accept(f->lfd);
    fake_read_request(f->fd, f->req, sizeof(f->req));
}

/* ---- three people chatting ---- */

START_TEST(three_users_chat_privately_and_in_a_group_with_offline_delivery)
{
    struct term alice, bob, carol;
    start_chat();

    /* alice and bob register interactively, carol from a script. */
    term_start(&alice, "--port", port_arg, NULL);
    term_expect(&alice, "chat> ");
    term_line(&alice, "/register alice pw-alice");
    term_expect(&alice, "registered alice");
    term_line(&alice, "/login alice pw-alice");
    term_expect(&alice, "logged in as alice; friends: none; groups: none");
    term_expect(&alice, "alice> ");
    term_start(&bob, "--port", port_arg, NULL);
    term_line(&bob, "/register bob pw-bob");
    term_expect(&bob, "registered bob");
    term_line(&bob, "/login bob pw-bob");
    term_expect(&bob, "logged in as bob");
    register_user("carol");

    /* Friends, and private messages while both are online. */
    term_line(&alice, "/friend bob");
    term_expect(&alice, "bob is your friend now");
    term_expect(&bob, "* alice added you as a friend");
    term_line(&alice, "/msg bob hi bob, caf\xc3\xa9?");
    term_expect(&alice, "] you -> bob: hi bob, caf\xc3\xa9?");
    term_expect(&alice, "alice -> bob> "); /* the prompt names the conversation */
    term_expect(&bob, "] alice: hi bob, caf\xc3\xa9?");
    term_line(&bob, "a line without a conversation");
    term_expect(&bob, "no conversation yet");
    term_line(&bob, "/msg alice hello alice");
    term_expect(&bob, "] you -> alice: hello alice");
    term_expect(&alice, "] bob: hello alice");
    term_line(&bob, "and a plain line goes to alice too");
    term_expect(&alice, "] bob: and a plain line goes to alice too");

    /* carol is offline: the message is stored. */
    term_line(&alice, "/friend carol");
    term_expect(&alice, "carol is your friend now");
    term_line(&alice, "/msg carol are you there?");
    term_expect(&alice, "] you -> carol: are you there? (stored: carol is offline)");

    /* A group. */
    term_line(&alice, "/create friends");
    term_expect(&alice, "created group friends");
    term_line(&bob, "/join friends");
    term_expect(&bob, "joined friends");
    term_line(&alice, "/g friends welcome, bob");
    term_expect(&alice, "] [friends] you: welcome, bob");
    term_expect(&alice, "alice [friends]> ");
    term_expect(&bob, "] [friends] alice: welcome, bob");

    /* carol logs in: the stored message comes after the login reply, marked offline, and
     * alice, her friend, sees her come online. */
    term_login(&carol, "carol");
    term_expect(&carol, "] (offline) alice: are you there?");
    term_expect(&alice, "* carol is online");
    term_line(&carol, "/join friends");
    term_expect(&carol, "joined friends");
    term_line(&bob, "/g friends hello both");
    term_expect(&bob, "] [friends] you: hello both");
    term_expect(&alice, "] [friends] bob: hello both");
    term_expect(&carol, "] [friends] bob: hello both");

    /* carol logs out; a group message waits for her, and her password is asked for. */
    term_line(&carol, "/logout");
    term_expect(&carol, "logged out");
    term_expect(&alice, "* carol is offline");
    term_line(&alice, "/g friends carol gets this at login");
    term_expect(&alice, "] [friends] you: carol gets this at login");
    term_expect(&bob, "] [friends] alice: carol gets this at login");
    term_line(&carol, "/login carol");
    term_expect(&carol, "password for carol: ");
    size_t asked_at = carol.mark;
    term_line(&carol, "pw-carol");
    term_expect(&carol, "logged in as carol; friends: alice; groups: friends");
    ck_assert_msg(!strstr(carol.out + asked_at, "pw-carol"), "the password was echoed:\n%s",
                  term_dump(&carol));
    term_expect(&carol, "] (offline) [friends] alice: carol gets this at login");
    term_line(&carol, "/leave friends");
    term_expect(&carol, "left friends");

    /* Refusals are shown with the contract's word and an explanation. */
    term_line(&carol, "/msg nobody hi");
    term_expect(&carol, "error: user_not_exist: no user is called nobody");
    term_line(&carol, "/join friends");
    term_line(&carol, "/join friends");
    term_expect(&carol, "error: already_member: you are in friends already");
    term_line(&carol, "/nonsense");
    term_expect(&carol, "unknown command");
    term_line(&carol, "/msg bob");
    term_expect(&carol, "usage: /msg USER TEXT");

    term_quit(&alice);
    term_quit(&bob);
    term_quit(&carol);
    stop_chat();
}
END_TEST

/* ---- a push while a line is half typed ---- */

START_TEST(a_push_arriving_while_typing_keeps_the_half_typed_line_and_cursor)
{
    struct term alice, bob;
    start_chat();
    register_user("alice");
    register_user("bob");
    term_login(&alice, "alice");
    term_login(&bob, "bob");

    /* alice types, moves the cursor back over "typed" (5 x Left), and stops. */
    term_type(&alice, "/msg bob this was typed");
    term_type(&alice, "\033[D\033[D\033[D\033[D\033[D");
    term_expect(&alice, "typed");

    /* A message for her arrives meanwhile: printed above, the line drawn again. */
    term_line(&bob, "/msg alice interrupting you");
    term_expect(&bob, "] you -> alice: interrupting you");
    term_expect(&alice, "] bob: interrupting you");
    term_expect(&alice, "alice> /msg bob this was typed");

    /* Typing goes on at the cursor, and the whole line is sent intact. */
    term_type(&alice, "half ");
    term_type(&alice, "\r");
    term_expect(&alice, "] you -> bob: this was half typed");
    term_expect(&bob, "] alice: this was half typed");

    /* History: Up brings the last line back. */
    term_type(&alice, "\033[A");
    term_type(&alice, "\r");
    term_expect(&alice, "] you -> bob: this was half typed");
    term_expect(&bob, "] alice: this was half typed");

    term_quit(&alice);
    term_quit(&bob);
    stop_chat();
}
END_TEST

START_TEST(user_without_password_file_is_asked_for_the_password_and_ctrl_d_quits)
{
    struct term t;
    start_chat();
    register_user("alice");
    term_start(&t, "--port", port_arg, "--user", "alice", NULL);
    term_expect(&t, "password for alice: ");
    size_t asked_at = t.mark;
    term_line(&t, "pw-alice");
    term_expect(&t, "logged in as alice");
    ck_assert_msg(!strstr(t.out + asked_at, "pw-alice"), "the password was echoed:\n%s",
                  term_dump(&t));
    term_expect(&t, "alice> ");
    term_type(&t, "\x04"); /* Ctrl-D on an empty line */
    ck_assert_int_eq(term_wait_exit(&t), 0);
    term_free(&t);
    stop_chat();
}
END_TEST

/* ---- the non-interactive mode ---- */

START_TEST(send_exits_0_and_prints_the_reply_and_listen_prints_pushes)
{
    struct run r;
    start_chat();
    register_user("alice");
    register_user("bob");

    run_chat(&r, "--port", port_arg, "--user", "alice", "--password-file", password_file("alice"),
             "send", "bob", "stored one", NULL);
    expect_run(&r, 0, "stored for bob (offline)\n", NULL);
    ck_assert_str_eq(r.err, "");

    /* bob listens: the stored message first, then a live one, one line each. */
    struct term listen;
    term_start(&listen, "--port", port_arg, "--user", "bob", "--password-file",
               password_file("bob"), "listen", NULL);
    term_expect(&listen, "listening as bob");
    term_expect(&listen, "] (offline) alice: stored one\r\n");
    run_chat(&r, "--port", port_arg, "--user", "alice", "--password-file", password_file("alice"),
             "send", "bob", "live one", NULL);
    expect_run(&r, 0, "sent to bob\n", NULL);
    term_expect(&listen, "] alice: live one\r\n");
    kill(listen.pid, SIGTERM);
    ck_assert_int_eq(term_wait_exit(&listen), 0);
    term_free(&listen);
    /* What listen printed was acknowledged before it left: the next run of this
     * installation (the same device) gets neither message again. */
    run_chat(&r, "--port", port_arg, "--user", "bob", "--password-file", password_file("bob"),
             "listen", "--seconds", "1", NULL);
    expect_run(&r, 0, NULL, NULL);
    ck_assert_msg(!strstr(r.out, "alice:"), "shown again:\n%s", r.out);

    /* Refused by the server: exit 1, the word and why on stderr. */
    run_chat(&r, "--port", port_arg, "--user", "alice", "--password-file", password_file("alice"),
             "send", "nobody", "x", NULL);
    expect_run(&r, 1, NULL, "chat: send: error: user_not_exist: no user is called nobody");
    run_chat(&r, "--port", port_arg, "--user", "alice", "--password-file", password_file("bob"),
             "create", "g", NULL);
    expect_run(&r, 1, NULL, "chat: login: error: passwd_error");
    run_chat(&r, "--port", port_arg, "--user", "alice", "--password-file", password_file("alice"),
             "create", "g", NULL);
    expect_run(&r, 0, "created group g", NULL);
    run_chat(&r, "--port", port_arg, "--json", "--user", "alice", "--password-file",
             password_file("alice"), "gsend", "g", "to the group", NULL);
    expect_run(&r, 0, "{\"cmd\":\"group_chat_reply\",\"result\":\"success\",", NULL);
    expect_run(&r, 0, ",\"id\":2}\n", NULL); /* the server's line as it came */

    /* Usage: exit 2. */
    run_chat(&r, "--port", port_arg, "send", "bob", NULL);
    expect_run(&r, 2, NULL, "wrong number of arguments for send");
    run_chat(&r, "--port", port_arg, "--user", "carol", "send", "bob", "x", NULL);
    expect_run(&r, 2, NULL, "send needs --password-file");
    run_chat(&r, "--bogus", NULL);
    expect_run(&r, 2, NULL, "unknown option --bogus");
    stop_chat();
}
END_TEST

/* ---- TLS ---- */

/* chat --tls against chatd's TLS listener, checking the certificate (made for this
 * test) and the host name; and the plain port for a user registered in clear. */
START_TEST(chat_speaks_tls_and_checks_the_certificate)
{
    char dir[PATH_MAX], cert[PATH_MAX + 16], key[PATH_MAX + 16];
    char cert_set[PATH_MAX + 64], key_set[PATH_MAX + 64], tls_port[16];
    ck_assert_int_eq(chatd_tmpdir_make(dir, sizeof(dir)), 0);
    ck_assert_int_eq(test_tls_make_certificate(dir, "server", cert, key, sizeof(cert)), 0);
    snprintf(cert_set, sizeof(cert_set), "tls.certificate=%s", cert);
    snprintf(key_set, sizeof(key_set), "tls.key=%s", key);
    const char *sets[] = {cert_set, key_set, NULL};
    db_test_config(&cfg);
    ck_assert_msg(db_test_start_sample_tls(&srv, &cfg, sets, 1) == 0, "chatd did not start");
    snprintf(port_arg, sizeof(port_arg), "%d", srv.port);
    snprintf(tls_port, sizeof(tls_port), "%d", srv.tls_port);
    register_user("bob");

    struct run r;
    run_chat(&r, "--tls", "--ca-file", cert, "--port", tls_port, "--user", "alice",
             "--password-file", password_file("alice"), "register", NULL);
    expect_run(&r, 0, "registered alice", NULL);
    run_chat(&r, "--tls", "--ca-file", cert, "--host", "localhost", "--port", tls_port, "--user",
             "alice", "--password-file", password_file("alice"), "send", "bob", "over TLS", NULL);
    expect_run(&r, 0, "stored for bob (offline)\n", NULL);
    /* Verification is on by default: the system's CAs do not know this certificate. */
    run_chat(&r, "--tls", "--port", tls_port, "--user", "alice", "--password-file",
             password_file("alice"), "login", NULL);
    expect_run(&r, 3, NULL, "certificate verify failed");
    run_chat(&r, "--tls", "--insecure", "--port", tls_port, "--user", "alice", "--password-file",
             password_file("alice"), "login", NULL);
    expect_run(&r, 0, NULL, NULL);
    /* bob reads it in clear. */
    run_chat(&r, "--port", port_arg, "--user", "bob", "--password-file", password_file("bob"),
             "listen", "--seconds", "1", NULL);
    expect_run(&r, 0, "(offline) alice: over TLS", NULL);
    run_chat(&r, "--insecure", "login", NULL);
    expect_run(&r, 2, NULL, "--ca-file and --insecure go with --tls");
    stop_chat();
}
END_TEST

/* ---- the saved login token ---- */

static void token_file(const char *user, char *out, size_t cap)
{
    snprintf(out, cap, "%s/chatd/tokens/127.0.0.1_%s_%s", state_dir, port_arg, user);
}

static void assert_mode(const char *path, mode_t want)
{
    struct stat st;
    ck_assert_msg(stat(path, &st) == 0, "%s: %s", path, strerror(errno));
    ck_assert_msg((st.st_mode & 0777) == want, "%s has mode %o, want %o", path,
                  (unsigned)(st.st_mode & 0777), (unsigned)want);
}

static void write_bogus_token(const char *path)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("not-a-token\n", f);
    fclose(f);
    chmod(path, 0600);
}

/* A password login saves the token where only its user can read it; a later run
 * without the password logs in with it; a token the server no longer knows is forgotten
 * and the user is told to use the password; logout-all revokes and forgets it. */
START_TEST(a_saved_token_logs_in_without_the_password_until_it_is_invalid)
{
    struct run r;
    start_chat();
    register_user("alice");
    register_user("bob");
    char path[PATH_MAX + 200], dir[PATH_MAX + 100];
    token_file("alice", path, sizeof(path));
    snprintf(dir, sizeof(dir), "%s/chatd/tokens", state_dir);

    run_chat(&r, "--port", port_arg, "--user", "alice", "--password-file", password_file("alice"),
             "login", NULL);
    expect_run(&r, 0, NULL, NULL);
    assert_mode(path, 0600);
    assert_mode(dir, 0700);
    char *saved = chatd_file_read(path);
    ck_assert_ptr_nonnull(saved);
    ck_assert_uint_gt(strlen(saved), 10);

    /* No password: the token logs in. */
    run_chat(&r, "--port", port_arg, "--user", "alice", "send", "bob", "by token", NULL);
    expect_run(&r, 0, "stored for bob (offline)\n", NULL);

    /* Given the password, chat logs in with it, and the token it gets replaces the
     * saved one (here one the server would not know). */
    write_bogus_token(path);
    run_chat(&r, "--port", port_arg, "--user", "alice", "--password-file", password_file("alice"),
             "send", "bob", "by password", NULL);
    expect_run(&r, 0, "stored for bob (offline)\n", NULL);
    char *renewed = chatd_file_read(path);
    ck_assert_ptr_nonnull(renewed);
    ck_assert_str_ne(renewed, "not-a-token\n");
    free(renewed);

    /* Without the password: refused, and the file is gone. */
    write_bogus_token(path);
    run_chat(&r, "--port", port_arg, "--user", "alice", "send", "bob", "x", NULL);
    expect_run(&r, 1, NULL, "the saved login is no longer valid");
    ck_assert_int_ne(access(path, F_OK), 0);

    /* logout-all revokes the tokens and forgets the file: the old token is refused. */
    run_chat(&r, "--port", port_arg, "--user", "alice", "--password-file", password_file("alice"),
             "login", NULL);
    expect_run(&r, 0, NULL, NULL);
    char *before = chatd_file_read(path);
    ck_assert_ptr_nonnull(before);
    run_chat(&r, "--port", port_arg, "--user", "alice", "logout-all", NULL);
    expect_run(&r, 0, "logged out everywhere", NULL);
    ck_assert_int_ne(access(path, F_OK), 0);
    run_chat(&r, "--port", port_arg, "--user", "alice", "login", NULL);
    expect_run(&r, 2, NULL, "login needs --password-file");
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(before, f);
    fclose(f);
    chmod(path, 0600);
    run_chat(&r, "--port", port_arg, "--user", "alice", "login", NULL);
    expect_run(&r, 1, NULL, "the saved login is no longer valid");

    /* Interactively: a saved token logs in at the start; one the server refuses is
     * forgotten and the password asked for, and that login saves a new token. */
    run_chat(&r, "--port", port_arg, "--user", "alice", "--password-file", password_file("alice"),
             "login", NULL);
    expect_run(&r, 0, NULL, NULL);
    struct term t;
    term_start(&t, "--port", port_arg, "--user", "alice", NULL);
    term_expect(&t, "logged in as alice");
    ck_assert_msg(!strstr(t.out, "password for"), "asked for a password:\n%s", term_dump(&t));
    term_type(&t, "\x04");
    ck_assert_int_eq(term_wait_exit(&t), 0);
    term_free(&t);
    write_bogus_token(path);
    term_start(&t, "--port", port_arg, "--user", "alice", NULL);
    term_expect(&t, "password for alice: ");
    ck_assert_int_ne(access(path, F_OK), 0);
    term_line(&t, "pw-alice");
    term_expect(&t, "logged in as alice");
    term_type(&t, "\x04");
    ck_assert_int_eq(term_wait_exit(&t), 0);
    term_free(&t);
    assert_mode(path, 0600);
    free(before);
    free(saved);
    stop_chat();
}
END_TEST

/* ---- connection problems ---- */

START_TEST(a_refused_connection_is_reported_with_exit_3)
{
    char port[16], want[100];
    snprintf(port, sizeof(port), "%d", test_free_port("127.0.0.1"));
    snprintf(want, sizeof(want), "chat: cannot connect to 127.0.0.1:%s: Connection refused\n",
             port);
    struct run r;
    run_chat(&r, "--port", port, "--user", "a", "--password-file", "/dev/null", "send", "b", "x",
             NULL);
    expect_run(&r, 3, NULL, want);
    ck_assert_str_eq(r.out, "");

    struct term t;
    term_start(&t, "--port", port, NULL);
    want[strlen(want) - 1] = '\0'; /* the terminal ends lines with \r\n */
    term_expect(&t, want);
    ck_assert_int_eq(term_wait_exit(&t), 3);
    term_free(&t);
}
END_TEST

START_TEST(the_server_closing_the_connection_is_reported_with_exit_3)
{
    /* A fake server that reads the login and hangs up. */
    struct fake f;
    fake_start(&f);
    ck_assert_msg(strstr(f.req, "\"cmd\":\"login\""), "want a login first, got %s", f.req);
    close(f.fd);
    child_finish(&f.c, &f.r);
    expect_run(&f.r, 3, NULL, "chat: the server closed the connection\n");

    /* The real chatd stopping under an interactive client: it says so and tries again
     * until told to quit. With piped input, chat ends with exit 3. */
    start_chat();
    register_user("alice");
    struct term t;
    term_login(&t, "alice");
    struct child piped;
    arg_used = 0;
    char *argv[] = {arg_copy("chat"), arg_copy("--port"), arg_copy(port_arg), NULL};
    child_start(&piped, argv, "/login alice pw-alice\n");
    int rc = chatd_proc_stop(&srv, CHATD_PROC_STOP_TIMEOUT_MS);
    ck_assert_int_eq(rc, 0);
    term_expect(&t, "the server closed the connection; reconnecting in ");
    term_line(&t, "/quit");
    ck_assert_int_eq(term_wait_exit(&t), 0);
    term_free(&t);
    struct run r;
    child_finish(&piped, &r);
    expect_run(&r, 3, NULL, "chat: "); /* closed, or (if that came first) cannot connect */
    chatd_proc_cleanup(&srv);
    db_test_cleanup(&cfg);
    close(f.lfd);
}
END_TEST

/* Answer the login request in req on fd with success (and `token`, unless NULL). */
static void fake_login_success(int fd, const char *req, const char *token)
{
    const char *id = strstr(req, "\"id\":");
    ck_assert_ptr_nonnull(id);
    char reply[300];
    int n =
        snprintf(reply, sizeof(reply),
                 "{\"cmd\":\"login_reply\",\"result\":\"success\",\"fri\":[],"
                 "\"group\":[]%s%s%s,\"id\":%d}\n",
                 token ? ",\"token\":\"" : "", token ? token : "", token ? "\"" : "", atoi(id + 5));
    fake_send(fd, reply, (size_t)n);
}

/* A logged-in interactive client whose connection is lost logs in again on a new one,
 * with the token its password login saved. */
START_TEST(a_lost_connection_is_resumed_with_the_saved_token)
{
    char dir[PATH_MAX], pw[PATH_MAX + 64], port_text[16], want[100];
    ck_assert_int_eq(chatd_tmpdir_make(dir, sizeof(dir)), 0);
    ck_assert_int_eq(chatd_file_write(dir, "pw", "secret\n", pw, sizeof(pw)), 0);
    snprintf(state_dir, sizeof(state_dir), "%s/state", dir);
    setenv("XDG_STATE_HOME", state_dir, 1);
    int port;
    int lfd = fake_listen(&port);
    snprintf(port_text, sizeof(port_text), "%d", port);
    struct term t;
    term_start(&t, "--port", port_text, "--user", "alice", "--password-file", pw, NULL);
    int fd = fake_accept(lfd);
    char req[4096];
    fake_read_request(fd, req, sizeof(req));
    ck_assert_msg(strstr(req, "\"passwd\":\"secret\""), "want a password login, got %s", req);
    fake_login_success(fd, req, "tok-1");
    term_expect(&t, "logged in as alice");
    close(fd); /* the connection is lost */
    term_expect(&t, "the server closed the connection; reconnecting in ");
    fd = fake_accept(lfd);
    fake_read_request(fd, req, sizeof(req));
    ck_assert_msg(strstr(req, "\"token\":\"tok-1\"") && !strstr(req, "passwd"),
                  "want a token login, got %s", req);
    fake_login_success(fd, req, NULL);
    snprintf(want, sizeof(want), "connected to 127.0.0.1:%d again", port);
    term_expect(&t, want);
    term_expect(&t, "logged in as alice");
    kill(t.pid, SIGTERM);
    term_wait_exit(&t);
    term_free(&t);
    close(fd);
    close(lfd);
    chatd_tmpdir_remove(dir);
}
END_TEST

START_TEST(no_reply_in_time_is_reported_with_exit_3)
{
    struct fake f;
    fake_start(&f);
    child_finish(&f.c, &f.r); /* --timeout 5, and the fake server says nothing */
    expect_run(&f.r, 3, NULL, "chat: no reply from the server to login within 5 s\n");
    close(f.fd);
    close(f.lfd);
}
END_TEST

/* Lines a broken or hostile server might send in answer to the login. */
static const struct {
    const char *line;
    const char *why;
} bad_replies[] = {
    {"this is not JSON\n", "(not JSON): this is not JSON"},
    {"\x01\x02\xff\xfe garbage\n", "(not JSON): \\x01\\x02\\xff\\xfe garbage"},
    {"[1,2,3]\n", "(not an object with a \"cmd\")"},
    {"{\"result\":\"success\",\"id\":1}\n", "(not an object with a \"cmd\")"},
    {"{\"cmd\":\"login_reply\",\"result\":\"success\",\"id\":99}\n", "(a reply to no request"},
    {"{\"cmd\":\"login_reply\",\"result\":\"success\",\"id\":\"1\"}\n", "(a reply to no request"},
    {"{\"cmd\":\"ping_reply\",\"result\":\"success\",\"id\":1}\n", "(a reply to another command)"},
    {"{\"cmd\":\"login_reply\",\"result\":7,\"id\":1}\n", "(a reply without a result)"},
    {"{\"cmd\":\"login_reply\",\"result\":\"success\"}\n", "(a reply without our id)"},
    {"{\"cmd\":\"login_reply\",\"result\":\"success\",\"id\":1", "(a line cut off by the end"},
};

START_TEST(a_bad_reply_is_reported_with_exit_4)
{
    struct fake f;
    fake_start(&f);
    fake_send(f.fd, bad_replies[_i].line, strlen(bad_replies[_i].line));
    /* The cut-off line only shows as such when the connection ends. */
    if (!strchr(bad_replies[_i].line, '\n'))
        shutdown(f.fd, SHUT_WR);
    child_finish(&f.c, &f.r);
    expect_run(&f.r, 4, NULL, "chat: bad reply from the server ");
    expect_run(&f.r, 4, NULL, bad_replies[_i].why);
    close(f.fd);
    close(f.lfd);
}
END_TEST

START_TEST(a_line_longer_than_the_limit_is_a_bad_reply)
{
    struct fake f;
    fake_start(&f);
    /* 2 MiB without a newline; the client gives up at 1 MiB and closes. */
    static char chunk[65536];
    memset(chunk, 'x', sizeof(chunk));
    for (int i = 0; i < 32; i++)
        if (send(f.fd, chunk, sizeof(chunk), MSG_NOSIGNAL) < 0)
            break;
    child_finish(&f.c, &f.r);
    expect_run(&f.r, 4, NULL, "(a line longer than 1 MiB)");
    close(f.fd);
    close(f.lfd);
}
END_TEST

START_TEST(odd_pushes_are_shown_safely_and_do_not_stop_a_command)
{
    struct fake f;
    fake_start(&f);
    const char *login =
        "{\"cmd\":\"login_reply\",\"result\":\"success\",\"fri\":[5],\"group\":null,\"id\":1}\n"
        "{\"cmd\":\"private_chat_recv\",\"user_from\":\"eve\",\"text\":\"\\u001b[2Jclear "
        "screen\\nnew line\",\"ts\":\"soon\",\"msg_id\":\"m1\"}\n"
        "{\"cmd\":\"private_chat_recv\",\"user_from\":\"eve\",\"text\":\"\\u001b[2Jclear "
        "screen\\nnew line\",\"ts\":\"soon\",\"msg_id\":\"m1\"}\n"
        "{\"cmd\":\"private_chat_recv\",\"user_from\":5}\n"
        "{\"cmd\":\"something_new\",\"x\":[1,{\"y\":null}]}\n"
        "{\"cmd\":\"error\",\"result\":\"bad_request\",\"reason\":\"a test\"}\n";
    fake_send(f.fd, login, strlen(login));
    fake_read_request(f.fd, f.req, sizeof(f.req));
    ck_assert_msg(strstr(f.req, "\"cmd\":\"private_chat\"") && strstr(f.req, "\"id\":2"), "got %s",
                  f.req);
    const char *reply = "{\"cmd\":\"private_chat_reply\",\"result\":\"success\",\"id\":2,"
                        "\"new_field\":{\"a\":1}}\n";
    fake_send(f.fd, reply, strlen(reply));
    child_finish(&f.c, &f.r);
    expect_run(&f.r, 0, "] eve: \\x1b[2Jclear screen\\nnew line\n", NULL);
    expect_run(&f.r, 0, "* message from the server: {\"cmd\":\"private_chat_recv\"", NULL);
    expect_run(&f.r, 0, "* message from the server: {\"cmd\":\"something_new\"", NULL);
    expect_run(&f.r, 0, "sent to bob\n", NULL);
    /* The repeat (same msg_id) is shown once; no raw escape reaches the terminal. */
    ck_assert_ptr_null(strstr(strstr(f.r.out, "eve:") + 1, "eve:"));
    ck_assert_ptr_null(strchr(f.r.out, 0x1b));
    close(f.fd);
    close(f.lfd);
}
END_TEST

/* ---- the acknowledged stream across a restart of chatd ---- */

static size_t count_of(const char *haystack, const char *needle)
{
    size_t n = 0;
    for (const char *at = haystack; (at = strstr(at, needle)); at += strlen(needle))
        n++;
    return n;
}

/* chatd stops under a logged-in client with a half-typed line and starts again on the
 * same port: the client says so briefly, comes back by itself, logs in with its token
 * and resumes after the last message it showed: what was sent while it was away arrives
 * once, nothing shown before comes again, and the line is still there to finish. */
START_TEST(a_client_resumes_after_chatd_restarts_without_duplicates_or_gaps)
{
    struct term alice;
    struct run r;
    char line[100];
    start_chat();
    register_user("alice");
    register_user("bob");
    term_login(&alice, "alice");
    for (int i = 1; i <= 3; i++) {
        snprintf(line, sizeof(line), "before restart %d", i);
        run_chat(&r, "--port", port_arg, "--user", "bob", "--password-file", password_file("bob"),
                 "send", "alice", line, NULL);
        expect_run(&r, 0, NULL, NULL);
        term_expect(&alice, line);
    }
    term_line(&alice, "/msg bob see you");
    term_expect(&alice, "alice -> bob> ");
    term_type(&alice, "half typed");
    term_expect(&alice, "half typed");

    struct chatd_proc old = srv;
    ck_assert_int_eq(chatd_proc_stop(&srv, CHATD_PROC_STOP_TIMEOUT_MS), 0);
    term_expect(&alice, "the server closed the connection; reconnecting in ");
    ck_assert_msg(db_test_start_sample_on(&srv, &cfg, old.port) == 0, "chatd did not start again");
    /* Sent while alice is away, or while she is coming back. */
    for (int i = 1; i <= 3; i++) {
        snprintf(line, sizeof(line), "while away %d", i);
        run_chat(&r, "--port", port_arg, "--user", "bob", "--password-file", password_file("bob"),
                 "send", "alice", line, NULL);
        expect_run(&r, 0, NULL, NULL);
    }
    term_expect(&alice, "connected to 127.0.0.1:");
    term_expect(&alice, "logged in as alice");
    size_t back_at = alice.mark;
    for (int i = 1; i <= 3; i++) {
        snprintf(line, sizeof(line), "bob: while away %d", i);
        term_expect(&alice, line);
    }
    /* The line typed before is still there, and goes out whole. */
    term_expect(&alice, "alice -> bob> half typed");
    term_type(&alice, " and finished\r");
    term_expect(&alice, "] you -> bob: half typed and finished");
    for (int i = 1; i <= 3; i++) {
        snprintf(line, sizeof(line), "bob: before restart %d", i);
        ck_assert_msg(count_of(alice.out, line) == 1 && !strstr(alice.out + back_at, line),
                      "\"%s\" shown %zu times", line, count_of(alice.out, line));
        snprintf(line, sizeof(line), "bob: while away %d", i);
        ck_assert_msg(count_of(alice.out, line) == 1, "\"%s\" shown %zu times", line,
                      count_of(alice.out, line));
    }
    term_quit(&alice);
    chatd_proc_cleanup(&old);
    stop_chat();
}
END_TEST

/* ---- receipts, read marks and history ---- */

/* bob answers alice: she is his conversation now, so what he was shown from her is
 * marked read (his /quit sends the mark and his acknowledgement before it leaves). */
static void bob_reads_alices_first(struct term *alice)
{
    struct term bob;
    term_login(&bob, "bob");
    /* Friends, so that alice hears when chatd has let bob go (below). */
    term_line(alice, "/friend bob");
    term_expect(alice, "bob is your friend now");
    term_line(alice, "/msg bob first");
    term_expect(alice, "] you -> bob: first");
    term_expect(&bob, "] alice: first");
    term_line(&bob, "/msg alice reply");
    term_expect(&bob, "] you -> alice: reply");
    term_expect(alice, "] bob: reply");
    term_quit(&bob);
    /* Only then is a message to bob stored: quitting closes the connection, and chatd
     * may read that after alice's next message (with I/O threads, often). */
    term_expect(alice, "* bob is offline");
}

/* /history pages back through the conversation, oldest first in each page, with the
 * marks of your own messages; again for the page before; and a group's history. */
START_TEST(history_pages_back_with_the_marks_of_own_messages)
{
    struct term alice, bob;
    start_chat();
    register_user("alice");
    register_user("bob");
    term_login(&alice, "alice");
    bob_reads_alices_first(&alice);
    for (int i = 1; i <= 3; i++) {
        char line[80];
        snprintf(line, sizeof(line), "m%d", i);
        term_line(&alice, line);
        snprintf(line, sizeof(line), "] you -> bob: m%d (stored: bob is offline)", i);
        term_expect(&alice, line);
    }
    term_line(&alice, "/history 2");
    term_expect(&alice, "-- 2 messages (/history again for older ones) --");
    term_expect(&alice, "] you -> bob: m2\r\n");
    term_expect(&alice, "] you -> bob: m3\r\n");
    term_line(&alice, "/history 2");
    term_expect(&alice, "-- 2 messages (/history again for older ones) --");
    term_expect(&alice, "] bob: reply\r\n");
    term_expect(&alice, "] you -> bob: m1\r\n");
    term_line(&alice, "/history 2");
    term_expect(&alice, "-- 1 message, from the first --");
    term_expect(&alice, "] you -> bob: first (read)\r\n");
    term_line(&alice, "/history 2");
    term_expect(&alice, "no older messages");
    term_line(&alice, "/history 500");
    term_expect(&alice, "usage: /history [N], N from 1 to 200");

    /* A group's history, from bob's side. */
    term_line(&alice, "/create g1");
    term_expect(&alice, "created group g1");
    term_login(&bob, "bob");
    term_line(&bob, "/join g1");
    term_expect(&bob, "joined g1");
    term_line(&alice, "/g g1 to the group");
    term_expect(&bob, "] [g1] alice: to the group");
    term_line(&bob, "/g g1 and back");
    term_expect(&bob, "bob [g1]> ");
    term_line(&bob, "/history");
    term_expect(&bob, "-- 2 messages, from the first --");
    term_expect(&bob, "] [g1] alice: to the group");
    term_expect(&bob, "] [g1] you: and back");
    term_quit(&alice);
    term_quit(&bob);
    stop_chat();
}
END_TEST

/* alice's message is marked received when bob's client acknowledges it, and read when
 * he has it shown with alice as his conversation. */
START_TEST(receipts_mark_own_messages_received_and_read)
{
    struct term alice;
    start_chat();
    register_user("alice");
    register_user("bob");
    term_login(&alice, "alice");
    size_t before = alice.mark;
    bob_reads_alices_first(&alice);
    alice.mark = before; /* the receipts may come before bob's reply or after it */
    term_expect(&alice, "* bob has received your message of ");
    term_expect(&alice, ": first");
    term_expect(&alice, "* bob has read your message of ");
    term_expect(&alice, ": first (and those before it)");
    term_quit(&alice);
    stop_chat();
}
END_TEST

/* ---- options, the config file, piped input ---- */

START_TEST(options_take_their_value_after_an_equals_sign_and_h_is_help)
{
    struct run r;
    start_chat();
    register_user("alice");
    char port_eq[32];
    snprintf(port_eq, sizeof(port_eq), "--port=%s", port_arg);
    run_chat(&r, "--host=127.0.0.1", port_eq, "--user=alice", "--password-file",
             password_file("alice"), "--timeout=5", "login", NULL);
    expect_run(&r, 0, NULL, NULL);
    run_chat(&r, "-h", NULL);
    expect_run(&r, 0, "usage: chat [OPTIONS]", NULL);
    run_chat(&r, "--help", NULL);
    expect_run(&r, 0, "--config FILE", NULL);
    run_chat(&r, "--tls=yes", "login", NULL);
    expect_run(&r, 2, NULL, "--tls takes no value");
    run_chat(&r, "--port=", "--user", "alice", "login", NULL);
    expect_run(&r, 2, NULL, NULL);
    run_chat(&r, "--device=bad/name", "login", NULL);
    expect_run(&r, 2, NULL, "--device wants 1 to 64 of");
    run_chat(&r, "-x", NULL);
    expect_run(&r, 2, NULL, "unknown option -x");
    stop_chat();
}
END_TEST

/* The config file gives host, port and user (the command line overrides it); a bad line
 * is named with its file and line. */
START_TEST(the_config_file_gives_host_port_and_user)
{
    struct run r;
    char dir[PATH_MAX], path[PATH_MAX + 64], file[PATH_MAX + 100], text[300];
    char cfg_home[PATH_MAX + 16];
    start_chat();
    register_user("alice");
    register_user("bob");
    ck_assert_int_eq(chatd_tmpdir_make(dir, sizeof(dir)), 0);
    snprintf(cfg_home, sizeof(cfg_home), "%s/cfg", dir);
    ck_assert_int_eq(mkdir(cfg_home, 0700), 0);
    snprintf(path, sizeof(path), "%s/chatd", cfg_home);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    snprintf(text, sizeof(text),
             "# where alice chats\nhost = 127.0.0.1\nport = %s\nuser = alice\n"
             "device = alices-laptop\ntls = no\n",
             port_arg);
    ck_assert_int_eq(chatd_file_write(path, "chat.conf", text, file, sizeof(file)), 0);
    setenv("XDG_CONFIG_HOME", cfg_home, 1);
    run_chat(&r, "--password-file", password_file("alice"), "send", "bob", "configured", NULL);
    expect_run(&r, 0, "stored for bob (offline)", NULL);
    /* The command line wins: bob, not the file's alice. */
    run_chat(&r, "--user", "bob", "--password-file", password_file("bob"), "listen", "--seconds",
             "1", NULL);
    expect_run(&r, 0, "(offline) alice: configured", NULL);
    unsetenv("XDG_CONFIG_HOME");

    char bad[PATH_MAX + 64], want[PATH_MAX + 100];
    ck_assert_int_eq(
        chatd_file_write(dir, "bad.conf", "port = 8000\n\ncolour = blue\n", bad, sizeof(bad)), 0);
    run_chat(&r, "--config", bad, "login", NULL);
    snprintf(want, sizeof(want), "chat: %s:3: unknown key 'colour'", bad);
    expect_run(&r, 2, NULL, want);
    ck_assert_int_eq(chatd_file_write(dir, "bad2.conf", "port = 99999\n", bad, sizeof(bad)), 0);
    run_chat(&r, "--config", bad, "login", NULL);
    expect_run(&r, 2, NULL, ":1: port wants a number from 1 to 65535");
    run_chat(&r, "--config", "/nonexistent/chat.conf", "login", NULL);
    expect_run(&r, 2, NULL, "cannot read the config file /nonexistent/chat.conf");
    chatd_tmpdir_remove(dir);
    stop_chat();
}
END_TEST

/* Commands piped in: exit 0 when every one worked, 1 when one failed; whitespace-only
 * lines send nothing. */
START_TEST(piped_commands_exit_1_when_one_failed_and_blank_lines_send_nothing)
{
    struct run r;
    start_chat();
    register_user("alice");
    register_user("bob");
    run_chat_input(&r, "/login alice pw-alice\n/msg bob first\n   \n\t \nlast\n", "--port",
                   port_arg, NULL);
    expect_run(&r, 0, "you -> bob: first", NULL);
    run_chat(&r, "--port", port_arg, "--user", "bob", "--password-file", password_file("bob"),
             "listen", "--seconds", "1", NULL);
    expect_run(&r, 0, "alice: first\n", NULL);
    ck_assert_msg(count_of(r.out, "alice: ") == 2, "want 2 messages, got:\n%s", r.out);
    ck_assert_ptr_nonnull(strstr(r.out, "alice: last\n"));

    run_chat_input(&r, "/login alice pw-alice\n/msg nobody hi\n/who\n", "--port", port_arg, NULL);
    expect_run(&r, 1, "error: user_not_exist", NULL);
    run_chat_input(&r, "/login alice pw-alice\n/nonsense\n", "--port", port_arg, NULL);
    expect_run(&r, 1, "unknown command", NULL);
    run_chat_input(&r, "/login alice wrong\n", "--port", port_arg, NULL);
    expect_run(&r, 1, "passwd_error", NULL);
    stop_chat();
}
END_TEST

/* ---- the lists, the prompt, registering ---- */

START_TEST(who_groups_and_members_list_with_online_and_owner_marks)
{
    struct term alice;
    start_chat();
    register_user("alice");
    register_user("bob");
    register_user("carol");
    term_login(&alice, "alice");
    term_line(&alice, "/friend bob");
    term_expect(&alice, "bob is your friend now");
    term_line(&alice, "/friend carol");
    term_expect(&alice, "carol is your friend now");
    term_line(&alice, "/create g1");
    term_expect(&alice, "created group g1");
    struct run r;
    run_chat(&r, "--port", port_arg, "--user", "bob", "--password-file", password_file("bob"),
             "join", "g1", NULL);
    expect_run(&r, 0, NULL, NULL);
    struct term bob;
    term_login(&bob, "bob");
    term_expect(&alice, "* bob is online");
    term_line(&alice, "/who");
    term_expect(&alice, "friends: bob (online), carol\r\n");
    term_line(&alice, "/groups");
    term_expect(&alice, "groups: g1\r\n");
    term_line(&alice, "/members g1");
    term_expect(&alice, "members of g1: alice (owner, online), bob (online)\r\n");
    term_line(&alice, "/members nope");
    term_expect(&alice, "error: group_not_exist");

    /* A failed /msg leaves the conversation as it was. */
    term_line(&alice, "/msg bob hi");
    term_expect(&alice, "alice -> bob> ");
    term_line(&alice, "/msg nobody hi");
    term_expect(&alice, "error: user_not_exist");
    term_expect(&alice, "alice -> bob> ");
    term_line(&alice, "plain line");
    term_expect(&bob, "] alice: plain line");
    term_quit(&bob);
    term_quit(&alice);
    stop_chat();
}
END_TEST

START_TEST(register_asks_for_the_password_twice)
{
    struct term t;
    start_chat();
    term_start(&t, "--port", port_arg, NULL);
    term_expect(&t, "chat> ");
    term_line(&t, "/register dave");
    term_expect(&t, "password for dave: ");
    term_line(&t, "one-secret");
    term_expect(&t, "the same password again: ");
    term_line(&t, "another");
    term_expect(&t, "the two passwords differ; not registered");
    term_line(&t, "/register dave");
    term_expect(&t, "password for dave: ");
    term_line(&t, "pw-dave");
    term_expect(&t, "the same password again: ");
    term_line(&t, "pw-dave");
    term_expect(&t, "registered dave");
    ck_assert_msg(!strstr(t.out, "one-secret") && !strstr(t.out, "pw-dave"),
                  "a password was echoed:\n%s", term_dump(&t));
    term_line(&t, "/login dave pw-dave");
    term_expect(&t, "logged in as dave");
    term_quit(&t);
    stop_chat();
}
END_TEST

/* ---- the terminal: Ctrl-Z, resizing, a lone Esc, a history search ---- */

/* Whether the client's terminal is in libedit's raw mode (no line discipline). */
static int term_is_raw(const struct term *t)
{
    struct termios tio;
    ck_assert_int_eq(tcgetattr(t->fd, &tio), 0);
    return !(tio.c_lflag & ICANON) && !(tio.c_lflag & ECHO);
}

START_TEST(after_a_stop_and_continue_the_line_is_redrawn_and_raw_mode_restored)
{
    struct term t;
    start_chat();
    register_user("alice");
    term_login(&t, "alice");
    term_expect(&t, "alice> ");
    term_type(&t, "half a line");
    term_expect(&t, "half a line");
    ck_assert(term_is_raw(&t));

    /* Ctrl-Z: the terminal goes back to its modes (a session leader in an orphaned
     * process group is not actually stopped by it, so chat carries on at once). */
    kill(t.pid, SIGTSTP);
    term_expect(&t, "alice> half a line");

    /* Stopped and continued: the shell put the terminal back in cooked mode meanwhile. */
    kill(t.pid, SIGSTOP);
    struct termios tio;
    ck_assert_int_eq(tcgetattr(t.fd, &tio), 0);
    tio.c_lflag |= ICANON | ECHO;
    ck_assert_int_eq(tcsetattr(t.fd, TCSANOW, &tio), 0);
    kill(t.pid, SIGCONT);
    term_expect(&t, "alice> half a line");
    long long deadline = chatd_now_ms() + DEADLINE_MS;
    while (!term_is_raw(&t) && chatd_now_ms() < deadline)
        term_pump(&t, 50);
    ck_assert_msg(term_is_raw(&t), "the terminal is not in raw mode after SIGCONT");
    term_type(&t, "\r");
    term_expect(&t, "no conversation yet");
    term_quit(&t);
    stop_chat();
}
END_TEST

START_TEST(widening_the_terminal_wipes_every_row_of_the_line)
{
    struct term t;
    start_chat();
    register_user("alice");
    term_login(&t, "alice");
    term_expect(&t, "alice> ");
    /* 7 + 150 columns: two rows at 120 columns, one at 200. */
    char line[151];
    memset(line, 'x', 150);
    line[150] = '\0';
    term_type(&t, line);
    term_expect(&t, "xxxxxxxxxx");
    term_pump(&t, 200);
    t.mark = t.len;
    struct winsize ws = {.ws_row = 40, .ws_col = 200};
    ck_assert_int_eq(ioctl(t.fd, TIOCSWINSZ, &ws), 0); /* SIGWINCH for chat */
    /* Up one row (where the prompt starts, as drawn at 120 columns), and clear. */
    term_expect(&t, "\r\033[1A\033[J");
    term_expect(&t, "alice> xxxxxxxxxx");
    term_type(&t, "\x15"); /* Ctrl-U: the line is wiped */
    term_quit(&t);
    stop_chat();
}
END_TEST

START_TEST(messages_are_shown_after_a_lone_esc_and_during_a_search)
{
    struct term alice;
    struct run r;
    start_chat();
    register_user("alice");
    register_user("bob");
    term_login(&alice, "alice");
    term_type(&alice, "\033"); /* a lone Esc, and nothing after it */
    run_chat(&r, "--port", port_arg, "--user", "bob", "--password-file", password_file("bob"),
             "send", "alice", "after the esc", NULL);
    expect_run(&r, 0, NULL, NULL);
    term_expect(&alice, "] bob: after the esc");
    /* The Esc was dropped, not kept to make a Meta key of the next key typed (a second
     * later: far beyond its timeout). */
    chatd_sleep_ms(1000);
    term_type(&alice, "/msg bob b\r");
    term_expect(&alice, "] you -> bob: b");

    term_type(&alice, "\x12"); /* Ctrl-R: search the history */
    run_chat(&r, "--port", port_arg, "--user", "bob", "--password-file", password_file("bob"),
             "send", "alice", "during the search", NULL);
    expect_run(&r, 0, NULL, NULL);
    term_expect(&alice, "] bob: during the search");
    term_type(&alice, "\r");
    term_expect(&alice, "] you -> bob: b");
    term_quit(&alice);
    stop_chat();
}
END_TEST

static Suite *client_suite(void)
{
    Suite *s = suite_create("client");
    TCase *tc = tcase_create("chatting");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, three_users_chat_privately_and_in_a_group_with_offline_delivery);
    tcase_add_test(tc, a_push_arriving_while_typing_keeps_the_half_typed_line_and_cursor);
    tcase_add_test(tc, user_without_password_file_is_asked_for_the_password_and_ctrl_d_quits);
    tcase_add_test(tc, send_exits_0_and_prints_the_reply_and_listen_prints_pushes);
    tcase_add_test(tc, chat_speaks_tls_and_checks_the_certificate);
    tcase_add_test(tc, a_saved_token_logs_in_without_the_password_until_it_is_invalid);
    tcase_add_test(tc, a_lost_connection_is_resumed_with_the_saved_token);
    tcase_add_test(tc, a_client_resumes_after_chatd_restarts_without_duplicates_or_gaps);
    tcase_add_test(tc, who_groups_and_members_list_with_online_and_owner_marks);
    tcase_add_test(tc, register_asks_for_the_password_twice);
    tcase_add_test(tc, history_pages_back_with_the_marks_of_own_messages);
    tcase_add_test(tc, receipts_mark_own_messages_received_and_read);
    suite_add_tcase(s, tc);

    tc = tcase_create("options");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, options_take_their_value_after_an_equals_sign_and_h_is_help);
    tcase_add_test(tc, the_config_file_gives_host_port_and_user);
    tcase_add_test(tc, piped_commands_exit_1_when_one_failed_and_blank_lines_send_nothing);
    suite_add_tcase(s, tc);

    tc = tcase_create("terminal");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, after_a_stop_and_continue_the_line_is_redrawn_and_raw_mode_restored);
    tcase_add_test(tc, widening_the_terminal_wipes_every_row_of_the_line);
    tcase_add_test(tc, messages_are_shown_after_a_lone_esc_and_during_a_search);
    suite_add_tcase(s, tc);

    tc = tcase_create("failures");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_refused_connection_is_reported_with_exit_3);
    tcase_add_test(tc, the_server_closing_the_connection_is_reported_with_exit_3);
    tcase_add_test(tc, no_reply_in_time_is_reported_with_exit_3);
    tcase_add_loop_test(tc, a_bad_reply_is_reported_with_exit_4, 0,
                        (int)(sizeof(bad_replies) / sizeof(bad_replies[0])));
    tcase_add_test(tc, a_line_longer_than_the_limit_is_a_bad_reply);
    tcase_add_test(tc, odd_pushes_are_shown_safely_and_do_not_stop_a_command);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(client_suite());
}
