/* io_threads.c - the I/O threads and their connections (see io_threads.h).
 *
 * A connection's thread reads its socket into a frame buffer of its own, cuts it into
 * frames and parses each (request_parse.c) onto a bounded queue of parsed frames that
 * the loop takes from; the frame buffer and its framer are the thread's alone. A
 * WebSocket's thread first decodes the frames it reads (ws_stream.c) into lines in that
 * buffer, and turns the lines the loop hands over into messages as it writes them.
 *
 * Each thread has one mutex guarding its todo list (connections the loop changed), its
 * outbox (connections with something to report to the loop) and the shared fields of
 * its connections. Both lists are intrusive, so neither side allocates to talk to the
 * other; each is woken once per batch: the loop activates the thread's wake event
 * when the todo list goes from empty to not empty, the thread activates its drain event
 * on the loop base when the outbox does. A connection belongs to its thread, which frees
 * it once the loop has released it; the loop never touches it after that, and items
 * reach the loop as session ids. */
#define _GNU_SOURCE /* sched_getaffinity */
#include "io_threads.h"

#include "io_tls.h"
#include "log.h"
#include "request_parse.h"
#include "server.h"
#include "thread_name.h"
#include "transport.h"
#include "ws_codec.h"
#include "ws_stream.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* How much one read takes from the socket, as the loop's own reads do. */
#define IO_READ_CHUNK       16384
#define IO_THREADS_AUTO_MAX 16
/* The queue of parsed frames waiting for the loop: the thread reads only while it holds
 * fewer than IO_QUEUE_FRAMES, and frames only while they add up to less than
 * IO_QUEUE_BYTES. Twice the default max_pipelined, so the thread parses the next batch
 * of a pipelining client while the loop works on this one; one read's worth of bytes,
 * the read-ahead the thread held before it parsed (docs/architecture.md). */
#define IO_QUEUE_FRAMES 32
#define IO_QUEUE_BYTES  IO_READ_CHUNK
/* How long a released WebSocket may take to write its last messages and close frame. */
#define IO_WS_LINGER_S 5
/* A TLS connection's write encrypts under the thread's lock: at most this much per turn
 * of the thread's loop, so the loop never waits on the lock for more than a few
 * records' encryption (the write event comes again while the socket takes more). */
#define IO_TLS_WRITE_BUDGET (4 * 16384)

struct io_thread {
    struct server *srv;
    pthread_t thread;
    int started;
    struct event_base *base;
    struct event *wake;  /* on base: the todo list has work */
    struct event *drain; /* on the loop's base: the outbox has reports */
    pthread_mutex_t lock;
    /* Under lock: */
    struct io_conn *todo, *todo_tail;
    struct io_conn *outbox; /* doubly linked: a released connection leaves it at once */
    int stopping;
    /* The loop's own: */
    size_t n_conns;
    /* What its connections' raw buffers hold, for chatd_input_buffer_bytes (any thread). */
    atomic_size_t input_bytes;
    /* The thread's own: a WebSocket read's bytes and the lines decoded from them, on
     * their way into a connection's raw buffer; released WebSockets writing their last
     * bytes (freed with the thread). */
    struct evbuffer *ws_in, *ws_lines;
    struct io_conn *lingering;
};

struct io_threads {
    struct io_thread *threads;
    size_t n;
};

struct io_conn {
    struct io_thread *t;
    chatd_session_id id;
    evutil_socket_t fd;
    /* The thread's own (write_ev made at the first backlog): */
    unsigned char frames_pending; /* framing stopped for room: frames may wait in raw */
    unsigned char peer_closed;    /* recv said the stream ended */
    unsigned char established;    /* plain, or the TLS handshake is done */
    unsigned char read_ev_on;     /* read_ev is added: for input, or for TLS */
    struct io_conn_tls *tls;      /* NULL: plain recv and writev */
    struct io_conn_ws *ws;        /* NULL: the socket carries lines, not WebSocket frames */
    struct event *read_ev, *write_ev;
    /* The bytes read and not yet framed (freed when empty), and their framer. */
    char *raw;
    size_t raw_start, raw_end, raw_cap;
    struct framer framer;
    /* Under t->lock (write_armed, read_armed: set by the thread only). Parsed frames for
     * the loop, oldest first, and their count and frame bytes. */
    struct io_frame *queue, *queue_tail;
    size_t queued, queued_bytes;
    uint64_t bytes_read; /* since the loop last took input */
    /* Made when needed and freed when empty, so an idle session holds none. */
    struct evbuffer *out; /* handed over, not yet written; the thread writes from its head */
    unsigned write_armed : 1;
    unsigned read_armed : 1; /* the thread reads for the loop */
    unsigned want_input : 1, watch_writes : 1, released : 1, on_todo : 1;
    unsigned eof : 1; /* the stream ended behind the last queued frame */
    unsigned
        input_done : 1;   /* nothing more is read: the end, an error, or a frame it cannot pass */
    unsigned partial : 1; /* the queue empty, a begun frame waits for its rest */
    unsigned failed : 1;  /* a write failed: nothing more is written */
    int read_error, write_error;
    unsigned report; /* TRANSPORT_IO_* bits waiting in the outbox */
    struct io_conn *todo_next;
    struct io_conn *out_next, **out_prev;
};

/* A TLS connection's own (io_tls.h): allocated apart, so a plain one costs a pointer. */
struct io_conn_tls {
    SSL *ssl;
    struct event *handshake_timer; /* restarted by each step of the handshake's reading */
    struct timeval handshake_timeout;
    unsigned char handshake_started; /* the thread has begun the handshake */
    unsigned char handshake_wait;    /* enum io_tls_wait: what the handshake waits for */
    unsigned char read_waits_write;  /* a read cut short waits for the socket writable */
    unsigned char write_waits_read;  /* a write cut short waits for the socket readable */
    /* Under t->lock: */
    size_t retry;                 /* the record TLS must be given again, at the head of out */
    char error_text[120];         /* why TLS failed, for the log; empty when it did not */
    const char *version, *cipher; /* once established */
};

