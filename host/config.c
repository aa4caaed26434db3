/* config.c - reads the INI config with inih and checks every line against the host's
 * key table, reporting the first problem as file:line. */
#include "config.h"

#include "cidr.h"
#include "log.h"
#include "proxy_header.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

enum key_kind {
    KEY_INT,
    KEY_INT_OR_AUTO, /* a number in range, or auto (stored as -1) */
    KEY_BOOL,
    KEY_STRING,
    KEY_LOG_LEVEL,
    KEY_LISTEN,
    KEY_NAME_LIST,
    KEY_NAME,
    KEY_TLS_VERSION,
    KEY_RATE,
    KEY_NODE_NAME,
    KEY_REDIS,
    KEY_PROXY_PROTOCOL,
    KEY_CIDR_LIST,
    KEY_ADDRESS,
    KEY_ORIGINS
};

struct host_key {
    const char *section;
    const char *key;
    enum key_kind kind;
    size_t offset; /* into struct config */
    int64_t min, max;
    const char *default_value;
};

#define FIELD(member) offsetof(struct config, member)

/* Forward secrecy and authenticated encryption only (Mozilla's "intermediate" list). */
#define TLS_DEFAULT_CIPHERS                                                                        \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"     \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* Every key the host itself understands. Defaults are written as in the file. */
static const struct host_key host_keys[] = {
    {"server", "listen", KEY_LISTEN, 0, 0, 0, NULL},
    {"server", "max_connections", KEY_INT, FIELD(max_connections), 1, 1000000, "10000"},
    {"server", "idle_timeout", KEY_INT, FIELD(idle_timeout_s), 0, 86400 * 7, "300"},
    {"server", "max_frame_bytes", KEY_INT, FIELD(max_frame_bytes), 256, 16 << 20, "65536"},
    {"server", "max_output_bytes", KEY_INT, FIELD(max_output_bytes), 4096, 1 << 30, "1048576"},
    {"server", "output_pause_bytes", KEY_INT, FIELD(output_pause_bytes), 1024, 1 << 30, "32768"},
    {"server", "max_pipelined", KEY_INT, FIELD(max_pipelined), 1, 1024, "16"},
    {"server", "frame_timeout", KEY_INT, FIELD(frame_timeout_s), 0, 3600, "10"},
    {"server", "login_timeout", KEY_INT, FIELD(login_timeout_s), 0, 86400, "60"},
    {"server", "shutdown_timeout", KEY_INT, FIELD(shutdown_timeout_s), 0, 3600, "10"},
    {"server", "hook_timeout_ms", KEY_INT, FIELD(hook_timeout_ms), 10, 600000, "10000"},
    {"server", "cpu_workers", KEY_INT, FIELD(cpu_workers), 0, 256, "0"},
    {"server", "cpu_queue_max", KEY_INT, FIELD(cpu_queue_max), 1, 1000000, "64"},
    {"server", "io_threads", KEY_INT_OR_AUTO, FIELD(io_threads), 0, 64, "auto"},
    {"server", "proxy_protocol", KEY_PROXY_PROTOCOL, FIELD(proxy_protocol), 0, 0, "off"},
    {"server", "proxy_from", KEY_CIDR_LIST, 0, 0, 0, "127.0.0.1/32, ::1/128"},
    {"log", "level", KEY_LOG_LEVEL, FIELD(log_level), 0, 0, "info"},
    {"log", "syslog", KEY_BOOL, FIELD(log_syslog), 0, 0, "no"},
    {"log", "syslog_ident", KEY_STRING, FIELD(log_ident), 1, 64, "chatd"},
    {"plugins", "dir", KEY_STRING, FIELD(plugin_dir), 1, PATH_MAX, CHATD_DEFAULT_PLUGIN_DIR},
    {"plugins", "enable", KEY_NAME_LIST, 0, 0, 0, NULL},
    {"plugins", "authenticator", KEY_NAME, FIELD(authenticator), 1, 32, NULL},
    {"tls", "certificate", KEY_STRING, FIELD(tls.certificate), 0, PATH_MAX, ""},
    {"tls", "key", KEY_STRING, FIELD(tls.key), 0, PATH_MAX, ""},
    {"tls", "ciphers", KEY_STRING, FIELD(tls.ciphers), 1, 2048, TLS_DEFAULT_CIPHERS},
    {"tls", "min_version", KEY_TLS_VERSION, FIELD(tls.min_version), 0, 0, "1.2"},
    {"tls", "handshake_timeout", KEY_INT, FIELD(tls.handshake_timeout_s), 1, 600, "10"},
    {"limits", "login_per_address", KEY_RATE, FIELD(limits.login_per_address), 0, 0, "20/60s"},
    {"limits", "failed_login_per_name", KEY_RATE, FIELD(limits.failed_login_per_name), 0, 0,
     "10/15m"},
    {"limits", "requests_per_session", KEY_RATE, FIELD(limits.requests_per_session), 0, 0,
     "200/2s"},
    {"limits", "connections_per_address", KEY_RATE, FIELD(limits.connections_per_address), 0, 0,
     "60/60s"},
    {"limits", "max_connections_per_address", KEY_INT, FIELD(limits.max_connections_per_address), 0,
     1000000, "100"},
    {"limits", "max_tracked", KEY_INT, FIELD(limits.max_tracked), 16, 10000000, "50000"},
    {"web", "enable", KEY_BOOL, FIELD(web.enable), 0, 0, "no"},
    {"web", "listen", KEY_ADDRESS, FIELD(web.listen), 3, 300, "127.0.0.1:8080"},
    {"web", "tls", KEY_BOOL, FIELD(web.tls), 0, 0, "no"},
    {"web", "allowed_origins", KEY_ORIGINS, FIELD(web.allowed_origins), 0, 4096, ""},
    {"web", "root", KEY_STRING, FIELD(web.root), 1, PATH_MAX, CHATD_DEFAULT_WEB_ROOT},
    {"web", "ping_interval", KEY_INT, FIELD(web.ping_interval_s), 1, 3600, "30"},
    {"web", "pong_timeout", KEY_INT, FIELD(web.pong_timeout_s), 1, 3600, "10"},
    {"web", "request_timeout", KEY_INT, FIELD(web.request_timeout_s), 1, 600, "10"},
    {"admin", "enable", KEY_BOOL, FIELD(admin_enable), 0, 0, "no"},
    {"admin", "listen", KEY_STRING, FIELD(admin_listen), 3, 300, "127.0.0.1:9100"},
    {"admin", "max_connections", KEY_INT, FIELD(admin_max_connections), 1, 10000, "16"},
    {"admin", "token_file", KEY_STRING, FIELD(admin_token_file), 0, PATH_MAX, ""},
    {"admin", "metrics_token", KEY_BOOL, FIELD(admin_metrics_token), 0, 0, "no"},
    {"messages", "batch_max", KEY_INT, FIELD(messages.batch_max), 1, 100000, "1000"},
    {"messages", "retention_days", KEY_INT, FIELD(messages.retention_days), 1, 36500, "365"},
    {"messages", "retention_count", KEY_INT, FIELD(messages.retention_count), 0, 1000000000, "0"},
    {"messages", "device_forget_days", KEY_INT, FIELD(messages.device_forget_days), 1, 36500, "90"},
    {"messages", "max_devices", KEY_INT, FIELD(messages.max_devices), 1, 1000, "32"},
    {"database", "enable", KEY_BOOL, FIELD(db.enable), 0, 0, "no"},
    {"database", "socket", KEY_STRING, FIELD(db.socket), 0, PATH_MAX, ""},
    {"database", "host", KEY_STRING, FIELD(db.host), 1, 255, "localhost"},
    {"database", "port", KEY_INT, FIELD(db.port), 1, 65535, "3306"},
    {"database", "user", KEY_STRING, FIELD(db.user), 1, 80, "chatd"},
    {"database", "password", KEY_STRING, FIELD(db.password), 0, 256, ""},
    {"database", "password_file", KEY_STRING, FIELD(db.password_file), 0, PATH_MAX, ""},
    {"database", "name", KEY_STRING, FIELD(db.name), 1, 64, "chatd"},
    {"database", "tls", KEY_BOOL, FIELD(db.tls), 0, 0, "no"},
    {"database", "tls_verify", KEY_BOOL, FIELD(db.tls_verify), 0, 0, "yes"},
    {"database", "tls_ca", KEY_STRING, FIELD(db.tls_ca), 0, PATH_MAX, ""},
    {"database", "tls_cert", KEY_STRING, FIELD(db.tls_cert), 0, PATH_MAX, ""},
    {"database", "tls_key", KEY_STRING, FIELD(db.tls_key), 0, PATH_MAX, ""},
    {"database", "workers", KEY_INT, FIELD(db.workers), 1, 256, "4"},
    {"database", "queue_max", KEY_INT, FIELD(db.queue_max), 1, 1000000, "4096"},
    {"database", "job_timeout_ms", KEY_INT, FIELD(db.job_timeout_ms), 10, 600000, "5000"},
    {"database", "connect_timeout", KEY_INT, FIELD(db.connect_timeout_s), 1, 600, "3"},
    {"cluster", "enable", KEY_BOOL, FIELD(cluster.enable), 0, 0, "no"},
    /* Default: the host name (config_defaults). */
    {"cluster", "node", KEY_NODE_NAME, FIELD(cluster.node), 1, 32, NULL},
    {"cluster", "redis", KEY_REDIS, FIELD(cluster.redis), 1, PATH_MAX, "127.0.0.1:6379"},
    {"cluster", "redis_password_file", KEY_STRING, FIELD(cluster.redis_password_file), 0, PATH_MAX,
     ""},
    {"cluster", "lease_ms", KEY_INT, FIELD(cluster.lease_ms), 1000, 3600000, "10000"},
    {"cluster", "connect_timeout_ms", KEY_INT, FIELD(cluster.connect_timeout_ms), 10, 600000,
     "2000"},
    {"cluster", "gap_wait_ms", KEY_INT, FIELD(cluster.gap_wait_ms), 1, 600000, "200"},
    {"cluster", "required", KEY_BOOL, FIELD(cluster.required), 0, 0, "no"},
};
#define N_HOST_KEYS (sizeof(host_keys) / sizeof(host_keys[0]))

