/* test_chat_tls.c - TLS listeners end to end, against a real chatd on the sample config
 * and a real MariaDB: chat between a TLS and a plain client, what the TLS port refuses
 * (plain bytes, TLS 1.1, a handshake that never comes), certificates re-read at a
 * reload, `openssl s_client`, and a TLS listener chatd cannot start. See chat_suite.h
 * for the server and the helpers; every certificate is made at run time. */
#include "chat_suite.h"
#include "chatd_proc.h"
#include "tls_files.h"

#include <check.h>
#include <limits.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char cert[PATH_MAX + 16], key[PATH_MAX + 16];

/* Log in (success) on a TLS connection, registering first. */
static struct test_client *tls_user(const char *user)
{
    struct test_client *c = connect_tls_client(cert);
    do_register(c, user, PASSWD, "success");
    json_decref(do_login(c, user, PASSWD, "success"));
    return c;
}

START_TEST(a_tls_client_and_a_plain_client_chat)
{
    start_chat_tls(NULL, cert, key, sizeof(cert));
    struct test_client *alice = tls_user("alice");
    ck_assert_ptr_null(test_client_tls_compression(alice));
    struct test_client *bob = new_user("bob");
    send_private(alice, "bob", "hi bob, over TLS", "success");
    expect_private(bob, "alice", "hi bob, over TLS", 0);
    send_private(bob, "alice", "hi alice, in clear", "success");
    expect_private(alice, "bob", "hi alice, in clear", 0);
    expect_quiet(alice);
    expect_quiet(bob);
    test_client_close(alice);
    test_client_close(bob);
    stop_chat();
}
END_TEST

/* With I/O threads, TLS users log in and chat as on the loop, and their sessions' TLS
 * is a thread's: with the loop thread stopped, alice's message still leaves her socket
 * (decrypted and parsed there), and is delivered once the loop goes on. */
START_TEST(tls_users_chat_with_their_sessions_on_the_io_threads)
{
    unsetenv("CHATD_TEST_IO_THREADS");
    const char *sets[] = {"server.io_threads=2", NULL};
    start_chat_tls(sets, cert, key, sizeof(cert));
    struct test_client *alice = tls_user("alice");
    struct test_client *bob = tls_user("bob");
    struct test_client *carol = new_user("carol");
    group_cmd(alice, "create_group", "tlsroom", "success");
    group_cmd(bob, "join_group", "tlsroom", "success");
    group_cmd(carol, "join_group", "tlsroom", "success");
    send_group(alice, "tlsroom", "hello room", "success");
    expect_group(bob, "tlsroom", "alice", "hello room", 0);
    expect_group(carol, "tlsroom", "alice", "hello room", 0);
    send_private(carol, "bob", "hi bob", "success");
    expect_private(bob, "carol", "hi bob", 0);

    struct chatd_proc *p = chat_proc();
    ck_assert(chatd_proc_loop_stop(p) == 0);
    int sent = test_client_send_str(alice, "{\"cmd\":\"private_chat\",\"user_to\":\"bob\","
                                           "\"text\":\"while the loop was stopped\"}") == 0;
    int read = sent && test_client_wait_peer_read(alice, 3000) == 0;
    ck_assert(chatd_proc_loop_resume(p) == 0);
    ck_assert_msg(read, "with the loop thread stopped, nothing read alice's TLS request");
    json_t *reply = check_read_json(alice);
    check_json_str(reply, "result", "success");
    json_decref(reply);
    expect_private(bob, "alice", "while the loop was stopped", 0);
    expect_quiet(alice);
    expect_quiet(bob);
    expect_quiet(carol);
    test_client_close(alice);
    test_client_close(bob);
    test_client_close(carol);
    stop_chat();
}
END_TEST

/* As on a plain connection, requests sent just before the client's end of stream (its
 * close_notify, then its FIN) are answered before chatd closes. */
START_TEST(a_tls_client_that_closes_its_side_gets_its_last_replies)
{
    start_chat_tls(NULL, cert, key, sizeof(cert));
    struct test_client *c = connect_tls_client(cert);
    check_send_str(c, "{\"cmd\":\"ping\",\"id\":1}{\"cmd\":\"ping\",\"id\":2}");
    ck_assert_int_eq(test_client_shutdown_write(c), 0);
    for (int id = 1; id <= 2; id++) {
        json_t *reply = check_read_json(c);
        check_json_str(reply, "cmd", "ping_reply");
        ck_assert_int_eq(json_integer_value(json_object_get(reply, "id")), id);
        json_decref(reply);
    }
    ck_assert_int_eq(test_client_expect_eof(c, TEST_CLIENT_TIMEOUT_MS), 1);
    test_client_close(c);
    stop_chat();
}
END_TEST

