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

/* Connect peers[0..n-1], then log each in as its user (at most --concurrency connects,
 * then logins, outstanding at once); once a peer's login_reply
 * (success) arrives, its connection's callbacks become `after` (lines that follow in
 * the same read, such as stored messages, already go there). */
void setup_login(struct bench *b, struct peer *peers, int n, const struct conn_ops *after,
                 struct setup_figures *f);

/* Run one request on each of peers[0..n-1] (a line the caller formats per peer with
 * make(), at most 511 bytes), all at once, and wait for every reply whose cmd is
 * `reply_cmd`. check() sees each reply line and returns 0 if it is acceptable. Other
 * lines meanwhile are ignored; at the end the peers' callbacks become `after`. */
void setup_each(struct bench *b, struct peer *peers, int n, const char *reply_cmd,
                size_t (*make)(struct bench *b, struct peer *p, char *out),
                int (*check)(struct peer *p, const char *line), const struct conn_ops *after);

/* The setup figures as "setup": {...} in the report. */
void report_setup(const struct setup_figures *f);

#endif