/* State of one parse: the reader counts lines so the handler knows where it is. */
struct parse_state {
    struct config *cfg;
    FILE *file;
    int line;
    int error_line; /* first error found by us; 0 if none */
    char error[CONFIG_ERROR_MAX];
    unsigned char seen[N_HOST_KEYS];
};

static void set_error(struct parse_state *st, const char *fmt, ...) CHATD_PRINTF(2, 3);
static void set_error(struct parse_state *st, const char *fmt, ...)
{
    if (st->error_line)
        return; /* keep the first */
    st->error_line = st->line;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->error, sizeof(st->error), fmt, ap);
    va_end(ap);
}

/* Out of memory: cfg->nomem is set and the build fails with "out of memory" (the caller
 * stops chatd at start-up; a reload keeps the running configuration). Never aborts:
 * a reload parses while chatd is serving. */
static char *xstrdup(struct config *cfg, const char *s)
{
    char *copy = strdup(s);
    if (!copy)
        cfg->nomem = 1;
    return copy;
}

/* Grow *p to n bytes; -1 (and *p unchanged) when out of memory. */
static int xgrow(struct config *cfg, void *p, size_t n)
{
    void *q = realloc(*(void **)p, n);
    if (!q) {
        cfg->nomem = 1;
        return -1;
    }
    *(void **)p = q;
    return 0;
}

int config_valid_name(const char *text, size_t max)
{
    size_t n = strlen(text);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return 1;
}

