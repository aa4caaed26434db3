/* server_suite.h - what the server test suites (test_server_*.c) share: the real chatd
 * binary on a free port with a config of its own, and replies checked line by line.
 *
 * Each test runs in its own forked process (Check's fork mode) and starts its own server;
 * everything here is for that process's main thread. */
#ifndef CHATD_TEST_SERVER_SUITE_H
#define CHATD_TEST_SERVER_SUITE_H

#include "chatd_proc.h"
#include "check_client.h"

#include <jansson.h>

/* The server under test. */
extern struct chatd_proc srv;

/* Start chatd with ping only, and these lines added to [server] (may be NULL). */
void start_with(const char *server_conf);
void start(void);
/* Start chatd with the pusher fixture plugin too, which pushes to any session on
 * request. */
void start_with_pusher(const char *server_conf);
/* start_with_pusher with more options (a TLS listener, --set values): opts' plugins are
 * set here. */
void start_with_pusher_opts(struct chatd_proc_options *opts);
/* Start chatd with the rules fixture plugin too, and these lines (more sections) at the
 * end of the config (may be NULL). */
void start_with_rules(const char *extra_conf);
/* Stop the server with SIGTERM: it must exit 0 (under sanitizers, also leak-free). */
void stop(void);

struct test_client *connect_client(void);

/* A self-signed certificate for "server" in a new folder, and the --set lines that give
 * it to chatd; server_tls_remove removes the folder. */
struct server_tls {
    char dir[PATH_MAX], cert[PATH_MAX + 32], key[PATH_MAX + 32];
    char cert_set[PATH_MAX + 64], key_set[PATH_MAX + 64];
};
void server_tls_make(struct server_tls *f);
void server_tls_remove(const struct server_tls *f);

/* msg["id"] is the integer want. */
void assert_int_id(const json_t *msg, json_int_t want);
/* Read one reply and check its cmd and result; the caller may check more, then frees. */
json_t *expect(struct test_client *c, const char *cmd, const char *result);
/* Read one line and check only its cmd (pushes carry no result). */
json_t *expect_cmd(struct test_client *c, const char *cmd);
/* The next line is {"cmd":"error","result":result,...}. */
void expect_error(struct test_client *c, const char *result);
/* The reply to {"cmd":"ping","id":id} comes back with that id. */
void assert_ping_works(struct test_client *c, int id);
/* After an error that ends the connection, nothing more comes and the stream ends. */
void assert_closed(struct test_client *c);

/* Send `n` pings at once (ids first..first+n-1); expect_pongs reads their replies, which
 * must come in that order. */
void send_pings(struct test_client *c, int first, int n);
void expect_pongs(struct test_client *c, int first, int n);
/* c's session id (whoami). */
json_int_t session_of(struct test_client *c);
/* The pusher fixture pushes `count` messages of `size` bytes to session `to`; from's
 * request is answered once all are queued. */
void flood(struct test_client *from, json_int_t to, int count, int size);

#endif
