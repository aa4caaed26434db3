/* ack.c - the host's own command `ack` (it is about the host's stream, not a plugin's):
 * {"cmd":"ack","seq":N} moves the session's device position up to N (never past what
 * the session was sent: more counts as all it was sent), with no reply when accepted.
 * When it moves the user's highest acknowledged position, every private message in
 * between that this session was sent gets one "delivered" receipt, pushed to its
 * sender's sessions: the first device to acknowledge a message sends it, later ones
 * find the user's position already past it. */
#include "stream_internal.h"

#include "cluster_route.h"
#include "commands.h"
#include "request.h"
#include "server.h"
#include "session.h"

#include <stdio.h>
#include <string.h>

static void send_receipt(struct stream *st, const char *to, int64_t seq, const char *reader)
{
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)seq);
    json_t *msg = json_pack("{ssssssss}", "cmd", "receipt", "msg_id", id, "user", reader, "status",
                            "delivered");
    if (!msg)
        return;
    cluster_route_push_live(st->srv, &to, 1, msg, 0, NULL);
    json_decref(msg);
    st->stats.receipts_delivered++;
}

/* The receipts ss owes for messages in (from, to]; entries up to `to` are forgotten. */
static void receipts_due(struct stream *st, struct stream_session *ss, int64_t from, int64_t to)
{
    while (ss->n_receipts > 0) {
        struct receipt_entry *e = &ss->receipts[ss->receipts_head];
        if (e->seq > to)
            break;
        if (e->seq > from)
            send_receipt(st, e->sender, e->seq, ss->u->name);
        ss->receipts_head = (ss->receipts_head + 1) % ss->cap_receipts;
        ss->n_receipts--;
    }
}

static void on_ack(struct chatd_request *req, const json_t *body, void *arg)
{
    struct stream *st = arg;
    struct session *s = session_find(st->srv, req->session);
    struct stream_session *ss = s ? s->stream : NULL;
    const json_t *seq = json_object_get(body, "seq");
    if (!json_is_integer(seq) || json_integer_value(seq) < 0) {
        request_refuse(req, "bad_request", "seq must be an integer >= 0");
        return;
    }
    if (!ss || !ss->ack) {
        request_refuse(req, "bad_request",
                       "only a session logged in with \"ack\":true acknowledges");
        return;
    }
    int64_t upto = (int64_t)json_integer_value(seq);
    if (upto > ss->sent_max)
        upto = ss->sent_max;
    struct stream_user *u = ss->u;
    struct device *d = devices_get(st, u, ss->device, ss->position);
    if (d && upto > d->acked) {
        d->acked = upto;
        d->seen_at = stream_wall_ms();
        devices_dirty(st, u);
    }
    if (upto > u->acked_max) {
        receipts_due(st, ss, u->acked_max, upto);
        u->acked_max = upto;
    } else {
        receipts_due(st, ss, upto, upto); /* owed by another device already */
    }
    st->stats.acks++;
    request_accept_silently(req);
}

int ack_register(struct stream *st)
{
    const struct chatd_command cmd = {.name = "ack", .handler = on_ack, .arg = st};
    return commands_add(st->srv, &st->self, &cmd);
}
