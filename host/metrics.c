/* metrics.c - counting requests, replies, errors, bytes and latency on the loop thread,
 * and rendering them with the worker pool's counters in the Prometheus text format. */
#include "metrics.h"

#include "cluster.h"
#include "cluster_route.h"
#include "config.h"
#include "io_threads.h"
#include "stream_sessions.h"
#include "post.h"
#include "proxy_accept.h"

#include "server.h"
#include "workers.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

static const double latency_bounds[METRICS_LATENCY_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
};

static const char *const generic_words[] = {"bad_json", "bad_request", "unknown_cmd",
                                            "frame_too_large", "other"};

/* Replies of one command counted by result word. */
struct result_count {
    char *word;
    uint64_t n;
    UT_hash_handle hh;
};

void metrics_generic_error(struct metrics *m, const char *word)
{
    size_t i = 0;
    while (i < ERR_OTHER && strcmp(word, generic_words[i]) != 0)
        i++;
    m->generic_errors[i]++;
}

void metrics_reply(struct metrics *m, struct command *cmd, const char *result, double seconds)
{
    size_t b = 0;
    while (b < METRICS_LATENCY_BUCKETS && seconds > latency_bounds[b])
        b++;
    m->latency_buckets[b]++;
    m->latency_sum += seconds;
    m->latency_count++;

    struct result_count *rc;
    HASH_FIND_STR(cmd->results, result, rc);
    if (!rc) {
        rc = calloc(1, sizeof(*rc));
        if (!rc || !(rc->word = strdup(result))) {
            free(rc);
            return;
        }
        HASH_ADD_KEYPTR(hh, cmd->results, rc->word, strlen(rc->word), rc);
    }
    rc->n++;
}

void metrics_command_free(struct command *cmd)
{
    struct result_count *rc, *tmp;
    HASH_ITER (hh, cmd->results, rc, tmp) {
        HASH_DEL(cmd->results, rc);
        free(rc->word);
        free(rc);
    }
}

void metrics_counter(struct evbuffer *out, const char *name, const char *help, uint64_t value)
{
    evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
                        (unsigned long long)value);
}

void metrics_gauge(struct evbuffer *out, const char *name, const char *help, double value)
{
    evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s gauge\n%s %.9g\n", name, help, name, name,
                        value);
}

/* A counter of seconds (it only grows, but is not a whole number). */
static void seconds_counter(struct evbuffer *out, const char *name, const char *help, double value)
{
    evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s counter\n%s %.9g\n", name, help, name, name,
                        value);
}

/* The series of one of the worker pool's queues, named `prefix`_..., its threads
 * `workers`; `what` starts each help text. */
static void queue_metrics(struct evbuffer *out, const char *prefix, const char *workers,
                          const char *what, const struct queue_stats *q)
{
    static const char *const suffixes[] = {"_submitted_total",     "_completed_total",
                                           "_rejected_busy_total", "_failed_total",
                                           "_timed_out_total",     "_dropped_closed_total"};
    static const char *const helps[] = {"accepted.",
                                        "whose done callback ran.",
                                        "refused: queue full.",
                                        "that ended with an error.",
                                        "past their time budget.",
                                        "not run: their client had gone."};
    const uint64_t counts[] = {q->submitted, q->completed, q->rejected_busy,
                               q->failed,    q->timed_out, q->dropped_closed};
    char name[96], help[160];
    snprintf(name, sizeof(name), "%s_queued", prefix);
    snprintf(help, sizeof(help), "%s waiting for a worker.", what);
    metrics_gauge(out, name, help, (double)q->queue_depth);
    snprintf(name, sizeof(name), "%s_queue_max", prefix);
    snprintf(help, sizeof(help), "Capacity of the queue of %s.", what);
    metrics_gauge(out, name, help, (double)q->queue_max);
    snprintf(help, sizeof(help), "Worker threads for %s.", what);
    metrics_gauge(out, workers, help, (double)q->workers);
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        snprintf(name, sizeof(name), "%s%s", prefix, suffixes[i]);
        snprintf(help, sizeof(help), "%s %s", what, helps[i]);
        metrics_counter(out, name, help, counts[i]);
    }
    snprintf(name, sizeof(name), "%s_wait_seconds_total", prefix);
    snprintf(help, sizeof(help), "%s: time spent in the queue.", what);
    seconds_counter(out, name, help, (double)q->wait_ns / 1e9);
    snprintf(name, sizeof(name), "%s_run_seconds_total", prefix);
    snprintf(help, sizeof(help), "%s: time spent running.", what);
    seconds_counter(out, name, help, (double)q->run_ns / 1e9);
}

