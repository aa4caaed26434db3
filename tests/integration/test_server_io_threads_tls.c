/* test_server_io_threads_tls.c - black-box tests of TLS sessions on the I/O threads
 * ([server] io_threads >= 1): their handshakes, SSL_read and SSL_write happen there
 * (docs/architecture.md, "I/O threads"), with the limits, timeouts and answers they have
 * on the loop thread. Each test shows its TLS session's I/O is a thread's, not only that
 * it works: with chatd's loop thread stopped (ptrace), a thread still reads the session's
 * request off the socket. Each test starts its own chatd with the threads it names,
 * whatever CHATD_TEST_IO_THREADS says. */
#include "bad_frames.h"
#include "server_suite.h"

#include <check.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct server_tls tf;

/* chatd with ping and pusher, a TLS listener, and these lines in [server]; a TLS
 * handshake must progress every handshake_s seconds (short only where a test waits for
 * it: under a sanitizer on a loaded machine a handshake can take a second). */
static void start_tls_within(const char *server_conf, int handshake_s)
{
    unsetenv("CHATD_TEST_IO_THREADS");
    server_tls_make(&tf);
    char handshake[64];
    snprintf(handshake, sizeof(handshake), "tls.handshake_timeout=%d", handshake_s);
    const char *const sets[] = {tf.cert_set, tf.key_set, handshake, NULL};
    struct chatd_proc_options opts = {.server_conf = server_conf, .sets = sets, .tls = 1};
    start_with_pusher_opts(&opts);
}

static void start_tls(const char *server_conf)
{
    start_tls_within(server_conf, 10);
}

static void stop_tls(void)
{
    stop();
    server_tls_remove(&tf);
}

static struct test_client *connect_tls(int rcvbuf)
{
    struct test_client *c = test_client_connect(srv.host, srv.tls_port, rcvbuf);
    ck_assert(c != NULL);
    const struct test_tls_options tls = {.ca_file = tf.cert};
    ck_assert_msg(test_client_start_tls(c, &tls, 0) == 0, "no TLS handshake with chatd");
    return c;
}

/* chatd has accepted every connection made before this: two round trips through the
 * loop, the first of which may end in the turn that accepts them. */
static void loop_has_accepted(struct test_client *on_loop)
{
    assert_ping_works(on_loop, 900);
    assert_ping_works(on_loop, 901);
}

static void loop_stop(void)
{
    ck_assert(chatd_proc_loop_stop(&srv) == 0);
}

static void loop_resume(void)
{
    ck_assert(chatd_proc_loop_resume(&srv) == 0);
}

/* With the loop thread stopped, c's request still leaves its socket: a thread decrypts
 * and parses it (a session on the loop would leave it there). Its answer comes once the
 * loop goes on. */
static void assert_read_on_a_thread(struct test_client *c, int id)
{
    char req[64];
    snprintf(req, sizeof(req), "{\"cmd\":\"ping\",\"id\":%d}", id);
    loop_stop();
    int sent = test_client_send_str(c, req) == 0;
    int read = sent && test_client_wait_peer_read(c, 3000) == 0;
    loop_resume();
    ck_assert_msg(read, "with the loop thread stopped, nothing read the TLS session's request");
    json_t *reply = expect(c, "ping_reply", "success");
    assert_int_id(reply, id);
    json_decref(reply);
}

/* A TLS client's first flight (its ClientHello), made in memory; its length. */
static size_t client_hello(unsigned char *out, size_t cap)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    ck_assert(ctx != NULL);
    SSL *ssl = SSL_new(ctx);
    BIO *in = BIO_new(BIO_s_mem()), *wire = BIO_new(BIO_s_mem());
    ck_assert(ssl && in && wire);
    SSL_set_bio(ssl, in, wire);
    SSL_set_connect_state(ssl);
    ck_assert_int_eq(SSL_do_handshake(ssl), -1); /* it waits for the server */
    int n = BIO_read(wire, out, (int)cap);
    ck_assert_int_gt(n, 100);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    return (size_t)n;
}

/* The whole of a TLS session's life with the loop stopped: a thread answers the
 * ClientHello and finishes the handshake, reads the request, and writes a backlog of 8
 * MB (more than the kernel's buffers hold) to a client that reads it only now. */
