/* hist.c - the log-linear latency histogram (see hist.h). */
#include "hist.h"

#include <math.h>

static unsigned bucket_of(uint64_t v)
{
    if (v < HIST_SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* HIST_SUB_BITS and up */
    if (e > HIST_MAX_EXP)
        return HIST_BUCKETS - 1;
    unsigned shift = e - HIST_SUB_BITS;
    unsigned sub = (unsigned)(v >> shift) - HIST_SUB; /* 0 .. HIST_SUB-1 */
    return HIST_SUB + shift * HIST_SUB + sub;
}

/* The smallest value of bucket i and the bucket's width. */
static void bucket_range(unsigned i, uint64_t *low, uint64_t *width)
{
    if (i < HIST_SUB) {
        *low = i;
        *width = 1;
        return;
    }
    unsigned shift = (i - HIST_SUB) / HIST_SUB;
    unsigned sub = (i - HIST_SUB) % HIST_SUB;
    *low = (uint64_t)(HIST_SUB + sub) << shift;
    *width = (uint64_t)1 << shift;
}

void hist_record(struct hist *h, int64_t ns)
{
    uint64_t v = ns < 0 ? 0 : (uint64_t)ns;
    h->buckets[bucket_of(v)]++;
    h->count++;
    if (v > h->max)
        h->max = v;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(q * (double)h->count);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t low, width;
            bucket_range(i, &low, &width);
            uint64_t mid = low + width / 2;
            return mid > h->max ? h->max : mid;
        }
    }
    return h->max;
}
