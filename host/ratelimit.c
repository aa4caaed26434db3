/* ratelimit.c - token buckets by key in bounded tables, and the refusals of every
 * [limits] key (see ratelimit.h for the rules). */
#include "ratelimit.h"

#include "clock.h"
#include "log.h"
#include "request.h"
#include "server.h"
#include "session.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <utlist.h>

struct rate_entry {
    struct rate_key key;
    struct rate_bucket bucket;
    uint32_t open;                  /* open connections: never forgotten while > 0 */
    struct rate_entry *prev, *next; /* the LRU list, least recent first; not while open */
    UT_hash_handle hh;
};

struct rate_table {
    struct rate_entry *by_key;
    struct rate_entry *lru;
};

static const char *const kind_names[RATE_LIMIT_KINDS] = {
    "login_per_address", "failed_login_per_name", "requests_per_session", "connections_per_address",
    "max_connections_per_address"};

const char *rate_limit_name(enum rate_limit_kind kind)
{
    return kind_names[kind];
}

int ratelimits_init(struct ratelimits *r)
{
    memset(r, 0, sizeof(*r));
    r->logins = calloc(1, sizeof(struct rate_table));
    r->failures = calloc(1, sizeof(struct rate_table));
    r->connections = calloc(1, sizeof(struct rate_table));
    if (r->logins && r->failures && r->connections)
        return 0;
    ratelimits_free(r);
    return -1;
}

static void table_free(struct rate_table *t)
{
    if (!t)
        return;
    struct rate_entry *e, *tmp;
    HASH_ITER (hh, t->by_key, e, tmp) {
        HASH_DEL(t->by_key, e);
        free(e);
    }
    free(t);
}

void ratelimits_free(struct ratelimits *r)
{
    table_free(r->logins);
    table_free(r->failures);
    table_free(r->connections);
    r->logins = r->failures = r->connections = NULL;
}

size_t ratelimits_tracked(const struct ratelimits *r)
{
    return HASH_COUNT(r->logins->by_key) + HASH_COUNT(r->failures->by_key) +
           HASH_COUNT(r->connections->by_key);
}

void rate_key_address(struct rate_key *k, const struct sockaddr *addr)
{
    memset(k, 0, sizeof(*k));
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)addr;
        k->len = 4;
        memcpy(k->bytes, &in->sin_addr, 4);
    } else if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)addr;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            k->len = 4;
            memcpy(k->bytes, in6->sin6_addr.s6_addr + 12, 4);
        } else {
            k->len = 8; /* the /64 prefix */
            memcpy(k->bytes, in6->sin6_addr.s6_addr, 8);
        }
    }
    /* Anything else (a unix socket) is the one empty key. */
}

/* An account name folded to lower case, cut at RATE_KEY_MAX (names are no longer). */
static void rate_key_name(struct rate_key *k, const char *name)
{
    memset(k, 0, sizeof(*k));
    size_t n = strnlen(name, RATE_KEY_MAX);
    for (size_t i = 0; i < n; i++)
        k->bytes[i] = (unsigned char)tolower((unsigned char)name[i]);
    k->len = (unsigned char)n;
}

static int64_t period_ns(const struct config_rate *rate)
{
    return rate->period_ms * 1000000;
}

static void refill(struct rate_bucket *b, const struct config_rate *rate, int64_t now_ns)
{
    if (b->stamp_ns == 0) {
        b->tokens = (double)rate->burst;
    } else if (now_ns > b->stamp_ns) {
        b->tokens += (double)(now_ns - b->stamp_ns) * (double)rate->burst / (double)period_ns(rate);
        if (b->tokens > (double)rate->burst)
            b->tokens = (double)rate->burst;
    }
    b->stamp_ns = now_ns;
}

/* Milliseconds until b has a whole token; 0 when it has one. */
static int64_t wait_ms(const struct rate_bucket *b, const struct config_rate *rate)
{
    if (b->tokens >= 1.0)
        return 0;
    double ms = (1.0 - b->tokens) * (double)rate->period_ms / (double)rate->burst;
    return (int64_t)ms + 1; /* rounded up */
}

int64_t rate_bucket_take(struct rate_bucket *b, const struct config_rate *rate, int64_t now_ns)
{
    if (rate->burst == 0)
        return 0;
    refill(b, rate, now_ns);
    int64_t wait = wait_ms(b, rate);
    if (wait == 0)
        b->tokens -= 1.0;
    return wait;
}

