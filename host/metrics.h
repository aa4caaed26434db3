/* metrics.h - the host's counters (loop thread only) and their Prometheus text
 * rendering for the admin listener's /metrics. */
#ifndef CHATD_HOST_METRICS_H
#define CHATD_HOST_METRICS_H

#include <stdint.h>

struct server;
struct command;
struct evbuffer;

/* Upper bounds of the request latency histogram, in seconds. */
#define METRICS_LATENCY_BUCKETS 14

struct metrics {
    uint64_t connections_accepted;
    uint64_t connections_refused;
    uint64_t disconnects_slow_reader;
    uint64_t disconnects_idle;
    uint64_t bytes_in, bytes_out;
    uint64_t generic_errors[5];                            /* by enum generic_error */
    uint64_t latency_buckets[METRICS_LATENCY_BUCKETS + 1]; /* the last is +Inf */
    double latency_sum;
    uint64_t latency_count;
    uint64_t sessions_logged_in;
};

enum generic_error {
    ERR_BAD_JSON,
    ERR_BAD_REQUEST,
    ERR_UNKNOWN_CMD,
    ERR_FRAME_TOO_LARGE,
    ERR_OTHER
};

/* Count a generic error line by its result word. */
void metrics_generic_error(struct metrics *m, const char *word);
/* Count one reply of `cmd` with `result`, which took `seconds` since the request
 * arrived. */
void metrics_reply(struct metrics *m, struct command *cmd, const char *result, double seconds);
/* Free the per-command result counters of cmd. */
void metrics_command_free(struct command *cmd);
/* Append the Prometheus text exposition of everything to out. */
void metrics_render(struct server *srv, struct evbuffer *out);

#endif