int metrics_plugin_gauge(struct metrics *m, const char *plugin, const char *name, const char *help,
                         double value)
{
    if (!name || !config_valid_name(name, 64))
        return CHATD_EINVAL;
    char key[200];
    snprintf(key, sizeof(key), "%s_%s", plugin, name);
    struct plugin_gauge *g = m->plugin_gauges;
    while (g && strcmp(g->key, key) != 0)
        g = g->next;
    if (!g) {
        if (!(g = calloc(1, sizeof(*g))) || !(g->key = strdup(key)) ||
            !(g->plugin = strdup(plugin)) || !(g->help = strdup(help ? help : name))) {
            if (g) {
                free(g->key);
                free(g->plugin);
            }
            free(g);
            return CHATD_ENOMEM;
        }
        g->next = m->plugin_gauges;
        m->plugin_gauges = g;
    }
    g->value = value;
    return 0;
}

void metrics_forget_plugin(struct metrics *m, const char *plugin)
{
    for (struct plugin_gauge **at = &m->plugin_gauges; *at;) {
        struct plugin_gauge *g = *at;
        if (strcmp(g->plugin, plugin) != 0) {
            at = &g->next;
            continue;
        }
        *at = g->next;
        free(g->key);
        free(g->plugin);
        free(g->help);
        free(g);
    }
}

void metrics_hook(struct metrics *m, const char *hook, const char *plugin,
                  enum metrics_hook_kind kind)
{
    struct hook_count *c = m->hook_counts;
    while (c && (strcmp(c->hook, hook) != 0 || strcmp(c->plugin, plugin) != 0))
        c = c->next;
    if (!c) {
        if (!(c = calloc(1, sizeof(*c))) || !(c->hook = strdup(hook)) ||
            !(c->plugin = strdup(plugin))) {
            if (c)
                free(c->hook);
            free(c);
            return;
        }
        c->next = m->hook_counts;
        m->hook_counts = c;
    }
    if (kind == METRICS_HOOK_FAILURE)
        c->failures++;
    else if (kind == METRICS_HOOK_TIMEOUT)
        c->timeouts++;
    else
        c->slow++;
}

void metrics_free(struct metrics *m)
{
    while (m->hook_counts) {
        struct hook_count *c = m->hook_counts;
        m->hook_counts = c->next;
        free(c->hook);
        free(c->plugin);
        free(c);
    }
}

/* A label value in the exposition format: backslash, quote and newline escaped. Hook
 * point names are the plugins' own. */
static void label_value(struct evbuffer *out, const char *text)
{
    for (const char *c = text; *c; c++) {
        if (*c == '\\' || *c == '"')
            evbuffer_add_printf(out, "\\%c", *c);
        else if (*c == '\n')
            evbuffer_add(out, "\\n", 2);
        else
            evbuffer_add(out, c, 1);
    }
}

/* chatd_hook_failures_total, chatd_hook_timeouts_total and chatd_hook_slow_total, by
 * hook point and plugin. */
static void hook_counts(struct evbuffer *out, const struct metrics *m)
{
    static const struct {
        const char *name, *help;
        enum metrics_hook_kind kind;
    } families[] = {
        {"chatd_hook_failures_total", "Hook functions that returned an error, skipped.",
         METRICS_HOOK_FAILURE},
        {"chatd_hook_timeouts_total", "Deferred hooks skipped after [server] hook_timeout_ms.",
         METRICS_HOOK_TIMEOUT},
        {"chatd_hook_slow_total", "Hook function calls that blocked the event loop for over 50 ms.",
         METRICS_HOOK_SLOW},
    };
    for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
        evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s counter\n", families[f].name,
                            families[f].help, families[f].name);
        for (const struct hook_count *c = m->hook_counts; c; c = c->next) {
            evbuffer_add_printf(out, "%s{hook=\"", families[f].name);
            label_value(out, c->hook);
            uint64_t n = families[f].kind == METRICS_HOOK_FAILURE   ? c->failures
                         : families[f].kind == METRICS_HOOK_TIMEOUT ? c->timeouts
                                                                    : c->slow;
            evbuffer_add_printf(out, "\",plugin=\"%s\"} %llu\n", c->plugin, (unsigned long long)n);
        }
    }
}

/* Plugins' help texts are theirs: keep the exposition format whole whatever they say. */
static void plugin_gauges(struct evbuffer *out, const struct metrics *m)
{
    for (const struct plugin_gauge *g = m->plugin_gauges; g; g = g->next) {
        evbuffer_add_printf(out, "# HELP chatd_%s ", g->key);
        for (const char *c = g->help; *c; c++) {
            if (*c == '\n')
                evbuffer_add(out, " ", 1);
            else if (*c == '\\')
                evbuffer_add(out, "\\\\", 2);
            else
                evbuffer_add(out, c, 1);
        }
        evbuffer_add_printf(out, "\n# TYPE chatd_%s gauge\nchatd_%s %.9g\n", g->key, g->key,
                            g->value);
    }
}

