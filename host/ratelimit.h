/* ratelimit.h - the [limits] of config.h: token buckets on the monotonic clock, kept
 * by source address or by account name in tables of bounded size, and the refusals
 * that say `rate_limited` with retry_after_ms. Loop thread only.
 *
 * A bucket holds up to `burst` tokens and regains `burst` of them every `period_ms`;
 * each attempt takes one, and an empty bucket refuses until the next token is due.
 *
 * Keys: an IPv4 address (also when it arrives IPv4-mapped on an IPv6 listener), the
 * /64 prefix of an IPv6 address (one customer's usual assignment), or an account name
 * folded to lower case (names are unique regardless of case).
 *
 * Bounded memory: a table tracks at most [limits] max_tracked keys (about 150 bytes
 * each). A bucket that has filled up again is forgotten when it reaches the front of
 * the table's least-recently-used list; at the cap the least recently used key is
 * forgotten, whatever its state, and starts again with a full bucket
 * (chatd_rate_limit_evictions_total counts them). A flood of new keys can thus only
 * make the limit more lenient for the longest-idle keys: it never refuses anyone for
 * lack of room, and memory stays bounded. Keys with open connections (the concurrent
 * connection count) are never forgotten; there are at most max_connections of them. */
#ifndef CHATD_HOST_RATELIMIT_H
#define CHATD_HOST_RATELIMIT_H

#include "config.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct server;
struct session;
struct sockaddr;
struct chatd_request;
struct rate_table;

#define RATE_KEY_MAX 32 /* the longest account name */

/* What a bucket is kept by; compared as raw bytes, so always built zeroed. */
struct rate_key {
    unsigned char len;
    unsigned char bytes[RATE_KEY_MAX];
};

struct rate_bucket {
    double tokens;
    int64_t stamp_ns; /* when tokens was right; 0: never used (full) */
};

/* The limits that refuse, each with its own counter in /metrics. */
enum rate_limit_kind {
    RATE_LOGIN_ADDRESS, /* login and register attempts per source address */
    RATE_FAILED_NAME,   /* failed logins per account name */
    RATE_REQUESTS,      /* requests per session */
    RATE_CONNECTIONS,   /* new connections per source address */
    RATE_CONCURRENT,    /* open connections per source address */
    RATE_LIMIT_KINDS
};

/* The server's tables (in struct server). */
struct ratelimits {
    struct rate_table *logins;      /* by address: login and register attempts */
    struct rate_table *failures;    /* by name: failed logins */
    struct rate_table *connections; /* by address: new connections and open ones */
    uint64_t refused[RATE_LIMIT_KINDS];
    uint64_t evictions;
};

/* 0, or -1 out of memory. */
int ratelimits_init(struct ratelimits *r);
void ratelimits_free(struct ratelimits *r);
/* How many keys the tables hold, for /metrics. */
size_t ratelimits_tracked(const struct ratelimits *r);
/* The name of a kind for /metrics' `limit` label. */
const char *rate_limit_name(enum rate_limit_kind kind);

void rate_key_address(struct rate_key *k, const struct sockaddr *addr);

/* Take one token from b under `rate` at now_ns: 0 when taken (or the limit is off),
 * else the milliseconds until one is due (at least 1). */
int64_t rate_bucket_take(struct rate_bucket *b, const struct config_rate *rate, int64_t now_ns);

/* A new connection from key: 0, or the milliseconds to wait, with the reason, when it
 * is over the concurrent-connection limit (a nominal 1000 ms: nobody knows when one of
 * the others closes) or, with take_token, the new-connection one. *counted says whether
 * an accepted one was counted as open (not with both limits off, nor out of memory):
 * only then does its close call connection_closed. */
int64_t ratelimit_connection_open(struct server *srv, const struct rate_key *key, int take_token,
                                  const char **reason, int *counted);
/* The new-connection token of a connection opened without one (a web connection that
 * upgrades to WebSocket): 0, or the milliseconds to wait, with the reason. */
int64_t ratelimit_connection_token(struct server *srv, const struct rate_key *key,
                                   const char **reason);
void ratelimit_connection_closed(struct server *srv, const struct rate_key *key);

/* One request of session s: 0, or the milliseconds to wait after answering it
 * `<cmd>_reply` rate_limited itself (with `id`). */
int64_t ratelimit_request(struct session *s, const char *cmd, json_t *id);

/* The ABI's auth_attempt and auth_failed (api/chatd/plugin.h). */
int ratelimit_auth_attempt(struct chatd_request *req, const char *name);
void ratelimit_auth_failed(struct chatd_request *req, const char *name, const char *why);
/* req logged its session in as user: a password login gives back what auth_attempt
 * took from the name's bucket, so that only logins that fail (or are still running)
 * count against it. */
void ratelimit_auth_succeeded(struct chatd_request *req, const char *user);

#endif
