/* test_ratelimit.c - host/ratelimit.c without a server process: bucket arithmetic on a
 * clock the test sets, address keys, the per-address connection limits, and the cap
 * on the memory a flood of addresses can take. */
#include "ratelimit.h"

#include "run_suite.h"
#include "server.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <string.h>

#define MS 1000000LL /* ns */

START_TEST(a_bucket_allows_its_burst_then_refills_at_its_rate)
{
    struct config_rate rate = {.burst = 2, .period_ms = 1000};
    struct rate_bucket b = {0};
    int64_t t = 5000 * MS;
    ck_assert_int_eq(rate_bucket_take(&b, &rate, t), 0);
    ck_assert_int_eq(rate_bucket_take(&b, &rate, t), 0);
    int64_t wait = rate_bucket_take(&b, &rate, t);
    /* Two tokens a second: the next one in 500 ms (rounded up). */
    ck_assert_int_ge(wait, 500);
    ck_assert_int_le(wait, 502);
    ck_assert_int_gt(rate_bucket_take(&b, &rate, t + 499 * MS), 0);
    ck_assert_int_eq(rate_bucket_take(&b, &rate, t + 502 * MS), 0);
    /* A long pause refills to the burst, never beyond. */
    t += 3600000 * MS;
    ck_assert_int_eq(rate_bucket_take(&b, &rate, t), 0);
    ck_assert_int_eq(rate_bucket_take(&b, &rate, t), 0);
    ck_assert_int_gt(rate_bucket_take(&b, &rate, t), 0);
    /* Off: always allowed. */
    struct config_rate off = {.burst = 0, .period_ms = 1000};
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(rate_bucket_take(&b, &off, t), 0);
}
END_TEST

static void v4(struct rate_key *k, const char *text)
{
    struct sockaddr_in in = {.sin_family = AF_INET};
    ck_assert_int_eq(inet_pton(AF_INET, text, &in.sin_addr), 1);
    rate_key_address(k, (struct sockaddr *)&in);
}

static void v6(struct rate_key *k, const char *text)
{
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    ck_assert_int_eq(inet_pton(AF_INET6, text, &in6.sin6_addr), 1);
    rate_key_address(k, (struct sockaddr *)&in6);
}

START_TEST(ipv4_counts_alone_and_ipv6_by_its_64_prefix)
{
    struct rate_key a, b;
    v4(&a, "192.0.2.1");
    v6(&b, "::ffff:192.0.2.1");
    ck_assert(memcmp(&a, &b, sizeof(a)) == 0);
    v4(&b, "192.0.2.2");
    ck_assert(memcmp(&a, &b, sizeof(a)) != 0);
    v6(&a, "2001:db8:1:2::1");
    v6(&b, "2001:db8:1:2:ffff:ffff:ffff:ffff");
    ck_assert(memcmp(&a, &b, sizeof(a)) == 0);
    v6(&b, "2001:db8:1:3::1");
    ck_assert(memcmp(&a, &b, sizeof(a)) != 0);
}
END_TEST

static struct config cfg;
static struct server srv;

static void setup(void)
{
    config_defaults(&cfg);
    memset(&srv, 0, sizeof(srv));
    srv.cfg = &cfg;
    ck_assert_int_eq(ratelimits_init(&srv.limits), 0);
}

static void teardown(void)
{
    ratelimits_free(&srv.limits);
    config_free(&cfg);
}

START_TEST(open_connections_per_address_are_capped)
{
    cfg.limits.max_connections_per_address = 3;
    cfg.limits.connections_per_address.burst = 0;
    struct rate_key a, b;
    v4(&a, "192.0.2.1");
    v4(&b, "192.0.2.2");
    const char *why = NULL;
    int counted = 0;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(ratelimit_connection_open(&srv, &a, 1, &why, &counted), 0);
    ck_assert_int_eq(ratelimit_connection_open(&srv, &a, 1, &why, &counted), 1000);
    ck_assert_ptr_nonnull(why);
    ck_assert_int_eq(ratelimit_connection_open(&srv, &b, 1, &why, &counted), 0);
    ratelimit_connection_closed(&srv, &a);
    ck_assert_int_eq(ratelimit_connection_open(&srv, &a, 1, &why, &counted), 0);
    ck_assert_uint_eq(srv.limits.refused[RATE_CONCURRENT], 1);
    ck_assert_int_eq(counted, 1);
}
END_TEST

