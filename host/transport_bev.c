/* transport_bev.c - what the transports that read through their bufferevent (TLS,
 * WebSocket) share: the session's input is the bufferevent's input buffer, and s->read_ev
 * is only made active (see transport.h). */
#include "transport.h"

#include "server.h"

#include <errno.h>
#include <event2/buffer.h>

void transport_bev_read_off(struct session *s)
{
    event_del(s->read_ev);
    bufferevent_disable(s->bev, EV_READ);
}

ssize_t transport_bev_read(struct session *s, void *buf, size_t len)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    int n = evbuffer_remove(in, buf, len);
    /* The last bytes before the end: a short read, after which the session reads no more
     * in this turn, and no event comes for an end already seen (a WebSocket's close or
     * protocol error, found with the bytes before it). Come back for it. */
    if (n > 0 && s->stream_ended && evbuffer_get_length(in) == 0)
        event_active(s->read_ev, EV_READ, 0);
    if (n > 0 || s->stream_ended)
        return n > 0 ? n : 0;
    errno = EAGAIN;
    return -1;
}

void transport_bev_on_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct session *s = arg;
    event_active(s->read_ev, EV_READ, 0);
}

int transport_bev_read_end(struct session *s, short what)
{
    if (!(what & BEV_EVENT_READING) || !(what & (BEV_EVENT_TIMEOUT | BEV_EVENT_EOF)))
        return 0;
    if (what & BEV_EVENT_EOF)
        s->stream_ended = 1;
    event_active(s->read_ev, (what & BEV_EVENT_TIMEOUT) ? EV_TIMEOUT : EV_READ, 0);
    return 1;
}
