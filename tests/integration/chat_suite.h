/* chat_suite.h - what the chat test suites (test_chat_*.c) share: a chatd with the chat
 * commands on a fresh database of the test MariaDB ($CHATD_TEST_DB_SOCKET), requests
 * checked against the wire contract, and users that are logged in and settled.
 *
 * Ordering without timing: a push caused by a request is queued to the target's sessions
 * before the requester gets its reply, and a live push to a user whose stored messages
 * are being delivered is held until they are out. So a private message from a helper
 * user ("postman", nobody's friend, in no group) is a marker: once it arrives, everything
 * pushed to that user before it, stored messages included, has arrived too. A ping is
 * the marker for a connection whose user is not being delivered stored messages.
 *
 * Each test runs in its own forked process (Check's fork mode) and starts its own server;
 * everything here is for that process's main thread. */
#ifndef CHATD_TEST_CHAT_SUITE_H
#define CHATD_TEST_CHAT_SUITE_H

#include "check_client.h"

#include <chatd/plugin.h>
#include <jansson.h>
#include <stddef.h>

#define PASSWD "s3cret pass"

/* ---- the server ---- */

/* Start chatd with the sample config, config/chatd.conf, as scripts/run does: only the
 * database (the test's own, new), a cheap password hash and more_sets (--set values,
 * NULL-terminated; may be NULL) come from the command line. */
void start_chat_with(const char *const *more_sets);
void start_chat(void);
/* start_chat with one option of the chat commands' plugin (see chat_plugin.h). */
void start_chat_option(const char *option, const char *value);
/* start_chat at the default password cost (Argon2id as shipped, not the tests' cheap
 * one), plus more_sets (may be NULL). The test support's limits are far above a test's
 * flood, so what a flood test sees is the job queues, not [limits]. */
void start_chat_for_flood(const char *const *more_sets);
/* Stop chatd (it must exit 0) and start it again, without extra --set values, on the
 * same database. */
void restart_chat(void);
/* Kill chatd with SIGKILL (no clean-up of any kind) and start it again, as
 * restart_chat. */
void crash_and_restart_chat(void);
/* Stop chatd with SIGTERM (it must exit 0; under sanitizers, also leak-free) and drop
 * the test's database. */
void stop_chat(void);

struct test_client *connect_client(void);
/* A connection that may be refused: NULL when nothing could connect (unlike
 * connect_client, this does not fail the test). */
struct test_client *try_connect_client(void);
/* chatd's log file (its stderr: every line is there before the reply it precedes). */
const char *chat_log_path(void);
/* Run one statement that returns no rows (prepared, params bound) on the running
 * server's database, on a connection of the test's own. */
void exec_chat_db(const char *sql, const struct chatd_value *params, size_t nparams);

/* start_chat_with, and a TLS listener too, with a certificate made for this test (see
 * tls_files.h) whose paths are given back (cap bytes each; may be NULL). */
void start_chat_tls(const char *const *more_sets, char *cert, char *key, size_t cap);
/* A TLS connection to it, checking the certificate against the CA file. */
struct test_client *connect_tls_client(const char *ca_file);
/* The running server, for signals, its log and its ports. */
struct chatd_proc *chat_proc(void);
/* start_chat_with, with the [web] listener on a free port (chat_proc()->web_port), its
 * root `web_root`; with `tls`, the web listener speaks TLS on a fresh certificate, whose
 * path goes to cert (cap bytes; may be NULL). */
void start_chat_web(const char *const *more_sets, const char *web_root, int tls, char *cert,
                    size_t cap);

/* Run one query (prepared, params bound) on the running server's database, on a
 * connection of the test's own, and return every row; free them with free_chat_rows. */
struct chatd_rows *query_chat_db(const char *sql, const struct chatd_value *params, size_t nparams);
void free_chat_rows(struct chatd_rows *rows);
/* A connection of the test's own to the running server's database, as the server's
 * user, for statements that span a transaction (db.h's functions); close_chat_db. */
struct chatd_db *open_chat_db(void);
void close_chat_db(struct chatd_db *db);

/* ---- reading and checking messages ---- */

