/* session.c - one client connection: reading frames one request at a time, writing
 * lines, and the limits (connection count, idle timeout, slow readers). */
#include "session.h"

#include "stream_sessions.h"
#include "dispatch.h"
#include "reply_order.h"
#include "flush_watch.h"
#include "io_threads.h"
#include "json_emit.h"
#include "log.h"
#include "output.h"
#include "request.h"
#include "server.h"
#include "session_limits.h"
#include "transport.h"
#include "users.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* How much is read from the socket per step. */
#define READ_CHUNK 16384
/* How long a closing session may take to flush its last replies. */
#define FLUSH_TIMEOUT_S 5

static void session_process(struct session *s);
static void on_readable(evutil_socket_t fd, short what, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);
static void on_write(struct bufferevent *bev, void *arg);

/* Reading. A session reads (through its transport: transport.h) straight into its frame
 * buffer, and only while it can take a request: while one is in flight, its output is
 * paused or it is closing, further frames wait in the kernel and TCP pushes back on the
 * client. Reading carries the idle timeout. */
static void reading_on(struct session *s)
{
    if (s->reading || s->dead || s->closing || s->read_eof)
        return;
    const struct timeval *idle = NULL;
    struct timeval limit = {(time_t)s->server->cfg->idle_timeout_s, 0};
    if (limit.tv_sec > 0) {
        idle = event_base_init_common_timeout(s->server->base, &limit);
        if (!idle)
            idle = &limit;
    }
    if (s->transport->read_on(s, idle) == 0)
        s->reading = 1;
}

/* Always read_off: a session resumed by event_active (session_request_done) has its
 * event re-armed by libevent after that callback, as every persistent event is, while
 * s->reading still says off. */
static void reading_off(struct session *s)
{
    s->transport->read_off(s);
    s->reading = 0;
}

void session_reading_restart(struct session *s)
{
    if (!s->reading)
        return;
    s->reading = 0;
    reading_on(s);
}

struct session *session_find(struct server *srv, chatd_session_id id)
{
    struct session *s;
    HASH_FIND(hh, srv->sessions, &id, sizeof(id), s);
    return s && !s->dead ? s : NULL;
}

void session_describe_peer(const struct sockaddr *addr, char *out, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)addr;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
        snprintf(out, len, "%s:%u", host, port);
    } else if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)addr;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
        snprintf(out, len, "[%s]:%u", host, port);
    } else {
        snprintf(out, len, "unix");
    }
}

/* While a request is in flight the session does not read (its next frame waits), so a
 * client that resets its connection would go unnoticed until the reply. This event
 * tells (libevent reports a reset as readable, an end of stream as EV_CLOSED): a reset
 * closes the session at once, which marks the request gone, so a job of it that has not
 * started yet is not run. An orderly end of stream is a half-close, whose requests are
 * still answered (docs/protocol.md), and bytes waiting are the client's next requests:
 * the read path sees both once the request is done. Not persistent: it fires once per
 * request at most (at once for a client that pipelines, whose reset is then noticed at
 * its next read). */
static void on_hangup(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct session *s = arg;
    char byte;
    if (recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && errno != EAGAIN &&
        errno != EWOULDBLOCK && errno != EINTR)
        session_close(s, "connection reset while a request was in flight");
}

/* On while the session is busy and still reading, off otherwise; called once each read
 * turn ends. A request that is done leaves the watch on until then: a session kept busy
 * by a client that pipelines up to max_pipelined keeps its watch from one request to the
 * next, instead of three epoll_ctl calls per request (off, read on, watch on again).
 * Made at a session's first wait of this kind, freed when it is idle
 * (session_shed_idle). */
static void hangup_watch(struct session *s)
{
    if (!s->busy || s->read_eof || s->dead) {
        if (s->hangup_ev)
            event_del(s->hangup_ev);
        return;
    }
    if (!s->hangup_ev &&
        !(s->hangup_ev = event_new(s->server->base, s->fd, EV_READ | EV_CLOSED, on_hangup, s))) {
        log_error("session %llu (%s) disconnected: out of memory for its hang-up watch",
                  (unsigned long long)s->id, s->peer);
        session_close(s, "out of memory");
        return;
    }
    event_add(s->hangup_ev, NULL);
}

