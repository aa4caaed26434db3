/* chatd/testkit.h - the chatd plugin test kit: Check tests that load a plugin through
 * chatd's own loader and talk to it as clients would, in one process.
 *
 * What runs is chatd's real code, built into this library: the loader (the ELF check of
 * the descriptor, the ABI version gate, option validation), schema migrations, the
 * request path (framing, generic errors, the login rule, field tables, the one reply,
 * the `internal` answer for a forgotten request), sessions and users, timers, events,
 * and the worker pool with its MariaDB connections. Only the network is missing: each
 * session is one end of a socket pair whose other end the kit reads, so every reply and
 * push is recorded as the JSON a client would receive.
 *
 *     struct chatd_testkit *kit = chatd_testkit_new("build/hello.so");
 *     chatd_testkit_option(kit, "greeting", "hi");
 *     ck_assert_msg(chatd_testkit_start(kit) == 0, "%s", chatd_testkit_error(kit));
 *     struct chatd_testkit_session *ann = chatd_testkit_login(kit, "ann");
 *     json_t *reply = chatd_testkit_request(ann, "{\"cmd\":\"hello\",\"name\":\"%s\"}", "Bob");
 *     chatd_testkit_assert_reply(reply, "hello_reply", "success");
 *     chatd_testkit_free(kit);
 *
 * Database. Give the kit a MariaDB with CHATD_TESTKIT_DB_SOCKET (a unix socket; the
 * user is CHATD_TESTKIT_DB_USER, default the user running it, with CHATD_TESTKIT_DB_PASSWORD,
 * default empty). Each kit then creates a database of its own, applies the plugin's migrations to
 * it, runs database jobs in it, and drops it when freed. Without a socket (CHATD_TEST_DB_SOCKET,
 * which chatd's own test script sets, is used too) the kit runs as chatd does with `[database]
 * enable = no`: CPU jobs run, database jobs are refused with CHATD_ENOSYS, and a plugin with
 * migrations does not start.
 *
 * Contract breaches. The kit fails the running Check test (ck_abort_msg) the moment it
 * sees the plugin break the ABI's rules: a second reply to one request, or a request
 * left without a reply. chatd_testkit_strict(kit, 0) records them instead.
 *
 * Lifetimes. Every json_t the kit returns is owned by the kit and stays valid until
 * chatd_testkit_free; never decref it. Sessions are owned by the kit too. Everything
 * runs on the calling thread; a kit is not thread-safe. Check's fork mode (its
 * default) gives each test a process of its own, so one crashing plugin fails one test.
 */
#ifndef CHATD_TESTKIT_H
#define CHATD_TESTKIT_H

#include <chatd/plugin.h>
#include <check.h>
#include <jansson.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define CHATD_TESTKIT_API __attribute__((visibility("default")))
#else
#define CHATD_TESTKIT_API
#endif

/** One plugin under test, with the host around it. */
struct chatd_testkit;
/** One client connection to that host. */
struct chatd_testkit_session;

/* ---------------------------------------------------------------------------------
 * Loading
 * ------------------------------------------------------------------------------- */

/** A kit for the plugin file `path`, which must be named NAME.so where NAME is the
 *  plugin's descriptor name, as chatd loads DIR/NAME.so. Nothing is loaded yet. Never
 *  NULL (out of memory aborts the test). */
CHATD_TESTKIT_API struct chatd_testkit *chatd_testkit_new(const char *path);

/** Set the plugin option `key` to `value`, written as in the config file's
 *  [plugin.NAME] section. Before chatd_testkit_start only. The value is checked at
 *  start, against the plugin's option table, as chatd checks it. 0, or -1 when the kit
 *  has already started. */
CHATD_TESTKIT_API int chatd_testkit_option(struct chatd_testkit *kit, const char *key,
                                           const char *value);

/** Set any config key, "section.key=value" as with `chatd --set`, for example
 *  "plugins.authenticator=NAME" to make the plugin the authenticator, or
 *  "server.max_output_bytes=65536". Before chatd_testkit_start only; checked at start.
 *  The kit's sessions all come from one address, so it switches every [limits] key off;
 *  set one here to test a plugin under it. */
CHATD_TESTKIT_API int chatd_testkit_set(struct chatd_testkit *kit, const char *assignment);

/** Load the plugin as chatd does at start: the ELF and ABI checks, its options, its
 *  migrations (with a database), then its init. 0, or -1 with chatd's message in
 *  chatd_testkit_error(). */
CHATD_TESTKIT_API int chatd_testkit_start(struct chatd_testkit *kit);

