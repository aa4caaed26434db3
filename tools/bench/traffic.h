/* traffic.h - the message engine that private, group and offline share: senders keep W
 * requests in flight for T seconds, every text carries its sender, number and send time,
 * and receivers count what arrives, once, twice or never.
 *
 * Per sender the requests' send times wait in a ring of W entries (replies come in
 * request order), so a reply's latency costs no allocation either. */
#ifndef CHATD_BENCH_TRAFFIC_H
#define CHATD_BENCH_TRAFFIC_H

#include "bench.h"
#include "hist.h"
#include "peer.h"
#include "report.h"

struct traffic {
    struct bench *b;
    const struct target *target; /* NULL: --target's (set by traffic_init) */
    struct peer *peers;
    int n;
    int fanout;            /* deliveries each accepted request should make */
    const char *reply_cmd; /* chatd's, e.g. "private_chat_reply" */
    const char *recv_cmd;  /* chatd's, e.g. "private_chat_recv" */
    const char *ok_word;   /* chatd's result that means accepted: "success" or "offline" */
    int nslots;            /* senders a receiver keeps track of */
    /* The receiver's slot for messages from user `from`, or -1 if none should come. */
    int (*slot_of)(const struct traffic *t, const struct peer *receiver, int from);

    int running;   /* senders send: at once after each reply, or (--rate) when paced */
    int in_window; /* the measured window is open */
    uint64_t sent, replies, accepted, refused;
    uint64_t held_back; /* --rate: messages due that found every sender at its cap */
    int next_sender;    /* --rate: where the pacer looks for a sender first */
    uint64_t replies_window, accepted_window;
    uint64_t delivered, delivered_window, duplicated, unexpected;
    struct hist delivery_lat; /* send to arrival, deliveries in the window */
    struct hist reply_lat;    /* send to reply, replies in the window */
    struct cpu_window cpu;
    int64_t start_ns;
    uint64_t id_base;  /* --client-ids: ids are "<id_base>-<seq>", new in every run */
    char refusal[160]; /* the first reply that was not ok_word */
    char *text;        /* the text being sent (64 + --text-bytes) */
};

extern const struct conn_ops traffic_ops;

/* Prepare t's peers (already logged in, callbacks traffic_ops) for a run: peer p sends
 * if slot >= 0; `head` is its request up to the text (the target's private_head or
 * group_head, e.g. {"cmd":"private_chat","user_to":"x", for chatd). traffic_free
 * frees what traffic_init took (not the peers'). */
void traffic_init(struct traffic *t);
void traffic_set_sender(struct traffic *t, struct peer *p, int slot, const char *head);
void traffic_free(struct traffic *t);

/* Send for --seconds, then wait up to --drain seconds for the replies and deliveries
 * still to come. */
void traffic_run(struct traffic *t);

/* Wait until `expected` deliveries have arrived in all, or none came for --drain
 * seconds; prints progress. Returns when the last delivery came (now_ns() clock), or
 * when the wait began if none came. */
int64_t traffic_wait_deliveries(struct traffic *t, uint64_t expected);

/* Unique deliveries that should have come and did not. */
uint64_t traffic_lost(const struct traffic *t, uint64_t expected);

/* The figures every message workload reports; per_unit names what the CPU time is
 * divided by ("delivery" or "message"). */
void traffic_report(const struct traffic *t, const char *rate_key, uint64_t rate_count,
                    uint64_t expected);

#endif