/* An upgraded WebSocket's own (ws_stream.h): allocated apart, as TLS's. The thread's
 * alone, but for close_code. */
struct io_conn_ws {
    struct ws_stream *stream;
    /* Frames for the socket, which the thread writes instead of out: the lines of out
     * become messages while it holds less than WS_WIRE_MAX; pongs and a close join at
     * once. Made when needed, freed when empty. */
    struct evbuffer *wire;
    struct evbuffer *early; /* read on the loop after the upgrade request, until started */
    struct event *timer;    /* the keepalive's, then (released) the linger's deadline */
    struct timeval ping_interval, pong_timeout;
    unsigned char started;   /* the thread has taken the connection up */
    unsigned char lingering; /* released, writing its last frames */
    uint16_t close_code;     /* under t->lock: set at release */
    struct io_conn *linger_next, **linger_prev;
};

static size_t length(const struct evbuffer *b)
{
    return b ? evbuffer_get_length(b) : 0;
}

static void free_if_empty(struct evbuffer **b)
{
    if (*b && evbuffer_get_length(*b) == 0) {
        evbuffer_free(*b);
        *b = NULL;
    }
}

int io_threads_wanted(const struct config *cfg)
{
    if (cfg->io_threads >= 0)
        return (int)cfg->io_threads;
    /* The cores chatd may run on (taskset, a cgroup's cpuset, systemd's CPUAffinity),
     * not all the machine has. One core: a thread would only share it with the loop,
     * at the cost of hand-overs. */
    cpu_set_t allowed;
    long n =
        (sched_getaffinity(0, sizeof(allowed), &allowed) == 0 ? CPU_COUNT(&allowed)
                                                              : sysconf(_SC_NPROCESSORS_ONLN)) -
        1;
    if (n < 0)
        n = 0;
    return n > IO_THREADS_AUTO_MAX ? IO_THREADS_AUTO_MAX : (int)n;
}

/* Under t->lock: queue a report for the loop. */
static void post(struct io_conn *c, unsigned what)
{
    struct io_thread *t = c->t;
    if (c->released)
        return;
    c->report |= what;
    if (c->out_prev)
        return;
    int was_empty = t->outbox == NULL;
    c->out_next = t->outbox;
    c->out_prev = &t->outbox;
    if (t->outbox)
        t->outbox->out_prev = &c->out_next;
    t->outbox = c;
    if (was_empty)
        event_active(t->drain, EV_READ, 0);
}

static void outbox_unlink(struct io_conn *c)
{
    if (!c->out_prev)
        return;
    *c->out_prev = c->out_next;
    if (c->out_next)
        c->out_next->out_prev = c->out_prev;
    c->out_next = NULL;
    c->out_prev = NULL;
}

/* Under t->lock: the thread has something to do for c. */
static void todo_add(struct io_conn *c)
{
    struct io_thread *t = c->t;
    if (c->on_todo)
        return;
    c->on_todo = 1;
    c->todo_next = NULL;
    int was_empty = t->todo == NULL;
    if (t->todo_tail)
        t->todo_tail->todo_next = c;
    else
        t->todo = c;
    t->todo_tail = c;
    if (was_empty)
        event_active(t->wake, EV_READ, 0);
}

/* The loop: the reports of one thread, at most as many as were there when it began (a
 * busy thread may add more meanwhile; they get a callback of their own). */
static void on_drain(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct io_thread *t = arg;
    pthread_mutex_lock(&t->lock);
    size_t n = 0;
    for (struct io_conn *c = t->outbox; c; c = c->out_next)
        n++;
    while (n-- > 0 && t->outbox) {
        struct io_conn *c = t->outbox;
        outbox_unlink(c);
        chatd_session_id id = c->id;
        unsigned report = c->report;
        int error = c->write_error;
        c->report = 0;
        pthread_mutex_unlock(&t->lock);
        transport_io_report(t->srv, id, report, error);
        pthread_mutex_lock(&t->lock);
    }
    if (t->outbox)
        event_active(t->drain, EV_READ, 0);
    pthread_mutex_unlock(&t->lock);
}

void io_frame_free(struct io_frame *f)
{
    if (!f)
        return;
    json_decref(f->parsed.body);
    free(f);
}

/* Sets c's raw buffer, keeping its thread's count of them. */
static void raw_set(struct io_conn *c, char *raw, size_t cap)
{
    atomic_fetch_add_explicit(&c->t->input_bytes, cap, memory_order_relaxed);
    atomic_fetch_sub_explicit(&c->t->input_bytes, c->raw_cap, memory_order_relaxed);
    c->raw = raw;
    c->raw_cap = cap;
}

static void ws_free(struct io_conn_ws *ws)
{
    if (ws->linger_prev) {
        *ws->linger_prev = ws->linger_next;
        if (ws->linger_next)
            ws->linger_next->ws->linger_prev = ws->linger_prev;
    }
    if (ws->timer)
        event_free(ws->timer);
    ws_stream_free(ws->stream);
    if (ws->wire)
        evbuffer_free(ws->wire);
    if (ws->early)
        evbuffer_free(ws->early);
    free(ws);
}

static void conn_free(struct io_conn *c)
{
    if (c->read_ev)
        event_free(c->read_ev);
    if (c->write_ev)
        event_free(c->write_ev);
    if (c->tls && c->tls->handshake_timer)
        event_free(c->tls->handshake_timer);
    if (c->tls && c->tls->ssl)
        io_tls_free(c->tls->ssl, c->established && !c->failed);
    free(c->tls);
    if (c->ws)
        ws_free(c->ws);
    if (c->fd >= 0)
        evutil_closesocket(c->fd);
    while (c->queue) {
        struct io_frame *f = c->queue;
        c->queue = f->next;
        io_frame_free(f);
    }
    free(c->raw);
    raw_set(c, NULL, 0);
    if (c->out)
        evbuffer_free(c->out);
    free(c);
}

/* Under t->lock: the queue takes more parsed frames. */
static int queue_has_room(const struct io_conn *c)
{
    return c->queued < IO_QUEUE_FRAMES && c->queued_bytes < IO_QUEUE_BYTES;
}

