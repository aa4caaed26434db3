/* output.c - getting sessions' queued lines onto the network (see output.h). */
#include "output.h"

#include "server.h"
#include "session.h"
#include "transport.h"

#include <errno.h>
#include <stddef.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/bufferevent.h>
#include <string.h>

/* The lists of sessions here are linked through a struct session_link in each session,
 * a different one per list: `off` is its offset in struct session. */
#define FLUSH_LINK offsetof(struct session, flush)
#define SPARE_LINK offsetof(struct session, spare)

static struct session_link *link_of(struct session *s, size_t off)
{
    return (struct session_link *)(void *)((char *)s + off);
}

static void list_push(struct session **head, struct session *s, size_t off)
{
    struct session_link *l = link_of(s, off);
    l->next = *head;
    l->prev = head;
    if (*head)
        link_of(*head, off)->prev = &l->next;
    *head = s;
}

static void list_remove(struct session *s, size_t off)
{
    struct session_link *l = link_of(s, off);
    if (!l->prev)
        return;
    *l->prev = l->next;
    if (l->next)
        link_of(l->next, off)->prev = l->prev;
    l->next = NULL;
    l->prev = NULL;
}

/* ---- output buffers of idle sessions ----
 * A transport whose bufferevent only holds output (transport.h, output_new) has it made
 * when output comes, and freed once it has stayed empty from one sweep to the next (one
 * to two OUTPUT_SWEEP_MS), with its hang-up watch (session_shed_idle): an idle session
 * then holds no bufferevent (about 1 KB with its two buffers), while a busy one keeps
 * its own from one message to the next, at no cost per message. The
 * sessions whose output emptied wait on two lists, `fresh` (since the last sweep) and
 * `aged`; a session given output leaves them. The sweep runs only while they are not
 * empty. (Sessions that all empty their output at once, a burst of logins, hold their
 * bufferevents for that time: 250 ms of logins.) */
#define OUTPUT_SWEEP_MS 250

static void sweep_later(struct server *srv)
{
    struct timeval wait = {0, OUTPUT_SWEEP_MS * 1000};
    if (!event_pending(srv->output_sweep, EV_TIMEOUT, NULL))
        event_add(srv->output_sweep, &wait);
}

void output_emptied(struct session *s)
{
    if (!s->bev || !s->transport->output_new || s->spare.prev || s->closing || s->dead)
        return;
    list_push(&s->server->spare_fresh, s, SPARE_LINK);
    sweep_later(s->server);
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *srv = arg;
    while (srv->spare_aged) {
        struct session *s = srv->spare_aged;
        list_remove(s, SPARE_LINK);
        session_shed_idle(s);
    }
    srv->spare_aged = srv->spare_fresh;
    if (srv->spare_aged)
        srv->spare_aged->spare.prev = &srv->spare_aged;
    srv->spare_fresh = NULL;
    if (srv->spare_aged)
        sweep_later(srv);
}

void output_unqueue(struct session *s)
{
    list_remove(s, FLUSH_LINK);
    list_remove(s, SPARE_LINK);
}

void output_queue(struct session *s)
{
    list_remove(s, SPARE_LINK);
    /* A session of an I/O thread hands over every turn's output, also with a backlog
     * and while closing; the others' bufferevent writes a backlog by itself. */
    if (s->flush.prev || s->dead || (!s->io && (s->write_armed || s->closing)))
        return;
    struct server *srv = s->server;
    int was_empty = srv->flush_list == NULL;
    list_push(&srv->flush_list, s, FLUSH_LINK);
    if (was_empty)
        event_active(srv->flush, EV_TIMEOUT, 0);
}

/* Write what the socket takes. Returns 0, or -1 when the session was closed. */
static int write_now(struct session *s, struct evbuffer *out)
{
    if (s->transport->write(s, out) < 0 && errno != EAGAIN && errno != EINTR) {
        session_close(s, strerror(errno));
        return -1;
    }
    return 0;
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *srv = arg;
    /* Sessions queued while these are written (a resumed session replying, say) are
     * written by this same loop. */
    while (srv->flush_list) {
        struct session *s = srv->flush_list;
        list_remove(s, FLUSH_LINK);
        if (s->dead || (s->closing && !s->io))
            continue; /* dead: nothing more is sent; closing: its bufferevent flushes */
        struct evbuffer *out = s->bev ? bufferevent_get_output(s->bev) : NULL;
        /* An empty buffer may have been written already; writing it would report -1. */
        if (out && evbuffer_get_length(out) > 0 && write_now(s, out) < 0)
            continue;
        if (!s->closing) /* closing: its I/O thread's reports end it (session_io_wrote) */
            session_wrote(s);
    }
}

int output_init(struct server *srv)
{
    srv->flush = event_new(srv->base, -1, 0, on_flush, srv);
    srv->output_sweep = evtimer_new(srv->base, on_sweep, srv);
    return srv->flush && srv->output_sweep ? 0 : -1;
}

void output_free(struct server *srv)
{
    if (srv->flush)
        event_free(srv->flush);
    if (srv->output_sweep)
        event_free(srv->output_sweep);
    srv->flush = NULL;
    srv->output_sweep = NULL;
}
