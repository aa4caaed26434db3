/* seen.h - which sequence numbers of one sender have reached one receiver: a bitmap
 * that grows with the highest number seen, so duplicates are found exactly and the
 * lost ones are what was sent minus what was seen. */
#ifndef CHATD_BENCH_SEEN_H
#define CHATD_BENCH_SEEN_H

#include <stddef.h>
#include <stdint.h>

struct seen {
    uint64_t *bits;
    size_t words;
    uint64_t next;      /* one past the highest number seen */
    uint64_t reordered; /* numbers that came after a higher one */
};

/* Mark seq as seen. Returns 1 the first time, 0 for a duplicate; exits when out of
 * memory. */
int seen_mark(struct seen *s, uint64_t seq);

void seen_free(struct seen *s);

#endif
