/* chatd/plugin.h - the whole contract between chatd and its command plugins (ABI 1.1).
 *
 * A plugin is a shared object that includes this header (plus <jansson.h>; database
 * work goes through the host table, so no MariaDB header is needed) and exports exactly
 * one symbol: the constant descriptor `chatd_plugin`, defined with CHATD_PLUGIN_DEFINE().
 * Nothing else of the host is linked: every host service reaches the plugin through the
 * const function table `struct chatd_host` passed to its init function.
 *
 * Versioning. The ABI has a major and a minor number, independent of chatd's release
 * number. The host loads a plugin when the majors are equal and the plugin's minor is
 * not newer than the host's. A minor release only appends: new members at the end of
 * `struct chatd_host` and of the descriptor, new error codes, new events, new flags.
 * Anything else is a new major. A plugin that wants a function added in a later minor
 * than the one it requires checks `host->size` first (see CHATD_HOST_HAS()).
 *
 * Threads. Unless a function says otherwise, it runs on, and may only be called from,
 * the event-loop thread. Handlers, done callbacks, timers and event callbacks all run
 * on the loop thread and must never block: blocking work (database, password hashing)
 * goes to a job (chatd_host.job_submit), whose `work` function runs on a worker thread.
 *
 * Ownership, one rule each way. Whatever the host passes in (json_t bodies, strings)
 * is borrowed until the callback returns. Every json_t the plugin passes out to the
 * host is taken by the host, on success and on failure alike; the plugin never frees
 * it afterwards. No json_t may cross to a worker thread.
 *
 * Errors. Every function that can fail returns an int: 0 on success, a negative
 * CHATD_E* code from the one table below otherwise; chatd_strerror() names it.
 *
 * Building and testing. An installed chatd has this header as <chatd/plugin.h>, with
 * the pkg-config file chatd-plugin, the CMake package chatd (chatd_add_plugin()), and
 * the test kit <chatd/testkit.h>, which loads a plugin through chatd's own loader; see
 * docs/plugins.md.
 */
#ifndef CHATD_PLUGIN_H
#define CHATD_PLUGIN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------
 * Versions
 * ------------------------------------------------------------------------------- */

/** The ABI major this header describes. A plugin and a host of different majors never
 *  load each other. */
#define CHATD_ABI_MAJOR 1
/** The ABI minor this header describes. */
#define CHATD_ABI_MINOR 1

/** The most parameters one database statement may bind (64 in ABI 1.0). */
#define CHATD_DB_MAX_PARAMS 256

/** Name of the one symbol a plugin exports. Stable across every major. */
#define CHATD_PLUGIN_SYMBOL "chatd_plugin"

#if defined(__GNUC__)
#define CHATD_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#define CHATD_PLUGIN_EXPORT                __attribute__((visibility("default")))
#else
#define CHATD_PRINTF(fmt_index, first_arg)
#define CHATD_PLUGIN_EXPORT
#endif

/* ---------------------------------------------------------------------------------
 * Error codes: one table, used by host and plugins alike
 * ------------------------------------------------------------------------------- */

/* X(name, value, text). Values are never reused or renumbered. */
#define CHATD_ERRNO_MAP(X)                                                                         \
    X(OK, 0, "success")                                                                            \
    X(EINVAL, -1, "invalid argument")                                                              \
    X(ENOMEM, -2, "out of memory")                                                                 \
    X(ENOENT, -3, "no such session, user, option or command")                                      \
    X(EEXIST, -4, "already exists")                                                                \
    X(EPERM, -5, "not permitted for this plugin")                                                  \
    X(ESTATE, -6, "not allowed in the current state")                                              \
    X(EBUSY, -7, "queue full, try again later")                                                    \
    X(ETIMEDOUT, -8, "time budget exceeded")                                                       \
    X(EDB, -9, "database error")                                                                   \
    X(EDBLOST, -10, "database connection lost")                                                    \
    X(ENOSYS, -11, "not available in this host")                                                   \
    X(ECLOSED, -12, "session closed")                                                              \
    X(EOVERFLOW, -13, "value too large")                                                           \
    X(ESHUTDOWN, -14, "server is shutting down")                                                   \
    X(EPLUGIN, -15, "plugin failed")

