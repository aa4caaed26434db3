/* seen.c - the per-(sender, receiver) bitmap of sequence numbers (see seen.h). */
#include "seen.h"
#include "bench.h"

#include <stdlib.h>
#include <string.h>

int seen_mark(struct seen *s, uint64_t seq)
{
    size_t word = (size_t)(seq / 64);
    if (word >= s->words) {
        /* Doubling keeps growth off the per-message path: a handful of reallocations
         * per receiver in a whole run. */
        size_t words = s->words ? s->words : 16;
        while (words <= word)
            words *= 2;
        uint64_t *bits = realloc(s->bits, words * sizeof(*bits));
        if (!bits)
            die("out of memory");
        memset(bits + s->words, 0, (words - s->words) * sizeof(*bits));
        s->bits = bits;
        s->words = words;
    }
    uint64_t mask = (uint64_t)1 << (seq % 64);
    if (s->bits[word] & mask)
        return 0;
    s->bits[word] |= mask;
    if (seq + 1 > s->next)
        s->next = seq + 1;
    else
        s->reordered++;
    return 1;
}

void seen_free(struct seen *s)
{
    free(s->bits);
    memset(s, 0, sizeof(*s));
}