/* Under t->lock: the thread should be reading c's socket. */
static int should_read(const struct io_conn *c)
{
    return c->want_input && !c->released && !c->input_done && queue_has_room(c);
}

/* Under t->lock: nothing more can be written; the loop closes the session. */
static void fail(struct io_conn *c, int error)
{
    c->failed = 1;
    c->write_error = error;
    if (c->out)
        evbuffer_drain(c->out, evbuffer_get_length(c->out));
    if (c->ws && c->ws->wire)
        evbuffer_drain(c->ws->wire, evbuffer_get_length(c->ws->wire));
    post(c, TRANSPORT_IO_FAILED);
}

static void on_writable(evutil_socket_t fd, short what, void *arg);
static void write_some(struct io_conn *c);

/* Under t->lock, the thread: add or remove c's events for what it waits for. The read
 * event: while the loop should get input (read_armed: the loop asks for a re-arm when it
 * sees it off), or TLS waits for the socket readable. The write event: while output
 * waits, or TLS waits for the socket writable. The events are the thread's; only the
 * flags are shared. */
static void events_arm(struct io_conn *c)
{
    struct io_conn_tls *tls = c->tls;
    int input = should_read(c);
    int readable =
        input || (tls && (tls->handshake_wait == IO_TLS_WANTS_READ || tls->write_waits_read));
    if (readable && !c->read_ev_on)
        event_add(c->read_ev, NULL);
    else if (!readable && c->read_ev_on)
        event_del(c->read_ev);
    c->read_ev_on = readable;
    c->read_armed = input;
    /* Bytes TLS has decrypted and not handed out do not make the socket readable. */
    if (input && tls && SSL_pending(tls->ssl) > 0)
        event_active(c->read_ev, EV_READ, 0);
    int output = c->established && !c->failed && !(tls && tls->write_waits_read) &&
                 (length(c->out) > 0 || (c->ws && length(c->ws->wire) > 0));
    int writable =
        output || (tls && (tls->handshake_wait == IO_TLS_WANTS_WRITE || tls->read_waits_write));
    if (writable && !c->write_ev)
        c->write_ev = event_new(c->t->base, c->fd, EV_WRITE | EV_PERSIST, on_writable, c);
    if (writable && !c->write_ev) {
        fail(c, ENOMEM);
        writable = 0;
    }
    free_if_empty(&c->out);
    if (c->ws)
        free_if_empty(&c->ws->wire);
    if (writable && !c->write_armed)
        event_add(c->write_ev, NULL);
    else if (!writable && c->write_armed)
        event_del(c->write_ev);
    c->write_armed = writable;
}

/* Under t->lock, the loop: the thread stopped reading; have it read again if it should. */
static void read_rearm(struct io_conn *c)
{
    if (!c->read_armed && should_read(c))
        todo_add(c);
}

/* The thread: a parsed frame (FRAMER_READY) of the len bytes at data, or a mark for a
 * framer status that ends the input; NULL when out of memory. */
static struct io_frame *frame_make(enum framer_status status, const char *data, size_t len)
{
    json_error_t error;
    struct parsed_frame parsed = {0};
    if (status == FRAMER_READY)
        request_parse(data, len, &parsed, &error);
    size_t text = parsed.bad_json ? strlen(parsed.bad_json) + 1 : 0;
    struct io_frame *f = malloc(sizeof(*f) + text);
    if (!f) {
        json_decref(parsed.body);
        return NULL;
    }
    f->next = NULL;
    f->status = status;
    f->parsed = parsed;
    if (text) {
        memcpy(f->bad_json, parsed.bad_json, text);
        f->parsed.bad_json = f->bad_json;
    }
    return f;
}

/* The thread: room in raw for one read, as session.c's fill_input makes it (at most one
 * partial frame plus one read). -1 when out of memory. */
static int raw_room(struct io_conn *c)
{
    if (c->raw_start > 0) {
        memmove(c->raw, c->raw + c->raw_start, c->raw_end - c->raw_start);
        c->raw_end -= c->raw_start;
        c->raw_start = 0;
    }
    size_t max_frame = c->framer.max_frame;
    size_t most = max_frame + 1 > IO_READ_CHUNK ? max_frame + 1 : IO_READ_CHUNK;
    if (c->raw_cap - c->raw_end >= IO_READ_CHUNK || c->raw_cap >= most)
        return 0;
    size_t cap = c->raw_cap ? c->raw_cap : IO_READ_CHUNK;
    while (cap - c->raw_end < IO_READ_CHUNK && cap < most)
        cap *= 2;
    char *grown = realloc(c->raw, cap < most ? cap : most);
    if (!grown)
        return -1;
    raw_set(c, grown, cap < most ? cap : most);
    return 0;
}

/* The thread: cut what raw holds into parsed frames while the queue has room, queue
 * them for the loop with what the read brought (nread bytes, or the read's error), and
 * tell the loop once per batch: when the queue goes from empty to not empty, the input
 * ends, or a begun frame starts to wait. */