/* Plain bytes on the TLS port end that connection only; TLS 1.1 is refused. */
START_TEST(the_tls_port_refuses_plain_bytes_and_old_versions)
{
    start_chat_tls(NULL, cert, key, sizeof(cert));
    struct chatd_proc *p = chat_proc();
    struct test_client *alice = tls_user("alice");
    struct test_client *plain = test_client_connect(p->host, p->tls_port, 0);
    ck_assert_ptr_nonnull(plain);
    check_send_str(plain, "{\"cmd\":\"ping\",\"id\":1}\n");
    ck_assert_msg(test_client_wait_closed(plain, TEST_CLIENT_TIMEOUT_MS) == 0,
                  "plain bytes on the TLS port got an answer or no close");
    test_client_close(plain);
    chatd_proc_wait_log(p, "TLS handshake with 127.0.0.1:", 1, TEST_CLIENT_TIMEOUT_MS);

    const struct test_tls_options tls11 = {.ca_file = cert, .max_version = TLS1_1_VERSION};
    struct test_client *old = test_client_connect_tls(p->host, p->tls_port, &tls11, 1);
    ck_assert_msg(old == NULL, "a TLS 1.1 client was let in");
    const struct test_tls_options tls12 = {.ca_file = cert, .max_version = TLS1_2_VERSION};
    struct test_client *modern = test_client_connect_tls(p->host, p->tls_port, &tls12, 0);
    ck_assert_ptr_nonnull(modern);
    ck_assert_str_eq(SSL_get_version(modern->ssl), "TLSv1.2");
    ck_assert_ptr_null(test_client_tls_compression(modern));
    expect_quiet(modern);
    test_client_close(modern);
    expect_quiet(alice); /* the others were not harmed */
    test_client_close(alice);
    stop_chat();
}
END_TEST

/* A connection that never starts its handshake is closed at [tls] handshake_timeout
 * (the idle limit, 300 s, would keep it far longer). */
START_TEST(a_handshake_that_does_not_come_is_cut_off)
{
    const char *sets[] = {"tls.handshake_timeout=1", NULL};
    start_chat_tls(sets, cert, key, sizeof(cert));
    struct chatd_proc *p = chat_proc();
    struct test_client *silent = test_client_connect(p->host, p->tls_port, 0);
    ck_assert_ptr_nonnull(silent);
    ck_assert_msg(test_client_wait_closed(silent, 15000) == 0, "the silent connection stayed open");
    test_client_close(silent);
    chatd_proc_wait_log(p, "not finished within 1s", 1, TEST_CLIENT_TIMEOUT_MS);
    stop_chat();
}
END_TEST

static void fingerprint(struct test_client *c, char out[65])
{
    ck_assert_int_eq(test_client_tls_peer_fingerprint(c, out), 0);
}

START_TEST(a_reload_serves_a_new_certificate_to_new_connections_only)
{
    start_chat_tls(NULL, cert, key, sizeof(cert));
    struct chatd_proc *p = chat_proc();
    struct test_client *alice = tls_user("alice");
    char before[65], after[65], again[65];
    fingerprint(alice, before);

    /* Renew: a new certificate and key at the same paths, then SIGHUP. */
    char dir[PATH_MAX], new_cert[PATH_MAX + 16], new_key[PATH_MAX + 16];
    ck_assert_int_eq(chatd_tmpdir_make(dir, sizeof(dir)), 0);
    ck_assert_int_eq(test_tls_make_certificate(dir, "renewed", new_cert, new_key, sizeof(new_cert)),
                     0);
    ck_assert_int_eq(rename(new_cert, cert), 0);
    ck_assert_int_eq(rename(new_key, key), 0);
    ck_assert_int_eq(chatd_proc_signal(p, SIGHUP), 0);
    chatd_proc_wait_log(p, "[tls] certificate and key re-read", 1, TEST_CLIENT_TIMEOUT_MS);
    struct test_client *bob = tls_user("bob");
    fingerprint(bob, after);
    ck_assert_str_ne(before, after);
    /* The session from before goes on with the old certificate's keys. */
    send_private(alice, "bob", "still here", "success");
    expect_private(bob, "alice", "still here", 0);

    /* A broken certificate refuses the reload; the renewed one keeps serving. */
    ck_assert_int_eq(chatd_file_write(dir, "broken.crt", "not a certificate\n", NULL, 0), 0);
    char broken[PATH_MAX + 16];
    snprintf(broken, sizeof(broken), "%s/broken.crt", dir);
    ck_assert_int_eq(rename(broken, cert), 0);
    ck_assert_int_eq(chatd_proc_signal(p, SIGHUP), 0);
    chatd_proc_wait_log(p, "reload refused, the running config is kept: [tls] certificate", 1,
                        TEST_CLIENT_TIMEOUT_MS);
    const struct test_tls_options unchecked = {0};
    struct test_client *carol = test_client_connect_tls(p->host, p->tls_port, &unchecked, 0);
    ck_assert_ptr_nonnull(carol);
    fingerprint(carol, again);
    ck_assert_str_eq(after, again);
    expect_quiet(carol);
    expect_quiet(alice);
    test_client_close(carol);
    test_client_close(bob);
    test_client_close(alice);
    stop_chat();
}
END_TEST