/* Queue the session for the reaper, which frees it from a fresh loop callback: a
 * session can be closed from deep inside a plugin call (a push to a slow reader) while
 * something up the stack still iterates over sessions. */
void session_close(struct session *s, const char *why)
{
    if (s->dead)
        return;
    log_debug("session %llu (%s) closed: %s", (unsigned long long)s->id, s->peer, why);
    s->dead = 1;
    s->closing = 1;
    struct chatd_request *parked = s->parked;
    s->parked = NULL;
    reply_order_close(s);
    if (parked)
        request_drop_unstarted(parked);
    if (s->hangup_ev)
        event_del(s->hangup_ev);
    reading_off(s);
    if (s->bev)
        bufferevent_disable(s->bev, EV_READ | EV_WRITE);
    s->next_dead = s->server->dead;
    s->server->dead = s;
    event_active(s->server->reaper, EV_TIMEOUT, 0);
}

size_t session_output_pending(const struct session *s)
{
    size_t handed = s->transport->backlog ? s->transport->backlog(s) : 0;
    return (s->bev ? evbuffer_get_length(bufferevent_get_output(s->bev)) : 0) + handed;
}

/* The bufferevent's callbacks, the level at which a paused session resumes, and the
 * idle limit also for output that makes no progress. */
static void output_setup(struct session *s)
{
    struct server *srv = s->server;
    bufferevent_setcb(s->bev, s->transport->on_bev_read, on_write, on_event, s);
    bufferevent_setwatermark(s->bev, EV_WRITE, session_output_resume(srv->cfg), 0);
    if (srv->cfg->idle_timeout_s > 0) {
        struct timeval idle = {(time_t)srv->cfg->idle_timeout_s, 0};
        const struct timeval *common = event_base_init_common_timeout(srv->base, &idle);
        /* A client that stops reading its replies cannot hold a session (and its
         * buffers) forever. */
        bufferevent_set_timeouts(s->bev, NULL, common ? common : &idle);
    }
    /* The bufferevent writes only for a backlog (output.c), and reads only for a
     * transport that reads through it; a new one has writing on. */
    bufferevent_disable(s->bev, EV_READ | EV_WRITE);
}

/* s->bev, made now when the transport makes it only for output (output_new; output.c
 * frees it when idle). NULL when out of memory: the session is closed. */
static struct bufferevent *session_bev(struct session *s)
{
    if (s->bev)
        return s->bev;
    s->bev = s->transport->output_new(s);
    if (!s->bev) {
        log_error("session %llu (%s) disconnected: out of memory for its output",
                  (unsigned long long)s->id, s->peer);
        session_close(s, "out of memory");
        return NULL;
    }
    output_setup(s);
    return s->bev;
}

/* Wait for the output to be written (on), with the write timeout, or stop waiting. A
 * transport whose writes another thread does reports their progress instead of the
 * bufferevent (which has no socket then, and keeps only the timeout). */
static void write_wait(struct session *s, int on)
{
    if (on && !session_bev(s))
        return;
    s->write_armed = on ? 1 : 0;
    if (on)
        bufferevent_enable(s->bev, EV_WRITE);
    else if (s->bev)
        bufferevent_disable(s->bev, EV_WRITE);
    if (s->transport->watch_writes)
        s->transport->watch_writes(s, on);
}

static void on_flushed(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct session *s = arg;
    session_close(s, "flushed");
}

/* While flushing, any error, timeout or end of stream ends the session at once. */
static void on_closing_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    session_close(arg, "connection ended while flushing");
}