static void frame_and_queue(struct io_conn *c, size_t nread, int error)
{
    struct io_thread *t = c->t;
    pthread_mutex_lock(&t->lock);
    size_t room = IO_QUEUE_FRAMES - c->queued;
    size_t room_bytes = IO_QUEUE_BYTES - c->queued_bytes;
    int finished = c->input_done, done = finished || !queue_has_room(c);
    pthread_mutex_unlock(&t->lock);
    struct io_frame *head = NULL, *last = NULL;
    size_t n = 0, bytes = 0;
    int stop = error != 0, ended = 0;
    c->frames_pending = done && !finished;
    while (!done && !stop) {
        if (n >= room || bytes >= room_bytes) {
            c->frames_pending = 1;
            break;
        }
        struct frame frame;
        const char *pending = c->raw ? c->raw + c->raw_start : "";
        enum framer_status st = framer_next(&c->framer, pending, c->raw_end - c->raw_start, &frame);
        c->raw_start += frame.consumed;
        struct io_frame *f = NULL;
        if (st == FRAMER_NEED_MORE) {
            if (!c->peer_closed)
                break;
            /* As the loop does at the end: a bare number ends there; anything else left
             * over is an unfinished value, which the parser reports as bad JSON. */
            stop = ended = 1;
            if (c->raw_end == c->raw_start)
                break;
            frame.data = c->raw + c->raw_start;
            frame.len = c->raw_end - c->raw_start;
            c->raw_start = c->raw_end;
            st = FRAMER_READY;
        }
        f = frame_make(st, frame.data, frame.len);
        if (!f) {
            error = ENOMEM;
            break;
        }
        /* After these the stream cannot be resynchronised, or the session ends. */
        if (st != FRAMER_READY || f->parsed.bad_json)
            stop = 1;
        if (last)
            last->next = f;
        else
            head = f;
        last = f;
        n++;
        bytes += frame.len;
    }
    pthread_mutex_lock(&t->lock);
    int was_empty = c->queued == 0, was_partial = c->partial;
    if (head) {
        if (c->queue_tail)
            c->queue_tail->next = head;
        else
            c->queue = head;
        c->queue_tail = last;
    }
    c->queued += n;
    c->queued_bytes += bytes;
    c->bytes_read += nread;
    if (error)
        c->read_error = error;
    if (stop || error)
        c->input_done = 1;
    if (ended)
        c->eof = 1;
    c->partial = !c->input_done && !c->frames_pending && c->raw_end > c->raw_start;
    if ((was_empty && n > 0) || ended || error || (c->partial && !was_partial))
        post(c, TRANSPORT_IO_INPUT);
    events_arm(c);
    pthread_mutex_unlock(&t->lock);
}

/* The thread, after framing: keep in raw only what is left (a begun frame, or frames
 * waiting for room), so an idle connection holds no buffer; what is left of a read into
 * the thread's stack (`borrowed`) moves to a buffer of its own. -1 when out of memory. */
static int raw_keep_rest(struct io_conn *c, int borrowed)
{
    size_t rest = c->raw_end - c->raw_start;
    char *kept = NULL;
    if (rest > 0 && !borrowed)
        return 0;
    if (rest > 0 && (kept = malloc(rest)) != NULL)
        memcpy(kept, c->raw + c->raw_start, rest);
    if (!borrowed)
        free(c->raw);
    else
        c->raw_cap = 0; /* the thread's stack, never counted */
    raw_set(c, kept, kept ? rest : 0);
    c->raw_start = 0;
    c->raw_end = kept ? rest : 0;
    return rest > 0 && !kept ? -1 : 0;
}

/* The thread: frame what waited for room in the queue. */
static void frame_pending(struct io_conn *c)
{
    frame_and_queue(c, 0, 0);
    if (raw_keep_rest(c, 0) < 0)
        frame_and_queue(c, 0, ENOMEM);
}

/* How a connection reads: recv, or SSL_read. Bytes read, 0 at the end, -1 with errno. */
static ssize_t conn_recv(struct io_conn *c, void *buf, size_t len)
{
    struct io_conn_tls *tls = c->tls;
    if (!tls)
        return recv(c->fd, buf, len, 0);
    char reason[sizeof(tls->error_text)];
    enum io_tls_wait wait;
    ssize_t n = io_tls_read(tls->ssl, buf, len, &wait, reason, sizeof(reason));
    tls->read_waits_write = wait == IO_TLS_WANTS_WRITE;
    if (wait == IO_TLS_FAILED) {
        int error = errno;
        pthread_mutex_lock(&c->t->lock);
        snprintf(tls->error_text, sizeof(tls->error_text), "%s", reason);
        pthread_mutex_unlock(&c->t->lock);
        errno = error;
    }
    return n;
}

/* Under t->lock: how a connection writes from the head of its output (a WebSocket's:
 * of its frames): writev, or SSL_write. Bytes written, or -1 with errno (EAGAIN: the socket takes
 * no more). */
static ssize_t conn_send(struct io_conn *c)
{
    struct io_conn_tls *tls = c->tls;
    struct evbuffer *from = c->ws ? c->ws->wire : c->out;
    if (!tls)
        return evbuffer_write(from, c->fd);
    enum io_tls_wait wait;
    ssize_t n = io_tls_write(tls->ssl, from, IO_TLS_WRITE_BUDGET, &tls->retry, &wait,
                             tls->error_text, sizeof(tls->error_text));
    tls->write_waits_read = wait == IO_TLS_WANTS_READ;
    return n;
}

/* The thread, after a read that returned n (error: its errno, unless only "nothing
 * now"): frame what came, keep the rest (`borrowed`: raw was the thread's stack), and
 * wait for the socket writable if TLS's read needs it. */
static void read_done(struct io_conn *c, ssize_t n, int error, int borrowed)
{
    if (n >= 0 || error)
        frame_and_queue(c, n > 0 ? (size_t)n : 0, error);
    if (raw_keep_rest(c, borrowed) < 0)
        frame_and_queue(c, 0, ENOMEM);
    if (c->tls && c->tls->read_waits_write) {
        pthread_mutex_lock(&c->t->lock);
        events_arm(c);
        pthread_mutex_unlock(&c->t->lock);
    }
}

/* The thread: the client's WebSocket bytes in `in` (all taken): its messages, as lines,
 * after what raw holds; pongs and a close to its frames. Returns 0, or -1 when out of
 * memory. */
