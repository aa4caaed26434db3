/* test_web_ws.c - the [web] listener end to end, against a real chatd on the sample
 * config and a real MariaDB: WebSocket users chatting with TCP users both ways, the
 * handshake's refusals (key, version, Origin, Upgrade, head size), RFC 6455 as a client
 * can get it wrong (unmasked, binary, oversized, bad UTF-8, fragments, garbage), the
 * keepalive, close codes, TLS, and the static files (index, 404, traversal, symbolic
 * links, headers). The client side is tests/support/ws_client.c. */
#include "chat_suite.h"
#include "chatd_proc.h"
#include "ws_client.h"

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WAIT_MS 10000

static char root[PATH_MAX];

/* A web root with an index, a script, a hidden file, a sub-folder and two symbolic
 * links: one out of the root, one inside it. */
static void make_root(void)
{
    ck_assert_int_eq(chatd_tmpdir_make(root, sizeof(root)), 0);
    ck_assert_int_eq(chatd_file_write(root, "index.html", "<h1>chatd</h1>\n", NULL, 0), 0);
    ck_assert_int_eq(chatd_file_write(root, "app.js", "console.log(1);\n", NULL, 0), 0);
    ck_assert_int_eq(chatd_file_write(root, ".secret", "hidden\n", NULL, 0), 0);
    char path[PATH_MAX + 32], target[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/sub", root);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    ck_assert_int_eq(chatd_file_write(path, "page.html", "<p>sub</p>\n", NULL, 0), 0);
    snprintf(path, sizeof(path), "%s/passwd", root);
    ck_assert_int_eq(symlink("/etc/passwd", path), 0);
    snprintf(path, sizeof(path), "%s/alias.js", root);
    snprintf(target, sizeof(target), "%s/app.js", root);
    ck_assert_int_eq(symlink(target, path), 0);
}

static void start_web(const char *const *sets)
{
    make_root();
    start_chat_web(sets, root, 0, NULL, 0);
}

static struct ws_client *ws_connect(void)
{
    struct chatd_proc *p = chat_proc();
    struct ws_client *c = ws_client_connect(p->host, p->web_port, 0);
    ck_assert_msg(c != NULL, "no WebSocket to chatd on port %d", p->web_port);
    return c;
}

static struct ws_client *ws_open_raw(void)
{
    struct chatd_proc *p = chat_proc();
    struct ws_client *c = ws_client_open(p->host, p->web_port, 0);
    ck_assert_ptr_nonnull(c);
    return c;
}

/* Send a request and return the next message, which must be its reply with `result`. */
static json_t *ws_call(struct ws_client *c, const char *result, const char *request)
{
    ck_assert_int_eq(ws_client_send_text(c, request), 0);
    json_t *reply = ws_client_read_json(c, WAIT_MS);
    ck_assert_msg(reply != NULL, "no reply to %s", request);
    const char *got = json_string_value(json_object_get(reply, "result"));
    ck_assert_msg(got && strcmp(got, result) == 0, "sent %s, want result %s, got %s", request,
                  result, check_dump(reply));
    return reply;
}

static void ws_expect(struct ws_client *c, const char *result, const char *request)
{
    json_decref(ws_call(c, result, request));
}

/* Register `user` and log in on c. */
static void ws_login(struct ws_client *c, const char *user)
{
    char req[256];
    snprintf(req, sizeof(req), "{\"cmd\":\"register\",\"user\":\"%s\",\"passwd\":\"%s\"}", user,
             PASSWD);
    ws_expect(c, "success", req);
    snprintf(req, sizeof(req), "{\"cmd\":\"login\",\"user\":\"%s\",\"passwd\":\"%s\"}", user,
             PASSWD);
    ws_expect(c, "success", req);
}

static struct ws_client *ws_user(const char *user)
{
    struct ws_client *c = ws_connect();
    ws_login(c, user);
    return c;
}

/* A new WebSocket client still gets its ping answered (after whatever a test did). */
static void expect_still_serving(void)
{
    struct ws_client *c = ws_connect();
    ws_expect(c, "success", "{\"cmd\":\"ping\"}");
    ws_client_close(c);
}

static void ws_expect_private(struct ws_client *c, const char *from, const char *text)
{
    json_t *msg = ws_client_read_json(c, WAIT_MS);
    ck_assert_ptr_nonnull(msg);
    check_private(msg, from, text, 0);
    json_decref(msg);
}

/* The HTTP answer to `request` on a fresh connection: its status; head and body out. */
static int http(const char *request, char *head, size_t head_cap, char *body, size_t body_cap)
{
    struct ws_client *c = ws_open_raw();
    ck_assert_int_eq(ws_client_send_raw(c, request, strlen(request)), 0);
    int status = ws_client_read_head(c, head, head_cap, WAIT_MS);
    const char *length = strstr(head, "Content-Length: ");
    size_t n = length ? (size_t)atol(length + 16) : 0;
    ck_assert_uint_lt(n, body_cap);
    body[0] = '\0';
    if (!strncmp(request, "GET", 3))
        ck_assert_int_eq(ws_client_read_body(c, body, n, WAIT_MS), 0);
    ws_client_close(c);
    return status;
}

static int get(const char *path, char *head, size_t cap, char *body, size_t body_cap)
{
    char req[2048];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path);
    return http(req, head, cap, body, body_cap);
}

