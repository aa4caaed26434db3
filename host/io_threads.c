/* io_threads.c - the I/O threads and their connections (see io_threads.h).
 *
 * Each thread has one mutex guarding its todo list (connections the loop changed), its
 * outbox (connections with something to report to the loop) and the shared fields of
 * its connections. Both lists are intrusive, so neither side allocates to talk to the
 * other; each is woken once per batch: the loop activates the thread's wake event
 * when the todo list goes from empty to not empty, the thread activates its drain event
 * on the loop base when the outbox does. A connection belongs to its thread, which frees
 * it once the loop has released it; the loop never touches it after that, and items
 * reach the loop as session ids. */
#include "io_threads.h"

#include "log.h"
#include "server.h"
#include "transport.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* How much one read takes from the socket, as the loop's own reads do; the thread reads
 * ahead while less than this waits for the loop, so a session holds at most two. */
#define IO_READ_CHUNK       16384
#define IO_THREADS_AUTO_MAX 16

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
    struct event *read_ev, *write_ev;
    unsigned write_armed : 1;
    /* Under t->lock (read_armed: set by the thread only): */
    unsigned read_armed : 1;
    /* Made when needed and freed when empty, so an idle session holds neither. */
    struct evbuffer *in;  /* read, not yet taken by the loop */
    struct evbuffer *out; /* handed over, not yet written; the thread writes from its head */
    unsigned want_input : 1, watch_writes : 1, eof : 1, released : 1, on_todo : 1;
    unsigned failed : 1; /* a write failed: nothing more is written */
    int read_error, write_error;
    unsigned report; /* TRANSPORT_IO_* bits waiting in the outbox */
    struct io_conn *todo_next;
    struct io_conn *out_next, **out_prev;
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
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long n = cores - 1;
    if (n < 1)
        n = 1;
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
        transport_tcp_io_report(t->srv, id, report, error);
        pthread_mutex_lock(&t->lock);
    }
    if (t->outbox)
        event_active(t->drain, EV_READ, 0);
    pthread_mutex_unlock(&t->lock);
}

static void conn_free(struct io_conn *c)
{
    if (c->read_ev)
        event_free(c->read_ev);
    if (c->write_ev)
        event_free(c->write_ev);
    if (c->fd >= 0)
        evutil_closesocket(c->fd);
    if (c->in)
        evbuffer_free(c->in);
    if (c->out)
        evbuffer_free(c->out);
    free(c);
}

/* Under t->lock: the thread should be reading c's socket. */
static int should_read(const struct io_conn *c)
{
    return c->want_input && !c->released && !c->eof && !c->read_error &&
           length(c->in) < IO_READ_CHUNK;
}

/* Under t->lock, the thread: arm or disarm c's read event as should_read says. Its
 * events are the thread's; only the flag is shared (the loop asks for a re-arm when
 * it sees it off). */
static void read_arm(struct io_conn *c)
{
    int want = should_read(c);
    if (want && !c->read_armed)
        event_add(c->read_ev, NULL);
    else if (!want && c->read_armed)
        event_del(c->read_ev);
    c->read_armed = want;
}

/* Under t->lock, the loop: the thread stopped reading; have it read again if it should. */
static void read_rearm(struct io_conn *c)
{
    if (!c->read_armed && should_read(c))
        todo_add(c);
}

/* The thread: read what came for a connection that wants input. The loop hears once
 * per batch: when its input goes from empty to not empty, or ends. */
static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct io_conn *c = arg;
    struct io_thread *t = c->t;
    pthread_mutex_lock(&t->lock);
    int wanted = should_read(c);
    if (!wanted)
        read_arm(c);
    pthread_mutex_unlock(&t->lock);
    if (!wanted)
        return;
    char buf[IO_READ_CHUNK];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    int error = errno;
    if (n < 0 && (error == EAGAIN || error == EWOULDBLOCK || error == EINTR))
        return;
    pthread_mutex_lock(&t->lock);
    int was_empty = length(c->in) == 0;
    if (n > 0 && !c->in)
        c->in = evbuffer_new();
    if (n > 0 && (!c->in || evbuffer_add(c->in, buf, (size_t)n) < 0))
        c->read_error = ENOMEM;
    else if (n == 0)
        c->eof = 1;
    else if (n < 0)
        c->read_error = error;
    if (was_empty || n <= 0)
        post(c, TRANSPORT_IO_INPUT);
    read_arm(c);
    pthread_mutex_unlock(&t->lock);
}

