/* chatd/plugin.h - the whole contract between chatd and its command plugins (ABI 1.5).
 *
 * A plugin is a shared object that includes this header (plus <jansson.h>; database
 * work goes through the host table, so no MariaDB header is needed) and exports exactly
 * one symbol: the constant descriptor `chatd_plugin`, defined with CHATD_PLUGIN_DEFINE().
 * Nothing else of the host is linked: every host service reaches the plugin through the
 * const function table `struct chatd_host` passed to its init function.
 *
 * Versioning. The ABI has a major and a minor number, independent of chatd's release
 * number. The host loads a plugin when the majors are equal and the minor the plugin
 * needs (CHATD_PLUGIN_MIN_MINOR, by default the minor of the header it was built with)
 * is not newer than the host's. A minor release only appends: new members at the end of
 * `struct chatd_host` and of the descriptor, new structs, error codes, events, hooks
 * and flags; the structs plugins fill in arrays (fields, options, migrations, commands)
 * never change. Anything else is a new major. A plugin that uses a function
 * newer than the minor it needs checks CHATD_HOST_HAS() first.
 *
 * The story so far:
 *  - 1.0: commands with field tables, replies and pushes, sessions and users, events,
 *    jobs with the database helpers, timers, options, migrations.
 *  - 1.1: request_hold/request_release (reply later), metric_set (gauges), at most
 *    CHATD_DB_MAX_PARAMS parameters per statement.
 *  - 1.2: an instance pointer for every callback (instance_set), the minor a plugin
 *    needs in its descriptor, integer ranges, defaults and option-bound limits in field
 *    tables, job_run (submit or answer busy/internal), jobs from init, a monotonic
 *    clock, on_user_flushed, db_query_rows, the table-name rule for migrations, hooks,
 *    services with declared dependencies, the delivery facility (deliver),
 *    user_logout_all (end a user's other sessions) and hook_has.
 *  - 1.3: login admission for authenticators: auth_attempt (the host's rate limits
 *    before a login or register) and auth_failed (a failed login, logged and charged to
 *    the name), with the error code CHATD_ELIMITED; deliver_from (deliver naming the
 *    sender, with a per-sender share of a recipient's inbox); job_room (the room left in
 *    a job queue, for admission).
 *  - 1.4: sequenced, durable messages: post (one message for some users, committed in
 *    a group before anyone sees it, with a sequence number, idempotent by the sender's
 *    client_msg_id, kept for history), message_last_id, history_read and read_mark;
 *    session_login reads the login's device, ack and since (devices, acknowledgements,
 *    resuming); deliver with CHATD_DELIVER_STORE is a post without a conversation.
 *  - 1.5: post_find (a send refused before it was posted still gets the first
 *    message's answer when its client_msg_id was used) and chatd_posted.flags (the
 *    first post's kind, for a repeat's result word).
 *
 * Instances (since 1.2). A plugin keeps its state in one struct it allocates in init and
 * hands to instance_set(); every callback that was registered with a NULL `arg`
 * (command, event subscription, hook, timer, job) then receives that pointer as `arg`,
 * and the descriptor's `destroy` gets it back after shutdown. With no globals, a reload
 * can load a new instance of the same file beside the old one.
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
 * CHATD_E* code from the one table below otherwise; chatd_strerror() names it. Each
 * function's comment lists every code it returns.
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
#define CHATD_ABI_MINOR 5

/** The oldest ABI minor this plugin needs: a plugin may define it before including
 *  this header when it uses nothing newer (probing later members with
 *  CHATD_HOST_HAS()), so that it also loads on hosts of that minor. Defaults to
 *  CHATD_ABI_MINOR. Hosts before 1.2 read it as the minor the plugin was built for. */