int config_valid_node_name(const char *text)
{
    size_t n = strlen(text);
    if (n == 0 || n > 32)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

/* The host name up to its first dot, each byte outside a node name's set made '-', cut
 * to 32 bytes; "chatd" when there is none. */
static void default_node_name(char *out, size_t cap)
{
    char host[256] = "";
    if (gethostname(host, sizeof(host) - 1) != 0)
        host[0] = '\0';
    host[strcspn(host, ".")] = '\0';
    size_t n = 0;
    for (; host[n] && n < 32 && n + 1 < cap; n++) {
        char one[2] = {host[n], '\0'};
        out[n] = config_valid_node_name(one) ? host[n] : '-';
    }
    out[n] = '\0';
    if (n == 0)
        snprintf(out, cap, "chatd");
}

void config_redis_free(struct config_redis *r)
{
    free(r->unix_path);
    free(r->host);
    memset(r, 0, sizeof(*r));
}

int config_parse_redis(const char *text, struct config_redis *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (strncmp(text, "unix:", 5) == 0) {
        if (text[5] != '/' || strlen(text + 5) >= 108) { /* sun_path */
            snprintf(err, errlen, "'%s': unix: needs an absolute path of at most 107 bytes", text);
            return -1;
        }
        if (!(out->unix_path = strdup(text + 5))) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        return 0;
    }
    struct config_listen where = {0};
    if (config_parse_listen(text, &where, err, errlen) < 0)
        return -1;
    int rc = -1;
    unsigned char addr[16];
    if (where.tls || where.direct)
        snprintf(err, errlen,
                 "'%s': no words after a Redis address (use unix:/path or address:port)", text);
    else if (strcmp(where.host, "localhost") != 0 && inet_pton(AF_INET, where.host, addr) != 1 &&
             inet_pton(AF_INET6, where.host, addr) != 1)
        snprintf(err, errlen,
                 "'%s': give a numeric address (or localhost): a name would be looked up with a "
                 "blocking call",
                 text);
    else if (!(out->host = strdup(strcmp(where.host, "localhost") == 0 ? "127.0.0.1" : where.host)))
        snprintf(err, errlen, "out of memory");
    else {
        out->port = atoi(where.port);
        rc = 0;
    }
    free(where.host);
    free(where.port);
    return rc;
}

int config_parse_int(const char *text, int64_t min, int64_t max, int64_t *out, char *err,
                     size_t errlen)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (*text == '\0' || *end != '\0' || errno == ERANGE) {
        snprintf(err, errlen, "'%s' is not an integer", text);
        return -1;
    }
    if (v < min || v > max) {
        snprintf(err, errlen, "%lld is out of range [%lld, %lld]", v, (long long)min,
                 (long long)max);
        return -1;
    }
    *out = v;
    return 0;
}

int config_parse_bool(const char *text, int *out, char *err, size_t errlen)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcmp(text, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcmp(text, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    snprintf(err, errlen, "'%s' is not a boolean (yes/no, true/false, on/off, 1/0)", text);
    return -1;
}

int config_parse_rate(const char *text, struct config_rate *out, char *err, size_t errlen)
{
    if (strcmp(text, "off") == 0) {
        out->burst = 0;
        out->period_ms = 1000;
        return 0;
    }
    char *end;
    errno = 0;
    long long count = strtoll(text, &end, 10);
    long long period = 0;
    if (end != text && *end == '/' && end[1] >= '0' && end[1] <= '9')
        period = strtoll(end + 1, &end, 10);
    static const struct {
        char unit;
        long long ms, max; /* the unit in ms; the most of it (one day) */
    } units[] = {{'s', 1000, 86400}, {'m', 60000, 1440}, {'h', 3600000, 24}};
    for (size_t i = 0; period > 0 && errno == 0 && i < sizeof(units) / sizeof(units[0]); i++) {
        if (end[0] != units[i].unit || end[1] != '\0')
            continue;
        if (count < 1 || count > 1000000 || period > units[i].max) {
            snprintf(err, errlen, "'%s': the count must be 1 to 1000000, the period at most a day",
                     text);
            return -1;
        }
        out->burst = count;
        out->period_ms = period * units[i].ms;
        return 0;
    }
    snprintf(err, errlen, "'%s' is not COUNT/PERIOD (such as 20/60s, 10/15m, 100/1h) or off", text);
    return -1;
}

/* "host:port tls direct": the address, then the words that mark a TLS listener and one
 * whose clients come without a PROXY header, in any order. */
static int split_listen_words(const char *text, char *address, size_t cap,
                              struct config_listen *out, char *err, size_t errlen)
{
    size_t n = strcspn(text, " \t");
    if (n >= cap) {
        snprintf(err, errlen, "'%s' is too long for an address", text);
        return -1;
    }
    memcpy(address, text, n);
    address[n] = '\0';
    const char *word = text + n;
    for (;;) {
        word += strspn(word, " \t");
        size_t len = strcspn(word, " \t");
        if (len == 0)
            return 0;
        int *flag = len == 3 && strncmp(word, "tls", 3) == 0      ? &out->tls
                    : len == 6 && strncmp(word, "direct", 6) == 0 ? &out->direct
                                                                  : NULL;
        if (!flag || *flag) {
            snprintf(err, errlen,
                     "'%.*s' after the address: the words allowed there are tls and "
                     "direct, once each",
                     (int)len, word);
            return -1;
        }
        *flag = 1;
        word += len;
    }
}

int config_parse_listen(const char *whole, struct config_listen *out, char *err, size_t errlen)
{
    const char *colon;
    char host[256], text[320];
    struct config_listen words = {0};
    if (split_listen_words(whole, text, sizeof(text), &words, err, errlen) < 0)
        return -1;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':') {
            snprintf(err, errlen, "'%s' is not [ipv6-address]:port", text);
            return -1;
        }
        colon = close + 1;
        size_t n = (size_t)(close - text - 1);
        if (n == 0 || n >= sizeof(host))
            goto bad;
        memcpy(host, text + 1, n);
        host[n] = '\0';
    } else {
        colon = strrchr(text, ':');
        if (!colon || colon == text || (size_t)(colon - text) >= sizeof(host) ||
            memchr(text, ':', (size_t)(colon - text)))
            goto bad;
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = '\0';
    }
    int64_t port;
    if (config_parse_int(colon + 1, 1, 65535, &port, err, errlen) < 0) {
        snprintf(err, errlen, "port '%s' must be a number from 1 to 65535", colon + 1);
        return -1;
    }
    out->host = strdup(host);
    out->port = strdup(colon + 1);
    if (!out->host || !out->port) {
        free(out->host);
        free(out->port);
        out->host = out->port = NULL;
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    out->tls = words.tls;
    out->direct = words.direct;
    return 0;
bad:
    snprintf(err, errlen, "'%s' is not address:port (use [addr]:port for IPv6)", text);
    return -1;
}

