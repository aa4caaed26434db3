/* traffic.c - senders, receivers and the measured window (see traffic.h). */
#include "traffic.h"
#include "proto.h"
#include "target.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICK_MS 100
#define PACE_US 1000

static struct traffic *current;

static void send_one(struct traffic *t, struct peer *p)
{
    int64_t t0 = now_ns();
    size_t len = proto_put_msg(t->text, p->user, p->next_seq++, t0, t->b->opt.text_bytes);
    size_t end_len = strlen(t->target->after_text);
    char *o = conn_reserve(&p->c, p->req_len + 96 + len + end_len);
    size_t n = p->req_len;
    memcpy(o, p->req, n);
    if (t->target->before_text)
        n += t->target->before_text(t, p, len, o + n);
    memcpy(o + n, t->text, len);
    memcpy(o + n + len, t->target->after_text, end_len);
    conn_commit(&p->c, n + len + end_len);
    p->sent_ns[(p->sent_head + p->inflight) % (unsigned)t->b->opt.inflight] = t0;
    p->inflight++;
    t->sent++;
}

/* The answer to p's oldest request in flight: the reply, or (a target without replies)
 * the message's arrival at its designated receiver. `line` is kept if it is the first
 * refusal. */
static void on_reply(struct traffic *t, struct peer *p, int ok, const char *line, size_t len)
{
    if (p->inflight == 0 || !p->sent_ns) {
        t->unexpected++;
        return;
    }
    int64_t t0 = p->sent_ns[p->sent_head];
    p->sent_head = (p->sent_head + 1) % (unsigned)t->b->opt.inflight;
    p->inflight--;
    t->replies++;
    if (ok)
        t->accepted++;
    else if (t->refused++ == 0)
        snprintf(t->refusal, sizeof(t->refusal), "%.*s", (int)len, line);
    if (t->in_window) {
        t->replies_window++;
        t->accepted_window += ok;
        hist_record(&t->reply_lat, now_ns() - t0);
    }
    if (t->running && !t->b->opt.rate)
        send_one(t, p);
}

static void on_delivery(struct traffic *t, struct peer *p, const char *text, size_t len)
{
    struct proto_msg m;
    int slot;
    if (proto_parse_msg(text, len, &m) < 0 || (slot = t->slot_of(t, p, m.from)) < 0) {
        t->unexpected++;
        return;
    }
    if (!seen_mark(&p->seen[slot], m.seq)) {
        t->duplicated++;
        return;
    }
    t->delivered++;
    if (t->in_window) {
        t->delivered_window++;
        hist_record(&t->delivery_lat, now_ns() - m.sent_ns);
    }
    /* Without replies, the designated receiver's arrival answers the sender (peers[k]
     * is user k in the workloads that run other targets). */
    if (!t->target->replies && p->user == (m.from + 1) % t->n)
        on_reply(t, &t->peers[m.from], 1, text, len);
}

static void traffic_line(struct conn *c, char *line, size_t len)
{
    struct traffic *t = current;
    struct peer *p = c->owner;
    const char *text = NULL;
    size_t text_len = 0;
    int ok = 0;
    switch (t->target->line(t, p, line, len, &ok, &text, &text_len)) {
    case WIRE_DELIVERY:
        on_delivery(t, p, text, text_len);
        break;
    case WIRE_REPLY:
        on_reply(t, p, ok, line, len);
        break;
    case WIRE_OTHER:
        break;
    }
}

static void traffic_closed(struct conn *c, const char *why)
{
    struct peer *p = c->owner;
    die("the connection of user %d was closed: %s", p->user, why);
}

const struct conn_ops traffic_ops = {NULL, traffic_line, traffic_closed};

void traffic_init(struct traffic *t)
{
    current = t;
    if (!t->target)
        t->target = target_of(t->b);
    t->text = malloc(64 + (size_t)t->b->opt.text_bytes);
    if (!t->text)
        die("out of memory");
    t->id_base = (uint64_t)now_ns() / 1000000;
    for (int i = 0; i < t->n; i++) {
        struct peer *p = &t->peers[i];
        p->t = t;
        p->slot = -1;
        p->seen = calloc((size_t)(t->nslots > 0 ? t->nslots : 1), sizeof(*p->seen));
        if (!p->seen)
            die("out of memory");
    }
}