START_TEST(a_tls_session_shakes_hands_reads_and_writes_with_the_loop_stopped)
{
    start_tls("io_threads = 1\nmax_output_bytes = 67108864\n");
    struct test_client *on_loop = connect_client();
    struct test_client *reader = connect_tls(4096);
    json_int_t session = session_of(reader);
    enum { PUSHES = 2000, SIZE = 4000 };
    flood(on_loop, session, PUSHES, SIZE);
    struct test_client *newcomer = test_client_connect(srv.host, srv.tls_port, 0);
    ck_assert(newcomer != NULL);
    loop_has_accepted(on_loop);

    loop_stop();
    const struct test_tls_options tls = {.ca_file = tf.cert};
    int shook = test_client_start_tls(newcomer, &tls, 0) == 0;
    int read = shook && test_client_send_str(newcomer, "{\"cmd\":\"ping\",\"id\":7}") == 0 &&
               test_client_wait_peer_read(newcomer, 3000) == 0;
    int pushes = 0;
    char line[SIZE + 512];
    while (pushes < PUSHES && test_client_read_line(reader, line, sizeof(line), 5000) > 0)
        pushes += strstr(line, "\"cmd\":\"flood\"") != NULL;
    loop_resume();
    ck_assert_msg(shook, "no TLS handshake with the loop thread stopped");
    ck_assert_msg(read, "the request was not read with the loop thread stopped");
    ck_assert_msg(pushes == PUSHES, "%d of %d pushes came with the loop thread stopped", pushes,
                  PUSHES);
    json_t *reply = expect(newcomer, "ping_reply", "success");
    assert_int_id(reply, 7);
    json_decref(reply);
    assert_ping_works(reader, 1);
    test_client_close(newcomer);
    test_client_close(reader);
    test_client_close(on_loop);
    stop_tls();
}
END_TEST

/* TLS 1.3 key updates the client asks for, the second behind a backlog: chatd's read of
 * the KeyUpdate must write its own behind what it could not send yet. The client then
 * gets every push, then the pong. */
START_TEST(key_updates_are_answered_also_behind_a_backlog)
{
    start_tls("io_threads = 1\nmax_output_bytes = 67108864\n");
    struct test_client *on_loop = connect_client();
    struct test_client *c = connect_tls(4096);
    ck_assert_str_eq(SSL_get_version(c->ssl), "TLSv1.3");
    ck_assert_int_eq(SSL_key_update(c->ssl, SSL_KEY_UPDATE_REQUESTED), 1);
    assert_ping_works(c, 1);
    json_int_t session = session_of(c);
    enum { PUSHES = 1000, SIZE = 4000 };
    flood(on_loop, session, PUSHES, SIZE);
    ck_assert_int_eq(SSL_key_update(c->ssl, SSL_KEY_UPDATE_REQUESTED), 1);
    /* Read once the backlog is below the level at which the session resumes (its output
     * paused it), which the kernel's buffers may hold. */
    check_send_str(c, "{\"cmd\":\"ping\",\"id\":2}");
    int pushes = 0;
    char line[SIZE + 512];
    while (pushes < PUSHES && test_client_read_line(c, line, sizeof(line), 5000) > 0)
        pushes += strstr(line, "\"cmd\":\"flood\"") != NULL;
    ck_assert_int_eq(pushes, PUSHES);
    json_t *reply = expect(c, "ping_reply", "success");
    assert_int_id(reply, 2);
    json_decref(reply);
    assert_read_on_a_thread(c, 3);
    test_client_close(c);
    test_client_close(on_loop);
    stop_tls();
}
END_TEST

/* Pings written as TLS records of 1 to 13 bytes (frames split across records), then 40
 * in one record: every request is answered once, in order. */
START_TEST(frames_split_across_records_and_many_in_one_are_answered_in_order)
{
    start_tls("io_threads = 1\n");
    struct test_client *c = connect_tls(0);
    char batch[64 * 48];
    size_t len = 0;
    for (int i = 0; i < 64; i++)
        len += (size_t)sprintf(
            batch + len,
            i % 3 ? "{\"cmd\":\"ping\",\"id\":%d}" : "\n  {\"id\" : %d,\n \"cmd\":\"ping\"}\n", i);
    for (size_t sent = 0, piece = 1; sent < len; sent += piece, piece = piece % 13 + 1) {
        check_send(c, batch + sent, sent + piece <= len ? piece : len - sent);
        chatd_sleep_ms(1);
    }
    expect_pongs(c, 0, 64);
    send_pings(c, 100, 40);
    expect_pongs(c, 100, 40);
    assert_read_on_a_thread(c, 1);
    test_client_close(c);
    stop_tls();
}
END_TEST