/* Under t->lock: nothing more can be written; the loop closes the session. */
static void fail(struct io_conn *c, int error)
{
    c->failed = 1;
    c->write_error = error;
    if (c->out)
        evbuffer_drain(c->out, evbuffer_get_length(c->out));
    post(c, TRANSPORT_IO_FAILED);
}

static void on_writable(evutil_socket_t fd, short what, void *arg);

/* The thread, under t->lock: write what the socket takes; wait for room for the rest. */
static void write_some(struct io_conn *c)
{
    int n = c->failed || length(c->out) == 0 ? 0 : evbuffer_write(c->out, c->fd);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        fail(c, errno);
    else if (n > 0 && c->watch_writes)
        post(c, TRANSPORT_IO_WROTE);
    int rest = !c->failed && length(c->out) > 0;
    if (rest && !c->write_ev)
        c->write_ev = event_new(c->t->base, c->fd, EV_WRITE | EV_PERSIST, on_writable, c);
    if (rest && !c->write_ev) {
        fail(c, ENOMEM);
        rest = 0;
    }
    if (!rest)
        free_if_empty(&c->out);
    if (rest && !c->write_armed)
        event_add(c->write_ev, NULL);
    else if (!rest && c->write_armed)
        event_del(c->write_ev);
    c->write_armed = rest;
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct io_conn *c = arg;
    pthread_mutex_lock(&c->t->lock);
    write_some(c);
    pthread_mutex_unlock(&c->t->lock);
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
        if (c->released) {
            pthread_mutex_unlock(&t->lock);
            conn_free(c);
            pthread_mutex_lock(&t->lock);
            continue;
        }
        read_arm(c);
        write_some(c);
    }
    if (t->stopping)
        event_base_loopbreak(t->base);
    pthread_mutex_unlock(&t->lock);
}

static void *io_thread_main(void *arg)
{
    struct io_thread *t = arg;
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
    pthread_mutex_destroy(&t->lock);
}

int io_threads_start(struct server *srv, char *err, size_t errlen)
{
    int n = io_threads_wanted(srv->cfg);
    if (n == 0)
        return 0;
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
        int rc = t->drain ? pthread_create(&t->thread, NULL, io_thread_main, t) : ENOMEM;
        if (rc != 0) {
            snprintf(err, errlen, "io_threads: cannot start thread %d: %s", i + 1, strerror(rc));
            io_threads_stop(srv);
            return -1;
        }
        t->started = 1;
    }
    log_info("%zu I/O thread%s for plain TCP sessions", io->n, io->n == 1 ? "" : "s");
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

struct io_conn *io_conn_open(struct server *srv, evutil_socket_t fd, chatd_session_id id)
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
    c->read_ev = event_new(t->base, fd, EV_READ | EV_PERSIST, on_readable, c);
    if (!c->read_ev) {
        conn_free(c);
        return NULL;
    }
    c->fd = fd;
    t->n_conns++;
    return c;
}

void io_conn_release(struct io_conn *c)
{
    struct io_thread *t = c->t;
    t->n_conns--;
    pthread_mutex_lock(&t->lock);
    c->released = 1;
    outbox_unlink(c);
    todo_add(c);
    pthread_mutex_unlock(&t->lock);
}

int io_conn_want_input(struct io_conn *c, int on)
{
    struct io_thread *t = c->t;
    pthread_mutex_lock(&t->lock);
    int waiting = length(c->in) > 0 || c->eof || c->read_error;
    /* Off: the thread looks at the flag before each read, and disarms then. */
    c->want_input = on ? 1 : 0;
    if (on)
        read_rearm(c);
    pthread_mutex_unlock(&t->lock);
    return on && waiting;
}

ssize_t io_conn_read(struct io_conn *c, void *buf, size_t len)
{
    struct io_thread *t = c->t;
    pthread_mutex_lock(&t->lock);
    int n = c->in ? evbuffer_remove(c->in, buf, len) : 0;
    free_if_empty(&c->in);
    ssize_t rc = n;
    if (n <= 0) {
        if (c->read_error) {
            errno = c->read_error;
            rc = -1;
        } else if (c->eof) {
            rc = 0;
        } else {
            errno = EAGAIN;
            rc = -1;
        }
    } else if (!c->in && (c->eof || c->read_error)) {
        /* The session, having read less than it asked, waits for a report before
         * reading again: the end behind these bytes needs one of its own. */
        post(c, TRANSPORT_IO_INPUT);
    }
    read_rearm(c); /* it stops while a full read waits for the loop */
    pthread_mutex_unlock(&t->lock);
    return rc;
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
    struct evbuffer_ptr nl = evbuffer_search(c->out, "\n", 1, NULL);
    size_t keep = nl.pos >= 0 ? (size_t)nl.pos + 1 : len;
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