static int add_listener(struct config *cfg, struct config_listen *l)
{
    if (xgrow(cfg, &cfg->listeners, (cfg->n_listeners + 1) * sizeof(*l)) < 0) {
        free(l->host);
        free(l->port);
        return -1;
    }
    cfg->listeners[cfg->n_listeners++] = *l;
    return 0;
}

static void free_listeners(struct config *cfg)
{
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        free(cfg->listeners[i].host);
        free(cfg->listeners[i].port);
    }
    free(cfg->listeners);
    cfg->listeners = NULL;
    cfg->n_listeners = 0;
}

int config_set_listen(struct config *cfg, const char *text, char *err, size_t errlen)
{
    struct config next = {0};
    char *list = strdup(text), *save = NULL;
    if (!list) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
    for (char *one = strtok_r(list, ",", &save); one && rc == 0; one = strtok_r(NULL, ",", &save)) {
        one += strspn(one, " \t");
        struct config_listen l = {0};
        rc = config_parse_listen(one, &l, err, errlen);
        if (rc == 0 && add_listener(&next, &l) < 0) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        }
    }
    free(list);
    if (rc == 0 && next.n_listeners == 0) {
        snprintf(err, errlen, "'%s' names no address", text);
        rc = -1;
    }
    if (rc < 0) {
        cfg->nomem |= next.nomem; /* out of memory is no usage error (config_build) */
        free_listeners(&next);
        return -1;
    }
    free_listeners(cfg);
    cfg->listeners = next.listeners;
    cfg->n_listeners = next.n_listeners;
    return 0;
}

/* One origin: scheme://host[:port], nothing after (a browser's Origin never has a path). */
static int valid_origin(const char *o, size_t n)
{
    size_t scheme = n >= 7 && strncmp(o, "http://", 7) == 0    ? 7
                    : n >= 8 && strncmp(o, "https://", 8) == 0 ? 8
                                                               : 0;
    if (!scheme || n == scheme)
        return 0;
    for (size_t i = scheme; i < n; i++)
        if (o[i] == '/' || o[i] == '?' || o[i] == '#' || o[i] == '@' || (unsigned char)o[i] <= ' ')
            return 0;
    return 1;
}

int config_parse_origins(const char *text, const char *origin, int *allowed, char *err,
                         size_t errlen)
{
    if (allowed)
        *allowed = 0;
    const char *p = text;
    while (*p) {
        p += strspn(p, ", \t");
        size_t n = strcspn(p, ", \t");
        if (n == 0)
            break;
        if (!(n == 1 && *p == '*') && !valid_origin(p, n)) {
            snprintf(err, errlen, "'%.*s' is not an origin (http://host[:port], https://...) or *",
                     (int)(n > 200 ? 200 : n), p);
            return -1;
        }
        if (allowed && origin &&
            ((n == 1 && *p == '*') || (strlen(origin) == n && strncasecmp(p, origin, n) == 0)))
            *allowed = 1;
        p += n;
    }
    return 0;
}

int config_has_tls_listener(const struct config *cfg)
{
    if (cfg->web.enable && cfg->web.tls)
        return 1;
    for (size_t i = 0; i < cfg->n_listeners; i++)
        if (cfg->listeners[i].tls)
            return 1;
    return 0;
}

/* A TLS listener needs its certificate and key (whether they load is tls_context.c's
 * check, at start and at every reload). */
static int check_tls(const struct config *cfg, char *err, size_t errlen)
{
    if (cfg->web.enable && cfg->web.tls && !(cfg->tls.certificate[0] && cfg->tls.key[0])) {
        snprintf(err, errlen, "%s: [web] tls = yes needs [tls] certificate and [tls] key",
                 cfg->path ? cfg->path : "config");
        return -1;
    }
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const struct config_listen *l = &cfg->listeners[i];
        if (!l->tls || (cfg->tls.certificate[0] && cfg->tls.key[0]))
            continue;
        char where[64] = "--listen";
        if (l->line)
            snprintf(where, sizeof(where), "line %d", l->line);
        snprintf(err, errlen,
                 "%s: the TLS listener %s:%s (%s) needs [tls] certificate and [tls] key",
                 cfg->path ? cfg->path : "config", l->host, l->port, where);
        return -1;
    }
    return 0;
}