#ifndef CHATD_PLUGIN_MIN_MINOR
#define CHATD_PLUGIN_MIN_MINOR CHATD_ABI_MINOR
#endif

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
    X(EPLUGIN, -15, "plugin failed")                                                               \
    X(ELIMITED, -16, "rate limited")

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
 *  with an entry whose sql is NULL. A migration is never edited once shipped: add one.
 *
 *  Table names (since 1.2, for plugins that need 1.2). Every table a plugin's migration
 *  creates, alters, drops, renames, truncates or indexes is named after the plugin:
 *  `<name>` or `<name>_<anything>` (e.g. accounts_users for the plugin accounts), so two
 *  plugins never share a table by accident. chatd checks each migration before running
 *  it and refuses the start (naming the plugin, the migration's version and the table)
 *  when it names another. Reading other tables (INSERT ... SELECT from an older plugin's
 *  table, to take its data over) is allowed. Plugins that need 1.0 or 1.1 are not
 *  checked. */
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
 *  handler is not called. The array ends with an entry whose name is NULL. Since 1.2
 *  the host copies the table when the command is registered, so it may be built in
 *  init (from options, say); command_rules adds integer ranges and defaults. */
struct chatd_field {
    const char *name;
    enum chatd_field_type type;
    int required;   /**< non-zero: the field must be present */
    size_t min_len; /**< strings: fewest bytes accepted */
    size_t max_len; /**< strings: most bytes accepted; 0 means no limit beyond the frame */
};

/** Since 1.2: more about one field of a registered command (command_rules). Give it
 *  with designated initialisers: later minors may append members. */
struct chatd_field_rule {
    const char *field; /**< a field of the command's table */
    /** Integers: the accepted range, checked like the field table (bad_request naming
     *  the field and the range). min_int == max_int == 0: no range. */
    int64_t min_int, max_int;
    /** JSON text of the value an absent optional field takes before the handler runs
     *  (e.g. "50", "false", "\"all\""); NULL: it stays absent. */
    const char *default_json;
    /** The name of a CHATD_OPT_INT option of the plugin whose value becomes the field's
     *  max_len (strings) or max_int (integers), replacing the table's, so a limit the
     *  operator sets is checked by the host and not again by hand. NULL: none. */
    const char *max_from_option;
};

/** Command flags. */
enum chatd_command_flags {
    /** The command works without a logged-in session (register, login, ping). Without
     *  this flag the host answers `not_logged_in` before the handler runs, and answers
     *  `forbidden` when a `user_from` field differs from the session's user. */
    CHATD_CMD_ANONYMOUS = 1u << 0,
    /** Since 1.4: the session may send its next requests before this one is answered
     *  (up to [server] max_pipelined in flight): the handler may run while earlier
     *  requests of the same session are unanswered. The host still sends the replies in
     *  request order, and commits the posts made for them (chatd_post.req) in request
     *  order, so a sender's messages keep their order. For commands whose handling does
     *  not depend on the outcome of the session's earlier requests (sending a message);
     *  a command without the flag waits until every earlier request is done, and the
     *  session reads nothing more until it is. Hosts before 1.4 ignore it. */
    CHATD_CMD_PIPELINED = 1u << 1,
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
     *  password hashing). The flag also chooses the queue: database jobs and the others
     *  have bounded queues and worker threads of their own ([database] workers and
     *  queue_max; [server] cpu_workers and cpu_queue_max), so neither ever waits behind
     *  the other. Set it only when work() uses db, and do no heavy CPU work in a
     *  database job. */
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
 *  not run (status CHATD_EDBLOST, CHATD_ESHUTDOWN, or CHATD_ECLOSED: `req`'s client had
 *  gone when a worker took the job, so work() was skipped; a reply is dropped), or
 *  (job_run) when it could not even be submitted: then `req` is NULL because the host has
 *  answered it already. The time budget counts from when work() starts, not from
 *  submission. A job that
 * passes its time budget ends with CHATD_ETIMEDOUT: its running statement is killed and later ones
 * are not run, but statements that completed before keep their effects, so do the job's writes in
 * one transaction: a transaction that work() leaves open when it fails is rolled back by the host.
 * `req` is the request the job was submitted for, or NULL. It frees `arg` if it owns it. Called
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

/** Since 1.2: every row of a query, gathered by the host (db_query_rows) into one block
 *  that may cross back to the loop thread, so a plugin copies nothing by hand. Row r's
 *  column c is values[r * n_cols + c]; text and blob values point into the block and
 *  are NUL-terminated. Free it with rows_free (any thread). */
struct chatd_rows {
    size_t n_rows;
    size_t n_cols;
    const struct chatd_value *values;
};

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
 *  (LOGOUT), which is when presence changes. With [cluster] events and first_or_last
 *  are this node's (user_session_count gives the cluster's). An event with session 0
 *  and first_or_last set is a change of the user's presence in the cluster that no
 *  session's event told, raised on one node: a LOGOUT when their last session was on a
 *  node that died (on the node that found it dead), ended at the same moment as their
 *  last one on another node, each node seeing the other's still there (on one of the
 *  two), or ended while Redis was down (on that node, a lease after Redis is back); a
 *  LOGIN when their first session began while Redis was down (the same). */
typedef void (*chatd_event_fn)(enum chatd_event event, chatd_session_id session, const char *user,
                               int first_or_last, void *arg);

/** A timer callback, on the loop thread. */
typedef void (*chatd_timer_fn)(void *arg);

/** Since 1.2: called once when `user`'s queued output has reached the network (see
 *  on_user_flushed), with status 0, or CHATD_ECLOSED when the user's last session ended
 *  first, or CHATD_ETIMEDOUT when it did not happen within the time given. */
typedef void (*chatd_flushed_fn)(const char *user, int status, void *arg);

/* ---------------------------------------------------------------------------------
 * Hooks (since 1.2): extending commands that other plugins serve
 * ------------------------------------------------------------------------------- */

/* The hook points chatd's own plugins run, each with its payload (a JSON object). A
 * plugin may run hook points of its own under other names ("<plugin>.<event>").
 *
 * message.deliver - run by private_chat and groups before a message is accepted.
 *   {"kind":"private"|"group","user_from":..,"user_to":.. (private) | "group":.. (group),
 *    "text":..}. A hook may refuse it (hook_refuse: the sender gets that result word and
 *   reason, nothing is stored or sent) or rewrite "text" (a string; other members are
 *   read-only). It may decide later (return CHATD_HOOK_DEFER).
 * message.accepted - run after a message was accepted (sent, stored or both): the
 *   payload of message.deliver as delivered, plus "msg_id" (a string), "ts" (Unix ms)
 *   and "result" (the word the sender got: "success" or "offline"). Observe only.
 * user.registered - run by accounts after a new account was committed: {"user":..}.
 * user.login - run by accounts after a successful login, before login_reply is sent:
 *   {"user":..,"session":N,"reply":{}}. Hooks add members to "reply" (not cmd, result,
 *   id or reason), which login_reply carries; friends adds "fri", groups "group". Hooks
 *   may defer (to read the database in a job).
 * presence.changed - run by the host when a user's first session logs in or the last
 *   one ends: {"user":..,"status":"online"|"offline"}. Observe only.
 *
 * On an observe-only point, hook_refuse and changes to the payload have no effect
 * (hooks may still defer, to finish a job of their own first). Any plugin may run any
 * point, the core ones included: a test kit or a bridge may.
 */
#define CHATD_HOOK_MESSAGE_DELIVER  "message.deliver"
#define CHATD_HOOK_MESSAGE_ACCEPTED "message.accepted"
#define CHATD_HOOK_USER_REGISTERED  "user.registered"
#define CHATD_HOOK_USER_LOGIN       "user.login"
#define CHATD_HOOK_PRESENCE_CHANGED "presence.changed"

