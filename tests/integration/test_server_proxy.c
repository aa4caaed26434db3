/* test_server_proxy.c - the PROXY protocol on the real chatd ([server] proxy_protocol,
 * proxy_from; host/proxy_accept.c): clients behind one proxy address are limited by the
 * address their header gives (v1 and v2, IPv4 and IPv6), LOCAL keeps the proxy's own,
 * a source outside proxy_from and a bad, cut or late header close that connection only
 * (logged, counted in /metrics), the header comes before a TLS handshake, and a listener
 * without the PROXY protocol takes a PROXY line as the bad frame it is. */
#include "server_suite.h"
#include "tls_files.h"

#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Waits of the tests; none is a timing assertion. */
#define CLOSE_WAIT_MS 15000

static int admin_port;

static const unsigned char v2_signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                               0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* A v2 PROXY header for a TCP client at `address` (IPv4 or IPv6) port `port`, to
 * 127.0.0.1:8000 or [::1]:8000; NULL address: LOCAL. Returns its length. */
static size_t v2_header(unsigned char *out, const char *address, unsigned port)
{
    memcpy(out, v2_signature, 12);
    out[12] = address ? 0x21 : 0x20; /* PROXY or LOCAL */
    out[13] = 0x00;
    out[14] = 0;
    out[15] = 0;
    if (!address)
        return 16;
    int six = strchr(address, ':') != NULL;
    int af = six ? AF_INET6 : AF_INET;
    size_t n = six ? 16 : 4; /* bytes of one address */
    unsigned char *body = out + 16;
    out[13] = six ? 0x21 : 0x11;
    out[15] = (unsigned char)(2 * n + 4); /* two addresses, two ports */
    ck_assert_int_eq(inet_pton(af, address, body), 1);
    inet_pton(af, six ? "::1" : "127.0.0.1", body + n);
    const unsigned char ports[4] = {(unsigned char)(port >> 8), (unsigned char)port, 8000 >> 8,
                                    8000 & 0xFF};
    memcpy(body + 2 * n, ports, 4);
    return 16 + 2 * n + 4;
}

/* The v1 line for the same. */
static size_t v1_header(unsigned char *out, const char *address, unsigned port)
{
    int six = strchr(address, ':') != NULL;
    return (size_t)sprintf((char *)out, "PROXY %s %s %s %u 8000\r\n", six ? "TCP6" : "TCP4",
                           address, six ? "::1" : "127.0.0.1", port);
}

/* A connection to the proxied port that says it is from address:port (version 1 or 2). */
static struct test_client *via_proxy(int version, const char *address, unsigned port)
{
    unsigned char header[128];
    size_t len = version == 1 ? v1_header(header, address, port) : v2_header(header, address, port);
    struct test_client *c = test_client_connect(srv.host, srv.proxy_port, 0);
    ck_assert_ptr_nonnull(c);
    check_send(c, header, len);
    return c;
}

/* Start chatd with a proxied port (and an admin listener for /metrics), these [server]
 * lines, and real [limits] from `sets`. */
static void start_proxied(const char *server_conf, const char *const *sets)
{
    admin_port = test_free_port("127.0.0.1");
    char extra[128];
    snprintf(extra, sizeof(extra), "[admin]\nenable = yes\nlisten = 127.0.0.1:%d\n", admin_port);
    struct chatd_proc_options opts = {.server_conf = server_conf,
                                      .extra_conf = extra,
                                      .sets = sets,
                                      .real_limits = 1,
                                      .proxy_port = -1};
    ck_assert_msg(chatd_proc_start(&srv, &opts) == 0, "chatd did not start");
}

/* The value of one series of /metrics (its whole name, labels included). */
static long long metric(const char *series)
{
    char *text = test_http_get(admin_port, "/metrics");
    ck_assert_ptr_nonnull(text);
    char needle[160];
    snprintf(needle, sizeof(needle), "\n%s ", series);
    const char *at = strstr(text, needle);
    ck_assert_msg(at != NULL, "no %s in /metrics", series);
    long long value = atoll(at + strlen(needle));
    free(text);
    return value;
}

