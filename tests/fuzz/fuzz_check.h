/* fuzz_check.h - what every fuzz target shares: the entry point libFuzzer calls, and a
 * check that stops the run (libFuzzer saves the input as a crash) with the condition
 * that failed. */
#ifndef CHATD_FUZZ_CHECK_H
#define CHATD_FUZZ_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
