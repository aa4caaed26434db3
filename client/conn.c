/* conn.c - connecting to chatd and the request/reply bookkeeping on one connection. */
#include "conn.h"

#include "exit_codes.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* One request waiting for its reply; kept in sending order, as replies come in order. */
struct pending {
    struct pending *next;
    long long id;
    long long deadline_ms;
    enum chat_cmd cmd;
    char *name;
    json_t *req; /* the request as sent, with its id */
};

struct chat_conn {
    struct event_base *base;
    struct bufferevent *bev;
    struct event *reply_timer;
    struct event *keepalive_timer;
    struct chat_conn_handlers h;
    void *ctx;
    int reply_timeout_ms;
    int keepalive_ms;
    long long next_id;
    long long last_send_ms;
    struct pending *head, *tail;
    size_t n_pending;
    int failed;
};

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- connecting ---- */

/* Wait for a non-blocking connect to finish. Returns 0, or an errno value. */
static int finish_connect(int fd, long long deadline)
{
    for (;;) {
        long long left = deadline - mono_ms();
        if (left <= 0)
            return ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int n = poll(&p, 1, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        if (n == 0)
            return ETIMEDOUT;
        int soerr = 0;
        socklen_t len = sizeof(soerr);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
            return errno;
        return soerr;
    }
}

int chat_connect(const char *host, const char *port, int timeout_ms, char *err, size_t cap)
{
    /* An IPv6 literal is shown in brackets, as in [::1]:8000. */
    char where[300];
    snprintf(where, sizeof(where), strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *list = NULL;
    int rc = getaddrinfo(host, port, &hints, &list);
    if (rc != 0) {
        snprintf(err, cap, "cannot connect to %s: %s", where,
                 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return -1;
    }
    long long deadline = mono_ms() + timeout_ms;
    int last_error = ECONNREFUSED;
    for (struct addrinfo *ai = list; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            last_error = errno;
            continue;
        }
        int flags = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        int e = 0;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
            e = errno == EINPROGRESS ? finish_connect(fd, deadline) : errno;
        if (e == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            freeaddrinfo(list);
            return fd;
        }
        close(fd);
        last_error = e;
        if (e == ETIMEDOUT)
            break;
    }
    freeaddrinfo(list);
    snprintf(err, cap, "cannot connect to %s: %s", where, strerror(last_error));
    return -1;
}

/* ---- failing ---- */

static void fail(struct chat_conn *c, int exit_code, const char *message)
{
    if (c->failed)
        return;
    c->failed = 1;
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    evtimer_del(c->reply_timer);
    if (c->keepalive_timer)
        evtimer_del(c->keepalive_timer);
    c->h.on_fail(c->ctx, exit_code, message);
}

/* A bad line: say what it was, cut short and with control characters escaped. */
static void fail_bad_line(struct chat_conn *c, const char *what, const char *line, size_t len)
{
    char shown[120];
    size_t n = 0;
    for (size_t i = 0; i < len && n + 5 < sizeof(shown); i++) {
        unsigned char ch = (unsigned char)line[i];
        if (ch < 0x20 || ch >= 0x7f)
            n += (size_t)snprintf(shown + n, sizeof(shown) - n, "\\x%02x", ch);
        else
            shown[n++] = (char)ch;
    }
    shown[n] = '\0';
    char message[300];
    snprintf(message, sizeof(message), "bad reply from the server (%s): %s%s", what, shown,
             n + 5 >= sizeof(shown) ? "..." : "");
    fail(c, CHAT_EXIT_PROTOCOL, message);
}

/* ---- the reply deadline ---- */

static void arm_reply_timer(struct chat_conn *c)
{
    if (!c->head) {
        evtimer_del(c->reply_timer);
        return;
    }
    long long left = c->head->deadline_ms - mono_ms();
    if (left < 0)
        left = 0;
    struct timeval tv = {.tv_sec = (time_t)(left / 1000), .tv_usec = (long)(left % 1000) * 1000};
    evtimer_add(c->reply_timer, &tv);
}

static void on_reply_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct chat_conn *c = arg;
    if (!c->head)
        return;
    if (c->head->deadline_ms > mono_ms()) {
        arm_reply_timer(c);
        return;
    }
    char message[160];
    const char *wire = chat_command_wire_name(c->head->cmd);
    snprintf(message, sizeof(message), "no reply from the server to %s within %d s",
             wire ? wire : "a request", (c->reply_timeout_ms + 999) / 1000);
    fail(c, CHAT_EXIT_CONNECTION, message);
}

/* ---- reading lines ---- */

static void pending_pop(struct chat_conn *c)
{
    struct pending *p = c->head;
    c->head = p->next;
    if (!c->head)
        c->tail = NULL;
    c->n_pending--;
    free(p->name);
    json_decref(p->req);
    free(p);
    arm_reply_timer(c);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* A reply carrying an id: it must answer the oldest request still waiting. */
static void handle_reply(struct chat_conn *c, const json_t *msg, const char *cmd, const char *line,
                         size_t len)
{
    const json_t *id = json_object_get(msg, "id");
    struct pending *p = c->head;
    if (!p || !json_is_integer(id) || json_integer_value(id) != p->id) {
        fail_bad_line(c, "a reply to no request of ours", line, len);
        return;
    }
    const char *wire = chat_command_wire_name(p->cmd);
    char want[64];
    snprintf(want, sizeof(want), "%s_reply", wire ? wire : "");
    if (strcmp(cmd, want) != 0 && strcmp(cmd, "error") != 0) {
        fail_bad_line(c, "a reply to another command", line, len);
        return;
    }
    if (!json_is_string(json_object_get(msg, "result"))) {
        fail_bad_line(c, "a reply without a result", line, len);
        return;
    }
    enum chat_cmd which = p->cmd;
    char *name = p->name;
    json_t *req = p->req;
    p->name = NULL;
    p->req = NULL;
    pending_pop(c);
    /* Keep-alive pings are the connection's own business, whatever their answer. */
    if (which != CHAT_CMD_PING)
        c->h.on_reply(c->ctx, which, name, req, msg);
    free(name);
    json_decref(req);
}

static void handle_line(struct chat_conn *c, const char *line, size_t len)
{
    json_error_t jerr;
    json_t *msg = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!msg) {
        fail_bad_line(c, "not JSON", line, len);
        return;
    }
    const char *cmd = json_string_value(json_object_get(msg, "cmd"));
    if (!json_is_object(msg) || !cmd)
        fail_bad_line(c, "not an object with a \"cmd\"", line, len);
    else if (json_object_get(msg, "id"))
        handle_reply(c, msg, cmd, line, len);
    else if (ends_with(cmd, "_reply") && strcmp(cmd, "ack_reply") != 0)
        fail_bad_line(c, "a reply without our id", line, len); /* acks are sent without one */
    else
        c->h.on_push(c->ctx, msg);
    json_decref(msg);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct chat_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (!c->failed) {
        size_t len;
        char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
        if (!line) {
            if (evbuffer_get_length(in) > CHAT_CONN_MAX_LINE) {
                char start[64];
                ev_ssize_t n = evbuffer_copyout(in, start, sizeof(start));
                fail_bad_line(c, "a line longer than 1 MiB", start, n > 0 ? (size_t)n : 0);
            }
            return;
        }
        handle_line(c, line, len);
        free(line);
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct chat_conn *c = arg;
    if (what & BEV_EVENT_EOF) {
        /* Lines that came just before the end are still read; a partial one is bad. */
        on_read(bev, c);
        if (c->failed)
            return;
        size_t left = evbuffer_get_length(bufferevent_get_input(bev));
        if (left > 0) {
            char start[64];
            ev_ssize_t n = evbuffer_copyout(bufferevent_get_input(bev), start, sizeof(start));
            fail_bad_line(c, "a line cut off by the end of the connection", start,
                          n > 0 ? (size_t)n : 0);
            return;
        }
        fail(c, CHAT_EXIT_CONNECTION, "the server closed the connection");
    } else if (what & BEV_EVENT_ERROR) {
        char message[300], reason[200];
        int e = EVUTIL_SOCKET_ERROR();
        unsigned long tls_error = bufferevent_get_openssl_error(bev);
        if (tls_error)
            chat_tls_reason(tls_error, reason, sizeof(reason));
        else
            snprintf(reason, sizeof(reason), "%s", e ? strerror(e) : "unknown error");
        snprintf(message, sizeof(message), "the connection to the server was lost: %s", reason);
        fail(c, CHAT_EXIT_CONNECTION, message);
    }
}

/* ---- keeping the connection alive ---- */

static void on_keepalive(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct chat_conn *c = arg;
    if (c->failed)
        return;
    if (mono_ms() - c->last_send_ms >= c->keepalive_ms) {
        struct chat_command ping = {.cmd = CHAT_CMD_PING};
        json_t *req = chat_command_request(&ping, NULL);
        if (req)
            chat_conn_send(c, CHAT_CMD_PING, NULL, req);
        json_decref(req);
    }
}

/* ---- the public functions ---- */

/* The connection's bufferevent: plain, or TLS through libevent's OpenSSL filter. */
static struct bufferevent *open_bufferevent(struct event_base *base, int fd,
                                            const struct chat_tls *tls, const char *host, char *err,
                                            size_t cap)
{
    if (!tls || !tls->enabled)
        return bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    SSL *ssl = chat_tls_new(tls, host, err, cap);
    if (!ssl)
        return NULL;
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, fd, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        SSL_free(ssl);
        return NULL;
    }
    /* chatd may close without a close_notify: that is the end of the stream. */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

struct chat_conn *chat_conn_new(struct event_base *base, int fd, int reply_timeout_ms,
                                const struct chat_tls *tls, const char *host,
                                const struct chat_conn_handlers *h, void *ctx, char *err,
                                size_t cap)
{
    snprintf(err, cap, "out of memory");
    struct chat_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return NULL;
    }
    c->base = base;
    c->h = *h;
    c->ctx = ctx;
    c->reply_timeout_ms = reply_timeout_ms;
    c->next_id = 1;
    c->last_send_ms = mono_ms();
    c->bev = open_bufferevent(base, fd, tls, host, err, cap);
    if (!c->bev) {
        close(fd);
        free(c);
        return NULL;
    }
    c->reply_timer = evtimer_new(base, on_reply_timeout, c);
    if (!c->reply_timer) {
        chat_conn_free(c);
        return NULL;
    }
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    return c;
}

void chat_conn_free(struct chat_conn *c)
{
    if (!c)
        return;
    while (c->head) {
        struct pending *p = c->head;
        c->head = p->next;
        free(p->name);
        json_decref(p->req);
        free(p);
    }
    if (c->reply_timer)
        event_free(c->reply_timer);
    if (c->keepalive_timer)
        event_free(c->keepalive_timer);
    bufferevent_free(c->bev);
    free(c);
}

int chat_conn_send(struct chat_conn *c, enum chat_cmd cmd, const char *name, json_t *req)
{
    if (c->failed)
        return -1;
    struct pending *p = calloc(1, sizeof(*p));
    if (!p)
        return -1;
    p->id = c->next_id;
    p->cmd = cmd;
    p->deadline_ms = mono_ms() + c->reply_timeout_ms;
    if (name && !(p->name = strdup(name))) {
        free(p);
        return -1;
    }
    char *text = NULL;
    if (json_object_set_new(req, "id", json_integer(p->id)) != 0 ||
        !(text = json_dumps(req, JSON_COMPACT)) ||
        bufferevent_write(c->bev, text, strlen(text)) != 0) {
        free(text);
        free(p->name);
        free(p);
        return -1;
    }
    free(text);
    p->req = json_incref(req);
    c->next_id++;
    c->last_send_ms = mono_ms();
    if (c->tail)
        c->tail->next = p;
    else
        c->head = p;
    c->tail = p;
    c->n_pending++;
    if (c->head == p)
        arm_reply_timer(c);
    return 0;
}

int chat_conn_send_oneway(struct chat_conn *c, json_t *req)
{
    if (c->failed)
        return -1;
    char *text = json_dumps(req, JSON_COMPACT);
    int rc = text && bufferevent_write(c->bev, text, strlen(text)) == 0 ? 0 : -1;
    free(text);
    if (rc == 0)
        c->last_send_ms = mono_ms();
    return rc;
}

size_t chat_conn_pending(const struct chat_conn *c)
{
    return c->n_pending;
}

int chat_conn_keepalive(struct chat_conn *c, int interval_ms)
{
    if (!c->keepalive_timer) {
        c->keepalive_timer = event_new(c->base, -1, EV_PERSIST, on_keepalive, c);
        if (!c->keepalive_timer)
            return -1;
    }
    c->keepalive_ms = interval_ms;
    /* Check four times per interval, so a ping goes out at most a quarter late. */
    int tick = interval_ms / 4 > 0 ? interval_ms / 4 : 1;
    struct timeval tv = {.tv_sec = tick / 1000, .tv_usec = (tick % 1000) * 1000};
    return evtimer_add(c->keepalive_timer, &tv);
}