/* The stock TLS client, verifying the certificate: a ping is answered. The bad frame
 * after it makes chatd close, which ends s_client. */
START_TEST(openssl_s_client_gets_a_ping_answered)
{
    start_chat_tls(NULL, cert, key, sizeof(cert));
    char command[2 * PATH_MAX];
    snprintf(command, sizeof(command),
             "printf '{\"cmd\":\"ping\",\"id\":7}\\n]' | timeout 30 openssl s_client -quiet "
             "-connect 127.0.0.1:%d -CAfile '%s' -verify_return_error -verify_hostname localhost "
             "2>/dev/null",
             chat_proc()->tls_port, cert);
    FILE *out = popen(command, "r");
    ck_assert_ptr_nonnull(out);
    char got[4096] = "";
    size_t n = fread(got, 1, sizeof(got) - 1, out);
    got[n] = '\0';
    pclose(out);
    ck_assert_msg(strstr(got, "\"cmd\":\"ping_reply\"") && strstr(got, "\"id\":7"),
                  "s_client got: %s", got);
    stop_chat();
}
END_TEST

/* chatd -t (and so chatd's start) refuses certificates it cannot use, saying why. */
START_TEST(chatd_refuses_to_start_with_an_unusable_certificate)
{
    char dir[PATH_MAX], other_cert[PATH_MAX + 16], other_key[PATH_MAX + 16];
    ck_assert_int_eq(chatd_tmpdir_make(dir, sizeof(dir)), 0);
    ck_assert_int_eq(test_tls_make_certificate(dir, "a", cert, key, sizeof(cert)), 0);
    ck_assert_int_eq(test_tls_make_certificate(dir, "b", other_cert, other_key, sizeof(cert)), 0);
    const struct {
        const char *cert, *key, *want;
    } cases[] = {
        {cert, other_key, "does not belong to [tls] certificate"},
        {"/nonexistent/server.crt", key, "[tls] certificate /nonexistent/server.crt: cannot read"},
        {cert, cert, "[tls] key"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char cert_set[PATH_MAX + 64], key_set[PATH_MAX + 64];
        snprintf(cert_set, sizeof(cert_set), "tls.certificate=%s", cases[i].cert);
        snprintf(key_set, sizeof(key_set), "tls.key=%s", cases[i].key);
        const char *args[] = {"-t",
                              "-c",
                              CHATD_SOURCE_DIR "/config/chatd.conf",
                              "-l",
                              "127.0.0.1:1,127.0.0.1:2 tls",
                              "-s",
                              cert_set,
                              "-s",
                              key_set,
                              "-s",
                              "database.enable=no",
                              NULL};
        struct chatd_run_result r;
        ck_assert_int_eq(chatd_run(args, 20000, &r), 0);
        ck_assert_msg(r.status != 0 && strstr(r.err, cases[i].want),
                      "case %zu: want a refusal with '%s', got %d: %s", i, cases[i].want, r.status,
                      r.err);
        chatd_run_result_free(&r);
    }
}
END_TEST

static Suite *chat_tls_suite(void)
{
    Suite *s = suite_create("chat_tls");
    TCase *tc = tcase_create("tls");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, a_tls_client_and_a_plain_client_chat);
    tcase_add_test(tc, a_tls_client_that_closes_its_side_gets_its_last_replies);
    tcase_add_test(tc, tls_users_chat_with_their_sessions_on_the_io_threads);
    tcase_add_test(tc, the_tls_port_refuses_plain_bytes_and_old_versions);
    tcase_add_test(tc, a_handshake_that_does_not_come_is_cut_off);
    tcase_add_test(tc, a_reload_serves_a_new_certificate_to_new_connections_only);
    tcase_add_test(tc, openssl_s_client_gets_a_ping_answered);
    tcase_add_test(tc, chatd_refuses_to_start_with_an_unusable_certificate);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chatd_proc_run_suite(chat_tls_suite());
}