/** One run of a hook point, handed to each hook function in turn. Valid until the
 *  hook function returns, or, when it deferred, until it calls hook_resume. */
struct chatd_hook_call;

/** What a hook function returns. Anything negative is a CHATD_E* failure: the host logs
 *  it with the plugin's name, counts it in /metrics (chatd_hook_failures_total) and goes
 *  on with the next hook (what the failing hook already changed in the payload, or a
 *  refusal it made, stays). */
enum chatd_hook_return {
    CHATD_HOOK_CONTINUE = 0, /**< done with it; the next hook runs */
    CHATD_HOOK_DEFER = 1,    /**< will call hook_resume later (from a job's done, say) */
};

/** A hook function, on the loop thread. `payload` belongs to the call: read it, and
 *  change what the hook point allows, until returning (or until hook_resume). After
 *  hook_refuse it returns CHATD_HOOK_CONTINUE (the run stops there), or
 *  CHATD_HOOK_DEFER to finish something first (the outcome is handed over once it
 *  resumes or the deferral is cut). Calling hook_resume before returning ends the step:
 *  a CHATD_HOOK_DEFER returned after it counts as CHATD_HOOK_CONTINUE. A hook function
 *  that keeps the loop thread over 50 ms is logged and counted (chatd_hook_slow_total). */
typedef int (*chatd_hook_fn)(struct chatd_hook_call *call, json_t *payload, void *arg);

/** The outcome of a hook point's run, handed to the plugin that ran it. */
struct chatd_hook_outcome {
    int refused;        /**< non-zero when a hook refused */
    const char *result; /**< the refusing hook's result word, or NULL */
    const char *reason; /**< its reason, or NULL */
};

/** Called once the last hook is done (or refused): `payload` holds what the hooks made of
 *  it, borrowed for the call. May run before hook_run returns. */
typedef void (*chatd_hook_done_fn)(const struct chatd_hook_outcome *outcome, json_t *payload,
                                   void *arg);

/* ---------------------------------------------------------------------------------
 * Services (since 1.2): functions one plugin offers to others
 * ------------------------------------------------------------------------------- */

/** A service as service_get finds it: the provider's table of functions (a struct the
 *  service's own header defines, versioned by `version`; later versions only append)
 *  and the provider's instance, the first argument of each of its functions. */
struct chatd_service {
    uint32_t version;
    const void *fns;
    void *instance;
    void *pin; /**< the host's; set by service_hold */
};

/* ---------------------------------------------------------------------------------
 * Delivery (since 1.2): one stream of messages per user
 * ------------------------------------------------------------------------------- */

enum chatd_deliver_flags {
    /** Users with no session online get the message stored in chatd's inbox (committed
     *  before done runs) and pushed, with "offline":true, right after their next
     *  login_reply, in the order it was accepted among their other messages. Since
     *  1.4 such a delivery is a post (see chatd_host.post) without a conversation or
     *  client_msg_id: committed before any session gets it, with a "seq" added; the
     *  message's own fields (its msg_id) are left as they are. */
    CHATD_DELIVER_STORE = 1u << 0,
};

/** Where a delivered message went: `online` users had a session that got it (or will,
 *  after the stored messages they are being sent), `stored` users got it stored.
 *  `status` is 0, or CHATD_EOVERFLOW (nothing stored for a user whose inbox holds
 *  max_stored messages; only with a single user), CHATD_EBUSY, CHATD_EDB... when the
 *  store failed; the online users got the message in any case. */
typedef void (*chatd_deliver_done_fn)(int status, size_t online, size_t stored, void *arg);

/* ---------------------------------------------------------------------------------
 * Posting (since 1.4): sequenced, durable messages with history
 * ------------------------------------------------------------------------------- */

enum chatd_post_flags {
    /** A private message: a device of its (one) recipient acknowledging it sends the
     *  sender a "delivered" receipt, read_mark a "read" one. */
    CHATD_POST_PRIVATE = 1u << 0,
};

/** One message to post: what post copies before it returns (msg is taken). */
struct chatd_post {
    /** The user who sent it: 1 to 32 printable ASCII bytes. */
    const char *sender;
    /** The history it belongs to, 1 to 70 bytes of [A-Za-z0-9_|#:.-] (private_chat uses
     *  "<lower name>|<higher name>", groups "#<group>"), or NULL: not in any history. */
    const char *conversation;
    /** The recipients (1 to 32 printable ASCII bytes each); the sender may be among them
     *  only when the plugin wants them to get it too. None (n_users 0) only with a
     *  conversation: the message is kept for its history (a group of one). */
    const char *const *users;
    size_t n_users;
    /** The push, an object (taken). The host adds "msg_id" (the message's id as a
     *  decimal string), "seq" (the same id as an integer) and "ts" (Unix ms) to it, and
     *  "offline":true when it is sent after a login. */
    json_t *msg;
    /** NULL, or the sender's own id for the message (1 to 64 bytes): a post with a
     *  client_msg_id this sender already used is not delivered again, its done gets the
     *  first post's msg_id, seq, ts and online (see chatd_posted.repeat). Kept at least
     *  as long as the message (never less than 24 hours). */
    const char *client_msg_id;
    uint32_t flags; /**< chatd_post_flags */
    /** With one recipient: refuse (CHATD_EOVERFLOW) when no session of theirs is online
     *  and they already have this many messages waiting for their next login; 0: no
     *  limit. */
    int64_t max_stored;
    /** With one recipient: refuse (CHATD_EPERM) when no session of theirs is online and
     *  this sender already has this many of the messages waiting for them; 0: no
     *  limit. */
    int64_t max_per_sender;
    /** The request the post is made for, or NULL. Posts made for the pipelined requests
     *  of one session (CHATD_CMD_PIPELINED) are committed in the order the requests
     *  arrived, whatever order their jobs finish in: a post for a later request waits
     *  until every earlier request of the session has posted or been answered (and is
     *  dropped, done getting CHATD_ECLOSED, if the session closes meanwhile). */
    struct chatd_request *req;
};

