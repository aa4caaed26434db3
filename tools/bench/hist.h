/* hist.h - a latency histogram with log-linear buckets (as HdrHistogram does): exact
 * below 256 ns, then 256 buckets per power of two, so any percentile read from it is
 * within 0.4% of the true value, in fixed memory however many samples it holds. */
#ifndef CHATD_BENCH_HIST_H
#define CHATD_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 8
#define HIST_SUB      (1 << HIST_SUB_BITS)
/* Values up to 2^42 ns (73 minutes); larger ones land in the last bucket. */
#define HIST_MAX_EXP 42
#define HIST_BUCKETS ((HIST_MAX_EXP - HIST_SUB_BITS + 2) * HIST_SUB)

struct hist {
    uint64_t count;
    uint64_t max;
    uint64_t buckets[HIST_BUCKETS];
};

/* Record one value in nanoseconds (negative values count as 0). */
void hist_record(struct hist *h, int64_t ns);

/* The value at quantile q (0..1) in nanoseconds: the middle of the bucket holding the
 * ceil(q * count)-th smallest value; 0 when empty. */
uint64_t hist_quantile(const struct hist *h, double q);

#endif