void session_close_after_flush(struct session *s, const char *why)
{
    if (s->closing)
        return;
    s->closing = 1;
    log_debug("session %llu (%s) closing: %s", (unsigned long long)s->id, s->peer, why);
    reading_off(s);
    if (session_output_pending(s) == 0) {
        session_close(s, why);
        return;
    }
    /* The write callback fires once the output has drained (with an I/O thread:
     * session_io_wrote, once its backlog is gone). */
    if (!session_bev(s))
        return;
    struct timeval flush = {FLUSH_TIMEOUT_S, 0};
    bufferevent_set_timeouts(s->bev, NULL, &flush);
    bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
    bufferevent_setcb(s->bev, NULL, on_flushed, on_closing_event, s);
    write_wait(s, 1);
    if (s->io) {
        output_queue(s);
        return;
    }
    /* A filter (the WebSocket transport) moves its output only when told; the socket
     * and TLS bufferevents write by themselves and take this as a no-op. */
    bufferevent_flush(s->bev, EV_WRITE, BEV_NORMAL);
}

/* Serialise obj into the server's line buffer, newline-terminated. Returns the line
 * length, or 0 when obj cannot be serialised. */
size_t session_format_line(struct server *srv, const json_t *obj)
{
    srv->out.len = 0;
    if (json_emit(&srv->out, obj) < 0 || line_buffer_append(&srv->out, "\n", 1) < 0)
        return 0;
    return srv->out.len;
}

/* A reader too slow for its pushes. What it was pushed and has not written comes again
 * at its next login (stream.c, when it ends); its output is cut back to the end of the line
 * being written, one error line saying why follows, and it closes once that is flushed
 * (or after FLUSH_TIMEOUT_S). The line being written may be a stored message: the one
 * that can come twice. */
static void cut_off_slow_reader(struct session *s, size_t backlog)
{
    struct server *srv = s->server;
    log_warn("session %llu (%s)%s%s disconnected: it is not reading, %zu bytes unsent "
             "(max_output_bytes %lld)",
             (unsigned long long)s->id, s->peer, s->user ? " user " : "",
             s->user ? s->user->name : "", backlog, (long long)srv->cfg->max_output_bytes);
    srv->metrics.disconnects_slow_reader++;
    s->cut_off = 1;
    struct evbuffer *out = bufferevent_get_output(s->bev);
    struct evbuffer_ptr nl = evbuffer_search(out, "\n", 1, NULL);
    size_t keep = nl.pos >= 0 ? (size_t)nl.pos + 1 : 0;
    if (s->transport->cut_after_line) {
        /* The line being written is the I/O thread's; all of out is whole lines. */
        s->out_added -= s->transport->cut_after_line(s);
        keep = 0;
    }
    struct evbuffer *head = evbuffer_new();
    /* The socket bufferevent keeps the start of its output frozen between writes. */
    int frozen = evbuffer_drain(out, 0) < 0;
    if (frozen)
        evbuffer_unfreeze(out, 1);
    if (head && evbuffer_remove_buffer(out, head, keep) == (int)keep) {
        s->out_added -= evbuffer_get_length(out);
        evbuffer_drain(out, evbuffer_get_length(out));
        evbuffer_add_buffer(out, head);
        static const char why[] =
            "{\"cmd\":\"error\",\"result\":\"slow_reader\",\"reason\":\"disconnected: "
            "output waiting for this connection passed max_output_bytes; messages not yet "
            "written are stored for your next login\"}\n";
        if (evbuffer_add(out, why, sizeof(why) - 1) == 0)
            s->out_added += sizeof(why) - 1;
    }
    if (frozen)
        evbuffer_freeze(out, 1);
    if (head)
        evbuffer_free(head);
    session_close_after_flush(s, "slow reader");
}

int session_send_line(struct session *s, const char *line, size_t len)
{
    if (s->dead || s->cut_off)
        return CHATD_ECLOSED;
    struct server *srv = s->server;
    if (!session_bev(s))
        return CHATD_ENOMEM;
    struct evbuffer *out = bufferevent_get_output(s->bev);
    if (evbuffer_add(out, line, len) < 0) {
        /* A client that silently misses a line (an answer, a message) would wait for
         * it: it sees its connection end instead. */
        log_error("session %llu (%s) disconnected: out of memory", (unsigned long long)s->id,
                  s->peer);
        session_close(s, "out of memory");
        return CHATD_ENOMEM;
    }
    srv->metrics.bytes_out += len;
    s->out_added += len;
    output_queue(s);
    size_t backlog = session_output_pending(s);
    if (backlog > (size_t)srv->cfg->max_output_bytes) {
        cut_off_slow_reader(s, backlog);
        return CHATD_ECLOSED;
    }
    return 0;
}