/** What became of a post, for its done callback (valid during the call only). */
struct chatd_posted {
    /** 0: committed (and pushed to the recipients online). Otherwise nothing was posted:
     *  CHATD_EOVERFLOW / CHATD_EPERM (max_stored / max_per_sender), CHATD_EDB,
     *  CHATD_EDBLOST, CHATD_EBUSY (the commit queue is full), CHATD_ESHUTDOWN,
     *  CHATD_ENOMEM, CHATD_ECLOSED (see chatd_post.req). */
    int status;
    /** Non-zero when client_msg_id repeated an earlier post of the sender: nothing was
     *  delivered now; msg_id, seq, ts and online are the first post's. */
    int repeat;
    const char *msg_id; /**< the id as a decimal string; NULL unless status is 0 */
    int64_t seq;        /**< the same id as an integer: its place in every recipient's sequence */
    int64_t ts;         /**< when it was accepted, Unix ms */
    /** How many recipients had a session online when it was accepted (their sessions
     *  got it; the others get it at their next login). */
    size_t online;
    /* -- since 1.5 -- */
    /** The post's chatd_post_flags; a repeat's are the first post's, which may have been
     *  made by another command (a client_msg_id is the sender's, whatever the command):
     *  what the first answer said depends on them (CHATD_POST_PRIVATE). */
    uint32_t flags;
};

typedef void (*chatd_post_done_fn)(const struct chatd_posted *posted, void *arg);

/** What history_read reads: one conversation, newest last. */
struct chatd_history_query {
    const char *conversation; /**< as in chatd_post */
    /** Only messages with a smaller id (0: up to the newest). */
    int64_t before;
    /** Only messages with this id or a larger one (0: from the oldest kept); a group
     *  member's first message, say. */
    int64_t floor;
    /** At most this many (1 to 1000). */
    int limit;
    /** The user reading: their own private messages (CHATD_POST_PRIVATE) get
     *  "delivered" and "read" flags. NULL: none. */
    const char *viewer;
};

/** messages: an array (borrowed) of objects shaped like the pushes without "cmd", with
 *  "msg_id", "seq" and "ts", oldest first; `more` non-zero when older ones exist.
 *  status 0, or CHATD_EDB, CHATD_EDBLOST, CHATD_EBUSY, CHATD_ETIMEDOUT, CHATD_ENOMEM,
 *  CHATD_ECLOSED (messages is NULL then). */
typedef void (*chatd_history_done_fn)(int status, json_t *messages, int more, void *arg);

/** read_mark's outcome: 0 (marked; a receipt went to the peer when it moved the mark),
 *  CHATD_ENOENT (msg_id is not a private message from the peer to the reader),
 *  CHATD_EDB, CHATD_EDBLOST, CHATD_EBUSY, CHATD_ETIMEDOUT, CHATD_ENOMEM, CHATD_ECLOSED. */