/* The "offline" flag of a pushed message: true when it was stored, else absent or false. */
void assert_offline_flag(const json_t *msg, int offline);
/* msg is a private_chat_recv or group_chat_recv push (no id, a recent ts, a msg_id). */
void check_private(const json_t *msg, const char *from, const char *text, int offline);
void check_group(const json_t *msg, const char *group, const char *from, const char *text,
                 int offline);
/* The next line must be a push (no id) with this cmd. The caller frees it. */
json_t *read_push(struct test_client *c, const char *cmd);
void expect_private(struct test_client *c, const char *from, const char *text, int offline);
void expect_group(struct test_client *c, const char *group, const char *from, const char *text,
                  int offline);
void expect_presence(struct test_client *c, const char *user, const char *status);
void expect_friend_added(struct test_client *c, const char *from);
/* msg[key] is an array holding exactly the n names given, in any order. */
void assert_names(const json_t *msg, const char *key, size_t n, ...);

/* ---- requests ---- */

/* Send the request json_pack(fmt, ...) makes, with an "id" added, and read the next line:
 * it must be {"cmd":"<cmd>_reply","result":<result>,"id":<the same id>}. Returns the
 * reply; the caller frees it. Ids alternate between integers and strings. */
json_t *call(struct test_client *c, const char *result, const char *fmt, ...);
/* call, without the reply. */
void expect(struct test_client *c, const char *result, const char *fmt, ...);
/* expect with the request as JSON text (an object without "id"), for tables. */
void expect_json(struct test_client *c, const char *result, const char *request);
/* A failure whose reply must say why. */
void expect_failure_with_reason(struct test_client *c, const char *fmt, ...);

void do_register(struct test_client *c, const char *user, const char *passwd, const char *result);
json_t *do_login(struct test_client *c, const char *user, const char *passwd, const char *result);
void do_logout(struct test_client *c);
void send_private(struct test_client *c, const char *to, const char *text, const char *result);
void send_group(struct test_client *c, const char *group, const char *text, const char *result);
void group_cmd(struct test_client *c, const char *cmd, const char *group, const char *result);
void add_friend(struct test_client *c, const char *name, const char *result);
/* Nothing is waiting for this connection: the reply to a ping is the next line. Valid
 * for pushes queued before the last reply someone else got (see the top comment). */
void expect_quiet(struct test_client *c);

/* ---- users and markers ---- */

/* Send a marker to `user` (online on the n sessions cs) and read each session up to it.
 * Every session must have received the same messages before it. Returns them (from the
 * first session) as an array the caller frees. settle is settle_all of one session. */
json_t *settle_all(struct test_client *const *cs, size_t n, const char *user);
json_t *settle(struct test_client *c, const char *user);
/* got (which this frees) is empty. */
void assert_nothing_pending(json_t *got, const char *user);
/* Log in (success) and return what was delivered after the reply (see settle). */
json_t *login_settled(struct test_client *c, const char *user);
/* A new connection, logged in as `user`, which is registered first if `reg`. Nothing
 * may be delivered after the login. new_user registers. */
struct test_client *session_as(const char *user, int reg);
struct test_client *new_user(const char *user);
/* Register `user` on a connection of its own, closed again. */
void register_only(const char *user);
/* Log `user`, online on `first`, in on a new connection too; nothing may be delivered
 * to either session after the login. Returns the new connection. */
struct test_client *second_session(struct test_client *first, const char *user);
/* `creator` creates `group` (success) and `member` joins it (success). */
void make_group(const char *group, struct test_client *creator, struct test_client *member);

/* `arr` holds `n` private (group) messages with these texts, in this order. */
void assert_privates(const json_t *arr, const char *from, const char *const *texts, size_t n,
                     int offline);
void assert_groups(const json_t *arr, const char *group, const char *from, const char *const *texts,
                   size_t n, int offline);
/* No two of these messages share a msg_id. */
void assert_distinct_msg_ids(const json_t *arr);

/* ---- numbered texts, for backlogs ---- */

#define BIG_BACKLOG 600 /* more than one drain batch */

/* Text "seq NNNN" (i) padded to `len` bytes, NUL included. */
void numbered_text(char *out, size_t len, int i);
/* got holds `want` stored messages (offline) of this cmd, numbered 1 to want in order. */
void check_numbered(const json_t *got, const char *cmd, size_t want);

#endif
