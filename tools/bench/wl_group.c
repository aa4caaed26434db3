/* wl_group.c - workload "group": G members in one group (created and joined during
 * setup), the first S of them sending group_chat with W in flight each for T seconds.
 * chatd pushes a group message to every member but its sender (wire contract:
 * "every other member's online sessions"), so each message is G-1 deliveries. */
#include "bench.h"
#include "report.h"
#include "setup.h"
#include "traffic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char group_name[48];

/* Receivers track each sender (users 0..S-1) in its own slot. */
static int sender_slot(const struct traffic *t, const struct peer *receiver, int from)
{
    (void)receiver;
    return from >= 0 && from < t->nslots ? from : -1;
}

static size_t make_create(struct bench *b, struct peer *p, char *out)
{
    (void)b;
    (void)p;
    return (size_t)sprintf(out, "{\"cmd\":\"create_group\",\"group\":\"%s\"}\n", group_name);
}

static size_t make_join(struct bench *b, struct peer *p, char *out)
{
    (void)b;
    (void)p;
    return (size_t)sprintf(out, "{\"cmd\":\"join_group\",\"group\":\"%s\"}\n", group_name);
}

static int check_create(struct peer *p, const char *line)
{
    (void)p;
    return strstr(line, "\"result\":\"success\"") ? 0 : -1;
}

static int check_join(struct peer *p, const char *line)
{
    (void)p;
    return strstr(line, "\"result\":\"success\"") || strstr(line, "\"result\":\"already_member\"")
               ? 0
               : -1;
}

int workload_group(struct bench *b)
{
    int g = b->opt.members, s = b->opt.senders;
    struct setup_figures *f = calloc(1, sizeof(*f));
    struct traffic *t = calloc(1, sizeof(*t));
    struct peer *peers = calloc((size_t)g, sizeof(*peers));
    if (!f || !t || !peers)
        die("out of memory");
    snprintf(group_name, sizeof(group_name), "%sg", b->prefix);
    peers_init(peers, g, 0);
    setup_register(b, 0, g, f);
    setup_login(b, peers, g, &traffic_ops, f);
    setup_each(b, peers, 1, "create_group_reply", make_create, check_create, &traffic_ops);
    setup_each(b, peers + 1, g - 1, "join_group_reply", make_join, check_join, &traffic_ops);
    fprintf(stderr, "setup: group %s has %d members\n", group_name, g);

    *t = (struct traffic){.b = b,
                          .peers = peers,
                          .n = g,
                          .fanout = g - 1,
                          .reply_cmd = "group_chat_reply",
                          .recv_cmd = "group_chat_recv",
                          .ok_word = "success",
                          .nslots = s,
                          .slot_of = sender_slot};
    traffic_init(t);
    char head[128];
    snprintf(head, sizeof(head), "{\"cmd\":\"group_chat\",\"group\":\"%s\",", group_name);
    for (int i = 0; i < s; i++)
        traffic_set_sender(t, &peers[i], i, head);
    traffic_run(t);

    uint64_t expected = t->accepted * (uint64_t)(g - 1);
    report_begin();
    report_str("workload", "group");
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
    free(peers);
    free(t);
    free(f);
    return failed;
}