/* Split "a, b c" into names, each checked and unique. */
static void parse_enable_list(struct parse_state *st, const char *value)
{
    struct config *cfg = st->cfg;
    char *copy = xstrdup(cfg, value);
    char *save = NULL;
    if (!copy)
        return;
    for (char *tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
        if (!config_valid_name(tok, 32)) {
            set_error(st, "plugin name '%s' is invalid (use a-z, 0-9 and _, 1 to 32 bytes)", tok);
            break;
        }
        for (size_t i = 0; i < cfg->n_enabled; i++) {
            if (strcmp(cfg->enabled[i], tok) == 0) {
                set_error(st, "plugin '%s' is enabled twice", tok);
                goto out;
            }
        }
        if (xgrow(cfg, &cfg->enabled, (cfg->n_enabled + 1) * sizeof(char *)) < 0 ||
            xgrow(cfg, &cfg->enabled_lines, (cfg->n_enabled + 1) * sizeof(int)) < 0 ||
            !(cfg->enabled[cfg->n_enabled] = xstrdup(cfg, tok)))
            break;
        cfg->enabled_lines[cfg->n_enabled++] = st->line;
    }
out:
    free(copy);
}

/* "off", "v1", "v2" or "any" as PROXY_V1 | PROXY_V2 bits; -1 for anything else. */
static int64_t parse_proxy_protocol(const char *text)
{
    static const struct {
        const char *word;
        int64_t versions;
    } words[] = {{"off", 0}, {"v1", PROXY_V1}, {"v2", PROXY_V2}, {"any", PROXY_V1 | PROXY_V2}};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strcmp(text, words[i].word) == 0)
            return words[i].versions;
    return -1;
}

/* Split "a/n, b c/m" into address prefixes, which replace cfg's proxy_from. */
static void parse_proxy_from(struct parse_state *st, const char *value)
{
    struct config *cfg = st->cfg;
    char *copy = xstrdup(cfg, value), *save = NULL;
    struct cidr *list = NULL;
    size_t n = 0;
    int failed = !copy;
    for (char *tok = copy ? strtok_r(copy, ", \t", &save) : NULL; tok && !failed;
         tok = strtok_r(NULL, ", \t", &save)) {
        struct cidr one;
        if (cidr_parse(tok, &one) < 0) {
            set_error(st, "[server] proxy_from: '%s' is not an address or address/bits", tok);
            failed = 1;
        } else if (xgrow(cfg, &list, (n + 1) * sizeof(*list)) < 0) {
            failed = 1;
        } else {
            list[n++] = one;
        }
    }
    if (!failed && n == 0) {
        set_error(st, "[server] proxy_from: no address (the default is 127.0.0.1/32, ::1/128)");
        failed = 1;
    }
    free(copy);
    if (failed) {
        free(list);
        return;
    }
    free(cfg->proxy_from);
    cfg->proxy_from = list;
    cfg->n_proxy_from = n;
}

/* "host:port" or "[v6]:port" alone (a listener of its own, whose TLS is a key). */
static int config_parse_address(const char *text, char *err, size_t errlen)
{
    struct config_listen where = {0};
    if (config_parse_listen(text, &where, err, errlen) < 0)
        return -1;
    int tls = where.tls;
    free(where.host);
    free(where.port);
    if (tls) {
        snprintf(err, errlen, "'%s': give the address only (TLS is the key tls = yes)", text);
        return -1;
    }
    return 0;
}

/* Store one host key's value; reports a bad value through set_error. */
static void apply_host_key(struct parse_state *st, const struct host_key *k, const char *value)
{
    struct config *cfg = st->cfg;
    char reason[CONFIG_ERROR_MAX];
    char *base = (char *)cfg;
    int64_t number;
    int flag;

    switch (k->kind) {
    case KEY_INT:
        if (config_parse_int(value, k->min, k->max, &number, reason, sizeof(reason)) < 0)
            goto bad;
        *(int64_t *)(void *)(base + k->offset) = number;
        return;
    case KEY_INT_OR_AUTO:
        if (strcmp(value, "auto") == 0) {
            number = -1;
        } else if (config_parse_int(value, k->min, k->max, &number, reason, sizeof(reason)) < 0) {
            snprintf(reason, sizeof(reason), "'%s' is not auto or a number from %lld to %lld",
                     value, (long long)k->min, (long long)k->max);
            goto bad;
        }
        *(int64_t *)(void *)(base + k->offset) = number;
        return;
    case KEY_BOOL:
        if (config_parse_bool(value, &flag, reason, sizeof(reason)) < 0)
            goto bad;
        *(int64_t *)(void *)(base + k->offset) = flag;
        return;
    case KEY_LOG_LEVEL:
        number = log_level_parse(value);
        if (number < 0) {
            snprintf(reason, sizeof(reason), "'%s' is not one of error, warn, info, debug", value);
            goto bad;
        }
        *(int64_t *)(void *)(base + k->offset) = number;
        return;
    case KEY_NAME:
    case KEY_STRING: {
        if (k->kind == KEY_NAME && !config_valid_name(value, (size_t)k->max)) {
            snprintf(reason, sizeof(reason), "'%s' is not a plugin name", value);
            goto bad;
        }
        size_t n = strlen(value);
        if (n < (size_t)k->min || n > (size_t)k->max) {
            snprintf(reason, sizeof(reason), "must be %lld to %lld bytes long", (long long)k->min,
                     (long long)k->max);
            goto bad;
        }
        char **slot = (char **)(void *)(base + k->offset);
        free(*slot);
        *slot = xstrdup(cfg, value);
        if (k->offset == FIELD(authenticator))
            cfg->authenticator_line = st->line;
        return;
    }
    case KEY_LISTEN: {
        struct config_listen l = {0};
        if (config_parse_listen(value, &l, reason, sizeof(reason)) < 0)
            goto bad;
        l.line = st->line;
        add_listener(cfg, &l); /* out of memory: cfg->nomem */
        return;
    }
    case KEY_NAME_LIST:
        parse_enable_list(st, value);
        return;
    case KEY_TLS_VERSION:
        if (strcmp(value, "1.2") != 0 && strcmp(value, "1.3") != 0) {
            snprintf(reason, sizeof(reason), "'%s' is not 1.2 or 1.3", value);
            goto bad;
        }
        *(int64_t *)(void *)(base + k->offset) = value[2] == '2' ? 12 : 13;
        return;
    case KEY_RATE:
        if (config_parse_rate(value, (struct config_rate *)(void *)(base + k->offset), reason,
                              sizeof(reason)) < 0)
            goto bad;
        return;
    case KEY_PROXY_PROTOCOL:
        number = parse_proxy_protocol(value);
        if (number < 0) {
            snprintf(reason, sizeof(reason), "'%s' is not one of off, v1, v2, any", value);
            goto bad;
        }
        *(int64_t *)(void *)(base + k->offset) = number;
        return;
    case KEY_CIDR_LIST:
        parse_proxy_from(st, value);
        return;
    case KEY_ADDRESS:
    case KEY_ORIGINS:
    case KEY_NODE_NAME:
    case KEY_REDIS: {
        struct config_redis redis;
        if (k->kind == KEY_ADDRESS && config_parse_address(value, reason, sizeof(reason)) < 0)
            goto bad;
        if (k->kind == KEY_ORIGINS &&
            config_parse_origins(value, NULL, NULL, reason, sizeof(reason)) < 0)
            goto bad;
        if (k->kind == KEY_NODE_NAME && !config_valid_node_name(value)) {
            snprintf(reason, sizeof(reason), "'%s' is not 1 to 32 of A-Z, a-z, 0-9, _, . and -",
                     value);
            goto bad;
        }
        if (k->kind == KEY_REDIS) {
            if (config_parse_redis(value, &redis, reason, sizeof(reason)) < 0)
                goto bad;
            config_redis_free(&redis);
        }
        char **slot = (char **)(void *)(base + k->offset);
        free(*slot);
        *slot = xstrdup(cfg, value);
        return;
    }
    }
    return;
bad:
    set_error(st, "[%s] %s: %s", k->section, k->key, reason);
}

