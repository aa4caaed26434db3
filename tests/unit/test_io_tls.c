/* test_io_tls.c - io_tls.c, the TLS calls of the I/O threads, against an OpenSSL client
 * over a socketpair whose buffers are small: a write the socket cannot take is given
 * again (its record kept at the head of the output, from wherever that is by then) and
 * the stream arrives whole; a read that must write (the KeyUpdate a client asks for,
 * while chatd's side is full) says so, and both go on once the client reads. These are
 * the waits the integration tests meet only by chance. */
#include "config.h"
#include "io_tls.h"
#include "tls_context.h"
#include "tls_files.h"

#include <check.h>
#include "chatd_proc.h"
#include <event2/buffer.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define STREAM_BYTES (1 << 20)

struct pair {
    char dir[PATH_MAX];
    SSL_CTX *server_ctx, *client_ctx;
    SSL *server, *client;
    int fds[2]; /* chatd's side, the client's */
};

static void nonblocking_small(int fd)
{
    int small = 4096;
    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
    ck_assert_int_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

/* A TLS 1.3 connection between io_tls (chatd's side) and an OpenSSL client. */
static void pair_open(struct pair *p)
{
    char cert[PATH_MAX + 32], key[PATH_MAX + 32], ciphers[] = "HIGH", err[256];
    ck_assert_int_eq(chatd_tmpdir_make(p->dir, sizeof(p->dir)), 0);
    ck_assert_int_eq(test_tls_make_certificate(p->dir, "server", cert, key, sizeof(cert)), 0);
    struct config_tls tls = {
        .certificate = cert, .key = key, .ciphers = ciphers, .min_version = 13};
    p->server_ctx = tls_context_new(&tls, err, sizeof(err));
    ck_assert_msg(p->server_ctx != NULL, "%s", err);
    p->client_ctx = SSL_CTX_new(TLS_client_method());
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, p->fds), 0);
    nonblocking_small(p->fds[0]);
    nonblocking_small(p->fds[1]);
    p->server = io_tls_new(p->server_ctx, p->fds[0]);
    p->client = SSL_new(p->client_ctx);
    ck_assert(p->server && p->client && SSL_set_fd(p->client, p->fds[1]));
    SSL_set_connect_state(p->client);
    char reason[128];
    int server_done = 0, client_done = 0;
    for (int round = 0; round < 100 && !(server_done && client_done); round++) {
        client_done = client_done || SSL_do_handshake(p->client) == 1;
        enum io_tls_wait wait = io_tls_handshake(p->server, reason, sizeof(reason));
        ck_assert_msg(wait != IO_TLS_FAILED, "handshake: %s", reason);
        server_done = wait == IO_TLS_NONE;
    }
    ck_assert(server_done && client_done);
    ck_assert_str_eq(SSL_get_version(p->server), "TLSv1.3");
}

static void pair_close(struct pair *p)
{
    io_tls_free(p->server, 1);
    SSL_free(p->client);
    SSL_CTX_free(p->server_ctx);
    SSL_CTX_free(p->client_ctx);
    close(p->fds[0]);
    close(p->fds[1]);
    chatd_tmpdir_remove(p->dir);
}

/* Lines numbered in order, STREAM_BYTES of them, into out and into `copy`. */
static void fill(struct evbuffer *out, char *copy)
{
    size_t len = 0;
    for (int i = 0; len < STREAM_BYTES; i++) {
        char line[64];
        int n = snprintf(line, sizeof(line), "{\"cmd\":\"line\",\"n\":%d}\n", i);
        size_t take = len + (size_t)n <= STREAM_BYTES ? (size_t)n : STREAM_BYTES - len;
        evbuffer_add(out, line, take);
        memcpy(copy + len, line, take);
        len += take;
    }
}

/* A pair, and STREAM_BYTES of numbered lines for chatd's side to send: out holds them,
 * sent a copy, got what the client has read of them so far (len bytes). */
struct stream {
    struct pair p;
    struct evbuffer *out;
    char *sent, *got;
    size_t len;
};

static void stream_open(struct stream *s)
{
    pair_open(&s->p);
    s->out = evbuffer_new();
    s->sent = malloc(STREAM_BYTES);
    s->got = malloc(STREAM_BYTES + 1);
    ck_assert(s->out && s->sent && s->got);
    s->len = 0;
    fill(s->out, s->sent);
}

static void stream_close(struct stream *s)
{
    evbuffer_free(s->out);
    free(s->sent);
    free(s->got);
    pair_close(&s->p);
}

/* What the client can read now, appended to s->got. */
static void client_reads(struct stream *s)
{
    for (;;) {
        int n = SSL_read(s->p.client, s->got + s->len, (int)(STREAM_BYTES + 1 - s->len));
        if (n <= 0) {
            ck_assert_int_eq(SSL_get_error(s->p.client, n), SSL_ERROR_WANT_READ);
            return;
        }
        s->len += (size_t)n;
        ck_assert_uint_le(s->len, STREAM_BYTES);
    }
}

/* Write all of out as the I/O thread does: until the socket takes no more, and again
 * once the client has read; the record to give again is kept, whatever moves. */
