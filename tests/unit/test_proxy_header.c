/* test_proxy_header.c - Check suite for the PROXY header parser (host/proxy_header.c)
 * and the address prefixes of [server] proxy_from (host/cidr.c). */
#include "cidr.h"
#include "proxy_header.h"

#include "run_suite.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#define ANY (PROXY_V1 | PROXY_V2)

static const unsigned char signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                            0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* A v2 header: command byte, family byte, then `body` of n bytes. Returns its length. */
static size_t v2(unsigned char *out, unsigned char command, unsigned char family, const void *body,
                 size_t n)
{
    memcpy(out, signature, 12);
    out[12] = command;
    out[13] = family;
    out[14] = (unsigned char)(n >> 8);
    out[15] = (unsigned char)n;
    memcpy(out + 16, body, n);
    return 16 + n;
}

/* The IPv4 body: 192.0.2.7:40000 to 198.51.100.1:8000. */
static size_t inet_body(unsigned char *out)
{
    const unsigned char body[12] = {192, 0, 2, 7, 198, 51, 100, 1, 0x9C, 0x40, 0x1F, 0x40};
    memcpy(out, body, sizeof(body));
    return sizeof(body);
}

/* Parse a copy of exactly len bytes (so ASan sees a read past them). */
static enum proxy_header_status parse(const void *bytes, size_t len, unsigned versions,
                                      struct proxy_header *h, const char **why)
{
    void *copy = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, bytes, len);
    enum proxy_header_status st = proxy_header_parse(copy, len, versions, h, why);
    free(copy);
    return st;
}

static void assert_source(const struct proxy_header *h, const char *want_address, unsigned port)
{
    char text[INET6_ADDRSTRLEN];
    ck_assert_int_eq(h->has_source, 1);
    if (h->source.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)&h->source;
        inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
        ck_assert_uint_eq(ntohs(in->sin_port), port);
        ck_assert_uint_eq(h->source_len, sizeof(*in));
    } else {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)&h->source;
        ck_assert_int_eq(h->source.ss_family, AF_INET6);
        inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
        ck_assert_uint_eq(ntohs(in6->sin6_port), port);
        ck_assert_uint_eq(h->source_len, sizeof(*in6));
    }
    ck_assert_str_eq(text, want_address);
}

/* Every proper prefix of a whole header needs more; the whole is DONE with its length. */
static void assert_prefixes_need_more(const void *bytes, size_t len, unsigned versions)
{
    struct proxy_header h;
    const char *why;
    for (size_t n = 0; n < len; n++)
        ck_assert_msg(parse(bytes, n, versions, &h, &why) == PROXY_HEADER_NEED_MORE,
                      "a prefix of %zu of %zu bytes: %s", n, len, why ? why : "done");
    ck_assert_int_eq(parse(bytes, len, versions, &h, &why), PROXY_HEADER_DONE);
    ck_assert_uint_eq(h.len, len);
}

static void assert_bad(const void *bytes, size_t len, unsigned versions)
{
    struct proxy_header h;
    const char *why = NULL;
    ck_assert_int_eq(parse(bytes, len, versions, &h, &why), PROXY_HEADER_BAD);
    ck_assert_ptr_nonnull(why);
}

START_TEST(v1_tcp4_gives_the_source_and_stops_at_crlf)
{
    const char *text = "PROXY TCP4 192.0.2.7 198.51.100.1 40000 8000\r\n{\"cmd\":\"ping\"}";
    struct proxy_header h;
    const char *why;
    ck_assert_int_eq(parse(text, strlen(text), ANY, &h, &why), PROXY_HEADER_DONE);
    ck_assert_int_eq(h.version, 1);
    ck_assert_uint_eq(h.len, strlen("PROXY TCP4 192.0.2.7 198.51.100.1 40000 8000\r\n"));
    assert_source(&h, "192.0.2.7", 40000);
    assert_prefixes_need_more(text, h.len, PROXY_V1);
}
END_TEST

START_TEST(v1_tcp6_gives_the_source)
{
    const char *text = "PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n";
    struct proxy_header h;
    const char *why;
    ck_assert_int_eq(parse(text, strlen(text), PROXY_V1, &h, &why), PROXY_HEADER_DONE);
    assert_source(&h, "2001:db8::1", 65535);
}
END_TEST