static const char *plugin_section_name(const char *section)
{
    return strncmp(section, "plugin.", 7) == 0 ? section + 7 : NULL;
}

static int known_section(const char *section)
{
    const char *plugin = plugin_section_name(section);
    if (plugin)
        return config_valid_name(plugin, 32);
    return strcmp(section, "server") == 0 || strcmp(section, "log") == 0 ||
           strcmp(section, "plugins") == 0 || strcmp(section, "database") == 0 ||
           strcmp(section, "admin") == 0 || strcmp(section, "tls") == 0 ||
           strcmp(section, "limits") == 0 || strcmp(section, "messages") == 0 ||
           strcmp(section, "cluster") == 0 || strcmp(section, "web") == 0;
}

/* Append [plugin.PLUGIN] KEY = VALUE; -1 out of memory (nothing appended). */
static int add_entry(struct config *cfg, const char *plugin, const char *key, const char *value)
{
    if (xgrow(cfg, &cfg->plugin_entries,
              (cfg->n_plugin_entries + 1) * sizeof(struct config_entry)) < 0)
        return -1;
    struct config_entry e = {
        .plugin = xstrdup(cfg, plugin), .key = xstrdup(cfg, key), .value = xstrdup(cfg, value)};
    if (!e.plugin || !e.key || !e.value) {
        free(e.plugin);
        free(e.key);
        free(e.value);
        return -1;
    }
    cfg->plugin_entries[cfg->n_plugin_entries++] = e;
    return 0;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    struct parse_state *st = user;
    struct config *cfg = st->cfg;

    if (cfg->nomem)
        return 0; /* config_load reports it */
    if (section[0] == '\0') {
        set_error(st, "key '%s' comes before any [section]", name);
        return 0;
    }
    if (!known_section(section))
        return 0; /* already reported by the reader at the section's own line */

    const char *plugin = plugin_section_name(section);
    if (plugin) {
        for (size_t i = 0; i < cfg->n_plugin_entries; i++) {
            struct config_entry *e = &cfg->plugin_entries[i];
            if (strcmp(e->plugin, plugin) == 0 && strcmp(e->key, name) == 0) {
                set_error(st, "[%s] %s is set twice (first on line %d)", section, name, e->line);
                return 0;
            }
        }
        if (add_entry(cfg, plugin, name, value) < 0)
            return 0;
        cfg->plugin_entries[cfg->n_plugin_entries - 1].line = st->line;
        return 1;
    }

    for (size_t i = 0; i < N_HOST_KEYS; i++) {
        const struct host_key *k = &host_keys[i];
        if (strcmp(k->section, section) != 0 || strcmp(k->key, name) != 0)
            continue;
        if (st->seen[i] && k->kind != KEY_LISTEN) {
            set_error(st, "[%s] %s is set twice", section, name);
            return 0;
        }
        st->seen[i] = 1;
        int before = st->error_line;
        apply_host_key(st, k, value);
        return st->error_line == before;
    }
    set_error(st, "unknown key '%s' in [%s]", name, section);
    return 0;
}

/* inih's line reader, wrapped to count lines, to refuse over-long lines instead of
 * letting inih split them, and to check every [section] header where it stands (inih
 * only reports sections through their keys). */
static char *read_line(char *buf, int size, void *user)
{
    struct parse_state *st = user;
    /* fgets, but counting the bytes read: after a NUL byte, strlen would miss the rest
     * of the line, so a line could pass the length check and its tail be read as a
     * line of its own (a comment that sets a key). */
    size_t n = 0;
    int c = EOF;
    while (n < (size_t)size - 1 && (c = getc(st->file)) != EOF) {
        buf[n++] = (char)c;
        if (c == '\n')
            break;
    }
    if (n == 0)
        return NULL;
    buf[n] = '\0';
    st->line++;
    int has_nul = memchr(buf, '\0', n) != NULL;
    if (has_nul || (n == (size_t)size - 1 && buf[n - 1] != '\n' && !feof(st->file))) {
        if (has_nul)
            set_error(st, "a NUL byte (the file is not text)");
        else
            set_error(st, "line is longer than %d bytes", size - 2);
        while (buf[n - 1] != '\n' && (c = getc(st->file)) != EOF && c != '\n')
            ;
        buf[0] = '\0';
        return buf;
    }
    const char *p = buf;
    if (st->line == 1 && strncmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '[') {
        const char *close = strchr(p, ']');
        if (close) {
            char section[256];
            size_t len = (size_t)(close - p - 1);
            if (len >= sizeof(section))
                len = sizeof(section) - 1;
            memcpy(section, p + 1, len);
            section[len] = '\0';
            if (!known_section(section))
                set_error(st,
                          "unknown section [%s] (known: [server], [log], [plugins], "
                          "[database], [admin], [tls], [limits], [messages], [cluster], "
                          "[web], [plugin.<name>])",
                          section);
        }
    }
    return buf;
}