/* A ping of about `size` bytes, padded. */
static size_t big_ping(char *out, int id, size_t size)
{
    int head = sprintf(out, "{\"cmd\":\"ping\",\"id\":%d,\"pad\":\"", id);
    memset(out + head, 'x', size - (size_t)head - 2);
    memcpy(out + size - 2, "\"}", 2);
    return size;
}

/* A frame near max_frame_bytes begun in one record fills the frame buffer (it holds one
 * frame at most), so the read of the next record takes only part of it: the rest, the
 * last pings, decrypted, waits in OpenSSL and not in the socket, and must still be read
 * and answered. */
START_TEST(what_a_record_leaves_decrypted_is_read_too)
{
    start_tls("io_threads = 1\nmax_frame_bytes = 20000\n");
    struct test_client *c = connect_tls(0);
    enum { PINGS = 200 };
    char *stream = malloc(25000 + PINGS * 40);
    ck_assert(stream != NULL);
    size_t len = big_ping(stream, 1, 6000);
    len += big_ping(stream + len, 2, 19000);
    for (int i = 0; i < PINGS; i++)
        len += (size_t)sprintf(stream + len, "{\"cmd\":\"ping\",\"id\":%d}", 3 + i);
    check_send(c, stream, len);
    free(stream);
    expect_pongs(c, 1, PINGS + 2);
    assert_read_on_a_thread(c, 1000);
    test_client_close(c);
    stop_tls();
}
END_TEST

/* Everything chatd sends a TLS client for `bytes` (one record), until it closes. */
static char *answers_to(const char *server_conf, int io_threads, const char *bytes)
{
    start_tls(server_conf);
    struct test_client *c = connect_tls(0);
    if (io_threads > 0)
        assert_read_on_a_thread(c, 1);
    check_send_str(c, bytes);
    char *all = test_client_read_to_eof(c, 10000);
    ck_assert_msg(all != NULL, "chatd did not answer and close");
    test_client_close(c);
    stop_tls();
    return all;
}

/* The same answers, byte for byte, with and without threads. */
START_TEST(bad_frames_get_the_answers_of_the_loop)
{
    bad_frames_assert_threads_answer_as_the_loop(answers_to);
}
END_TEST

/* A TLS client that reads nothing: its backlog passes max_output_bytes and it is cut off
 * after whole lines, the slow_reader error last, while the loop answers others at once. */
START_TEST(a_slow_tls_reader_is_cut_off_and_the_loop_stays_responsive)
{
    start_tls("io_threads = 2\nmax_output_bytes = 65536\n");
    struct test_client *other = connect_tls(0);
    struct test_client *slow = connect_tls(4096);
    json_int_t session = session_of(slow);
    flood(other, session, 2000, 1000);
    for (int i = 0; i < 20; i++) {
        long long since = chatd_now_ms();
        assert_ping_works(other, 10 + i);
        long long took = chatd_now_ms() - since;
        ck_assert_msg(took < 1000, "a ping took %lld ms beside a slow TLS reader", took);
    }
    json_t *last = NULL;
    for (;;) {
        json_t *msg = test_client_read_json(slow, 10000);
        if (!msg)
            break;
        json_decref(last);
        last = msg;
    }
    ck_assert_msg(last && check_json_str_is(last, "result", "slow_reader"),
                  "the cut-off client's last line was %s, not the slow_reader error",
                  check_dump(last));
    json_decref(last);
    test_client_close(slow);
    ck_assert_int_eq(chatd_proc_log_count(&srv, "it is not reading"), 1);
    assert_read_on_a_thread(other, 1);
    test_client_close(other);
    stop_tls();
}
END_TEST

/* A client that sends its ClientHello and goes silent: a thread answers it (the loop is
 * stopped meanwhile), and cuts it off at [tls] handshake_timeout, as the loop did. */