/* Whether e's bucket would be full again by now: forgetting it changes nothing. */
static int idle_and_full(const struct rate_entry *e, const struct config_rate *rate, int64_t now)
{
    if (e->open > 0)
        return 0;
    if (rate->burst == 0 || e->bucket.stamp_ns == 0)
        return 1;
    double missing = (double)rate->burst - e->bucket.tokens;
    return (double)(now - e->bucket.stamp_ns) * (double)rate->burst >=
           missing * (double)period_ns(rate);
}

static void forget(struct rate_table *t, struct rate_entry *e)
{
    if (e->open == 0)
        DL_DELETE(t->lru, e);
    HASH_DEL(t->by_key, e);
    free(e);
}

/* key's entry, made when `create` (NULL when it cannot be, or is not there), moved to
 * the back of the LRU list. Every lookup first forgets up to two idle, full buckets
 * from the front, so a table shrinks back as the traffic goes. */
static struct rate_entry *lookup(struct server *srv, struct rate_table *t,
                                 const struct rate_key *key, const struct config_rate *rate,
                                 int create, int64_t now)
{
    for (int i = 0; i < 2 && t->lru && idle_and_full(t->lru, rate, now); i++)
        forget(t, t->lru);
    struct rate_entry *e;
    HASH_FIND(hh, t->by_key, key, sizeof(*key), e);
    if (e) {
        if (e->open == 0) {
            DL_DELETE(t->lru, e);
            DL_APPEND(t->lru, e);
        }
        return e;
    }
    if (!create)
        return NULL;
    if (HASH_COUNT(t->by_key) >= (size_t)srv->cfg->limits.max_tracked && t->lru) {
        forget(t, t->lru);
        srv->limits.evictions++;
    }
    e = calloc(1, sizeof(*e));
    if (!e)
        return NULL; /* out of memory: this attempt goes unlimited rather than refused */
    e->key = *key;
    HASH_ADD(hh, t->by_key, key, sizeof(e->key), e);
    DL_APPEND(t->lru, e);
    return e;
}

/* Take a token of key's bucket in t: 0, or the milliseconds to wait. */
static int64_t take(struct server *srv, struct rate_table *t, const struct rate_key *key,
                    const struct config_rate *rate)
{
    if (rate->burst == 0)
        return 0;
    int64_t now = now_ns();
    struct rate_entry *e = lookup(srv, t, key, rate, 1, now);
    return e ? rate_bucket_take(&e->bucket, rate, now) : 0;
}

/* A new connection's token of key's entry e: 0, or the milliseconds to wait. */
static int64_t take_connection_token(struct server *srv, struct rate_entry *e, const char **reason,
                                     int64_t now)
{
    const struct config_rate *rate = &srv->cfg->limits.connections_per_address;
    int64_t wait = rate->burst > 0 ? rate_bucket_take(&e->bucket, rate, now) : 0;
    if (wait > 0) {
        srv->limits.refused[RATE_CONNECTIONS]++;
        *reason = "too many new connections from your address";
    }
    return wait;
}

int64_t ratelimit_connection_open(struct server *srv, const struct rate_key *key, int take_token,
                                  const char **reason, int *counted)
{
    *counted = 0;
    const struct config_limits *lim = &srv->cfg->limits;
    if (lim->max_connections_per_address == 0 && lim->connections_per_address.burst == 0)
        return 0;
    int64_t now = now_ns();
    struct rate_entry *e =
        lookup(srv, srv->limits.connections, key, &lim->connections_per_address, 1, now);
    if (!e)
        return 0;
    if (lim->max_connections_per_address > 0 &&
        e->open >= (uint64_t)lim->max_connections_per_address) {
        srv->limits.refused[RATE_CONCURRENT]++;
        *reason = "too many open connections from your address";
        return 1000;
    }
    int64_t wait = take_token ? take_connection_token(srv, e, reason, now) : 0;
    if (wait > 0)
        return wait;
    if (e->open++ == 0)
        DL_DELETE(srv->limits.connections->lru, e);
    *counted = 1;
    return 0;
}

int64_t ratelimit_connection_token(struct server *srv, const struct rate_key *key,
                                   const char **reason)
{
    const struct config_limits *lim = &srv->cfg->limits;
    if (lim->connections_per_address.burst == 0)
        return 0;
    int64_t now = now_ns();
    struct rate_entry *e =
        lookup(srv, srv->limits.connections, key, &lim->connections_per_address, 1, now);
    return e ? take_connection_token(srv, e, reason, now) : 0;
}