static int ws_decode(struct io_conn *c, struct evbuffer *in)
{
    struct io_thread *t = c->t;
    struct io_conn_ws *ws = c->ws;
    if (!ws->wire && !(ws->wire = evbuffer_new()))
        return -1;
    unsigned seen = ws_stream_input(ws->stream, in, t->ws_lines, ws->wire);
    if (seen & WS_STREAM_PONG)
        evtimer_add(ws->timer, &ws->ping_interval);
    if (seen & WS_STREAM_ENDED)
        c->peer_closed = 1; /* the session reads what came before, then ends */
    if (seen & WS_STREAM_UNREAD) {
        pthread_mutex_lock(&t->lock);
        post(c, TRANSPORT_IO_UNREAD);
        pthread_mutex_unlock(&t->lock);
    }
    size_t n = evbuffer_get_length(t->ws_lines);
    if (n == 0) {
        /* Frames without a message (a pong, a ping, part of a message) are activity
         * all the same: the loop's idle timeout starts again when it hears of input. */
        pthread_mutex_lock(&t->lock);
        post(c, TRANSPORT_IO_INPUT);
        pthread_mutex_unlock(&t->lock);
        return 0;
    }
    size_t rest = c->raw_end - c->raw_start;
    if (rest + n > c->raw_cap || c->raw_start > 0) {
        /* Lines are whole: raw holds only frames that wait for room in the queue. */
        char *grown = malloc(rest + n);
        if (!grown) {
            evbuffer_drain(t->ws_lines, n);
            return -1;
        }
        if (rest > 0)
            memcpy(grown, c->raw + c->raw_start, rest);
        free(c->raw);
        raw_set(c, grown, rest + n);
        c->raw_start = 0;
        c->raw_end = rest;
    }
    evbuffer_remove(t->ws_lines, c->raw + c->raw_end, n);
    c->raw_end += n;
    return 0;
}

/* The thread: read a WebSocket's frames and frame the lines they carry. */
static void ws_read(struct io_conn *c)
{
    char bytes[IO_READ_CHUNK];
    ssize_t n = conn_recv(c, bytes, sizeof(bytes));
    int error = n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR ? errno : 0;
    if (n > 0) {
        evbuffer_add_reference(c->t->ws_in, bytes, (size_t)n, NULL, NULL);
        if (ws_decode(c, c->t->ws_in) < 0)
            error = ENOMEM;
    } else if (n == 0) {
        c->peer_closed = 1;
    }
    read_done(c, n, error, 0);
}

/* The thread: the keepalive's timer, or a lingering connection's deadline. */
static void on_ws_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct io_conn *c = arg;
    struct io_conn_ws *ws = c->ws;
    if (ws->lingering) {
        conn_free(c);
        return;
    }
    pthread_mutex_lock(&c->t->lock);
    if (!ws->wire)
        ws->wire = evbuffer_new();
    if (!ws->wire) {
        fail(c, ENOMEM);
    } else if (ws_stream_keepalive(ws->stream, c->read_armed, ws->wire) == WS_KEEPALIVE_DEAD) {
        c->input_done = 1;
        post(c, TRANSPORT_IO_NO_PONG);
    } else {
        evtimer_add(ws->timer, &ws->pong_timeout);
    }
    events_arm(c);
    pthread_mutex_unlock(&c->t->lock);
}

/* The thread, under t->lock: a WebSocket handed over starts: the frames that came with
 * the upgrade are taken, and the keepalive begins. */
static void ws_start(struct io_conn *c)
{
    struct io_conn_ws *ws = c->ws;
    ws->started = 1;
    evtimer_add(ws->timer, &ws->ping_interval);
    if (length(ws->early) == 0)
        return;
    pthread_mutex_unlock(&c->t->lock);
    int error = ws_decode(c, ws->early) < 0 ? ENOMEM : 0;
    evbuffer_free(ws->early);
    ws->early = NULL;
    frame_and_queue(c, 0, error);
    if (raw_keep_rest(c, 0) < 0)
        frame_and_queue(c, 0, ENOMEM);
    pthread_mutex_lock(&c->t->lock);
}

/* The thread, under t->lock: a released connection ends. A WebSocket's last lines and
 * its close frame (going away when the server stops) still go out first, within
 * IO_WS_LINGER_S, unless the server is stopping, when one write is all they get. */
static void conn_end(struct io_conn *c)
{
    struct io_thread *t = c->t;
    struct io_conn_ws *ws = c->ws;
    if (ws && !c->failed && (ws->wire || (ws->wire = evbuffer_new()) != NULL)) {
        if (c->out)
            ws_stream_send_lines(ws->stream, c->out, ws->wire, 1);
        ws_stream_close(ws->stream, ws->close_code, NULL, ws->wire);
        write_some(c);
    }
    if (!ws || c->failed || length(ws->wire) == 0 || t->stopping) {
        pthread_mutex_unlock(&t->lock);
        conn_free(c);
        pthread_mutex_lock(&t->lock);
        return;
    }
    ws->lingering = 1;
    ws->linger_next = t->lingering;
    ws->linger_prev = &t->lingering;
    if (t->lingering)
        t->lingering->ws->linger_prev = &ws->linger_next;
    t->lingering = c;
    struct timeval linger = {IO_WS_LINGER_S, 0};
    evtimer_add(ws->timer, &linger);
    events_arm(c);
}

/* The thread, after a write: a lingering connection (released: `lingering` is the
 * thread's own flag, where `released` is shared) that has written all, or cannot write
 * more, is freed. */
static void linger_check(struct io_conn *c)
{
    if (c->ws && c->ws->lingering && (c->failed || length(c->ws->wire) == 0))
        conn_free(c);
}

/* The thread: read what came for a connection that wants input, and frame it. With
 * nothing left from the last read, it reads into its stack, so a request that comes
 * whole costs no buffer of the connection's. */
static void read_input(struct io_conn *c)
{
    struct io_thread *t = c->t;
    pthread_mutex_lock(&t->lock);
    int wanted = should_read(c);
    if (!wanted)
        events_arm(c);
    pthread_mutex_unlock(&t->lock);
    if (!wanted)
        return;
    if (c->frames_pending) {
        /* Frames read before wait for room: frame them first (the event comes again). */
        frame_pending(c);
        return;
    }
    if (c->ws) {
        ws_read(c);
        return;
    }
    char stack[IO_READ_CHUNK];
    int borrowed = c->raw == NULL;
    if (borrowed) {
        c->raw = stack;
        c->raw_start = c->raw_end = 0;
        c->raw_cap = sizeof(stack);
    } else if (raw_room(c) < 0) {
        frame_and_queue(c, 0, ENOMEM);
        return;
    }
    ssize_t n = conn_recv(c, c->raw + c->raw_end, c->raw_cap - c->raw_end);
    int error = n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR ? errno : 0;
    if (n > 0)
        c->raw_end += (size_t)n;
    else if (n == 0)
        c->peer_closed = 1;
    read_done(c, n, error, borrowed);
}