START_TEST(a_websocket_user_and_a_tcp_user_chat_both_ways)
{
    start_web(NULL);
    struct ws_client *alice = ws_user("alice");
    struct test_client *bob = new_user("bob");
    ws_expect(alice, "success",
              "{\"cmd\":\"private_chat\",\"user_to\":\"bob\",\"text\":\"hi bob, from a browser\"}");
    expect_private(bob, "alice", "hi bob, from a browser", 0);
    send_private(bob, "alice", "hi alice, from nc", "success");
    ws_expect_private(alice, "bob", "hi alice, from nc");
    /* The same generic errors as over TCP, and the id kept. */
    json_t *reply = ws_call(alice, "unknown_cmd", "{\"cmd\":\"dance\",\"id\":7}");
    ck_assert_int_eq(json_integer_value(json_object_get(reply, "id")), 7);
    json_decref(reply);
    ws_expect(alice, "success", "{\"cmd\":\"ping\"}");
    expect_quiet(bob);
    ws_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

START_TEST(handshakes_that_are_refused)
{
    start_web(NULL);
    struct chatd_proc *p = chat_proc();
    char host[96], own[128], head[4096];
    snprintf(host, sizeof(host), "%s:%d", p->host, p->web_port);
    snprintf(own, sizeof(own), "http://%s", host);
    struct {
        const char *origin;
        const char *extra;
        int status;
    } cases[] = {
        {own, NULL, 101},
        {NULL, NULL, 101}, /* not a browser */
        {"http://evil.example", NULL, 403},
        {"https://" /* scheme differs */, NULL, 403},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ws_client *c = ws_open_raw();
        char origin[256];
        snprintf(origin, sizeof(origin), "%s%s", cases[i].origin ? cases[i].origin : "",
                 i == 3 ? host : "");
        int status = ws_client_handshake(c, host, cases[i].origin ? origin : NULL, cases[i].extra,
                                         head, sizeof(head));
        ck_assert_msg(status == cases[i].status, "case %zu: %d\n%s", i, status, head);
        ws_client_close(c);
    }
    /* A page reached by a DNS name whose Origin matches its Host: another site's name
     * may point here (DNS rebinding); such a name must be listed in allowed_origins. */
    struct ws_client *rebound = ws_open_raw();
    char rebound_host[96], rebound_origin[128];
    snprintf(rebound_host, sizeof(rebound_host), "rebound.example:%d", p->web_port);
    snprintf(rebound_origin, sizeof(rebound_origin), "http://%s", rebound_host);
    ck_assert_int_eq(
        ws_client_handshake(rebound, rebound_host, rebound_origin, NULL, head, sizeof(head)), 403);
    ws_client_close(rebound);
    /* An upgrade anywhere but /ws. */
    struct ws_client *elsewhere = ws_open_raw();
    elsewhere->path = "/chat";
    ck_assert_int_eq(ws_client_handshake(elsewhere, host, own, NULL, head, sizeof(head)), 404);
    ws_client_close(elsewhere);
    /* Requests written out in full. */
    struct {
        const char *request;
        int status;
    } raw[] = {
        {"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Version: 13\r\n\r\n",
         400}, /* no key */
        {"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
         426}, /* bad version */
        {"GET /ws HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
         "Sec-WebSocket-Version: 13\r\n\r\n",
         426}, /* no Upgrade */
        {"GET /ws HTTP/1.0\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
         400}, /* HTTP/1.0 */
        {"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
         400}, /* no Host */
        {"POST /ws HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", 405},
        {"DELETE /index.html HTTP/1.1\r\nHost: h\r\n\r\n", 405},
        {"GET / HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n", 400},
        {"BREW /pot HTCPCP/1.0\r\n\r\n", 400},
    };
    char body[256];
    for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
        int status = http(raw[i].request, head, sizeof(head), body, sizeof(body));
        ck_assert_msg(status == raw[i].status, "request %zu: %d\n%s", i, status, head);
    }
    /* A head over 8 KiB, and more than 64 header lines. */
    char *big = malloc(20000);
    strcpy(big, "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: ");
    memset(big + strlen(big), 'a', 9000);
    strcpy(big + 33 + 9000, "\r\n\r\n");
    ck_assert_int_eq(http(big, head, sizeof(head), body, sizeof(body)), 431);
    strcpy(big, "GET / HTTP/1.1\r\nHost: h\r\n");
    for (int i = 0; i < 70; i++)
        sprintf(big + strlen(big), "X-%d: 1\r\n", i);
    strcat(big, "\r\n");
    ck_assert_int_eq(http(big, head, sizeof(head), body, sizeof(body)), 400);
    free(big);
    /* The server still serves. */
    expect_still_serving();
    stop_chat();
}
END_TEST

