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

/* A gauge a plugin sets (host_api metric_set), shown as chatd_<plugin>_<name>. */
struct plugin_gauge {
    char *key; /* "<plugin>_<name>" */
    char *plugin;
    char *help;
    double value;
    struct plugin_gauge *next;
};

/* Hook failures, timeouts and slow runs of one plugin at one hook point. */
struct hook_count {
    char *hook;
    char *plugin;
    uint64_t failures, timeouts, slow;
    struct hook_count *next;
};

/* What metrics_hook counts. */
enum metrics_hook_kind { METRICS_HOOK_FAILURE, METRICS_HOOK_TIMEOUT, METRICS_HOOK_SLOW };

struct metrics {
    uint64_t connections_accepted;
    uint64_t connections_refused;
    uint64_t disconnects_slow_reader;
    uint64_t disconnects_idle;
    uint64_t disconnects_frame_timeout; /* a begun frame not completed within frame_timeout */
    uint64_t disconnects_login_timeout; /* not logged in within login_timeout */
    uint64_t bytes_in, bytes_out;
    uint64_t input_buffer_bytes; /* what the sessions' frame buffers hold, in all */
    uint64_t generic_errors[5];  /* by enum generic_error */
    uint64_t latency_buckets[METRICS_LATENCY_BUCKETS + 1]; /* the last is +Inf */
    double latency_sum;
    uint64_t latency_count;
    uint64_t sessions_logged_in;
    struct plugin_gauge *plugin_gauges; /* a short list: a few per plugin */
    struct hook_count *hook_counts;     /* kept across reloads, like every counter */
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
/* Set plugin's gauge `name` (help is kept from the first call). Returns 0, or a
 * CHATD_E* code: EINVAL for a name outside [a-z0-9_]{1,64}, ENOMEM. */
int metrics_plugin_gauge(struct metrics *m, const char *plugin, const char *name, const char *help,
                         double value);
/* Drop every gauge of plugin (it is being unloaded). */
void metrics_forget_plugin(struct metrics *m, const char *plugin);
/* Count a failed (METRICS_HOOK_FAILURE), timed-out (METRICS_HOOK_TIMEOUT) or slow
 * (METRICS_HOOK_SLOW: its function blocked the loop) hook of plugin at point hook. */
void metrics_hook(struct metrics *m, const char *hook, const char *plugin,
                  enum metrics_hook_kind kind);
/* Free the hook counters (server teardown). */
void metrics_free(struct metrics *m);
/* Append one counter or gauge, with its HELP and TYPE lines, to out. */
void metrics_counter(struct evbuffer *out, const char *name, const char *help, uint64_t value);
void metrics_gauge(struct evbuffer *out, const char *name, const char *help, double value);
/* Append the Prometheus text exposition of everything to out. */
void metrics_render(struct server *srv, struct evbuffer *out);

#endif