/** The reason the last call failed, as chatd would print it, or "". */
CHATD_TESTKIT_API const char *chatd_testkit_error(const struct chatd_testkit *kit);

/** Non-zero when the kit has a MariaDB (see the top of this file). Known after new. */
CHATD_TESTKIT_API int chatd_testkit_has_database(const struct chatd_testkit *kit);

/** Stop the plugin as chatd stops: sessions close (LOGOUT events), jobs finish, the
 *  plugin's timers are cancelled, its shutdown runs, and the object is closed. Then the
 *  kit's database is dropped and everything the kit returned is freed. NULL is fine. */
CHATD_TESTKIT_API void chatd_testkit_free(struct chatd_testkit *kit);

/* ---------------------------------------------------------------------------------
 * Sessions
 * ------------------------------------------------------------------------------- */

/** A new session, not logged in. NULL (with the reason in chatd_testkit_error) when the
 *  kit has not started. */
CHATD_TESTKIT_API struct chatd_testkit_session *chatd_testkit_connect(struct chatd_testkit *kit);

/** A new session logged in as `user`, as if the authenticator had logged it in: the
 *  plugin's LOGIN subscribers run before this returns. */
CHATD_TESTKIT_API struct chatd_testkit_session *chatd_testkit_login(struct chatd_testkit *kit,
                                                                    const char *user);

/** Log the session out (LOGOUT events run); it stays connected. */
CHATD_TESTKIT_API void chatd_testkit_logout(struct chatd_testkit_session *s);

/** Close the client's end, as a client that goes away; the host notices as it would
 *  over TCP (LOGOUT events follow). Replies and pushes already recorded stay readable. */
CHATD_TESTKIT_API void chatd_testkit_disconnect(struct chatd_testkit_session *s);

/** The session's id, as plugins see it (request_session, push_session). */
CHATD_TESTKIT_API chatd_session_id chatd_testkit_session_id(const struct chatd_testkit_session *s);

/* ---------------------------------------------------------------------------------
 * Requests, replies and pushes
 * ------------------------------------------------------------------------------- */

/** Send one request, a JSON text made from the printf-style `fmt` (write %% for a
 *  literal %), and wait until it is over: its reply has arrived and every job
 *  submitted for it has run its done callback. Timers and other jobs run meanwhile.
 *  Returns the reply (`<cmd>_reply`, or the generic `error`), or NULL when none came
 *  within the kit's timeout (then chatd_testkit_error says why). Pushes that arrive
 *  meanwhile are kept for chatd_testkit_push. */
CHATD_TESTKIT_API json_t *chatd_testkit_request(struct chatd_testkit_session *s, const char *fmt,
                                                ...) CHATD_PRINTF(2, 3);

/** The same with raw bytes, sent as they are (no formatting): for malformed frames. */
CHATD_TESTKIT_API json_t *chatd_testkit_request_raw(struct chatd_testkit_session *s,
                                                    const char *bytes, size_t len);

/** The session's next push (any message that is not a reply) not taken yet, in arrival
 *  order, waiting up to the kit's timeout for one. NULL when none came. */
CHATD_TESTKIT_API json_t *chatd_testkit_push(struct chatd_testkit_session *s);

/** How many pushes the session has received and not taken yet, without waiting. */
CHATD_TESTKIT_API size_t chatd_testkit_pending_pushes(const struct chatd_testkit_session *s);

/** Run the host's loop for `ms` milliseconds: timers fire, jobs finish, pushes arrive. */
CHATD_TESTKIT_API void chatd_testkit_run(struct chatd_testkit *kit, unsigned ms);

/** How long request and push wait; 5000 ms unless changed. */
CHATD_TESTKIT_API void chatd_testkit_set_timeout(struct chatd_testkit *kit, unsigned ms);

/** The `result` word of a reply, or NULL. */
CHATD_TESTKIT_API const char *chatd_testkit_result(const json_t *reply);

/** A string member of a message, or NULL. */
CHATD_TESTKIT_API const char *chatd_testkit_string(const json_t *msg, const char *key);

/** Fail the test unless `msg` is non-NULL with this `cmd` and (when `result` is not
 *  NULL) this `result`; the message names both, and shows the whole reply. */
#define chatd_testkit_assert_reply(msg, cmd, result)                                               \
    chatd_testkit_check_reply_((msg), (cmd), (result), __FILE__, __LINE__)
CHATD_TESTKIT_API void chatd_testkit_check_reply_(const json_t *msg, const char *cmd,
                                                  const char *result, const char *file, int line);