enum chatd_error {
#define CHATD_ERRNO_ENUM(name, value, text) CHATD_##name = (value),
    CHATD_ERRNO_MAP(CHATD_ERRNO_ENUM)
#undef CHATD_ERRNO_ENUM
};

/** Text for an error code from the table; "unknown error" for anything else.
 *  Any thread. The string is static. */
static inline const char *chatd_strerror(int err)
{
    switch (err) {
#define CHATD_ERRNO_CASE(name, value, text)                                                        \
    case (value):                                                                                  \
        return (text);
        CHATD_ERRNO_MAP(CHATD_ERRNO_CASE)
#undef CHATD_ERRNO_CASE
    default:
        return "unknown error";
    }
}

/* ---------------------------------------------------------------------------------
 * Opaque handles
 * ------------------------------------------------------------------------------- */

/** The host's record of one loaded plugin. Passed to init; valid until shutdown returns. */
struct chatd_plugin;
/** One client request being handled. Valid from the handler call until the callback in
 *  which it is replied returns (see chatd_host.reply). Never keep it after that. */
struct chatd_request;
/** A database connection lent to a job's work function for the duration of that call. */
struct chatd_db;

/** A session (one client connection). Ids are 64-bit, start at 1 and are never reused
 *  while the host runs, so a stale id is harmless: using it returns CHATD_ENOENT. */
typedef uint64_t chatd_session_id;

/* ---------------------------------------------------------------------------------
 * Logging
 * ------------------------------------------------------------------------------- */

enum chatd_log_level {
    CHATD_LOG_ERROR = 0,
    CHATD_LOG_WARN = 1,
    CHATD_LOG_INFO = 2,
    CHATD_LOG_DEBUG = 3,
};

/* ---------------------------------------------------------------------------------
 * Per-plugin configuration keys
 * ------------------------------------------------------------------------------- */

enum chatd_option_type {
    CHATD_OPT_BOOL = 1,   /**< yes/no, true/false, on/off, 1/0 */
    CHATD_OPT_INT = 2,    /**< a decimal integer within [min, max] */
    CHATD_OPT_STRING = 3, /**< any text; max (when > 0) bounds its length in bytes */
};

/** One key of the plugin's `[plugin.<name>]` config section. The plugin lists its keys
 *  in the descriptor; the host validates the operator's values against them (unknown
 *  key, bad type or out of range refuses the start with file:line) before init runs,
 *  and the plugin reads them already checked with option_int/option_bool/option_string.
 *  The array ends with an entry whose key is NULL. */
struct chatd_option {
    const char *key;
    enum chatd_option_type type;
    const char *default_value; /**< in config-file syntax; NULL means required */
    int64_t min;               /**< CHATD_OPT_INT: lowest accepted value */
    int64_t max;               /**< CHATD_OPT_INT: highest; CHATD_OPT_STRING: max bytes */
    const char *help;          /**< one line, shown by chatd --check-plugin */
};

/* ---------------------------------------------------------------------------------
 * Schema migrations
 * ------------------------------------------------------------------------------- */

/** One numbered schema change. The host applies, at start, every migration whose
 *  version is above the one recorded for this plugin, in order, each in its own
 *  transaction, and records it. Versions start at 1 and increase by 1. The array ends
 *  with an entry whose sql is NULL. A migration is never edited once shipped: add one. */
struct chatd_migration {
    uint32_t version;
    const char *description;
    const char *sql; /**< one statement; use several migrations for several statements */
};

/* ---------------------------------------------------------------------------------
 * Commands
 * ------------------------------------------------------------------------------- */

enum chatd_field_type {
    CHATD_FIELD_STRING = 1,
    CHATD_FIELD_INT = 2,
    CHATD_FIELD_BOOL = 3,
    CHATD_FIELD_OBJECT = 4,
    CHATD_FIELD_ARRAY = 5,
};

/** One field of a request, checked by the host before the handler runs: a missing
 *  required field, a wrong type, or a string outside [min_len, max_len] bytes is
 *  answered `<cmd>_reply` / `bad_request` with a reason naming the field, and the
 *  handler is not called. The array ends with an entry whose name is NULL. */