START_TEST(allowed_origins_replaces_the_own_origin)
{
    const char *sets[] = {"web.allowed_origins=https://chat.example.org, http://other:1", NULL};
    start_web(sets);
    struct chatd_proc *p = chat_proc();
    char host[96], own[128], head[4096];
    snprintf(host, sizeof(host), "%s:%d", p->host, p->web_port);
    snprintf(own, sizeof(own), "http://%s", host);
    const char *origins[] = {"https://chat.example.org", "HTTP://OTHER:1", own};
    int want[] = {101, 101, 403};
    for (size_t i = 0; i < 3; i++) {
        struct ws_client *c = ws_open_raw();
        int status = ws_client_handshake(c, host, origins[i], NULL, head, sizeof(head));
        ck_assert_msg(status == want[i], "origin %s: %d", origins[i], status);
        ws_client_close(c);
    }
    stop_chat();
}
END_TEST

/* Close codes: each case on a connection of its own, the server goes on serving. */
START_TEST(protocol_errors_end_with_their_close_codes)
{
    const char *sets[] = {"server.max_frame_bytes=1024", NULL};
    start_web(sets);
    struct ws_client *c;

    c = ws_connect(); /* unmasked */
    ck_assert_int_eq(ws_client_send_frame(c, 1, WS_OP_TEXT, "{\"cmd\":\"ping\"}", 14, 0), 0);
    ck_assert_int_eq(ws_client_read_close(c, WAIT_MS), 1002);
    ws_client_close(c);

    c = ws_connect(); /* binary */
    ck_assert_int_eq(ws_client_send_frame(c, 1, WS_OP_BINARY, "{\"cmd\":\"ping\"}", 14, 1), 0);
    ck_assert_int_eq(ws_client_read_close(c, WAIT_MS), 1003);
    ws_client_close(c);

    c = ws_connect(); /* over max_frame_bytes, in one frame and in fragments */
    char *big = malloc(2000);
    memset(big, ' ', 2000);
    ck_assert_int_eq(ws_client_send_frame(c, 1, WS_OP_TEXT, big, 2000, 1), 0);
    ck_assert_int_eq(ws_client_read_close(c, WAIT_MS), 1009);
    ws_client_close(c);
    c = ws_connect();
    ck_assert_int_eq(ws_client_send_frame(c, 0, WS_OP_TEXT, big, 800, 1), 0);
    ck_assert_int_eq(ws_client_send_frame(c, 1, WS_OP_CONT, big, 800, 1), 0);
    ck_assert_int_eq(ws_client_read_close(c, WAIT_MS), 1009);
    ws_client_close(c);
    free(big);

    c = ws_connect(); /* not UTF-8 */
    ck_assert_int_eq(ws_client_send_frame(c, 1, WS_OP_TEXT, "{\"t\":\"\xc3\x28\"}", 10, 1), 0);
    ck_assert_int_eq(ws_client_read_close(c, WAIT_MS), 1007);
    ws_client_close(c);

    /* Control frames as RFC 6455 5.5 forbids them: fragmented, over 125 bytes, a close
     * payload of one byte. */
    char control[126];
    memset(control, 'x', sizeof(control));
    c = ws_connect();
    ck_assert_int_eq(ws_client_send_frame(c, 0, WS_OP_PING, "x", 1, 1), 0);
    ck_assert_int_eq(ws_client_read_close(c, WAIT_MS), 1002);
    ws_client_close(c);
    c = ws_connect();
    ck_assert_int_eq(ws_client_send_frame(c, 1, WS_OP_PING, control, sizeof(control), 1), 0);
    ck_assert_int_eq(ws_client_read_close(c, WAIT_MS), 1002);
    ws_client_close(c);
    c = ws_connect();
    ck_assert_int_eq(ws_client_send_frame(c, 1, WS_OP_CLOSE, "\x03", 1, 1), 0);
    ck_assert_int_eq(ws_client_read_close(c, WAIT_MS), 1002);
    ws_client_close(c);

    c = ws_connect(); /* the client closes: the server answers in kind */
    ck_assert_int_eq(ws_client_send_frame(c, 1, WS_OP_CLOSE, "\x03\xe8", 2, 1), 0);
    ck_assert_int_eq(ws_client_read_close(c, WAIT_MS), 1000);
    struct ws_frame f;
    ck_assert_int_eq(ws_client_read_frame(c, &f, WAIT_MS), 0);
    ws_client_close(c);

    c = ws_connect();
    ws_expect(c, "success", "{\"cmd\":\"ping\"}");
    ws_client_close(c);
    stop_chat();
}
END_TEST