/* The thread, under t->lock: write what the socket takes (events_arm then waits for
 * room for the rest). */
static void write_some(struct io_conn *c)
{
    size_t framed = 0;
    if (c->failed || !c->established)
        return;
    if (c->ws && length(c->out) > 0 && length(c->ws->wire) < WS_WIRE_MAX) {
        if (!c->ws->wire && !(c->ws->wire = evbuffer_new())) {
            fail(c, ENOMEM);
            return;
        }
        framed = ws_stream_send_lines(c->ws->stream, c->out, c->ws->wire, 0);
    }
    /* Lines taken count as progress even when nothing is left to send: after a close
     * frame they are dropped, and a session flushing them waits for this report. */
    ssize_t n = length(c->ws ? c->ws->wire : c->out) > 0 ? conn_send(c) : 0;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        fail(c, errno);
    else if ((n > 0 || framed > 0) && c->watch_writes)
        post(c, TRANSPORT_IO_WROTE);
}

/* Under t->lock: the handshake failed (why: reason); the loop closes the session. */
static void handshake_fail(struct io_conn *c, const char *reason)
{
    snprintf(c->tls->error_text, sizeof(c->tls->error_text), "%s", reason);
    c->tls->handshake_wait = IO_TLS_NONE;
    c->input_done = 1;
    fail(c, EPROTO);
}

/* The thread: a step of c's handshake, its socket having become readable (`readable`)
 * or writable. Reading restarts the deadline, as the bufferevent's read timeout did:
 * a client is cut off when it stalls, not when it is slow. Once established, the loop
 * hears of it and the thread writes what was handed over meanwhile and reads. */
static void handshake_step(struct io_conn *c, int readable)
{
    struct io_thread *t = c->t;
    struct io_conn_tls *tls = c->tls;
    /* Under the lock: failed shares its word with flags the loop sets. */
    pthread_mutex_lock(&t->lock);
    int failed = c->failed;
    pthread_mutex_unlock(&t->lock);
    if (failed)
        return;
    char reason[sizeof(tls->error_text)];
    enum io_tls_wait wait = io_tls_handshake(tls->ssl, reason, sizeof(reason));
    pthread_mutex_lock(&t->lock);
    if (wait == IO_TLS_FAILED) {
        handshake_fail(c, reason);
    } else if (wait == IO_TLS_NONE) {
        c->established = 1;
        tls->handshake_wait = IO_TLS_NONE;
        event_del(tls->handshake_timer);
        tls->version = SSL_get_version(tls->ssl);
        tls->cipher = SSL_get_cipher_name(tls->ssl);
        post(c, TRANSPORT_IO_CONNECTED);
        write_some(c);
    } else {
        tls->handshake_wait = (unsigned char)wait;
        if (readable)
            event_add(tls->handshake_timer, &tls->handshake_timeout);
    }
    events_arm(c);
    pthread_mutex_unlock(&t->lock);
    /* The client's first request may have come with its last handshake message. */
    if (wait == IO_TLS_NONE)
        read_input(c);
}

static void on_handshake_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct io_conn *c = arg;
    pthread_mutex_lock(&c->t->lock);
    if (!c->established && !c->failed) {
        char reason[64];
        snprintf(reason, sizeof(reason), "not finished within %llds",
                 (long long)c->tls->handshake_timeout.tv_sec);
        handshake_fail(c, reason);
        events_arm(c);
    }
    pthread_mutex_unlock(&c->t->lock);
}

/* The thread: the socket is readable, for the handshake, a TLS write that waits for it,
 * or input. */
static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct io_conn *c = arg;
    if (!c->established) {
        handshake_step(c, 1);
        return;
    }
    if (c->tls && c->tls->write_waits_read) {
        c->tls->write_waits_read = 0;
        pthread_mutex_lock(&c->t->lock);
        write_some(c);
        events_arm(c);
        pthread_mutex_unlock(&c->t->lock);
    }
    /* lingering is the thread's own flag; released is the loop's, under t->lock (a
     * released connection not yet ended is not read: read_input looks under the lock). */
    if (c->ws && c->ws->lingering)
        linger_check(c);
    else
        read_input(c);
}

/* The thread: the socket is writable, for the handshake, a TLS read that waits for it,
 * or output. */
static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct io_conn *c = arg;
    if (!c->established) {
        handshake_step(c, 0);
        return;
    }
    if (c->tls && c->tls->read_waits_write) {
        c->tls->read_waits_write = 0;
        read_input(c);
    }
    pthread_mutex_lock(&c->t->lock);
    write_some(c);
    events_arm(c);
    pthread_mutex_unlock(&c->t->lock);
    linger_check(c);
}

/* The thread: carry out what the loop asked of each connection on the todo list. */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct io_thread *t = arg;
    pthread_mutex_lock(&t->lock);
    while (t->todo) {
        struct io_conn *c = t->todo;
        t->todo = c->todo_next;
        if (!t->todo)
            t->todo_tail = NULL;
        c->on_todo = 0;
        if (c->frames_pending && !c->released) {
            pthread_mutex_unlock(&t->lock);
            frame_pending(c);
            pthread_mutex_lock(&t->lock);
        }
        /* Released meanwhile, it is on the list again, to be ended below. */
        if (c->released && !c->on_todo) {
            conn_end(c);
            continue;
        }
        if (c->released)
            continue;
        if (c->ws && !c->ws->started)
            ws_start(c);
        if (c->tls && !c->tls->handshake_started) {
            /* A new TLS connection: the client speaks first. */
            c->tls->handshake_started = 1;
            c->tls->handshake_wait = IO_TLS_WANTS_READ;
            event_add(c->tls->handshake_timer, &c->tls->handshake_timeout);
        }
        write_some(c);
        events_arm(c);
    }
    if (t->stopping) {
        while (t->lingering) {
            struct io_conn *c = t->lingering;
            pthread_mutex_unlock(&t->lock);
            conn_free(c);
            pthread_mutex_lock(&t->lock);
        }
        event_base_loopbreak(t->base);
    }
    pthread_mutex_unlock(&t->lock);
}