/* With both per-address limits off nothing is counted, so the session's close must not
 * uncount (a reload may switch them on between its open and its close). */
START_TEST(with_both_limits_off_a_connection_is_not_counted)
{
    cfg.limits.max_connections_per_address = 0;
    cfg.limits.connections_per_address.burst = 0;
    struct rate_key a;
    v4(&a, "192.0.2.1");
    const char *why = NULL;
    int counted = 1;
    ck_assert_int_eq(ratelimit_connection_open(&srv, &a, 1, &why, &counted), 0);
    ck_assert_int_eq(counted, 0);
    ck_assert_uint_eq(ratelimits_tracked(&srv.limits), 0);
}
END_TEST

START_TEST(new_connections_per_address_are_rate_limited)
{
    cfg.limits.max_connections_per_address = 0;
    cfg.limits.connections_per_address = (struct config_rate){.burst = 5, .period_ms = 3600000};
    struct rate_key a;
    v4(&a, "192.0.2.1");
    const char *why = NULL;
    int counted = 0;
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(ratelimit_connection_open(&srv, &a, 1, &why, &counted), 0);
        ratelimit_connection_closed(&srv, &a);
    }
    int64_t wait = ratelimit_connection_open(&srv, &a, 1, &why, &counted);
    ck_assert_int_gt(wait, 0);
    ck_assert_int_le(wait, 3600000 / 5 + 1);
    ck_assert_uint_eq(srv.limits.refused[RATE_CONNECTIONS], 1);
}
END_TEST

/* A flood of addresses, each over its own limit, never makes the table pass max_tracked:
 * the least recently used keys are forgotten; and none is refused for lack of room. */
START_TEST(a_flood_of_addresses_takes_bounded_memory)
{
    cfg.limits.max_tracked = 16;
    cfg.limits.max_connections_per_address = 0;
    cfg.limits.connections_per_address = (struct config_rate){.burst = 1, .period_ms = 3600000};
    const char *why = NULL;
    int counted = 0;
    for (unsigned i = 0; i < 5000; i++) {
        struct sockaddr_in in = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0a000000u + i)};
        struct rate_key k;
        rate_key_address(&k, (struct sockaddr *)&in);
        ck_assert_int_eq(ratelimit_connection_open(&srv, &k, 1, &why, &counted), 0);
        ratelimit_connection_closed(&srv, &k);
        ck_assert_uint_le(ratelimits_tracked(&srv.limits), 16);
    }
    ck_assert_uint_ge(srv.limits.evictions, 5000 - 16);
    /* Open connections are never forgotten: their count stays right past the cap. */
    cfg.limits.max_connections_per_address = 1;
    cfg.limits.connections_per_address.burst = 0;
    struct rate_key held;
    v4(&held, "192.0.2.77");
    ck_assert_int_eq(ratelimit_connection_open(&srv, &held, 1, &why, &counted), 0);
    for (unsigned i = 0; i < 100; i++) {
        struct sockaddr_in in = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0b000000u + i)};
        struct rate_key k;
        rate_key_address(&k, (struct sockaddr *)&in);
        ck_assert_int_eq(ratelimit_connection_open(&srv, &k, 1, &why, &counted), 0);
        ratelimit_connection_closed(&srv, &k);
    }
    ck_assert_int_eq(ratelimit_connection_open(&srv, &held, 1, &why, &counted), 1000);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ratelimit");
    TCase *tc = tcase_create("buckets");
    tcase_add_test(tc, a_bucket_allows_its_burst_then_refills_at_its_rate);
    tcase_add_test(tc, ipv4_counts_alone_and_ipv6_by_its_64_prefix);
    suite_add_tcase(s, tc);
    tc = tcase_create("tables");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, open_connections_per_address_are_capped);
    tcase_add_test(tc, with_both_limits_off_a_connection_is_not_counted);
    tcase_add_test(tc, new_connections_per_address_are_rate_limited);
    tcase_add_test(tc, a_flood_of_addresses_takes_bounded_memory);
    suite_add_tcase(s, tc);
    return chatd_run_suite(s);
}