/** Run the host's loop until the plugin has no job whose done callback has not run, and
 *  every reply and push the host has written so far has reached the kit's sessions:
 *  after it, a push that has not arrived is not on its way from anything already
 *  started (timers aside). For tests that check that something was NOT sent. 0, or -1
 *  when that did not happen within the kit's timeout. */
CHATD_TESTKIT_API int chatd_testkit_settle(struct chatd_testkit *kit);

/* ---------------------------------------------------------------------------------
 * Hooks (ABI 1.2)
 * ------------------------------------------------------------------------------- */

/** Run the hook point `hook` (CHATD_HOOK_MESSAGE_DELIVER, CHATD_HOOK_MESSAGE_ACCEPTED, or
 *  one of the plugin's own) with a payload made from the printf-style `fmt` (a JSON
 *  object; %% for a literal %), as the plugin that owns the point would: through the
 *  host's hook_run, in priority order, every hook the plugin added for it. Waits until
 *  the run is over (a hook that deferred has resumed; timers and jobs run meanwhile),
 *  so that a test can stand in for the chat plugin:
 *
 *      json_t *out = chatd_testkit_run_hook(kit, CHATD_HOOK_MESSAGE_DELIVER,
 *          "{\"kind\":\"private\",\"user_from\":\"ann\",\"user_to\":\"bob\",\"text\":\"%s\"}",
 *          "darn");
 *      ck_assert(!chatd_testkit_hook_refused(out));
 *      ck_assert_str_eq(chatd_testkit_string(json_object_get(out, "payload"), "text"), "****");
 *
 *  Returns the outcome as {"refused":false,"payload":{..}}, or
 *  {"refused":true,"result":"forbidden","reason":".."|null,"payload":{..}} when a hook
 *  refused; `payload` is what the hooks made of the payload. For an observe-only point
 *  (message.accepted) the run is over when every hook has returned: what they started
 *  (jobs, then pushes) goes on afterwards, and chatd_testkit_settle waits for it. NULL,
 *  with the reason in chatd_testkit_error, when the text is not a JSON object, the kit
 *  has not started, the host has no hooks (before ABI 1.2), or the run did not end
 *  within the kit's timeout. Owned by the kit, like every json_t it returns. */
CHATD_TESTKIT_API json_t *chatd_testkit_run_hook(struct chatd_testkit *kit, const char *hook,
                                                 const char *fmt, ...) CHATD_PRINTF(3, 4);

/** Non-zero when `outcome`, from chatd_testkit_run_hook, says a hook refused. */
CHATD_TESTKIT_API int chatd_testkit_hook_refused(const json_t *outcome);

/* ---------------------------------------------------------------------------------
 * Contract breaches
 * ------------------------------------------------------------------------------- */

/** With `on` (the default), a breach fails the running test at once; with 0 it is only
 *  recorded. */
CHATD_TESTKIT_API void chatd_testkit_strict(struct chatd_testkit *kit, int on);
/** How many breaches were recorded, and the text of breach `i`. */
CHATD_TESTKIT_API size_t chatd_testkit_violations(const struct chatd_testkit *kit);
CHATD_TESTKIT_API const char *chatd_testkit_violation(const struct chatd_testkit *kit, size_t i);

/* ---------------------------------------------------------------------------------
 * Conformance
 * ------------------------------------------------------------------------------- */

/** A Check suite of the checks every plugin should pass, for the plugin file `path`:
 *  - it exports exactly one dynamic symbol, `chatd_plugin`;
 *  - chatd's loader accepts it, and its init and shutdown run cleanly (under
 *    AddressSanitizer a leak fails the test);
 *  - for every command it registers: a request missing its required fields, and one
 *    with each declared field of the wrong type (or a string too long), is answered
 *    `<cmd>_reply` / `bad_request`; a request filled with plausible values gets exactly
 *    one reply; a command that needs login answers `not_logged_in` before login;
 *  - no request is answered twice or left unanswered, and nothing crashes.
 *  `settings` (NULL, or an array ended by NULL) are chatd_testkit_set assignments
 *  applied before each start, e.g. "plugins.authenticator=chat" or
 *  "plugin.NAME.key=value". The path and settings must stay valid until the suite has
 *  run. */
CHATD_TESTKIT_API Suite *chatd_testkit_conformance_suite(const char *path,
                                                         const char *const *settings);

/** Run suites (Check's fork mode, normal output) and return EXIT_SUCCESS when all
 *  passed, for a test's main(): return chatd_testkit_run_suites(s1, s2, NULL); */
CHATD_TESTKIT_API int chatd_testkit_run_suites(Suite *first, ...);

#ifdef __cplusplus
}
#endif

#endif /* CHATD_TESTKIT_H */