void traffic_set_sender(struct traffic *t, struct peer *p, int slot, const char *head)
{
    size_t hl = strlen(head);
    p->slot = slot;
    p->req = malloc(hl + 32);
    p->sent_ns = calloc((size_t)t->b->opt.inflight, sizeof(*p->sent_ns));
    if (!p->req || !p->sent_ns)
        die("out of memory");
    memcpy(p->req, head, hl);
    p->req_len = hl;
}

void traffic_free(struct traffic *t)
{
    free(t->text);
    t->text = NULL;
}

/* ---- the run ---- */

struct run_state {
    struct traffic *t;
    uint64_t due_sent; /* --rate: messages sent or held back since the window opened */
    int64_t drain_deadline;
    int ticks;
    uint64_t last_delivered, last_replies;
    uint64_t expected;    /* traffic_wait_deliveries: deliveries to wait for */
    int64_t last_arrival; /* and when the count last grew */
    uint64_t seen_count;
    int waiting;
};

static uint64_t in_flight(const struct traffic *t)
{
    return t->sent - t->replies;
}

static void end_window(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct run_state *s = arg;
    struct traffic *t = s->t;
    t->running = 0;
    t->in_window = 0;
    cpu_window_stop(t->b, &t->cpu);
    s->drain_deadline = now_ns() + (int64_t)(t->b->opt.drain * 1e9);
    fprintf(stderr, "run over after %.1f s; waiting for %llu replies and the deliveries\n",
            cpu_window_seconds(&t->cpu), (unsigned long long)in_flight(t));
}

static void run_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct run_state *s = arg;
    struct traffic *t = s->t;
    int64_t now = now_ns();
    if (++s->ticks % (1000 / TICK_MS) == 0) {
        fprintf(stderr,
                "%5.1f s  %9llu deliveries/s  %8llu replies/s  sent %llu  delivered %llu"
                "  in flight %llu\n",
                (double)(now - t->start_ns) / 1e9,
                (unsigned long long)(t->delivered - s->last_delivered),
                (unsigned long long)(t->replies - s->last_replies), (unsigned long long)t->sent,
                (unsigned long long)t->delivered, (unsigned long long)in_flight(t));
        s->last_delivered = t->delivered;
        s->last_replies = t->replies;
    }
    if (s->waiting) {
        if (t->delivered != s->seen_count) {
            s->seen_count = t->delivered;
            s->last_arrival = now;
        }
        if (t->delivered >= s->expected || now - s->last_arrival > (int64_t)(t->b->opt.drain * 1e9))
            event_base_loopbreak(t->b->base);
        return;
    }
    if (t->running || t->in_window)
        return;
    uint64_t expected = t->accepted * (uint64_t)t->fanout;
    if ((in_flight(t) == 0 && t->delivered >= expected) || now > s->drain_deadline)
        event_base_loopbreak(t->b->base);
}

/* The next sender below its cap, from where the last search ended; NULL if none. */
static struct peer *free_sender(struct traffic *t)
{
    for (int k = 0; k < t->n; k++) {
        struct peer *p = &t->peers[(t->next_sender + k) % t->n];
        if (p->slot >= 0 && p->inflight < (unsigned)t->b->opt.inflight) {
            t->next_sender = (t->next_sender + k + 1) % t->n;
            return p;
        }
    }
    return NULL;
}

/* --rate: every millisecond, send what is due by now. */
static void pace(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct run_state *s = arg;
    struct traffic *t = s->t;
    if (!t->running)
        return;
    uint64_t due = (uint64_t)((double)(now_ns() - t->start_ns) * t->b->opt.rate / 1e9);
    for (; s->due_sent < due; s->due_sent++) {
        struct peer *p = free_sender(t);
        if (!p) {
            t->held_back += due - s->due_sent;
            s->due_sent = due;
            break;
        }
        send_one(t, p);
    }
}