START_TEST(a_client_that_stalls_mid_handshake_is_cut_off)
{
    start_tls_within("io_threads = 1\n", 1);
    struct test_client *on_loop = connect_client();
    struct test_client *staller = test_client_connect(srv.host, srv.tls_port, 0);
    ck_assert(staller != NULL);
    loop_has_accepted(on_loop);
    unsigned char hello[4096];
    size_t len = client_hello(hello, sizeof(hello));
    loop_stop();
    int sent = test_client_send(staller, hello, len, 3000) == 0;
    int answered = sent && test_client_wait_readable(staller, 3000) == 1;
    loop_resume();
    ck_assert_msg(answered, "no ServerHello with the loop thread stopped");
    long long since = chatd_now_ms();
    ck_assert_msg(test_client_wait_closed(staller, 15000) >= 0,
                  "the stalled handshake stayed open");
    long long took = chatd_now_ms() - since;
    ck_assert_msg(took < 4000, "cut off after %lld ms, with handshake_timeout = 1", took);
    chatd_proc_wait_log(&srv, "not finished within 1s", 1, TEST_CLIENT_TIMEOUT_MS);
    test_client_close(staller);
    assert_ping_works(on_loop, 2);
    test_client_close(on_loop);
    stop_tls();
}
END_TEST

/* Clients that close or reset mid-handshake, and with a batch of requests being read,
 * parsed or answered: their threads free them, and the others are served. */
START_TEST(clients_that_close_mid_handshake_and_mid_batch_leave_the_others_served)
{
    start_tls("io_threads = 2\n");
    struct test_client *other = connect_tls(0);
    unsigned char hello[4096];
    size_t len = client_hello(hello, sizeof(hello));
    for (int i = 0; i < 10; i++) {
        struct test_client *half = test_client_connect(srv.host, srv.tls_port, 0);
        ck_assert(half != NULL);
        ck_assert_int_eq(test_client_send(half, hello, i % 2 ? len / 2 : len, 3000), 0);
        if (i % 2)
            test_client_reset(half);
        else
            test_client_close(half);
        struct test_client *batch = connect_tls(0);
        send_pings(batch, 0, 300);
        if (i % 2)
            test_client_reset(batch);
        else
            test_client_close(batch);
        assert_ping_works(other, i);
    }
    chatd_proc_wait_log(&srv, "TLS handshake with 127.0.0.1:", 10, TEST_CLIENT_TIMEOUT_MS);
    assert_read_on_a_thread(other, 100);
    test_client_close(other);
    stop_tls();
}
END_TEST

/* TLS and plain TCP clients on the same two threads at once, each pipelining: every
 * client gets its own replies, in order. */
START_TEST(tls_and_tcp_sessions_share_the_threads)
{
    start_tls("io_threads = 2\n");
    enum { EACH = 8, PIPELINED = 40 };
    struct test_client *secure[EACH], *plain[EACH];
    for (int i = 0; i < EACH; i++) {
        secure[i] = connect_tls(0);
        plain[i] = connect_client();
    }
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < EACH; i++) {
            send_pings(secure[i], round * 100, PIPELINED);
            send_pings(plain[i], round * 100, PIPELINED);
        }
        for (int i = 0; i < EACH; i++) {
            expect_pongs(secure[i], round * 100, PIPELINED);
            expect_pongs(plain[i], round * 100, PIPELINED);
        }
    }
    for (int i = 0; i < EACH; i++)
        assert_read_on_a_thread(secure[i], 1000 + i);
    for (int i = 0; i < EACH; i++) {
        test_client_close(secure[i]);
        test_client_close(plain[i]);
    }
    stop_tls();
}
END_TEST

static Suite *server_io_threads_tls_suite(void)
{
    Suite *s = suite_create("server_io_threads_tls");
    TCase *tc = tcase_create("io_threads_tls");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, a_tls_session_shakes_hands_reads_and_writes_with_the_loop_stopped);
    tcase_add_test(tc, key_updates_are_answered_also_behind_a_backlog);
    tcase_add_test(tc, frames_split_across_records_and_many_in_one_are_answered_in_order);
    tcase_add_test(tc, what_a_record_leaves_decrypted_is_read_too);
    tcase_add_test(tc, bad_frames_get_the_answers_of_the_loop);
    tcase_add_test(tc, a_slow_tls_reader_is_cut_off_and_the_loop_stays_responsive);
    tcase_add_test(tc, a_client_that_stalls_mid_handshake_is_cut_off);
    tcase_add_test(tc, clients_that_close_mid_handshake_and_mid_batch_leave_the_others_served);
    tcase_add_test(tc, tls_and_tcp_sessions_share_the_threads);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(server_io_threads_tls_suite());
}
