/* allocator.c - the process's malloc: which one runs, and its settings. */
#include "allocator.h"

#include <stdbool.h>
#include <stdlib.h>

#ifdef CHATD_WITH_MIMALLOC
#include <mimalloc.h>

/* mimalloc hands pages that have emptied back to the kernel (madvise) 25 ms later by
 * default. In a process with threads each madvise interrupts every core the process ran
 * on to flush its TLB: 7 % of chatd's time in a group fan-out. Under load the pages are
 * reused within a second, so a second's delay keeps them, and an idle server still gives
 * them back. */
void allocator_tune(void)
{
    if (!getenv("MIMALLOC_DECOMMIT_DELAY"))
        mi_option_set(mi_option_decommit_delay, 1000);
}

/* With mimalloc linked, it is the process's malloc only if a block from plain calloc()
 * lies in its heap: the override is by symbol interposition, which a link order or a
 * preload could undo. */
void allocator_describe(FILE *out)
{
    void *probe = calloc(1, 1);
    bool ours = probe && mi_is_in_heap_region(probe);
    free(probe);
    int v = mi_version();
    fprintf(out, "malloc: mimalloc %d.%d.%d%s", v / 100, v / 10 % 10, v % 10,
            ours ? "" : " (linked, but not the process's malloc)");
}
#else
void allocator_tune(void)
{
}

void allocator_describe(FILE *out)
{
    fputs("malloc: the C library's", out);
}
#endif