/* A protocol error right behind a request: the close frame goes out, and the connection
 * ends once the request is answered (its reply goes nowhere after the close), not when
 * the client gives up or a flush times out (5 s). One write, so that both come in one
 * read: the session then took the request and the end of the stream in one go. */
START_TEST(a_protocol_error_behind_a_request_ends_the_connection)
{
    start_web(NULL);
    for (int i = 0; i < 3; i++) {
        struct ws_client *c = ws_connect();
        /* Masked with a key of zeros: the payload as it is. A ping request, then a
         * frame with a reserved opcode. */
        const char request[] = "{\"cmd\":\"ping\"}";
        unsigned char frames[64] = {0x81, 0x80 | (sizeof(request) - 1), 0, 0, 0, 0};
        memcpy(frames + 6, request, sizeof(request) - 1);
        const unsigned char reserved[] = {0x83, 0x80, 0, 0, 0, 0};
        memcpy(frames + 6 + sizeof(request) - 1, reserved, sizeof(reserved));
        ck_assert_int_eq(ws_client_send_raw(c, frames, 6 + sizeof(request) - 1 + sizeof(reserved)),
                         0);
        ck_assert_int_eq(ws_client_read_close(c, WAIT_MS), 1002);
        struct ws_frame f;
        ck_assert_msg(ws_client_read_frame(c, &f, 2000) == 0,
                      "the connection was still open 2 s after the close frame");
        ws_client_close(c);
    }
    expect_still_serving();
    stop_chat();
}
END_TEST

/* One JSON value per message: two, none or half of one is bad_json and a close, after
 * the replies to what came before; a bad value is bad_json as over TCP. */