static const char *const one_each_at_most_two[] = {"log.level=debug",
                                                   "limits.connections_per_address=off",
                                                   "limits.max_connections_per_address=2", NULL};

/* Two clients of one address fill its limit of 2: a third of it is refused, while a
 * client of another address behind the same proxy gets in. */
static void assert_limited_apart(int version, const char *a, const char *b)
{
    struct test_client *first = via_proxy(version, a, 40001);
    assert_ping_works(first, 1);
    struct test_client *second = via_proxy(version, a, 40002);
    assert_ping_works(second, 2);
    struct test_client *third = via_proxy(version, a, 40003);
    expect_error(third, "rate_limited");
    assert_closed(third);
    struct test_client *other = via_proxy(version, b, 40004);
    assert_ping_works(other, 3);
    /* The sessions are the clients' own, in the log too. */
    char accepted[128];
    snprintf(accepted, sizeof(accepted),
             strchr(b, ':') ? "accepted from [%s]:40004" : "accepted from %s:40004", b);
    chatd_proc_wait_log(&srv, accepted, 1, TEST_CLIENT_TIMEOUT_MS);
    test_client_close(first);
    test_client_close(second);
    test_client_close(third);
    test_client_close(other);
}

START_TEST(clients_behind_one_proxy_are_limited_by_their_own_addresses)
{
    start_proxied("proxy_protocol = any\n", one_each_at_most_two);
    /* IPv6 addresses are limited by their /64: these are in different ones. */
    assert_limited_apart(1, "192.0.2.1", "192.0.2.2");
    assert_limited_apart(2, "198.51.100.1", "198.51.100.2");
    assert_limited_apart(1, "2001:db8:1::1", "2001:db8:2::1");
    assert_limited_apart(2, "2001:db8:3::1", "2001:db8:4::1");
    ck_assert_int_ge(metric("chatd_proxy_headers_total"), 16);
    stop();
}
END_TEST

/* LOCAL (a proxy's health check) is the proxy speaking for itself: its address counts. */
START_TEST(local_keeps_the_proxy_address)
{
    const char *const sets[] = {"limits.connections_per_address=off",
                                "limits.max_connections_per_address=1", NULL};
    start_proxied("proxy_protocol = v2\n", sets);
    unsigned char header[64];
    size_t len = v2_header(header, NULL, 0);
    struct test_client *check = test_client_connect(srv.host, srv.proxy_port, 0);
    check_send(check, header, len);
    assert_ping_works(check, 1);
    /* The proxy's one connection is in use: another of its own is refused... */
    struct test_client *again = test_client_connect(srv.host, srv.proxy_port, 0);
    check_send(again, header, len);
    expect_error(again, "rate_limited");
    /* ... and one for a client of it is not. */
    struct test_client *client = via_proxy(2, "192.0.2.9", 1234);
    assert_ping_works(client, 2);
    test_client_close(check);
    test_client_close(again);
    test_client_close(client);
    stop();
}
END_TEST

/* A v1 line where only v2 is taken, and a v2 header from outside proxy_from: closed
 * without a word, logged and counted; the proxy's clients are served meanwhile. */