void metrics_render(struct server *srv, struct evbuffer *out)
{
    const struct metrics *m = &srv->metrics;
    metrics_gauge(out, "chatd_connections", "Open client connections.", (double)srv->n_sessions);
    metrics_gauge(out, "chatd_sessions_logged_in", "Connections logged in as a user.",
                  (double)m->sessions_logged_in);
    metrics_gauge(out, "chatd_users_online", "Users with at least one session.",
                  (double)HASH_COUNT(srv->users));
    metrics_counter(out, "chatd_connections_accepted_total", "Connections accepted.",
                    m->connections_accepted);
    metrics_counter(out, "chatd_connections_refused_total",
                    "Connections refused at max_connections.", m->connections_refused);
    metrics_counter(out, "chatd_disconnects_slow_reader_total",
                    "Clients disconnected for passing max_output_bytes.",
                    m->disconnects_slow_reader);
    metrics_counter(out, "chatd_disconnects_idle_total", "Clients disconnected by idle_timeout.",
                    m->disconnects_idle);
    metrics_counter(out, "chatd_disconnects_frame_timeout_total",
                    "Clients disconnected for not completing a begun request within frame_timeout.",
                    m->disconnects_frame_timeout);
    metrics_counter(out, "chatd_disconnects_login_timeout_total",
                    "Clients disconnected for not logging in within login_timeout.",
                    m->disconnects_login_timeout);
    evbuffer_add_printf(out, "# HELP chatd_rate_limited_total Requests and connections refused "
                             "rate_limited, by [limits] key.\n# TYPE chatd_rate_limited_total "
                             "counter\n");
    for (int i = 0; i < RATE_LIMIT_KINDS; i++)
        evbuffer_add_printf(out, "chatd_rate_limited_total{limit=\"%s\"} %llu\n",
                            rate_limit_name((enum rate_limit_kind)i),
                            (unsigned long long)srv->limits.refused[i]);
    metrics_counter(out, "chatd_rate_limit_evictions_total",
                    "Rate-limit keys forgotten at [limits] max_tracked.", srv->limits.evictions);
    metrics_gauge(out, "chatd_rate_limit_keys", "Addresses and names with a rate-limit bucket.",
                  (double)ratelimits_tracked(&srv->limits));
    metrics_counter(out, "chatd_received_bytes_total", "Bytes read from clients.", m->bytes_in);
    metrics_counter(out, "chatd_sent_bytes_total", "Bytes queued for clients.", m->bytes_out);
    metrics_gauge(out, "chatd_input_buffer_bytes",
                  "Bytes allocated for the connections' requests being read (partial frames).",
                  (double)(m->input_buffer_bytes + io_threads_input_bytes(srv)));

    evbuffer_add_printf(out, "# HELP chatd_generic_errors_total Generic error lines sent, by "
                             "result.\n# TYPE chatd_generic_errors_total counter\n");
    for (size_t i = 0; i <= ERR_OTHER; i++)
        evbuffer_add_printf(out, "chatd_generic_errors_total{result=\"%s\"} %llu\n",
                            generic_words[i], (unsigned long long)m->generic_errors[i]);

    evbuffer_add_printf(out, "# HELP chatd_replies_total Replies sent, by command and result."
                             "\n# TYPE chatd_replies_total counter\n");
    struct command *c, *ctmp;
    HASH_ITER (hh, srv->commands, c, ctmp) {
        struct result_count *rc, *rtmp;
        HASH_ITER (hh, c->results, rc, rtmp) {
            evbuffer_add_printf(out, "chatd_replies_total{cmd=\"%s\",result=\"%s\"} %llu\n",
                                c->name, rc->word, (unsigned long long)rc->n);
        }
    }

    evbuffer_add_printf(out, "# HELP chatd_request_duration_seconds Time from a request's "
                             "arrival to its reply.\n# TYPE chatd_request_duration_seconds "
                             "histogram\n");
    uint64_t cumulative = 0;
    for (size_t b = 0; b < METRICS_LATENCY_BUCKETS; b++) {
        cumulative += m->latency_buckets[b];
        evbuffer_add_printf(out, "chatd_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                            latency_bounds[b], (unsigned long long)cumulative);
    }
    cumulative += m->latency_buckets[METRICS_LATENCY_BUCKETS];
    evbuffer_add_printf(out,
                        "chatd_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
                        "chatd_request_duration_seconds_sum %.9g\n"
                        "chatd_request_duration_seconds_count %llu\n",
                        (unsigned long long)cumulative, m->latency_sum,
                        (unsigned long long)m->latency_count);

    proxy_accept_render_metrics(srv, out);
    plugin_gauges(out, m);
    hook_counts(out, m);
    stream_render_metrics(srv, out);
    post_render_metrics(srv, out);
    cluster_render_metrics(srv, out);
    cluster_route_render_metrics(srv, out);
    if (!srv->pool)
        return;
    struct pool_stats p;
    pool_get_stats(srv->pool, &p);
    metrics_gauge(out, "chatd_db_up", "1 while the database answers.", p.database_up);
    queue_metrics(out, "chatd_jobs", "chatd_workers", "Database jobs", &p.db);
    queue_metrics(out, "chatd_cpu_jobs", "chatd_cpu_workers", "CPU jobs (no database)", &p.cpu);
    metrics_counter(out, "chatd_db_reconnects_total", "Database connections re-established.",
                    p.reconnects);
    metrics_counter(out, "chatd_jobs_retried_total", "Idempotent jobs run again after a loss.",
                    p.retries);
}
