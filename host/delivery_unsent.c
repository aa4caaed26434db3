/* delivery_unsent.c - messages delivered to a session but not yet written to its socket.
 *
 * A message deliver() was asked to store (CHATD_DELIVER_STORE) and pushed live was
 * answered as delivered; if its session then ends before writing it (a slow reader cut
 * off, an idle or write timeout, a connection that broke), it goes into the inbox for
 * the user's next login instead of being lost.
 *
 * Cheap on the hot path: per such push, one entry per session (where the line ends in
 * the session's output, counted in bytes ever queued, a reference to the message, the
 * user's name), no copy of the text and no system call. A session's written count is
 * what it queued (s->out_added) less what still waits in its output buffer. Entries go
 * when a write passes their end; what is left when the session is cut off or freed is
 * stored, in order. Stored messages a drain pushes are not kept here: their inbox rows
 * stay until a flush watch has seen them written. */
#include "delivery_internal.h"
#include "post.h"

#include "log.h"
#include "server.h"
#include "session.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdlib.h>
#include <string.h>

struct unsent_push {
    uint64_t end; /* s->out_added just after the line was queued */
    json_t *msg;  /* referenced */
    char user[DELIVERY_NAME_MAX + 1];
};

/* The pushes of one session not yet wholly written, oldest first: q[head, head + n). */
struct unsent {
    struct unsent_push *q;
    size_t head, n, cap;
};

static uint64_t written(const struct session *s)
{
    return s->out_added - evbuffer_get_length(bufferevent_get_output(s->bev));
}

/* Keep msg as s's newest push, ending at s->out_added. 0, or -1 out of memory. */
static int keep(struct session *s, const char *user, json_t *msg)
{
    struct unsent *un = s->unsent;
    if (!un && !(un = s->unsent = calloc(1, sizeof(*un))))
        return -1;
    if (un->head + un->n == un->cap) {
        if (un->head > 0) {
            memmove(un->q, un->q + un->head, un->n * sizeof(*un->q));
            un->head = 0;
        } else {
            size_t cap = un->cap ? un->cap * 2 : 8;
            struct unsent_push *more = realloc(un->q, cap * sizeof(*more));
            if (!more)
                return -1;
            un->q = more;
            un->cap = cap;
        }
    }
    struct unsent_push *p = &un->q[un->head + un->n++];
    p->end = s->out_added;
    p->msg = json_incref(msg);
    size_t n = strlen(user); /* deliver checked it fits (storable_name) */
    memcpy(p->user, user, n < sizeof(p->user) ? n + 1 : sizeof(p->user));
    p->user[sizeof(p->user) - 1] = '\0';
    return 0;
}

size_t unsent_push_line(struct server *srv, const struct user *u, const char *line, size_t len,
                        json_t *msg)
{
    size_t sent = 0;
    for (size_t i = 0; len && i < u->n_sessions; i++) {
        struct session *s = session_find(srv, u->sessions[i]);
        if (!s || s->closing || session_send_line(s, line, len) != 0)
            continue;
        sent++;
        if (keep(s, u->name, msg) != 0) {
            /* It cannot be stored if this session ends first: the session ends now, and
             * the message goes where the other sessions (or the inbox) take it. */
            log_error("session %llu (%s) disconnected: out of memory", (unsigned long long)s->id,
                      s->peer);
            session_close(s, "out of memory");
            sent--;
        }
    }
    return sent;
}

void unsent_written(struct session *s)
{
    struct unsent *un = s->unsent;
    if (!un || un->n == 0)
        return;
    uint64_t done = written(s);
    while (un->n > 0 && un->q[un->head].end <= done) {
        json_decref(un->q[un->head].msg);
        un->head++;
        un->n--;
    }
    if (un->n == 0)
        un->head = 0;
}

void unsent_store(struct session *s)
{
    struct unsent *un = s->unsent;
    if (!un)
        return;
    unsent_written(s);
    struct delivery *d = s->server->delivery;
    size_t stored = 0, lost = 0;
    for (size_t i = un->head; i < un->head + un->n; i++) {
        struct unsent_push *p = &un->q[i];
        /* A posted message: a timeline row for its seq, with the next commit batch. */
        json_t *seq = json_object_get(p->msg, "seq");
        if (json_is_integer(seq)) {
            int64_t id = json_integer_value(seq);
            post_store_rows(s->server, p->user, &id, 1);
            stored++;
        } else {
            lost++;
        }
        json_decref(p->msg);
    }
    if (stored) {
        d->stats.unsent_stored += stored;
        log_info("session %llu (%s): %zu messages delivered to it but not written are stored "
                 "for %s's next login",
                 (unsigned long long)s->id, s->peer, stored, un->q[un->head].user);
    }
    if (lost)
        log_error("session %llu (%s): %zu messages not written to it are lost: not posted",
                  (unsigned long long)s->id, s->peer, lost);
    free(un->q);
    free(un);
    s->unsent = NULL;
}