static void *io_thread_main(void *arg)
{
    struct io_thread *t = arg;
    thread_name_set("chatd-io");
    event_base_loop(t->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static void thread_free(struct io_thread *t)
{
    if (t->wake)
        event_free(t->wake);
    if (t->drain)
        event_free(t->drain);
    if (t->base)
        event_base_free(t->base);
    if (t->ws_in)
        evbuffer_free(t->ws_in);
    if (t->ws_lines)
        evbuffer_free(t->ws_lines);
    pthread_mutex_destroy(&t->lock);
}

int io_threads_start(struct server *srv, char *err, size_t errlen)
{
    int n = io_threads_wanted(srv->cfg);
    if (n == 0)
        return 0;
    /* Before any thread parses: jansson seeds its hash function at the first object. */
    json_object_seed(0);
    struct io_threads *io = calloc(1, sizeof(*io));
    if (io)
        io->threads = calloc((size_t)n, sizeof(*io->threads));
    if (!io || !io->threads) {
        free(io);
        snprintf(err, errlen, "io_threads: out of memory");
        return -1;
    }
    srv->io = io;
    for (int i = 0; i < n; i++) {
        struct io_thread *t = &io->threads[i];
        t->srv = srv;
        pthread_mutex_init(&t->lock, NULL);
        io->n++;
        struct event_config *ev_cfg = event_config_new();
        if (ev_cfg) {
            /* As the loop's base: no change list (server.c says why). */
            event_config_set_flag(ev_cfg, EVENT_BASE_FLAG_IGNORE_ENV);
            t->base = event_base_new_with_config(ev_cfg);
            event_config_free(ev_cfg);
        }
        t->wake = t->base ? event_new(t->base, -1, 0, on_wake, t) : NULL;
        t->drain = t->wake ? event_new(srv->base, -1, 0, on_drain, t) : NULL;
        t->ws_in = t->drain ? evbuffer_new() : NULL;
        t->ws_lines = t->ws_in ? evbuffer_new() : NULL;
        int rc = t->ws_lines ? pthread_create(&t->thread, NULL, io_thread_main, t) : ENOMEM;
        if (rc != 0) {
            snprintf(err, errlen, "io_threads: cannot start thread %d: %s", i + 1, strerror(rc));
            io_threads_stop(srv);
            return -1;
        }
        t->started = 1;
    }
    log_info("%zu I/O thread%s for TCP, TLS and WebSocket sessions", io->n, io->n == 1 ? "" : "s");
    return 0;
}

void io_threads_stop(struct server *srv)
{
    struct io_threads *io = srv->io;
    if (!io)
        return;
    for (size_t i = 0; i < io->n; i++) {
        struct io_thread *t = &io->threads[i];
        if (!t->started)
            continue;
        pthread_mutex_lock(&t->lock);
        t->stopping = 1;
        event_active(t->wake, EV_READ, 0);
        pthread_mutex_unlock(&t->lock);
        pthread_join(t->thread, NULL);
    }
    for (size_t i = 0; i < io->n; i++)
        thread_free(&io->threads[i]);
    free(io->threads);
    free(io);
    srv->io = NULL;
}

size_t io_threads_input_bytes(const struct server *srv)
{
    size_t bytes = 0;
    for (size_t i = 0; srv->io && i < srv->io->n; i++)
        bytes += atomic_load_explicit(&srv->io->threads[i].input_bytes, memory_order_relaxed);
    return bytes;
}

/* A connection for socket fd on the least-loaded thread, without its events yet, or
 * NULL when out of memory. */
static struct io_conn *conn_new(struct server *srv, chatd_session_id id)
{
    struct io_threads *io = srv->io;
    struct io_thread *t = &io->threads[0];
    for (size_t i = 1; i < io->n; i++) {
        if (io->threads[i].n_conns < t->n_conns)
            t = &io->threads[i];
    }
    struct io_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->t = t;
    c->id = id;
    c->fd = -1;
    framer_init(&c->framer, (size_t)srv->cfg->max_frame_bytes);
    return c;
}

struct io_conn *io_conn_open(struct server *srv, evutil_socket_t fd, chatd_session_id id,
                             SSL_CTX *tls)
{
    struct io_conn *c = conn_new(srv, id);
    if (!c)
        return NULL;
    struct io_thread *t = c->t;
    c->established = tls == NULL;
    if (tls && (c->tls = calloc(1, sizeof(*c->tls))) != NULL) {
        c->tls->handshake_timeout.tv_sec = (time_t)srv->cfg->tls.handshake_timeout_s;
        c->tls->ssl = io_tls_new(tls, fd);
        c->tls->handshake_timer =
            c->tls->ssl ? evtimer_new(t->base, on_handshake_timeout, c) : NULL;
    }
    c->read_ev = event_new(t->base, fd, EV_READ | EV_PERSIST, on_readable, c);
    if (!c->read_ev || (tls && !(c->tls && c->tls->handshake_timer))) {
        conn_free(c);
        return NULL;
    }
    c->fd = fd;
    t->n_conns++;
    if (tls) {
        /* The handshake begins at once, whatever the loop wants. */
        pthread_mutex_lock(&t->lock);
        todo_add(c);
        pthread_mutex_unlock(&t->lock);
    }
    return c;
}

struct io_conn *io_conn_open_ws(struct server *srv, evutil_socket_t fd, chatd_session_id id,
                                SSL *ssl, struct evbuffer *early)
{
    const struct config *cfg = srv->cfg;
    struct io_conn *c = conn_new(srv, id);
    struct io_conn_ws *ws = c ? calloc(1, sizeof(*ws)) : NULL;
    if (ws) {
        c->ws = ws;
        ws->early = early;
        early = NULL;
        ws->ping_interval.tv_sec = (time_t)cfg->web.ping_interval_s;
        ws->pong_timeout.tv_sec = (time_t)cfg->web.pong_timeout_s;
        ws->stream = ws_stream_new((size_t)cfg->max_frame_bytes);
        ws->timer = ws->stream ? evtimer_new(c->t->base, on_ws_timer, c) : NULL;
    }
    if (ws && ssl && (c->tls = calloc(1, sizeof(*c->tls))) != NULL) {
        c->tls->ssl = ssl;
        ssl = NULL;
        io_tls_adopt(c->tls->ssl);
        c->tls->handshake_started = 1;
        c->tls->version = SSL_get_version(c->tls->ssl);
        c->tls->cipher = SSL_get_cipher_name(c->tls->ssl);
    }
    /* ssl is NULL here once the connection has taken it. */
    int ready = ws && ws->timer && !ssl;
    if (ready)
        c->read_ev = event_new(c->t->base, fd, EV_READ | EV_PERSIST, on_readable, c);
    if (!ready || !c->read_ev) {
        if (c)
            conn_free(c);
        if (ssl)
            SSL_free(ssl);
        if (early)
            evbuffer_free(early);
        evutil_closesocket(fd);
        return NULL;
    }
    c->fd = fd;
    c->established = 1;
    c->t->n_conns++;
    pthread_mutex_lock(&c->t->lock);
    todo_add(c);
    pthread_mutex_unlock(&c->t->lock);
    return c;
}

void io_conn_release(struct io_conn *c, int stopping)
{
    struct io_thread *t = c->t;
    t->n_conns--;
    pthread_mutex_lock(&t->lock);
    if (c->ws)
        c->ws->close_code = stopping ? WS_CLOSE_GOING_AWAY : WS_CLOSE_NORMAL;
    c->released = 1;
    outbox_unlink(c);
    todo_add(c);
    pthread_mutex_unlock(&t->lock);
}

int io_conn_want_input(struct io_conn *c, int on)
{
    struct io_thread *t = c->t;
    pthread_mutex_lock(&t->lock);
    int waiting = c->queued > 0 || c->eof || c->read_error;
    /* Off: the thread looks at the flag before each read, and disarms then. */
    c->want_input = on ? 1 : 0;
    if (on)
        read_rearm(c);
    pthread_mutex_unlock(&t->lock);
    return on && waiting;
}

enum framer_status io_conn_next(struct io_conn *c, struct io_input *in)
{
    struct io_thread *t = c->t;
    pthread_mutex_lock(&t->lock);
    struct io_frame *f = c->queue;
    in->frame = f;
    in->bytes = c->bytes_read;
    c->bytes_read = 0;
    in->ended = in->error = in->partial = 0;
    if (f) {
        c->queue = f->next;
        if (!c->queue)
            c->queue_tail = NULL;
        f->next = NULL;
        c->queued--;
        c->queued_bytes -= f->parsed.len;
        read_rearm(c); /* it stops while the queue is full */
    } else {
        in->ended = c->eof;
        in->error = c->read_error;
        in->partial = c->partial;
    }
    pthread_mutex_unlock(&t->lock);
    return f ? f->status : FRAMER_NEED_MORE;
}

int io_conn_write(struct io_conn *c, struct evbuffer *out)
{
    struct io_thread *t = c->t;
    pthread_mutex_lock(&t->lock);
    if (!c->out)
        c->out = evbuffer_new();
    int rc = c->out ? evbuffer_add_buffer(c->out, out) : -1;
    if (rc == 0)
        todo_add(c);
    pthread_mutex_unlock(&t->lock);
    if (rc < 0)
        errno = ENOMEM;
    return rc;
}

size_t io_conn_backlog(struct io_conn *c)
{
    pthread_mutex_lock(&c->t->lock);
    size_t n = length(c->out);
    pthread_mutex_unlock(&c->t->lock);
    return n;
}

void io_conn_watch_writes(struct io_conn *c, int on)
{
    struct io_thread *t = c->t;
    pthread_mutex_lock(&t->lock);
    c->watch_writes = on ? 1 : 0;
    /* Written already, before the watch began: say so, or the loop would wait. */
    if (on && length(c->out) == 0)
        post(c, TRANSPORT_IO_WROTE);
    pthread_mutex_unlock(&t->lock);
}

size_t io_conn_cut_after_line(struct io_conn *c)
{
    pthread_mutex_lock(&c->t->lock);
    size_t len = length(c->out);
    if (len == 0) {
        pthread_mutex_unlock(&c->t->lock);
        return 0;
    }
    /* A record TLS could not send must be given to it again: the cut comes after it. */
    size_t retry = c->tls ? c->tls->retry : 0;
    struct evbuffer_ptr from;
    evbuffer_ptr_set(c->out, &from, retry > 0 ? retry - 1 : 0, EVBUFFER_PTR_SET);
    struct evbuffer_ptr nl = evbuffer_search(c->out, "\n", 1, &from);
    /* A WebSocket's line being written is a message in its frames already. */
    size_t keep = c->ws ? 0 : nl.pos >= 0 ? (size_t)nl.pos + 1 : len;
    /* evbuffer has no "drop the tail": move the head out, empty the rest, put it back. */
    struct evbuffer *head = keep < len ? evbuffer_new() : NULL;
    size_t dropped = 0;
    if (head && evbuffer_remove_buffer(c->out, head, keep) == (int)keep) {
        dropped = evbuffer_get_length(c->out);
        evbuffer_drain(c->out, dropped);
        evbuffer_add_buffer(c->out, head);
    }
    if (head)
        evbuffer_free(head);
    pthread_mutex_unlock(&c->t->lock);
    return dropped;
}

void io_conn_error_text(struct io_conn *c, int error, char *text, size_t cap)
{
    pthread_mutex_lock(&c->t->lock);
    const char *tls_text = c->tls && c->tls->error_text[0] ? c->tls->error_text : NULL;
    snprintf(text, cap, "%s", tls_text ? tls_text : strerror(error));
    pthread_mutex_unlock(&c->t->lock);
}

void io_conn_tls_names(struct io_conn *c, const char **version, const char **cipher)
{
    pthread_mutex_lock(&c->t->lock);
    *version = c->tls && c->tls->version ? c->tls->version : "?";
    *cipher = c->tls && c->tls->cipher ? c->tls->cipher : "?";
    pthread_mutex_unlock(&c->t->lock);
}