struct chatd_field {
    const char *name;
    enum chatd_field_type type;
    int required;   /**< non-zero: the field must be present */
    size_t min_len; /**< strings: fewest bytes accepted */
    size_t max_len; /**< strings: most bytes accepted; 0 means no limit beyond the frame */
};

/** Command flags. */
enum chatd_command_flags {
    /** The command works without a logged-in session (register, login, ping). Without
     *  this flag the host answers `not_logged_in` before the handler runs, and answers
     *  `forbidden` when a `user_from` field differs from the session's user. */
    CHATD_CMD_ANONYMOUS = 1u << 0,
};

/** A command handler. Runs on the loop thread; must not block. `body` is the whole
 *  request object, already checked against the command's field table, borrowed until
 *  the handler returns. The handler either replies (chatd_host.reply) before it returns
 *  or submits a job tied to `req` whose done callback replies. A request left with
 *  neither is answered `internal` by the host and logged as a plugin bug. */
typedef void (*chatd_handler_fn)(struct chatd_request *req, const json_t *body, void *arg);

struct chatd_command {
    const char *name; /**< the `cmd` word; [a-z0-9_], 1 to 64 bytes */
    chatd_handler_fn handler;
    void *arg;                        /**< passed to every call of handler */
    uint32_t flags;                   /**< CHATD_CMD_* */
    const struct chatd_field *fields; /**< may be NULL: no checks beyond the generic ones */
};

/* ---------------------------------------------------------------------------------
 * Jobs: blocking work off the loop thread
 * ------------------------------------------------------------------------------- */

enum chatd_job_flags {
    /** work() needs a database connection; without it, db is NULL (CPU work such as
     *  password hashing). */
    CHATD_JOB_DB = 1u << 0,
    /** Running work() twice has the same effect as once: the host may retry it once on
     *  a fresh connection after the connection was lost. */
    CHATD_JOB_IDEMPOTENT = 1u << 1,
};

/** Runs on a worker thread and may block. `db` is borrowed for this call only (NULL
 *  without CHATD_JOB_DB). Returns 0 or a CHATD_E* code, which becomes done's status.
 *  It must not call any chatd_host function except those marked "any thread", nor
 *  touch json_t values shared with the loop. */
typedef int (*chatd_work_fn)(struct chatd_db *db, void *arg);

/** Runs on the loop thread after work() returned, or instead of it when the job could
 *  not run (status CHATD_ETIMEDOUT, CHATD_EDBLOST...). A job that passes its time budget
 *  ends with CHATD_ETIMEDOUT: its running statement is killed and later ones are not
 *  run, but statements that completed before keep their effects, so do the job's
 *  writes in one transaction. `req` is the
 *  request the job was submitted for, or NULL. It frees `arg` if it owns it. Called
 *  exactly once for every successfully submitted job. */
typedef void (*chatd_done_fn)(struct chatd_request *req, void *arg, int status);

struct chatd_job {
    chatd_work_fn work;
    chatd_done_fn done;
    uint32_t flags;      /**< CHATD_JOB_* */
    uint32_t timeout_ms; /**< time budget; 0 takes the [database] default */
};

/* ---------------------------------------------------------------------------------
 * Database parameters (prepared statements only)
 * ------------------------------------------------------------------------------- */

enum chatd_param_type {
    CHATD_PARAM_NULL = 0,
    CHATD_PARAM_INT64 = 1,
    CHATD_PARAM_TEXT = 2, /**< UTF-8; bound by length, never formatted into SQL */
    CHATD_PARAM_BLOB = 3,
};

/** One bound parameter of a statement (a `?` in the SQL), or one column of a result
 *  row. Text and blob values point into memory owned by whoever made the value. */
struct chatd_value {
    enum chatd_param_type type;
    int64_t i;
    const char *s;
    size_t len;
};

/** Called once per result row on the worker thread. `cols` is borrowed for the call.
 *  Return 0 to go on, non-zero to stop reading rows. */
typedef int (*chatd_row_fn)(const struct chatd_value *cols, size_t ncols, void *arg);

/* ---------------------------------------------------------------------------------
 * Events and timers
 * ------------------------------------------------------------------------------- */

