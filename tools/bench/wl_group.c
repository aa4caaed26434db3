/* wl_group.c - workload "group": G members in one group (created and joined during
 * setup), the first S of them sending group messages (chatd: group_chat) with W in
 * flight each for T seconds. chatd pushes a group message to every member but its
 * sender (wire contract: "every other member's online sessions"), so each message is
 * G-1 deliveries; so does IRC; Redis publishes to every subscriber, the sender too: G. */
#include "bench.h"
#include "report.h"
#include "setup.h"
#include "target.h"
#include "traffic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Receivers track each sender (users 0..S-1) in its own slot. */
static int sender_slot(const struct traffic *t, const struct peer *receiver, int from)
{
    (void)receiver;
    return from >= 0 && from < t->nslots ? from : -1;
}

int workload_group(struct bench *b)
{
    int g = b->opt.members, s = b->opt.senders;
    struct setup_figures *f = calloc(1, sizeof(*f));
    struct traffic *t = calloc(1, sizeof(*t));
    struct peer *peers = calloc((size_t)g, sizeof(*peers));
    if (!f || !t || !peers)
        die("out of memory");
    const struct target *target = target_of(b);
    int fanout = target->echoes_group ? g : g - 1;
    peers_init(peers, g, 0);
    if (target->prepare)
        target->prepare(b, g, f);
    setup_sessions(b, peers, g, target->session, &traffic_ops, f);
    int first = target->create ? 1 : 0; /* the creator is a member */
    if (target->create)
        setup_each(b, peers, 1, target->create, &traffic_ops);
    setup_each(b, peers + first, g - first, target->join, &traffic_ops);
    char head[128];
    group_name(b, head);
    fprintf(stderr, "setup: group %s has %d members\n", head, g);

    *t = (struct traffic){.b = b,
                          .peers = peers,
                          .n = g,
                          .fanout = fanout,
                          .reply_cmd = "group_chat_reply",
                          .recv_cmd = "group_chat_recv",
                          .ok_word = "success",
                          .nslots = s,
                          .slot_of = sender_slot};
    traffic_init(t);
    target->group_head(b, head);
    for (int i = 0; i < s; i++)
        traffic_set_sender(t, &peers[i], i, head);
    traffic_run(t);

    uint64_t expected = t->accepted * (uint64_t)fanout;
    report_begin();
    report_str("workload", "group");
    report_str("target", target->name);
    report_int("members", g);
    report_int("senders", s);
    report_int("inflight", b->opt.inflight);
    report_int("text_bytes", b->opt.text_bytes);
    report_num("messages_per_s", cpu_window_seconds(&t->cpu) > 0
                                     ? (double)t->accepted_window / cpu_window_seconds(&t->cpu)
                                     : 0);
    traffic_report(t, "deliveries_per_s", t->delivered_window, expected);
    report_setup(f);
    report_cpu(&t->cpu, t->delivered_window, "delivery");
    report_end();

    int failed = traffic_lost(t, expected) || t->duplicated || t->refused;
    peers_free(peers, g);
    traffic_free(t);
    free(peers);
    free(t);
    free(f);
    return failed;
}
