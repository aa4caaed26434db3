/* reply_order.c - a session's requests in flight, oldest first, so that pipelined
 * requests (CHATD_CMD_PIPELINED) are answered, and post their messages, in the order
 * they arrived although their jobs finish in any order.
 *
 * Each request in flight has a slot in its session's list. A slot stays until its
 * reply has gone out and its request is freed; a reply that is ready before an earlier
 * one waits in its slot as a copy of the line. A post for a request (chatd_post.req)
 * waits in the slot too, as a continuation, until every earlier slot is settled (has
 * posted or replied): the post of a message accepted later cannot take a smaller id. */
#include "reply_order.h"

#include "request.h"
#include "server.h"
#include "session.h"

#include <stdlib.h>
#include <string.h>

struct turn {
    reply_order_fn fn;
    void *arg;
    int settles; /* its request is settled when fn runs (else when it is answered) */
    struct turn *next;
};

struct reply_slot {
    struct reply_slot *next;
    struct session *session;
    struct chatd_request *req; /* NULL once the request is freed */
    char *line;                /* its reply, waiting for earlier ones (NULL: none is sent) */
    size_t len;
    struct turn *turns, **turns_tail; /* posts waiting for earlier requests to settle */
    unsigned settled : 1;             /* it has posted or been answered */
    unsigned ready : 1;               /* answered, its reply waiting for earlier ones */
    unsigned sent : 1;                /* its reply went out */
};

int reply_order_add(struct session *s, struct chatd_request *req)
{
    struct reply_slot *slot = calloc(1, sizeof(*slot));
    if (!slot)
        return -1;
    slot->session = s;
    slot->req = req;
    slot->turns_tail = &slot->turns;
    struct reply_slot **at = &s->slots;
    while (*at)
        at = &(*at)->next;
    *at = slot;
    s->n_inflight++;
    req->slot = slot;
    return 0;
}

static int earlier_all(const struct reply_slot *slot, int settled)
{
    for (const struct reply_slot *e = slot->session->slots; e && e != slot; e = e->next)
        if (settled ? !e->settled : !e->sent)
            return 0;
    return 1;
}

/* Run the first waiting post whose earlier requests are all settled, then look again
 * from the start: a post can answer its request, or another, as it runs. */
static void run_turns(struct session *s)
{
    for (;;) {
        struct reply_slot *slot = s->slots;
        int all_settled = 1;
        while (slot && !(all_settled && slot->turns)) {
            all_settled = all_settled && slot->settled;
            slot = slot->next;
        }
        if (!slot)
            return;
        struct turn *t = slot->turns;
        slot->turns = t->next;
        if (!slot->turns)
            slot->turns_tail = &slot->turns;
        if (t->settles)
            slot->settled = 1;
        t->fn(t->arg, 0);
        free(t);
    }
}

/* Free the slots that are done with: reply sent, request freed, no post waiting. */
static void collect(struct session *s)
{
    struct reply_slot **at = &s->slots;
    while (*at) {
        struct reply_slot *slot = *at;
        if (slot->sent && !slot->req && !slot->turns) {
            *at = slot->next;
            free(slot);
        } else {
            at = &slot->next;
        }
    }
}

int reply_order_send(struct session *s, struct chatd_request *req, const char *line, size_t len)
{
    struct reply_slot *slot = req->slot;
    if (!slot) {
        session_send_line(s, line, len);
        return 0;
    }
    slot->settled = 1;
    if (!earlier_all(slot, 0)) {
        if (line && !(slot->line = malloc(len ? len : 1)))
            return -1;
        if (line)
            memcpy(slot->line, line, len);
        slot->len = len;
        slot->ready = 1;
        run_turns(s);
        return 0;
    }
    /* A send can close the session (a reader too slow), which frees every slot. */
    if (line)
        session_send_line(s, line, len);
    if (s->dead)
        return 0;
    slot->sent = 1;
    for (struct reply_slot *next = slot->next; next && next->ready; next = next->next) {
        char *waiting = next->line;
        next->line = NULL;
        next->ready = 0;
        next->sent = 1;
        if (waiting)
            session_send_line(s, waiting, next->len);
        free(waiting);
        if (s->dead)
            return 0;
    }
    run_turns(s);
    collect(s);
    return 0;
}

int reply_order_when_turn(struct chatd_request *req, reply_order_fn fn, void *arg, int settles)
{
    struct reply_slot *slot = req ? req->slot : NULL;
    if (!slot || (!slot->turns && earlier_all(slot, 1))) {
        struct session *s = slot ? slot->session : NULL;
        if (slot && settles)
            slot->settled = 1;
        fn(arg, 0);
        if (s) /* the post may have closed s, freeing its slots: look again */
            run_turns(s);
        return 0;
    }
    struct turn *t = calloc(1, sizeof(*t));
    if (!t)
        return -1;
    t->fn = fn;
    t->arg = arg;
    t->settles = settles;
    *slot->turns_tail = t;
    slot->turns_tail = &t->next;
    return 0;
}

void reply_order_remove(struct chatd_request *req)
{
    struct reply_slot *slot = req->slot;
    if (!slot)
        return;
    req->slot = NULL;
    slot->req = NULL;
    struct session *s = slot->session;
    s->n_inflight--;
    collect(s);
}

void reply_order_close(struct session *s)
{
    struct reply_slot *slots = s->slots;
    s->slots = NULL;
    s->n_inflight = 0;
    for (struct reply_slot *slot = slots; slot; slot = slot->next)
        if (slot->req) {
            request_mark_gone(slot->req);
            slot->req->slot = NULL;
        }
    while (slots) {
        struct reply_slot *slot = slots;
        slots = slot->next;
        while (slot->turns) {
            struct turn *t = slot->turns;
            slot->turns = t->next;
            t->fn(t->arg, 1);
            free(t);
        }
        free(slot->line);
        free(slot);
    }
}