static void apply_defaults(struct config *cfg)
{
    struct parse_state st = {.cfg = cfg};
    for (size_t i = 0; i < N_HOST_KEYS; i++)
        if (host_keys[i].default_value)
            apply_host_key(&st, &host_keys[i], host_keys[i].default_value);
}

void config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    apply_defaults(cfg);
    char node[33];
    default_node_name(node, sizeof(node));
    cfg->cluster.node = xstrdup(cfg, node);
}

static int is_enabled(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_enabled; i++)
        if (strcmp(cfg->enabled[i], name) == 0)
            return 1;
    return 0;
}

int config_check_plugins(const struct config *cfg, char *err, size_t errlen)
{
    const char *path = cfg->path ? cfg->path : "config";
    if (cfg->authenticator && !is_enabled(cfg, cfg->authenticator)) {
        snprintf(err, errlen, "%s:%d: authenticator '%s' is not in [plugins] enable", path,
                 cfg->authenticator_line, cfg->authenticator);
        return -1;
    }
    return 0;
}

/* A section of a plugin left out of enable is kept for when it is enabled again, so
 * that switching a plugin off is one edit of the enable line; but a section naming no
 * plugin of the folder is a typo, whose options would silently not apply. */
static int check_disabled_sections(const struct config *cfg, char *err, size_t errlen)
{
    const char *path = cfg->path ? cfg->path : "config";
    for (size_t i = 0; i < cfg->n_plugin_entries; i++) {
        const struct config_entry *e = &cfg->plugin_entries[i];
        if (is_enabled(cfg, e->plugin))
            continue;
        char so[PATH_MAX];
        int n = snprintf(so, sizeof(so), "%s/%s.so", cfg->plugin_dir, e->plugin);
        if (n < 0 || (size_t)n >= sizeof(so) || access(so, F_OK) != 0) {
            snprintf(err, errlen,
                     "%s:%d: [plugin.%s] configures a plugin that is neither in [plugins] enable "
                     "nor in %s: fix its name, enable it, or comment the section out",
                     path, e->line, e->plugin, cfg->plugin_dir);
            return -1;
        }
    }
    return 0;
}

int config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
    config_defaults(cfg);
    cfg->path = xstrdup(cfg, path);
    if (cfg->nomem) {
        snprintf(err, errlen, "%s: out of memory", path);
        config_free(cfg);
        return -1;
    }

    struct parse_state st = {.cfg = cfg};
    st.file = fopen(path, "r");
    if (!st.file) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        config_free(cfg);
        return -1;
    }
    int syntax_line = ini_parse_stream(read_line, &st, on_key, &st);
    fclose(st.file);

    /* inih reports the first line where it or our handler failed; our own message
     * wins when it is for that line or an earlier one. */
    if (cfg->nomem) {
        snprintf(err, errlen, "%s: out of memory", path);
        st.error_line = -1;
    } else if (st.error_line && (syntax_line <= 0 || st.error_line <= syntax_line)) {
        snprintf(err, errlen, "%s:%d: %s", path, st.error_line, st.error);
    } else if (syntax_line > 0) {
        snprintf(err, errlen, "%s:%d: syntax error (expected [section], key = value or a comment)",
                 path, syntax_line);
    } else if (config_check_plugins(cfg, err, errlen) < 0) {
        st.error_line = -1;
    }
    if (st.error_line || syntax_line != 0) {
        config_free(cfg);
        return -1;
    }
    return 0;
}

int config_override(struct config *cfg, const char *assignment, char *err, size_t errlen)
{
    const char *eq = strchr(assignment, '=');
    const char *dot = NULL;
    for (const char *p = assignment; eq && p < eq; p++)
        if (*p == '.')
            dot = p;
    if (!eq || !dot || dot == assignment || dot + 1 == eq) {
        snprintf(err, errlen, "--set %s: expected section.key=value", assignment);
        return -1;
    }
    char section[128], key[128];
    size_t section_len = (size_t)(dot - assignment), key_len = (size_t)(eq - dot - 1);
    if (section_len >= sizeof(section) || key_len >= sizeof(key)) {
        snprintf(err, errlen, "--set %s: name too long", assignment);
        return -1;
    }
    memcpy(section, assignment, section_len);
    section[section_len] = '\0';
    memcpy(key, dot + 1, key_len);
    key[key_len] = '\0';
    const char *value = eq + 1;

    if (!known_section(section)) {
        snprintf(err, errlen, "--set %s: unknown section [%s]", assignment, section);
        return -1;
    }
    const char *plugin = plugin_section_name(section);
    if (plugin) {
        size_t j = 0;
        while (j < cfg->n_enabled && strcmp(cfg->enabled[j], plugin) != 0)
            j++;
        if (j == cfg->n_enabled) {
            snprintf(err, errlen, "--set %s: plugin '%s' is not enabled", assignment, plugin);
            return -1;
        }
        for (size_t i = 0; i < cfg->n_plugin_entries; i++) {
            struct config_entry *e = &cfg->plugin_entries[i];
            if (strcmp(e->plugin, plugin) == 0 && strcmp(e->key, key) == 0) {
                char *copy = xstrdup(cfg, value);
                if (!copy) {
                    snprintf(err, errlen, "--set %s: out of memory", assignment);
                    return -1;
                }
                free(e->value);
                e->value = copy;
                return 0;
            }
        }
        if (add_entry(cfg, plugin, key, value) < 0) {
            snprintf(err, errlen, "--set %s: out of memory", assignment);
            return -1;
        }
        return 0;
    }
    for (size_t i = 0; i < N_HOST_KEYS; i++) {
        const struct host_key *k = &host_keys[i];
        if (strcmp(k->section, section) != 0 || strcmp(k->key, key) != 0)
            continue;
        struct parse_state st = {.cfg = cfg};
        /* On the command line a list is given whole: it replaces the file's. */
        if (k->kind == KEY_LISTEN)
            free_listeners(cfg);
        if (k->kind == KEY_NAME_LIST) {
            for (size_t e = 0; e < cfg->n_enabled; e++)
                free(cfg->enabled[e]);
            cfg->n_enabled = 0;
        }
        apply_host_key(&st, k, value);
        if (cfg->nomem) {
            snprintf(err, errlen, "--set %s: out of memory", assignment);
            return -1;
        }
        if (st.error_line || st.error[0]) {
            snprintf(err, errlen, "--set %s: %s", assignment, st.error);
            return -1;
        }
        return 0;
    }
    snprintf(err, errlen, "--set %s: unknown key '%s' in [%s]", assignment, key, section);
    return -1;
}