typedef void (*chatd_read_done_fn)(int status, void *arg);

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
    /** The value of a CHATD_OPT_BOOL key (0 or 1) into *out. CHATD_ENOENT for an
     *  undeclared key, CHATD_EINVAL for a key of another type. */
    int (*option_bool)(struct chatd_plugin *self, const char *key, int *out);
    /** The value of a CHATD_OPT_STRING key; NULL for an undeclared key. The string is
     *  owned by the host and valid until shutdown (or the next reload) returns. */
    const char *(*option_string)(struct chatd_plugin *self, const char *key);

    /* -- commands (loop thread, during init only) -- */

    /** Route requests whose `cmd` is cmd->name to cmd->handler. The host copies *cmd, the
     *  name and (since 1.2; 1.0 and 1.1 hosts keep pointing at it, so keep it static when
     *  the plugin may run there) the field table. CHATD_ESTATE
     *  outside init; CHATD_EEXIST when another plugin has the name (the host then
     *  refuses the whole start, naming both plugins); CHATD_EINVAL for a bad name, no
     *  handler, or a field of an unknown type; CHATD_ENOMEM. */
    int (*register_command)(struct chatd_plugin *self, const struct chatd_command *cmd);

    /* -- requests (loop thread) -- */

    /** Answer `req` with `{"cmd":"<cmd>_reply","result":result, ...fields, "id":...}`.
     *  `result` is a word such as "success" (copied). `fields` (an object, or NULL) is
     *  taken by the host; its `cmd`, `result` and `id` members are ignored. Exactly one
     *  reply per request: a second one returns CHATD_ESTATE and is logged as a bug. The
     *  request handle stays valid until the callback in which it was replied returns. A
     *  reply for a client that has gone away returns 0 and is dropped. CHATD_EINVAL for
     *  a NULL req or result, or fields that are not an object (fields is still taken). */
    int (*reply)(struct chatd_request *req, const char *result, json_t *fields);
    /** The session the request came from. */
    chatd_session_id (*request_session)(const struct chatd_request *req);
    /** The user the request's session was logged in as when the request arrived, or
     *  NULL. Owned by the host; valid as long as the request. */
    const char *(*request_user)(const struct chatd_request *req);

    /* -- sessions and users (loop thread) -- */

    /** Send `msg` (an object, taken) to one session as one line. A push never carries an
     *  `id`. CHATD_ENOENT when the session is gone, CHATD_ECLOSED when it is closing
     *  (or was just closed for not reading its output), CHATD_EINVAL when msg is not an
     *  object. */
    int (*push_session)(struct chatd_plugin *self, chatd_session_id session, json_t *msg);
    /** Send `msg` (an object, taken) to every session logged in as `user`. Stores in
     *  *delivered (may be NULL) how many sessions got it; 0 sessions is not an error.
     *  CHATD_EINVAL when msg is not an object or user is NULL. */
    int (*push_user)(struct chatd_plugin *self, const char *user, json_t *msg, size_t *delivered);
    /** How many sessions are logged in as `user` right now. */
    size_t (*user_session_count)(struct chatd_plugin *self, const char *user);
    /** The user a session is logged in as, or NULL. Owned by the host, valid until the
     *  current callback returns. */
    const char *(*session_user)(struct chatd_plugin *self, chatd_session_id session);
    /** Bind the request's session to `user` (copied), replacing any earlier binding, and
     *  raise CHATD_EVENT_LOGIN (and LOGOUT for the old user). Only the plugin the
     *  operator names in `[plugins] authenticator` may call it: CHATD_EPERM for others.
     *  CHATD_EINVAL for an empty or NULL user, CHATD_ECLOSED when the session is gone,
     *  CHATD_ENOMEM. Since 1.2 the host also holds the user's pushes from then on and,
     *  once req is answered `success`, sends what its delivery stored for the user
     *  first (see deliver). Since 1.4 it reads the login request's "device", "ack" and
     *  "since" (docs/protocol.md, "Devices"): CHATD_EINVAL, binding nothing, when one
     *  of them breaks its rule (answer bad_request). */
    int (*session_login)(struct chatd_request *req, const char *user);
    /** Unbind the request's session from its user and raise CHATD_EVENT_LOGOUT.
     *  Authenticator only, like session_login (CHATD_EPERM). CHATD_ESTATE when not
     *  logged in, CHATD_ECLOSED when the session is gone. */
    int (*session_logout)(struct chatd_request *req);
    /** Call fn(arg) for `event` until shutdown. Loop thread, during init only:
     *  CHATD_ESTATE otherwise. CHATD_EINVAL for no fn or an unknown event, CHATD_ENOMEM. */
    int (*subscribe)(struct chatd_plugin *self, enum chatd_event event, chatd_event_fn fn,
                     void *arg);

    /* -- jobs (loop thread) -- */

    /** Queue `job` for a worker. `req` (may be NULL) stays valid, and unanswered, until
     *  job->done has run. `arg` is passed to work and done; the plugin owns it. The
     *  host copies *job. CHATD_EBUSY at once when the queue is full (answer `busy`),
     *  CHATD_ENOSYS for a CHATD_JOB_DB job when the database is not enabled (and under
     *  `chatd -t`), CHATD_ESTATE during init for plugins built before 1.2 (since 1.2 a
     *  job may start in init: it runs once the pool is up, and a plugin whose init fails
     *  is closed only after its jobs are done),
     *  CHATD_ESHUTDOWN while stopping and from the plugin's own shutdown (it is unmapped
     *  right after), CHATD_EINVAL for no job, work or done, CHATD_ENOMEM. On any error
     *  done is not called. */
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
     *  before shutdown is called. CHATD_EINVAL for no fn or a repeating timer of 0 ms,
     *  CHATD_ENOMEM. */
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
     *  name, CHATD_ENOMEM. */
    int (*metric_set)(struct chatd_plugin *self, const char *name, const char *help, double value);

    /* -- since 1.2: the instance (loop thread) -- */

    /** Make `instance` the plugin's instance: every command, subscription, hook, timer
     *  and job it registers or submits with a NULL `arg` gets `instance` as its arg, and
     *  the descriptor's destroy gets it after shutdown. Call it first thing in init.
     *  Always 0. */
    int (*instance_set)(struct chatd_plugin *self, void *instance);

    /* -- since 1.2: commands (loop thread, during init only) -- */

    /** Add rules to the fields of command `cmd`, registered by this plugin before:
     *  `rules` ends with an entry whose field is NULL and is copied. CHATD_ENOENT for an
     *  unknown command or field; CHATD_EINVAL for a default that is not valid JSON of
     *  the field's type (or on a required field), a range on a field that is not an
     *  integer or with min_int > max_int, or a max_from_option that is not an integer
     *  option of the plugin or is set on a field that is neither string nor integer
     *  (the reason is logged); CHATD_ESTATE outside init. */
    int (*command_rules)(struct chatd_plugin *self, const char *cmd,
                         const struct chatd_field_rule *rules);

    /* -- since 1.2: jobs, the short way (loop thread, also during init) -- */

    /** Submit `job` for `req` like job_submit, or, when that fails, answer req itself
     *  (`busy` for CHATD_EBUSY, `internal` with the error's text otherwise) and call
     *  job->done(NULL, arg, error) at once, so that done always runs exactly once and
     *  frees arg. Returns what job_submit returned. `req` may be NULL (nothing to answer).
     *  Since 1.2, job_submit and job_run also work during init: the jobs run once the
     *  pool is up; a plugin whose init fails afterwards is unloaded only after its jobs
     *  are done. */
    int (*job_run)(struct chatd_plugin *self, struct chatd_request *req,
                   const struct chatd_job *job, void *arg);

    /* -- since 1.2: time (any thread) -- */

    /** Milliseconds of a monotonic clock (CLOCK_MONOTONIC): for durations and deadlines,
     *  never affected by changes of the wall clock. Unrelated to now_ms. */
    int64_t (*monotonic_ms)(void);

    /* -- since 1.2: flow control without polling (loop thread) -- */

    /** Call fn(user, status, arg) once user_output_pending(user) is 0: at once (before
     *  this returns, status 0) when it already is, and at once with CHATD_ECLOSED when
     *  the user has no session. Gives up after timeout_ms (0: 30 s) with
     *  CHATD_ETIMEDOUT. Returns 0, CHATD_EINVAL (no user or fn), CHATD_ENOMEM, or
     *  CHATD_ESHUTDOWN while stopping or retired (fn is then not called). A retired instance's
     * pending calls are made with CHATD_ESHUTDOWN before its shutdown. */
    int (*on_user_flushed)(struct chatd_plugin *self, const char *user, uint32_t timeout_ms,
                           chatd_flushed_fn fn, void *arg);

    /* -- since 1.2: database rows without copying by hand (worker thread, in work()) -- */

    /** Run a prepared statement like db_query and gather at most max_rows rows (0: no
     *  limit beyond 100000) into *out, which the caller frees with rows_free, also when
     *  the work's done runs on the loop thread. CHATD_EOVERFLOW when more rows came (*out
     *  then holds the first max_rows), CHATD_ENOMEM, and db_query's errors (*out NULL). */
    int (*db_query_rows)(struct chatd_db *db, const char *sql, const struct chatd_value *params,
                         size_t nparams, size_t max_rows, struct chatd_rows **out);
    /** Free what db_query_rows gathered; NULL is ignored. Any thread. */
    void (*rows_free)(struct chatd_rows *rows);

    /* -- since 1.2: hooks (loop thread) -- */

    /** Call fn for every run of the hook point `hook` ("message.deliver"...) until
     *  shutdown. Hooks of one point run in ascending `priority` (0 is the usual; a filter
     *  that must see the original text takes a negative one), equal priorities in the
     *  order of `[plugins] enable`. During init only: CHATD_ESTATE otherwise,
     *  CHATD_EINVAL for no fn or an empty or over-long (64 bytes) name, CHATD_ENOMEM. */
    int (*hook_add)(struct chatd_plugin *self, const char *hook, int priority, chatd_hook_fn fn,
                    void *arg);
    /** Run hook point `hook` with `payload` (an object, taken) through every hook added
     *  for it, then call done (NULL makes the run observe-only: refusals are ignored),
     *  possibly before this returns; a NULL arg is the plugin's instance. A hook that defers longer
     * than [server] hook_timeout_ms is logged and counted (chatd_hook_timeouts_total) and skipped,
     * and so is a deferring hook whose plugin a reload takes out of service. When the running
     * plugin itself is unloaded first, done runs before its shutdown with the refusal "shutdown".
     * Returns 0, or CHATD_ENOMEM / CHATD_EINVAL (payload not an object, bad name; done is then not
     *  called). */
    int (*hook_run)(struct chatd_plugin *self, const char *hook, json_t *payload,
                    chatd_hook_done_fn done, void *arg);
    /** Inside a hook function (or before hook_resume): stop the run; the plugin that ran
     *  it gets `result` (a word, copied) and `reason` (copied, may be NULL). 0;
     *  CHATD_ESTATE when the call is already decided, its step is over, or its deferral
     *  was cut (the refusal is then ignored); CHATD_EINVAL for no call or result. Out
     *  of memory, the run is still refused (`internal`, "out of memory"): a filter never
     *  fails open. On an observe-only point (a run without done) it returns 0 and has
     *  no effect: the next hooks run. */
    int (*hook_refuse)(struct chatd_hook_call *call, const char *result, const char *reason);
    /** After a hook function returned CHATD_HOOK_DEFER: go on with the next hook. The
     *  call handle is invalid afterwards. Ignored (and 0) when the run already moved on
     *  because the hook took too long or its plugin was retired (the handle stays valid
     *  for this until the plugin is closed; what the plugin writes into the payload
     *  until then is discarded, since the run went on with a copy). */
    int (*hook_resume)(struct chatd_hook_call *call);

    /* -- since 1.2: services (loop thread) -- */

    /** Offer the table `fns` (static, or owned by the instance) as service `name` at
     *  `version`, with `instance` (NULL: the plugin's instance) as the first argument of
     *  its functions. During init only (CHATD_ESTATE otherwise), and only for a name in
     *  the descriptor's `provides` (CHATD_EPERM otherwise); CHATD_EEXIST when another
     *  plugin offers it; CHATD_EINVAL for no name or fns; CHATD_ENOMEM. */
    int (*service_provide)(struct chatd_plugin *self, const char *name, uint32_t version,
                           const void *fns, void *instance);
    /** Find service `name` at `version` or later into *out. Valid until the current
     *  callback returns; to use it longer (in a job, or until a callback of the
     *  provider), service_hold it. CHATD_ENOENT when nobody offers it, CHATD_ENOSYS
     *  when only an older version is offered, CHATD_EINVAL for no name or out. */
    int (*service_get)(struct chatd_plugin *self, const char *name, uint32_t version,
                       struct chatd_service *out);
    /** Keep the provider of *svc loaded (and this plugin too) until service_release,
     *  even across a reload that replaces it. Every hold needs one release; an instance a
     *  reload retired is closed only once it released every hold it took, so release
     *  when the use ends, not in shutdown. 0, CHATD_EINVAL when *svc is not what
     *  service_get found, CHATD_ENOMEM. */
    int (*service_hold)(struct chatd_plugin *self, struct chatd_service *svc);
    void (*service_release)(struct chatd_plugin *self, struct chatd_service *svc);

    /* -- since 1.2: delivery (loop thread) -- */

    /** Deliver `msg` (an object, taken, e.g. a private_chat_recv push) to each of the
     *  n_users users: pushed to their online sessions in the order deliver was called
     *  (behind any stored messages still being sent to them), and with
     *  CHATD_DELIVER_STORE stored for those with no session online (and for an online
     *  user who already has 1000 pushes waiting behind their stored messages). With
     *  CHATD_DELIVER_STORE every name must be 1 to 32 printable ASCII bytes, the
     *  inbox's limit. `max_stored` (0: no limit; used only when n_users is 1) refuses
     *  the store for a user who already has that many stored messages. done (may be
     *  NULL) runs once on the loop thread, before this returns when nothing needed
     *  storing (also with CHATD_ENOMEM when memory ran out on the way). Returns 0,
     *  CHATD_EINVAL, or CHATD_ENOSYS for CHATD_DELIVER_STORE without a database (done
     *  is then not called). */
    int (*deliver)(struct chatd_plugin *self, const char *const *users, size_t n_users, json_t *msg,
                   uint32_t flags, int64_t max_stored, chatd_deliver_done_fn done, void *arg);

    /* -- since 1.2: sessions (loop thread) -- */

    /** End the login of every OTHER session of the user the request was made as (the
     *  user logged in on its session when it arrived): each is unbound from the user as
     *  by session_logout, raising CHATD_EVENT_LOGOUT (and presence.changed "offline" when
     *  no session of the user is left, which is when the request's own session is not
     *  logged in as that user any more). Their connections stay open, logged out; the
     *  host sends them nothing (a later request of theirs that needs a login is answered
     *  `not_logged_in`). The request's own session is left as it is, also when it is
     *  gone (a request can still end the others after its client disconnected). Meant
     *  for `logout` with "all" (revoking a user's credentials everywhere). Returns how
     *  many sessions it unbound (0 or more; INT_MAX at most), CHATD_EPERM when the
     *  plugin is not the authenticator, CHATD_ESTATE when the request was made without
     *  a login (a CHATD_CMD_ANONYMOUS command sent before login). */
    int (*user_logout_all)(struct chatd_request *req);

    /** Non-zero when some serving plugin has a hook on point `hook`, so that a plugin
     *  can skip building a payload nobody would read (message.accepted for every
     *  message, say). hook_run with no hooks is cheap too, but the payload is not. */
    int (*hook_has)(struct chatd_plugin *self, const char *hook);

    /* -- since 1.3: login admission (loop thread; the authenticator only) -- */

    /** Call first thing for every authentication attempt, before any password hash or
     *  database job: a login, a register. It applies the host's [limits]: attempts per
     *  source address (always; each call counts one), and, when `name` is given, the
     *  failed logins of that account name (each password login takes one when it
     *  starts, so guesses still being checked count too; one that logs the session in
     *  with session_login gives it back). Give `name` for a password login; give NULL
     *  for a register and for a login by token, so that someone who guesses passwords
     *  for a name cannot lock its user out of logging in by token. Returns 0 (go on),
     *  CHATD_ELIMITED when the host has answered req `rate_limited` with retry_after_ms
     *  (reply nothing more), CHATD_EPERM when the plugin is not the authenticator,
     *  CHATD_EINVAL for no req. */
    int (*auth_attempt)(struct chatd_plugin *self, struct chatd_request *req, const char *name);
    /** A login for `name` failed (`why`: "wrong password", "unknown user", "bad token"...,
     *  never a secret): the host logs it at warn with the name and the source address
     *  and counts it against the name's failed-login limit (unless auth_attempt took
     *  it already, for a password login). Returns 0, CHATD_EPERM when
     *  the plugin is not the authenticator, CHATD_EINVAL for no req or name. */
    int (*auth_failed)(struct chatd_plugin *self, struct chatd_request *req, const char *name,
                       const char *why);

    /* -- since 1.3: delivery with the sender's share of a mailbox (loop thread) -- */

    /** deliver, naming the message's `sender` (a user name, 1 to 32 printable ASCII
     *  bytes; NULL: none, as deliver) so that one sender cannot fill another user's
     *  inbox for everyone: with `max_per_sender` > 0 and a single user, the store is
     *  refused when `sender` already has that many messages stored for that user (ones
     *  delivered since no longer count). Stored rows keep the sender; the count is
     *  exact (taken in the store's transaction). done's status is then CHATD_EPERM
     *  (nothing stored for the user; max_stored is checked first and gives
     *  CHATD_EOVERFLOW), otherwise as deliver's. Returns 0, CHATD_EINVAL (also for a
     *  sender the inbox cannot keep, or max_per_sender < 0), or CHATD_ENOSYS for
     *  CHATD_DELIVER_STORE without a database (done is then not called). */
    int (*deliver_from)(struct chatd_plugin *self, const char *sender, const char *const *users,
                        size_t n_users, json_t *msg, uint32_t flags, int64_t max_stored,
                        int64_t max_per_sender, chatd_deliver_done_fn done, void *arg);

    /* -- since 1.3: admission (loop thread) -- */

    /** How many more jobs of the kind `flags` names (CHATD_JOB_DB: the database queue;
     *  without it: the CPU queue) could be queued right now before job_run would answer
     *  busy. For admission before costly preparation: a login that would read an account
     *  from the database only to find the hashing queue full asks first and answers busy
     *  at once. 0 also while the server stops. */
    size_t (*job_room)(struct chatd_plugin *self, uint32_t flags);

    /* -- since 1.4: posting sequenced, durable messages (loop thread) -- */

    /** Post one message (see struct chatd_post): the host writes it with others in one
     *  transaction ("group commit"), which gives it the next id of the server's message
     *  sequence, with a row per recipient who must get it later, and only then pushes it
     *  to the recipients' sessions, in id order, and runs done, once, on the loop
     *  thread. So a post whose done saw status 0 survives a crash of chatd, and every
     *  device of every recipient gets it exactly once (see docs/protocol.md,
     *  "Devices"). Returns 0 (done will run), CHATD_EINVAL (a name, conversation or
     *  client_msg_id out of its rules, no users and no conversation,
     *  msg not an object; msg is freed),
     *  CHATD_ENOSYS without a database, CHATD_ENOMEM (done is not called then). */
    int (*post)(struct chatd_plugin *self, const struct chatd_post *post, chatd_post_done_fn done,
                void *arg);
    /** The id of the last message committed (0 before the first): a message committed
     *  later (a post still waiting for its commit too) has a larger one. For a group's
     *  membership: what the member may see starts after it. */
    int64_t (*message_last_id)(struct chatd_plugin *self);
    /** Read one page of a conversation's history (a job on the host's connection).
     *  `req` (may be NULL) stays unanswered until done has run. Returns 0 (done will
     *  run), CHATD_EINVAL (no conversation, limit out of range), CHATD_ENOSYS without a
     *  database, CHATD_EBUSY, CHATD_ENOMEM (done is not called then). */
    int (*history_read)(struct chatd_plugin *self, struct chatd_request *req,
                        const struct chatd_history_query *query, chatd_history_done_fn done,
                        void *arg);
    /** The request's user has read every private message from `peer` up to the one
     *  numbered `msg_id` (its seq): the mark only moves forward, and when it moves,
     *  peer's sessions get {"cmd":"receipt","msg_id":...,"user":<reader>,
     *  "status":"read"} for that message. A job; req stays unanswered until done has
     *  run. Returns 0 (done will run), CHATD_EINVAL, CHATD_ESTATE (req not logged in),
     *  CHATD_ENOSYS, CHATD_EBUSY, CHATD_ENOMEM (done is not called then). */
    int (*read_mark)(struct chatd_request *req, const char *peer, int64_t msg_id,
                     chatd_read_done_fn done, void *arg);

    /* -- since 1.5: idempotency before a command's own checks (loop thread) -- */

    /** Find the message `sender` posted with `client_msg_id`, for a send the plugin
     *  refuses before posting it (no such recipient or group, a hook said no...): a
     *  repeat of a client_msg_id already used must get the first message's answer, not
     *  the refusal, whatever the repeat names. done runs once, with status 0 and repeat
     *  set (msg_id, seq, ts, online and flags the first post's), or CHATD_ENOENT when
     *  the sender has not used it (nothing committed; a post with it still committing
     *  is waited for, and gives CHATD_ENOENT if it is refused), or CHATD_EDB,
     *  CHATD_EDBLOST, CHATD_EBUSY, CHATD_ESHUTDOWN, CHATD_ENOMEM, CHATD_ECLOSED. Like
     *  post, the look-up for `req` (may be NULL) waits until the session's earlier
     *  pipelined requests have posted or been answered; the later ones post only once
     *  req is answered (so answer it from done: a later send with the same
     *  client_msg_id is then new if this one is refused). A committed
     *  message costs a job (one indexed read); a send that is posted never needs this:
     *  post finds repeats in its commit. Returns 0 (done will run), CHATD_EINVAL (a
     *  name or client_msg_id out of its rules), CHATD_ENOSYS without a database,
     *  CHATD_ENOMEM (done is not called then). done may run before post_find
     *  returns. */
    int (*post_find)(struct chatd_plugin *self, struct chatd_request *req, const char *sender,
                     const char *client_msg_id, chatd_post_done_fn done, void *arg);
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
    uint32_t abi_minor;     /**< the minor it needs: CHATD_PLUGIN_MIN_MINOR (1.0, 1.1: built) */
    uint32_t size;          /**< sizeof(struct chatd_plugin_descriptor) as built */
    uint32_t jansson_major; /**< JANSSON_MAJOR_VERSION the plugin was built with */
    const char *name;       /**< [a-z0-9_], 1 to 32 bytes; names the config section */
    const char *version;    /**< the plugin's own release, free text */
    const char *description;
    const struct chatd_option *options;       /**< NULL or ended by a NULL key */
    const struct chatd_migration *migrations; /**< NULL or ended by a NULL sql */
    chatd_init_fn init;
    chatd_shutdown_fn shutdown; /**< may be NULL */
    /* -- since 1.2 -- */
    /** CHATD_ABI_MINOR of the header the plugin was built with (abi_minor is the minor it
     *  needs, CHATD_PLUGIN_MIN_MINOR). */
    uint32_t built_minor;
    /** Services the plugin offers (service_provide), NULL-terminated; NULL for none. */
    const char *const *provides;
    /** Services the plugin needs, NULL-terminated; NULL for none. chatd refuses a config
     *  that enables the plugin without a provider of each (naming both), and starts
     *  providers first. */
    const char *const *requires;
    /** Called once the plugin is closed (after shutdown, or after its init failed) with
     *  the instance given to instance_set, when it gave one; may be NULL. */
    void (*destroy)(void *instance);
};

/** Define the plugin's descriptor. Give the remaining members as designated
 *  initialisers, e.g.
 *      CHATD_PLUGIN_DEFINE(.name = "ping", .version = "1.0.0",
 *                          .description = "answers ping", .init = ping_init);  */
#define CHATD_PLUGIN_DEFINE(...)                                                                   \
    CHATD_PLUGIN_EXPORT extern const struct chatd_plugin_descriptor chatd_plugin;                  \
    const struct chatd_plugin_descriptor chatd_plugin = {                                          \
        .abi_major = CHATD_ABI_MAJOR,                                                              \
        .abi_minor = CHATD_PLUGIN_MIN_MINOR,                                                       \
        .size = (uint32_t)sizeof(struct chatd_plugin_descriptor),                                  \
        .jansson_major = JANSSON_MAJOR_VERSION,                                                    \
        .built_minor = CHATD_ABI_MINOR,                                                            \
        __VA_ARGS__}

#ifdef __cplusplus
}
#endif

#endif /* CHATD_PLUGIN_H */
