/* clock.h - the host's monotonic clock, for durations and deadlines (any thread). */
#ifndef CHATD_HOST_CLOCK_H
#define CHATD_HOST_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#endif