int session_send(struct session *s, const json_t *obj)
{
    if (s->dead)
        return CHATD_ECLOSED;
    size_t len = session_format_line(s->server, obj);
    if (len == 0)
        return CHATD_EINVAL;
    return session_send_line(s, s->server->out.data, len);
}

void session_send_error(struct session *s, const char *word, json_t *id, const char *request,
                        const char *reason)
{
    metrics_generic_error(&s->server->metrics, word);
    json_t *msg = json_pack("{ssss}", "cmd", "error", "result", word);
    if (!msg) {
        /* Never left unanswered: the client sees its connection end instead. */
        log_error("session %llu (%s) disconnected: out of memory", (unsigned long long)s->id,
                  s->peer);
        session_close(s, "out of memory");
        return;
    }
    if (request)
        json_object_set_new(msg, "request", json_string(request));
    if (reason)
        json_object_set_new(msg, "reason", json_string(reason));
    if (id)
        json_object_set(msg, "id", id);
    session_send(s, msg);
    json_decref(msg);
}

/* Sets the frame buffer's size, keeping the gauge of all of them. */
static void input_resized(struct session *s, char *in, size_t cap)
{
    s->server->metrics.input_buffer_bytes += cap;
    s->server->metrics.input_buffer_bytes -= s->in_cap;
    s->in = in;
    s->in_cap = cap;
}

/* Read from the transport into the session's frame buffer. Returns how many bytes came.
 * The frame buffer holds at most one partial frame plus what one read brings, because
 * complete frames are consumed as they are found; it never grows past the frame limit
 * plus one byte (or one read, if that is more), the most needed to finish a frame or
 * find it too large. A read that fills less than it could
 * took everything the kernel had: the next call waits for the read event instead of
 * making a system call to hear "nothing yet". */
static size_t fill_input(struct session *s)
{
    if (s->socket_drained || s->read_eof)
        return 0;
    if (s->in_start > 0) {
        memmove(s->in, s->in + s->in_start, s->in_end - s->in_start);
        s->in_end -= s->in_start;
        s->in_start = 0;
    }
    size_t most = s->framer.max_frame + 1 > READ_CHUNK ? s->framer.max_frame + 1 : READ_CHUNK;
    if (s->in_cap - s->in_end < READ_CHUNK && s->in_cap < most) {
        size_t cap = s->in_cap ? s->in_cap : READ_CHUNK;
        while (cap - s->in_end < READ_CHUNK && cap < most)
            cap *= 2;
        if (cap > most)
            cap = most;
        char *grown = realloc(s->in, cap);
        if (!grown) {
            log_error("session %llu (%s): out of memory for its input", (unsigned long long)s->id,
                      s->peer);
            session_close(s, "out of memory");
            return 0;
        }
        input_resized(s, grown, cap);
    }
    size_t room = s->in_cap - s->in_end;
    ssize_t n = s->transport->read(s, s->in + s->in_end, room);
    if (n > 0) {
        s->in_end += (size_t)n;
        s->server->metrics.bytes_in += (uint64_t)n;
        s->socket_drained = (size_t)n < room;
        return (size_t)n;
    }
    if (n == 0) {
        s->read_eof = 1;
        reading_off(s);
    } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        s->socket_drained = 1;
    } else {
        session_close(s, strerror(errno));
    }
    return 0;
}

/* Replies to a client's own requests are throttled, not punished: from the pause level
 * (output_pause_bytes, at most half the output limit) the session stops taking requests
 * until the client has read half of that (session_wrote resumes it). Only output the
 * client did not ask for (pushes) can reach the limit. */
static int output_has_room(struct session *s)
{
    size_t pending = session_output_pending(s);
    if (pending < session_output_pause(s->server->cfg))
        return 1;
    s->output_paused = 1;
    return 0;
}