START_TEST(a_message_must_hold_one_json_value)
{
    start_web(NULL);
    const char *bad[] = {"{\"cmd\":\"ping\"}{\"cmd\":\"ping\"}", "", "  ",
                         "{\"cmd\":", "{\"cmd\":x}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ws_client *c = ws_connect();
        ck_assert_int_eq(ws_client_send_text(c, "{\"cmd\":\"ping\",\"id\":1}"), 0);
        ck_assert_int_eq(ws_client_send_text(c, bad[i]), 0);
        json_t *reply = ws_client_read_json(c, WAIT_MS);
        ck_assert_msg(reply != NULL, "case %zu: no ping_reply", i);
        check_json_str(reply, "cmd", "ping_reply");
        json_decref(reply);
        reply = ws_client_read_json(c, WAIT_MS);
        ck_assert_msg(reply != NULL, "case %zu: no error", i);
        check_json_str(reply, "cmd", "error");
        check_json_str(reply, "result", "bad_json");
        json_decref(reply);
        ck_assert_int_eq(ws_client_read_close(c, WAIT_MS), 1000);
        ws_client_close(c);
    }
    /* Whitespace around the one value is fine, and so is a bare number's bad_request. */
    struct ws_client *c = ws_connect();
    ws_expect(c, "success", " \n{\"cmd\":\"ping\"}\r\n ");
    ws_expect(c, "bad_request", "42");
    ws_client_close(c);
    stop_chat();
}
END_TEST

/* Fragments of one message, with a ping between them, make one request; the ping is
 * answered with its payload. */
START_TEST(fragments_and_pings)
{
    start_web(NULL);
    struct ws_client *c = ws_connect();
    c->auto_pong = 0;
    ck_assert_int_eq(ws_client_send_frame(c, 0, WS_OP_TEXT, "{\"cmd\":\"pi", 10, 1), 0);
    ck_assert_int_eq(ws_client_send_frame(c, 1, WS_OP_PING, "beat", 4, 1), 0);
    ck_assert_int_eq(ws_client_send_frame(c, 0, WS_OP_CONT, "ng\",\"id\"", 8, 1), 0);
    ck_assert_int_eq(ws_client_send_frame(c, 1, WS_OP_CONT, ":3}", 3, 1), 0);
    struct ws_frame f;
    ck_assert_int_eq(ws_client_read_frame(c, &f, WAIT_MS), 1);
    ck_assert_int_eq(f.opcode, WS_OP_PONG);
    ck_assert_str_eq((const char *)f.payload, "beat");
    json_t *reply = ws_client_read_json(c, WAIT_MS);
    ck_assert_ptr_nonnull(reply);
    check_json_str(reply, "cmd", "ping_reply");
    ck_assert_int_eq(json_integer_value(json_object_get(reply, "id")), 3);
    json_decref(reply);
    ws_client_close(c);
    stop_chat();
}
END_TEST

/* The server pings; a client that answers stays, one that does not is closed. */
START_TEST(the_keepalive_closes_a_client_that_does_not_pong)
{
    const char *sets[] = {"web.ping_interval=1", "web.pong_timeout=3", NULL};
    start_web(sets);
    struct ws_client *quiet = ws_connect();
    quiet->auto_pong = 0;
    struct ws_client *alive = ws_connect();
    struct ws_frame f;
    ck_assert_int_eq(ws_client_read_frame(quiet, &f, WAIT_MS), 1);
    ck_assert_int_eq(f.opcode, WS_OP_PING);
    /* `alive` answers the pings it reads between its requests. */
    int code = -1;
    for (int i = 0; i < 200 && code < 0; i++) {
        ws_expect(alive, "success", "{\"cmd\":\"ping\"}");
        code = ws_client_read_close(quiet, 100);
    }
    ck_assert_int_eq(code, 1001);
    chatd_proc_wait_log(chat_proc(), "no WebSocket pong within", 1, WAIT_MS);
    ws_expect(alive, "success", "{\"cmd\":\"ping\"}");
    ws_client_close(quiet);
    ws_client_close(alive);
    stop_chat();
}
END_TEST

/* A client that only answers the keepalive's pings (a page that listens) is active:
 * its pongs hold off the idle timeout, on the loop thread and on an I/O thread alike. */
