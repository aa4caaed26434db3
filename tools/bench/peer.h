/* peer.h - one session of the bench: a connection logged in as one user, and what it
 * sends and receives in a message workload. */
#ifndef CHATD_BENCH_PEER_H
#define CHATD_BENCH_PEER_H

#include "conn.h"
#include "resp.h"
#include "seen.h"

#include <stdint.h>

struct traffic;

struct peer {
    struct conn c;
    int user; /* logged in as PREFIX<user> */
    struct traffic *t;
    /* Sending (traffic.c): slot is this peer's sender number, -1 if it does not send. */
    int slot;
    char *req; /* the request up to its text (the target's head) */
    size_t req_len;
    uint64_t next_seq;
    unsigned inflight;
    int64_t *sent_ns; /* send times of the requests in flight, oldest at sent_head */
    unsigned sent_head;
    /* Receiving: what arrived from each sender slot. */
    struct seen *seen;
    struct resp_reader resp; /* --target redis: where the reader is in a RESP3 value */
};

/* Set up peers[0..n-1] as closed sessions of users first, first+1, ... */
void peers_init(struct peer *peers, int n, int first_user);
/* Close and free everything the peers hold (not the array). */
void peers_free(struct peer *peers, int n);

#endif