void session_wrote(struct session *s)
{
    if (s->dead || s->closing)
        return;
    size_t pending = session_output_pending(s);
    stream_session_wrote(s);
    if (pending > 0 && !s->write_armed)
        write_wait(s, 1);
    else if (pending == 0 && s->write_armed)
        write_wait(s, 0);
    if (pending == 0)
        output_emptied(s);
    if (pending == 0 && s->user)
        flush_watch_flushed(s->server, s->user->name);
    if (s->output_paused && pending <= session_output_resume(s->server->cfg)) {
        s->output_paused = 0;
        session_process(s);
    }
}

void session_io_wrote(struct session *s)
{
    if (s->dead)
        return;
    /* Progress: the write (or flush) timeout starts again. */
    if (s->write_armed)
        bufferevent_enable(s->bev, EV_WRITE);
    if (!s->closing)
        session_wrote(s);
    else if (session_output_pending(s) == 0)
        session_close(s, "flushed");
}

/* The write event sent part of a backlog (the low watermark is the level at which a
 * paused session resumes, so this comes in time for it). */
static void on_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    session_wrote(arg);
}

/* Give back input memory a session does not need now: all of it once the buffer is
 * empty, and the unused part while the client's unread replies hold its requests back,
 * which can last as long as the client likes. (A session waiting for its own request
 * keeps its buffer: it reads on in a moment.) */
static void input_release(struct session *s)
{
    size_t pending = s->in_end - s->in_start;
    if (s->in && pending == 0) {
        free(s->in);
        input_resized(s, NULL, 0);
        s->in_start = s->in_end = 0;
    } else if (s->output_paused && pending < s->in_cap) {
        memmove(s->in, s->in + s->in_start, pending);
        char *fitted = realloc(s->in, pending);
        input_resized(s, fitted ? fitted : s->in, pending);
        s->in_start = 0;
        s->in_end = pending;
    }
}

/* The rest of a stream after a frame too large or a byte that cannot start a value
 * cannot be resynchronised: say which, then close. */
static void refuse_stream(struct session *s, enum framer_status st)
{
    if (st == FRAMER_TOO_LARGE) {
        session_send_error(s, "frame_too_large", NULL, NULL, NULL);
        session_close_after_flush(s, "frame too large");
    } else {
        session_send_error(s, "bad_json", NULL, NULL, "a JSON value cannot start here");
        session_close_after_flush(s, "bad JSON");
    }
}

/* With an I/O thread, which frames and parses: take its next frame and dispatch it, or
 * learn why none waits (the end, an error, a begun frame). Returns 0 when none did. */
static int take_parsed(struct session *s)
{
    struct io_input in;
    enum framer_status st = io_conn_next(s->io, &in);
    s->server->metrics.bytes_in += in.bytes;
    if (st == FRAMER_READY) {
        s->partial_since_ms = 0;
        dispatch_parsed(s, &in.frame->parsed);
    } else if (st != FRAMER_NEED_MORE) {
        refuse_stream(s, st);
    } else if (in.error) {
        char why[160];
        io_conn_error_text(s->io, in.error, why, sizeof(why));
        session_close(s, why);
    } else if (in.ended) {
        s->read_eof = 1;
        reading_off(s);
    } else if (in.partial) {
        session_frame_waits(s);
    }
    io_frame_free(in.frame);
    return st != FRAMER_NEED_MORE;
}

