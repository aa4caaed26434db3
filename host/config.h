/* config.h - the chatd config file: INI read with inih, checked against the host's key
 * table; plugin sections are kept raw until the plugin's own key table is known. */
#ifndef CHATD_HOST_CONFIG_H
#define CHATD_HOST_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CONFIG_ERROR_MAX 512

struct cidr;

struct config_listen {
    char *host; /* numeric address or name, without brackets */
    char *port;
    int tls;    /* marked `tls`: sessions on it speak TLS (transport_tls.c) */
    int direct; /* marked `direct`: clients come without a PROXY header (proxy_accept.h) */
    int line;
};

/* One key = value line of a [plugin.<name>] section. */
struct config_entry {
    char *plugin; /* <name> of the section */
    char *key;
    char *value;
    int line;
};

/* A token bucket: a burst of `burst`, refilled at `burst` per `period_ms`. burst 0: the
 * limit is off. */
struct config_rate {
    int64_t burst;
    int64_t period_ms;
};

struct config {
    char *path;

    /* [server] */
    struct config_listen *listeners;
    size_t n_listeners;
    int64_t max_connections;
    int64_t idle_timeout_s; /* 0: never */
    int64_t max_frame_bytes;
    int64_t max_output_bytes; /* unsent backlog that disconnects a slow reader */
    /* Unsent output from which a session takes no more requests (at most half of
     * max_output_bytes counts: session_limits.c). */
    int64_t output_pause_bytes;
    /* Requests of pipelined commands (CHATD_CMD_PIPELINED) one session may have in
     * flight at once; 1: none pipelined. */
    int64_t max_pipelined;
    int64_t frame_timeout_s; /* a begun frame must be complete within; 0: never */
    int64_t login_timeout_s; /* a new session must log in within; 0: never */
    int64_t shutdown_timeout_s;
    int64_t hook_timeout_ms; /* a deferring hook is skipped after this long */
    int64_t cpu_workers;     /* threads for jobs without CHATD_JOB_DB; 0: one per core */
    int64_t cpu_queue_max;   /* such jobs that may wait; one more is answered busy */
    /* Threads doing the TCP and TLS sessions' reads and writes (io_threads.c); 0: the
     * loop thread does them; -1: auto (from the core count). */
    int64_t io_threads;
    /* The PROXY header versions the listeners not marked direct take first (PROXY_V1,
     * PROXY_V2 of proxy_header.h); 0: off. Only from the proxy_from addresses. */
    int64_t proxy_protocol;
    struct cidr *proxy_from;
    size_t n_proxy_from;

    /* [log] */
    int64_t log_level; /* enum chatd_log_level */
    int64_t log_syslog;
    char *log_ident;

    /* [plugins] */
    char *plugin_dir;
    char **enabled;
    int *enabled_lines;
    size_t n_enabled;
    char *authenticator;
    int authenticator_line;

    /* [tls] */
    struct config_tls {
        char *certificate;   /* PEM: the server certificate, then its chain */
        char *key;           /* PEM: its private key */
        char *ciphers;       /* OpenSSL cipher list for TLS 1.2 (1.3 keeps its own suites) */
        int64_t min_version; /* 12 or 13: TLS 1.2 or 1.3 */
        int64_t handshake_timeout_s; /* a handshake not done by then closes the connection */
    } tls;
    /* [limits] (ratelimit.h) */
    struct config_limits {
        struct config_rate login_per_address;
        struct config_rate failed_login_per_name;
        struct config_rate requests_per_session;
        struct config_rate connections_per_address;
        int64_t max_connections_per_address; /* 0: off */
        int64_t max_tracked;                 /* entries per table of buckets */
    } limits;

    /* [web] (transport_ws.c, web_http.c) */
    struct config_web {
        int64_t enable;
        char *listen;          /* "host:port" of the web listener */
        int64_t tls;           /* with the [tls] certificate and key */
        char *allowed_origins; /* "": the listener's own origin; "*": any; else a list */
        char *root;            /* the folder of static files */
        int64_t ping_interval_s;
        int64_t pong_timeout_s;
        int64_t request_timeout_s; /* the TLS handshake and the HTTP request head */
    } web;

    /* [admin] */
    int64_t admin_enable;
    char *admin_listen; /* address:port of /metrics and /healthz */
    int64_t admin_max_connections;
    char *admin_token_file;      /* "": no token, POST /reload is refused */
    int64_t admin_metrics_token; /* /metrics needs the token too */

    /* [database] */
    struct config_database {
        int64_t enable;
        char *socket; /* empty: use host and port */
        char *host;
        int64_t port;
        char *user;
        char *password;
        char *password_file; /* when set, the password is its first line */
        char *name;
        int64_t tls, tls_verify;
        char *tls_ca, *tls_cert, *tls_key;
        int64_t workers;
        int64_t queue_max;
        int64_t job_timeout_ms;
        int64_t connect_timeout_s;
    } db;

    /* [messages] */
    struct config_messages {
        int64_t batch_max;          /* posts per commit batch (post.c) */
        int64_t retention_days;     /* messages older are deleted by the hourly prune */
        int64_t retention_count;    /* per conversation; 0: no limit */
        int64_t device_forget_days; /* devices not seen for this long are forgotten */
        int64_t max_devices;        /* per user; the least recently seen goes */
    } messages;

