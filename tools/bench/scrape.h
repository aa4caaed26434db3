/* scrape.h - chatd's own counters over the measured window, read from its admin
 * listener's /metrics (--metrics-port): how its commits batch messages and how long a
 * request takes from arrival to reply, which no outside measurement can tell. */
#ifndef CHATD_BENCH_SCRAPE_H
#define CHATD_BENCH_SCRAPE_H

/* The counters read at one moment. */
struct chatd_counters {
    double batches;         /* chatd_post_batches_total: commit batches */
    double committed;       /* chatd_post_committed_total: messages they committed */
    double request_seconds; /* chatd_request_duration_seconds_sum */
    double requests;        /* chatd_request_duration_seconds_count */
};

/* GET /metrics from chatd's admin listener at 127.0.0.1:port (within 2 s). 0, or -1
 * (with why on stderr) when it cannot be read or lacks the counters. */
int chatd_counters_read(int port, struct chatd_counters *out);

#endif