static void session_process(struct session *s)
{
    struct server *srv = s->server;
    s->in_process = 1;
    s->socket_drained = 0;
    int input_used_up = 0;
    if (s->parked && s->n_inflight == 1)
        dispatch_parked(s);
    while (!s->busy && !s->closing && !srv->stopping && output_has_room(s)) {
        if (s->io) {
            if (take_parsed(s))
                continue;
            input_used_up = 1;
            break;
        }
        struct frame frame;
        const char *pending = s->in ? s->in + s->in_start : "";
        enum framer_status st = framer_next(&s->framer, pending, s->in_end - s->in_start, &frame);
        s->in_start += frame.consumed;
        if (st == FRAMER_READY) {
            s->partial_since_ms = 0;
            dispatch_frame(s, frame.data, frame.len);
        } else if (st == FRAMER_NEED_MORE) {
            if (fill_input(s) > 0)
                continue;
            input_used_up = 1;
            if (s->in_end > s->in_start && !s->read_eof)
                session_frame_waits(s);
            if (s->read_eof && s->in_end > s->in_start) {
                /* The end of the stream ends a bare number (answered bad_request);
                 * anything else left over is an unfinished value, which the parser
                 * reports as bad JSON. */
                const char *rest = s->in + s->in_start;
                size_t n = s->in_end - s->in_start;
                s->in_start = s->in_end;
                framer_init(&s->framer, (size_t)srv->cfg->max_frame_bytes);
                dispatch_frame(s, rest, n);
            }
            break;
        } else {
            refuse_stream(s, st);
        }
    }
    s->in_process = 0;
    hangup_watch(s);
    if (s->busy || s->output_paused || s->closing || s->dead)
        reading_off(s);
    else
        reading_on(s);
    input_release(s);
    /* After the client's end of stream, close once every request it sent is answered;
     * a pause for output room is not the end. */
    if (!s->n_inflight && !s->closing && ((s->read_eof && input_used_up) || srv->stopping))
        session_close_after_flush(s, srv->stopping ? "server stopping" : "client closed");
}

void session_request_done(struct server *srv, chatd_session_id id)
{
    struct session *s = session_find(srv, id);
    if (!s)
        return;
    /* While a request that is not pipelined runs, it is the only one: it is this one. */
    s->serial = 0;
    s->busy = s->parked || s->n_inflight >= (unsigned)srv->cfg->max_pipelined;
    if (s->in_process)
        return; /* the read loop up the stack goes on by itself */
    /* Read on from a fresh callback, not from inside the plugin that just replied. */
    event_active(s->read_ev, EV_READ, 0);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct session *s = arg;
    if (s->dead)
        return;
    if ((what & EV_TIMEOUT) && (s->busy || s->n_inflight || !s->reading)) {
        reading_off(s); /* not idle: a request is in flight, or reading is paused */
        return;
    }
    if (what & EV_TIMEOUT) {
        log_info("session %llu (%s) idle for %llds, disconnected", (unsigned long long)s->id,
                 s->peer, (long long)s->server->cfg->idle_timeout_s);
        s->server->metrics.disconnects_idle++;
        session_close(s, "idle timeout");
        return;
    }
    session_process(s);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct session *s = arg;
    if (s->transport->on_bev_event && s->transport->on_bev_event(s, what))
        return;
    /* The rest is about output. */
    if (what & BEV_EVENT_TIMEOUT) {
        session_close(s, "client did not read its last replies in time");
    } else if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
        session_close(s, strerror(EVUTIL_SOCKET_ERROR()));
    }
}

/* Refuse a connection over a limit with words the client can understand. */
static void refuse(const struct transport *transport, evutil_socket_t fd, const char *result,
                   int64_t retry_after_ms, const char *reason)
{
    if (transport->refuse) {
        transport->refuse(fd, result, retry_after_ms, reason);
    } else {
        char line[192];
        int n = retry_after_ms > 0
                    ? snprintf(line, sizeof(line),
                               "{\"cmd\":\"error\",\"result\":\"%s\",\"retry_after_ms\":%lld,"
                               "\"reason\":\"%s\"}\n",
                               result, (long long)retry_after_ms, reason)
                    : snprintf(line, sizeof(line),
                               "{\"cmd\":\"error\",\"result\":\"%s\",\"reason\":\"%s\"}\n", result,
                               reason);
        ssize_t ignored = send(fd, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1,
                               MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)ignored;
    }
    evutil_closesocket(fd);
}

int session_refuse_if_full(struct server *srv, const struct transport *transport,
                           evutil_socket_t fd, const char *peer)
{
    if (!srv->stopping && srv->n_sessions + srv->proxy.n < (size_t)srv->cfg->max_connections)
        return 0;
    srv->metrics.connections_refused++;
    refuse(transport, fd, "busy", 0, "too many connections");
    log_warn("refused %s: max_connections reached", peer);
    return 1;
}

