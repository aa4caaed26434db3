/* test_drain_plan.c - the order of a drain batch: oldest first across private and group
 * messages, no overtaking past a full list, a byte budget, and progress whatever the
 * clocks say. */
#include "drain_plan.h"

#include "run_suite.h"

#include <check.h>
#include <stdlib.h>

static struct plan_item item(int64_t ts)
{
    return (struct plan_item){.ts = ts, .bytes = 10};
}

START_TEST(plan_merges_private_and_group_oldest_first)
{
    struct plan_item priv[] = {item(1), item(4), item(6)}, grp[] = {item(2), item(3), item(5)};
    size_t order[6];
    int more = -1;
    size_t n = drain_plan(priv, 3, grp, 3, 100, 1 << 20, order, &more);
    ck_assert_uint_eq(n, 6);
    ck_assert_int_eq(more, 0);
    size_t want[] = {0, 3, 4, 1, 5, 2}; /* indexes into priv..., grp... */
    for (size_t i = 0; i < 6; i++)
        ck_assert_uint_eq(order[i], want[i]);
}
END_TEST

START_TEST(plan_sends_nothing_newer_than_a_full_list)
{
    /* The private list is full (batch 3): its next batch may hold ts 4, so the group
     * message at ts 5 must wait. */
    struct plan_item priv[] = {item(1), item(2), item(3)}, grp[] = {item(5)};
    size_t order[4];
    int more = 0;
    size_t n = drain_plan(priv, 3, grp, 1, 3, 1 << 20, order, &more);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(more, 1);
    ck_assert_uint_eq(order[2], 2);
}
END_TEST

START_TEST(plan_stops_at_the_byte_budget)
{
    struct plan_item priv[] = {item(1), item(2), item(3), item(4)};
    size_t order[4];
    int more = 0;
    /* 10 bytes each, budget 15: the first two (20 > 15 only after the second). */
    size_t n = drain_plan(priv, 4, NULL, 0, 100, 15, order, &more);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(more, 1);
}
END_TEST

START_TEST(plan_takes_at_least_one_whatever_the_clocks)
{
    /* A full list whose last message is older than its first (a clock stepped back):
     * the cutoff alone would take nothing and the backlog would never end. */
    struct plan_item priv[] = {item(100), item(50)};
    size_t order[2];
    int more = 0;
    size_t n = drain_plan(priv, 2, NULL, 0, 2, 1 << 20, order, &more);
    ck_assert_uint_ge(n, 1);
    ck_assert_uint_eq(order[0], 0);
    ck_assert_int_eq(more, 1);
}
END_TEST

START_TEST(plan_of_nothing_is_empty)
{
    size_t order[1];
    int more = -1;
    ck_assert_uint_eq(drain_plan(NULL, 0, NULL, 0, 100, 1024, order, &more), 0);
    ck_assert_int_eq(more, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("drain_plan");
    TCase *tc = tcase_create("plan");
    tcase_add_test(tc, plan_merges_private_and_group_oldest_first);
    tcase_add_test(tc, plan_sends_nothing_newer_than_a_full_list);
    tcase_add_test(tc, plan_stops_at_the_byte_budget);
    tcase_add_test(tc, plan_takes_at_least_one_whatever_the_clocks);
    tcase_add_test(tc, plan_of_nothing_is_empty);
    suite_add_tcase(s, tc);
    return chatd_run_suite(s);
}
