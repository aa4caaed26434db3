/* output.c - getting sessions' queued lines onto the network (see output.h). */
#include "output.h"

#include "server.h"
#include "session.h"
#include "transport.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <string.h>

static void link_session(struct server *srv, struct session *s)
{
    s->flush_next = srv->flush_list;
    s->flush_prev = &srv->flush_list;
    if (srv->flush_list)
        srv->flush_list->flush_prev = &s->flush_next;
    srv->flush_list = s;
}

void output_unqueue(struct session *s)
{
    if (!s->flush_prev)
        return;
    *s->flush_prev = s->flush_next;
    if (s->flush_next)
        s->flush_next->flush_prev = s->flush_prev;
    s->flush_next = NULL;
    s->flush_prev = NULL;
}

void output_queue(struct session *s)
{
    /* A session of an I/O thread hands over every turn's output, also with a backlog
     * and while closing; the others' bufferevent writes a backlog by itself. */
    if (s->flush_prev || s->dead || (!s->io && (s->write_armed || s->closing)))
        return;
    struct server *srv = s->server;
    int was_empty = srv->flush_list == NULL;
    link_session(srv, s);
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
        output_unqueue(s);
        if (s->dead || (s->closing && !s->io))
            continue; /* dead: nothing more is sent; closing: its bufferevent flushes */
        struct evbuffer *out = bufferevent_get_output(s->bev);
        /* An empty buffer may have been written already; writing it would report -1. */
        if (evbuffer_get_length(out) > 0 && write_now(s, out) < 0)
            continue;
        if (!s->closing) /* closing: its I/O thread's reports end it (session_io_wrote) */
            session_wrote(s);
    }
}

int output_init(struct server *srv)
{
    srv->flush = event_new(srv->base, -1, 0, on_flush, srv);
    return srv->flush ? 0 : -1;
}

void output_free(struct server *srv)
{
    if (srv->flush)
        event_free(srv->flush);
    srv->flush = NULL;
}