void session_accept(struct server *srv, const struct transport *transport, evutil_socket_t fd,
                    const struct sockaddr *addr, int socklen)
{
    (void)socklen;
    char peer[64];
    session_describe_peer(addr, peer, sizeof(peer));
    if (session_refuse_if_full(srv, transport, fd, peer))
        return;
    struct rate_key source;
    rate_key_address(&source, addr);
    const char *over = NULL;
    int counted = 0;
    int64_t wait =
        ratelimit_connection_open(srv, &source, !transport->rate_at_upgrade, &over, &counted);
    if (wait > 0) {
        refuse(transport, fd, "rate_limited", wait, over);
        /* Only at debug: a flood of connections must not become a flood of log lines
         * (chatd_rate_limited_total counts them). */
        log_debug("refused %s: %s", peer, over);
        return;
    }
    /* Replies and pushes are small: without this, a receiver's delayed ACK can hold
     * one back for up to 40 ms. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    /* With I/O threads, TCP and TLS sessions read and write on them. */
    if (transport == &transport_tcp && srv->io)
        transport = &transport_tcp_io;
    else if (transport == &transport_tls && srv->io)
        transport = &transport_tls_io;
    struct session *s = calloc(1, sizeof(*s));
    if (s) {
        s->server = srv;
        s->transport = transport;
        s->id = srv->next_session_id + 1;
        s->fd = fd;
    }
    /* The transport owns (and closes) fd once open, and closes it when it fails. */
    if (!s || transport->open(s, fd, on_readable) < 0) {
        if (!s)
            evutil_closesocket(fd);
        if (counted)
            ratelimit_connection_closed(srv, &source);
        free(s);
        log_error("cannot accept %s: out of memory", peer);
        return;
    }
    s->source = source;
    s->counted = counted;
    srv->next_session_id = s->id;
    srv->metrics.connections_accepted++;
    memcpy(s->peer, peer, sizeof(s->peer));
    framer_init(&s->framer, (size_t)srv->cfg->max_frame_bytes);
    HASH_ADD(hh, srv->sessions, id, sizeof(s->id), s);
    srv->n_sessions++;

    if (s->bev)
        output_setup(s);
    if (session_deadlines_start(s) < 0) {
        log_error("cannot accept %s: out of memory", peer);
        session_close(s, "out of memory");
        return;
    }
    reading_on(s);
    log_debug("session %llu accepted from %s (%s)", (unsigned long long)s->id, peer,
              transport->name);
}

void session_shed_idle(struct session *s)
{
    if (s->closing || s->dead || s->write_armed || s->flush.prev || session_output_pending(s) > 0)
        return;
    if (s->bev && s->transport->output_new) {
        bufferevent_free(s->bev);
        s->bev = NULL;
    }
    if (s->hangup_ev && !s->busy) {
        event_free(s->hangup_ev);
        s->hangup_ev = NULL;
    }
}

static void session_free(struct server *srv, struct session *s)
{
    users_unbind(srv, s);
    output_unqueue(s);
    if (s->counted)
        ratelimit_connection_closed(srv, &s->source);
    HASH_DEL(srv->sessions, s);
    srv->n_sessions--;
    /* Before the transport's close: with an I/O thread, that closes the socket. */
    if (s->hangup_ev)
        event_free(s->hangup_ev);
    if (s->transport->close)
        s->transport->close(s);
    event_free(s->read_ev);
    session_deadlines_free(s);
    if (s->bev)
        bufferevent_free(s->bev);
    free(s->in);
    input_resized(s, NULL, 0);
    free(s);
}

/* The reaper: frees sessions closed since it last ran. */
void session_reap(struct server *srv)
{
    while (srv->dead) {
        struct session *s = srv->dead;
        srv->dead = s->next_dead;
        session_free(srv, s);
    }
    server_session_gone(srv);
}

void session_free_all(struct server *srv)
{
    struct session *s, *tmp;
    HASH_ITER (hh, srv->sessions, s, tmp) {
        if (!s->dead)
            session_close(s, "server stopped");
    }
    session_reap(srv);
}

void session_begin_stop(struct server *srv)
{
    struct session *s, *tmp;
    HASH_ITER (hh, srv->sessions, s, tmp) {
        if (!s->n_inflight)
            session_close_after_flush(s, "server stopping");
    }
}