START_TEST(a_write_the_socket_cannot_take_is_given_again_and_the_stream_is_whole)
{
    struct stream s;
    stream_open(&s);
    size_t retry = 0;
    int retries = 0;
    char reason[128];
    while (evbuffer_get_length(s.out) > 0) {
        enum io_tls_wait wait;
        ssize_t n =
            io_tls_write(s.p.server, s.out, 64 * 1024, &retry, &wait, reason, sizeof(reason));
        ck_assert_msg(n >= 0, "write: %s", reason);
        ck_assert(wait == IO_TLS_NONE || wait == IO_TLS_WANTS_WRITE);
        ck_assert_int_eq(wait == IO_TLS_WANTS_WRITE, retry > 0);
        ck_assert_uint_le(retry, 16384);
        retries += retry > 0;
        client_reads(&s);
    }
    client_reads(&s);
    ck_assert_int_gt(retries, 10);
    ck_assert_uint_eq(s.len, STREAM_BYTES);
    ck_assert(memcmp(s.got, s.sent, STREAM_BYTES) == 0);
    stream_close(&s);
}
END_TEST

/* A slow reader's cut-off (io_conn_cut_after_line) drops all of the output but the
 * record TLS waits to send: given again, it is the last the client gets. */
START_TEST(a_cut_keeps_the_record_that_waits)
{
    struct stream s;
    stream_open(&s);
    struct evbuffer *kept = evbuffer_new();
    ck_assert(kept != NULL);
    size_t retry = 0;
    char reason[128];
    enum io_tls_wait wait;
    ssize_t before =
        io_tls_write(s.p.server, s.out, SIZE_MAX, &retry, &wait, reason, sizeof(reason));
    ck_assert_int_ge(before, 0);
    ck_assert_int_eq(wait, IO_TLS_WANTS_WRITE);
    size_t waiting = retry;
    ck_assert_uint_gt(waiting, 0);
    ck_assert_int_eq(evbuffer_remove_buffer(s.out, kept, waiting), (int)waiting);
    evbuffer_drain(s.out, evbuffer_get_length(s.out));
    evbuffer_add_buffer(s.out, kept);
    while (evbuffer_get_length(s.out) > 0) {
        ssize_t n =
            io_tls_write(s.p.server, s.out, 64 * 1024, &retry, &wait, reason, sizeof(reason));
        ck_assert_msg(n >= 0, "write after the cut: %s", reason);
        client_reads(&s);
    }
    client_reads(&s);
    ck_assert_uint_eq(s.len, (size_t)before + waiting);
    ck_assert(memcmp(s.got, s.sent, s.len) == 0);
    evbuffer_free(kept);
    stream_close(&s);
}
END_TEST

/* The client asks for a key update while chatd's side is full: chatd's read of it must
 * send its own KeyUpdate, behind the record it could not send. Whatever OpenSSL waits
 * for, the read and the write each go on once the client reads, and the client gets
 * the whole stream, then the request is read. */
START_TEST(a_key_update_asked_for_behind_a_full_socket_is_answered)
{
    struct stream s;
    stream_open(&s);
    size_t retry = 0;
    char reason[128];
    enum io_tls_wait wait;
    ck_assert_int_ge(
        io_tls_write(s.p.server, s.out, SIZE_MAX, &retry, &wait, reason, sizeof(reason)), 0);
    ck_assert_int_eq(wait, IO_TLS_WANTS_WRITE);
    ck_assert_int_eq(SSL_key_update(s.p.client, SSL_KEY_UPDATE_REQUESTED), 1);
    static const char ping[] = "{\"cmd\":\"ping\"}\n";
    ck_assert_int_eq(SSL_write(s.p.client, ping, sizeof(ping) - 1), (int)sizeof(ping) - 1);
    char request[64];
    ssize_t n = -1;
    for (int round = 0; round < 100000 && n < 0; round++) {
        n = io_tls_read(s.p.server, request, sizeof(request), &wait, reason, sizeof(reason));
        ck_assert_msg(n != 0 && wait != IO_TLS_FAILED, "read: %s", reason);
        if (evbuffer_get_length(s.out) > 0) {
            enum io_tls_wait write_wait;
            ck_assert_int_ge(io_tls_write(s.p.server, s.out, 64 * 1024, &retry, &write_wait, reason,
                                          sizeof(reason)),
                             0);
        }
        client_reads(&s);
    }
    ck_assert_int_eq(n, (ssize_t)sizeof(ping) - 1);
    ck_assert(memcmp(request, ping, sizeof(ping) - 1) == 0);
    while (evbuffer_get_length(s.out) > 0) {
        ck_assert_int_ge(
            io_tls_write(s.p.server, s.out, 64 * 1024, &retry, &wait, reason, sizeof(reason)), 0);
        client_reads(&s);
    }
    client_reads(&s);
    ck_assert_uint_eq(s.len, STREAM_BYTES);
    ck_assert(memcmp(s.got, s.sent, STREAM_BYTES) == 0);
    stream_close(&s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("io_tls");
    TCase *tc = tcase_create("io_tls");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, a_write_the_socket_cannot_take_is_given_again_and_the_stream_is_whole);
    tcase_add_test(tc, a_cut_keeps_the_record_that_waits);
    tcase_add_test(tc, a_key_update_asked_for_behind_a_full_socket_is_answered);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