    /* [cluster] (cluster.h): none of it changes at a reload */
    struct config_cluster {
        int64_t enable;
        char *node;                /* this node's name: 1-32 of [A-Za-z0-9_.-] */
        char *redis;               /* "unix:/path" or "address:port" */
        char *redis_password_file; /* "": no AUTH */
        int64_t lease_ms;          /* the node's lease in Redis; renewed every third */
        int64_t connect_timeout_ms;
        int64_t gap_wait_ms; /* how long an id range waits for its announcement */
        int64_t required;    /* /healthz answers 503 while Redis is down */
    } cluster;

    /* [plugin.<name>] */
    struct config_entry *plugin_entries;
    size_t n_plugin_entries;

    /* An allocation failed while this was built: the build fails with "out of memory"
     * (at start-up chatd exits 1; a reload keeps the running configuration). */
    int nomem;
};

/* Where a config comes from: the file and the command line's overrides, kept for the
 * life of the process so that a reload reads the same file with the same overrides. */
struct config_source {
    const char *path;
    const char *const *sets; /* --set "section.key=value" */
    size_t n_sets;
    const char *listen;     /* --listen, or NULL */
    const char *plugin_dir; /* --plugin-dir, or NULL */
    const char *log_level;  /* --log-level, or NULL */
};

/* Read src->path and apply src's overrides over it, with every check. 0, or -1 for an
 * error in the file and -2 for one in the overrides, with the reason (naming file:line
 * for the file) in err; cfg is then freed. */
int config_build(struct config *cfg, const struct config_source *src, char *err, size_t errlen);

/* `relative` (a path relative to the folder of the running executable, such as
 * CHATD_PLUGIN_DIR_FROM_BIN) made absolute, if it exists; else NULL. Malloc'ed. An
 * install prefix given only at install time (cmake --install --prefix) moves chatd's
 * files away from the defaults compiled in; this finds them beside the executable. */
char *config_installed_path(const char *relative);

/* Read and check `path`. On failure returns -1 with "path:line: reason" in err (the
 * config is then freed). */
int config_load(struct config *cfg, const char *path, char *err, size_t errlen);
/* Fill cfg with the built-in defaults and no listener, as if from an empty file. */
void config_defaults(struct config *cfg);
void config_free(struct config *cfg);

/* Replace the listeners with "host:port[ tls]", or several separated by commas (the
 * --listen and scripts/run --port override). Returns -1 with a reason in err when it
 * does not parse. */
int config_set_listen(struct config *cfg, const char *text, char *err, size_t errlen);
/* Apply a command-line "section.key=value" (chatd --set) on top of the loaded file,
 * with the same checks as a line of the file. -1 with the reason in err. */
int config_override(struct config *cfg, const char *assignment, char *err, size_t errlen);
/* The check across sections: the authenticator is an enabled plugin. Run by config_load,
 * and again after command-line overrides. (A [plugin.<name>] section of a plugin that is
 * not enabled must name a plugin of the folder: config_build checks that last.) */
int config_check_plugins(const struct config *cfg, char *err, size_t errlen);
/* Parse "host:port" or "[v6]:port", optionally followed by the words "tls" and
 * "direct", into a config_listen (without line). */
int config_parse_listen(const char *text, struct config_listen *out, char *err, size_t errlen);

/* Where Redis is: [cluster] redis parsed. */
struct config_redis {
    char *unix_path; /* "unix:/path": the socket; else NULL */
    char *host;      /* "address:port": a numeric address (or localhost, as 127.0.0.1) */
    int port;
};
/* Parse "unix:/absolute/path", "address:port" or "[v6-address]:port". A host name is
 * refused (hiredis would resolve it with a blocking lookup on the loop), except
 * localhost. Malloc'ed into out (free with config_redis_free); -1 with a reason. */
int config_parse_redis(const char *text, struct config_redis *out, char *err, size_t errlen);
void config_redis_free(struct config_redis *r);
/* A node name: 1 to 32 of [A-Za-z0-9_.-]. */
int config_valid_node_name(const char *text);

/* [web] allowed_origins: `text` is "*" or origins (scheme://host[:port]) separated by
 * commas or spaces. 0, or -1 with a reason; with `origin` and `allowed`, *allowed says
 * whether that origin (compared without case) is in the list or the list has "*". */
int config_parse_origins(const char *text, const char *origin, int *allowed, char *err,
                         size_t errlen);

/* 1 when a listener is marked tls, or the [web] listener speaks TLS. */
int config_has_tls_listener(const struct config *cfg);

/* Value parsers shared with plugin options; each returns 0 or -1 with a reason. */
int config_parse_int(const char *text, int64_t min, int64_t max, int64_t *out, char *err,
                     size_t errlen);
int config_parse_bool(const char *text, int *out, char *err, size_t errlen);
/* A rate, "COUNT/PERIOD" with PERIOD a number and s, m or h ("20/60s": a burst of 20,
 * refilled at 20 per 60 s), or "off" (burst 0). */
int config_parse_rate(const char *text, struct config_rate *out, char *err, size_t errlen);
/* A plugin or command name: [a-z0-9_], 1 to max bytes. */
int config_valid_name(const char *text, size_t max);

#endif
