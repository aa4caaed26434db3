/* setup.h - the steps before a measured run: register users (pipelined over a few
 * connections), then connect and log in sessions with a limit on how many are being
 * set up at once. Each step runs the loop until it is done, and exits with a message
 * if the server refuses something. */
#ifndef CHATD_BENCH_SETUP_H
#define CHATD_BENCH_SETUP_H

#include "bench.h"
#include "hist.h"
#include "peer.h"

struct setup_figures {
    long long registered;    /* register_reply success */
    long long name_taken;    /* register_reply failure: the name existed (reused) */
    double register_s;       /* wall time of the registration */
    long long connects;      /* sessions connected */
    long long logins;        /* sessions logged in */
    double connect_s;        /* wall time from the first connect to the last established */
    double login_s;          /* wall time from the first login sent to the last login_reply */
    struct hist connect_lat; /* connect() to established */
    struct hist login_lat;   /* login sent to login_reply */
};

/* Register users first .. first+n-1 with the bench's password. */
void setup_register(struct bench *b, int first, int n, struct setup_figures *f);

/* A request each peer sends once, and how its answer is recognised: the protocol's
 * part of setting up sessions (chatd's login, Redis's HELLO and SUBSCRIBE, IRC's
 * registration) and of steps after it (joining a group). */
struct setup_step {
    const char *what; /* for the progress lines, e.g. "logged in" */
    /* Queue the request on p's connection (conn_reserve, conn_commit). */
    void (*request)(struct bench *b, struct peer *p);
    /* One line while the answer is awaited: 1 when it is the answer, 0 when not (yet);
     * exits with a message when the server refuses. */
    int (*answer)(struct peer *p, char *line, size_t len);
};

/* Connect peers[0..n-1], then send each its step's request (at most --concurrency
 * connects, then requests, outstanding at once); once a peer's answer arrives, its
 * connection's callbacks become `after` (lines that follow in the same read, such as
 * stored messages, already go there). */
void setup_sessions(struct bench *b, struct peer *peers, int n, const struct setup_step *step,
                    const struct conn_ops *after, struct setup_figures *f);

/* chatd's login as the peer's user. */
extern const struct setup_step setup_chatd_login;

/* setup_sessions with chatd's login. */
void setup_login(struct bench *b, struct peer *peers, int n, const struct conn_ops *after,
                 struct setup_figures *f);

/* Send the step's request on each of peers[0..n-1] (connected and set up), all at once,
 * and wait for every answer; other lines meanwhile are ignored. At the end the peers'
 * callbacks become `after`. */
void setup_each(struct bench *b, struct peer *peers, int n, const struct setup_step *step,
                const struct conn_ops *after);

/* The setup figures as "setup": {...} in the report. */
void report_setup(const struct setup_figures *f);

#endif