enum chatd_event {
    /** A session became bound to a user (after a successful login). An instance started
     *  by a live reload also gets one for every session already logged in, right after
     *  its init returns and before any request reaches it (first_or_last set on each
     *  user's first session), so that it can rebuild what it keeps about users online. */
    CHATD_EVENT_LOGIN = 1,
    /** A session stopped being bound to a user: logout, disconnect or idle timeout. */
    CHATD_EVENT_LOGOUT = 2,
};

/** Called on the loop thread. `user` is borrowed for the call. `first_or_last` is
 *  non-zero when this is the user's first session to log in (LOGIN) or the last to go
 *  (LOGOUT), which is when presence changes. */
typedef void (*chatd_event_fn)(enum chatd_event event, chatd_session_id session, const char *user,
                               int first_or_last, void *arg);

/** A timer callback, on the loop thread. */
typedef void (*chatd_timer_fn)(void *arg);

/* ---------------------------------------------------------------------------------
 * The host function table
 * ------------------------------------------------------------------------------- */

/** Host services, passed to init and valid until shutdown returns. Members are only
 *  ever appended; read `size` before using one added after ABI 1.0. */
struct chatd_host {
    /** sizeof(struct chatd_host) as the host was built. Always the first member. */
    size_t size;
    uint32_t abi_major;
    uint32_t abi_minor;
    /** The host's release, e.g. "0.1.0". Static. */
    const char *version;

    /* -- logging (any thread) -- */

    /** Log a line with the plugin's name in front, at `level`, if the configured level
     *  lets it through. An error logged during init is quoted when init fails. */
    void (*log)(struct chatd_plugin *self, enum chatd_log_level level, const char *fmt, ...)
        CHATD_PRINTF(3, 4);

    /* -- configuration (loop thread; values are fixed during init and between reloads) -- */

    /** The value of a CHATD_OPT_INT key into *out. CHATD_ENOENT for an undeclared key,
     *  CHATD_EINVAL for a key of another type. */
    int (*option_int)(struct chatd_plugin *self, const char *key, int64_t *out);
    /** The value of a CHATD_OPT_BOOL key (0 or 1) into *out. */
    int (*option_bool)(struct chatd_plugin *self, const char *key, int *out);
    /** The value of a CHATD_OPT_STRING key; NULL for an undeclared key. The string is
     *  owned by the host and valid until shutdown (or the next reload) returns. */
    const char *(*option_string)(struct chatd_plugin *self, const char *key);

    /* -- commands (loop thread, during init only) -- */

    /** Route requests whose `cmd` is cmd->name to cmd->handler. The host copies *cmd and
     *  the name, but keeps pointing at cmd->fields, which must be static. CHATD_ESTATE
     *  outside init; CHATD_EEXIST when another plugin has the name (the host then
     *  refuses the whole start, naming both plugins); CHATD_EINVAL for a bad name. */
    int (*register_command)(struct chatd_plugin *self, const struct chatd_command *cmd);

    /* -- requests (loop thread) -- */

    /** Answer `req` with `{"cmd":"<cmd>_reply","result":result, ...fields, "id":...}`.
     *  `result` is a word such as "success" (copied). `fields` (an object, or NULL) is
     *  taken by the host; its `cmd`, `result` and `id` members are ignored. Exactly one
     *  reply per request: a second one returns CHATD_ESTATE and is logged as a bug. The
     *  request handle stays valid until the callback in which it was replied returns. A
     *  reply for a client that has gone away returns 0 and is dropped. */
    int (*reply)(struct chatd_request *req, const char *result, json_t *fields);
    /** The session the request came from. */
    chatd_session_id (*request_session)(const struct chatd_request *req);
    /** The user the request's session was logged in as when the request arrived, or
     *  NULL. Owned by the host; valid as long as the request. */
    const char *(*request_user)(const struct chatd_request *req);

    /* -- sessions and users (loop thread) -- */