void traffic_run(struct traffic *t)
{
    struct run_state s = {.t = t};
    struct bench *b = t->b;
    struct event *tick = event_new(b->base, -1, EV_PERSIST, run_tick, &s);
    struct event *end = event_new(b->base, -1, 0, end_window, &s);
    struct event *pacer = event_new(b->base, -1, EV_PERSIST, pace, &s);
    struct timeval tv_pace = {0, PACE_US};
    struct timeval tv_tick = {0, TICK_MS * 1000};
    struct timeval tv_end = {
        (time_t)b->opt.seconds,
        (suseconds_t)((b->opt.seconds - (double)(time_t)b->opt.seconds) * 1e6)};
    fprintf(stderr, "running %.1f s\n", b->opt.seconds);
    cpu_window_start(b, &t->cpu);
    t->start_ns = t->cpu.t0;
    t->running = 1;
    t->in_window = 1;
    for (int i = 0; i < t->n && !b->opt.rate; i++) {
        struct peer *p = &t->peers[i];
        if (p->slot >= 0)
            for (int k = 0; k < b->opt.inflight; k++)
                send_one(t, p);
    }
    event_add(tick, &tv_tick);
    event_add(end, &tv_end);
    if (b->opt.rate)
        event_add(pacer, &tv_pace);
    event_base_dispatch(b->base);
    event_free(tick);
    event_free(end);
    event_free(pacer);
}

int64_t traffic_wait_deliveries(struct traffic *t, uint64_t expected)
{
    struct run_state s = {.t = t, .waiting = 1, .expected = expected};
    struct bench *b = t->b;
    int64_t t0 = now_ns();
    t->start_ns = t0;
    s.last_arrival = t0;
    s.seen_count = t->delivered;
    struct event *tick = event_new(b->base, -1, EV_PERSIST, run_tick, &s);
    struct timeval tv_tick = {0, TICK_MS * 1000};
    event_add(tick, &tv_tick);
    if (t->delivered < expected)
        event_base_dispatch(b->base);
    event_free(tick);
    return s.last_arrival;
}

uint64_t traffic_lost(const struct traffic *t, uint64_t expected)
{
    return expected > t->delivered ? expected - t->delivered : 0;
}

void traffic_report(const struct traffic *t, const char *rate_key, uint64_t rate_count,
                    uint64_t expected)
{
    double secs = cpu_window_seconds(&t->cpu);
    uint64_t reordered = 0;
    for (int i = 0; i < t->n; i++)
        for (int k = 0; k < t->nslots; k++)
            reordered += t->peers[i].seen[k].reordered;
    report_num("seconds", secs);
    report_num(rate_key, secs > 0 ? (double)rate_count / secs : 0);
    report_num("replies_per_s", secs > 0 ? (double)t->replies_window / secs : 0);
    report_num("accepted_per_s", secs > 0 ? (double)t->accepted_window / secs : 0);
    if (t->fanout > 0)
        report_hist_ms("latency_ms", &t->delivery_lat);
    report_hist_ms("reply_latency_ms", &t->reply_lat);
    if (t->b->opt.rate) {
        report_num("offered_per_s", t->b->opt.rate);
        report_int("held_back", (long long)t->held_back);
    }
    report_int("sent", (long long)t->sent);
    report_int("replies", (long long)t->replies);
    report_int("accepted", (long long)t->accepted);
    report_int("refused", (long long)t->refused);
    if (t->refused)
        report_str("first_refusal", t->refusal);
    report_int("no_reply", (long long)(t->sent - t->replies));
    report_int("expected_deliveries", (long long)expected);
    report_int("delivered", (long long)t->delivered);
    report_int("lost", (long long)traffic_lost(t, expected));
    report_int("duplicated", (long long)t->duplicated);
    report_int("reordered", (long long)reordered);
    report_int("unexpected", (long long)t->unexpected);
}
