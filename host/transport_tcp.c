/* transport_tcp.c - plain TCP: the session reads its socket itself with recv(), straight
 * into its frame buffer, on a read event that carries the idle timeout; output is
 * written at the end of each loop turn with one writev (output.c), and only a backlog
 * goes through the bufferevent's write event. (libevent's bufferevent would ask the
 * kernel how much is waiting before every read, one more system call per message, and
 * copy through a buffer of its own.) */
#include "transport.h"

#include "server.h"

#include <errno.h>
#include <event2/buffer.h>
#include <sys/socket.h>

static int tcp_open(struct session *s, evutil_socket_t fd, event_callback_fn on_input)
{
    s->read_ev = event_new(s->server->base, fd, EV_READ | EV_PERSIST, on_input, s);
    if (s->read_ev)
        return 0;
    evutil_closesocket(fd);
    return -1;
}

/* The socket is the read event's; the bufferevent writes to it only for a backlog. */
static struct bufferevent *tcp_output_new(struct session *s)
{
    return bufferevent_socket_new(s->server->base, event_get_fd(s->read_ev), 0);
}

/* The session is freed: its events are off (session_close), the socket is closed. */
static void tcp_close(struct session *s)
{
    evutil_closesocket(event_get_fd(s->read_ev));
}

/* Every session's idle limit is one common timeout queue, which makes re-arming the
 * read event O(1). */
static int tcp_read_on(struct session *s, const struct timeval *idle)
{
    return event_add(s->read_ev, idle);
}

static void tcp_read_off(struct session *s)
{
    event_del(s->read_ev);
}

static ssize_t tcp_read(struct session *s, void *buf, size_t len)
{
    return recv(event_get_fd(s->read_ev), buf, len, 0);
}

static int tcp_write(struct session *s, struct evbuffer *out)
{
    /* A socket bufferevent keeps the front of its output frozen so that only its own
     * write callback drains it; this is that callback's write, done early. */
    evbuffer_unfreeze(out, 1);
    int rc = evbuffer_write(out, event_get_fd(s->read_ev));
    int error = errno;
    evbuffer_freeze(out, 1);
    errno = error;
    return rc < 0 ? -1 : 0;
}

const struct transport transport_tcp = {
    .name = "tcp",
    .open = tcp_open,
    .output_new = tcp_output_new,
    .read_on = tcp_read_on,
    .read_off = tcp_read_off,
    .read = tcp_read,
    .write = tcp_write,
    .close = tcp_close,
};