START_TEST(wrong_version_and_untrusted_sources_are_closed)
{
    start_proxied("proxy_protocol = v2\nproxy_from = 127.0.0.1/32\n", NULL);
    struct test_client *v1 = via_proxy(1, "192.0.2.1", 1000);
    ck_assert_int_ge(test_client_wait_closed(v1, CLOSE_WAIT_MS), 0);
    unsigned char header[64];
    size_t len = v2_header(header, "192.0.2.1", 1000);
    struct test_client *stranger = test_client_connect_from(srv.host, srv.proxy_port, "127.0.0.2");
    ck_assert_ptr_nonnull(stranger);
    check_send(stranger, header, len);
    ck_assert_int_ge(test_client_wait_closed(stranger, CLOSE_WAIT_MS), 0);
    struct test_client *good = via_proxy(2, "192.0.2.1", 1000);
    assert_ping_works(good, 1);
    chatd_proc_wait_log(&srv, "on a PROXY listener: not a [server] proxy_from address", 1,
                        TEST_CLIENT_TIMEOUT_MS);
    chatd_proc_wait_log(&srv, "on a PROXY listener: a PROXY v1 header, where only v2", 1,
                        TEST_CLIENT_TIMEOUT_MS);
    ck_assert_int_eq(metric("chatd_proxy_refused_total{reason=\"untrusted_source\"}"), 1);
    ck_assert_int_eq(metric("chatd_proxy_refused_total{reason=\"malformed\"}"), 1);
    test_client_close(v1);
    test_client_close(stranger);
    test_client_close(good);
    stop();
}
END_TEST

/* Garbage, a header too large, one cut short by the end of the stream and one that never
 * ends close their own connections only; a session of the proxy goes on. */
START_TEST(bad_cut_and_slow_headers_close_only_their_connection)
{
    start_proxied("proxy_protocol = v2\nframe_timeout = 1\n", NULL);
    struct test_client *good = via_proxy(2, "192.0.2.1", 1000);
    assert_ping_works(good, 1);

    struct test_client *garbage = test_client_connect(srv.host, srv.proxy_port, 0);
    check_send_str(garbage, "{\"cmd\":\"ping\",\"id\":2}");
    ck_assert_int_ge(test_client_wait_closed(garbage, CLOSE_WAIT_MS), 0);

    unsigned char header[64];
    v2_header(header, "192.0.2.1", 1000);
    header[14] = 0x20; /* 8192 bytes to come: over PROXY_HEADER_MAX */
    struct test_client *large = test_client_connect(srv.host, srv.proxy_port, 0);
    check_send(large, header, 16);
    ck_assert_int_ge(test_client_wait_closed(large, CLOSE_WAIT_MS), 0);

    size_t len = v2_header(header, "192.0.2.1", 1000);
    struct test_client *cut = test_client_connect(srv.host, srv.proxy_port, 0);
    check_send(cut, header, len - 5);
    ck_assert_int_eq(test_client_shutdown_write(cut), 0);
    ck_assert_int_ge(test_client_wait_closed(cut, CLOSE_WAIT_MS), 0);

    struct test_client *slow = test_client_connect(srv.host, srv.proxy_port, 0);
    check_send(slow, header, 10);
    assert_ping_works(good, 3);
    /* More, still not whole: the deadline holds (the send may find it closed already). */
    test_client_send(slow, header + 10, 4, TEST_CLIENT_TIMEOUT_MS);
    ck_assert_int_ge(test_client_wait_closed(slow, CLOSE_WAIT_MS), 0);

    assert_ping_works(good, 4);
    ck_assert_int_eq(metric("chatd_proxy_refused_total{reason=\"malformed\"}"), 2);
    ck_assert_int_eq(metric("chatd_proxy_refused_total{reason=\"truncated\"}"), 1);
    ck_assert_int_eq(metric("chatd_proxy_refused_total{reason=\"timeout\"}"), 1);
    ck_assert_int_eq(metric("chatd_proxy_waiting"), 0);
    chatd_proc_wait_log(&srv, "on a PROXY listener: no whole PROXY header in time", 1,
                        TEST_CLIENT_TIMEOUT_MS);
    test_client_close(garbage);
    test_client_close(large);
    test_client_close(cut);
    test_client_close(slow);
    test_client_close(good);
    stop();
}
END_TEST

/* A flood of bad headers is counted whole, but logged only a few lines a window (10
 * every 10 s): 30 of them cannot all be logged unless the test took over 20 s. */