void config_free(struct config *cfg)
{
    free(cfg->path);
    free_listeners(cfg);
    free(cfg->log_ident);
    free(cfg->plugin_dir);
    for (size_t i = 0; i < cfg->n_enabled; i++)
        free(cfg->enabled[i]);
    free(cfg->enabled);
    free(cfg->enabled_lines);
    free(cfg->authenticator);
    free(cfg->admin_listen);
    free(cfg->tls.certificate);
    free(cfg->tls.key);
    free(cfg->tls.ciphers);
    free(cfg->admin_token_file);
    free(cfg->web.listen);
    free(cfg->web.allowed_origins);
    free(cfg->web.root);
    char **db_strings[] = {&cfg->db.socket,   &cfg->db.host,          &cfg->db.user,
                           &cfg->db.password, &cfg->db.password_file, &cfg->db.name,
                           &cfg->db.tls_ca,   &cfg->db.tls_cert,      &cfg->db.tls_key};
    for (size_t i = 0; i < sizeof(db_strings) / sizeof(db_strings[0]); i++)
        free(*db_strings[i]);
    free(cfg->proxy_from);
    free(cfg->cluster.node);
    free(cfg->cluster.redis);
    free(cfg->cluster.redis_password_file);
    for (size_t i = 0; i < cfg->n_plugin_entries; i++) {
        free(cfg->plugin_entries[i].plugin);
        free(cfg->plugin_entries[i].key);
        free(cfg->plugin_entries[i].value);
    }
    free(cfg->plugin_entries);
    memset(cfg, 0, sizeof(*cfg));
}

int config_build(struct config *cfg, const struct config_source *src, char *err, size_t errlen)
{
    char reason[CONFIG_ERROR_MAX + 64];
    if (config_load(cfg, src->path, err, errlen) < 0)
        return -1;
    for (size_t i = 0; i < src->n_sets; i++) {
        if (config_override(cfg, src->sets[i], err, errlen) < 0) {
            int rc = cfg->nomem ? -1 : -2; /* out of memory is no usage error */
            config_free(cfg);
            return rc;
        }
    }
    if (src->n_sets && config_check_plugins(cfg, reason, sizeof(reason)) < 0) {
        snprintf(err, errlen, "after --set: %s", reason);
        config_free(cfg);
        return -2;
    }
    if (src->listen && config_set_listen(cfg, src->listen, reason, sizeof(reason)) < 0) {
        snprintf(err, errlen, "--listen: %s", reason);
        int rc = cfg->nomem ? -1 : -2;
        config_free(cfg);
        return rc;
    }
    if (src->plugin_dir) {
        char *dir = strdup(src->plugin_dir);
        if (!dir) {
            snprintf(err, errlen, "out of memory");
            config_free(cfg);
            return -1;
        }
        free(cfg->plugin_dir);
        cfg->plugin_dir = dir;
    }
    if (src->log_level)
        cfg->log_level = log_level_parse(src->log_level);
    if (!src->plugin_dir && strcmp(cfg->plugin_dir, CHATD_DEFAULT_PLUGIN_DIR) == 0) {
        char *installed = config_installed_path(CHATD_PLUGIN_DIR_FROM_BIN);
        if (installed) {
            free(cfg->plugin_dir);
            cfg->plugin_dir = installed;
        }
    }
    if (strcmp(cfg->web.root, CHATD_DEFAULT_WEB_ROOT) == 0) {
        char *installed = config_installed_path(CHATD_WEB_ROOT_FROM_BIN);
        if (installed) {
            free(cfg->web.root);
            cfg->web.root = installed;
        }
    }
    if (check_disabled_sections(cfg, err, errlen) < 0 || check_tls(cfg, err, errlen) < 0) {
        config_free(cfg);
        return -1;
    }
    return 0;
}

char *config_installed_path(const char *relative)
{
    char dir[PATH_MAX], joined[2 * PATH_MAX + 2];
    ssize_t n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
    if (n <= 0)
        return NULL;
    dir[n] = '\0';
    /* The executable's folder, then one folder up for each leading "../". */
    char *slash = strrchr(dir, '/');
    while (slash) {
        *slash = '\0';
        if (strncmp(relative, "../", 3) != 0)
            break;
        relative += 3;
        slash = strrchr(dir, '/');
    }
    if (!slash)
        return NULL;
    snprintf(joined, sizeof(joined), "%s/%s", dir, relative);
    return access(joined, F_OK) == 0 ? strdup(joined) : NULL;
}