START_TEST(pongs_hold_off_the_idle_timeout)
{
    const char *sets[] = {"server.idle_timeout=2", "web.ping_interval=1", "web.pong_timeout=3",
                          NULL};
    start_web(sets);
    struct ws_client *listener = ws_connect();
    ws_expect(listener, "success", "{\"cmd\":\"ping\"}");
    /* It answers each ping, and sends nothing else for three idle timeouts. */
    listener->auto_pong = 0;
    struct ws_frame f;
    int frames = 0;
    long long until = chatd_now_ms() + 6000;
    while (chatd_now_ms() < until) {
        int rc = ws_client_read_frame(listener, &f, 200);
        ck_assert_msg(rc != 0, "the connection ended after %d pings", frames);
        if (rc < 0)
            continue; /* nothing within 200 ms */
        ck_assert_msg(f.opcode == WS_OP_PING, "got opcode %d after %d pings", f.opcode, frames);
        ck_assert_int_eq(ws_client_send_frame(listener, 1, WS_OP_PONG, f.payload, f.len, 1), 0);
        frames++;
    }
    ck_assert_int_ge(frames, 3);
    listener->auto_pong = 1;
    ws_expect(listener, "success", "{\"cmd\":\"ping\"}");
    ws_client_close(listener);
    stop_chat();
}
END_TEST

/* Garbage on one connection ends that one only. */
START_TEST(a_client_sending_garbage_does_not_disturb_the_others)
{
    start_web(NULL);
    struct ws_client *alice = ws_user("alice");
    struct ws_client *carol = ws_user("carol");
    struct ws_client *bad = ws_connect();
    unsigned char junk[4096];
    srand(14);
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (unsigned char)rand();
    junk[0] = 0x81; /* a text frame whose length says more than comes */
    ws_client_send_raw(bad, junk, sizeof(junk));
    ws_expect(alice, "success",
              "{\"cmd\":\"private_chat\",\"user_to\":\"carol\",\"text\":\"still here\"}");
    ws_expect_private(carol, "alice", "still here");
    ws_client_close(bad);
    ws_client_close(alice);
    ws_client_close(carol);
    stop_chat();
}
END_TEST

START_TEST(static_files_are_served_from_the_root_only)
{
    start_web(NULL);
    char head[8192], body[4096];
    ck_assert_int_eq(get("/", head, sizeof(head), body, sizeof(body)), 200);
    ck_assert_str_eq(body, "<h1>chatd</h1>\n");
    const char *headers[] = {"Content-Type: text/html; charset=utf-8",
                             "Content-Security-Policy: default-src 'self'; connect-src 'self'",
                             "connect-src 'self' ws: wss:",
                             "frame-ancestors 'none'",
                             "X-Content-Type-Options: nosniff",
                             "Referrer-Policy: no-referrer",
                             "Cache-Control: no-cache",
                             "ETag: \"",
                             "Last-Modified: "};
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++)
        ck_assert_msg(strstr(head, headers[i]), "no %s in\n%s", headers[i], head);
    ck_assert_int_eq(get("/app.js", head, sizeof(head), body, sizeof(body)), 200);
    ck_assert_ptr_nonnull(strstr(head, "Content-Type: text/javascript"));
    ck_assert_int_eq(get("/sub/page.html?x=1", head, sizeof(head), body, sizeof(body)), 200);
    ck_assert_str_eq(body, "<p>sub</p>\n");
    /* 404s carry the headers too. */
    ck_assert_int_eq(get("/nothing.html", head, sizeof(head), body, sizeof(body)), 404);
    ck_assert_ptr_nonnull(strstr(head, "X-Content-Type-Options: nosniff"));
    const char *refused[] = {
        "/../etc/passwd",
        "/%2e%2e/etc/passwd",
        "/sub/../../etc/passwd",
        "/sub/%2E%2E/index.html",
        "/passwd",
        "/alias.js",
        "/.secret",
        "/sub",
        "//etc/passwd",
        "/%00",
        "/..%2fetc%2fpasswd",
        "/sub/..",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        int status = get(refused[i], head, sizeof(head), body, sizeof(body));
        ck_assert_msg(status == 404 || status == 400, "%s: %d", refused[i], status);
        ck_assert_msg(!strstr(body, "root:"), "%s served /etc/passwd", refused[i]);
    }
    ck_assert_int_eq(get("etc/passwd", head, sizeof(head), body, sizeof(body)), 400);
    stop_chat();
}
END_TEST