void ratelimit_connection_closed(struct server *srv, const struct rate_key *key)
{
    struct rate_table *t = srv->limits.connections;
    struct rate_entry *e;
    HASH_FIND(hh, t->by_key, key, sizeof(*key), e);
    if (e && e->open > 0 && --e->open == 0)
        DL_APPEND(t->lru, e);
}

/* {"cmd":"<cmd>_reply","result":"rate_limited","retry_after_ms":wait,"id":...}, from a
 * session (before any request exists) or for a request. */
int64_t ratelimit_request(struct session *s, const char *cmd, json_t *id)
{
    struct server *srv = s->server;
    int64_t wait = rate_bucket_take(&s->requests, &srv->cfg->limits.requests_per_session, now_ns());
    if (wait == 0)
        return 0;
    srv->limits.refused[RATE_REQUESTS]++;
    json_t *reply = json_pack("{s:s+,s:s,s:I,s:s}", "cmd", cmd, "_reply", "result", "rate_limited",
                              "retry_after_ms", (json_int_t)wait, "reason",
                              "too many requests on this connection");
    if (reply && id)
        json_object_set(reply, "id", id);
    if (reply)
        session_send(s, reply);
    else
        session_close(s, "out of memory");
    json_decref(reply);
    return wait;
}

static void refuse_attempt(struct chatd_request *req, enum rate_limit_kind kind, int64_t wait,
                           const char *reason)
{
    req->server->limits.refused[kind]++;
    json_t *fields = json_pack("{s:I,s:s}", "retry_after_ms", (json_int_t)wait, "reason", reason);
    request_reply(req, "rate_limited", fields);
}

int ratelimit_auth_attempt(struct chatd_request *req, const char *name)
{
    struct server *srv = req->server;
    const struct config_limits *lim = &srv->cfg->limits;
    int64_t wait = take(srv, srv->limits.logins, &req->source, &lim->login_per_address);
    if (wait > 0) {
        refuse_attempt(req, RATE_LOGIN_ADDRESS, wait, "too many login attempts from your address");
        return CHATD_ELIMITED;
    }
    if (!name || lim->failed_login_per_name.burst == 0)
        return 0;
    /* Every password login takes a token now, not when it has failed: guesses still
     * being hashed count too, so a burst of them in parallel cannot pass the limit. One
     * that logs in gives it back (ratelimit_auth_succeeded). */
    struct rate_key key;
    rate_key_name(&key, name);
    wait = take(srv, srv->limits.failures, &key, &lim->failed_login_per_name);
    if (wait > 0) {
        refuse_attempt(req, RATE_FAILED_NAME, wait, "too many failed logins for this name");
        return CHATD_ELIMITED;
    }
    req->auth_charged = 1;
    return 0;
}

void ratelimit_auth_failed(struct chatd_request *req, const char *name, const char *why)
{
    struct server *srv = req->server;
    /* The name as the client sent it, made safe for one log line. */
    char shown[RATE_KEY_MAX + 1];
    size_t n = strnlen(name, RATE_KEY_MAX);
    for (size_t i = 0; i < n; i++)
        shown[i] = isalnum((unsigned char)name[i]) || name[i] == '_' ? name[i] : '?';
    shown[n] = '\0';
    log_warn("failed login for '%s' from %s: %s", shown, req->peer, why ? why : "refused");
    if (req->auth_charged)
        return; /* taken when it was attempted */
    struct rate_key key;
    rate_key_name(&key, name);
    take(srv, srv->limits.failures, &key, &srv->cfg->limits.failed_login_per_name);
}

void ratelimit_auth_succeeded(struct chatd_request *req, const char *user)
{
    if (!req->auth_charged)
        return;
    req->auth_charged = 0;
    struct server *srv = req->server;
    const struct config_rate *rate = &srv->cfg->limits.failed_login_per_name;
    struct rate_key key;
    rate_key_name(&key, user);
    int64_t now = now_ns();
    struct rate_entry *e = lookup(srv, srv->limits.failures, &key, rate, 0, now);
    if (!e || rate->burst == 0)
        return;
    refill(&e->bucket, rate, now);
    e->bucket.tokens =
        e->bucket.tokens + 1.0 > (double)rate->burst ? (double)rate->burst : e->bucket.tokens + 1.0;
}
