/* wl_private.c - workload "private": N users in a ring, each keeping W private messages
 * (chatd: private_chat requests) in flight to the next user for T seconds. Every
 * message is one delivery. */
#include "bench.h"
#include "report.h"
#include "setup.h"
#include "target.h"
#include "traffic.h"

#include <stdio.h>
#include <stdlib.h>

/* User i receives only from user i-1 (its one slot). */
static int ring_slot(const struct traffic *t, const struct peer *receiver, int from)
{
    return from == (receiver->user + t->n - 1) % t->n ? 0 : -1;
}

int workload_private(struct bench *b)
{
    int n = b->opt.users;
    struct setup_figures *f = calloc(1, sizeof(*f));
    struct traffic *t = calloc(1, sizeof(*t));
    struct peer *peers = calloc((size_t)n, sizeof(*peers));
    if (!f || !t || !peers)
        die("out of memory");
    const struct target *target = target_of(b);
    peers_init(peers, n, 0);
    if (target->prepare)
        target->prepare(b, n, f);
    setup_sessions(b, peers, n, target->session, &traffic_ops, f);

    *t = (struct traffic){.b = b,
                          .peers = peers,
                          .n = n,
                          .fanout = 1,
                          .reply_cmd = "private_chat_reply",
                          .recv_cmd = "private_chat_recv",
                          .ok_word = "success",
                          .nslots = 1,
                          .slot_of = ring_slot};
    traffic_init(t);
    for (int i = 0; i < n; i++) {
        char head[128];
        target->private_head(b, (i + 1) % n, head);
        traffic_set_sender(t, &peers[i], i, head);
    }
    traffic_run(t);

    uint64_t expected = t->accepted;
    report_begin();
    report_str("workload", "private");
    report_str("target", target->name);
    report_int("users", n);
    report_int("inflight", b->opt.inflight);
    report_int("text_bytes", b->opt.text_bytes);
    traffic_report(t, "deliveries_per_s", t->delivered_window, expected);
    report_setup(f);
    report_cpu(&t->cpu, t->delivered_window, "delivery");
    report_end();

    int failed = traffic_lost(t, expected) || t->duplicated || t->refused;
    peers_free(peers, n);
    traffic_free(t);
    free(peers);
    free(t);
    free(f);
    return failed;
}
