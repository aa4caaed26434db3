/* request.h - one client request from dispatch to its single reply. */
#ifndef CHATD_HOST_REQUEST_H
#define CHATD_HOST_REQUEST_H

#include "server.h"

#include <stdatomic.h>
#include <time.h>

/* The definition of the ABI's opaque request handle. It lives apart from the session,
 * so a client that disconnects while its request is in a job leaves nothing dangling:
 * the reply finds no session and is dropped. */
struct chatd_request {
    struct server *server;
    struct command *command;
    chatd_session_id session;
    json_t *body;           /* owned */
    json_t *id;             /* inside body, or NULL */
    char *user;             /* the session's user when the request arrived, or NULL */
    struct rate_key source; /* the session's address, and as text (for logs) */
    char peer[64];
    unsigned holds;          /* plugin callbacks running with it, plus pending jobs */
    struct timespec arrived; /* for the latency histogram */
    /* The user this request bound its session to with session_login (NULL: none), and
     * the stream's number for that login: the reply starts the session's timeline. */
    char *login_user;
    uint64_t login_generation;
    unsigned replied : 1;
    /* A password login charged its name's failed_login_per_name bucket (auth_attempt):
     * logging the session in gives the token back, a failure keeps it. */
    unsigned auth_charged : 1;
    /* Set on the loop thread when the session closes, read by the worker that takes a
     * job of this request: a job whose client has gone is not run. */
    atomic_bool gone;
};

struct chatd_request *request_new(struct session *s, struct command *cmd, json_t *body, json_t *id);
/* Its session has closed (loop thread): no answer can reach the client any more. */
void request_mark_gone(struct chatd_request *req);
/* Whether it has (any thread). */
int request_gone(struct chatd_request *req);
/* Keep the request alive across a callback or a job. */
void request_hold(struct chatd_request *req);
/* Drop a hold. At the last one, an unanswered request is answered `internal` and logged
 * as a plugin bug; then the request is freed and its session reads on. */
void request_release(struct chatd_request *req);
/* Answer with `<cmd>_reply`. Takes `fields`. */
int request_reply(struct chatd_request *req, const char *result, json_t *fields);
/* The login this request made (session_login) is answered: with success, delivery sends
 * the user's stored messages next (after the reply, already queued); otherwise what it
 * held goes out. Nothing when the request made no login. */
void request_login_answered(struct chatd_request *req, int success);
/* Take a request whose command has no reply when it is accepted (the host's `ack`). */
void request_accept_silently(struct chatd_request *req);
/* Answer with a reason, for host-side refusals (bad_request, not_logged_in...). */
void request_refuse(struct chatd_request *req, const char *result, const char *reason);

#endif