    /** Send `msg` (an object, taken) to one session as one line. CHATD_ENOENT when the
     *  session is gone. A push never carries an `id`. */
    int (*push_session)(struct chatd_plugin *self, chatd_session_id session, json_t *msg);
    /** Send `msg` (an object, taken) to every session logged in as `user`. Stores in
     *  *delivered (may be NULL) how many sessions got it; 0 sessions is not an error. */
    int (*push_user)(struct chatd_plugin *self, const char *user, json_t *msg, size_t *delivered);
    /** How many sessions are logged in as `user` right now. */
    size_t (*user_session_count)(struct chatd_plugin *self, const char *user);
    /** The user a session is logged in as, or NULL. Owned by the host, valid until the
     *  current callback returns. */
    const char *(*session_user)(struct chatd_plugin *self, chatd_session_id session);
    /** Bind the request's session to `user` (copied), replacing any earlier binding, and
     *  raise CHATD_EVENT_LOGIN (and LOGOUT for the old user). Only the plugin the
     *  operator names in `[plugins] authenticator` may call it: CHATD_EPERM for others. */
    int (*session_login)(struct chatd_request *req, const char *user);
    /** Unbind the request's session from its user and raise CHATD_EVENT_LOGOUT.
     *  Authenticator only, like session_login. CHATD_ESTATE when not logged in. */
    int (*session_logout)(struct chatd_request *req);
    /** Call fn(arg) for `event` until shutdown. Loop thread, during init only. */
    int (*subscribe)(struct chatd_plugin *self, enum chatd_event event, chatd_event_fn fn,
                     void *arg);

    /* -- jobs (loop thread) -- */

    /** Queue `job` for a worker. `req` (may be NULL) stays valid, and unanswered, until
     *  job->done has run. `arg` is passed to work and done; the plugin owns it. The
     *  host copies *job. CHATD_EBUSY at once when the queue is full (answer `busy`),
     *  CHATD_ENOSYS for a CHATD_JOB_DB job when the database is not enabled,
     *  CHATD_ESTATE during init (a plugin refused after init must leave no work behind),
     *  CHATD_ESHUTDOWN while stopping and from the plugin's own shutdown (it is unmapped
     *  right after). On any error done is not called. */
    int (*job_submit)(struct chatd_plugin *self, struct chatd_request *req,
                      const struct chatd_job *job, void *arg);

    /* -- database helpers (worker thread, inside work() only) -- */

    /** Run one prepared statement with `params` bound to its `?` marks (at most
     *  CHATD_DB_MAX_PARAMS of them; more is CHATD_EINVAL). Stores the
     *  number of affected rows in *affected and the AUTO_INCREMENT id in *insert_id
     *  (either may be NULL). CHATD_EDB (the error is logged with the SQL's first line),
     *  CHATD_EDBLOST, CHATD_ETIMEDOUT. */
    int (*db_exec)(struct chatd_db *db, const char *sql, const struct chatd_value *params,
                   size_t nparams, uint64_t *affected, uint64_t *insert_id);
    /** Like db_exec for a statement that returns rows: on_row is called per row. */
    int (*db_query)(struct chatd_db *db, const char *sql, const struct chatd_value *params,
                    size_t nparams, chatd_row_fn on_row, void *arg);

    /* -- timers (loop thread) -- */

    /** Call fn(arg) once after `ms` milliseconds (repeating every `ms` when `repeat` is
     *  non-zero; a repeating timer needs ms > 0). Stores an id for timer_cancel in *id
     *  (may be NULL). CHATD_ESHUTDOWN while the server stops, and once a reload has
     *  retired this instance (its pending timers are then cancelled at once), and from
     *  its own shutdown. Timers still pending at shutdown are cancelled by the host
     *  before shutdown is called. */
    int (*timer_add)(struct chatd_plugin *self, uint32_t ms, int repeat, chatd_timer_fn fn,
                     void *arg, uint64_t *id);
    /** Cancel a timer; CHATD_ENOENT when it already fired (one-shot) or is unknown. */
    int (*timer_cancel)(struct chatd_plugin *self, uint64_t id);

    /* -- time (any thread) -- */

    /** Wall-clock time in Unix milliseconds. */
    int64_t (*now_ms)(void);

    /* -- flow control (loop thread) -- */

    /** Bytes queued for `user` and not yet written to the network, on the session of
     *  theirs that has the fewest waiting: 0 once any one of their sessions has written
     *  everything it was given (or when the user has no session). A plugin that must
     *  know a push reached the network (to remove a stored message, say) waits for 0. */
    size_t (*user_output_pending)(struct chatd_plugin *self, const char *user);