/* Keep-alive, HEAD and If-None-Match on one connection. */
START_TEST(a_browser_revalidates_over_one_connection)
{
    start_web(NULL);
    struct ws_client *c = ws_open_raw();
    char head[8192], body[256], req[512];
    const char *get_index = "GET /index.html HTTP/1.1\r\nHost: h\r\n\r\n";
    ck_assert_int_eq(ws_client_send_raw(c, get_index, strlen(get_index)), 0);
    ck_assert_int_eq(ws_client_read_head(c, head, sizeof(head), WAIT_MS), 200);
    ck_assert_int_eq(ws_client_read_body(c, body, 15, WAIT_MS), 0);
    char etag[64] = "";
    const char *at = strstr(head, "ETag: ");
    ck_assert_ptr_nonnull(at);
    sscanf(at + 6, "%63[^\r]", etag);
    snprintf(req, sizeof(req), "GET /index.html HTTP/1.1\r\nHost: h\r\nIf-None-Match: %s\r\n\r\n",
             etag);
    ck_assert_int_eq(ws_client_send_raw(c, req, strlen(req)), 0);
    ck_assert_int_eq(ws_client_read_head(c, head, sizeof(head), WAIT_MS), 304);
    const char *head_req = "HEAD /app.js HTTP/1.1\r\nHost: h\r\n\r\n";
    ck_assert_int_eq(ws_client_send_raw(c, head_req, strlen(head_req)), 0);
    ck_assert_int_eq(ws_client_read_head(c, head, sizeof(head), WAIT_MS), 200);
    ck_assert_ptr_nonnull(strstr(head, "Content-Length: 16"));
    /* Then the same connection upgrades. */
    char host[96];
    snprintf(host, sizeof(host), "%s:%d", chat_proc()->host, chat_proc()->web_port);
    ck_assert_int_eq(ws_client_handshake(c, host, NULL, NULL, head, sizeof(head)), 101);
    ws_expect(c, "success", "{\"cmd\":\"ping\"}");
    ws_client_close(c);
    stop_chat();
}
END_TEST