START_TEST(a_flood_of_bad_headers_is_logged_a_few_lines_at_a_time)
{
    enum { FLOOD = 30 };
    start_proxied("proxy_protocol = v2\n", NULL);
    for (int i = 0; i < FLOOD; i++) {
        struct test_client *c = test_client_connect(srv.host, srv.proxy_port, 0);
        ck_assert_ptr_nonnull(c);
        check_send_str(c, "GET / HTTP/1.0\r\n\r\n");
        ck_assert_int_ge(test_client_wait_closed(c, CLOSE_WAIT_MS), 0);
        test_client_close(c);
    }
    ck_assert_int_eq(metric("chatd_proxy_refused_total{reason=\"malformed\"}"), FLOOD);
    chatd_proc_wait_log(&srv, "on a PROXY listener: no PROXY header", 10, TEST_CLIENT_TIMEOUT_MS);
    size_t logged = chatd_proc_log_count(&srv, "on a PROXY listener: no PROXY header");
    ck_assert_msg(logged < FLOOD, "all %zu refusals were logged", logged);
    stop();
}
END_TEST

/* The header, then the TLS handshake: the session is the client's. */
START_TEST(the_header_comes_before_the_tls_handshake)
{
    struct server_tls tf;
    server_tls_make(&tf);
    const char *const sets[] = {tf.cert_set, tf.key_set, "log.level=debug", NULL};
    struct chatd_proc_options opts = {
        .server_conf = "proxy_protocol = v2\n", .sets = sets, .proxy_tls_port = -1};
    ck_assert_msg(chatd_proc_start(&srv, &opts) == 0, "chatd did not start");
    unsigned char header[64];
    size_t len = v2_header(header, "2001:db8::77", 4321);
    struct test_client *c = test_client_connect(srv.host, srv.proxy_tls_port, 0);
    ck_assert_ptr_nonnull(c);
    check_send(c, header, len);
    const struct test_tls_options tls = {.ca_file = tf.cert};
    ck_assert_int_eq(test_client_start_tls(c, &tls, 0), 0);
    assert_ping_works(c, 1);
    chatd_proc_wait_log(&srv, "accepted from [2001:db8::77]:4321 (tls)", 1, TEST_CLIENT_TIMEOUT_MS);
    test_client_close(c);
    stop();
    server_tls_remove(&tf);
}
END_TEST

static void assert_proxy_line_is_a_bad_frame(int port)
{
    struct test_client *c = test_client_connect(srv.host, port, 0);
    ck_assert_ptr_nonnull(c);
    check_send_str(c, "PROXY TCP4 192.0.2.1 127.0.0.1 1000 8000\r\n{\"cmd\":\"ping\",\"id\":1}");
    expect_error(c, "bad_json");
    assert_closed(c);
    test_client_close(c);
}

/* Without the PROXY protocol (off, or a listener marked direct) the line is no header. */
START_TEST(a_listener_without_the_protocol_takes_a_proxy_line_as_a_bad_frame)
{
    start();
    assert_proxy_line_is_a_bad_frame(srv.port);
    stop();
    start_proxied("proxy_protocol = any\n", NULL);
    assert_proxy_line_is_a_bad_frame(srv.port);
    stop();
}
END_TEST

static Suite *proxy_suite(void)
{
    Suite *suite = suite_create("server_proxy");
    TCase *tc = tcase_create("proxy");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, clients_behind_one_proxy_are_limited_by_their_own_addresses);
    tcase_add_test(tc, local_keeps_the_proxy_address);
    tcase_add_test(tc, wrong_version_and_untrusted_sources_are_closed);
    tcase_add_test(tc, bad_cut_and_slow_headers_close_only_their_connection);
    tcase_add_test(tc, a_flood_of_bad_headers_is_logged_a_few_lines_at_a_time);
    tcase_add_test(tc, the_header_comes_before_the_tls_handshake);
    tcase_add_test(tc, a_listener_without_the_protocol_takes_a_proxy_line_as_a_bad_frame);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(void)
{
    return chatd_proc_run_suite(proxy_suite());
}