    /** Non-zero when the operator named this plugin in `[plugins] authenticator`, so
     *  that session_login and session_logout will work for it. Any thread. */
    int (*is_authenticator)(struct chatd_plugin *self);

    /* -- since 1.1: replying later (loop thread) -- */

    /** Keep `req` valid, and unanswered, past the callback it arrived in, so that the
     *  plugin can reply from a later loop-thread callback: the done of one job that
     *  serves many requests at once, say, or a timer. The session sends no further
     *  request until this one is answered and released. Every hold needs one
     *  request_release. Check CHATD_HOST_HAS(host, request_hold) when the plugin may run
     *  on a 1.0 host. */
    void (*request_hold)(struct chatd_request *req);
    /** Give back one hold. After the last one the handle is invalid; a request that was
     *  never replied to by then is answered `internal` and logged as a plugin bug. */
    void (*request_release)(struct chatd_request *req);

    /* -- since 1.1: metrics (loop thread) -- */

    /** Set a gauge that the admin listener's /metrics shows as chatd_<plugin>_<name>
     *  (`name`: a-z, 0-9 and _, 1 to 64 bytes; `help` is copied on the first call and
     *  kept). The gauge goes away when the plugin is unloaded. CHATD_EINVAL for a bad
     *  name. */
    int (*metric_set)(struct chatd_plugin *self, const char *name, const char *help, double value);
};

/** True when the host table has member `member`, i.e. the host is new enough. */
#define CHATD_HOST_HAS(host, member)                                                               \
    ((host)->size >= offsetof(struct chatd_host, member) + sizeof((host)->member))

/* ---------------------------------------------------------------------------------
 * The descriptor: the one symbol a plugin exports
 * ------------------------------------------------------------------------------- */

/** Called once after loading, before any request. Register commands and subscriptions
 *  here, read options, allocate state. Return 0, or a CHATD_E* code to refuse the
 *  load; log the reason with host->log at CHATD_LOG_ERROR first, the host quotes it.
 *  `host` stays valid until shutdown returns. */
typedef int (*chatd_init_fn)(struct chatd_plugin *self, const struct chatd_host *host);

/** Called once before unloading, after the host has stopped routing requests to the
 *  plugin and every request, job and timer of it is over. Free everything. */
typedef void (*chatd_shutdown_fn)(struct chatd_plugin *self);

/** Read by the host without running plugin code. The first three members keep this
 *  layout in every ABI major, so any host can say which ABI a plugin was built for. */
struct chatd_plugin_descriptor {
    uint32_t abi_major;     /**< CHATD_ABI_MAJOR the plugin was built with */
    uint32_t abi_minor;     /**< CHATD_ABI_MINOR the plugin was built with */
    uint32_t size;          /**< sizeof(struct chatd_plugin_descriptor) as built */
    uint32_t jansson_major; /**< JANSSON_MAJOR_VERSION the plugin was built with */
    const char *name;       /**< [a-z0-9_], 1 to 32 bytes; names the config section */
    const char *version;    /**< the plugin's own release, free text */
    const char *description;
    const struct chatd_option *options;       /**< NULL or ended by a NULL key */
    const struct chatd_migration *migrations; /**< NULL or ended by a NULL sql */
    chatd_init_fn init;
    chatd_shutdown_fn shutdown; /**< may be NULL */
};

/** Define the plugin's descriptor. Give the remaining members as designated
 *  initialisers, e.g.
 *      CHATD_PLUGIN_DEFINE(.name = "ping", .version = "1.0.0",
 *                          .description = "answers ping", .init = ping_init);  */
#define CHATD_PLUGIN_DEFINE(...)                                                                   \
    CHATD_PLUGIN_EXPORT extern const struct chatd_plugin_descriptor chatd_plugin;                  \
    const struct chatd_plugin_descriptor chatd_plugin = {                                          \
        .abi_major = CHATD_ABI_MAJOR,                                                              \
        .abi_minor = CHATD_ABI_MINOR,                                                              \
        .size = (uint32_t)sizeof(struct chatd_plugin_descriptor),                                  \
        .jansson_major = JANSSON_MAJOR_VERSION,                                                    \
        __VA_ARGS__}

#ifdef __cplusplus
}
#endif

#endif /* CHATD_PLUGIN_H */
