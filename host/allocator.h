/* allocator.h - the process's malloc: which one runs, and its settings.
 *
 * The chatd executable links mimalloc when built with CHATD_MIMALLOC (the default but in
 * sanitizer builds); see docs/architecture.md, "The allocator". */
#ifndef CHATD_ALLOCATOR_H
#define CHATD_ALLOCATOR_H

#include <stdio.h>

/* Sets the allocator's options chatd chooses, unless the environment set them. Call first
 * thing in main. */
void allocator_tune(void);

/* Writes which malloc the process runs on, e.g. "malloc: mimalloc 2.0.9". */
void allocator_describe(FILE *out);

#endif
