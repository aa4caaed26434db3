/* cluster_suite.h - what the black-box cluster tests (test_cluster_blackbox*.c) share: a
 * cluster of real nodes (tests/support/cluster_nodes.h), clients that keep every push
 * they read, and a ledger that counts messages: acknowledged to their senders versus
 * received by each recipient.
 *
 * Written against docs/protocol.md and docs/architecture.md ("The cluster: decisions
 * and reasons"), not against the code. Across nodes a push is not queued before the
 * sender's reply (it travels through Redis or the database), so the tests wait for what
 * they expect, with generous deadlines, and rely only on ordering the contract gives:
 * on one connection, message pushes come in strictly increasing seq. So a marker
 * message, received, means every message with a smaller seq that this connection will
 * ever be sent has arrived. No timing is asserted except the lease bound.
 *
 * Each test runs in its own forked process (Check's fork mode) and starts its own
 * cluster; everything here is for that process's main thread. */
#ifndef CHATD_TEST_CLUSTER_SUITE_H
#define CHATD_TEST_CLUSTER_SUITE_H

#include "cluster_nodes.h"

#include <check.h>
#include <jansson.h>
#include <stddef.h>

/* [cluster] lease_ms for the tests: short, so a killed node's users go offline soon. */
#define CLUSTER_LEASE_MS 2000
/* The bound for a killed node's users to show offline elsewhere: the lease, plus
 * a margin generous enough for sanitizer builds on a busy machine. */
#define CLUSTER_OFFLINE_BOUND_MS (CLUSTER_LEASE_MS + 8000)
/* A deadline for anything eventual (a push from another node): never a timing check. */
#define CLUSTER_WAIT_MS 30000

/* ---- the cluster ---- */

/* Start a cluster of n nodes (node0 .. node<n-1>). */
void cluster_up(size_t n);
/* Stop every node (each must exit 0), Redis and the database. */
void cluster_down(void);
struct cluster_nodes *cluster(void);
/* The main() of a cluster suite: exits 77 (ctest's SKIP_RETURN_CODE) with a message
 * when redis-server (or, with_haproxy, haproxy) is not installed, else runs the suite. */
int cluster_suite_main(Suite *suite, int with_haproxy);

/* ---- clients ---- */

struct peer {
    struct test_client *c;
    char user[40];
    int port;           /* where it connected: a node's or the proxy's */
    json_t *pushes;     /* pushes other than messages, read and not yet taken */
    json_t *messages;   /* every private_chat_recv and group_chat_recv read, in order */
    long long last_seq; /* the highest seq of a message pushed on this connection */
    long long acked;    /* the highest seq this connection sent an ack for */
    int eof;            /* the server closed the connection */
};

/* A connection to node i, or to 127.0.0.1:port (e.g. HAProxy). */
struct peer *peer_on(size_t node);
struct peer *peer_at(int port);
void peer_close(struct peer *p);

/* Send json_pack(fmt, ...) with an "id" added; returns the id. */
long long peer_send(struct peer *p, const char *fmt, ...);
/* Read until the reply to `id`, keeping the pushes read meanwhile. The caller frees it. */
json_t *peer_reply(struct peer *p, long long id);
/* peer_send and peer_reply; the reply's result must be `result` (any when NULL). */
json_t *peer_call(struct peer *p, const char *result, const char *fmt, ...);
/* Read whatever arrives within timeout_ms (0: only what is already there). */
void peer_drain(struct peer *p, int timeout_ms);
/* Read every line until the server closes the connection (a killed node's). */
void peer_read_to_eof(struct peer *p);

/* Wait for a push of `cmd` whose string `key` is `value`, take it out of p->pushes and
 * return it (the caller frees); fails the test after CLUSTER_WAIT_MS. */
json_t *peer_wait_push(struct peer *p, const char *cmd, const char *key, const char *value);
/* A presence push of `user` with this status must reach p (fails the test otherwise). */
void expect_presence(struct peer *p, const char *user, const char *status);
/* Like peer_wait_push, with a deadline; NULL when nothing came in time. */
json_t *peer_wait_push_until(struct peer *p, const char *cmd, const char *key, const char *value,
                             long long deadline_ms);
/* Whether p->pushes holds a push of `cmd` whose `key` is `value` (after a drain). */
int peer_has_push(struct peer *p, const char *cmd, const char *key, const char *value);
/* Wait until a message with this msg_id was pushed to p; returns it (borrowed). */
const json_t *peer_wait_message(struct peer *p, const char *msg_id);

/* ---- users ---- */

#define CLUSTER_PASSWD "cluster pass"

/* Register each user of the NULL-terminated list (through node 0). */
void register_users(const char *const *users);
/* Make every two users of the list friends (through node 0). */
void befriend_all(const char *const *users);
/* A connection to node i (or port), logged in as user: version 1, or with "ack":true
 * and device (since < 0: without "since"). */
struct peer *login_on(size_t node, const char *user);
struct peer *login_device_at(int port, const char *user, const char *device, long long since);
/* The "online" flag of `who` in p's friends list, or in group's members list; -1 when
 * not listed. */
int friend_online(struct peer *p, const char *who);
int member_online(struct peer *p, const char *group, const char *who);
/* Poll friend_online until it is `online`; fails the test after CLUSTER_WAIT_MS. */
void wait_friend_online(struct peer *p, const char *who, int online);

/* ---- counting ---- */

/* The ledger: for each recipient, the msg_ids acknowledged to senders (an object of
 * user -> object of msg_id -> text). */
json_t *ledger_new(void);
/* A reply of private_chat or group_chat to `to` (NULL-terminated recipients): when it
 * accepted the message (success, offline), count its msg_id for each of them. Returns
 * whether it did. */
int ledger_count(json_t *ledger, const json_t *reply, const char *const *to, const char *text);
/* Send a private message from p to `to` and wait for its reply (success or offline,
 * else the test fails); counted. Returns the msg_id (valid while the ledger lives). */
const char *send_counted(json_t *ledger, struct peer *p, const char *to, const char *text);
/* The user's acknowledged messages were each received exactly once, over the given
 * connections taken together, and nothing else was (every received message is one
 * the ledger counts for them). Wait for them first (wait_all_received). */
void assert_exactly_once(json_t *ledger, const char *user, struct peer *const *got, size_t n);
/* Wait until every message the ledger counts for p->user has reached p or one of the
 * `earlier` connections (n of them; may be 0). */
void wait_all_received(json_t *ledger, struct peer *p, struct peer *const *earlier, size_t n);
/* The text of message k of a sender in the tests: "<from>#<k>" (out: 64 bytes). */
const char *numbered(char *out, const char *from, int k);
/* Messages from `from` with numbered texts reached the connections (taken in this order)
 * in the order they were numbered. */
void assert_sender_order(struct peer *const *got, size_t n, const char *from);
/* Wait until p has everything: wait_all_received, then a marker from `sender` (counted)
 * read on p. */
void settle(json_t *ledger, struct peer *sender, struct peer *p, struct peer *const *earlier,
            size_t n);
/* The whole check for recipient p: settle, then assert_exactly_once over `earlier` and
 * p. */
void settle_and_count(json_t *ledger, struct peer *sender, struct peer *p,
                      struct peer *const *earlier, size_t n);

#endif