START_TEST(websocket_over_tls)
{
    char cert[PATH_MAX + 16];
    make_root();
    start_chat_web(NULL, root, 1, cert, sizeof(cert));
    struct chatd_proc *p = chat_proc();
    struct ws_client *alice = ws_client_connect(p->host, p->web_port, 1);
    ck_assert_ptr_nonnull(alice);
    ws_login(alice, "alice");
    struct test_client *bob = new_user("bob");
    send_private(bob, "alice", "over wss", "success");
    ws_expect_private(alice, "bob", "over wss");
    /* Plain HTTP on the TLS port gets nothing. */
    struct ws_client *plain = ws_client_open(p->host, p->web_port, 0);
    char head[512];
    const char *get_index = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    ws_client_send_raw(plain, get_index, strlen(get_index));
    ck_assert_int_eq(ws_client_read_head(plain, head, sizeof(head), WAIT_MS), -1);
    ws_client_close(plain);
    ws_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

/* A page load takes several connections for its files: only a WebSocket counts against
 * [limits] connections_per_address; refusals are HTTP answers a browser understands. */
START_TEST(limits_refuse_with_http_answers)
{
    const char *sets[] = {"limits.connections_per_address=4/1h", NULL};
    start_web(sets);
    struct chatd_proc *p = chat_proc();
    char host[96], head[4096], body[256];
    snprintf(host, sizeof(host), "%s:%d", p->host, p->web_port);
    for (int i = 0; i < 12; i++) {
        int got = get("/app.js", head, sizeof(head), body, sizeof(body));
        ck_assert_msg(got == 200, "file %d: %d\n%s", i, got, head);
    }
    int status = 101;
    for (int i = 0; i < 6 && status == 101; i++) {
        struct ws_client *c = ws_open_raw();
        status = ws_client_handshake(c, host, NULL, NULL, head, sizeof(head));
        ws_client_close(c);
    }
    ck_assert_msg(status == 429, "%d\n%s", status, head);
    ck_assert_ptr_nonnull(strstr(head, "\r\nRetry-After: "));
    ck_assert_ptr_nonnull(strstr(head, "\r\nConnection: close\r\n"));
    ck_assert_ptr_nonnull(strstr(head, "\r\nX-Frame-Options: DENY\r\n"));
    stop_chat();

    const char *busy[] = {"server.max_connections=3", NULL};
    start_web(busy);
    struct ws_client *held[6] = {0};
    status = 101;
    for (int i = 0; i < 6 && status == 101; i++) {
        held[i] = ws_open_raw();
        status = ws_client_handshake(held[i], host, NULL, NULL, head, sizeof(head));
    }
    ck_assert_msg(status == 503, "%d\n%s", status, head);
    ck_assert_ptr_nonnull(strstr(head, "\r\nRetry-After: 1\r\n"));
    for (int i = 0; i < 6; i++)
        if (held[i])
            ws_client_close(held[i]);
    stop_chat();
}
END_TEST

/* A message may come in fragments, but not in more than 256: each costs the server a
 * chunk of memory far larger than a byte. The others are not disturbed. */
START_TEST(a_message_in_too_many_fragments_is_closed_with_1009)
{
    start_web(NULL);
    struct ws_client *c = ws_connect();
    ck_assert_int_eq(ws_client_send_frame(c, 0, WS_OP_TEXT, "{", 1, 1), 0);
    for (int i = 0; i < 300; i++)
        if (ws_client_send_frame(c, 0, WS_OP_CONT, " ", 1, 1) != 0)
            break; /* closed already */
    ck_assert_int_eq(ws_client_read_close(c, WAIT_MS), 1009);
    ws_client_close(c);
    expect_still_serving();
    stop_chat();
}
END_TEST

/* A client that sends pings and never reads makes the server queue pongs: past a bound
 * it is disconnected instead of growing the server's memory. */
START_TEST(a_client_that_never_reads_its_pongs_is_disconnected)
{
    start_web(NULL);
    struct ws_client *c = ws_connect();
    char payload[125];
    memset(payload, 'x', sizeof(payload));
    /* 50 MB of pongs unless the server gives up on this client, which makes a send fail
     * once it has closed. */
    int closed = 0;
    for (int i = 0; i < 400000 && !closed; i++)
        closed = ws_client_send_frame(c, 1, WS_OP_PING, payload, sizeof(payload), 1) != 0;
    ck_assert_msg(closed, "the server kept a client that never reads its pongs");
    ws_client_close(c);
    expect_still_serving();
    stop_chat();
}
END_TEST

/* The request head must be whole within request_timeout, however slowly its bytes
 * trickle in (a time without bytes would be reset by each one). */
START_TEST(a_request_head_sent_a_byte_at_a_time_is_cut_at_request_timeout)
{
    static const char *const sets[] = {"web.request_timeout=1", NULL};
    start_web(sets);
    struct ws_client *c = ws_open_raw();
    const char head[] =
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    int closed = 0;
    /* 40 bytes 200 ms apart: 8 s, well past the 1 s the head may take. */
    for (size_t i = 0; i < 40 && !closed; i++) {
        closed = ws_client_send_raw(c, head + i, 1) != 0;
        chatd_sleep_ms(200);
    }
    ck_assert_msg(closed, "a head trickling in for 8 s was still being read");
    ws_client_close(c);
    stop_chat();
}
END_TEST

static Suite *web_ws_suite(void)
{
    Suite *s = suite_create("web_ws");
    TCase *tc = tcase_create("web");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, a_websocket_user_and_a_tcp_user_chat_both_ways);
    tcase_add_test(tc, handshakes_that_are_refused);
    tcase_add_test(tc, allowed_origins_replaces_the_own_origin);
    tcase_add_test(tc, protocol_errors_end_with_their_close_codes);
    tcase_add_test(tc, a_protocol_error_behind_a_request_ends_the_connection);
    tcase_add_test(tc, a_message_must_hold_one_json_value);
    tcase_add_test(tc, fragments_and_pings);
    tcase_add_test(tc, the_keepalive_closes_a_client_that_does_not_pong);
    tcase_add_test(tc, pongs_hold_off_the_idle_timeout);
    tcase_add_test(tc, a_client_sending_garbage_does_not_disturb_the_others);
    tcase_add_test(tc, static_files_are_served_from_the_root_only);
    tcase_add_test(tc, a_browser_revalidates_over_one_connection);
    tcase_add_test(tc, websocket_over_tls);
    tcase_add_test(tc, limits_refuse_with_http_answers);
    tcase_add_test(tc, a_message_in_too_many_fragments_is_closed_with_1009);
    tcase_add_test(tc, a_client_that_never_reads_its_pongs_is_disconnected);
    tcase_add_test(tc, a_request_head_sent_a_byte_at_a_time_is_cut_at_request_timeout);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(web_ws_suite());
}
