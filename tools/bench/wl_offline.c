/* wl_offline.c - workload "offline": N senders keep W private_chat requests in flight
 * for T seconds to R users who are registered but never logged in, so chatd stores
 * every message (committed before the `offline` reply). Sender i writes to receiver
 * i mod R. With --verify, the receivers then log in, and every stored message must
 * arrive exactly once. */
#include "bench.h"
#include "report.h"
#include "setup.h"
#include "target.h"
#include "traffic.h"

#include <stdio.h>
#include <stdlib.h>

static int senders, receivers;

/* Receiver k gets messages from senders k, k+R, k+2R...: slot = sender / R. */
static int mailbox_slot(const struct traffic *t, const struct peer *receiver, int from)
{
    (void)t;
    int k = receiver->user - senders;
    if (from < 0 || from >= senders || k < 0 || from % receivers != k)
        return -1;
    return from / receivers;
}

int workload_offline(struct bench *b)
{
    senders = b->opt.users;
    receivers = b->opt.receivers;
    int all = senders + receivers;
    struct setup_figures *f = calloc(1, sizeof(*f));
    struct setup_figures *fv = calloc(1, sizeof(*fv));
    struct traffic *t = calloc(1, sizeof(*t));
    struct peer *peers = calloc((size_t)all, sizeof(*peers));
    if (!f || !fv || !t || !peers)
        die("out of memory");
    peers_init(peers, all, 0);
    setup_register(b, 0, all, f);
    setup_login(b, peers, senders, &traffic_ops, f);

    *t = (struct traffic){.b = b,
                          .peers = peers,
                          .n = all,
                          .fanout = 0,
                          .reply_cmd = "private_chat_reply",
                          .recv_cmd = "private_chat_recv",
                          .ok_word = "offline",
                          .nslots = (senders + receivers - 1) / receivers,
                          .slot_of = mailbox_slot};
    traffic_init(t);
    for (int i = 0; i < senders; i++) {
        char head[128];
        target_chatd.private_head(b, senders + i % receivers, head);
        traffic_set_sender(t, &peers[i], i, head);
    }
    traffic_run(t);
    uint64_t stored = t->accepted;

    int64_t verify_start = 0, last = 0;
    if (b->opt.verify) {
        fprintf(stderr, "verify: logging in the %d receivers of %llu stored messages\n", receivers,
                (unsigned long long)stored);
        verify_start = now_ns();
        setup_login(b, peers + senders, receivers, &traffic_ops, fv);
        last = traffic_wait_deliveries(t, stored);
    }

    report_begin();
    report_str("workload", "offline");
    report_int("senders", senders);
    report_int("receivers", receivers);
    report_int("inflight", b->opt.inflight);
    report_int("text_bytes", b->opt.text_bytes);
    traffic_report(t, "stored_per_s", t->accepted_window, b->opt.verify ? stored : 0);
    report_int("stored", (long long)stored);
    if (b->opt.verify) {
        /* From the first receiver's connect to the last stored message's arrival. */
        double secs = (double)(last - verify_start) / 1e9;
        report_obj_begin("verify");
        report_int("stored", (long long)stored);
        report_int("delivered", (long long)t->delivered);
        report_int("lost", (long long)traffic_lost(t, stored));
        report_int("duplicated", (long long)t->duplicated);
        report_num("seconds", secs);
        report_num("deliveries_per_s", secs > 0 ? (double)t->delivered / secs : 0);
        report_setup(fv);
        report_obj_end();
    }
    report_setup(f);
    report_cpu(&t->cpu, t->accepted_window, "message");
    report_end();

    int failed = t->refused || t->duplicated || (b->opt.verify && traffic_lost(t, stored));
    peers_free(peers, all);
    traffic_free(t);
    free(peers);
    free(t);
    free(fv);
    free(f);
    return failed;
}