START_TEST(v1_unknown_keeps_the_peer)
{
    const char *texts[] = {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"};
    for (size_t i = 0; i < 2; i++) {
        struct proxy_header h;
        const char *why;
        ck_assert_int_eq(parse(texts[i], strlen(texts[i]), ANY, &h, &why), PROXY_HEADER_DONE);
        ck_assert_uint_eq(h.len, strlen(texts[i]));
        ck_assert_int_eq(h.has_source, 0);
    }
}
END_TEST

START_TEST(v1_refuses_what_the_spec_does_not_allow)
{
    const char *bad[] = {
        "PROXY TCP4 192.0.2.7 198.51.100.1 40000 8000\n",     /* LF alone */
        "PROXY TCP4 192.0.2.7 198.51.100.1 40000 8000\rX",    /* CR alone */
        "PROXY TCP4 2001:db8::1 198.51.100.1 40000 8000\r\n", /* v6 address as TCP4 */
        "PROXY TCP6 192.0.2.7 2001:db8::2 1 2\r\n",           /* v4 address as TCP6 */
        "PROXY TCP4 192.0.2.7 198.51.100.1 65536 8000\r\n",   /* port too large */
        "PROXY TCP4 192.0.2.7 198.51.100.1 040000 8000\r\n",  /* leading zero */
        "PROXY TCP4 192.0.2.7 198.51.100.1 40000\r\n",        /* a port missing */
        "PROXY TCP4 192.0.2.7 198.51.100.1 40000 8000 9\r\n", /* a field too many */
        "PROXY TCP4  192.0.2.7 198.51.100.1 40000 8000\r\n",  /* two spaces */
        "PROXY UDP4 192.0.2.7 198.51.100.1 40000 8000\r\n",   /* no such protocol */
        "PROXY\r\n",
        "PROXZ TCP4",
        "{\"cmd\":\"ping\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_bad(bad[i], strlen(bad[i]), ANY);
}
END_TEST

START_TEST(v1_line_longer_than_107_bytes_is_refused)
{
    char line[200] = "PROXY UNKNOWN ";
    memset(line + strlen(line), 'x', 150);
    line[164] = '\0';
    /* Without its end, 106 bytes still need more; 107 are too many. */
    struct proxy_header h;
    const char *why;
    ck_assert_int_eq(parse(line, 106, PROXY_V1, &h, &why), PROXY_HEADER_NEED_MORE);
    assert_bad(line, 107, PROXY_V1);
    /* A line of exactly 107 bytes with its CRLF is taken; 108 are not. */
    memcpy(line + 105, "\r\n", 2);
    ck_assert_int_eq(parse(line, 107, PROXY_V1, &h, &why), PROXY_HEADER_DONE);
    ck_assert_uint_eq(h.len, 107);
    line[105] = 'x';
    memcpy(line + 106, "\r\n", 2);
    assert_bad(line, 108, PROXY_V1);
}
END_TEST

START_TEST(v2_inet_gives_the_source)
{
    unsigned char buf[64], body[12];
    size_t len = v2(buf, 0x21, 0x11, body, inet_body(body));
    struct proxy_header h;
    const char *why;
    ck_assert_int_eq(parse(buf, len, PROXY_V2, &h, &why), PROXY_HEADER_DONE);
    ck_assert_int_eq(h.version, 2);
    ck_assert_uint_eq(h.len, 28);
    assert_source(&h, "192.0.2.7", 40000);
    assert_prefixes_need_more(buf, len, ANY);
}
END_TEST

START_TEST(v2_inet6_with_tlvs_gives_the_source)
{
    unsigned char body[64] = {0}, buf[128];
    inet_pton(AF_INET6, "2001:db8:1::7", body);
    inet_pton(AF_INET6, "2001:db8:2::1", body + 16);
    body[32] = 0x30; /* 12345 */
    body[33] = 0x39;
    body[35] = 80;
    /* An authority TLV ("chat") and a NOOP of none. */
    const unsigned char tlvs[] = {0x02, 0, 4, 'c', 'h', 'a', 't', 0x04, 0, 0};
    memcpy(body + 36, tlvs, sizeof(tlvs));
    size_t len = v2(buf, 0x21, 0x21, body, 36 + sizeof(tlvs));
    struct proxy_header h;
    const char *why;
    ck_assert_int_eq(parse(buf, len, PROXY_V2, &h, &why), PROXY_HEADER_DONE);
    ck_assert_uint_eq(h.len, len);
    assert_source(&h, "2001:db8:1::7", 12345);
    assert_prefixes_need_more(buf, len, PROXY_V2);
}
END_TEST

START_TEST(v2_local_and_unspec_keep_the_peer)
{
    unsigned char buf[64], body[12];
    /* LOCAL, as HAProxy's health checks send it, with and without addresses. */
    size_t lens[] = {v2(buf, 0x20, 0x00, body, 0), 0, 0};
    struct proxy_header h;
    const char *why;
    ck_assert_int_eq(parse(buf, lens[0], PROXY_V2, &h, &why), PROXY_HEADER_DONE);
    ck_assert_int_eq(h.has_source, 0);
    ck_assert_uint_eq(h.len, 16);
    lens[1] = v2(buf, 0x20, 0x11, body, inet_body(body));
    ck_assert_int_eq(parse(buf, lens[1], PROXY_V2, &h, &why), PROXY_HEADER_DONE);
    ck_assert_int_eq(h.has_source, 0);
    /* PROXY with an unspecified family. */
    lens[2] = v2(buf, 0x21, 0x00, body, 0);
    ck_assert_int_eq(parse(buf, lens[2], PROXY_V2, &h, &why), PROXY_HEADER_DONE);
    ck_assert_int_eq(h.has_source, 0);
}
END_TEST

START_TEST(v2_refuses_bad_versions_commands_families_and_lengths)
{
    unsigned char buf[128], body[64] = {0};
    inet_body(body);
    assert_bad(buf, v2(buf, 0x11, 0x11, body, 12), PROXY_V2); /* version 1 */
    assert_bad(buf, v2(buf, 0x22, 0x11, body, 12), PROXY_V2); /* command 2 */
    assert_bad(buf, v2(buf, 0x21, 0x41, body, 12), PROXY_V2); /* family 4 */
    assert_bad(buf, v2(buf, 0x21, 0x13, body, 12), PROXY_V2); /* transport 3 */
    assert_bad(buf, v2(buf, 0x21, 0x11, body, 11), PROXY_V2); /* addresses cut */
    assert_bad(buf, v2(buf, 0x21, 0x21, body, 35), PROXY_V2);
    /* A TLV that claims more than there is, or a TLV header cut short. */
    body[12] = 0x02;
    body[14] = 9;
    assert_bad(buf, v2(buf, 0x21, 0x11, body, 12 + 3 + 8), PROXY_V2);
    assert_bad(buf, v2(buf, 0x21, 0x11, body, 12 + 2), PROXY_V2);
    /* A wrong signature byte, at once. */
    v2(buf, 0x21, 0x11, body, 12);
    buf[5] ^= 1;
    assert_bad(buf, 6, PROXY_V2);
}
END_TEST

START_TEST(v2_larger_than_the_maximum_is_refused_from_its_length)
{
    unsigned char buf[16];
    memcpy(buf, signature, 12);
    buf[12] = 0x21;
    buf[13] = 0x11;
    size_t rest = PROXY_HEADER_MAX - 16 + 1;
    buf[14] = (unsigned char)(rest >> 8);
    buf[15] = (unsigned char)rest;
    assert_bad(buf, 16, PROXY_V2);
    rest--;
    buf[14] = (unsigned char)(rest >> 8);
    buf[15] = (unsigned char)rest;
    struct proxy_header h;
    const char *why;
    ck_assert_int_eq(parse(buf, 16, PROXY_V2, &h, &why), PROXY_HEADER_NEED_MORE);
}
END_TEST

START_TEST(only_the_accepted_versions_are_taken)
{
    const char *v1 = "PROXY UNKNOWN\r\n";
    unsigned char buf[32];
    size_t len = v2(buf, 0x20, 0x00, "", 0);
    assert_bad(v1, strlen(v1), PROXY_V2);
    assert_bad(buf, len, PROXY_V1);
    /* Told apart by the first byte. */
    assert_bad(v1, 1, PROXY_V2);
    assert_bad(buf, 1, PROXY_V1);
}
END_TEST

static struct sockaddr_in6 v6(const char *text)
{
    struct sockaddr_in6 a = {.sin6_family = AF_INET6};
    ck_assert_int_eq(inet_pton(AF_INET6, text, &a.sin6_addr), 1);
    return a;
}

static struct sockaddr_in v4(const char *text)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    ck_assert_int_eq(inet_pton(AF_INET, text, &a.sin_addr), 1);
    return a;
}

START_TEST(cidr_matches_prefixes_and_mapped_addresses)
{
    struct cidr list[3];
    ck_assert_int_eq(cidr_parse("10.1.0.0/16", &list[0]), 0);
    ck_assert_int_eq(cidr_parse("2001:db8::/33", &list[1]), 0);
    ck_assert_int_eq(cidr_parse("127.0.0.1", &list[2]), 0);
    struct sockaddr_in a = v4("10.1.255.3"), b = v4("10.2.0.1"), c = v4("127.0.0.1"),
                       d = v4("127.0.0.2");
    ck_assert(cidr_list_match(list, 3, (struct sockaddr *)&a));
    ck_assert(!cidr_list_match(list, 3, (struct sockaddr *)&b));
    ck_assert(cidr_list_match(list, 3, (struct sockaddr *)&c));
    ck_assert(!cidr_list_match(list, 3, (struct sockaddr *)&d));
    struct sockaddr_in6 e = v6("2001:db8:7fff::1"), f = v6("2001:db8:8000::1"),
                        g = v6("::ffff:10.1.2.3"), h = v6("::1");
    ck_assert(cidr_list_match(list, 3, (struct sockaddr *)&e));
    ck_assert(!cidr_list_match(list, 3, (struct sockaddr *)&f));
    ck_assert(cidr_list_match(list, 3, (struct sockaddr *)&g));
    ck_assert(!cidr_list_match(list, 3, (struct sockaddr *)&h));
    /* /0 takes everything of its family. */
    struct cidr all;
    ck_assert_int_eq(cidr_parse("0.0.0.0/0", &all), 0);
    ck_assert(cidr_list_match(&all, 1, (struct sockaddr *)&b));
    ck_assert(!cidr_list_match(&all, 1, (struct sockaddr *)&h));
}
END_TEST

START_TEST(cidr_refuses_what_is_no_prefix)
{
    const char *bad[] = {"",           "/8",       "10.0.0.0/33", "::/129",     "10.0.0.0/",
                         "10.0.0.0/x", "10.0.0/8", "localhost",   "10.0.0.0/-1"};
    struct cidr c;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(cidr_parse(bad[i], &c) < 0, "'%s' was taken", bad[i]);
}
END_TEST

static Suite *proxy_header_suite(void)
{
    Suite *suite = suite_create("proxy_header");
    TCase *v1 = tcase_create("v1");
    tcase_add_test(v1, v1_tcp4_gives_the_source_and_stops_at_crlf);
    tcase_add_test(v1, v1_tcp6_gives_the_source);
    tcase_add_test(v1, v1_unknown_keeps_the_peer);
    tcase_add_test(v1, v1_refuses_what_the_spec_does_not_allow);
    tcase_add_test(v1, v1_line_longer_than_107_bytes_is_refused);
    suite_add_tcase(suite, v1);
    TCase *two = tcase_create("v2");
    tcase_add_test(two, v2_inet_gives_the_source);
    tcase_add_test(two, v2_inet6_with_tlvs_gives_the_source);
    tcase_add_test(two, v2_local_and_unspec_keep_the_peer);
    tcase_add_test(two, v2_refuses_bad_versions_commands_families_and_lengths);
    tcase_add_test(two, v2_larger_than_the_maximum_is_refused_from_its_length);
    tcase_add_test(two, only_the_accepted_versions_are_taken);
    suite_add_tcase(suite, two);
    TCase *cidr = tcase_create("cidr");
    tcase_add_test(cidr, cidr_matches_prefixes_and_mapped_addresses);
    tcase_add_test(cidr, cidr_refuses_what_is_no_prefix);
    suite_add_tcase(suite, cidr);
    return suite;
}

int main(void)
{
    return chatd_run_suite(proxy_header_suite());
}
